"""`dashcam bench`'s engine: runs the real anonymization over an annotated input and scores it.

A video goes through `Pipeline` as `dashcam run` takes a file: the configured detectors
on keyframes, the tracker between them, the redactor. A scoring sink stands where the
segment writer would: it measures each `RedactedFrame`'s applied mask against the ground
truth and stores nothing. A folder of photos is anonymized one image at a time, as
`dashcam anonymize` does (every image detected; no tracking across unrelated photos, so
`track` settings do not apply). Only the current frame's mask is ever held.

Redaction overwrites each frame in place, so the stored-detail measure (edge.bench.stored)
gets its own copy of the source image: for a video a wrapper around the file source keeps
one per frame with ground-truth boxes until that frame is scored, for photos one image at a
time. These copies stay in memory, bounded, and are dropped when their frame is scored;
nothing unredacted is written or logged.

This module owns opening the input, loading its annotations, one scored run per config
and the report's provenance; `cli.py` only parses arguments and prints.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench.annotations import Annotations, MediaInfo, image_sizes, load_annotations
from edge.bench.coverage import boxes_mask
from edge.bench.metrics import DEFAULT_TAU, FrameOutcome, MetricsAccumulator
from edge.progress import Progress
from edge.bench.report import (BenchReport, PlotsUnavailable, RunReport, render_json, render_markdown,
                               reproducibility, write_plots, write_text)
from edge.bench.stored import boxes_hidden, outside_detail_lost
from edge.bench.truth import GroundTruth
from edge.camera import FrameSource
from edge.anonymize import redact_still
from edge.camera.images import read_image
from edge.camera.opencv import VideoFileSource, stamp
from edge.config import Config, RedactConfig, TrackConfig, load_config
from edge.detect.factory import build_detectors, guarded, model_ids
from edge.detect.guard import GuardedDetector
from edge.errors import ConfigError, SourceError, StorageError
from edge.pipeline import Pipeline
from edge.redact import RedactedFrame, Redactor, redaction_mask
from edge.types import DetectionFailure, Detections, Frame

log = logging.getLogger(__name__)

CLASS_TARGETS = ("face", "plate", "ignore")
# Config sections that change what is hidden; the others (source, gps, record) play no part in a benchmark,
# and gps may hold privacy-zone coordinates that must not end up in a published report.
RECORDED_SECTIONS = ("detect", "track", "redact")
# "detail" is the stored-detail measure, a part of "score"; the source copy it needs is timed in "capture".
_STAGES = ("capture", "detect", "redact", "score", "detail")


# ---- arguments ----------------------------------------------------------------------------------------------

def parse_class_map(items: Sequence[str]) -> dict[str, str]:
    """`["LP=plate", "0=face"]` -> {"LP": "plate", "0": "face"}; ConfigError names a bad item."""
    mapping = {}
    for item in items:
        name, _, target = item.rpartition("=")
        if not name.strip() or target.strip().lower() not in CLASS_TARGETS:
            raise ConfigError(f"--class-map {item!r}: expected NAME=face, NAME=plate or NAME=ignore")
        mapping[name.strip()] = target.strip().lower()
    return mapping


def named_configs(paths: Sequence[Path]) -> list[tuple[str, Config]]:
    """One (name, config) per file, named by its stem (made unique); no files: the defaults as 'default'."""
    if not paths:
        return [("default", load_config(None))]
    named, seen = [], set()
    for path in paths:
        name, suffix = Path(path).stem, 2
        while name in seen:
            name, suffix = f"{Path(path).stem}-{suffix}", suffix + 1
        seen.add(name)
        named.append((name, load_config(Path(path))))
    return named


def check_tau(tau: float) -> float:
    if not 0.0 <= tau <= 1.0:
        raise ConfigError(f"--tau must be between 0 and 1 (the share of a box that must be hidden), not {tau}")
    return tau


def require_plots() -> None:
    """Fail before any run when plots are asked for and matplotlib is missing."""
    try:
        import matplotlib.figure  # noqa: F401 - only probing that the optional extra is installed
    except ImportError:
        raise PlotsUnavailable("plots need matplotlib: pip install 'privacy-dashcam[plots]'") from None


# ---- the input and its annotations ------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchInput:
    """What is benchmarked: one video (the first `max_frames` frames, 0 = all) or a folder of images."""

    path: Path
    media: MediaInfo
    max_frames: int = 0

    @classmethod
    def open(cls, path: Path, max_frames: int = 0) -> BenchInput:
        path = Path(path)
        if max_frames < 0:
            raise ConfigError(f"--max-frames must be 0 (all) or more, not {max_frames}")
        if path.is_dir():
            sizes = image_sizes(path)
            if not sizes:
                raise SourceError(f"no images in {path} or its subfolders")
            return cls(path, MediaInfo.images(sizes), max_frames)
        if not path.exists():
            raise SourceError(f"input not found: {path}")
        source = VideoFileSource(path, realtime=False)
        try:
            count = source.declared_frame_count
            if max_frames:
                count = min(count, max_frames) if count else max_frames
            return cls(path, MediaInfo.video(count, source.width, source.height), max_frames)
        finally:
            source.close()

    @property
    def video(self) -> bool:
        return self.media.kind == "video"

    @property
    def unit(self) -> str:
        return "frame" if self.video else "image"

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": str(self.path), "kind": self.media.kind, "max_frames": self.max_frames}
        if self.video:
            data["frame_count"] = self.media.frame_count
            data["frame_size"] = list(self.media.frame_size or ())
        else:
            data["images"] = len(self.media.image_sizes or {})
        return data


def load_truth(subject: BenchInput, path: Path, fmt: str = "auto",
               classes: Mapping[str, str] | None = None) -> Annotations:
    """The ground truth for `subject`; SourceError when it cannot describe that kind of input."""
    try:
        truth = load_annotations(Path(path), fmt, media=subject.media, classes=classes)
    except ValueError:  # a per-image format asked for image sizes, but the input is a video
        raise SourceError(f"annotations {path} describe still images, but the input is a video") from None
    if truth.video != subject.video:
        wanted = "a video's frames" if subject.video else "still images"
        raise SourceError(f"annotations {path} ({truth.issues.format}) do not describe {wanted}, "
                          f"but the input {subject.path} is {'a video' if subject.video else 'an image folder'}")
    skipped = unannotated_images(subject, truth)
    if skipped:
        log.warning("%s: %d images of the input are not in the annotations and are not scored", path, skipped)
    return truth


def scored_images(subject: BenchInput, truth: Annotations) -> list[str]:
    """The images a run scores: those the annotations describe, in name order, at most `max_frames`."""
    keys = sorted(truth.truths)
    return keys[:subject.max_frames] if subject.max_frames else keys


def planned_count(subject: BenchInput, truth: Annotations) -> int | None:
    """How many frames or images each run will score (None: a video whose length is unknown)."""
    return subject.media.frame_count if subject.video else len(scored_images(subject, truth))


# ---- one run ------------------------------------------------------------------------------------------------

def run_bench(subject: BenchInput, truth: Annotations, config: Config, name: str, *, tau: float = DEFAULT_TAU,
              progress: Progress | None = None, detector: GuardedDetector | None = None) -> RunReport:
    """Anonymize `subject` with `config` and score what was hidden; the report's one column.

    `detector` replaces the config's detectors (tests pass scripted ones; the caller closes it,
    and the report then names no models).
    """
    accumulator = MetricsAccumulator(tau=check_tau(tau))
    models = model_ids(config.detect) if detector is None else {}
    used = detector or guarded(build_detectors(config.detect), config.detect, live=False)  # files: no live deadline
    try:
        if subject.video:
            fps, stage_ms = _run_video(subject, truth, config, used, accumulator, progress)
        else:
            fps, stage_ms = _run_images(subject, truth, config, used, accumulator, progress)
    finally:
        if detector is None:
            used.close()
    return RunReport(name, accumulator.result(), fps=round(fps, 2),
                     stage_ms={stage: round(ms, 2) for stage, ms in stage_ms.items()},
                     models=models, config=recorded_config(config))


def recorded_config(config: Config) -> dict[str, Any]:
    """The config sections that decide what is hidden, as plain data for the report."""
    return {section: dataclasses.asdict(getattr(config, section)) for section in RECORDED_SECTIONS}


def applied_redaction(frame: RedactedFrame | None, config: RedactConfig) -> np.ndarray | FrameOutcome:
    """What storage would hold hidden: the region mask, or the frame's fail-closed outcome."""
    if frame is None:
        return FrameOutcome.DROPPED
    if frame.counts.whole_frame:
        return FrameOutcome.WHOLE_FRAME
    return redaction_mask(frame.hidden, frame.image_bgr.shape[:2], config)


