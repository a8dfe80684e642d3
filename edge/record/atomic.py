"""Crash-safe, link-safe file creation: write `NAME.partial` (mode 0600), fsync, rename, fsync the folder.

A power cut leaves either the finished file or a `.partial`, never a half-written
file under its final name. The partial is created with `O_EXCL | O_NOFOLLOW`, so a
symlink (or any file) planted under that name is never written through: a leftover
partial is unlinked (the link itself, not its target) and the create is tried once more.
The rename then replaces whatever sits at the final name, a symlink included, without
following it.

Writers that keep a loop of footage pass a `RoomMaker`: when a write, create or fsync
fails for lack of space (ENOSPC, EDQUOT), it is called to free space (retention
deletes the oldest unlocked segment) and the operation is retried; it raises when
nothing more may be freed.
"""
from __future__ import annotations

import errno
import functools
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edge.errors import StorageError

PARTIAL_SUFFIX = ".partial"
FILE_MODE = 0o600
# Folders dashcam makes hold footage and locations: only its own user may list or enter them.
FOLDER_MODE = 0o700
# Never follow a link dashcam did not make, never reuse a file it did not create, never leak to children.
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

# Called when the disk is full; frees something and returns, or raises when nothing more may go.
RoomMaker = Callable[[], None]
MAX_ROOM_TRIES = 8
_T = TypeVar("_T")

log = logging.getLogger(__name__)


def is_out_of_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def with_room(action: Callable[[], _T], make_room: RoomMaker | None) -> _T:
    """Run `action`; while it fails for lack of space and `make_room` frees some, run it again.

    One freed segment is far more than any single write needs, so a few tries are enough;
    more means the space is not coming back (deleted files still held open by another program),
    and deleting on would empty the loop for nothing.
    """
    for _ in range(MAX_ROOM_TRIES):
        try:
            return action()
        except OSError as exc:
            if make_room is None or not is_out_of_space(exc):
                raise
            make_room()
    try:
        return action()
    except OSError as exc:
        if not is_out_of_space(exc):
            raise
        raise StorageError(f"the disk stays full after freeing space {MAX_ROOM_TRIES} times (are deleted "
                           "recordings still open in another program?)") from None


class PartialFile:
    """An unbuffered writer on a new private file; a write that fails for space makes room and goes on.

    File-like enough for PyAV's custom I/O (`write`, `seek`, `tell`) and for plain copies.
    Every write is complete or raises, so a muxer never sees a short write.
    """

    def __init__(self, fd: int, path: Path, make_room: RoomMaker | None) -> None:
        self._fd = fd
        self.path = path
        self._make_room = make_room
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            written = with_room(functools.partial(os.write, self._fd, view), self._make_room)
            view = view[written:]
        return total

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def flush(self) -> None:
        """Nothing is buffered here: every write went to the kernel."""

    def sync(self) -> None:
        with_room(lambda: os.fsync(self._fd), self._make_room)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)


def make_output_folder(folder: Path, what: str) -> Path:
    """Create `folder` (mode 0700) for output, or one clear StorageError: a file in the way, read-only disk..."""
    if folder.exists() and not folder.is_dir():
        raise StorageError(f"the {what} {folder} is a file, not a folder")
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the {what} {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"the {what} {folder} is not writable (read-only disk or wrong owner?)")
    return folder


def partial_path(final_path: Path) -> Path:
    return final_path.with_name(final_path.name + PARTIAL_SUFFIX)


def open_partial(final_path: Path, make_parents: bool = True, make_room: RoomMaker | None = None) -> PartialFile:
    """A new private file beside `final_path`, to be finished with `commit`.

    `make_parents=False` for the recordings folder: if the card was unmounted, recreating the
    folder would quietly fill the root filesystem instead of reporting the problem.
    """
    path = partial_path(final_path)
    try:
        if make_parents:
            path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        fd = with_room(lambda: _create_exclusive(path), make_room)
    except OSError as exc:
        raise StorageError(f"cannot write to {path.parent}: {open_error_reason(exc, path)}") from None
    return PartialFile(fd, path, make_room)


