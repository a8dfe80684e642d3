"""The incident-lock push button on a GPIO line (Raspberry Pi), read through libgpiod 2's `gpiod` package.

Wiring: a momentary button between the GPIO pin and ground; the line is configured as
an input with the internal pull-up, and a falling edge (press) requests a lock. The
`gpiod` package is imported only when `record.lock_gpio_line` is set, so nothing else
needs it.
"""
from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
from typing import Any, Protocol
from collections.abc import Callable

from edge.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.05
_POLL_S = 0.5


class EdgeEvents(Protocol):
    """The part of a `gpiod.LineRequest` the button uses."""

    def wait_edge_events(self, timeout: dt.timedelta) -> bool: ...

    def read_edge_events(self) -> list: ...

    def release(self) -> None: ...


def parse_line(spec: str, key: str = "record.lock_gpio_line") -> tuple[str, int]:
    """`gpiochip0:17` or `/dev/gpiochip0:17` -> (`/dev/gpiochip0`, 17); `key` names the setting in the error."""
    chip, sep, line = spec.rpartition(":")
    if not sep or not chip or not line.isdigit():
        raise ConfigError(f"{key}: expected CHIP:LINE such as gpiochip0:17, got {spec!r}")
    return (chip if chip.startswith("/") else f"/dev/{chip}"), int(line)


class GpioLockButton:
    """Calls `on_press` (from its own thread) for every press."""

    def __init__(self, events: EdgeEvents, on_press: Callable[[], None], name: str = "button") -> None:
        self._events = events
        self._on_press = on_press
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lock-button", daemon=True)
        self.presses = 0

    @classmethod
    def open(cls, spec: str, on_press: Callable[[], None]) -> GpioLockButton:
        chip, line = parse_line(spec)
        gpiod = _import_gpiod()
        settings = gpiod.LineSettings(direction=gpiod.line.Direction.INPUT, edge_detection=gpiod.line.Edge.FALLING,
                                      bias=gpiod.line.Bias.PULL_UP, debounce_period=dt.timedelta(seconds=DEBOUNCE_S))
        try:
            request = gpiod.request_lines(chip, consumer="dashcam-lock", config={line: settings})
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot use GPIO line {line} of {chip} for the lock button: {exc}") from None
        return cls(request, on_press, name=spec)

    def start(self) -> None:
        self._thread.start()
        log.info("incident-lock button on GPIO %s", self._name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * _POLL_S)
        self._events.release()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._events.wait_edge_events(dt.timedelta(seconds=_POLL_S)):
                    continue
                pressed = bool(self._events.read_edge_events())
            except OSError as exc:
                log.error("lock button on GPIO %s stopped working: %s", self._name, exc)
                return
            if pressed:
                self.presses += 1
                log.warning("lock button pressed")
                self._on_press()


def _import_gpiod() -> Any:
    try:
        gpiod = importlib.import_module("gpiod")
    except ImportError:
        raise ConfigError("record.lock_gpio_line is set but the gpiod package (libgpiod 2 Python bindings) is not "
                          "installed: pip install gpiod, or leave lock_gpio_line empty") from None
    if not hasattr(gpiod, "request_lines"):
        raise ConfigError("record.lock_gpio_line needs gpiod 2.x (libgpiod 2); the installed gpiod is older: "
                          "pip install 'gpiod>=2'")
    return gpiod
