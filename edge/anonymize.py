"""Offline anonymization: video and image files into another folder, the engine behind `dashcam anonymize`.

Each input is one job; a job that fails (corrupt, oversized, unwritable) is reported and
the others go on. Videos run through the same `Pipeline` as the camera (tracking, fail
closed) into one `VideoEncoder` each. Still images take `redact_still`, the one
still-image path, shared with `dashcam bench`: detect under the guard's deadline, redact
(a failed detection blurs the whole image, or drops it), nothing stored unredacted.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.camera.images import is_image, read_image
from edge.camera.opencv import VideoFileSource, stamp
from edge.config import Config
from edge.detect.guard import GuardedDetector
from edge.errors import SourceError, StorageError, UserError
from edge.pieces import join_pieces
from edge.pipeline import Pipeline, RunStats
from edge.record.encoder import CONTAINERS, EncoderSettings, VideoEncoder
from edge.record.images import write_image
from edge.redact import RedactedFrame, Redactor
from edge.sinks import FileSink
from edge.types import DetectionFailure, Frame, Verdict

VIDEO_SUFFIXES = frozenset(CONTAINERS)


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path
    keep_audio: bool = False  # copy the input's audio untouched (voices can identify people: off by default)


@dataclass(frozen=True)
class JobResult:
    job: Job
    stats: RunStats | None = None  # None when the job failed
    error: UserError | None = None


def is_media(path: Path) -> bool:
    return is_image(path) or path.suffix.lower() in VIDEO_SUFFIXES


def collect_jobs(inputs: Iterable[Path], output_dir: Path, recursive: bool = False,
                 keep_audio: bool = False) -> list[Job]:
    """One job per video or image; clear errors up front. A folder is listed, or with `recursive` searched,
    and its tree is kept under `output_dir`; videos keep their audio with `keep_audio`."""
    pairs: list[tuple[Path, Path]] = []  # (input, output path relative to output_dir)
    for item in inputs:
        if item.is_dir():
            candidates = item.rglob("*") if recursive else item.iterdir()
            found = sorted(p for p in candidates if p.is_file() and is_media(p))
            if not found:
                raise SourceError(f"no videos or images in folder {item}{' or below it' if recursive else ''}")
            pairs.extend((p, p.relative_to(item) if recursive else Path(p.name)) for p in found)
        elif item.is_file():
            if not is_media(item):
                raise SourceError(f"{item}: not a supported video ({', '.join(sorted(VIDEO_SUFFIXES))}) or image")
            pairs.append((item, Path(item.name)))
        else:
            raise SourceError(f"input not found: {item}")
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    for path, relative in pairs:
        target = output_dir / relative
        if target.resolve() == path.resolve():
            raise StorageError(f"refusing to overwrite the input {path}: choose another --output folder")
        if relative in seen:
            raise SourceError(f"two inputs share the name {relative} ({seen[relative]} and {path}); "
                              "anonymize them into separate folders")
        seen[relative] = path
        jobs.append(Job(path, target, keep_audio=keep_audio and not is_image(path)))
    return jobs


@dataclass(frozen=True)
class StillResult:
    verdict: Verdict
    redacted: RedactedFrame | None  # None: dropped (fail-closed `drop`)
    detect_s: float
    redact_s: float


def redact_still(frame: Frame, detector: GuardedDetector, redactor: Redactor) -> StillResult:
    """One still image: detect, then redact in place (the frame's own pixels are overwritten)."""
    started = time.perf_counter()
    verdict = detector.detect(frame.image_bgr, still=True)
    detected = time.perf_counter()
    redacted = redactor.redact(frame, verdict)
    return StillResult(verdict, redacted, detected - started, time.perf_counter() - detected)


def anonymize_image(job: Job, detector: GuardedDetector, redactor: Redactor, max_pixels: int) -> RunStats:
    started = time.perf_counter()
    image = read_image(job.source, max_pixels)
    read_s = time.perf_counter() - started
    result = redact_still(stamp(image, 0), detector, redactor)
    failure = result.verdict if isinstance(result.verdict, DetectionFailure) else None
    stats = RunStats(frames_captured=1, frames_detected=1, detector_failures=int(failure is not None),
                     detector_timeouts=int(failure is not None and failure.timed_out))
    # The per-photo progress line and the batch's summary report these.
    stats.stage_seconds["capture"] += read_s
    stats.stage_seconds["detect"] += result.detect_s
    stats.stage_seconds["redact"] += result.redact_s
    if result.redacted is not None:
        storing = time.perf_counter()
        write_image(job.output, result.redacted)
        stats.stage_seconds["store"] += time.perf_counter() - storing
        stats.count_stored(result.redacted)
    else:
        stats.dropped = 1
    stats.seconds = time.perf_counter() - started
    return stats


def anonymize_video(job: Job, config: Config, detector: GuardedDetector, redactor: Redactor,
                    stop: threading.Event) -> RunStats:
    """One video into `job.output`; with `keep_audio`, the video is encoded beside it first and then joined
    with the input's audio (`edge.pieces.join_pieces`, the same remux that joins a split video)."""
    source = VideoFileSource(job.source, realtime=False, max_pixels=config.source.max_pixels)
    encoded = video_only_path(job.output) if job.keep_audio else job.output
    try:
        sink = FileSink(VideoEncoder(encoded, source.width, source.height, source.fps,
                                            EncoderSettings.from_config(config.record)))
        stats = Pipeline(source, detector, redactor, sink, stop=stop, tracking=config.track).run()
    finally:
        source.close()
    if job.keep_audio and sink.encoder.frame_count:
        try:
            join_pieces([(encoded, 0)], job.output, audio_from=job.source)
        finally:
            encoded.unlink(missing_ok=True)
    return stats


def video_only_path(output: Path) -> Path:
    """Where a video waiting for its audio is encoded: hidden, beside its final name."""
    return output.with_name(f".{output.stem}.video-only{output.suffix}")


def run_job(job: Job, config: Config, detector: GuardedDetector, redactor: Redactor,
            stop: threading.Event) -> JobResult:
    """One input into its output (made atomically); a problem with this input is its result, not an exception."""
    def work() -> RunStats:
        job.output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a --recursive tree
        return (anonymize_image(job, detector, redactor, config.source.max_pixels) if is_image(job.source)
                else anonymize_video(job, config, detector, redactor, stop))

    return job_result(job, work)


def job_result(job: Job, work: Callable[[], RunStats]) -> JobResult:
    """What `work` counted, as `job`'s result; a problem with this input (a UserError, or an OSError writing
    its output) is its result too, so the batch goes on."""
    try:
        return JobResult(job, stats=work())
    except UserError as exc:
        return JobResult(job, error=exc)
    except OSError as exc:
        return JobResult(job, error=StorageError(f"{job.output}: {exc.strerror or exc}"))


def anonymize_all(jobs: list[Job], config: Config, detector: GuardedDetector, redactor: Redactor,
                  stop: threading.Event, on_result: Callable[[JobResult], None]) -> RunStats:
    """Every job in order until `stop`; each result (or error) is handed to `on_result`; returns the totals."""
    total = RunStats()
    for job in jobs:
        if stop.is_set():
            break
        result = run_job(job, config, detector, redactor, stop)
        if result.stats is not None:
            total.add(result.stats)
        on_result(result)
    return total
