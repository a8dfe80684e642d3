"""Opt-in upload of anonymized segments only: which ones, when, and a statement the remote can be verified by.

Off unless `upload.enabled` (automatic, inside `dashcam run`) or the owner runs
`dashcam upload`. Only finished, signed segments are chosen, each with its sidecar and
manifest, by `upload.select`: `locked` (incidents), `trips` (every segment of the run,
queued when the run ends), or `all` (each segment as it finishes). A segment locked after
it was sent is queued again (its sidecar and manifest changed). Uploads run in a thread of
their own, only while `upload.when` holds (e.g. joined to the home Wi-Fi), and never slow
recording: the recorder only adds a row to the queue.

After each batch the remote's `export-statement.json` (signed) is replaced by one listing
every segment sent so far, and the public key is put beside it, so `dashcam verify` on a
copy of the remote folder checks every file and notices a removed one.
"""
from __future__ import annotations

import datetime as dt
import logging
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge import __version__
from edge.config import UploadConfig
from edge.evidence.chain import ManifestFile, manifest_path
from edge.evidence.keys import PUBLIC_NAME, DeviceKey
from edge.evidence.records import EXPORT, RecordError, SignedRecord
from edge.evidence.verify import STATEMENT_NAME
from edge.record.atomic import is_regular_file
from edge.record.events import SegmentEvent, SegmentEvents
from edge.record.loop import LoopStore
from edge.record.store import RecordingsFolder, format_utc
from edge.upload.queue import UploadQueue
from edge.upload.rclone import Rclone, RcloneError, local_hashes

log = logging.getLogger(__name__)

POSTPONE_S = 0.5  # a segment whose manifest is not written yet (being hashed) is tried again this soon
MAX_QUICK_POSTPONES = 40


