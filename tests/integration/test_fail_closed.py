"""Fail closed, proven from the stored files: a real clip, real encoder, scripted detector."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from conftest import ScriptedDetector, canary_frames, read_all_frames
from edge.bench.stored import retained_detail
from edge.camera.opencv import VideoFileSource
from edge.config import RedactConfig, TrackConfig
from edge.detect.guard import GuardedDetector
from edge.pipeline import Pipeline
from edge.record.encoder import EncoderSettings
from edge.record.segments import SegmentRecorder
from edge.redact import Redactor
from edge.types import Detections, Label

PATCH = (slice(60, 140), slice(100, 180))       # the detected canary
OTHER = (slice(150, 230), slice(220, 300))      # an undetected patch, must stay sharp
PATCH_BOX = Detections(np.array([[100, 60, 180, 140]], np.float32), np.ones(1), np.array([Label.PLATE]))


def _record(clip: Path, out: Path, detector, on_failure: str = "blur_frame", timeout_s: float = 5.0,
            segment_seconds: float = 60.0):
    source = VideoFileSource(clip, realtime=False)
    recorder = SegmentRecorder.open(out, source.width, source.height, source.fps, segment_seconds,
                               EncoderSettings(crf=12, preset="ultrafast"), {"scripted": "0"}, clip.name)
    guarded = GuardedDetector([detector], timeout_s)
    # Every frame detected, so each scripted call is one frame (test_cadence.py covers keyframes).
    stats = Pipeline(source, guarded, Redactor(RedactConfig(on_failure=on_failure)), recorder,
                     tracking=TrackConfig(detect_every=1)).run()
    guarded.close()
    source.close()
    return stats, recorder.finished


def test_detected_region_loses_detail_and_the_rest_keeps_it(canary_clip, tmp_path):
    stats, segments = _record(canary_clip, tmp_path / "rec", ScriptedDetector(default=PATCH_BOX))
    stored = read_all_frames(segments[0].video_path)
    source = read_all_frames(canary_clip)
    assert len(stored) == len(source) == stats.frames_stored == 12
    for original, kept in zip(source, stored):
        assert retained_detail(original[PATCH], kept[PATCH]) < 0.05
        assert retained_detail(original[OTHER], kept[OTHER]) > 0.6


def test_detector_that_raises_stores_only_whole_blurred_frames(canary_clip, tmp_path):
    stats, segments = _record(canary_clip, tmp_path / "rec", ScriptedDetector(raise_on={-1}))
    stored = read_all_frames(segments[0].video_path)
    assert len(stored) == 12 and stats.detector_failures == 12 and stats.whole_frame_redacted == 12
    for original, kept in zip(canary_frames(), stored):
        assert retained_detail(original, kept) < 0.05
    sidecar = json.loads(segments[0].sidecar_path.read_text())
    assert sidecar["redaction"]["whole_frame_redacted_frames"] == 12


def test_intermittent_failure_blurs_exactly_the_failed_frames(canary_clip, tmp_path):
    stats, segments = _record(canary_clip, tmp_path / "rec", ScriptedDetector(raise_on={3, 7}, default=PATCH_BOX))
    stored = read_all_frames(segments[0].video_path)
    source = canary_frames()
    for index, (original, kept) in enumerate(zip(source, stored)):
        assert retained_detail(original[PATCH], kept[PATCH]) < 0.05
        other = retained_detail(original[OTHER], kept[OTHER])
        assert (other < 0.05) if index in (3, 7) else (other > 0.6), (index, other)
    assert stats.whole_frame_redacted == 2


def test_drop_policy_drops_and_counts(canary_clip, tmp_path):
    stats, segments = _record(canary_clip, tmp_path / "rec", ScriptedDetector(raise_on={0, 5}, default=PATCH_BOX),
                              on_failure="drop_frame")
    assert stats.dropped == 2 and stats.frames_stored == 10
    assert len(read_all_frames(segments[0].video_path)) == 10
    assert json.loads(segments[0].sidecar_path.read_text())["redaction"]["dropped_frames"] == 2


def test_garbage_output_fails_closed(canary_clip, tmp_path):
    class Garbage:
        name = "garbage"

        def detect(self, image_bgr):
            return [[1, 2, 3]]  # not Detections

    stats, segments = _record(canary_clip, tmp_path / "rec", Garbage())
    assert stats.whole_frame_redacted == 12
    for original, kept in zip(canary_frames(), read_all_frames(segments[0].video_path)):
        assert retained_detail(original, kept) < 0.05


def test_slow_detector_times_out_and_fails_closed(canary_clip, tmp_path):
    class Slow:
        name = "slow"

        def detect(self, image_bgr):
            time.sleep(0.3)
            return PATCH_BOX

    stats, segments = _record(canary_clip, tmp_path / "rec", Slow(), timeout_s=0.05)
    assert stats.detector_failures == 12 and stats.whole_frame_redacted == 12
    for original, kept in zip(canary_frames(), read_all_frames(segments[0].video_path)):
        assert retained_detail(original, kept) < 0.05
