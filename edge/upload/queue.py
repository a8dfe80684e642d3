"""The upload queue: one SQLite row per segment chosen for upload, kept across reboots.

`<recordings>/dashcam-uploads.sqlite3` (mode 0600). A segment is `queued` until every
one of its files is on the remote and checked there, then `done` (with the manifest hash
the remote's statement lists); one deleted by loop recording before it could be sent is
`gone`. Rows are keyed by segment name, so queueing twice does nothing.
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.errors import StorageError
from edge.record.atomic import CREATE_FLAGS, FILE_MODE, is_regular_file
from edge.record.store import UPLOAD_QUEUE_NAME, format_utc

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    segment TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'gone')),
    queued_utc TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    done_utc TEXT,
    manifest_sha256 TEXT,
    sequence INTEGER,
    chain TEXT,
    bytes INTEGER NOT NULL DEFAULT 0,
    checked TEXT
);
"""


@dataclass(frozen=True)
class UploadRow:
    segment: str
    state: str
    attempts: int
    last_error: str | None
    manifest_sha256: str | None
    sequence: int | None
    chain: str | None
    bytes: int
    checked: str | None  # what was compared on the remote, e.g. md5+sha1+size


@dataclass(frozen=True)
class QueueStatus:
    queued: int
    done: int
    gone: int
    sent_bytes: int
    last_error: str | None


class UploadQueue:
    """Thread-safe: the recorder's thread queues, the uploader's thread takes and marks."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.Lock()

    @classmethod
    def open(cls, root: Path) -> UploadQueue:
        path = root / UPLOAD_QUEUE_NAME
        try:
            if not os.path.lexists(path):
                os.close(os.open(path, CREATE_FLAGS, FILE_MODE))  # 0600 from the start; never through a link
            elif not is_regular_file(path):
                raise StorageError(f"{path} is not a regular file (a link?): remove it")
            connection = sqlite3.connect(path, timeout=10, check_same_thread=False)
            connection.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StorageError(f"cannot open the upload queue {path}: {exc}") from None
        return cls(connection)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, segment: str) -> bool:
        """Queue a segment (by stem); False when it was queued or sent before."""
        with self._lock, self._db:
            cursor = self._db.execute("INSERT OR IGNORE INTO uploads (segment, state, queued_utc) "
                                      "VALUES (?, 'queued', ?)", (segment, _now()))
            return cursor.rowcount == 1

    def requeue(self, segment: str) -> None:
        """A sent segment changed (locked afterwards): send it again; rclone skips its unchanged video."""
        with self._lock, self._db:
            self._db.execute("UPDATE uploads SET state = 'queued' WHERE segment = ? AND state = 'done'", (segment,))

    def pending(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT segment FROM uploads WHERE state = 'queued' "
                                    "ORDER BY attempts, segment").fetchall()  # a failing one does not stay first
        return [r[0] for r in rows]

    def mark_done(self, segment: str, manifest_sha256: str, sequence: int, chain: str, size: int, checked: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE uploads SET state = 'done', done_utc = ?, manifest_sha256 = ?, sequence = ?, "
                             "chain = ?, bytes = ?, checked = ?, last_error = NULL, attempts = attempts + 1 "
                             "WHERE segment = ?", (_now(), manifest_sha256, sequence, chain, size, checked, segment))

    def mark_failed(self, segment: str, error: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE uploads SET attempts = attempts + 1, last_error = ? WHERE segment = ?",
                             (error[:500], segment))

    def mark_gone(self, segment: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE uploads SET state = 'gone', last_error = 'deleted by loop recording before it "
                             "was sent' WHERE segment = ?", (segment,))

    def rows(self, state: str | None = None) -> list[UploadRow]:
        query = ("SELECT segment, state, attempts, last_error, manifest_sha256, sequence, chain, bytes, checked "
                 "FROM uploads"
                 + (" WHERE state = ?" if state else "") + " ORDER BY segment")
        with self._lock:
            return [UploadRow(*r) for r in self._db.execute(query, (state,) if state else ()).fetchall()]

    def status(self) -> QueueStatus:
        rows = self.rows()
        errors = [r.last_error for r in rows if r.state == "queued" and r.last_error]
        return QueueStatus(sum(r.state == "queued" for r in rows), sum(r.state == "done" for r in rows),
                           sum(r.state == "gone" for r in rows), sum(r.bytes for r in rows if r.state == "done"),
                           errors[-1] if errors else None)


def _now() -> str:
    return format_utc(dt.datetime.now(dt.timezone.utc))