class _RawDetections:
    """Keyframe detections from the detect thread, held until their frame is scored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_index: dict[int, Detections] = {}

    def put(self, index: int, verdict: Detections | DetectionFailure) -> None:
        if isinstance(verdict, Detections):  # a failed keyframe has no detections to score
            with self._lock:
                self._by_index[index] = verdict

    def pop(self, index: int) -> Detections | None:
        with self._lock:
            return self._by_index.pop(index, None)


def stored_hidden(truth: GroundTruth, applied: np.ndarray | FrameOutcome, source_bgr: np.ndarray | None,
                  frame: RedactedFrame | None) -> np.ndarray | None:
    """Whether each ground-truth box's stored pixels lost their detail; None where the outcome decides
    (a frame hidden whole or dropped hides every box: the accumulator counts that)."""
    if isinstance(applied, FrameOutcome) or frame is None:
        return None
    if len(truth.xyxy) == 0:
        return np.zeros(0, bool)
    if source_bgr is None:  # a bench bug, never a reason to call a box hidden or leaked
        raise RuntimeError(f"frame {truth.key}: no source copy to measure stored detail against")
    return boxes_hidden(source_bgr, frame.image_bgr, truth.xyxy, truth.label)


def detail_lost_outside(truth: GroundTruth, source_bgr: np.ndarray | None, applied: np.ndarray | FrameOutcome,
                        frame: RedactedFrame | None = None) -> tuple[int, int] | None:
    """(lost, textured) source pixels outside the ground truth (`edge.bench.stored.outside_detail_lost`; a
    frame hidden whole or dropped lost them all, as over-redaction counts it); None without a source copy."""
    if source_bgr is None:
        return None
    inside = boxes_mask(truth.xyxy, source_bgr.shape[:2])
    stored = None if isinstance(applied, FrameOutcome) or frame is None else frame.image_bgr
    return outside_detail_lost(source_bgr, stored, inside)


def copy_limit(track: TrackConfig) -> int:
    """Most source copies a video run can hold: a file's delay line holds at most 2 * detect_every + 2
    frames (edge.pipeline), the store queue 4, and a few more are in hand between stages."""
    return 2 * min(track.detect_every, track.max_gap_frames) + 16


class _SourceCopies:
    """Source images by frame index, each held from capture until its frame is scored, in memory only.

    Bounded: holding more than `limit` means frames are captured but never scored, a bench
    bug, so `keep` raises rather than grow (the pipeline stops and the run fails).
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()  # kept by the capture thread, taken by the store thread
        self._by_index: dict[int, np.ndarray] = {}

    def keep(self, index: int, image_bgr: np.ndarray) -> None:
        with self._lock:
            if len(self._by_index) >= self._limit:
                raise RuntimeError(f"bench: {len(self._by_index)} source copies waiting to be scored "
                                   f"(at most {self._limit}); frames are not reaching the scorer")
            self._by_index[index] = image_bgr.copy()

    def pop(self, index: int) -> np.ndarray | None:
        with self._lock:
            return self._by_index.pop(index, None)

    def clear(self) -> None:
        with self._lock:
            self._by_index.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_index)


