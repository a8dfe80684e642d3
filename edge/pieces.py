"""One long video across several workers: planned in pieces at its keyframes, each anonymized with an
overlap, joined again by remuxing (no re-encode at the joins).

A piece stores the frames `[first, end)` but runs the pipeline on `overlap` frames before
and after them as well, so each stored frame near a join is tracked, bracketed by
keyframes and checked for scene cuts as in one run over the whole file: the overlap is at
least the tracker's delay line, its gap bound and its hold (`track.*`), and its start is
put on the single run's keyframe grid (a multiple of `track.detect_every`). Frames of the
overlap are redacted like any other and then thrown away; nothing unredacted is written.

Each piece is encoded into its own file starting with a keyframe, with timestamps counted
from the video's first frame (`VideoEncoder(origin_ns=...)`), so the join only copies
packets and adds back each piece's offset: the joined file has the input's frame count and
the same timestamps one encoder writes. Pieces decode with PyAV from a seek to the input
keyframe before their overlap; frames carry the stream's own timestamps.
"""
from __future__ import annotations

import bisect
import heapq
import dataclasses
import json
import math
import shutil
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from edge.camera.opencv import check_pixels, stamp
from edge.config import Config, TrackConfig
from edge.detect.guard import GuardedDetector
from edge.errors import SourceError, StorageError
from edge.pipeline import Pipeline, RunStats
from edge.record.atomic import commit, discard, open_partial, write_atomic
from edge.record.encoder import CONTAINERS, EncoderSettings, VideoEncoder
from edge.redact import Redactor
from edge.sinks import FileSink
from edge.types import Frame

# Containers whose pieces join by copying packets with exact timestamps (MP4's and Matroska's muxers take
# a stream from a template and keep each packet's time); others are anonymized whole.
SPLITTABLE = frozenset({".mp4", ".m4v", ".mov", ".mkv"})
DEFAULT_PIECE_SECONDS = 60.0


@dataclass(frozen=True)
class Piece:
    """One piece of a video: the frames it stores and the frames it runs the pipeline on, by index in
    presentation order, with the stream timestamps that bound them."""

    number: int
    first: int  # first frame stored
    end: int  # one past the last frame stored
    run_first: int  # first frame given to the pipeline (the overlap before `first`)
    run_end: int  # one past the last frame given to the pipeline
    seek_pts: int  # the input keyframe at or before `run_first`, where decoding starts
    run_first_pts: int
    run_end_pts: int | None  # None: to the end of the stream
    run_pts: tuple[int, ...] = ()  # the timestamp of each frame run, so a decoded frame knows its index


@dataclass(frozen=True)
class VideoPlan:
    """How one input video is cut: its clock and its pieces."""

    source: Path
    frames: int
    time_base: Fraction
    start_pts: int  # the stream's first timestamp: time 0 of the frames' timeline
    fps: float
    pieces: tuple[Piece, ...]

    def media_ns(self, pts: int) -> int:
        return round((pts - self.start_pts) * self.time_base * 1_000_000_000)


def overlap_frames(track: TrackConfig) -> int:
    """Frames run before and after a piece: at least the tracker's delay line, gap bound and hold, rounded up to
    the keyframe cadence."""
    frames = max(track.delay_frames, track.max_gap_frames, track.hold_frames, track.detect_every)
    return math.ceil(frames / track.detect_every) * track.detect_every


