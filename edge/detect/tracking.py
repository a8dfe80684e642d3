"""Boxes for the frames the detectors did not see: the temporal cover between keyframes.

The pipeline detects on keyframes only. For a frame f between two keyframes a < f < b
of the same scene (its *bracket*), the cover is the union of:

1. every box detected at a, carried forward: grown by `growth_per_frame` per frame of
   distance from a (and, for a track moving at a known velocity, also its predicted box);
2. every box detected at b, carried backward, grown the same way;
3. for every track matched at both ends (or across a keyframe that missed it, within
   `hold_frames`), the box interpolated between its observations, grown;
4. tracks lost on an earlier keyframe, carried on up to `hold_frames` from where last seen;
5. when the camera's motion from a to b is known (edge.detect.motion), the boxes of 1 and 2
   also carried along that motion, grown the same way.

Matching (greedy, per label, by IoU against a constant-velocity prediction, or by a short
centre jump for objects that move more than their size) and the motion estimate only ever
add boxes (3, 4, 5): they never remove 1 or 2, so a wrong match cannot move cover away from an object, and no
object detected at a or b leaves the cover because a count ran out.

A frame is failed closed (`DetectionFailure`, the redactor hides it whole) when its
bracket is not fully known or not trustworthy: a bracketing keyframe failed, there is no
keyframe before it or none after it, the two are more than `max_gap_frames` frames or
`max_gap_ms` apart on the source's timeline, or a scene cut lies between them. Scene cuts
(`note_cut`) split the keyframes into scenes; tracks never match across a cut.

The plan for frame f uses only keyframes up to b, so offline output does not depend on
how far detection ran ahead.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from edge.config import TrackConfig
from edge.detect.boxes import iou_matrix
from edge.detect.motion import compose, inverse, move_box, partial
from edge.geometry import scale_boxes
from edge.types import DetectionFailure, Detections

# Observations kept per track: enough for velocity and for the frames still in the delay line.
_MAX_OBSERVATIONS = 32
# Container timestamps are often whole milliseconds: 30 frames at 30 fps can read 1001 ms apart.
_TIMESTAMP_SLACK_MS = 1.5


@dataclass
class Track:
    id: int
    label: int
    score: float
    scene: int
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


@dataclass
class _Keyframe:
    index: int
    t_ns: int
    scene: int
    found: Detections | None  # None: detection failed; else its boxes, tagged with the track each joined
    motion: np.ndarray | None = None  # camera motion from the previous keyframe to this one (2x3), if known


def _centre(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:2] + xyxy[2:]) / 2


def _centres(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2


def _without_contained(cover: Detections) -> Detections:
    """Drop boxes that lie inside another box of the same label: they hide nothing more."""
    xyxy, keep = cover.xyxy, np.ones(len(cover), bool)
    for i in range(len(cover)):
        inside = ((xyxy[:, 0] <= xyxy[i, 0]) & (xyxy[:, 1] <= xyxy[i, 1]) & (xyxy[:, 2] >= xyxy[i, 2])
                  & (xyxy[:, 3] >= xyxy[i, 3]) & (cover.label == cover.label[i]) & keep)
        inside[i] = False
        if inside.any():
            keep[i] = False
    return cover[keep]


def grow(xyxy: np.ndarray, factor: float) -> np.ndarray:
    return scale_boxes(xyxy[None], factor)[0]


class BoxTracker:
    """Keyframe verdicts and scene cuts in, per-frame cover out. Not thread-safe: the pipeline holds a lock."""

    def __init__(self, config: TrackConfig) -> None:
        self._config = config
        self._tracks: list[Track] = []
        self._keyframes: list[_Keyframe] = []  # ascending by index
        self._cuts: list[int] = []  # ascending: each is the first frame of a new scene
        self._cuts_forgotten = 0  # scene numbers stay absolute after old cuts are dropped
        self._next_track_id = 0

    # ---- input ---------------------------------------------------------------------------------------

    def note_cut(self, first_frame: int) -> None:
        """A scene cut just before `first_frame`; cuts must arrive in ascending order, before its keyframes."""
        if self._cuts and first_frame <= self._cuts[-1]:
            raise ValueError(f"scene cut at {first_frame} arrived after the cut at {self._cuts[-1]}")
        if self._keyframes and first_frame <= self._keyframes[-1].index:
            raise ValueError(f"scene cut at {first_frame} arrived after keyframe {self._keyframes[-1].index}")
        self._cuts.append(first_frame)

    def scene_of(self, frame_index: int) -> int:
        return self._cuts_forgotten + bisect.bisect_right(self._cuts, frame_index)

    def update(self, frame_index: int, verdict: Detections | DetectionFailure, t_ns: int | None = None,
               motion: np.ndarray | None = None) -> None:
        """Apply one keyframe's verdict; keyframes must arrive in ascending order.

        `t_ns` is the keyframe's time on the source's timeline (for the gap bound in time);
        None leaves only the bound in frames. `motion` is the camera's motion from the previous
        keyframe to this one (edge.detect.motion), used to carry boxes along it as well.
        """
        if self._keyframes and frame_index <= self._keyframes[-1].index:
            raise ValueError(f"keyframe {frame_index} arrived after keyframe {self._keyframes[-1].index}")
        found = verdict if isinstance(verdict, Detections) else None
        scene = self.scene_of(frame_index)
        previous = self._keyframes[-1].index if self._keyframes else None
        if found is not None:
            ids = self._match(frame_index, scene, found, previous)
            found = Detections(found.xyxy, found.score, found.label, ids)
        self._keyframes.append(_Keyframe(frame_index, -1 if t_ns is None else t_ns, scene, found, motion))

    def _match(self, frame_index: int, scene: int, found: Detections, previous: int | None) -> np.ndarray:
        """Extend or start a track with each detection; the track id each one joined."""
        ids = np.full(len(found), -1, np.int64)
        unmatched = set(range(len(found)))
        # A track may continue if seen on the previous keyframe (however far back: the gap bound
        # decides whether frames between are trusted) or within `hold_frames`.
        live = [t for t in self._tracks if t.scene == scene and
                (t.last_seen == previous or frame_index - t.last_seen <= self._config.hold_frames)]
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
                    ids[rows[r]] = track.id
        for i in sorted(unmatched):
            track = Track(self._next_track_id, int(found.label[i]), float(found.score[i]), scene)
            self._next_track_id += 1
            track.observe(frame_index, found.xyxy[i], float(found.score[i]))
            self._tracks.append(track)
            ids[i] = track.id
        return ids

    def _match_cost(self, detected: np.ndarray, tracks: list[Track], frame_index: int) -> np.ndarray:
        """Detections x tracks: overlapping pairs first (1 - IoU), then near ones (1 + jump); inf = no match.

        IoU alone fails when an object moves more than its own size between keyframes. So a pair
        that does not overlap still matches when the centre moved less than `max_jump_per_frame`
        box sides per frame and the size changed less than 2x. A match only adds interpolated
        cover; the carried boxes of both keyframes stay, so a wrong match costs blur, not privacy.
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

    # ---- output --------------------------------------------------------------------------------------

    def plan(self, frame_index: int) -> Detections | DetectionFailure:
        """What to hide in frame `frame_index`, from the keyframes applied so far."""
        bracket = self._bracket(frame_index)
        if isinstance(bracket, DetectionFailure):
            return bracket
        boxes, scores, labels, ids = self._cover(frame_index, *bracket)
        if not boxes:
            return Detections.empty()
        return _without_contained(Detections(np.stack(boxes), np.asarray(scores), np.asarray(labels), np.asarray(ids)))

    def _bracket(self, frame_index: int) -> tuple[_Keyframe, _Keyframe] | DetectionFailure:
        """The keyframes at or before and at or after a frame, if both are known and trusted."""
        indices = [k.index for k in self._keyframes]
        at = bisect.bisect_right(indices, frame_index)
        before = self._keyframes[at - 1] if at > 0 else None
        if before is not None and before.index == frame_index:
            after: _Keyframe | None = before
        else:
            after = self._keyframes[at] if at < len(self._keyframes) else None
        if before is None or after is None:
            side = "before" if before is None else "after"
            return DetectionFailure(f"no detection {side} frame {frame_index}", stale=True)
        for keyframe in (before, after):
            if keyframe.found is None:
                return DetectionFailure(f"detection failed on keyframe {keyframe.index}")
        if before.scene != after.scene:
            return DetectionFailure(f"a scene cut between keyframes {before.index} and {after.index} "
                                    "had no keyframe on its side", stale=True)
        return self._check_gap(before, after) or (before, after)

    def _check_gap(self, before: _Keyframe, after: _Keyframe) -> DetectionFailure | None:
        frames = after.index - before.index
        if frames > self._config.max_gap_frames:
            return DetectionFailure(f"detections {frames} frames apart (bound {self._config.max_gap_frames})",
                                    stale=True)
        if before.t_ns >= 0 and after.t_ns >= 0:
            gap_ms = (after.t_ns - before.t_ns) / 1e6
            if gap_ms > self._config.max_gap_ms + _TIMESTAMP_SLACK_MS:
                return DetectionFailure(f"detections {gap_ms:.0f} ms apart (bound {self._config.max_gap_ms:.0f})",
                                        stale=True)
        return None

    def _cover(self, frame_index: int, before: _Keyframe, after: _Keyframe
               ) -> tuple[list[np.ndarray], list[float], list[int], list[int]]:
        growth = self._config.growth_per_frame
        boxes: list[np.ndarray] = []
        scores: list[float] = []
        labels: list[int] = []
        ids: list[int] = []

        def add(box: np.ndarray, distance: int, score: float, label: int, track_id: int) -> None:
            boxes.append(grow(box, 1 + growth * distance))
            scores.append(score)
            labels.append(label)
            ids.append(track_id)

        for keyframe in {before.index: before, after.index: after}.values():  # rules 1 and 2, carried
            found = keyframe.found
            assert found is not None  # _bracket refused failed keyframes
            distance = abs(frame_index - keyframe.index)
            for box, score, label, track_id in zip(found.xyxy.astype(np.float64), found.score, found.label,
                                                   found.ids):
                add(box, distance, float(score), int(label), int(track_id))
        for box, distance, score, label, track_id in self._moved(frame_index, before, after):  # rule 5
            add(box, distance, score, label, track_id)
        for track in self._tracks:  # rules 3 and 4: what matching adds
            if track.scene == before.scene:
                extra = self._track_extra(track, frame_index, before.index, after.index)
                if extra is not None:
                    add(extra[0], extra[1], track.score, track.label, track.id)
        return boxes, scores, labels, ids

    def _moved(self, frame_index: int, before: _Keyframe, after: _Keyframe
               ) -> list[tuple[np.ndarray, int, float, int, int]]:
        """Both keyframes' boxes carried along the camera's motion between them (when it is known)."""
        if after.motion is None or after.index == before.index or frame_index == before.index:
            return []
        weight = (frame_index - before.index) / (after.index - before.index)
        to_frame = partial(after.motion, weight)
        from_after = compose(inverse(after.motion), to_frame)
        moved = []
        for keyframe, matrix in ((before, to_frame), (after, from_after)):
            found = keyframe.found
            assert found is not None
            distance = abs(frame_index - keyframe.index)
            for box, score, label, track_id in zip(found.xyxy.astype(np.float64), found.score, found.label,
                                                   found.ids):
                moved.append((move_box(box, matrix), distance, float(score), int(label), int(track_id)))
        return moved

    def _track_extra(self, track: Track, frame_index: int, before: int, after: int
                     ) -> tuple[np.ndarray, int] | None:
        """A track's predicted or interpolated box at a frame, and its distance from an observation."""
        seen = bisect.bisect_right(track.frames, after)  # only observations up to the bracket count
        if seen == 0:
            return None
        frames, boxes = track.frames[:seen], track.boxes[:seen]
        at = bisect.bisect_left(frames, frame_index)
        if 0 < at < seen:  # observed on both sides: interpolate (across a missed keyframe too)
            f0, f1 = frames[at - 1], frames[at]
            if f1 - f0 > max(after - before, self._config.hold_frames):
                return None
            weight = (frame_index - f0) / (f1 - f0)
            return boxes[at - 1] * (1 - weight) + boxes[at] * weight, min(frame_index - f0, f1 - frame_index)
        if at == seen and at > 0:  # observed only before: carry on with its velocity
            gap = frame_index - frames[-1]
            if frames[-1] < before and gap > self._config.hold_frames:
                return None  # missed on a keyframe since, and held long enough
            if frames[-1] == before and not track.velocity(before).any():
                return None  # rule 1 already carries the same box
            return track.predict(frame_index), gap
        return None  # first observed at `after`: rule 2 already carries it back

    def forget_before(self, frame_index: int) -> None:
        """Drop tracks, keyframes and cuts that no frame at or after `frame_index` can need."""
        indices = [k.index for k in self._keyframes]
        keep_from = max(0, bisect.bisect_right(indices, frame_index) - 1)
        self._keyframes = self._keyframes[keep_from:]
        oldest = self._keyframes[0].index if self._keyframes else frame_index
        horizon = min(oldest, frame_index - self._config.hold_frames)
        self._tracks = [t for t in self._tracks if t.last_seen >= horizon]
        # Keep the cut that starts the oldest kept keyframe's scene, and every later one.
        drop = max(0, bisect.bisect_right(self._cuts, min(oldest, frame_index)) - 1)
        del self._cuts[:drop]
        self._cuts_forgotten += drop
