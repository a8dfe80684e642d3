"""Start-up clean-up after a crash or power cut: finish what can be finished, delete what cannot.

Run by the recorder before it records, on the root and on `locked/`:
- `X.mp4.partial` (the segment being written) is kept when it holds decodable frames:
  renamed to `X.mp4` with a sidecar marked `"recovered": true`, built from the
  segment's last snapshot (`X.json.partial`: start time, counts, track, lock flag) and
  the frames actually decodable; a snapshot that says locked sends it to `locked/`.
  An empty or undecodable one is deleted.
- A finished video without a sidecar (crash between the two renames, or during a
  lock move) gets its sidecar back; a sidecar without a video (crash during a delete)
  and any other `dashcam_*.partial` are deleted.
- A symlink under a `dashcam_*` name was planted (dashcam makes none): the link is removed,
  its target never read or written.
Nothing is left as junk, and every action is logged.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from edge.errors import StorageError
from edge.record.atomic import PARTIAL_SUFFIX, RoomMaker, fsync_dir, is_regular_file, unique_path
from edge.record.sidecar import Sidecar
from edge.record.store import (SEGMENT_PREFIX, SIDECAR_SUFFIX, VIDEO_SUFFIX, RecordingsFolder, StoredSegment,
                               format_utc, parse_utc, read_sidecar, start_from_name, write_sidecar)

log = logging.getLogger(__name__)

_FALLBACK_FPS = 30.0


@dataclass(frozen=True)
class VideoProbe:
    frames: int
    fps: float | None
    width: int
    height: int
    codec: str
    span_s: float | None = None  # first decodable frame to the last, on the file's own clock



@dataclass
class RecoveryReport:
    recovered: list[tuple[str, int]] = field(default_factory=list)  # (video name, decodable frames)
    sidecars_restored: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.recovered or self.sidecars_restored or self.deleted)


def probe_video(path: Path) -> VideoProbe | None:
    """How many frames of a (possibly truncated) video decode; None when none do.

    Every packet is read, but only the last group of pictures is decoded: a truncated
    file is damaged at its end only, and decoding a whole minute would delay start-up
    on a Pi by tens of seconds.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            whole, tail = _split_last_gop(container, stream)
            stamps = whole + _decodable(stream, tail)
            if not stamps:
                return None
            rate = stream.average_rate or stream.guessed_rate
            return VideoProbe(len(stamps), float(rate) if rate else None, stream.width, stream.height,
                              stream.codec_context.name, _span_s(stamps, stream.time_base))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.debug("cannot open %s as video: %s", path, exc)
        return None


def _span_s(stamps: list[int | None], time_base: Fraction | None) -> float | None:
    """Seconds from the earliest presentation time to the latest (frames may be stored at variable rate)."""
    known = [t for t in stamps if t is not None]
    if not known or time_base is None:
        return None
    return float((max(known) - min(known)) * time_base)


def _split_last_gop(container: av.container.InputContainer, stream: av.VideoStream) -> tuple[list, list]:
    """The timestamps of the packets before the last keyframe (complete, since damage is at the end),
    and the packets from it on."""
    whole: list[int | None] = []
    tail: list = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.is_corrupt:
                break
            if packet.is_keyframe:
                whole.extend(p.pts for p in tail)
                tail = [packet]
            elif tail:
                tail.append(packet)
    except (av.error.FFmpegError, OSError) as exc:
        log.debug("demuxing stopped at the damaged end: %s", exc)
    return whole, tail


def _decodable(stream: av.VideoStream, packets: list) -> list[int | None]:
    """The timestamps of the frames these packets decode to, up to the damage."""
    stamps: list[int | None] = []
    try:
        for packet in packets:
            stamps.extend(frame.pts for frame in stream.codec_context.decode(packet))
        stamps.extend(frame.pts for frame in stream.codec_context.decode(None))
    except (av.error.FFmpegError, ValueError) as exc:
        log.debug("decoding stopped at the damaged end: %s", exc)
    return stamps


def recover(folder: RecordingsFolder, make_room: RoomMaker | None = None) -> RecoveryReport:
    """Clean up `folder` (locked/ first, so an interrupted lock move finds its sidecar in the root).

    `make_room` frees space when a sidecar cannot be written on a full disk (see `edge.record.atomic`).
    """
    report = RecoveryReport()
    try:
        for directory in (folder.locked_dir, folder.root):
            if directory.is_dir() and not directory.is_symlink():
                _remove_planted_links(directory, report)
                _recover_partial_videos(directory, folder, report, make_room)
                _restore_sidecars(directory, folder, report, make_room)
                _remove_leftovers(directory, report)
    except OSError as exc:
        raise StorageError(f"cannot clean up {folder.root} after a crash: {exc.strerror or exc}") from None
    _log(report)
    return report


def _ours(directory: Path, suffix: str) -> list[Path]:
    """dashcam's files with this suffix: regular files only, never what a symlink points at."""
    return sorted(p for p in directory.glob(f"{SEGMENT_PREFIX}*{suffix}") if is_regular_file(p))


def _remove_planted_links(directory: Path, report: RecoveryReport) -> None:
    """A symlink under one of dashcam's names was not made by dashcam: remove the link (its target is untouched)."""
    for link in sorted(p for p in directory.glob(f"{SEGMENT_PREFIX}*") if p.is_symlink()):
        log.warning("removing the symbolic link %s: dashcam never makes links, and never writes through one", link)
        link.unlink()
        report.deleted.append(link.name)


