"""Location in storage: the sample clip with its NMEA log, checked in the sidecars and the GPX."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


from conftest import read_all_frames

GPX = "{http://www.topografix.com/GPX/1/1}"


def run_sample(tmp_path: Path, gps_yaml: str, frames: int = 150) -> Path:
    """`dashcam run` on the first frames of the sample, plates off (speed), with this gps section."""
    config = tmp_path / "c.yaml"
    config.write_text("detect:\n  plates: {enabled: false}\n" + gps_yaml)
    recordings = tmp_path / "rec"
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--fast", "--config", str(config),
                             "--recordings", str(recordings), "--max-frames", str(frames)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return recordings


def sidecar(recordings: Path) -> dict:
    (path,) = recordings.glob("dashcam_*.json")
    return json.loads(path.read_text())


def test_track_is_stored_once_per_second_rounded_to_the_configured_precision(tmp_path):
    recordings = run_sample(tmp_path, "gps:\n  precision_decimals: 3\n")
    location = sidecar(recordings)["location"]
    track = location["track"]
    # 150 frames at 30 fps = 5 s of video; the log has a fix from second 2 on.
    assert [p["t_utc"][-9:] for p in track] == ["08:15:02Z", "08:15:03Z", "08:15:04Z"]
    assert location["precision_decimals"] == 3
    for point in track:
        for value in (point["lat"], point["lon"]):
            assert round(value, 3) == value
    assert location["frames_with_location"] == 90  # frames 60..149 (from second 2) see a fix


def test_privacy_zone_keeps_location_out_of_storage(tmp_path):
    zone = "gps:\n  privacy_zones: [{name: home, lat: 48.1374, lon: 11.5757, radius_m: 500}]\n"
    recordings = run_sample(tmp_path, zone)
    location = sidecar(recordings)["location"]
    assert location["track"] == [] and location["frames_with_location"] == 0
    text = next(recordings.glob("dashcam_*.json")).read_text()
    assert "48.13" not in text and "11.57" not in text


def test_pause_in_zone_stops_recording_only_while_inside(tmp_path):
    zone = ("gps:\n  pause_in_zones: true\n"
            "  privacy_zones: [{name: home, lat: 48.1374, lon: 11.5757, radius_m: 500}]\n")
    recordings = run_sample(tmp_path, zone)
    # Frames before the first fix (position unknown) are recorded; once inside the zone, nothing is.
    stored = read_all_frames(next(recordings.glob("dashcam_*.mp4")))
    assert len(stored) == 60
    assert sidecar(recordings)["location"]["track"] == []


def test_gps_disabled_writes_no_location(tmp_path):
    recordings = run_sample(tmp_path, "gps:\n  source: none\n", frames=30)
    assert sidecar(recordings)["location"] is None


def test_export_gpx_is_valid_gpx_11_and_matches_the_sidecar(tmp_path):
    recordings = run_sample(tmp_path, "")
    result = subprocess.run([sys.executable, "-m", "edge", "export-gpx", str(recordings)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    root = ET.parse(recordings / "track.gpx").getroot()
    assert root.tag == f"{GPX}gpx" and root.get("version") == "1.1"
    points = root.findall(f"{GPX}trk/{GPX}trkseg/{GPX}trkpt")
    track = sidecar(recordings)["location"]["track"]
    assert len(points) == len(track) == 3
    for node, stored in zip(points, track):
        assert float(node.get("lat")) == stored["lat"] and float(node.get("lon")) == stored["lon"]
        assert node.find(f"{GPX}time").text == stored["t_utc"]
        # GPX 1.1 schema order inside trkpt: ele before time
        assert [child.tag for child in node][:2] == [f"{GPX}ele", f"{GPX}time"]


def test_export_gpx_on_a_folder_without_segments_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "edge", "export-gpx", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no segment sidecars" in result.stderr and "Traceback" not in result.stderr
