"""Crash-safe file creation: write to `NAME.partial` (mode 0600), fsync, rename, fsync the folder.

A power cut leaves either the finished file or a `.partial`, never a half-written
file under its final name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from edge.errors import StorageError

PARTIAL_SUFFIX = ".partial"
FILE_MODE = 0o600


def partial_path(final_path: Path) -> Path:
    return final_path.with_name(final_path.name + PARTIAL_SUFFIX)


def open_partial(final_path: Path) -> BinaryIO:
    """A new private file beside `final_path`, to be finished with `commit`."""
    path = partial_path(final_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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


def write_atomic(final_path: Path, data: bytes) -> Path:
    handle = open_partial(final_path)
    try:
        handle.write(data)
    except OSError as exc:
        discard(handle, final_path)
        raise StorageError(f"cannot write {final_path}: {exc.strerror}") from None
    return commit(handle, final_path)


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """`folder/stem+suffix`, or with `_1`, `_2`... when that name (or its partial) is taken."""
    candidate = folder / f"{stem}{suffix}"
    n = 0
    while candidate.exists() or partial_path(candidate).exists():
        n += 1
        candidate = folder / f"{stem}_{n}{suffix}"
    return candidate
