"""Who is recording into a folder: the recorder holds an flock on `<recordings>/dashcam.pid`.

The lock, not the file, is the proof: a pid file left by a crash is not held, so
`dashcam lock` never signals a stranger that happens to reuse the pid, and two
recorders can never write into one folder.
"""
from __future__ import annotations

import fcntl
import logging
import os
import signal
import stat
from pathlib import Path

from edge.errors import StorageError
from edge.record.atomic import RoomMaker, open_error_reason, with_room
from edge.record.store import RecordingsFolder

log = logging.getLogger(__name__)

LOCK_SIGNAL = signal.SIGUSR1


class RecorderLease:
    """Exclusive ownership of a recordings folder for the life of one recorder."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self._path = path

    @classmethod
    def acquire(cls, folder: RecordingsFolder, make_room: RoomMaker | None = None) -> RecorderLease:
        """Hold the folder; `make_room` frees space if the pid cannot be written on a full disk (the lock is
        already held then, so no other recorder is using the folder)."""
        path = folder.pid_path
        try:
            # Reused across runs, so not O_EXCL; never through a planted link, and only a regular file.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot write to the recordings folder {folder.root}: "
                               f"{open_error_reason(exc, path)}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StorageError(f"{path} is not a regular file: remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_pid(fd)
            os.close(fd)
            raise StorageError(f"another dashcam (pid {other}) is already recording into {folder.root}") from None
        try:
            os.ftruncate(fd, 0)
            with_room(lambda: os.pwrite(fd, f"{os.getpid()}\n".encode(), 0), make_room)
            with_room(lambda: os.fsync(fd), make_room)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot write to the recordings folder {folder.root}: {exc.strerror}") from None
        except BaseException:  # StorageFullError from make_room, an interrupt: the fd must not leak either
            os.close(fd)
            raise
        return cls(fd, path)

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            self._path.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("pid file %s stays: %s", self._path, exc)  # harmless: nobody holds its lock
        os.close(self._fd)
        self._fd = -1


def running_recorder(folder: RecordingsFolder) -> int | None:
    """The pid of the recorder holding the folder, or None when nothing records into it."""
    try:
        fd = os.open(folder.pid_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {folder.pid_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd)
    finally:
        os.close(fd)
    return None  # we got the lock: the file is a leftover


def signal_lock(folder: RecordingsFolder) -> int:
    """Ask the running recorder to lock the current incident; returns its pid."""
    pid = running_recorder(folder)
    if pid is None:
        raise StorageError(f"nothing is recording into {folder.root} (no running `dashcam run` holds "
                           f"{folder.pid_path.name}); pass --recordings or --config to name the folder")
    try:
        os.kill(pid, LOCK_SIGNAL)
    except ProcessLookupError:
        raise StorageError(f"the recorder (pid {pid}) has just stopped; nothing was locked") from None
    except PermissionError:
        raise StorageError(f"not allowed to signal the recorder (pid {pid}): run as the same user") from None
    return pid


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