def plan_video(source: Path, piece_seconds: float, track: TrackConfig) -> VideoPlan | None:
    """Pieces of about `piece_seconds`, each starting at an input keyframe; None when the video is too short
    to split (under 1.5 pieces) or its packets carry no timestamps."""
    try:
        with av.open(str(source)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
            rate = stream.guessed_rate or stream.average_rate
            time_base = stream.time_base
    except (av.error.FFmpegError, OSError):
        return None  # the whole-file path reports what is wrong with it
    if not packets or any(pts is None for pts, _ in packets) or time_base is None:
        return None
    packets.sort()
    frame_pts = [pts for pts, _ in packets]
    keyframes = [i for i, (_, key) in enumerate(packets) if key]
    if not keyframes or keyframes[0] != 0 or len(set(frame_pts)) != len(frame_pts):
        return None  # a stream that starts between keyframes, or repeats a timestamp: anonymized whole
    fps = float(rate) if rate else 30.0
    pieces = _pieces(frame_pts, keyframes, round(piece_seconds * fps), overlap_frames(track), track.detect_every)
    if len(pieces) < 2:
        return None
    return VideoPlan(source, len(frame_pts), Fraction(time_base), frame_pts[0], fps, tuple(pieces))


def _pieces(frame_pts: list[int], keyframes: list[int], piece_frames: int, overlap: int, cadence: int
            ) -> list[Piece]:
    """Cut points at the keyframes nearest each multiple of `piece_frames`; the last piece at least half as long."""
    total = len(frame_pts)
    cuts = [0]
    while True:
        target = cuts[-1] + piece_frames
        if target + piece_frames // 2 > total:
            break
        after = [k for k in keyframes if k > cuts[-1]]
        if not after:
            break
        cut = min(after, key=lambda k: abs(k - target))
        if cut + piece_frames // 2 > total:
            break
        cuts.append(cut)
    bounds = list(zip(cuts, cuts[1:] + [total]))
    pieces = []
    for number, (first, end) in enumerate(bounds):
        run_first = max(0, (first - overlap) // cadence * cadence)  # on the single run's keyframe grid
        run_end = min(total, end + overlap)
        seek = keyframes[max(0, bisect.bisect_right(keyframes, run_first) - 1)]
        pieces.append(Piece(number, first, end, run_first, run_end, frame_pts[seek], frame_pts[run_first],
                            frame_pts[run_end] if run_end < total else None, tuple(frame_pts[run_first:run_end])))
    return pieces


class PieceSource:
    """The frames `[run_first, run_end)` of one piece, decoded with PyAV from the keyframe before them."""

    media_clock = True

    def __init__(self, plan: VideoPlan, piece: Piece, max_pixels: int) -> None:
        self.name = f"{plan.source.name} piece {piece.number}"
        self._plan, self._piece = plan, piece
        try:
            self._container = av.open(str(plan.source))
            stream = self._container.streams.video[0]
            check_pixels(plan.source, stream.codec_context.width, stream.codec_context.height, max_pixels)
            self.width, self.height = stream.codec_context.width, stream.codec_context.height
            self._container.seek(piece.seek_pts, stream=stream, backward=True, any_frame=False)
            self._frames: Iterator[av.VideoFrame] = self._container.decode(stream)
        except av.error.FFmpegError as exc:
            raise SourceError(f"{plan.source}: cannot decode piece {piece.number}: {exc}") from None
        self.fps = plan.fps
        # A frame's index comes from its timestamp, not from counting: a frame the decoder drops (a corrupt
        # packet) must not shift the frames after it into the neighbouring piece's range.
        self._index_of = {pts: piece.run_first + i for i, pts in enumerate(piece.run_pts)}
        self._last = -1
        self.own_frames = 0  # frames of `[first, end)` delivered

    def read(self) -> Frame | None:
        piece = self._piece
        while (decoded := self._decode_next()) is not None:
            pts = decoded.pts
            if pts is None:
                continue
            if piece.run_end_pts is not None and pts >= piece.run_end_pts:
                return None
            index = self._index_of.get(pts)
            if index is None or index <= self._last:
                continue  # between the keyframe sought and the piece's first frame, or not a planned frame
            self._last = index
            frame = stamp(decoded.to_ndarray(format="bgr24"), index)
            frame.t_media_ns = self._plan.media_ns(pts)
            self.own_frames += piece.first <= index < piece.end
            return frame
        return None

    def _decode_next(self) -> av.VideoFrame | None:
        try:
            return next(self._frames, None)
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self._plan.source}: decoding failed in piece {self._piece.number}: {exc}") from None

    def close(self) -> None:
        self._container.close()


@dataclass(frozen=True)
class PieceJob:
    """One piece of one input, for a worker; `folder` holds the finished pieces until they are joined."""

    plan: VideoPlan
    piece: Piece
    folder: Path
    suffix: str

    @property
    def video(self) -> Path:
        return self.folder / f"{self.piece.number:05d}{self.suffix}"

    @property
    def record(self) -> Path:
        return self.folder / f"{self.piece.number:05d}.json"


def anonymize_piece(job: PieceJob, config: Config, detector: GuardedDetector, redactor: Redactor,
                    stop: threading.Event) -> RunStats:
    """One piece into `job.video`, then its record (offset and counts) into `job.record`: a piece with a record
    is complete."""
    plan, piece = job.plan, job.piece
    source = PieceSource(plan, piece, config.source.max_pixels)
    try:
        # Time 0 of every piece's count is the video's first frame (`VideoPlan.media_ns`).
        encoder = VideoEncoder(job.video, source.width, source.height, plan.fps,
                               EncoderSettings.from_config(config.record), origin_ns=0)
        own = RunStats()
        sink = FileSink(encoder, keep=range(piece.first, piece.end), on_stored=own.count_stored)
        stats = Pipeline(source, detector, redactor, sink, stop=stop, tracking=config.track).run()
    finally:
        source.close()
    if stop.is_set():
        raise StorageError(f"{plan.source}: stopped in piece {piece.number}")
    # The pipeline's counters include the overlap; the piece reports its own frames (its detector work and
    # times stay, since the overlap cost them).
    stats.frames_captured, stats.frames_stored = source.own_frames, own.frames_stored
    stats.faces, stats.plates, stats.whole_frame_redacted = own.faces, own.plates, own.whole_frame_redacted
    stats.dropped = source.own_frames - own.frames_stored
    record = {"offset_ticks": encoder.offset_ticks, "frames": encoder.frame_count,
              "stats": dataclasses.asdict(stats)}
    write_atomic(job.record, json.dumps(record, sort_keys=True).encode())
    return stats


def read_piece(job: PieceJob) -> tuple[int | None, RunStats] | None:
    """A finished piece's offset (None when it stored no frame) and counts, or None when it is not complete."""
    try:
        record = json.loads(job.record.read_text(encoding="utf-8"))
        stats = RunStats(**record["stats"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if record["frames"] and not job.video.is_file():
        return None
    return (record["offset_ticks"] if record["frames"] else None), stats


def join_pieces(pieces: list[tuple[Path, int]], output: Path, audio_from: Path | None = None) -> None:
    """Copy the pieces' packets into `output` (made atomically), each shifted by its offset, with the first audio
    stream of `audio_from` copied untouched beside them if it has one."""
    muxer = CONTAINERS[output.suffix.lower()][0]
    handle = open_partial(output)
    try:
        with av.open(handle, mode="w", format=muxer) as joined, ExitStack() as inputs:
            opened = [(inputs.enter_context(av.open(str(path))), offset) for path, offset in pieces]
            video = joined.add_stream_from_template(opened[0][0].streams.video[0])
            streams = [_video_packets(opened, video)]
            if audio_from is not None:
                source = inputs.enter_context(av.open(str(audio_from)))
                if source.streams.audio:
                    audio = _audio_stream(joined, source.streams.audio[0], output)
                    streams.append(_audio_packets(source, audio))
            for _, packet in heapq.merge(*streams, key=lambda item: item[0]):
                joined.mux(packet)
    except (av.error.FFmpegError, OSError) as exc:
        discard(handle, output)
        raise StorageError(f"cannot join the pieces of {output}: {exc}") from None
    except BaseException:
        discard(handle, output)
        raise
    commit(handle, output)


def _video_packets(pieces: list[tuple[av.container.InputContainer, int]], stream: av.VideoStream
                   ) -> Iterator[tuple[float, av.Packet]]:
    """Each piece's packets in decode order, shifted by its offset, with their decode time for interleaving."""
    for container, offset in pieces:
        source = container.streams.video[0]
        time_base = _time_base(source)
        for packet in container.demux(source):
            if packet.dts is None or packet.pts is None:  # the demuxer's end-of-stream marker
                continue
            packet.pts += offset
            packet.dts += offset
            packet.stream = stream
            yield float(packet.dts * time_base), packet


def _time_base(stream: av.stream.Stream) -> Fraction:
    if stream.time_base is None:
        raise StorageError(f"stream {stream.index} has no time base")
    return Fraction(stream.time_base)


def _audio_stream(joined: av.container.OutputContainer, source: av.AudioStream, output: Path) -> av.AudioStream:
    try:
        return joined.add_stream_from_template(source)
    except (av.error.FFmpegError, ValueError) as exc:
        raise StorageError(f"--keep-audio: the input's {source.codec_context.name} audio cannot be stored in "
                           f"{output.suffix} ({exc}); choose .mkv for the output") from None


def _audio_packets(container: av.container.InputContainer, stream: av.AudioStream
                   ) -> Iterator[tuple[float, av.Packet]]:
    """The input's audio packets, untouched but for their time, on the video's clock (its first frame is time 0)."""
    source = container.streams.audio[0]
    video = container.streams.video[0] if container.streams.video else None
    start_s = video.start_time * _time_base(video) if video and video.start_time is not None else Fraction(0)
    time_base = _time_base(source)
    shift = round(start_s / time_base)
    for packet in container.demux(source):
        if packet.dts is None or packet.pts is None:
            continue
        packet.pts -= shift  # every packet is kept, the encoder's priming before time 0 too
        packet.dts -= shift
        packet.stream = stream
        yield float(packet.dts * time_base), packet


def remove_pieces(folder: Path) -> None:
    """A video's pieces folder, and the folder of all pieces once it is empty."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:
        pass  # other videos' pieces are still there
