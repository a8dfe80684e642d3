"""Errors that end the program with a clear one-line message and exit status 2.

Anything a user can fix (a config key, a missing model, an unreadable input) is a
`UserError`; the CLI prints its message and exits 2 without a traceback. Internal
bugs stay ordinary exceptions so they are not disguised as user mistakes.
"""
from __future__ import annotations

import sys
from typing import Any


class UserError(Exception):
    """A problem the user can fix; its message names what is wrong and where."""

    exit_status = 2


class ConfigError(UserError):
    """The configuration file or a command-line override is invalid."""


class ModelError(UserError):
    """A model file is missing, altered or cannot be loaded."""


class SourceError(UserError):
    """A camera, video, image or folder cannot be opened or decoded."""


class StorageError(UserError):
    """The recordings or output location cannot be written."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived before a command installed its own stop handling (exit status 130)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


_received: list[str] = []  # the stop signals raise_interrupted has seen in this process


def unwind_on_stop_signals() -> None:
    """Until a command installs its own stop handling: SIGINT and SIGTERM raise `Interrupted` where the
    program is, and one that a callback swallows is kept for `raise_pending_stop` instead of printed."""
    import signal

    signal.signal(signal.SIGTERM, raise_interrupted)
    signal.signal(signal.SIGINT, raise_interrupted)
    if sys.unraisablehook is not _keep_swallowed_stop:
        global _next_unraisable_hook
        _next_unraisable_hook = sys.unraisablehook
        sys.unraisablehook = _keep_swallowed_stop


def raise_interrupted(signum: int, _frame: object) -> None:
    """Signal handler for start-up: unwind (releasing locks, closing files) instead of dying silently."""
    import signal

    _received.append(signal.Signals(signum).name)
    raise Interrupted(_received[-1])


def raise_pending_stop() -> None:
    """Raise `Interrupted` if a stop signal arrived and the program is still going.

    The handler's exception can be lost: raised inside a weakref callback or `__del__` (importlib's
    module-lock callback is one) Python prints and drops it, and an optional import's `except
    ImportError` takes a C extension's ImportError for a missing module. Commands call this before
    they start storing anything, so a lost stop still ends the program with status 130.
    """
    if _received:
        raise Interrupted(_received[-1])


def stop_answered() -> None:
    """The stop has been reported (one line, status 130): a later `cli.main` in this process starts clean."""
    _received.clear()


def _keep_swallowed_stop(unraisable: Any) -> None:
    """sys.unraisablehook: our own `Interrupted` is remembered in `_received`, not printed as a traceback."""
    if isinstance(unraisable.exc_value, Interrupted):
        return
    _next_unraisable_hook(unraisable)


_next_unraisable_hook = sys.__unraisablehook__


def interrupted_by(exc: BaseException) -> str | None:
    """The stop signal behind `exc`: an `Interrupted`, or the ImportError a C extension makes of one raised
    while it was initializing; None for anything else."""
    if isinstance(exc, Interrupted):
        return exc.signal_name
    if isinstance(exc, ImportError) and _received:
        return _received[-1]
    return None
