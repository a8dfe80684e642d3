"""Detection cadence, tracking and the delay line, proven from stored files.

The detector here is real pixel work, not a script: it boxes the high-detail region of
each frame it is shown (a checkerboard on flat grey), so moving patches are found only
on the frames the pipeline actually sends to detection.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import checkerboard, read_all_frames, write_clip
from edge.bench.stored import retained_detail
from edge.camera.opencv import VideoFileSource
from edge.config import RedactConfig, TrackConfig
from edge.detect.guard import GuardedDetector
from edge.pipeline import Pipeline
from edge.record.encoder import EncoderSettings
from edge.record.segments import SegmentRecorder
from edge.redact import Redactor
from edge.types import Detections, Label

SIDE = 40


class PatchFinder:
    """Boxes the detailed patch in a flat frame; counts calls; optionally slow."""

    name = "patch_finder"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls = 0
        self._delay_s = delay_s

    def detect(self, image_bgr: np.ndarray) -> Detections:
        self.calls += 1
        time.sleep(self._delay_s)
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        ys, xs = np.nonzero(np.abs(cv2.Laplacian(grey, cv2.CV_32F)) > 100)
        if xs.size == 0:
            return Detections.empty()
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return Detections(box, np.ones(1), np.array([Label.PLATE]))


def moving_patch_frames(count: int, first: int, step: int) -> tuple[list[np.ndarray], list[tuple[int, int] | None]]:
    """Flat frames with a checkerboard moving right by `step` px per frame from frame `first` on."""
    frames, where = [], []
    for i in range(count):
        image = np.full((240, 320, 3), 128, np.uint8)
        if i >= first:
            x, y = 20 + step * (i - first), 100
            image[y:y + SIDE, x:x + SIDE] = checkerboard(SIDE, SIDE)
            where.append((x, y))
        else:
            where.append(None)
        frames.append(image)
    return frames, where


class SlowSink:
    """A recorder behind a slow card: every write takes `delay_s` longer."""

    def __init__(self, inner: SegmentRecorder, delay_s: float) -> None:
        self._inner, self._delay_s = inner, delay_s

    def write(self, frame) -> None:
        time.sleep(self._delay_s)
        self._inner.write(frame)

    def note_dropped(self) -> None:
        self._inner.note_dropped()

    def close(self) -> None:
        self._inner.close()


def _run(clip: Path, out: Path, detector, tracking: TrackConfig, live: bool = False, sink_delay_s: float = 0.0):
    source = VideoFileSource(clip, realtime=live)
    recorder = SegmentRecorder.open(out, source.width, source.height, source.fps, 60.0,
                               EncoderSettings(crf=12, preset="ultrafast"), {"patch": "0"}, clip.name)
    sink = SlowSink(recorder, sink_delay_s) if sink_delay_s else recorder
    guarded = GuardedDetector([detector], 5.0)
    try:
        stats = Pipeline(source, guarded, Redactor(RedactConfig()), sink, tracking=tracking, live=live).run()
    finally:
        guarded.close()
        source.close()
    return stats, recorder.finished


def _patch_kept(original: np.ndarray, stored: np.ndarray, where: tuple[int, int]) -> float:
    x, y = where
    return retained_detail(original[y:y + SIDE, x:x + SIDE], stored[y:y + SIDE, x:x + SIDE])


def test_every_third_frame_detected_and_every_frame_hidden(tmp_path):
    frames, where = moving_patch_frames(24, first=0, step=3)
    clip = write_clip(tmp_path / "moving.mp4", frames, fps=30)
    detector = PatchFinder()
    stats, segments = _run(clip, tmp_path / "rec", detector, TrackConfig(detect_every=3))
    stored = read_all_frames(segments[0].video_path)
    assert len(stored) == stats.frames_stored == 24
    assert detector.calls == stats.frames_detected == 9  # frames 0, 3, ..., 21, and the last one (23)
    kept = [_patch_kept(frames[i], stored[i], where[i]) for i in range(24)]
    assert max(kept) < 0.1, [round(k, 2) for k in kept]


def test_a_detection_also_covers_the_frames_before_it(tmp_path):
    # The patch appears on frame 5; keyframes are 0, 4, 8: only keyframe 8 sees it.
    frames, where = moving_patch_frames(12, first=5, step=2)
    clip = write_clip(tmp_path / "appears.mp4", frames, fps=30)
    stats, segments = _run(clip, tmp_path / "rec", PatchFinder(), TrackConfig(detect_every=4))
    stored = read_all_frames(segments[0].video_path)
    for i in (5, 6, 7):
        assert _patch_kept(frames[i], stored[i], where[i]) < 0.1, i


class FindsNothing(PatchFinder):
    def detect(self, image_bgr: np.ndarray) -> Detections:
        self.calls += 1
        return Detections.empty()


def test_without_a_detection_those_frames_would_leak(tmp_path):
    """Guards the test above: when nothing is found, frames 5-7 keep their detail, so the measure sees it."""
    frames, where = moving_patch_frames(12, first=5, step=2)
    clip = write_clip(tmp_path / "appears.mp4", frames, fps=30)
    _stats, segments = _run(clip, tmp_path / "rec", FindsNothing(), TrackConfig(detect_every=4, hold_frames=0))
    stored = read_all_frames(segments[0].video_path)
    assert min(_patch_kept(frames[i], stored[i], where[i]) for i in (5, 6, 7)) > 0.5


def test_live_capture_drops_instead_of_waiting_for_a_slow_card_and_stores_nothing_raw(tmp_path):
    frames, where = moving_patch_frames(45, first=0, step=2)
    clip = write_clip(tmp_path / "live.mp4", frames, fps=30)
    stats, segments = _run(clip, tmp_path / "rec", PatchFinder(), TrackConfig(delay_frames=4), live=True,
                           sink_delay_s=0.1)
    stored = read_all_frames(segments[0].video_path)
    assert stats.dropped_overload > 0
    assert stats.frames_stored + stats.dropped_overload == stats.frames_captured == 45
    assert len(stored) == stats.frames_stored
    # Frames kept their capture order; compare each stored frame with its source by best match.
    for image in stored:
        assert all(_patch_kept(frames[i], image, where[i]) < 0.1 for i in range(45)
                   if np.abs(image.astype(int) - frames[i]).mean() < 8)


def test_live_frames_between_detections_too_far_apart_are_blurred_whole(tmp_path):
    frames, _where = moving_patch_frames(30, first=0, step=2)
    clip = write_clip(tmp_path / "live.mp4", frames, fps=30)
    stats, segments = _run(clip, tmp_path / "rec", PatchFinder(delay_s=0.4),
                           TrackConfig(delay_frames=8, max_gap_ms=300.0), live=True)
    stored = read_all_frames(segments[0].video_path)
    assert stats.dropped_overload > 0  # capture never waits for the slow detector
    assert stats.stale_frames > 0 and stats.whole_frame_redacted >= stats.stale_frames
    assert len(stored) == stats.frames_stored
    for image, original in zip(stored, frames):
        assert retained_detail(original, image) < 0.3  # each frame: its patch hidden, or all of it blurred


@pytest.mark.parametrize("detect_every", [1, 5])
def test_failed_keyframe_fails_the_frames_around_it_closed(tmp_path, detect_every):
    frames, _where = moving_patch_frames(12, first=0, step=1)
    clip = write_clip(tmp_path / "fail.mp4", frames, fps=30)

    class FailsSecondCall(PatchFinder):
        def detect(self, image_bgr):
            if self.calls == 1:
                self.calls += 1
                raise RuntimeError("scripted failure")
            return super().detect(image_bgr)

    stats, _segments = _run(clip, tmp_path / "rec", FailsSecondCall(), TrackConfig(detect_every=detect_every))
    assert stats.detector_failures == 1
    # Every frame: failed keyframe 1 alone, or keyframe 5 and the 4 frames before it; then 6-9 too.
    assert stats.whole_frame_redacted == (1 if detect_every == 1 else 9)


def test_a_camera_stuck_inside_read_does_not_hang_the_stop(tmp_path):
    """SIGTERM must finish the segment even when the driver never returns from read()."""
    import threading

    frames, _where = moving_patch_frames(10, first=0, step=1)
    clip = write_clip(tmp_path / "stuck.mp4", frames, fps=30)
    inner = VideoFileSource(clip, realtime=False)
    never = threading.Event()

    class StuckAfterFive:
        name, fps, width, height = "stuck", inner.fps, inner.width, inner.height

        def read(self):
            if inner.frames_read >= 5:
                never.wait()  # a hung V4L2 driver
            return inner.read()

        def close(self):
            inner.close()

    recorder = SegmentRecorder.open(tmp_path / "rec", inner.width, inner.height, inner.fps, 60.0,
                               EncoderSettings(preset="ultrafast"), {"patch": "0"}, "stuck")
    guarded = GuardedDetector([PatchFinder()], 0.5)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    stats = Pipeline(StuckAfterFive(), guarded, Redactor(RedactConfig()), recorder, stop=stop, live=True).run()
    never.set()
    guarded.close()
    assert time.monotonic() - started < 6
    assert stats.frames_stored == 5 and len(read_all_frames(recorder.finished[0].video_path)) == 5


class FixedGovernor:
    """A heat governor stuck at one level (edge.thermal.HeatGovernor decides levels; see test_thermal.py)."""

    def __init__(self, detect_every: int, blur_whole: bool) -> None:
        self._every, self._blur = detect_every, blur_whole
        self.detections: list[float] = []

    def detect_every(self) -> int:
        return self._every

    def blur_whole(self) -> bool:
        return self._blur

    def note_detection(self, seconds: float) -> None:
        self.detections.append(seconds)


def _run_governed(clip: Path, out: Path, detector, governor: FixedGovernor, live: bool):
    source = VideoFileSource(clip, realtime=live)
    recorder = SegmentRecorder.open(out, source.width, source.height, source.fps, 60.0,
                               EncoderSettings(crf=12, preset="ultrafast"), {"patch": "0"}, clip.name)
    guarded = GuardedDetector([detector], 5.0)
    try:
        stats = Pipeline(source, guarded, Redactor(RedactConfig()), recorder, tracking=TrackConfig(detect_every=1),
                         live=live, governor=governor).run()
    finally:
        guarded.close()
        source.close()
    return stats, recorder.finished


def test_a_hot_board_slows_detection_to_the_governor_cadence(tmp_path):
    frames, where = moving_patch_frames(24, first=0, step=2)
    clip = write_clip(tmp_path / "hot.mp4", frames, fps=30)
    detector, governor = PatchFinder(), FixedGovernor(detect_every=6, blur_whole=False)
    stats, segments = _run_governed(clip, tmp_path / "rec", detector, governor, live=False)
    assert detector.calls == len(governor.detections) == 5  # frames 0, 6, 12, 18 and the last one
    stored = read_all_frames(segments[0].video_path)
    assert max(_patch_kept(frames[i], stored[i], where[i]) for i in range(24)) < 0.1


def test_the_hottest_level_blurs_every_stored_frame_whole(tmp_path):
    frames, _where = moving_patch_frames(30, first=0, step=2)
    for image in frames:
        image[150:230, 220:300] = checkerboard(80, 80)  # a patch no detector reports
    clip = write_clip(tmp_path / "hottest.mp4", frames, fps=30)
    stats, segments = _run_governed(clip, tmp_path / "rec", PatchFinder(), FixedGovernor(6, blur_whole=True),
                                    live=True)
    stored = read_all_frames(segments[0].video_path)
    assert stats.heat_blurred == stats.frames_stored == len(stored) > 0
    for image, original in zip(stored, frames):
        assert retained_detail(original[150:230, 220:300], image[150:230, 220:300]) < 0.1


def test_a_scene_cut_is_detected_on_both_sides_and_nothing_is_carried_across(tmp_path):
    """Scene A (patch on the left) cuts to scene B (patch on the right) at frame 10; cadence 10.

    That nothing is carried across the cut is shown box by box in tests/unit/test_tracking.py.
    """
    frames, where = [], []
    ramp = np.linspace(60, 200, 320)[None, :, None]  # smooth backgrounds: no detail for the finder
    scene_a = np.broadcast_to(ramp, (240, 320, 3)).astype(np.uint8)
    scene_b = np.ascontiguousarray(scene_a[:, ::-1])  # the same ramp the other way: another view
    for i in range(25):
        image = (scene_a if i < 10 else scene_b).copy()
        x = 20 if i < 10 else 240
        image[100:100 + SIDE, x:x + SIDE] = checkerboard(SIDE, SIDE)
        frames.append(image)
        where.append((x, 100))
    clip = write_clip(tmp_path / "cut.mp4", frames, fps=30)

    class Remembers(PatchFinder):
        def __init__(self) -> None:
            super().__init__()
            self.shown: list[tuple[int, int]] = []

        def detect(self, image_bgr):
            found = super().detect(image_bgr)
            self.shown.append(tuple(int(v) for v in found.xyxy[0, :2]))
            return found

    detector = Remembers()
    stats, segments = _run(clip, tmp_path / "rec", detector, TrackConfig(detect_every=10))
    stored = read_all_frames(segments[0].video_path)
    assert stats.scene_cuts == 1
    # Keyframes 0, 9 (the old scene's last frame), 10 (the new scene's first), 20, 24.
    assert ["A" if x < 160 else "B" for x, _y in detector.shown] == ["A", "A", "B", "B", "B"]
    assert stats.whole_frame_redacted == 0
    assert max(_patch_kept(frames[i], stored[i], where[i]) for i in range(25)) < 0.1
