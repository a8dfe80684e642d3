"""The `dashcam` command as a user runs it: real subprocesses, real files, exit statuses."""
from __future__ import annotations

import os
import subprocess
from fractions import Fraction
import sys
from pathlib import Path

import av
import cv2
import pytest

from conftest import canary_frames, read_all_frames, write_clip


def dashcam(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def assert_clear_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_missing_input(tmp_path):
    assert_clear_error(dashcam("anonymize", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out")),
                       "input not found", "nope.mp4")


def test_corrupt_video_is_reported_and_other_inputs_still_done(tmp_path):
    corrupt = tmp_path / "in" / "corrupt.mp4"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    good = write_clip(tmp_path / "in" / "good.mp4", canary_frames(4))
    result = dashcam("anonymize", str(corrupt), str(good), "-o", str(tmp_path / "out"))
    assert_clear_error(result, "corrupt.mp4")
    assert len(read_all_frames(tmp_path / "out" / "good.mp4")) == 4
    assert not (tmp_path / "out" / "corrupt.mp4").exists()
    assert not list((tmp_path / "out").glob("*.partial"))


def test_unreadable_image(tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    assert_clear_error(dashcam("anonymize", str(bad), "-o", str(tmp_path / "out")),
                       "cannot decode image", "photo.jpg")


def test_unsupported_file_type(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert_clear_error(dashcam("anonymize", str(notes), "-o", str(tmp_path / "out")), "notes.txt", "not a supported")


def test_refuses_to_overwrite_input(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", canary_frames(3))
    assert_clear_error(dashcam("anonymize", str(clip), "-o", str(tmp_path)), "refusing to overwrite")


def test_bad_config_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("detect:\n  faces:\n    treshold: 0.5\n")
    assert_clear_error(dashcam("run", "--config", str(config)), "bad.yaml", "detect.faces.treshold")


def test_missing_config_file(tmp_path):
    assert_clear_error(dashcam("run", "--config", str(tmp_path / "absent.yaml")), "config file not found")


def test_missing_model(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"detect:\n  models_dir: {tmp_path / 'empty'}\n")
    assert_clear_error(dashcam("run", "--config", str(config)), "model file missing", "yunet_n_dynamic.onnx")


def test_missing_camera(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("source:\n  kind: v4l2\n  device: /dev/video-does-not-exist\n")
    assert_clear_error(dashcam("run", "--config", str(config)), "cannot open camera")


def test_gstreamer_without_support_is_explained(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("source:\n  kind: gstreamer\n  pipeline: videotestsrc ! appsink\n")
    result = dashcam("run", "--config", str(config))
    if cv2.getBuildInformation().count("GStreamer:                   YES"):
        pytest.skip("this OpenCV has GStreamer")
    assert_clear_error(result, "no GStreamer support")


@pytest.mark.parametrize("fps,width", [(Fraction(25), 322), (Fraction(30000, 1001), 322), (Fraction(30), 321)])
def test_anonymized_video_keeps_name_size_frame_count_and_fps(tmp_path, fps, width):
    frames = canary_frames(15, height=240, width=width)
    source = tmp_path / "in" / "trip.mp4"
    source.parent.mkdir()
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, 240
        stream.pix_fmt = "yuv420p" if width % 2 == 0 else "yuv444p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    result = dashcam("anonymize", str(source.parent), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    output = tmp_path / "out" / "trip.mp4"
    with av.open(str(source)) as original, av.open(str(output)) as anonymized:
        a, b = original.streams.video[0], anonymized.streams.video[0]
        assert (b.width, b.height) == (a.width, a.height) == (width, 240)
        assert b.average_rate == a.average_rate
        assert [s.type for s in anonymized.streams] == ["video"]
    assert len(read_all_frames(output)) == 15


def test_images_stay_images_with_the_same_size(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), canary_frames(1, 251, 323)[0])
    cv2.imwrite(str(folder / "b.jpg"), canary_frames(1, 240, 320)[0])
    result = dashcam("anonymize", str(folder), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (251, 323, 3)
    assert cv2.imread(str(tmp_path / "out" / "b.jpg")).shape == (240, 320, 3)
    assert "2 of 2 inputs anonymized" in result.stdout


def test_config_prints_commented_defaults():
    result = dashcam("config")
    assert result.returncode == 0 and "# where frames come from" in result.stdout


def test_sigint_finishes_the_segment_being_recorded(tmp_path):
    """Ctrl-C (or SIGTERM from systemd) mid-recording: exit 0, a complete playable segment, no partials."""
    import signal
    import time

    recordings = tmp_path / "rec"
    process = subprocess.Popen([sys.executable, "-m", "edge", "run", "--recordings", str(recordings)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(recordings.glob("*.partial")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # record a couple of seconds of the realtime replay
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    videos = list(recordings.glob("*.mp4"))
    assert len(videos) == 1 and not list(recordings.glob("*.partial"))
    frames = read_all_frames(videos[0])
    assert 10 < len(frames) < 360
    assert f"frames stored          {len(frames)}" in stdout


@pytest.mark.parametrize("trip", ["99999999999999999999", "trip-12"])
def test_export_of_a_trip_that_cannot_exist_is_one_line_and_exit_2(tmp_path, trip):
    (tmp_path / "rec").mkdir()
    result = dashcam("export", trip, "--output", str(tmp_path / "out"), "--recordings", str(tmp_path / "rec"))
    assert_clear_error(result, "no trip")


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """`dashcam ... | head`: a closed pipe is exit 0 without a traceback (BrokenPipeError is an OSError: it must not
    be mistaken for a storage error)."""
    code = "import edge.cli as c; c.describe_defaults = lambda: 'x' * 2_000_000; raise SystemExit(c.main(['config']))"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(10)
    process.stdout.close()  # more than a pipe buffer is still to come
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr
