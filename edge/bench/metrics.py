"""Blur-recall metrics, accumulated one frame at a time so no mask outlives its frame.

Definitions (docs/benchmark.md says the same for readers):
- A ground-truth box is *covered* when the applied redaction hides at least `tau` of its
  pixels (box rounded outwards to whole pixels). A frame hidden whole, and a frame dropped
  (nothing of it is stored), cover every box in it.
- *Recall* per class: the share of boxes covered; also at every tau of `taus`, and at `tau`
  split by box height (SIZE_BANDS).
- *Hidden* per class (stored detail, edge.bench.stored): the share of boxes whose stored
  pixels lost their detail by the auditor's rule (a face's core and two thirds of its head
  ellipse, 85 % of a plate's box); overall, by size band, and as a per-track leak run
  (consecutive frames in which the track's stored pixels kept their detail). Frames hidden
  whole or dropped hide every box. Frames scored without source pixels are left out.
- *Frame leak rate* per class: among frames with at least one box of the class, the share
  where any such box is not covered. With track ids, a track's *leak run* is its longest
  stretch of consecutive frame indices in which it is present and not covered.
- *Over-redaction*: pixels hidden outside every ground-truth box, over all pixels of all
  frames. A frame hidden whole or dropped counts fully: it lost everything outside the
  boxes. `over_redaction_regions_only` leaves those frames out. `over_redaction_textured`
  counts only textured source pixels (edge.bench.stored: a flat wall or sky carries nothing
  to lose) and judges them from the stored pixels: the share of the textured area outside
  every box that lost its detail.
- *Detector* precision, recall and AP50 on the raw detections of the frames where the
  detector ran: detections sorted by score (per frame) are matched greedily to the unmatched
  box of the same class with the highest IoU, if that IoU >= 0.5; AP is the all-point
  interpolated area under the precision envelope (PASCAL VOC 2010 onwards). Detections
  below the detector's own score threshold never reach us, so AP covers scores above it.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from edge.bench.coverage import CoverageTally, boxes_mask, box_coverage
from edge.bench.truth import GroundTruth
from edge.detect.boxes import iou_matrix
from edge.types import Detections, Label

DEFAULT_TAU = 0.9
DEFAULT_TAUS: tuple[float, ...] = tuple(round(0.05 * step, 2) for step in range(21))
MATCH_IOU = 0.5


class FrameOutcome(enum.Enum):
    """What happened to a frame when no region mask describes it."""

    WHOLE_FRAME = "whole_frame"  # redaction hid the entire frame (fail closed)
    DROPPED = "dropped"  # the frame was not stored at all


Applied = np.ndarray | FrameOutcome  # an (H,W) bool mask of hidden pixels, or an outcome


def class_name(label: Label) -> str:
    return label.name.lower()


def _ratio(part: float, whole: float) -> float | None:
    return float(part / whole) if whole else None


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


@dataclass
class BandRecall:
    recall: float | None
    boxes: int


@dataclass
class DetectorScores:
    detections: int
    true_positives: int
    gt_boxes: int  # on frames where the detector ran
    precision: float | None
    recall: float | None
    ap50: float | None


@dataclass
class ClassMetrics:
    gt_boxes: int
    recall: float | None  # at the result's tau; None when there are no boxes
    recall_curve: list[float | None]  # at each of the result's taus
    recall_by_size: dict[str, BandRecall]
    frames_with_objects: int
    leaked_frames: int
    frame_leak_rate: float | None
    longest_leak_run: int | None  # None when the annotations have no track ids
    leak_run_by_track: dict[str, int]
    detector: DetectorScores
    # Stored detail (edge.bench.stored); defaults so reports written before it still load.
    hidden: float | None = None  # share of the box-frames scored on pixels whose detail was lost
    hidden_scored: int = 0  # box-frames scored on pixels (frames hidden whole or dropped included)
    hidden_by_size: dict[str, BandRecall] = field(default_factory=dict)  # `recall` is the hidden share
    longest_detail_leak_run: int | None = None  # None when there are no track ids
    detail_leak_run_by_track: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping) -> ClassMetrics:
        bands = {name: BandRecall(**band) for name, band in data["recall_by_size"].items()}
        hidden_bands = {name: BandRecall(**band) for name, band in data.get("hidden_by_size", {}).items()}
        return cls(**{**data, "recall_by_size": bands, "hidden_by_size": hidden_bands,
                      "detector": DetectorScores(**data["detector"])})


@dataclass
class BenchResult:
    tau: float
    taus: list[float]
    frames: int
    frames_whole_frame: int
    frames_dropped: int
    frames_detector_ran: int
    over_redaction: float | None
    over_redaction_regions_only: float | None
    classes: dict[str, ClassMetrics] = field(default_factory=dict)
    over_redaction_textured: float | None = None  # None in reports written before it was measured

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable data (missing values are None, never NaN)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> BenchResult:
        classes = {name: ClassMetrics.from_dict(metrics) for name, metrics in data["classes"].items()}
        return cls(**{**data, "taus": list(data["taus"]), "classes": classes})


def average_precision(scores: np.ndarray, hits: np.ndarray, gt_boxes: int) -> float | None:
    """All-point interpolated AP (VOC2010+): area under the precision envelope over recall."""
    if gt_boxes == 0:
        return None
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="stable")
    true_pos = np.cumsum(np.asarray(hits, bool)[order])
    precision = true_pos / np.arange(1, len(order) + 1)
    recall = true_pos / gt_boxes
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float((steps * envelope).sum())


def match_detections(gt_xyxy: np.ndarray, det_xyxy: np.ndarray, det_score: np.ndarray,
                     iou_threshold: float = MATCH_IOU) -> np.ndarray:
    """Whether each detection is a true positive: best score first, each takes the unmatched
    ground-truth box it overlaps most, if that IoU reaches the threshold."""
    hits = np.zeros(len(det_xyxy), dtype=bool)
    if len(gt_xyxy) == 0 or len(det_xyxy) == 0:
        return hits
    ious = iou_matrix(np.asarray(det_xyxy, np.float64), np.asarray(gt_xyxy, np.float64))
    taken = np.zeros(len(gt_xyxy), dtype=bool)
    for index in np.argsort(-np.asarray(det_score), kind="stable"):
        candidates = np.where(taken, -1.0, ious[index])
        best = int(np.argmax(candidates))
        if candidates[best] >= iou_threshold:
            taken[best] = hits[index] = True
    return hits


class _DetectorTally:
    def __init__(self) -> None:
        self.scores: list[float] = []
        self.hits: list[bool] = []
        self.gt_boxes = 0

    def add(self, gt_xyxy: np.ndarray, detections: Detections) -> None:
        self.gt_boxes += len(gt_xyxy)
        self.scores += detections.score.tolist()
        self.hits += match_detections(gt_xyxy, detections.xyxy, detections.score).tolist()

    def result(self) -> DetectorScores:
        true_pos = int(sum(self.hits))
        return DetectorScores(len(self.scores), true_pos, self.gt_boxes, _ratio(true_pos, len(self.scores)),
                              _ratio(true_pos, self.gt_boxes),
                              average_precision(np.array(self.scores), np.array(self.hits), self.gt_boxes))


@dataclass
class _Area:
    """Pixels hidden outside every ground-truth box, out of all pixels seen (or out of the textured ones)."""

    hidden_outside: int = 0
    pixels: int = 0

    def add(self, hidden_outside: int, pixels: int) -> None:
        self.hidden_outside += hidden_outside
        self.pixels += pixels

    def share(self) -> float | None:
        return _ratio(self.hidden_outside, self.pixels)


@dataclass
class _Run:
    last_position: int
    current: int = 0
    longest: int = 0


class LeakRuns:
    """Longest stretch of consecutive frames in which each track is present and leaked."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[int, int], _Run] = {}

    def add(self, position: int, truth: GroundTruth, leaked: np.ndarray) -> None:
        for label, track, leak in zip(truth.label.tolist(), truth.track.tolist(), leaked.tolist()):
            if track >= 0:
                self.add_box(position, label, track, leak)

    def add_box(self, position: int, label: int, track: int, leaked: bool) -> None:
        """One tracked box at frame `position` (frames come in order; a gap breaks the run)."""
        run = self._tracks.setdefault((label, track), _Run(last_position=position - 2))
        consecutive = run.last_position == position - 1
        run.current = (run.current + 1 if consecutive else 1) if leaked else 0
        run.longest = max(run.longest, run.current)
        run.last_position = position

    def by_track(self, label: Label) -> dict[str, int]:
        return {str(track): run.longest for (lab, track), run in sorted(self._tracks.items()) if lab == label}


