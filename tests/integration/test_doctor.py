"""`dashcam doctor` against fake hardware: a video file as camera, a pty as GPS receiver,
a model folder with a corrupted file, a read-only recordings folder, and the exit status."""
from __future__ import annotations

import datetime as dt
import os
import pty
import shutil
import subprocess
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.config import config_from_dict
from edge.detect.models import MODELS, default_models_dir
from edge.doctor import (FAIL, OK, SKIP, WARN, DoctorOptions, check_clock, check_disk, check_gps, check_models,
                         check_temperature, filesystem_type, gps_verdict, run_doctor, temperature_verdict)
from edge.gps.probe import BaudProbe, detect_baud, search_order
from tests.conftest import write_clip

NMEA = Path(__file__).resolve().parents[1] / "data" / "nmea" / "drive.nmea"


class StreamingPty:
    """A pty whose master side repeats `lines` until closed, like a receiver that is always on."""

    def __init__(self, lines: list[bytes]) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.name = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._lines = lines
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for line in self._lines:
                try:
                    os.write(self.master, line)
                except (BlockingIOError, OSError):
                    pass  # nobody reading: the kernel buffer is full; drop, as a UART would
                if self._stop.wait(0.002):
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    frames = [np.full((96, 128, 3), 90 + i, np.uint8) for i in range(5)]
    return write_clip(tmp_path / "camera.mp4", frames, fps=10)


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    return folder


def _pty(lines: list[bytes]) -> Iterator[StreamingPty]:
    stream = StreamingPty(lines)
    try:
        yield stream
    finally:
        stream.close()


@pytest.fixture
def nmea_pty() -> Iterator[StreamingPty]:
    yield from _pty([line.encode("ascii") + b"\r\n" for line in NMEA.read_text(encoding="ascii").splitlines()])


@pytest.fixture
def garbage_pty() -> Iterator[StreamingPty]:
    # What a receiver at another line speed looks like: bytes that decode to nothing.
    yield from _pty([bytes(range(128, 256)) + b"\r\n", b"\xfe\xf0\x80\x8f\x00\xff" * 30 + b"\n"])


def _config(clip: Path, recordings: Path, **gps: object) -> dict:
    return {"source": {"kind": "file", "path": str(clip), "realtime": False},
            "gps": {"source": "none", **gps},
            "record": {"directory": str(recordings), "min_free_bytes": 0}}


def _write_yaml(tmp_path: Path, data: dict) -> Path:
    import yaml
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _by_name(checks: list) -> dict:
    return {c.name: c for c in checks}


# ---- end to end through the CLI ---------------------------------------------------------------------------