def _recover_partial_videos(directory: Path, folder: RecordingsFolder, report: RecoveryReport,
                            make_room: RoomMaker | None) -> None:
    for partial in _ours(directory, VIDEO_SUFFIX + PARTIAL_SUFFIX):
        final = partial.with_name(partial.name.removesuffix(PARTIAL_SUFFIX))
        snapshot_path = final.with_suffix(SIDECAR_SUFFIX + PARTIAL_SUFFIX)
        probe = probe_video(partial)
        if probe is None:
            partial.unlink()
            snapshot_path.unlink(missing_ok=True)
            report.deleted.append(partial.name)
            continue
        if os.path.lexists(final):  # never overwrite a finished segment: keep both
            final = unique_path(directory, final.stem, VIDEO_SUFFIX)
        os.replace(partial, final)
        fsync_dir(directory)
        sidecar = recovered_sidecar(final, probe, read_sidecar(snapshot_path))
        write_sidecar(final.with_suffix(SIDECAR_SUFFIX), sidecar, make_room)
        snapshot_path.unlink(missing_ok=True)
        report.recovered.append((final.name, probe.frames))
        if directory == folder.root:
            _lock_if_flagged(final, sidecar, folder, make_room)


def _lock_if_flagged(video: Path, sidecar: Sidecar, folder: RecordingsFolder, make_room: RoomMaker | None) -> None:
    """The snapshot says an incident lock covered this segment: finish the move the crash interrupted."""
    if not sidecar.locked:
        return
    now = dt.datetime.now(dt.timezone.utc)
    locked_at = sidecar.locked_at_utc
    folder.lock(StoredSegment(video, start_from_name(video.name) or now, video.stat().st_size, locked=False),
                parse_utc(locked_at) if locked_at else now, make_room)


def recovered_sidecar(video: Path, probe: VideoProbe, snapshot: Sidecar | None) -> Sidecar:
    """The snapshot's content (or what the name and the file say), with the frames that really decode."""
    base = snapshot or Sidecar(video=video.name, fps=None, codec=probe.codec)
    # The recorder's nominal rate first: a file stored at variable rate averages less.
    fps = base.fps or probe.fps or _FALLBACK_FPS
    span_s = probe.span_s if probe.span_s is not None else max(0, probe.frames - 1) / fps
    start = parse_utc(base.start_utc) if base.start_utc else start_from_name(video.name)
    note = "redaction counts and track cover the frames up to the last snapshot" if snapshot is not None else None
    return base.replace(
        video=video.name,
        start_utc=format_utc(start) if start else None,
        end_utc=format_utc(start + dt.timedelta(seconds=span_s)) if start else None,
        frame_count=probe.frames,
        duration_s=round(span_s + 1 / fps, 3) if probe.frames else 0.0,
        fps=fps,
        width=probe.width, height=probe.height,
        codec=base.codec if snapshot is not None else probe.codec,
        recovered=True,
        in_progress=False,
        recovered_note=note,
    )


def _restore_sidecars(directory: Path, folder: RecordingsFolder, report: RecoveryReport,
                      make_room: RoomMaker | None) -> None:
    for video in _ours(directory, VIDEO_SUFFIX):
        sidecar_path = video.with_suffix(SIDECAR_SUFFIX)
        if sidecar_path.exists() or not video.exists():  # gone: freed for space by `make_room` meanwhile
            continue
        moved_from = folder.root / sidecar_path.name  # an interrupted lock move left it in the root
        data = read_sidecar(moved_from) if directory == folder.locked_dir else None
        if data is None:
            snapshot = read_sidecar(video.with_suffix(SIDECAR_SUFFIX + PARTIAL_SUFFIX))
            probe = probe_video(video)
            if probe is None and directory == folder.root:
                video.unlink()
                report.deleted.append(video.name)
                continue
            # Locked evidence is never deleted, even when it no longer decodes.
            data = recovered_sidecar(video, probe or VideoProbe(0, None, 0, 0, "unknown"), snapshot)
        if directory == folder.locked_dir:
            data = data.replace(locked=True, locked_at_utc=data.locked_at_utc
                                or format_utc(dt.datetime.now(dt.timezone.utc)))
        write_sidecar(sidecar_path, data, make_room)
        report.sidecars_restored.append(sidecar_path.name)
        if directory == folder.locked_dir:
            moved_from.unlink(missing_ok=True)
        else:
            _lock_if_flagged(video, data, folder, make_room)


def _remove_leftovers(directory: Path, report: RecoveryReport) -> None:
    for leftover in _ours(directory, PARTIAL_SUFFIX):
        leftover.unlink()
        report.deleted.append(leftover.name)
    for sidecar in _ours(directory, SIDECAR_SUFFIX):
        if not sidecar.with_suffix(VIDEO_SUFFIX).exists():
            sidecar.unlink()
            report.deleted.append(sidecar.name)
    if report.deleted:
        fsync_dir(directory)


def _log(report: RecoveryReport) -> None:
    for name, frames in report.recovered:
        log.warning("recovered %s after a crash: %d decodable frames kept", name, frames)
    for name in report.sidecars_restored:
        log.warning("restored the missing sidecar %s", name)
    if report.deleted:
        log.warning("removed %d unusable crash leftovers: %s", len(report.deleted), ", ".join(report.deleted))
