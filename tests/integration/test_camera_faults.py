"""A live camera that disconnects, fails to reopen, stalls and returns empty frames, under the real pipeline
and recorder: the loop reopens it with backoff, logs how long it was blind, and the files stay consistent."""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ScriptedDetector, write_clip
from edge.camera.opencv import VideoFileSource
from edge.camera.reconnect import ReconnectingSource
from edge.config import RedactConfig
from edge.detect.guard import GuardedDetector
from edge.errors import SourceError
from edge.pipeline import Pipeline
from edge.redact import Redactor
from edge.types import Frame
from recording import FPS, SIZE, decodable_frames, recorder


class MisbehavingCamera:
    """The real file source as a camera that, after `good` frames, disconnects, stalls or sends an empty frame."""

    def __init__(self, clip: Path, good: int, then: str) -> None:
        self._source = VideoFileSource(clip, realtime=True)
        self.name, self.fps = "flaky", self._source.fps
        self.width, self.height = self._source.width, self._source.height
        self._left, self._then = good, then
        self.closed = False

    def read(self) -> Frame | None:
        if self._left > 0:
            self._left -= 1
            return self._source.read()
        if self._then == "stall":
            time.sleep(3.0)  # a driver call that hangs; the reader gives up long before
        if self._then == "empty":
            frame = self._source.read()
            frame.image_bgr = np.zeros((0, 0, 3), np.uint8)
            return frame
        return None  # unplugged

    def close(self) -> None:
        self.closed = True
        self._source.close()


class Script:
    """What each (re)open of the camera does, in order."""

    def __init__(self, clip: Path, steps: list[str | tuple[int, str]]) -> None:
        self._clip, self._steps = clip, list(steps)
        self.opened: list[MisbehavingCamera] = []

    def __call__(self) -> MisbehavingCamera:
        step = self._steps.pop(0) if len(self._steps) > 1 else self._steps[0]
        if step == "absent":
            raise SourceError("cannot open camera flaky: missing")
        good, then = step
        camera = MisbehavingCamera(self._clip, good, then)
        self.opened.append(camera)
        return camera


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    return write_clip(tmp_path / "camera.mp4", [np.roll(base, i, axis=0) for i in range(200)], fps=FPS)


def test_faulty_camera_is_reopened_and_the_recording_stays_consistent(clip, tmp_path, caplog):
    script = Script(clip, [(15, "none"), "absent", "absent", (10, "stall"), (10, "empty"), (1000, "none")])
    stop = threading.Event()
    camera = ReconnectingSource(script, stop, stall_timeout_s=0.5, backoff_initial_s=0.5, backoff_max_s=2.0)
    rec = recorder(tmp_path / "rec", segment_seconds=60)
    detector = GuardedDetector([ScriptedDetector()], 5.0)
    with caplog.at_level(logging.INFO):
        stats = Pipeline(camera, detector, Redactor(RedactConfig()), rec, stop=stop, max_frames=45).run()
    camera.close()
    detector.close()

    assert stats.frames_stored == 45
    assert camera.blind_periods == 3 and camera.reopen_attempts == 5
    # Unplugged: 0.5 + 1 + 2 s of backoff before the third attempt works; then a stall, then an empty frame.
    assert camera.blind_seconds >= 3.5 + 0.5
    assert caplog.text.count("blind for") == 3 and "stalled" in caplog.text and "empty frame" in caplog.text
    assert all(c.closed for c in script.opened[:-1])

    # The long outage split the recording: each file's constant-rate clock stays true, nothing is lost.
    segments = [json.loads(info.sidecar_path.read_text()) for info in rec.finished]
    assert len(segments) >= 2
    assert segments[1]["gap_before_s"] >= 3.0
    assert sum(s["frame_count"] for s in segments) == 45
    for info, sidecar in zip(rec.finished, segments):
        assert decodable_frames(info.video_path) == sidecar["frame_count"]


@pytest.mark.parametrize("steps", [[(1, "none"), "absent"], [(1, "stall")]], ids=["unplugged", "hung"])
def test_stop_is_not_held_up_by_a_camera_that_is_gone_or_hung(clip, steps):
    """SIGTERM while blind: `read` gives up at once instead of finishing a backoff or a 30 s stall timeout."""
    stop = threading.Event()
    camera = ReconnectingSource(Script(clip, steps), stop, stall_timeout_s=30.0, backoff_initial_s=5.0)
    assert camera.read() is not None
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    assert camera.read() is None
    assert time.monotonic() - started < 1.0
    camera.close()


def test_a_camera_missing_at_start_is_a_clear_error(clip):
    with pytest.raises(SourceError, match="cannot open camera"):
        ReconnectingSource(Script(clip, ["absent"]), threading.Event())


def test_a_camera_that_comes_back_at_another_size_is_scaled_to_the_recording_size(clip, tmp_path, caplog):
    small = tmp_path / "small.mp4"
    write_clip(small, [np.zeros((60, 80, 3), np.uint8)] * 20, fps=FPS)
    opened = iter([MisbehavingCamera(clip, 2, "none"), MisbehavingCamera(small, 5, "none")])
    camera = ReconnectingSource(lambda: next(opened), threading.Event(), backoff_initial_s=0.01)
    frames = [camera.read() for _ in range(4)]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert {f.image_bgr.shape for f in frames} == {(SIZE[1], SIZE[0], 3)}
    assert "came back at 80x60" in caplog.text
    camera.close()