def test_doctor_passes_with_file_camera_and_pty_gps(tmp_path, clip, recordings, nmea_pty, capsys):
    config = _write_yaml(tmp_path, _config(clip, recordings, source="serial", port=nmea_pty.name, baud=9600))
    status = main(["doctor", "--config", str(config), "--gps-seconds", "2"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "OK    camera" in out and "128x96" in out
    gps_line = next(line for line in out.splitlines() if " gps " in line)
    assert gps_line.startswith(("OK", "WARN")) and "at 9600 baud" in gps_line
    assert "sha256 ok" in out
    assert not list(recordings.iterdir()), "the write test must clean up"


def test_doctor_exit_status_1_and_fix_when_camera_file_missing(tmp_path, recordings, capsys):
    config = _write_yaml(tmp_path, _config(tmp_path / "gone.mp4", recordings))
    assert main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  camera" in out and "fix: set source.path" in out
    assert out.rstrip().endswith("1 failed, 0 warnings")


def test_doctor_reports_garbage_gps_at_every_baud(tmp_path, clip, recordings, garbage_pty, capsys):
    config = _write_yaml(tmp_path, _config(clip, recordings, source="serial", port=garbage_pty.name, baud=9600))
    assert main(["doctor", "--config", str(config), "--gps-seconds", "0.3"]) == 1
    out = capsys.readouterr().out
    gps_line = next(line for line in out.splitlines() if " gps " in line)
    assert gps_line.startswith("FAIL") and "no readable NMEA at any speed" in gps_line
    for baud in (9600, 4800, 38400, 115200):
        assert f"{baud}: 0 valid" in gps_line


def test_missing_serial_port_names_the_uart_fix(tmp_path):
    gps = config_from_dict({"gps": {"source": "serial", "port": str(tmp_path / "ttyNONE")}}).gps
    check, fix = check_gps(gps, 0.1)
    assert check.verdict == FAIL and fix is None
    assert "raspi-config nonint do_serial_hw 0" in check.fix


# ---- baud search logic (a pty's baud rate is nominal, so the search is tested with a fake listener) -------

def test_baud_search_tries_configured_first_and_stops_at_the_proven_speed():
    heard = []

    def listen(baud: int) -> BaudProbe:
        heard.append(baud)
        return BaudProbe(baud, valid=12, first_valid_s=0.4) if baud == 38400 else BaudProbe(baud, garbage=40)

    probes = detect_baud(9600, listen)
    assert heard == [9600, 4800, 38400]
    check = gps_verdict(9600, probes)
    assert check.verdict == FAIL and check.fix == "set gps.baud: 38400"
    assert search_order(115200) == [115200, 4800, 9600, 38400]


def test_gps_verdict_ok_with_fix_and_warn_without():
    fixed = BaudProbe(9600, valid=10, first_valid_s=0.2, fix=object())  # type: ignore[arg-type]
    assert gps_verdict(9600, [fixed]).verdict == OK
    assert gps_verdict(9600, [BaudProbe(9600, valid=10, first_valid_s=0.2)]).verdict == WARN


# ---- models, disk, clock, temperature ---------------------------------------------------------------------

def test_corrupted_model_fails_its_sha256_and_the_other_still_runs(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    good, bad = MODELS["plate_yolov8n_int8"], MODELS["yunet"]
    shutil.copy(default_models_dir() / good.filename, models / good.filename)
    data = bytearray((default_models_dir() / bad.filename).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (models / bad.filename).write_bytes(bytes(data))
    detect = config_from_dict({"detect": {"models_dir": str(models)}}).detect
    checks = _by_name(check_models(detect))
    assert checks["model yunet"].verdict == FAIL and "sha256" in checks["model yunet"].detail
    assert checks["model yolo5face"].verdict == FAIL and "missing" in checks["model yolo5face"].detail
    assert checks["model plate_yolov8n_int8"].verdict == OK
    assert "CPUExecutionProvider" in checks["model plate_yolov8n_int8"].detail


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # root ignores mode bits: a read-only tmpfs is the only honest read-only folder
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_read_only_recordings_folder_fails(read_only_dir):
    record = config_from_dict({"record": {"directory": str(read_only_dir)}}).record
    check = check_disk(record)
    assert check.verdict == FAIL and "not writable" in check.detail and "chown" in check.fix


def test_disk_reports_filesystem_speed_and_free_space_floor(recordings):
    record = config_from_dict({"record": {"directory": str(recordings), "min_free_bytes": 0}}).record
    check = check_disk(record)
    assert check.verdict in (OK, WARN) and "MB/s with fsync" in check.detail
    huge = config_from_dict({"record": {"directory": str(recordings), "min_free_bytes": 10**18}}).record
    assert check_disk(huge).verdict == FAIL
    assert not list(recordings.iterdir())


def test_filesystem_type_takes_the_longest_mount_point(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/root / ext4 rw 0 0\n/dev/sda1 /media/usb vfat rw 0 0\n", encoding="utf-8")
    assert filesystem_type(Path("/media/usb/recordings"), mounts) == "vfat"
    assert filesystem_type(Path("/media/usbstick"), mounts) == "ext4"


def test_clock_checks():
    assert check_clock(None, lambda: dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).verdict == FAIL
    assert check_clock(None).verdict == OK


def test_temperature_from_thermal_zones_and_throttle_flags(tmp_path):
    assert check_temperature(tmp_path).verdict in (SKIP, OK, WARN, FAIL)  # vcgencmd may exist on a Pi
    zone = tmp_path / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("86500\n", encoding="ascii")
    if shutil.which("vcgencmd") is None:
        check = check_temperature(tmp_path)
        assert check.verdict == FAIL and "86.5" in check.detail
    assert temperature_verdict(50.0, 0).verdict == OK
    assert temperature_verdict(None, 0x50000).verdict == WARN
    under_voltage = temperature_verdict(None, 0x1)
    assert under_voltage.verdict == FAIL and "supply" in under_voltage.fix


def test_run_doctor_skips_gps_when_none(clip, recordings):
    config = config_from_dict(_config(clip, recordings))
    checks = _by_name(run_doctor(config, DoctorOptions(gps_seconds=0.1, sys_root=recordings)))
    assert checks["gps"].verdict == SKIP and checks["camera"].verdict == OK
    assert checks["temperature"].verdict in (SKIP, OK, WARN, FAIL)


# ---- the redacted preview (fixed masks, stamp) -------------------------------------------------------------

DASHBOARD = {"name": "dashboard screen", "points": [[0.0, 0.75], [1.0, 0.75], [1.0, 1.0], [0.0, 1.0]]}


def test_the_preview_is_the_redacted_first_frame_with_its_masks(clip, recordings, tmp_path):
    config = config_from_dict({**_config(clip, recordings), "redact": {"masks": [DASHBOARD]}})
    preview = tmp_path / "preview.jpg"
    checks = _by_name(run_doctor(config, DoctorOptions(gps_seconds=0.1, sys_root=recordings, preview_path=preview)))
    check = checks["preview"]
    assert check.verdict == OK and "dashboard screen (25.0% of the frame)" in check.detail
    assert str(preview) in check.detail
    image = cv2.imread(str(preview))
    assert image.shape == (96, 128, 3)
    assert image[74:].max() <= 8  # filled (JPEG leaves a little noise at the edge)
    assert abs(int(image[:70].mean()) - 90) <= 3  # the first frame's grey, untouched above the mask


def test_masks_that_hide_most_of_the_view_are_a_warning(clip, recordings, tmp_path):
    most = {"name": "too much", "points": [[0.0, 0.0], [1.0, 0.0], [1.0, 0.8], [0.0, 0.8]]}
    config = config_from_dict({**_config(clip, recordings), "redact": {"masks": [most]}})
    check = _by_name(run_doctor(config, DoctorOptions(gps_seconds=0.1, sys_root=recordings,
                                                      preview_path=tmp_path / "p.jpg")))["preview"]
    assert check.verdict == WARN and "redact.masks" in check.fix


def test_no_camera_frame_means_no_preview(recordings, tmp_path):
    config = config_from_dict(_config(tmp_path / "absent.mp4", recordings))
    checks = _by_name(run_doctor(config, DoctorOptions(gps_seconds=0.1, sys_root=recordings,
                                                       preview_path=tmp_path / "p.jpg")))
    assert checks["camera"].verdict == FAIL and checks["preview"].verdict == SKIP
    assert not (tmp_path / "p.jpg").exists()


def test_each_camera_of_a_car_gets_its_camera_preview_and_disk_checks(clip, recordings, tmp_path):
    cabin_clip = write_clip(tmp_path / "cabin.mp4", [np.full((72, 96, 3), 60, np.uint8)] * 3, fps=10)
    data = _config(clip, recordings)
    data["cameras"] = [{"name": "front", "redact": {"masks": [DASHBOARD]}},
                       {"name": "cabin", "source": {"kind": "file", "path": str(cabin_clip), "realtime": False},
                        "detect": {"plates": {"enabled": False}, "faces": {"models": ["yunet", "centerface"]}}}]
    preview = tmp_path / "preview.jpg"
    checks = _by_name(run_doctor(config_from_dict(data), DoctorOptions(gps_seconds=0.1, sys_root=recordings,
                                                                      preview_path=preview)))
    assert checks["camera front"].verdict == OK and checks["camera cabin"].verdict == OK
    assert "dashboard screen" in checks["preview front"].detail and "no fixed masks" in checks["preview cabin"].detail
    assert cv2.imread(str(preview)).shape == (96, 128, 3)
    assert cv2.imread(str(tmp_path / "preview-cabin.jpg")).shape == (72, 96, 3)
    assert {"model yunet", "model yolo5face", "model centerface", "model plate_yolov8n_int8"} <= set(checks)
    assert str(recordings / "front") in checks["disk front"].detail + checks["disk front"].fix
