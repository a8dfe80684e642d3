"""Parking mode end to end: a real clip, the real pipeline and encoder, and `dashcam run` as a subprocess with the
supply voltage in a fake sysfs file (the hardware edge)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from conftest import ScriptedDetector, canary_frames, read_all_frames, write_clip
from recording import file_run_config, run_dashcam
from edge.bench.stored import retained_detail
from edge.camera.opencv import VideoFileSource
from edge.config import ParkingConfig, RedactConfig
from edge.detect.guard import GuardedDetector
from edge.parking import ParkingMode
from edge.pipeline import Pipeline
from edge.record.encoder import EncoderSettings
from edge.record.ignition import SupplyVoltage
from edge.record.segments import SegmentRecorder
from edge.redact import Redactor
from edge.types import Detections, Label

PATCH = (slice(60, 140), slice(100, 180))
PATCH_BOX = Detections(np.array([[100, 60, 180, 140]], np.float32), np.ones(1), np.array([Label.PLATE]))


def _parked_clip(path: Path, frames: int = 80, walker: range = range(40, 50)) -> Path:
    """10 fps canary frames; a dark block crosses the lower left while `walker` lasts."""
    images = canary_frames(frames)
    for index in walker:
        x = 10 + 8 * (index - walker.start)
        images[index][160:230, x:x + 40] = 10
    return write_clip(path, images, fps=10)


def _volts(tmp_path: Path, volts: float) -> Path:
    path = tmp_path / "sys" / "voltage_now"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"{round(volts * 1e6)}\n")
    return path


def test_every_frame_kept_while_parked_is_redacted_and_the_rest_never_stored(tmp_path):
    clip = _parked_clip(tmp_path / "parked.mp4")
    source = VideoFileSource(clip, realtime=False)
    recorder = SegmentRecorder.open(tmp_path / "rec", source.width, source.height, source.fps, 60.0,
                                    EncoderSettings(crf=12, preset="ultrafast"), {"scripted": "0"}, clip.name)
    guarded = GuardedDetector([ScriptedDetector(default=PATCH_BOX)], 5.0)
    gate = ParkingMode(ParkingConfig(enabled=True, voltage_path="x", fps=1.0, event_seconds=1.0),
                       SupplyVoltage(_volts(tmp_path, 12.4), 1e-6, 13.2), None, threading.Event())
    stats = Pipeline(source, guarded, Redactor(RedactConfig()), recorder, gate=gate).run()
    guarded.close()
    source.close()
    stored = read_all_frames(recorder.finished[0].video_path)
    assert stats.frames_captured == 80 and stats.parked_skipped == 80 - len(stored) == 80 - stats.frames_stored
    assert gate.events == 1 and 14 <= len(stored) <= 20  # 1 a second, and all 10 frames of the walker
    original = canary_frames(1)[0]
    for kept in stored:
        assert retained_detail(original[PATCH], kept[PATCH]) < 0.05


def test_dashcam_run_in_parking_mode_keeps_the_low_rate_and_says_so(tmp_path):
    parking = {"enabled": True, "voltage_path": str(_volts(tmp_path, 12.4)), "fps": 1.0, "event_seconds": 1.0}
    config = file_run_config(tmp_path, _parked_clip(tmp_path / "parked.mp4"), parking=parking)
    result = run_dashcam("run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    (video,) = (tmp_path / "rec").glob("dashcam_*.mp4")
    stored = len(read_all_frames(video))
    assert 14 <= stored <= 20
    assert f"parking mode           {80 - stored} frames skipped while parked, 1 events" in result.stdout


def test_dashcam_run_stops_on_a_low_battery_and_keeps_what_it_recorded(tmp_path):
    config = file_run_config(tmp_path, _parked_clip(tmp_path / "parked.mp4"),
                             parking={"enabled": True, "voltage_path": str(_volts(tmp_path, 11.6))})
    result = run_dashcam("run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "stopping the recording: the supply is at 11.60 V" in result.stderr and "Traceback" not in result.stderr
    assert "stopped: the supply is at 11.60 V" in result.stdout
    assert not list((tmp_path / "rec").glob("*.partial"))
