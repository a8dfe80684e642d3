"""The chain of signed manifests in one recordings folder, and the signer that extends it.

Every finished segment `X.mp4` gets `X.manifest` beside it: a signed record of the
video's and sidecar's sha256, time range, frame count, models, the config's hash, the
redaction and fail-closed counts, the software version, and the hash of the manifest
signed before it, so the folder's segments form one chain (per device key and folder;
`chain` names it). A later lock adds a signed amendment with the new sidecar's hash;
the manifest itself never changes, so the chain never breaks. The chain's head
(`dashcam-chain.json`, signed) names the newest manifest, so a removed newest segment
is noticed; a segment that loop recording deletes gets a signed line in
`dashcam-deletions.jsonl`, so its gap in the chain is explained.

`SegmentSigner` subscribes to the recorder's segment events and to the store's
deletions. Hashing a minute of video takes a while on a Pi, so it signs in a thread of
its own, in the order segments finished; a failure to sign is logged and never stops
recording: what is unsigned at the next start (a power cut, a full disk) is signed then,
marked `signed_after_restart`, and `recovered` when recovery rebuilt it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import queue
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.evidence.keys import DeviceKey
from edge.evidence.records import AMENDMENT, DELETION, HEAD, MANIFEST, RecordError, SignedRecord, sha256_file
from edge.record.atomic import append_line, fsync_dir, is_regular_file, write_atomic
from edge.record.events import SegmentEvent, SegmentEvents
from edge.record.loop import LoopStore
from edge.record.sidecar import Sidecar, SidecarError
from edge.record.store import (CHAIN_HEAD_NAME, DELETIONS_NAME, MANIFEST_SUFFIX, SEGMENT_STEM, SIDECAR_MAX_BYTES,
                               VIDEO_SUFFIX,
                               RecordingsFolder, StoredSegment, format_utc)

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = 1
LOCK_FIELDS = ("video", "locked", "locked_at_utc", "schema_version")  # what a lock or unlock may change
LOOP_RECORDING = "loop recording"
# Deleted while no signer ran (retention at the recorder's start, or by hand): said as it is.
MISSING_AT_START = "missing at the recorder's start (retention before signing began, or removed by hand)"


@dataclass(frozen=True)
class SigningContext:
    """What every manifest of one run states besides the segment itself."""

    config_sha256: str
    software: str


@dataclass(frozen=True)
class ManifestFile:
    """`X.manifest`: the segment's signed manifest and its signed amendments, oldest first."""

    manifest: SignedRecord
    amendments: tuple[SignedRecord, ...] = ()

    @property
    def sequence(self) -> int:
        """The link's number (0 for a malformed one: trusted only once its signature verifies)."""
        value = self.manifest.payload.get("sequence")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def current(self, key: Ed25519PublicKey) -> dict[str, Any]:
        """What the latest signed record says the files are (video name, sidecar hash, lock state); amendments
        that `key` did not sign, that belong to another manifest or that are malformed are left out."""
        payload = self.manifest.payload
        video: dict[str, Any] = dict(payload["video"]) if isinstance(payload.get("video"), dict) else {}
        sidecar: dict[str, Any] = dict(payload["sidecar"]) if isinstance(payload.get("sidecar"), dict) else {}
        locked, locked_at = bool(payload.get("locked", False)), payload.get("locked_at_utc")
        for amendment in self.valid_amendments(key):
            video["name"] = amendment.payload["video_name"]
            sidecar = dict(amendment.payload["sidecar"])
            locked, locked_at = bool(amendment.payload.get("locked")), amendment.payload.get("locked_at_utc")
        return {"video": video, "sidecar": sidecar, "locked": locked, "locked_at_utc": locked_at}

    def valid_amendments(self, key: Ed25519PublicKey) -> list[SignedRecord]:
        valid = []
        for number, amendment in enumerate(self.amendments, start=1):
            payload = amendment.payload
            if (amendment.is_signed_by(key) and payload.get("manifest") == self.manifest.sha256
                    and payload.get("number") == number and isinstance(payload.get("sidecar"), dict)
                    and _is_video_name(payload.get("video_name"))):
                valid.append(amendment)
        return valid

    def to_bytes(self) -> bytes:
        data = {"manifest": self.manifest.to_json(), "amendments": [a.to_json() for a in self.amendments]}
        return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> ManifestFile:
        """RecordError (or OSError) when `path` is not a manifest file."""
        with path.open("rb") as handle:
            return cls.parse(handle.read(SIDECAR_MAX_BYTES + 1))

    @classmethod
    def parse(cls, raw: bytes) -> ManifestFile:
        """RecordError when `raw` is not a manifest file's content."""
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # also too-long numbers, too-deep nesting
            raise RecordError(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("amendments", []), list):
            raise RecordError("a manifest file holds a manifest and a list of amendments")
        manifest = SignedRecord.from_json(data.get("manifest"))
        amendments = tuple(SignedRecord.from_json(a) for a in data.get("amendments", []))
        if manifest.kind != MANIFEST or any(a.kind != AMENDMENT for a in amendments):
            raise RecordError("records of the wrong kind in a manifest file")
        return cls(manifest, amendments)


