"""`dashcam wipe`: erase every recording from a recordings folder, e.g. before selling the car.

This module owns finding what belongs to dashcam in a recordings folder (segments,
sidecars, signed manifests, their `.partial` leftovers, `locked/`, the trips index and its
WAL files, the evidence chain's head and deletion log, the upload queue) and deleting it
while holding the recorder lease, so no recorder can start writing in between. Files that
dashcam did not name are left alone and reported.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SourceError, StorageError
from edge.record.atomic import fsync_dir
from edge.record.lease import RecorderLease, running_recorder
from edge.record.store import (CHAIN_HEAD_NAME, DELETIONS_NAME, INDEX_NAME, PID_NAME, SEGMENT_PREFIX,
                               UPLOAD_QUEUE_NAME, RecordingsFolder)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WipePlan:
    files: list[Path]
    total_bytes: int
    others: list[Path]  # not dashcam's: kept


def plan_wipe(folder: RecordingsFolder) -> WipePlan:
    """What a wipe would delete; raises when the folder is missing or a recorder holds it."""
    if not folder.root.is_dir():
        raise SourceError(f"no recordings folder {folder.root} (pass --recordings or --config)")
    pid = running_recorder(folder)
    if pid is not None:
        raise StorageError(f"a recorder (pid {pid}) is recording into {folder.root}: stop it first "
                           "(sudo systemctl stop dashcam)")
    return _scan(folder)


def _is_ours(path: Path) -> bool:
    name = path.name
    return (name.startswith(SEGMENT_PREFIX) or name.startswith(INDEX_NAME) or name.startswith(UPLOAD_QUEUE_NAME)
            or name in (PID_NAME, CHAIN_HEAD_NAME, DELETIONS_NAME))


def wipe(folder: RecordingsFolder) -> WipePlan:
    """Delete everything `plan_wipe` lists, holding the lease throughout; returns what was deleted."""
    lease = RecorderLease.acquire(folder)  # refuses if a recorder started since the plan was shown
    try:
        plan = plan_wipe_locked(folder)
        for path in plan.files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from None
        for directory in (folder.locked_dir, folder.root):
            if directory.is_dir():
                fsync_dir(directory)
    finally:
        lease.release()
    log.info("wiped %d files from %s", len(plan.files), folder.root)
    return plan


def plan_wipe_locked(folder: RecordingsFolder) -> WipePlan:
    """plan_wipe without the recorder check, for use while this process holds the lease."""
    plan = _scan(folder)
    return WipePlan([p for p in plan.files if p != folder.pid_path], plan.total_bytes, plan.others)


def _scan(folder: RecordingsFolder) -> WipePlan:
    files, others = [], []
    for directory in (folder.root, folder.locked_dir):
        for path in sorted(directory.iterdir()) if directory.is_dir() else []:
            if path.is_dir():
                if path != folder.locked_dir:
                    others.append(path)
            elif _is_ours(path):
                files.append(path)
            else:
                others.append(path)
    return WipePlan(files, sum(_size(p) for p in files), others)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
