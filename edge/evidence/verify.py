"""`dashcam verify`: check footage against a device's public key, with nothing but the files.

For each segment: the manifest's signature, its amendments', that the video and the
sidecar are byte for byte what was signed, and that the manifest sits under its
segment's name. For the chain: each manifest names the hash of the one signed before
it; a missing link must be explained by a signed deletion-log line, or (in an export)
by the signed export statement, which lists every segment and file it holds, so a
removed first or last segment is noticed too. In a recordings folder the signed head
names the newest manifest, so a removed newest segment is noticed.

The result is one line per segment and per gap, and a summary; `ok` only when nothing failed.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.errors import SourceError
from edge.evidence.chain import ManifestFile, read_deletions
from edge.evidence.keys import PUBLIC_NAME, fingerprint, load_public_key
from edge.evidence.records import DELETION, EXPORT, HEAD, RecordError, SignedRecord, sha256_file
from edge.record.store import CHAIN_HEAD_NAME, DELETIONS_NAME, LOCKED_DIR, MANIFEST_SUFFIX, VIDEO_SUFFIX

STATEMENT_NAME = "export-statement.json"


@dataclass
class VerifyReport:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verified: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, line: str) -> None:
        self.lines.append(f"FAIL  {line}")
        self.failures.append(line)


@dataclass(frozen=True)
class _Segment:
    path: Path  # the manifest file
    file: ManifestFile | None
    sequence: int = 0
    chain: str = ""


@dataclass
class _Inputs:
    key: Ed25519PublicKey
    key_from_folder: bool
    manifests: list[Path]
    videos: list[Path]
    deletions: list[SignedRecord]
    damaged_deletions: int = 0
    head: SignedRecord | None = None
    statement: SignedRecord | None = None
    folder: Path | None = None


def verify(target: Path, key_path: Path | None = None) -> VerifyReport:
    """Verify a folder (an export or a recordings folder) or one segment (its video or its manifest)."""
    inputs = _gather(target, key_path)
    report = VerifyReport()
    if inputs.key_from_folder:
        report.notes.append(f"the public key was taken from the folder itself ({PUBLIC_NAME}): a forger would ship "
                            f"their own, so check that its fingerprint {fingerprint(inputs.key)} is the one the "
                            "dashcam's owner gave you (`dashcam key --show`)")
    segments = [_check_segment(path, inputs, report) for path in inputs.manifests]
    signed_videos = {s.path.with_suffix(VIDEO_SUFFIX) for s in segments}
    for video in inputs.videos:
        if video not in signed_videos:
            report.fail(f"{video.name}: no manifest: this video is not signed")
    good_deletions = _check_deletions(inputs, report)
    if inputs.head is not None and not inputs.head.is_signed_by(inputs.key):
        report.fail(f"{CHAIN_HEAD_NAME}: the chain's head does not verify (altered or not this device's)")
        inputs.head = None
    if inputs.statement is not None:
        _check_statement(inputs, segments, report)
    _check_chains([s for s in segments if s.file is not None], good_deletions, inputs, report)
    return report


# ---- what to check ----------------------------------------------------------------------------------------------

def _gather(target: Path, key_path: Path | None) -> _Inputs:
    if target.is_dir():
        folders = [target] + ([target / LOCKED_DIR] if (target / LOCKED_DIR).is_dir() else [])
        manifests = sorted(p for f in folders for p in f.glob(f"*{MANIFEST_SUFFIX}") if p.is_file())
        videos = sorted(p for f in folders for p in f.glob(f"*{VIDEO_SUFFIX}") if p.is_file())
        folder: Path | None = target
    elif target.is_file() and target.suffix in (VIDEO_SUFFIX, MANIFEST_SUFFIX):
        manifests = [target.with_suffix(MANIFEST_SUFFIX)] if target.with_suffix(MANIFEST_SUFFIX).is_file() else []
        videos = [target.with_suffix(VIDEO_SUFFIX)] if target.with_suffix(VIDEO_SUFFIX).is_file() else []
        folder = None
    elif target.exists():
        raise SourceError(f"{target} is not a folder, a segment video ({VIDEO_SUFFIX}) or a manifest "
                          f"({MANIFEST_SUFFIX})")
    else:
        raise SourceError(f"{target} does not exist")
    base_dir = target if target.is_dir() else target.parent
    says_footage = folder is not None and any((base_dir / n).is_file() for n in (CHAIN_HEAD_NAME, STATEMENT_NAME))
    if not manifests and not videos and not says_footage:
        raise SourceError(f"nothing to verify in {target}: no segment videos or manifests")
    base = target if target.is_dir() else target.parent
    key_from_folder = key_path is None
    key_path = key_path or base / PUBLIC_NAME
    if not key_path.is_file():
        raise SourceError(f"no public key: pass --key FILE (the file `dashcam key --show` prints); "
                          f"{base / PUBLIC_NAME} is not there")
    deletions, damaged = read_deletions(base / DELETIONS_NAME)
    return _Inputs(load_public_key(key_path), key_from_folder, manifests, videos, deletions, damaged,
                   _optional_record(base / CHAIN_HEAD_NAME, HEAD) if folder else None,
                   _optional_record(base / STATEMENT_NAME, EXPORT) if folder else None, folder)


def _optional_record(path: Path, kind: str) -> SignedRecord | None:
    """The folder's head or statement; a damaged one is kept as an invalid record (it is then a failure)."""
    if not path.is_file():
        return None
    try:
        record = SignedRecord.read(path)
    except (OSError, RecordError):
        return SignedRecord(kind, {}, b"")  # verifies under no key: reported as altered
    return record if record.kind == kind else SignedRecord(kind, {}, b"")