def manifest_path(video_path: Path) -> Path:
    return video_path.with_suffix(MANIFEST_SUFFIX)


def read_deletions(path: Path) -> tuple[list[SignedRecord], int]:
    """The deletion log's records, and how many lines are not records (a torn last line after a power cut)."""
    records, damaged = [], 0
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = SignedRecord.from_json(json.loads(line))
        except (RecordError, ValueError, RecursionError):
            damaged += 1
            continue
        if record.kind == DELETION:
            records.append(record)
        else:
            damaged += 1
    return records, damaged


def _now() -> str:
    return format_utc(dt.datetime.now(dt.timezone.utc))


def _file_entry(path: Path) -> dict[str, Any]:
    digest, size = sha256_file(path)
    return {"name": path.name, "sha256": digest, "bytes": size}


def _sidecar_entry(path: Path, raw: bytes) -> dict[str, Any]:
    """The sidecar as a manifest or an amendment names it: from the very bytes that were read and parsed."""
    return {"name": path.name, "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}


class FolderChain:
    """The signing state of one recordings folder under one device key. Not thread-safe: `SegmentSigner`
    serializes its calls."""

    def __init__(self, folder: RecordingsFolder, key: DeviceKey, chain_id: str, sequence: int,
                 head_sha256: str | None) -> None:
        self.folder = folder
        self.key = key
        self.chain_id = chain_id
        self.sequence = sequence
        self.head_sha256 = head_sha256

    @classmethod
    def open(cls, folder: RecordingsFolder, key: DeviceKey,
             manifests: Iterable[ManifestFile] | None = None) -> FolderChain:
        """Continue the folder's chain from its head (or its newest manifest, after a crash between the two);
        start a new one in a folder without one, or whose chain another key signed. `manifests`: the folder's,
        when the caller has read them already."""
        head = _read_head(folder.root / CHAIN_HEAD_NAME, key)
        chain_id, sequence, head_sha = (None, 0, None) if head is None else (
            str(head.payload["chain"]), int(head.payload["sequence"]), str(head.payload["manifest"]))
        for found in manifests if manifests is not None else (f for _p, f in manifests_in(folder)):
            payload = found.manifest.payload
            if payload.get("device") != key.fingerprint or not found.manifest.is_signed_by(key.public):
                continue
            if chain_id is None or (payload.get("chain") == chain_id and found.sequence > sequence):
                chain_id, sequence, head_sha = str(payload.get("chain")), found.sequence, found.manifest.sha256
        if chain_id is None:
            chain_id = secrets.token_hex(8)
            log.info("starting a new evidence chain %s in %s", chain_id, folder.root)
        repair_deletion_log(folder.root / DELETIONS_NAME)
        return cls(folder, key, chain_id, sequence, head_sha)

    def describe(self, segment: StoredSegment, context: SigningContext, after_restart: bool) -> dict[str, Any]:
        """The manifest's content about the segment (hashing its files: slow, touches no chain state)."""
        video = _file_entry(segment.video_path)
        sidecar_bytes, sidecar = _read_sidecar(segment.sidecar_path)
        return {
            "schema": MANIFEST_SCHEMA,
            "segment": segment.video_path.stem,
            "video": video,
            "sidecar": {**_sidecar_entry(segment.sidecar_path, sidecar_bytes),
                        "content_sha256": sidecar_content_sha256(sidecar)},
            "start_utc": sidecar.start_utc,
            "end_utc": sidecar.end_utc,
            "frame_count": sidecar.frame_count,
            "duration_ms": round(sidecar.duration_s * 1000),
            "models": dict(sidecar.models),
            "config_sha256": context.config_sha256,
            "software": context.software,
            "redaction": dataclasses.asdict(sidecar.redaction),
            "locked": sidecar.locked,
            "locked_at_utc": sidecar.locked_at_utc,
            "recovered": sidecar.recovered,
            "signed_after_restart": after_restart,
        }

    def append(self, video_path: Path, description: Mapping[str, Any]) -> ManifestFile:
        """Sign a described segment as the chain's next link; write its manifest, then the head."""
        payload = {**description, "device": self.key.fingerprint, "chain": self.chain_id,
                   "sequence": self.sequence + 1, "previous": self.head_sha256, "signed_utc": _now()}
        signed = ManifestFile(SignedRecord.sign(self.key.private, MANIFEST, payload))
        write_atomic(manifest_path(video_path), signed.to_bytes(), make_parents=False)
        self.sequence, self.head_sha256 = signed.sequence, signed.manifest.sha256
        self._write_head(video_path.stem)
        return signed

    def amend(self, segment: StoredSegment, current: ManifestFile) -> ManifestFile:
        return amend(self.key, segment, current)

    def log_deletion(self, manifest_file: Path, reason: str) -> None:
        """Append a signed line for the deleted segment whose manifest this is, then remove the manifest."""
        try:
            found = ManifestFile.read(manifest_file)
        except (OSError, RecordError) as exc:
            log.warning("cannot read %s to log its deletion (%s); removing it", manifest_file.name, exc)
        else:
            if not found.manifest.is_signed_by(self.key.public):
                log.warning("%s was not signed by this device's key: removed without a deletion line",
                            manifest_file.name)
                manifest_file.unlink(missing_ok=True)
                return
            payload = found.manifest.payload
            entry = {"device": self.key.fingerprint, "chain": payload.get("chain"), "sequence": found.sequence,
                     "manifest": found.manifest.sha256, "segment": payload.get("segment"),
                     "video_sha256": payload.get("video", {}).get("sha256"), "reason": reason,
                     "deleted_utc": _now()}
            record = SignedRecord.sign(self.key.private, DELETION, entry)
            append_line(self.folder.root / DELETIONS_NAME, record.to_line())
        manifest_file.unlink(missing_ok=True)
        fsync_dir(manifest_file.parent)

    def _write_head(self, segment: str) -> None:
        head = SignedRecord.sign(self.key.private, HEAD, {
            "device": self.key.fingerprint, "chain": self.chain_id, "sequence": self.sequence,
            "manifest": self.head_sha256, "segment": segment, "signed_utc": _now()})
        write_atomic(self.folder.root / CHAIN_HEAD_NAME, head.to_bytes(), make_parents=False)


def _is_video_name(value: Any) -> bool:
    return isinstance(value, str) and value.endswith(VIDEO_SUFFIX) and bool(
        SEGMENT_STEM.fullmatch(value.removesuffix(VIDEO_SUFFIX)))


def sidecar_content_sha256(sidecar: Sidecar) -> str:
    """sha256 of what a sidecar says apart from where the segment is and whether it is locked: a lock may
    change only those, so an amendment is refused for a sidecar whose content changed."""
    data = sidecar.to_json()
    for key in LOCK_FIELDS:
        data.pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def amend(key: DeviceKey, segment: StoredSegment, current: ManifestFile) -> ManifestFile:
    """The segment was locked or unlocked after it was signed: sign its new sidecar (and name) as an amendment,
    if the video is the one signed and the sidecar differs from the signed one in its lock fields only.
    Touches no chain state, so any process holding the key may call it."""
    video = _file_entry(segment.video_path)
    signed = current.manifest.payload
    if video["sha256"] != signed.get("video", {}).get("sha256"):
        raise RecordError(f"{segment.name} no longer matches its signed manifest: not amending it")
    sidecar_bytes, sidecar = _read_sidecar(segment.sidecar_path)
    if sidecar_content_sha256(sidecar) != signed.get("sidecar", {}).get("content_sha256"):
        raise RecordError(f"the sidecar of {segment.name} changed beyond its lock state since it was signed: "
                          "not amending it (`dashcam verify` reports it)")
    payload = {
        "manifest": current.manifest.sha256,
        "number": len(current.amendments) + 1,
        "video_name": segment.name,
        "sidecar": _sidecar_entry(segment.sidecar_path, sidecar_bytes),
        "locked": sidecar.locked,
        "locked_at_utc": sidecar.locked_at_utc,
        "signed_utc": _now(),
    }
    amended = ManifestFile(current.manifest, current.amendments + (SignedRecord.sign(key.private, AMENDMENT, payload),))
    write_atomic(manifest_path(segment.video_path), amended.to_bytes(), make_parents=False)
    return amended


def needs_amendment(key: DeviceKey, segment: StoredSegment, current: ManifestFile) -> bool:
    """Locked or unlocked, or renamed, since the latest signed record."""
    state = current.current(key.public)
    return bool(state["locked"]) != segment.locked or state["video"].get("name") != segment.name


def manifests_in(folder: RecordingsFolder) -> Iterable[tuple[Path, ManifestFile]]:
    """Every readable manifest in the folder and `locked/` (regular files only); unreadable ones are logged."""
    for directory in (folder.root, folder.locked_dir):
        if not directory.is_dir() or directory.is_symlink():
            continue
        for path in sorted(directory.glob(f"*{MANIFEST_SUFFIX}")):
            if not is_regular_file(path):
                continue
            try:
                yield path, ManifestFile.read(path)
            except (OSError, RecordError) as exc:
                log.warning("ignoring %s: not a readable manifest (%s)", path, exc)


def _read_head(path: Path, key: DeviceKey) -> SignedRecord | None:
    if not is_regular_file(path):
        return None
    try:
        head = SignedRecord.read(path)
    except (OSError, RecordError) as exc:
        log.warning("ignoring the chain head %s (%s): continuing from the newest manifest", path, exc)
        return None
    if head.kind != HEAD or not head.is_signed_by(key.public):
        log.warning("the chain head in %s was signed by another key: this device starts a chain of its own",
                    path.parent)
        return None
    return head


def _read_sidecar(path: Path) -> tuple[bytes, Sidecar]:
    """The sidecar's bytes (what is hashed) and what they say, from one read."""
    with path.open("rb") as handle:
        raw = handle.read(SIDECAR_MAX_BYTES + 1)
    try:
        return raw, Sidecar.from_json(json.loads(raw))
    except (ValueError, RecursionError, SidecarError) as exc:
        raise RecordError(f"{path.name} is not a readable sidecar: {exc}") from None


def repair_deletion_log(path: Path) -> None:
    """Cut a line a power cut tore off mid-write, so the next line starts on a line of its own."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("cutting a torn last line (%d bytes) from %s", len(data) - keep, path.name)
        with path.open("r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())


class SegmentSigner:
    """Signs every finished segment of a folder in a thread of its own, in order; logs deletions.

    Build it with `open` after `LoopStore.open` (recovery done): it queues what is unsigned,
    moves and amends what a crash left half-locked, and logs manifests whose segments are gone.
    """

    def __init__(self, chain: FolderChain, context: SigningContext) -> None:
        self._chain = chain
        self._context = context
        self._lock = threading.Lock()  # chain state: the signing thread and deletions in the recorder's thread
        self._queue: queue.Queue[tuple[str, bool] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="signer", daemon=True)
        self._closing = threading.Event()
        self.signed = 0
        self.failed = 0

    @classmethod
    def open(cls, folder: RecordingsFolder, key: DeviceKey, context: SigningContext) -> SegmentSigner:
        manifests = dict(manifests_in(folder))  # read once: the chain's head and the catch-up both need them
        signer = cls(FolderChain.open(folder, key, manifests.values()), context)
        signer._catch_up(manifests)
        signer._thread.start()
        return signer

    def watch(self, store: LoopStore, events: SegmentEvents) -> None:
        """Sign what `events` announces, log what `store` deletes, and finish the queue when `store` closes
        (before its lease is released)."""
        events.subscribe(self.on_segment)
        store.on_delete(self.on_deleted)
        store.on_close(self.close)

    @property
    def chain(self) -> FolderChain:
        return self._chain

    def on_segment(self, event: SegmentEvent) -> None:
        """Segment events subscriber: quick, the work is queued."""
        self._queue.put((event.video_path.stem, False))

    def on_deleted(self, videos: set[Path]) -> None:
        """`LoopStore.on_delete` listener: each deleted segment's manifest becomes a deletion-log line."""
        for video in sorted(videos):
            path = manifest_path(video)
            if is_regular_file(path):
                self._under_lock(lambda p=path: self._chain.log_deletion(p, LOOP_RECORDING), video.name)

    def close(self) -> None:
        """Sign this run's queued segments, then stop the thread; a second call does nothing. What the start-up
        queued and is not signed yet (a folder of old footage) waits for the next start: stopping stays quick."""
        if self._thread.is_alive():
            self._closing.set()
            self._queue.put(None)
            self._thread.join()

    def _catch_up(self, manifests: dict[Path, ManifestFile]) -> None:
        """Start-up: orphaned manifests are logged as deleted; unsigned or half-locked segments are queued
        (a segment whose manifest beside it is this key's and up to date has nothing to do)."""
        folder = self._chain.folder
        key = self._chain.key
        segments = folder.segments()
        present = {s.video_path.stem for s in segments}
        for path, found in manifests.items():
            if path.stem in present:
                continue
            if path.parent == folder.locked_dir or found.current(key.public)["locked"]:
                # Locked footage is never deleted by dashcam: its manifest stays, so `dashcam verify` reports it.
                log.error("the locked segment %s is missing; its manifest is kept as the record of it", path.stem)
                continue
            self._under_lock(lambda p=path: self._chain.log_deletion(p, MISSING_AT_START), path.name)
        for segment in segments:
            beside = manifests.get(manifest_path(segment.video_path))
            if beside is None or not beside.manifest.is_signed_by(key.public) or needs_amendment(key, segment, beside):
                self._queue.put((segment.video_path.stem, True))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            stem, after_restart = item
            try:
                if not (after_restart and self._closing.is_set()):
                    self._settle(stem, after_restart)
            except Exception as exc:  # noqa: BLE001 - one bad segment must not end signing for the whole run
                self.failed += 1
                log.warning("could not sign %s (%s): it is retried at the next start", stem, exc)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def wait_until_idle(self) -> None:
        """Until everything queued so far is settled (start-up catch-up included)."""
        self._queue.join()

    def _settle(self, stem: str, after_restart: bool) -> None:
        """Make the segment's manifest match it: move it beside the video, sign it, or amend it for a lock."""
        segment = self._chain.folder.find(stem)
        if segment is None:
            return  # deleted before it was signed: nothing in the chain to explain
        path = manifest_path(segment.video_path)
        elsewhere = _other_folder_path(self._chain.folder, path)
        if not is_regular_file(path) and is_regular_file(elsewhere):  # a crash between a lock's moves
            os.replace(elsewhere, path)
            fsync_dir(path.parent)
        if is_regular_file(path):
            current = ManifestFile.read(path)
            if not current.manifest.is_signed_by(self._chain.key.public):
                log.warning("%s is not signed by this device's key: left as it is (`dashcam verify` reports it)",
                            path.name)
                return
            if needs_amendment(self._chain.key, segment, current):
                with self._lock:
                    self._chain.amend(segment, current)
            return
        description = self._chain.describe(segment, self._context, after_restart)  # outside the lock: slow
        with self._lock:
            if not is_regular_file(segment.video_path):  # moved (a lock from the web app) or deleted meanwhile
                self._queue.put((stem, after_restart))  # settled again where it is now, if it still is
                return
            self._chain.append(segment.video_path, description)
            self.signed += 1

    def _under_lock(self, action: Any, what: str) -> None:
        try:
            with self._lock:
                action()
        except (OSError, RecordError) as exc:
            self.failed += 1
            log.warning("could not sign or log %s (%s): it is retried at the next start", what, exc)


def _other_folder_path(folder: RecordingsFolder, path: Path) -> Path:
    other = folder.root if path.parent == folder.locked_dir else folder.locked_dir
    return other / path.name
