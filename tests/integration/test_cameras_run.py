"""Several cameras from one config (`cameras:`): `dashcam run` records each into its own folder with its own
settings, in one process, or one camera per process with --camera; real subprocesses and real video files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import canary_frames, read_all_frames, write_clip

FRAMES = 20


def _car(tmp_path: Path) -> Path:
    front = write_clip(tmp_path / "front.mp4", canary_frames(FRAMES, 240, 320), fps=10)
    cabin = write_clip(tmp_path / "cabin.mp4", [np.full((180, 320, 3), 90, np.uint8)] * FRAMES, fps=10)
    config = tmp_path / "car.yaml"
    config.write_text(yaml.safe_dump({
        "gps": {"source": "none"},
        "detect": {"people": {"enabled": False}},
        "record": {"directory": str(tmp_path / "rec"), "min_free_bytes": 0, "preset": "ultrafast"},
        "evidence": {"key_dir": str(tmp_path / "state")},
        "cameras": [
            {"name": "front", "source": {"kind": "file", "path": str(front), "realtime": False},
             "redact": {"masks": [{"name": "bonnet", "points": [[0, 0.8], [1, 0.8], [1, 1], [0, 1]]}]}},
            {"name": "cabin", "source": {"kind": "file", "path": str(cabin), "realtime": False},
             "detect": {"plates": {"enabled": False}}},
        ]}))
    return config


def _dashcam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=300)


def test_one_process_records_every_camera_into_its_own_folder_with_its_own_settings(tmp_path):
    config = _car(tmp_path)
    stats_path = tmp_path / "stats.json"
    result = _dashcam("run", "--config", str(config), "--stats-json", str(stats_path))
    assert result.returncode == 0, result.stderr
    assert "== camera front ==" in result.stdout and "== camera cabin ==" in result.stdout
    (front,) = (tmp_path / "rec" / "front").glob("dashcam_*.mp4")
    (cabin,) = (tmp_path / "rec" / "cabin").glob("dashcam_*.mp4")
    front_frames, cabin_frames = read_all_frames(front), read_all_frames(cabin)
    assert len(front_frames) == len(cabin_frames) == FRAMES
    assert front_frames[0].shape == (240, 320, 3) and cabin_frames[0].shape == (180, 320, 3)
    assert all(frame[196:].max() <= 12 for frame in front_frames)  # the front camera's own mask
    assert all(frame[150:].min() >= 70 for frame in cabin_frames)  # not applied to the cabin
    front_sidecar = json.loads(front.with_suffix(".json").read_text())
    cabin_sidecar = json.loads(cabin.with_suffix(".json").read_text())
    assert front_sidecar["camera"] == "front" and cabin_sidecar["camera"] == "cabin"
    plate_model = "plate_yolov8n_safelicensing_640.int8.onnx"
    assert plate_model in front_sidecar["models"] and plate_model not in cabin_sidecar["models"]
    stats = json.loads(stats_path.read_text())["cameras"]
    assert stats["front"]["frames_stored"] == stats["cabin"]["frames_stored"] == FRAMES


def test_one_process_per_camera_with_camera(tmp_path):
    config = _car(tmp_path)
    result = _dashcam("run", "--config", str(config), "--camera", "cabin")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "rec" / "cabin").glob("dashcam_*.mp4"))) == 1
    assert not (tmp_path / "rec" / "front").exists()
    unknown = _dashcam("run", "--config", str(config), "--camera", "rear")
    assert unknown.returncode == 2 and "--camera rear: no such camera" in unknown.stderr
    assert "front, cabin" in unknown.stderr and "Traceback" not in unknown.stderr


def test_a_camera_that_cannot_open_stops_the_run_before_anything_is_recorded(tmp_path):
    config = _car(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["cameras"][1]["source"]["path"] = str(tmp_path / "unplugged.mp4")
    config.write_text(yaml.safe_dump(data))
    result = _dashcam("run", "--config", str(config))
    assert result.returncode == 2 and "unplugged.mp4" in result.stderr and "Traceback" not in result.stderr
    front = tmp_path / "rec" / "front"
    assert not list(front.glob("dashcam_*.mp4")) and not list(front.glob("*.partial"))
    again = _dashcam("run", "--config", str(config), "--camera", "front")
    assert again.returncode == 0, again.stderr  # the first camera's folder was released, not left locked


def test_the_other_cameras_footage_of_a_trip_is_listed_exported_verified_and_wiped_with_it(tmp_path):
    config = _car(tmp_path)
    assert _dashcam("run", "--config", str(config)).returncode == 0
    trips = _dashcam("trips", "--config", str(config), "--segments")
    assert trips.returncode == 0, trips.stderr
    (cabin,) = (tmp_path / "rec" / "cabin").glob("dashcam_*.mp4")
    assert "OTHER CAMERAS" in trips.stdout and "cabin 1" in trips.stdout and f"cabin/{cabin.name}" in trips.stdout
    out = tmp_path / "stick"
    export = _dashcam("export", "1", "--output", str(out), "--config", str(config))
    assert export.returncode == 0, export.stderr
    assert len(list(out.glob("dashcam_*.mp4"))) == 1 and (out / "cabin" / cabin.name).is_file()
    assert "camera cabin: 1 segments of the same time" in export.stdout
    for folder in (out, out / "cabin"):
        verified = _dashcam("verify", str(folder), "--key", str(out / "device-key.pub.pem"))
        assert verified.returncode == 0, verified.stdout + verified.stderr
    wiped = _dashcam("wipe", "--yes", "--config", str(config))
    assert wiped.returncode == 0, wiped.stderr
    for camera in ("front", "cabin"):
        assert not list((tmp_path / "rec" / camera).rglob("dashcam_*"))


def test_the_web_app_shows_the_other_cameras_footage_of_a_trip_and_locks_it(tmp_path):
    pytest.importorskip("starlette", reason="the web app needs the [web] extra")
    from conftest import free_port
    from test_web import Served, _csrf, _login, _serving

    config = _car(tmp_path)
    assert _dashcam("run", "--config", str(config)).returncode == 0
    port = free_port()
    config.write_text(config.read_text() + f"web:\n  port: {port}\n")
    (cabin,) = (tmp_path / "rec" / "cabin").glob("dashcam_*.mp4")
    with _serving(config, port):
        served = Served(f"http://127.0.0.1:{port}", tmp_path / "rec" / "front", config, None)  # type: ignore[arg-type]
        client = _login(served)
        trip = client.get("/trips/1").text
        assert 'id="other-cameras"' in trip and f'/segments/{cabin.stem}?camera=cabin' in trip
        page = client.get(f"/segments/{cabin.stem}?camera=cabin")
        assert page.status_code == 200 and "(cabin camera)" in page.text
        assert f'/segments/{cabin.stem}/video?camera=cabin' in page.text
        video = client.get(f"/segments/{cabin.stem}/video?camera=cabin")
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        assert video.content == cabin.read_bytes()
        assert client.get(f"/segments/{cabin.stem}?camera=rear").status_code == 404
        token = _csrf(client, f"/segments/{cabin.stem}?camera=cabin")
        locked = client.post(f"/segments/{cabin.stem}/lock?camera=cabin", data={"csrf": token})
        assert locked.status_code == 303 and locked.headers["location"] == f"/segments/{cabin.stem}?camera=cabin"
    assert (tmp_path / "rec" / "cabin" / "locked" / cabin.name).is_file()