def _check_segment(path: Path, inputs: _Inputs, report: VerifyReport) -> _Segment:
    try:
        found = ManifestFile.read(path)
    except (OSError, RecordError) as exc:
        report.fail(f"{path.name}: not a readable manifest ({exc})")
        return _Segment(path, None)
    payload = found.manifest.payload
    label = f"{path.with_suffix(VIDEO_SUFFIX).name}  #{found.sequence}"
    problems = _segment_problems(path, found, inputs.key)
    if problems:
        report.fail(f"{label}: {'; '.join(problems)}")
    else:
        report.verified += 1
        report.lines.append(f"OK    {label}  {_summary(payload, found.current(inputs.key))}")
    return _Segment(path, found if not problems or _signed(found, inputs.key) else None, found.sequence,
                    str(payload.get("chain", "")))


def _signed(found: ManifestFile, key: Ed25519PublicKey) -> bool:
    return found.manifest.is_signed_by(key)


def _segment_problems(path: Path, found: ManifestFile, key: Ed25519PublicKey) -> list[str]:
    payload = found.manifest.payload
    if not found.manifest.is_signed_by(key):
        return ["the manifest's signature does not verify (altered, or not signed by this key)"]
    problems = []
    if payload.get("device") != fingerprint(key):
        problems.append("the manifest names another device")
    valid = found.valid_amendments(key)
    for number, amendment in enumerate(found.amendments, start=1):
        if amendment not in valid:
            problems.append(f"amendment {number} does not verify (altered, or another manifest's)")
    current = found.current(key)
    video_name = current["video"].get("name")
    if not isinstance(video_name, str) or not video_name.endswith(VIDEO_SUFFIX) or "/" in video_name:
        return problems + ["the manifest names no video file"]
    if path.with_suffix(VIDEO_SUFFIX).name != video_name:
        problems.append(f"the manifest was renamed: it is {video_name}'s")
    problems += _file_problems(path.parent / video_name, payload.get("video", {}), "video")
    sidecar = current["sidecar"]
    problems += _file_problems(path.parent / (video_name.removesuffix(VIDEO_SUFFIX) + ".json"), sidecar, "sidecar")
    return problems


def _file_problems(path: Path, signed: Any, what: str) -> list[str]:
    if not isinstance(signed, Mapping):
        return [f"the manifest does not describe the {what}"]
    if not path.is_file():
        return [f"the {what} {path.name} is missing"]
    digest, size = sha256_file(path)
    if digest != signed.get("sha256") or size != signed.get("bytes"):
        return [f"the {what} is not the one signed (altered after recording)"]
    return []