def current_ssid() -> str | None:
    """The Wi-Fi network this machine is joined to (iwgetid, else NetworkManager), or None."""
    for command in (["iwgetid", "-r"], ["nmcli", "-t", "-f", "active,ssid", "dev", "wifi"]):
        try:
            output = subprocess.run(command, capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in output.splitlines():
            ssid = line.removeprefix("yes:") if command[0] == "nmcli" else line
            if command[0] == "nmcli" and not line.startswith("yes:"):
                continue
            if ssid.strip():
                return ssid.strip()
    return None


def condition_for(config: UploadConfig, ssid: Callable[[], str | None] = current_ssid) -> Callable[[], bool]:
    if config.when == "wifi":
        return lambda: ssid() == config.wifi_ssid
    return lambda: True


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    postponed: int = 0
    waiting: bool = False  # the condition does not hold (not on the chosen Wi-Fi)
    last_error: str | None = None


class Uploader:
    def __init__(self, folder: RecordingsFolder, queue: UploadQueue, transport: Rclone, select: str,
                 may_upload: Callable[[], bool], key: DeviceKey, retry_s: float = 60.0) -> None:
        self.folder = folder
        self.queue = queue
        self._transport = transport
        self._select = select
        self._may_upload = may_upload
        self._key = key
        self._retry_s = retry_s
        self._this_run: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, folder: RecordingsFolder, config: UploadConfig, key: DeviceKey,
             ssid: Callable[[], str | None] = current_ssid) -> Uploader:
        transport = Rclone(config.remote, config.rclone_config, config.bandwidth)
        transport.check_installed()
        uploader = cls(folder, UploadQueue.open(folder.root), transport, config.select, condition_for(config, ssid),
                       key, config.retry_seconds)
        uploader.queue_existing()
        return uploader

    # ---- what is chosen ------------------------------------------------------------------------------------

    def queue_existing(self) -> int:
        """Queue what the rule chooses among the segments already in the folder (after a restart, or when
        uploads were just switched on); returns how many were new."""
        return sum(self.queue.add(s.video_path.stem) for s in self.folder.segments()
                   if self._select != "locked" or s.locked)

    def queue_segments(self, stems: list[str]) -> int:
        """The owner's explicit choice (`dashcam upload TRIP`): queued whatever the rule says."""
        return sum(self.queue.add(stem) for stem in stems)

    def on_segment(self, event: SegmentEvent) -> None:
        """Segment events subscriber: a row in the queue, nothing more, in the recorder's thread."""
        stem = event.video_path.stem
        if event.kind == "finished":
            self._this_run.append(stem)
        if event.kind == "locked":
            self.queue.requeue(stem)  # sent before the lock: its sidecar and manifest changed
        if self._select == "all" or event.locked:
            self.queue.add(stem)
        self._wake.set()

    def watch(self, store: LoopStore, events: SegmentEvents) -> None:
        events.subscribe(self.on_segment)
        store.on_close(self.close)

    # ---- sending -------------------------------------------------------------------------------------------

    def upload_pending(self) -> BatchResult:
        """Send every queued segment while the condition holds; then replace the remote's statement."""
        result = BatchResult()
        for stem in self.queue.pending():
            if self._stop.is_set():
                break
            if not self._may_upload():
                result.waiting = True
                break
            try:
                outcome = self._send(stem)
            except (RcloneError, OSError, RecordError) as exc:
                if self._stop.is_set():
                    break  # the run is stopping: the transfer was ended on purpose, sent again next time
                result.failed += 1
                result.last_error = f"{stem}: {exc}"
                self.queue.mark_failed(stem, str(exc))
                log.warning("upload of %s failed (%s); retried in %.0f s", stem, exc, self._retry_s)
                if isinstance(exc, RcloneError):
                    break  # the network or the remote: do not hammer it with the rest
                continue  # this segment's own files (a damaged manifest): the others still go
            if outcome == "sent":
                result.sent += 1
            elif outcome == "postponed":
                result.postponed += 1
        if result.sent:
            try:
                self._publish_statement()
            except (RcloneError, OSError) as exc:
                result.failed += 1
                result.last_error = f"statement: {exc}"
                log.warning("could not update the remote's statement (%s); it is at the next batch", exc)
        return result

    def _send(self, stem: str) -> str:
        segment = self.folder.find(stem)
        if segment is None:
            self.queue.mark_gone(stem)
            return "gone"
        manifest = manifest_path(segment.video_path)
        if not is_regular_file(manifest):
            return "postponed"  # being signed: never send footage without its manifest
        signed = ManifestFile.read(manifest)
        files = [segment.video_path, segment.sidecar_path, manifest]
        self._transport.copy(segment.video_path.parent, [f.name for f in files])
        checked = self._check_remote(files)
        self.queue.mark_done(stem, signed.manifest.sha256, signed.sequence,
                             str(signed.manifest.payload.get("chain", "")), sum(f.stat().st_size for f in files),
                             checked)
        log.info("uploaded %s (%s checked on the remote)", stem, checked)
        return "sent"

    def _check_remote(self, files: list[Path]) -> str:
        """Each file is on the remote with its size and every hash the remote reports; what was compared."""
        listing = self._transport.listing([f.name for f in files])
        compared: set[str] = {"size"}
        for path in files:
            remote = listing.get(path.name)
            if remote is None or remote.size != path.stat().st_size:
                raise RcloneError(f"{path.name} is not complete on the remote after the copy")
            local = local_hashes(path, set(remote.hashes))
            for name, value in local.items():
                if remote.hashes[name].lower() != value:
                    raise RcloneError(f"{path.name}: the remote's {name} differs from the local file's")
                compared.add(name)
        return "+".join(sorted(compared))

    def _publish_statement(self) -> None:
        done = self.queue.rows("done")
        statement = SignedRecord.sign(self._key.private, EXPORT, {
            "device": self._key.fingerprint, "label": "uploads", "software": f"privacy-dashcam {__version__}",
            "exported_utc": format_utc(dt.datetime.now(dt.timezone.utc)), "files": {}, "unsigned": [],
            "segments": [{"segment": r.segment, "sequence": r.sequence, "chain": r.chain,
                          "manifest": r.manifest_sha256} for r in done]})
        with tempfile.TemporaryDirectory(prefix="dashcam-statement-") as scratch:  # a signed list, no footage
            path = Path(scratch) / STATEMENT_NAME
            path.write_bytes(statement.to_bytes())
            self._transport.copy_file(path, STATEMENT_NAME)
        self._transport.copy_file(self._key.public_path, PUBLIC_NAME)

    # ---- the thread inside `dashcam run` -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        postponed_rounds = 0
        while not self._stop.is_set():
            result = self.upload_pending()
            postponed_rounds = postponed_rounds + 1 if result.postponed and not result.sent else 0
            if result.failed or result.waiting:
                timeout: float | None = self._retry_s
            elif result.postponed:
                # A manifest being written comes within seconds; one that does not (a segment the signer
                # could not sign) is tried at the retry pace, not twice a second.
                timeout = POSTPONE_S if postponed_rounds < MAX_QUICK_POSTPONES else self._retry_s
            else:
                timeout = None  # until a segment is queued
            self._wake.wait(timeout)
            self._wake.clear()

    def close(self) -> None:
        """Stop now (a transfer under way is ended and sent again next time); `trips` queues this run's segments."""
        if self._select == "trips":
            self.queue_segments(self._this_run)
        self._stop.set()
        self._transport.stop()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.queue.close()