class _CopyingSource:
    """A FrameSource that passes frames on, first keeping a copy of each frame's image (the stored-detail
    measures need the source of every frame: its boxes, and its textured area outside them)."""

    def __init__(self, source: FrameSource, copies: _SourceCopies) -> None:
        self._source, self._copies = source, copies
        self.name, self.fps, self.width, self.height = source.name, source.fps, source.width, source.height

    def read(self) -> Frame | None:
        frame = self._source.read()
        if frame is not None:
            self._copies.keep(frame.index, frame.image_bgr)
        return frame

    def close(self) -> None:
        self._source.close()


class _ScoringSink:
    """Takes the segment writer's place: scores each redacted frame in order and stores nothing.

    `note_dropped` carries no index, so dropped frames are found as gaps between the
    indices written, and after the last one up to the number of frames captured (`finish`).
    Each frame's source copy is taken from `sources` when it is scored, or dropped with it.
    """

    def __init__(self, truth: Annotations, accumulator: MetricsAccumulator, raw: _RawDetections,
                 config: RedactConfig, progress: Progress | None, sources: _SourceCopies) -> None:
        self._truth, self._accumulator, self._raw = truth, accumulator, raw
        self._config, self._progress, self._sources = config, progress, sources
        self._next = 0  # index of the next frame to score
        self.detail_seconds = 0.0  # spent in the stored-detail measure

    def write(self, frame: RedactedFrame) -> None:
        self._drop_until(frame.index)
        applied = applied_redaction(frame, self._config)
        source = self._sources.pop(frame.index)
        started = time.perf_counter()
        truth = self._truth.get(str(frame.index))
        hidden = stored_hidden(truth, applied, source, frame)
        textured = detail_lost_outside(truth, source, applied, frame)
        self.detail_seconds += time.perf_counter() - started
        del source  # scored: the raw copy goes now
        self._score(frame.index, applied, hidden, textured)

    def note_dropped(self) -> None:
        """Counted from the gap it leaves (see the class docstring)."""

    def close(self) -> None:
        """Nothing to finish: no file is written."""

    def finish(self, frames_captured: int) -> None:
        self._drop_until(frames_captured)

    def _drop_until(self, index: int) -> None:
        for missing in range(self._next, index):
            source = self._sources.pop(missing)  # nothing of it was stored: all its detail is lost
            self._score(missing, FrameOutcome.DROPPED,
                        textured=detail_lost_outside(self._truth.get(str(missing)), source, FrameOutcome.DROPPED))

    def _score(self, index: int, applied: np.ndarray | FrameOutcome, hidden: np.ndarray | None = None,
               textured: tuple[int, int] | None = None) -> None:
        self._accumulator.add_frame(self._truth.get(str(index)), applied, self._raw.pop(index), hidden, textured)
        self._next = index + 1
        if self._progress is not None:
            self._progress.update(self._next)


