"""Boxes for the frames the detectors did not see: IoU tracks between keyframes.

The pipeline detects on keyframes only. Each keyframe's detections are matched to the
live tracks (greedy, per label, against the tracks' constant-velocity predictions: by
IoU, or by a short centre jump for objects that moved more than their size);
what matches extends a track, the rest start new ones. A frame between two keyframes
gets every track's box there: interpolated when the track was seen on both sides,
carried forwards (a track that was lost keeps its mask `hold_frames` frames) or
backwards (a track first seen on the later keyframe also covers the frames just before
it, which the pipeline's delay line still holds). Every carried box grows with its
distance from the nearest observation, since its position is a guess.

A frame bracketed by a failed keyframe, or whose newest detection is older than
`max_stale_frames`, gets a `DetectionFailure`, so the redactor hides it whole.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from edge.config import TrackConfig
from edge.detect.boxes import iou_matrix
from edge.detect.guard import DetectionFailure
from edge.types import Detections

# Observations kept per track: enough for velocity and for the frames still in the delay line.
_MAX_OBSERVATIONS = 32


@dataclass
class Track:
    label: int
    score: float
    frames: list[int] = field(default_factory=list)  # keyframes that saw it, ascending
    boxes: list[np.ndarray] = field(default_factory=list)  # xyxy float64 per observation

    def observe(self, frame_index: int, xyxy: np.ndarray, score: float) -> None:
        self.frames.append(frame_index)
        self.boxes.append(np.asarray(xyxy, dtype=np.float64))
        self.score = max(self.score, score)
        del self.frames[:-_MAX_OBSERVATIONS], self.boxes[:-_MAX_OBSERVATIONS]

    @property
    def last_seen(self) -> int:
        return self.frames[-1]

    def velocity(self, before: int) -> np.ndarray:
        """Per-frame motion of the box centre, as an xyxy offset, from the two observations up to `before`.

        Only the centre moves: extrapolating each corner separately can turn a shrinking box inside out.
        """
        last = bisect.bisect_right(self.frames, before) - 1
        if last < 1:
            return np.zeros(4)
        centre_now, centre_then = _centre(self.boxes[last]), _centre(self.boxes[last - 1])
        per_frame = (centre_now - centre_then) / (self.frames[last] - self.frames[last - 1])
        return np.tile(per_frame, 2)

    def predict(self, frame_index: int) -> np.ndarray:
        """Constant-velocity position at `frame_index` from the newest observation at or before it."""
        last = max(0, bisect.bisect_right(self.frames, frame_index) - 1)
        gap = frame_index - self.frames[last]
        return self.boxes[last] + self.velocity(self.frames[last]) * gap


def _centre(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:2] + xyxy[2:]) / 2


def _centres(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2


def grow(xyxy: np.ndarray, factor: float) -> np.ndarray:
    centre = _centre(xyxy)
    half = (xyxy[2:] - xyxy[:2]) * factor / 2
    return np.concatenate([centre - half, centre + half])


class BoxTracker:
    """Keyframe verdicts in, per-frame boxes out. Not thread-safe: the pipeline holds a lock."""

    def __init__(self, config: TrackConfig) -> None:
        self._config = config
        self._tracks: list[Track] = []
        self._keyframes: list[int] = []  # ascending
        self._failed: set[int] = set()

    @property
    def newest_keyframe(self) -> int | None:
        return self._keyframes[-1] if self._keyframes else None

    def update(self, frame_index: int, verdict: Detections | DetectionFailure) -> None:
        """Apply one keyframe's verdict; keyframes must arrive in ascending order."""
        if self._keyframes and frame_index <= self._keyframes[-1]:
            raise ValueError(f"keyframe {frame_index} arrived after keyframe {self._keyframes[-1]}")
        self._keyframes.append(frame_index)
        if isinstance(verdict, DetectionFailure):
            self._failed.add(frame_index)
            return
        self._match(frame_index, verdict)

    def _match(self, frame_index: int, found: Detections) -> None:
        unmatched = set(range(len(found)))
        live = [t for t in self._tracks if frame_index - t.last_seen <= self._config.hold_frames]
        for label in set(found.label.tolist()):
            rows = [i for i in unmatched if found.label[i] == label]
            tracks = [t for t in live if t.label == label]
            if not rows or not tracks:
                continue
            cost = self._match_cost(found.xyxy[rows].astype(np.float64), tracks, frame_index)
            for flat in np.argsort(cost, axis=None, kind="stable"):
                r, c = np.unravel_index(flat, cost.shape)
                if not np.isfinite(cost[r, c]):
                    break
                track = tracks[c]
                if rows[r] in unmatched and track.last_seen < frame_index:
                    track.observe(frame_index, found.xyxy[rows[r]], float(found.score[rows[r]]))
                    unmatched.discard(rows[r])
        for i in sorted(unmatched):
            track = Track(int(found.label[i]), float(found.score[i]))
            track.observe(frame_index, found.xyxy[i], float(found.score[i]))
            self._tracks.append(track)

    def _match_cost(self, detected: np.ndarray, tracks: list[Track], frame_index: int) -> np.ndarray:
        """Detections x tracks: overlapping pairs first (1 - IoU), then near ones (1 + jump); inf = no match.

        IoU alone fails when an object moves more than its own size between keyframes; then the
        old track would be held in place and the new one start ahead, leaving the path between
        uncovered. So a pair that does not overlap still matches when the centre moved less than
        `max_jump_per_frame` box sides per frame and the size changed less than 2x.
        """
        predicted = np.stack([t.predict(frame_index) for t in tracks])
        gaps = np.array([frame_index - t.last_seen for t in tracks], dtype=np.float64)
        iou = iou_matrix(detected, predicted)
        sides = predicted[:, 2:] - predicted[:, :2]
        det_sides = detected[:, 2:] - detected[:, :2]
        jump = np.linalg.norm(_centres(detected)[:, None] - _centres(predicted)[None], axis=2)
        jump /= np.maximum(sides.mean(axis=1), 1.0)[None]
        ratio = np.sqrt(np.prod(np.maximum(det_sides, 1.0), axis=1))[:, None] / np.sqrt(
            np.prod(np.maximum(sides, 1.0), axis=1))[None]
        near = (jump <= self._config.max_jump_per_frame * gaps[None]) & (ratio > 0.5) & (ratio < 2.0)
        return np.where(iou >= self._config.match_iou, 1 - iou, np.where(near, 1 + jump, np.inf))

    def plan(self, frame_index: int) -> Detections | DetectionFailure:
        """What to hide in frame `frame_index`, from the keyframes applied so far."""
        at = bisect.bisect_right(self._keyframes, frame_index)
        before = self._keyframes[at - 1] if at > 0 else None
        after = self._keyframes[at] if at < len(self._keyframes) else None
        if before == frame_index:
            after = frame_index
        if before is None and after is None:
            return DetectionFailure("no detection has finished yet")
        for keyframe in (before, after):
            if keyframe in self._failed:
                return DetectionFailure(f"detection failed on keyframe {keyframe}")
        if after is None and frame_index - before > self._config.max_stale_frames:
            return DetectionFailure(f"newest detection is {frame_index - before} frames old", stale=True)
        # Only keyframes up to `after` count, so the plan does not depend on how far detection ran ahead.
        latest = after if after is not None else before
        rows = [(box, t) for t in self._tracks if (box := self._box_at(t, frame_index, latest)) is not None]
        if not rows:
            return Detections.empty()
        return Detections(np.stack([box for box, _ in rows]), [t.score for _, t in rows],
                          [t.label for _, t in rows])

    def _box_at(self, track: Track, frame_index: int, latest: int) -> np.ndarray | None:
        growth, hold = self._config.growth_per_frame, self._config.hold_frames
        seen = bisect.bisect_right(track.frames, latest)  # observations in view
        if seen == 0:
            return None  # first seen after the keyframes this frame depends on
        frames, boxes = track.frames[:seen], track.boxes[:seen]
        at = bisect.bisect_left(frames, frame_index)
        if at < seen and frames[at] == frame_index:
            return boxes[at]
        if 0 < at < seen:  # seen on both sides: interpolate
            f0, f1 = frames[at - 1], frames[at]
            weight = (frame_index - f0) / (f1 - f0)
            box = boxes[at - 1] * (1 - weight) + boxes[at] * weight
            return grow(box, 1 + growth * min(frame_index - f0, f1 - frame_index))
        if at == 0:  # first seen just after: cover the frames before it too
            gap = frames[0] - frame_index
            if gap > hold:
                return None
            return grow(boxes[0] - track.velocity(frames[0]) * gap, 1 + growth * gap)
        gap = frame_index - frames[-1]  # seen only before: carry forwards
        if frames[-1] < latest and gap > hold:
            return None  # lost on a later keyframe and held long enough
        return grow(track.predict(frame_index), 1 + growth * gap)

    def forget_before(self, frame_index: int) -> None:
        """Drop tracks and keyframes that no frame at or after `frame_index` can need."""
        horizon = frame_index - self._config.hold_frames
        self._tracks = [t for t in self._tracks if t.last_seen >= horizon]
        keep_from = max(0, bisect.bisect_right(self._keyframes, frame_index) - 1)
        dropped = self._keyframes[:keep_from]
        self._keyframes = self._keyframes[keep_from:]
        self._failed.difference_update(dropped)
