"""The recordings folder on disk: segment names, the `locked/` folder, listing, locking and deleting.

Layout of `<recordings>/`:

    dashcam_2026-11-21_22-37-37Z.mp4 + .json   finished segments (video + sidecar)
    dashcam_...mp4.partial + .json.partial      the segment being written and its snapshot
    locked/dashcam_...mp4 + .json               locked segments: never deleted automatically
    index.sqlite3                               the trips index (derived; rebuilt from sidecars)
    dashcam.pid                                 held (flock) by the running recorder

Every change is a rename or an atomic write followed by a folder fsync, so a power cut
leaves something `edge.record.recovery` can finish or clean.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from edge.errors import StorageError
from edge.record.atomic import (FOLDER_MODE, RoomMaker, fsync_dir, is_regular_file, make_output_folder, open_regular,
                               partial_path, unique_path, write_atomic)
from edge.record.sidecar import Sidecar

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "dashcam_"
VIDEO_SUFFIX = ".mp4"
SIDECAR_SUFFIX = ".json"
LOCKED_DIR = "locked"
INDEX_NAME = "index.sqlite3"
PID_NAME = "dashcam.pid"
# Evidence (edge.evidence): a signed manifest beside each video, the chain's head and the deletion log.
MANIFEST_SUFFIX = ".manifest"
CHAIN_HEAD_NAME = "dashcam-chain.json"
DELETIONS_NAME = "dashcam-deletions.jsonl"
UPLOAD_QUEUE_NAME = "dashcam-uploads.sqlite3"  # edge.upload: what is queued for, or was sent to, the remote
_NAME_TIME = "%Y-%m-%d_%H-%M-%SZ"
SIDECAR_MAX_BYTES = 16 << 20  # a day-long segment's track is a few MB; more is not a sidecar
_NAME_RE = re.compile(r"dashcam_(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\dZ)(_\d+)?")
# A segment's id: its file stem, as the recorder names it (fullmatch it before looking anything up).
SEGMENT_STEM = re.compile(r"dashcam_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\dZ(_\d+)?")


def segment_stem(t_utc: dt.datetime) -> str:
    return SEGMENT_PREFIX + t_utc.astimezone(dt.timezone.utc).strftime(_NAME_TIME)


def start_from_name(name: str) -> dt.datetime | None:
    """The UTC start encoded in a segment's name (to the second), or None for other files."""
    match = _NAME_RE.match(name)
    if match is None:
        return None
    return dt.datetime.strptime(match.group(1), _NAME_TIME).replace(tzinfo=dt.timezone.utc)


def parse_utc(text: str) -> dt.datetime:
    """A sidecar time such as `2026-11-21T22:37:37.123Z`."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_utc(t_utc: dt.datetime) -> str:
    return t_utc.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class StoredSegment:
    """One finished segment as found on disk."""

    video_path: Path
    start_utc: dt.datetime
    size_bytes: int
    locked: bool

    @property
    def name(self) -> str:
        return self.video_path.name

    @property
    def sidecar_path(self) -> Path:
        return self.video_path.with_suffix(SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> Sidecar | None:
    """A sidecar, or None when it is missing, not a regular file, or not a valid sidecar (a crash leftover)."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return None
    except (OSError, StorageError) as exc:
        log.warning("unreadable sidecar %s: %s", path, exc)
        return None
    try:
        with os.fdopen(fd, "rb") as reader:
            text = reader.read(SIDECAR_MAX_BYTES + 1)
        if len(text) > SIDECAR_MAX_BYTES:
            raise ValueError(f"larger than {SIDECAR_MAX_BYTES} bytes")
        return Sidecar.from_json(json.loads(text.decode("utf-8")))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError, JSONDecodeError and SidecarError are ValueErrors
        log.warning("unreadable sidecar %s: %s", path, exc)
        return None


