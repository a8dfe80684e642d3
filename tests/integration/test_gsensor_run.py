"""The G-sensor wired into `dashcam run`: a real recording subprocess, a fake IIO accelerometer in tmp_path (the
hardware edge) into which the test writes a crash, and the locked segments on disk."""
from __future__ import annotations

import json
import signal
import time

from conftest import make_iio_device, write_sysfs
from recording import run_config, start_dashcam
from test_loop_recording import wait_for


def test_a_crash_on_the_accelerometer_locks_the_segments_around_it(tmp_path):
    recordings = tmp_path / "rec"
    device = make_iio_device(tmp_path / "iio", 0, raw=(0, 260, 970))  # 1 mg per count, tilted 15 degrees
    config = run_config(tmp_path, clip_seconds=30, record_yaml=f"  directory: {recordings}\n  segment_seconds: 1\n"
                        "  lock_before_seconds: 1\n  lock_after_seconds: 1\n")
    config.write_text(config.read_text() + f"gsensor:\n  source: iio\n  iio_device: {device}\n")
    process = start_dashcam("run", "--config", str(config))
    try:
        wait_for(lambda: len(list(recordings.glob("dashcam_*.mp4"))) >= 2)
        assert not (recordings / "locked").exists() or not list((recordings / "locked").glob("*.mp4"))
        write_sysfs(device / "in_accel_x_raw", -4500)  # 4.5 g against the driving direction
        time.sleep(0.3)
        write_sysfs(device / "in_accel_x_raw", 0)
        wait_for(lambda: len(list((recordings / "locked").glob("*.mp4"))) >= 2)
        time.sleep(2.5)  # past the second after the crash: that footage is locked too
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "G-sensor               1 incident locks (0 unreadable samples)" in stdout
    locked = sorted((recordings / "locked").glob("*.mp4"))
    assert 2 <= len(locked) <= 4
    for video in locked:
        assert json.loads(video.with_suffix(".json").read_text())["locked"] is True
