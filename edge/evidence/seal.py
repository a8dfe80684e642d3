"""What `dashcam export` adds so that a recipient can check the footage without trusting anyone.

Beside the copied clips, sidecars and GPX: each segment's manifest, the deletion-log lines
that explain gaps inside the exported stretch of the chain (only those: the whole log
would tell when else the car was driven), the device's public key, a README with the
exact command, and `export-statement.json`, signed, listing every segment (by manifest
hash) and every other file (by sha256), so a removed, added or altered file is noticed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from edge import __version__
from edge.evidence.chain import ManifestFile, manifest_path, read_deletions
from edge.evidence.keys import PUBLIC_NAME, DeviceKey, public_pem
from edge.evidence.records import EXPORT, RecordError, SignedRecord
from edge.evidence.verify import STATEMENT_NAME
from edge.record.atomic import is_regular_file, write_atomic
from edge.record.store import DELETIONS_NAME, RecordingsFolder, StoredSegment, format_utc

log = logging.getLogger(__name__)

README_NAME = "README-verify.txt"


@dataclass
class Seal:
    files: list[Path] = field(default_factory=list)  # written by `seal_export`
    entries: list[tuple[str, bytes]] = field(default_factory=list)  # name -> content, for a zip or a folder
    unsigned: list[str] = field(default_factory=list)  # segments without a manifest (recorded before signing)
    fingerprint: str = ""


def seal_entries(label: str, segments: list[StoredSegment], other_files: dict[str, bytes],
                 folder: RecordingsFolder, key: DeviceKey) -> Seal:
    """The small files that seal an export of `segments` whose other files (GPX...) are `other_files`:
    manifests, deletion lines, public key, README and, last, the signed statement over all of them."""
    seal = Seal(fingerprint=key.fingerprint)
    listed: list[dict[str, object]] = []
    chains: dict[str, list[int]] = {}
    for segment in segments:
        source = manifest_path(segment.video_path)
        try:
            data = source.read_bytes() if is_regular_file(source) else None
            found = ManifestFile.parse(data) if data is not None else None
        except (OSError, RecordError) as exc:
            log.warning("the manifest of %s is unreadable (%s): exported unsigned", segment.name, exc)
            data, found = None, None
        if found is None or data is None:
            seal.unsigned.append(segment.name)
            continue
        seal.entries.append((source.name, data))
        chain = str(found.manifest.payload.get("chain"))
        chains.setdefault(chain, []).append(found.sequence)
        listed.append({"segment": segment.video_path.stem, "sequence": found.sequence, "chain": chain,
                       "manifest": found.manifest.sha256})
    deletions = _deletion_lines(folder, chains)
    if deletions:
        seal.entries.append((DELETIONS_NAME, deletions))
    seal.entries += [(PUBLIC_NAME, public_pem(key.public)), (README_NAME, _readme(label, key.fingerprint).encode())]
    signed_files = {**other_files, **{name: data for name, data in seal.entries if not name.endswith(".manifest")}}
    statement = SignedRecord.sign(key.private, EXPORT, {
        "device": key.fingerprint, "label": label, "software": f"privacy-dashcam {__version__}",
        "exported_utc": format_utc(dt.datetime.now(dt.timezone.utc)), "segments": listed,
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in signed_files.items()},
        "unsigned": seal.unsigned})
    seal.entries.append((STATEMENT_NAME, statement.to_bytes()))
    return seal


def seal_export(output: Path, label: str, segments: list[StoredSegment], other_files: list[Path],
                folder: RecordingsFolder, key: DeviceKey) -> Seal:
    """Write the seal of an export folder beside the copied clips, sidecars and `other_files` (the GPX)."""
    others = {p.name: p.read_bytes() for p in other_files if p.suffix not in (".mp4", ".json", ".manifest")}
    seal = seal_entries(label, segments, others, folder, key)
    seal.files = [write_atomic(output / name, data) for name, data in seal.entries]
    return seal


def _deletion_lines(folder: RecordingsFolder, chains: dict[str, list[int]]) -> bytes:
    """The deletion lines inside the exported stretch of each chain."""
    records, _damaged = read_deletions(folder.root / DELETIONS_NAME)
    spans = {chain: (min(seqs), max(seqs)) for chain, seqs in chains.items()}
    kept = []
    for record in records:
        span = spans.get(str(record.payload.get("chain")))
        sequence = record.payload.get("sequence")
        if span is not None and isinstance(sequence, int) and span[0] < sequence < span[1]:
            kept.append(record.to_line())
    return b"".join(kept)


def _readme(label: str, device_fingerprint: str) -> str:
    return f"""Footage exported from a privacy-dashcam ({label})
=================================================

Every clip here was anonymized on the dashcam before it was stored: faces and licence plates
are blurred, and frames the detectors could not vouch for were blurred whole (the counts are in
each clip's .json sidecar). Each clip has a .manifest signed by the dashcam's device key; the
manifests form a chain, and export-statement.json (signed) lists every file of this export.

To check that nothing was altered, removed or added since the dashcam recorded it, install
privacy-dashcam (pip install privacy-dashcam, or from its source) and run, in this folder:

    dashcam verify . --key device-key.pub.pem

It prints one line per clip and exits 0 only when everything verifies. The public key is in this
folder for convenience; a forger could replace it, so compare its fingerprint with the one the
dashcam's owner gives you (`dashcam key --show` on the dashcam):

    {device_fingerprint}
"""