def write_sidecar(path: Path, sidecar: Sidecar, make_room: RoomMaker | None = None) -> Path:
    """Sidecars live in folders that must already exist (see `atomic.open_partial`)."""
    return write_atomic(path, json.dumps(sidecar.to_json(), indent=2).encode(), make_parents=False,
                        make_room=make_room)


class RecordingsFolder:
    """Names and moves files under one recordings folder; knows nothing about encoding."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.locked_dir = root / LOCKED_DIR
        self.index_path = root / INDEX_NAME
        self.pid_path = root / PID_NAME

    def create(self) -> None:
        """Make the folders, or fail with one clear line (read-only card, path is a file...)."""
        make_output_folder(self.root, "recordings folder")
        try:
            self.locked_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"recordings folder {self.root} is not writable ({exc.strerror or exc}): "
                               "read-only card or wrong owner?") from None

    def identity(self) -> tuple[int, int]:
        """(device, inode) of the folder: a different value means the card was swapped or unmounted."""
        try:
            info = self.root.stat()
        except OSError as exc:
            raise StorageError(f"recordings folder {self.root} vanished ({exc.strerror}): "
                               "card removed or unmounted?") from None
        return info.st_dev, info.st_ino

    def segments(self) -> list[StoredSegment]:
        """Finished segments, unlocked and locked, oldest first (by the UTC time in their names)."""
        found = self._scan(self.root, locked=False) + self._scan(self.locked_dir, locked=True)
        return sorted(found, key=lambda s: (s.start_utc, s.name))

    def _scan(self, folder: Path, locked: bool) -> list[StoredSegment]:
        found = []
        if locked and folder.is_symlink():  # dashcam makes `locked/` a folder; a link could lead anywhere
            log.warning("%s is a symbolic link, not dashcam's folder: its files are ignored", folder)
            return []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"cannot list {folder}: {exc.strerror}") from None
        for entry in entries:
            start = start_from_name(entry.name)
            # Regular files only: a symlink planted in the folder is never listed, locked, exported or deleted through.
            if start is None or not entry.name.endswith(VIDEO_SUFFIX) or not entry.is_file(follow_symlinks=False):
                continue
            video = Path(entry.path)
            size = _size_or_zero(video)
            if size == 0 and not video.exists():
                continue  # deleted (retention in the recorder) while another process listed the folder
            found.append(StoredSegment(video, start, size + _size_or_zero(video.with_suffix(SIDECAR_SUFFIX)), locked))
        return found

    def new_video_path(self, t_utc: dt.datetime) -> Path:
        """A name for a new segment that is free in the root and in `locked/` (a later lock must not overwrite)."""
        stem = segment_stem(t_utc)
        candidate, n = self.root / f"{stem}{VIDEO_SUFFIX}", 0
        while any(os.path.lexists(p) for p in (candidate, partial_path(candidate), self.locked_dir / candidate.name)):
            n += 1
            candidate = self.root / f"{stem}_{n}{VIDEO_SUFFIX}"
        return candidate

    def find(self, name: str) -> StoredSegment | None:
        """A finished segment by file name or stem, in either folder."""
        found = self.find_all([name])
        return found[0] if found else None

    def find_all(self, names: list[str]) -> list[StoredSegment]:
        """The finished segments with these file names or stems, in the order given, from one listing
        (names no longer present are left out)."""
        by_stem: dict[str, StoredSegment] = {}
        for segment in self.segments():  # the oldest of two with one stem, as a scan in order finds it
            by_stem.setdefault(segment.video_path.stem, segment)
        found = (by_stem.get(Path(n).name.removesuffix(VIDEO_SUFFIX).removesuffix(SIDECAR_SUFFIX)) for n in names)
        return [s for s in found if s is not None]

    def lock(self, segment: StoredSegment, t_utc: dt.datetime, make_room: RoomMaker | None = None) -> StoredSegment:
        """Move a segment into `locked/` with `"locked": true` in its sidecar; idempotent."""
        if segment.locked:
            return segment
        already = self.locked_dir / segment.name
        if not os.path.lexists(segment.video_path) and is_regular_file(already):
            # Locked meanwhile by another hand (the web app, a reach-back lock): nothing to move.
            return StoredSegment(already, segment.start_utc, segment.size_bytes, locked=True)
        target = self.locked_dir / segment.name
        if os.path.lexists(target):  # never replace locked evidence; keep both under distinct names
            target = unique_path(self.locked_dir, segment.video_path.stem, VIDEO_SUFFIX)
        sidecar = (read_sidecar(segment.sidecar_path) or Sidecar(video=segment.name)).replace(
            video=target.name, locked=True, locked_at_utc=format_utc(t_utc))
        try:
            self.locked_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
            # Video first: a crash after this leaves locked/X.mp4 with its sidecar in the root,
            # which recovery moves over.
            os.replace(segment.video_path, target)
            manifest = segment.video_path.with_suffix(MANIFEST_SUFFIX)
            if is_regular_file(manifest):  # the signed manifest goes with it (edge.evidence amends it)
                os.replace(manifest, target.with_suffix(MANIFEST_SUFFIX))
            fsync_dir(self.locked_dir)
            write_sidecar(target.with_suffix(SIDECAR_SUFFIX), sidecar, make_room)
            segment.sidecar_path.unlink(missing_ok=True)
            fsync_dir(self.root)
        except OSError as exc:
            raise StorageError(f"cannot lock {segment.name}: {exc.strerror or exc}") from None
        return StoredSegment(target, segment.start_utc, segment.size_bytes, locked=True)

    def unlock(self, segment: StoredSegment, make_room: RoomMaker | None = None) -> StoredSegment:
        """Move a locked segment back into the loop (retention may then delete it); idempotent."""
        if not segment.locked:
            return segment
        target = self.root / segment.name
        if os.path.lexists(target) or os.path.lexists(partial_path(target)):
            target = unique_path(self.root, segment.video_path.stem, VIDEO_SUFFIX)
        sidecar = (read_sidecar(segment.sidecar_path) or Sidecar(video=segment.name)).replace(
            video=target.name, locked=False, locked_at_utc=None)
        try:
            # Sidecar first: after a crash here recovery deletes it (a sidecar without its video), and the
            # footage stays locked until the unlock is repeated; never the other way round.
            write_sidecar(target.with_suffix(SIDECAR_SUFFIX), sidecar, make_room)
            manifest = segment.video_path.with_suffix(MANIFEST_SUFFIX)
            if is_regular_file(manifest):
                os.replace(manifest, target.with_suffix(MANIFEST_SUFFIX))
            os.replace(segment.video_path, target)
            segment.sidecar_path.unlink(missing_ok=True)
            fsync_dir(self.root)
            fsync_dir(self.locked_dir)
        except OSError as exc:
            raise StorageError(f"cannot unlock {segment.name}: {exc.strerror or exc}") from None
        return StoredSegment(target, segment.start_utc, segment.size_bytes, locked=False)

    def delete(self, segment: StoredSegment) -> None:
        """Remove an unlocked segment: video first, so a crash leaves only an orphan sidecar."""
        if segment.locked:
            raise ValueError(f"refusing to delete locked segment {segment.name}")
        try:
            segment.video_path.unlink(missing_ok=True)
            segment.sidecar_path.unlink(missing_ok=True)
            fsync_dir(segment.video_path.parent)
        except OSError as exc:
            raise StorageError(f"cannot delete {segment.name}: {exc.strerror or exc}") from None

    def free_bytes(self) -> int:
        """Space left for an unprivileged writer on the recordings' filesystem."""
        try:
            info = os.statvfs(self.root)
        except OSError as exc:
            raise StorageError(f"cannot read free space of {self.root}: {exc.strerror}") from None
        return info.f_bavail * info.f_frsize


def _size_or_zero(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