def _run_video(subject: BenchInput, truth: Annotations, config: Config, detector: GuardedDetector,
               accumulator: MetricsAccumulator, progress: Progress | None) -> tuple[float, dict[str, float]]:
    raw, sources = _RawDetections(), _SourceCopies(copy_limit(config.track))
    sink = _ScoringSink(truth, accumulator, raw, config.redact, progress, sources)
    source = _CopyingSource(VideoFileSource(subject.path, realtime=False), sources)
    try:
        pipeline = Pipeline(source, detector, Redactor(config.redact), sink, max_frames=subject.max_frames,
                            tracking=config.track, live=False, on_detections=raw.put)
        stats = pipeline.run()
        sink.finish(stats.frames_captured)
    finally:
        source.close()
        sources.clear()  # after an error, copies of frames never scored
    stage_ms = stats.stage_ms_per_frame()
    # No encoder runs here: the store stage's time is the scoring sink's.
    stage_ms["score"] = stage_ms.pop("store")
    stage_ms["detail"] = 1000 * sink.detail_seconds / max(1, stats.frames_captured)
    return stats.fps, stage_ms


def _run_images(subject: BenchInput, truth: Annotations, config: Config, detector: GuardedDetector,
                accumulator: MetricsAccumulator, progress: Progress | None) -> tuple[float, dict[str, float]]:
    redactor = Redactor(config.redact)
    seconds = dict.fromkeys(_STAGES, 0.0)
    keys = scored_images(subject, truth)
    started = time.perf_counter()
    for position, key in enumerate(keys):
        here = truth.get(key)
        with _timed(seconds, "capture"):
            frame = stamp(read_image(subject.path / key), position)
            source = frame.image_bgr.copy()  # redaction overwrites the frame's own
        still = redact_still(frame, detector, redactor)  # the path `dashcam anonymize` takes
        seconds["detect"] += still.detect_s
        seconds["redact"] += still.redact_s
        verdict, redacted = still.verdict, still.redacted
        del frame  # its pixels were hidden in place
        with _timed(seconds, "score"):
            raw = verdict if isinstance(verdict, Detections) else None
            applied = applied_redaction(redacted, config.redact)
            with _timed(seconds, "detail"):
                hidden = stored_hidden(here, applied, source, redacted)
                textured = detail_lost_outside(here, source, applied, redacted)
            del source  # scored: nothing raw outlives this image
            accumulator.add_frame(here, applied, raw, hidden, textured)
        if progress is not None:
            progress.update(position + 1)
    elapsed = time.perf_counter() - started
    count = max(1, len(keys))
    return len(keys) / elapsed if elapsed > 0 else 0.0, {stage: 1000 * s / count for stage, s in seconds.items()}


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] += time.perf_counter() - started


# ---- the report ---------------------------------------------------------------------------------------------

def bench_report(runs: list[RunReport], subject: BenchInput, truth: Annotations) -> BenchReport:
    """The runs side by side, the loader's counts, and what was run on what machine."""
    facts: dict[str, Any] = {"input": subject.describe(), "annotations_file": truth.issues.source,
             "annotations_format": truth.issues.format}
    if not subject.video:
        facts["input"]["scored_images"] = len(scored_images(subject, truth))
    return BenchReport(runs, truth.issues, reproducibility(**facts))


def unannotated_images(subject: BenchInput, truth: Annotations) -> int:
    """Input images the annotation file does not describe (not scored: nothing says what they show)."""
    return 0 if subject.video else len(subject.media.image_sizes or {}) - len(truth.truths)


def write_outputs(report: BenchReport, json_path: Path | None = None, markdown_path: Path | None = None,
                  plots_dir: Path | None = None) -> list[Path]:
    """Write the asked-for JSON, Markdown and PNG plots; StorageError when a place cannot be written."""
    written = []
    if json_path is not None:
        written.append(write_text(json_path, render_json(report)))
    if markdown_path is not None:
        written.append(write_text(markdown_path, render_markdown(report)))
    if plots_dir is not None:
        try:
            written += write_plots(report, plots_dir)
        except OSError as exc:
            raise StorageError(f"cannot write plots to {plots_dir}: {exc.strerror or exc}") from None
    return written
