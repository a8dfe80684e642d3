"""The recordings folder kept as a loop: ownership, start-up clean-up, the trips index and retention.

`LoopStore.open` does all the start-up I/O, in this order: create the folders, take the
lease (one recorder per folder), recover what a crash or power cut left, open and
reconcile the trips index, and apply retention once. The recorder (edge.record.segments)
gets the opened store and only cuts segments; it hands each finished one to `keep`, asks
`lock` to move one into `locked/`, and passes `make_room` to every write, so a write that
fails for space frees the oldest unlocked segment (see edge.record.atomic).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.config import RecordConfig
from edge.errors import StorageError
from edge.record.index import TripsIndex
from edge.record.lease import RecorderLease
from edge.record.recovery import recover
from edge.record.retention import (RetentionPolicy, StorageFullError, describe_disk_full, describe_full,
                                   oldest_deletable, plan_retention)
from edge.record.sidecar import Sidecar
from edge.record.store import RecordingsFolder, StoredSegment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopOptions:
    """Loop-recording behaviour, from the `record` config section."""

    retention: RetentionPolicy = RetentionPolicy()
    lock_before_s: float = 30.0
    lock_after_s: float = 30.0
    trip_gap_s: float = 300.0

    @classmethod
    def from_config(cls, record: RecordConfig) -> LoopOptions:
        return cls(RetentionPolicy.from_preset(record.retention, record.max_age_hours, record.max_bytes,
                                               record.min_free_bytes),
                   record.lock_before_seconds, record.lock_after_seconds, record.trip_gap_seconds)


class LoopStore:
    """One recorder's hold on its folder. Build it with `open`; the constructor does no I/O."""

    def __init__(self, folder: RecordingsFolder, options: LoopOptions) -> None:
        self.folder = folder
        self.options = options
        self.deleted_for_full_disk = 0  # segments freed because a write failed for space
        self._lease: RecorderLease | None = None
        self._index: TripsIndex | None = None  # opened after recovery
        self._identity: tuple[int, int] | None = None
        self._reserve_bytes = 0  # room kept for the next segment: the largest recent one
        self._on_delete: list[Callable[[set[Path]], None]] = []
        self._on_close: list[Callable[[], None]] = []

    @classmethod
    def open(cls, directory: Path, options: LoopOptions | None = None) -> LoopStore:
        store = cls(RecordingsFolder(directory), options or LoopOptions())
        store.folder.create()
        store._lease = RecorderLease.acquire(store.folder, store.make_room)
        try:
            recover(store.folder, store.make_room)
            store._index = TripsIndex.open(store.folder, store.options.trip_gap_s)
            store._identity = store.folder.identity()
            store._reserve_bytes = max((s.size_bytes for s in store.folder.segments()[-5:]), default=0)
            store.apply_retention()
        except BaseException:  # noqa: BLE001 - re-raised; only what was opened is closed on the way out
            store.close()
            raise
        return store

    @property
    def root(self) -> Path:
        return self.folder.root

    def on_delete(self, listener: Callable[[set[Path]], None]) -> None:
        """Be told which video paths retention deleted (the recorder forgets them for reach-back locks)."""
        self._on_delete.append(listener)

    def on_close(self, listener: Callable[[], None]) -> None:
        """Be called when recording ends, while the lease is still held (the signer finishes its queue)."""
        self._on_close.append(listener)

    def check_folder(self) -> None:
        """The folder is still the one opened: a different one means the card was swapped or unmounted."""
        if self.folder.identity() != self._identity:
            raise StorageError(f"recordings folder {self.folder.root} was replaced while recording "
                               "(card swapped or unmounted?)")

    def keep(self, stored: StoredSegment, sidecar: Sidecar, at_close: bool = False) -> None:
        """A segment was finished: index it, remember its size as the room the next one needs, apply retention."""
        self._trips.add(stored, sidecar)
        self._reserve_bytes = max(self._reserve_bytes, stored.size_bytes)
        self.apply_retention(raise_when_full=not at_close)

    def lock(self, stored: StoredSegment, t_utc: dt.datetime) -> StoredSegment:
        """Move a finished segment into `locked/` and index it there."""
        locked = self.folder.lock(stored, t_utc, self.make_room)
        if self._index is not None:
            self._index.add(locked)
        return locked

    def apply_retention(self, raise_when_full: bool = True) -> None:
        policy = self.options.retention
        plan = plan_retention(self.folder.segments(), policy, dt.datetime.now(dt.timezone.utc),
                              self.folder.free_bytes(), self._reserve_bytes)
        self._delete(plan.delete)
        if plan.delete:
            log.info("retention: deleted %d segments older than the retention age and %d for space",
                     len(plan.expired), len(plan.for_space))
        if plan.full:
            message = describe_full(plan, policy, str(self.folder.root))
            if raise_when_full:
                raise StorageFullError(message)  # the CLI prints it, once
            log.warning("%s", message)

    def make_room(self) -> None:
        """A write failed for lack of space before the budget said so: free the oldest unlocked segment,
        or stop with one line when retention allows nothing more (see `edge.record.atomic.RoomMaker`)."""
        segments = self.folder.segments()
        oldest = oldest_deletable(segments, self.options.retention)
        if oldest is None:
            locked_bytes = sum(s.size_bytes for s in segments if s.locked)
            raise StorageFullError(describe_disk_full(self.options.retention, locked_bytes, str(self.folder.root)))
        log.warning("the disk is full: deleting the oldest unlocked segment %s (%.1f MB) to keep recording",
                    oldest.name, oldest.size_bytes / 1e6)
        self._delete([oldest])
        self.deleted_for_full_disk += 1

    def close(self) -> None:
        listeners, self._on_close = self._on_close, []
        try:
            for listener in listeners:
                listener()
        finally:
            self._close_files()

    def _close_files(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    @property
    def _trips(self) -> TripsIndex:
        if self._index is None:
            raise RuntimeError("the trips index is opened by LoopStore.open, before any segment is kept")
        return self._index

    def _delete(self, segments: list[StoredSegment]) -> None:
        for segment in segments:
            self.folder.delete(segment)
        if not segments:
            return
        if self._index is not None:
            self._index.remove([s.name for s in segments])
        deleted = {s.video_path for s in segments}
        for listener in self._on_delete:
            listener(deleted)