class MetricsAccumulator:
    """Feed every frame with `add_frame`, then read `result()`."""

    def __init__(self, tau: float = DEFAULT_TAU, taus: Sequence[float] = DEFAULT_TAUS) -> None:
        self.tau, self.taus = float(tau), [float(t) for t in taus]
        self._tally = CoverageTally()
        self._runs = LeakRuns()
        self._detail = CoverageTally()  # 1.0 for a box whose stored pixels lost their detail, else 0.0
        self._detail_runs = LeakRuns()
        self._detector = {label: _DetectorTally() for label in Label}
        self._with_objects = dict.fromkeys(Label, 0)
        self._leaked = dict.fromkeys(Label, 0)
        self._frames = 0
        self._detector_frames = 0
        self._outcomes = dict.fromkeys(FrameOutcome, 0)
        self._area_all, self._area_regions, self._area_textured = _Area(), _Area(), _Area()

    def add_frame(self, truth: GroundTruth, applied: Applied, raw: Detections | None = None,
                  hidden: np.ndarray | None = None, textured_outside: tuple[int, int] | None = None) -> np.ndarray:
        """One frame: its ground truth, what redaction applied, the detector's raw output if it ran,
        whether each box's stored pixels lost their detail (`edge.bench.stored.boxes_hidden`; None: not
        measured, and the frame is left out of `hidden`, unless it was hidden whole or dropped), and
        the (lost, textured) pixels outside the boxes (`edge.bench.stored.outside_detail_lost`; None: not
        measured).

        Returns each ground-truth box's covered share (1.0 for frames hidden whole or dropped).
        """
        shape = self._shape(truth, applied)
        if isinstance(applied, FrameOutcome):
            coverage = np.ones(len(truth.xyxy))
        else:
            coverage = box_coverage(applied, truth.xyxy)
        self._tally.record(coverage, truth.xyxy, truth.label)
        self._count_leaks(truth, coverage < self.tau)
        self._add_detail(truth, applied, hidden)
        self._add_over_redaction(truth, applied, shape)
        if textured_outside is not None:
            self._area_textured.add(*textured_outside)
        if raw is not None:
            self._detector_frames += 1
            for label in Label:
                self._detector[label].add(truth.xyxy[truth.label == label], raw[raw.label == label])
        self._frames += 1
        if isinstance(applied, FrameOutcome):
            self._outcomes[applied] += 1
        return coverage

    def _shape(self, truth: GroundTruth, applied: Applied) -> tuple[int, int]:
        if isinstance(applied, FrameOutcome):
            if truth.width <= 0 or truth.height <= 0:
                raise ValueError(f"frame {truth.key!r}: size unknown, cannot measure a {applied.value} frame")
            return truth.height, truth.width
        if applied.dtype != bool or applied.ndim != 2:
            raise ValueError(f"frame {truth.key!r}: the applied mask must be a 2-D bool array")
        if truth.width and (truth.height, truth.width) != applied.shape:
            raise ValueError(f"frame {truth.key!r}: mask {applied.shape} but frame is {truth.height}x{truth.width}")
        return applied.shape

    def _count_leaks(self, truth: GroundTruth, leaked: np.ndarray) -> None:
        for label in Label:
            mine = truth.label == label
            if mine.any():
                self._with_objects[label] += 1
                self._leaked[label] += int(leaked[mine].any())
        self._runs.add(self._position(truth), truth, leaked)

    def _position(self, truth: GroundTruth) -> int:
        return int(truth.key) if truth.key.isdigit() else self._frames  # images: the call order

    def _add_detail(self, truth: GroundTruth, applied: Applied, hidden: np.ndarray | None) -> None:
        if isinstance(applied, FrameOutcome):
            hidden = np.ones(len(truth.xyxy), bool)  # nothing of the frame's own pixels was stored
        if hidden is None:
            return
        hidden = np.asarray(hidden, bool)
        if hidden.shape != (len(truth.xyxy),):
            raise ValueError(f"frame {truth.key!r}: {hidden.shape} hidden flags for {len(truth.xyxy)} boxes")
        self._detail.record(hidden.astype(np.float64), truth.xyxy, truth.label)
        self._detail_runs.add(self._position(truth), truth, ~hidden)

    def _add_over_redaction(self, truth: GroundTruth, applied: Applied, shape: tuple[int, int]) -> None:
        inside = boxes_mask(truth.xyxy, shape)
        if isinstance(applied, FrameOutcome):
            outside = inside.size - int(np.count_nonzero(inside))  # all of it is lost
        else:
            outside = int(np.count_nonzero(applied & ~inside))
            self._area_regions.add(outside, inside.size)
        self._area_all.add(outside, inside.size)

    def result(self) -> BenchResult:
        return BenchResult(
            tau=self.tau, taus=list(self.taus), frames=self._frames,
            frames_whole_frame=self._outcomes[FrameOutcome.WHOLE_FRAME],
            frames_dropped=self._outcomes[FrameOutcome.DROPPED], frames_detector_ran=self._detector_frames,
            over_redaction=self._area_all.share(), over_redaction_regions_only=self._area_regions.share(),
            over_redaction_textured=self._area_textured.share(),
            classes={class_name(label): self._class_metrics(label) for label in Label},
        )

    def _class_metrics(self, label: Label) -> ClassMetrics:
        recall, boxes = self._tally.recall(label, self.tau)
        bands = {name: BandRecall(_none_if_nan(value), count)
                 for name, (value, count) in self._tally.recall_by_size(label, self.tau).items()}
        runs = self._runs.by_track(label)
        hidden, scored = self._detail.recall(label, 1.0)
        hidden_bands = {name: BandRecall(_none_if_nan(value), count)
                        for name, (value, count) in self._detail.recall_by_size(label, 1.0).items()}
        detail_runs = self._detail_runs.by_track(label)
        return ClassMetrics(
            gt_boxes=boxes, recall=_none_if_nan(recall),
            recall_curve=[_none_if_nan(v) for v in self._tally.curve(label, self.taus)],
            recall_by_size=bands, frames_with_objects=self._with_objects[label], leaked_frames=self._leaked[label],
            frame_leak_rate=_ratio(self._leaked[label], self._with_objects[label]),
            longest_leak_run=max(runs.values()) if runs else None, leak_run_by_track=runs,
            detector=self._detector[label].result(), hidden=_none_if_nan(hidden), hidden_scored=scored,
            hidden_by_size=hidden_bands, longest_detail_leak_run=max(detail_runs.values()) if detail_runs else None,
            detail_leak_run_by_track=detail_runs,
        )
