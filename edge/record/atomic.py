"""Crash-safe file creation: write to `NAME.partial` (mode 0600), fsync, rename, fsync the folder.

A power cut leaves either the finished file or a `.partial`, never a half-written
file under its final name.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO

from edge.errors import StorageError

PARTIAL_SUFFIX = ".partial"
FILE_MODE = 0o600
# Folders dashcam makes hold footage and locations: only its own user may list or enter them.
FOLDER_MODE = 0o700

log = logging.getLogger(__name__)


def partial_path(final_path: Path) -> Path:
    return final_path.with_name(final_path.name + PARTIAL_SUFFIX)


def open_partial(final_path: Path, make_parents: bool = True) -> BinaryIO:
    """A new private file beside `final_path`, to be finished with `commit`.

    `make_parents=False` for the recordings folder: if the card was unmounted, recreating the
    folder would quietly fill the root filesystem instead of reporting the problem.
    """
    path = partial_path(final_path)
    try:
        if make_parents:
            path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    except OSError as exc:
        raise StorageError(f"cannot write to {path.parent}: {exc.strerror}") from None
    return os.fdopen(fd, "w+b")


def commit(handle: BinaryIO, final_path: Path) -> Path:
    """Flush and fsync the partial file, close it, and rename it to its final name."""
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(partial_path(final_path), final_path)
    fsync_dir(final_path.parent)
    return final_path


def discard(handle: BinaryIO, final_path: Path) -> None:
    handle.close()
    partial_path(final_path).unlink(missing_ok=True)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(final_path: Path, data: bytes, make_parents: bool = True) -> Path:
    handle = open_partial(final_path, make_parents)
    try:
        handle.write(data)
        return commit(handle, final_path)
    except OSError as exc:
        _discard_quietly(handle, final_path)
        raise StorageError(f"cannot write {final_path}: {exc.strerror or exc}") from None


def copy_atomic(source: Path, final_path: Path, chunk_bytes: int = 1 << 20) -> Path:
    """Copy a file under the same partial-fsync-rename discipline (exports to a USB stick)."""
    handle = open_partial(final_path)
    try:
        with source.open("rb") as reader:
            while chunk := reader.read(chunk_bytes):
                handle.write(chunk)
        return commit(handle, final_path)
    except OSError as exc:
        _discard_quietly(handle, final_path)
        raise StorageError(f"cannot copy {source.name} to {final_path.parent}: {exc.strerror or exc}") from None


def _discard_quietly(handle: BinaryIO, final_path: Path) -> None:
    """Best-effort cleanup while another error is being reported; recovery removes what stays."""
    try:
        discard(handle, final_path)
    except OSError as exc:
        log.debug("could not remove the partial of %s: %s", final_path, exc)


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """`folder/stem+suffix`, or with `_1`, `_2`... when that name (or its partial) is taken."""
    candidate = folder / f"{stem}{suffix}"
    n = 0
    while candidate.exists() or partial_path(candidate).exists():
        n += 1
        candidate = folder / f"{stem}_{n}{suffix}"
    return candidate