def _create_exclusive(path: Path) -> int:
    """Create `path` new; a leftover under that name (a crash's partial, or a planted link) is removed once."""
    try:
        return os.open(path, CREATE_FLAGS, FILE_MODE)
    except FileExistsError:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise StorageError(f"cannot write {path}: a folder has that name") from None
        log.debug("removing the leftover %s", path)
        os.unlink(path)  # the entry itself: a symlink's target is untouched
        return os.open(path, CREATE_FLAGS, FILE_MODE)


def open_error_reason(exc: OSError, path: Path) -> str:
    """Why opening `path` failed, in words: a symlink refused (ELOOP under O_NOFOLLOW), a name that keeps
    reappearing (EEXIST after the leftover was removed), or the system's own reason."""
    if exc.errno == errno.ELOOP:
        return f"{path.name} is a symbolic link: remove it"
    if exc.errno == errno.EEXIST:
        return f"{path.name} keeps reappearing (another program is writing there)"
    return exc.strerror or str(exc)


def commit(handle: PartialFile, final_path: Path) -> Path:
    """Fsync the partial file, close it, and rename it to its final name (replacing, never following, a link)."""
    handle.sync()
    handle.close()
    os.replace(partial_path(final_path), final_path)
    fsync_dir(final_path.parent)
    return final_path


def discard(handle: PartialFile, final_path: Path) -> None:
    handle.close()
    partial_path(final_path).unlink(missing_ok=True)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(final_path: Path, data: bytes, make_parents: bool = True,
                 make_room: RoomMaker | None = None) -> Path:
    handle = open_partial(final_path, make_parents, make_room)
    try:
        handle.write(data)
        return commit(handle, final_path)
    except OSError as exc:
        _discard_quietly(handle, final_path)
        raise StorageError(f"cannot write {final_path}: {exc.strerror or exc}") from None
    except BaseException:
        _discard_quietly(handle, final_path)
        raise


def is_regular_file(path: Path) -> bool:
    """True for a regular file itself, False for a symlink (whatever it points at), a folder or nothing."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def open_regular(path: Path) -> int:
    """A read descriptor on `path` only if it is a regular file reached without a final symlink."""
    fd = os.open(path, READ_FLAGS)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StorageError(f"refusing to read {path}: not a regular file")
    return fd


def copy_atomic(source: Path, final_path: Path, chunk_bytes: int = 1 << 20) -> Path:
    """Copy a regular file (never through a symlink) under the same partial-fsync-rename discipline."""
    try:
        source_fd = open_regular(source)
    except OSError as exc:
        raise StorageError(f"refusing to copy {source}: {open_error_reason(exc, source)}") from None
    try:
        handle = open_partial(final_path)
        try:
            while chunk := os.read(source_fd, chunk_bytes):
                handle.write(chunk)
            return commit(handle, final_path)
        except OSError as exc:
            _discard_quietly(handle, final_path)
            raise StorageError(f"cannot copy {source.name} to {final_path.parent}: {exc.strerror or exc}") from None
    finally:
        os.close(source_fd)


def _discard_quietly(handle: PartialFile, final_path: Path) -> None:
    """Best-effort cleanup while another error is being reported; recovery removes what stays."""
    try:
        discard(handle, final_path)
    except OSError as exc:
        log.debug("could not remove the partial of %s: %s", final_path, exc)


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """`folder/stem+suffix`, or with `_1`, `_2`... when that name (or its partial) is taken."""
    candidate = folder / f"{stem}{suffix}"
    n = 0
    while os.path.lexists(candidate) or os.path.lexists(partial_path(candidate)):
        n += 1
        candidate = folder / f"{stem}_{n}{suffix}"
    return candidate


def append_line(path: Path, line: bytes) -> None:
    """Append one line to a log (created 0600, never through a link) and fsync it: a power cut loses at most
    this line, torn; readers skip a torn last line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