def _summary(payload: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    redaction = payload.get("redaction", {})
    flags = "".join(f" {flag}" for flag, on in (("locked", current.get("locked")),
                                                 ("recovered", payload.get("recovered")),
                                                 ("signed-after-restart", payload.get("signed_after_restart")))
                    if on)
    return (f"{payload.get('start_utc', '?')}  {payload.get('frame_count', 0)} frames  "
            f"{redaction.get('faces', 0)} faces  {redaction.get('plates', 0)} plates  "
            f"{redaction.get('whole_frame_redacted_frames', 0)} blurred whole  "
            f"{redaction.get('dropped_frames', 0)} dropped{flags}")


def _check_deletions(inputs: _Inputs, report: VerifyReport) -> dict[tuple[str, int], SignedRecord]:
    """Signed deletion lines by (chain, sequence); a line that does not verify is a failure."""
    good: dict[tuple[str, int], SignedRecord] = {}
    for record in inputs.deletions:
        sequence = record.payload.get("sequence")
        if not record.is_signed_by(inputs.key) or record.kind != DELETION or not isinstance(sequence, int):
            report.fail(f"deletion log: the line for #{sequence} does not verify (altered or not this device's)")
            continue
        good[(str(record.payload.get("chain")), sequence)] = record
    if inputs.damaged_deletions:
        report.notes.append(f"the deletion log has {inputs.damaged_deletions} unreadable lines (a power cut "
                            "mid-write leaves at most one)")
    return good


def _check_statement(inputs: _Inputs, segments: list[_Segment], report: VerifyReport) -> None:
    statement = inputs.statement
    assert statement is not None and inputs.folder is not None
    if not statement.is_signed_by(inputs.key):
        report.fail(f"{STATEMENT_NAME}: the export statement's signature does not verify")
        return
    present = {s.file.manifest.sha256: s for s in segments if s.file is not None}
    for listed in statement.payload.get("segments", []):
        if listed.get("manifest") not in present:
            report.fail(f"{listed.get('segment')}  #{listed.get('sequence')}: listed in the export statement but "
                        "missing (removed or replaced)")
    listed_hashes = {s.get("manifest") for s in statement.payload.get("segments", [])}
    for manifest_sha, segment in present.items():
        if manifest_sha not in listed_hashes:
            report.fail(f"{segment.path.name}: not listed in the export statement (added after the export)")
    for name, signed in statement.payload.get("files", {}).items():
        problems = _file_problems(inputs.folder / name, signed, "file")
        if problems:
            report.fail(f"{name}: {problems[0]}")


def _check_chains(segments: list[_Segment], deletions: dict[tuple[str, int], SignedRecord], inputs: _Inputs,
                  report: VerifyReport) -> None:
    chains: dict[str, list[_Segment]] = {}
    for segment in segments:
        chains.setdefault(segment.chain, []).append(segment)
    for chain, links in chains.items():
        links.sort(key=lambda s: s.sequence)
        _check_links(chain, links, deletions, inputs.statement is not None, report)
        first, last = links[0].sequence, links[-1].sequence
        head = inputs.head
        if head is not None and head.payload.get("chain") == chain:
            _check_ends(chain, first, last, head, links, deletions, report)
        elif inputs.statement is None and inputs.folder is not None:
            report.fail(f"chain {chain}: neither {STATEMENT_NAME} nor {CHAIN_HEAD_NAME} is here, so whether segments "
                        f"before #{first} or after #{last} were removed cannot be told")
        report.notes.append(f"chain {chain}: sequences {first}-{last}")


def _check_links(chain: str, links: list[_Segment], deletions: dict[tuple[str, int], SignedRecord],
                 exported: bool, report: VerifyReport) -> None:
    for before, after in zip(links, links[1:]):
        assert before.file is not None and after.file is not None
        previous = after.file.manifest.payload.get("previous")
        if after.sequence == before.sequence:
            report.fail(f"#{after.sequence}: two manifests with one sequence number ({before.path.name}, "
                        f"{after.path.name})")
        elif after.sequence == before.sequence + 1 and previous != before.file.manifest.sha256:
            report.fail(f"#{after.sequence}: does not follow #{before.sequence} in the chain (a manifest was replaced)")
        elif after.sequence > before.sequence + 1:
            _explain_gap(chain, before.sequence + 1, after.sequence - 1, previous, deletions, report, exported)


def _explain_gap(chain: str, first: int, last: int, previous: Any, deletions: dict[tuple[str, int], SignedRecord],
                 report: VerifyReport, exported: bool = False) -> None:
    """Sequences first..last are not here: each must be a signed deletion, or (in an export, whose signed
    statement lists what it holds) a segment the export left out, such as one of another trip."""
    missing = [n for n in range(first, last + 1) if (chain, n) not in deletions]
    deleted = last - first + 1 - len(missing)
    if deleted:
        reasons = sorted({str(deletions[(chain, n)].payload.get("reason")) for n in range(first, last + 1)
                          if (chain, n) in deletions})
        report.lines.append(f"GAP   #{first}-{last}: {deleted} deleted (signed deletion log: {'; '.join(reasons)})")
    last_deleted = deletions.get((chain, last))
    if not missing and previous is not None and last_deleted is not None \
            and last_deleted.payload.get("manifest") != previous:
        report.fail(f"#{last + 1}: does not follow the deleted #{last} in the chain (a manifest was replaced)")
    if missing and exported:
        report.lines.append(f"GAP   #{_ranges(missing)}: not part of this export")
    elif missing:
        report.fail(f"#{_ranges(missing)}: missing from the chain and not in the deletion log (segments removed?)")


def _check_ends(chain: str, first: int, last: int, head: SignedRecord, links: list[_Segment],
                deletions: dict[tuple[str, int], SignedRecord], report: VerifyReport) -> None:
    """In a recordings folder: from the first sequence to the head's, everything is here or logged as deleted."""
    if first > 1:
        _explain_gap(chain, 1, first - 1, links[0].file.manifest.payload.get("previous") if links[0].file else None,
                     deletions, report)
    head_sequence = int(head.payload.get("sequence", 0))
    if head_sequence > last:
        _explain_gap(chain, last + 1, head_sequence, None, deletions, report)
    elif head_sequence == last and links[-1].file is not None \
            and head.payload.get("manifest") != links[-1].file.manifest.sha256:
        report.fail(f"#{last}: not the manifest the chain's head names (replaced)")


def _ranges(numbers: list[int]) -> str:
    parts, start = [], numbers[0]
    for a, b in zip(numbers, numbers[1:] + [None]):
        if b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            if b is not None:
                start = b
    return ", #".join(parts)
