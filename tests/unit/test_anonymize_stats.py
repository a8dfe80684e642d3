"""What one photo's anonymization reports: the stages' times that the batch's summary line adds up."""
from __future__ import annotations

import time

import cv2
import numpy as np

from conftest import ScriptedDetector
from edge.anonymize import Job, anonymize_image
from edge.config import RedactConfig
from edge.detect.guard import GuardedDetector
from edge.redact import Redactor


class _SlowDetector(ScriptedDetector):
    def detect(self, image_bgr):
        time.sleep(0.05)
        return super().detect(image_bgr)


def test_a_photo_reports_its_reading_detection_redaction_and_storing_time(tmp_path):
    source = tmp_path / "in.png"
    cv2.imwrite(str(source), np.full((120, 160, 3), 90, np.uint8))
    detector = GuardedDetector([_SlowDetector()], timeout_s=10)
    try:
        stats = anonymize_image(Job(source, tmp_path / "out.png"), detector, Redactor(RedactConfig()), 10**7)
    finally:
        detector.close()
    assert stats.frames_stored == 1 and stats.frames_detected == 1
    assert stats.stage_seconds["detect"] >= 0.05
    assert stats.stage_seconds["store"] > 0 and stats.stage_seconds["capture"] > 0
    assert stats.detect_ms_per_keyframe >= 50
    assert stats.seconds >= sum(stats.stage_seconds.values()) and 0 < stats.fps <= 20  # the progress line's fps
