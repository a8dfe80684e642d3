"""`dashcam doctor`: checks the car installation before a drive, one verdict per item.

This module owns the checks: camera, privacy preview, GPS, models, disk, clock, temperature. Each is a
small function returning a `Check` (ok, warn, fail, or skip) with a one-line detail and,
when something is wrong, the command or step that fixes it. Checks only look and
measure: nothing is recorded, the write test removes its own file, and the one picture kept is the
preview: the camera's first frame after full redaction (detectors, fixed masks, stamp).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.board import hottest_c, read_throttled
from edge.camera import open_source
from edge.config import Config, DetectConfig, GpsConfig, RecordConfig, SourceConfig
from edge.detect.factory import build_detectors, guarded, model_keys
from edge.detect.models import resolve_model
from edge.detect.session import create_session
from edge.errors import ModelError, SourceError, StorageError
from edge.gps.privacy import LocationPolicy
from edge.gps.probe import BaudProbe, detect_baud, fix_utc, serial_listener
from edge.record.images import write_image
from edge.redact import FixedMasks, Redactor
from edge.stamp import FrameStamp
from edge.types import Frame, GpsFix

log = logging.getLogger(__name__)

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
WRITE_TEST_BYTES = 16 << 20
MIN_WRITE_MB_S = 5.0         # well above a 720p/1080p x264 stream; below it segments queue up
MIN_PLAUSIBLE_YEAR = 2025
MAX_CLOCK_SKEW_S = 2.0
HOT_C = 80.0                 # the Pi firmware starts soft throttling at 80 °C
CRITICAL_C = 85.0
LARGE_MASK_SHARE = 0.5       # fixed masks over half the frame are more likely a mistake than a wish
UART_FIX = ("enable the UART: sudo raspi-config nonint do_serial_hw 0 and do_serial_cons 1 "
            "(login shell off), then reboot; or check the cable and the udev rule for /dev/gps0")


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    detail: str
    fix: str = ""


@dataclass
class DoctorOptions:
    gps_seconds: float = 3.0       # listening time per baud rate
    sys_root: Path = Path("/")     # where /proc and /sys are read; a temp dir in tests
    preview_path: Path | None = None  # where the redacted preview frame is written (None = no preview)


def run_doctor(config: Config, options: DoctorOptions | None = None) -> list[Check]:
    """All checks in order, each camera's camera, preview, models and disk (named `camera front` ... when
    the config has `cameras:`); the clock check uses the GPS fix when one was found."""
    options = options or DoctorOptions()
    gps_check, fix = check_gps(config.gps, options.gps_seconds)
    per_camera: list[Check] = []
    models: list[Check] = []
    disks: list[Check] = []
    for position, (name, camera) in enumerate(config.camera_runs()):
        camera_check, frame = read_camera(camera.source)
        preview = _preview_path(options.preview_path, name, first=position == 0)
        per_camera += [_named(camera_check, name), _named(check_preview(camera, frame, preview), name)]
        known = {c.name for c in models}
        models += [c for c in check_models(camera.detect) if c.name not in known]  # a model is checked once
        disks.append(_named(check_disk(camera.record, options.sys_root), name))
    return [*per_camera, gps_check, *models, *disks, check_clock(fix), check_temperature(options.sys_root)]


def _named(check: Check, camera: str) -> Check:
    return dataclasses.replace(check, name=f"{check.name} {camera}") if camera else check


def _preview_path(path: Path | None, camera: str, first: bool) -> Path | None:
    """The lead camera's preview where asked (the web app shows it); another camera's beside it, named for it."""
    if path is None or first:
        return path
    return path.with_name(f"{path.stem}-{camera}{path.suffix}")


# ---- camera ---------------------------------------------------------------------------------------------

def read_camera(config: SourceConfig) -> tuple[Check, Frame | None]:
    """The camera's verdict and its first frame (raw: only `check_preview` may use it, to redact it)."""
    try:
        source = open_source(config)
    except SourceError as exc:
        return Check("camera", FAIL, str(exc), _camera_fix(config)), None
    try:
        started = time.monotonic()
        frame = source.read()
        first_s = time.monotonic() - started
    finally:
        source.close()
    if frame is None:
        return Check("camera", FAIL, f"{source.name} opened but delivered no frame", _camera_fix(config)), None
    height, width = frame.image_bgr.shape[:2]
    return Check("camera", OK, f"{source.name}: {width}x{height} @ {source.fps:.1f} fps, "
                               f"first frame after {first_s * 1000:.0f} ms"), frame


# ---- privacy preview ------------------------------------------------------------------------------------

def check_preview(config: Config, frame: Frame | None, path: Path | None) -> Check:
    """Redact the camera's first frame as a recording would (detectors, fixed masks, stamp) and write it to
    `path`, so the owner can see what the masks cover before a drive. Nothing raw is written."""
    masks = ", ".join(m.name or f"mask {i + 1}" for i, m in enumerate(config.redact.masks)) or "no fixed masks"
    if frame is None or path is None:
        return Check("preview", SKIP, f"{masks}; no camera frame to preview" if path else f"{masks}; not asked")
    try:
        detector = guarded(build_detectors(config.detect, live=False), config.detect, live=False)
    except (ModelError, SourceError) as exc:
        return Check("preview", FAIL, f"the detectors cannot be loaded: {exc}")
    try:
        shape = frame.image_bgr.shape[:2]
        verdict = detector.detect(frame.image_bgr.copy())  # a timed-out model may still read its copy
        redacted = Redactor(config.redact, overlay=_preview_stamp(config)).redact(frame, verdict)
    finally:
        detector.close()
    covered = FixedMasks(config.redact.masks).covered_share(shape)
    if redacted is None:  # a failed detection with on_failure: drop_frame
        return Check("preview", WARN, f"detection failed on the preview frame ({verdict}): it would be dropped")
    try:
        write_image(path, redacted)
    except (OSError, StorageError) as exc:
        return Check("preview", WARN, f"cannot write the preview to {path}: {exc}")
    found = ("detection failed: the frame was blurred whole" if redacted.counts.whole_frame
             else f"{redacted.counts.faces} faces and {redacted.counts.plates} plates hidden")
    detail = f"{masks} ({covered:.1%} of the frame); {found}; redacted preview: {path}"
    if covered > LARGE_MASK_SHARE:
        return Check("preview", WARN, detail, "check redact.masks: they hide most of the view")
    return Check("preview", WARN if redacted.counts.whole_frame else OK, detail)


def _preview_stamp(config: Config) -> FrameStamp | None:
    if not config.stamp.enabled:
        return None
    return FrameStamp(config.stamp, LocationPolicy.from_config(config.gps))


def _camera_fix(config: SourceConfig) -> str:
    if config.kind in ("gstreamer", "picamera2"):
        return ("check the ribbon cable and `rpicam-hello --list-cameras` (Pi) or `nvgstcapture-1.0` (Jetson); "
                "install gstreamer1.0-libcamera and use the system OpenCV (python3-opencv)")
    if config.kind == "v4l2":
        return (f"plug in the camera, check `v4l2-ctl --list-devices`, and add the user to group video for "
                f"{config.device}")
    return "set source.path to an existing video file or image folder"


# ---- GPS ------------------------------------------------------------------------------------------------

def check_gps(config: GpsConfig, seconds: float) -> tuple[Check, GpsFix | None]:
    if config.source in ("none", "auto"):
        return Check("gps", SKIP, f"gps.source is {config.source}: no receiver to check"), None
    if config.source == "replay":
        exists = not config.log or Path(config.log).is_file()
        return (Check("gps", OK if exists else FAIL, f"replaying {config.log or 'the sample log'}",
                      "" if exists else "set gps.log to an existing NMEA file"), None)
    if config.source == "gpsd":
        return _check_gpsd(config), None
    return _check_serial(config, seconds)


def _check_gpsd(config: GpsConfig) -> Check:
    try:
        with socket.create_connection((config.gpsd_host, config.gpsd_port), timeout=2.0):
            pass
    except OSError as exc:
        return Check("gps", FAIL, f"cannot connect to gpsd at {config.gpsd_host}:{config.gpsd_port}: {exc}",
                     "sudo apt install gpsd && sudo systemctl enable --now gpsd.socket")
    return Check("gps", OK, f"gpsd answers at {config.gpsd_host}:{config.gpsd_port}")


def _check_serial(config: GpsConfig, seconds: float) -> tuple[Check, GpsFix | None]:
    try:
        probes = detect_baud(config.baud, serial_listener(config.port, seconds))
    except PermissionError:
        return Check("gps", FAIL, f"no permission to open {config.port}",
                     "add the user to group dialout: sudo usermod -aG dialout $USER (log in again)"), None
    except (OSError, ValueError) as exc:
        return Check("gps", FAIL, f"cannot open {config.port}: {exc}", UART_FIX), None
    return gps_verdict(config.baud, probes), probes[-1].fix


def gps_verdict(configured: int, probes: list[BaudProbe]) -> Check:
    """The verdict for a baud search: proven at the configured speed, at another one, or at none."""
    found = probes[-1]
    tried = ", ".join(f"{p.baud}: {p.valid} valid/{p.garbage} unreadable" for p in probes)
    if not found.proven:
        return Check("gps", FAIL, f"no readable NMEA at any speed ({tried})",
                     "check TX/RX are crossed (GPS TX to Pi pin 10), 3.3 V power, and " + UART_FIX)
    first = f"first sentence after {found.first_valid_s:.1f} s" if found.first_valid_s is not None else ""
    fix = "fix" if found.fix is not None else "no fix yet (normal indoors or in the first minutes)"
    if found.baud != configured:
        return Check("gps", FAIL, f"receiver talks at {found.baud} baud, config says {configured}; {first}",
                     f"set gps.baud: {found.baud}")
    verdict = OK if found.fix is not None else WARN
    return Check("gps", verdict, f"{found.valid} valid sentences at {found.baud} baud, {first}, {fix}",
                 "" if verdict == OK else "give the antenna a clear view of the sky and wait")


# ---- models ---------------------------------------------------------------------------------------------

def check_models(config: DetectConfig) -> list[Check]:
    models_dir = Path(config.models_dir) if config.models_dir else None
    return [_check_model(key, models_dir, config) for key in model_keys(config)]


def _check_model(key: str, models_dir: Path | None, config: DetectConfig) -> Check:
    name = f"model {key}"
    try:
        path = resolve_model(key, models_dir)
        session = create_session(path, config.providers, config.intra_op_threads)
    except ModelError as exc:
        return Check(name, FAIL, str(exc), "reinstall dashcam, or copy the model files listed in "
                                           "models/README.md into detect.models_dir")
    first = session.get_inputs()[0]
    dummy = np.zeros(_concrete_shape(first.shape), np.float32)
    started = time.perf_counter()
    session.run(None, {first.name: dummy})
    ms = (time.perf_counter() - started) * 1000
    used = session.get_providers()
    detail = f"sha256 ok, one inference {ms:.0f} ms at {dummy.shape[3]}x{dummy.shape[2]}, providers {used}"
    if used[0] != config.providers[0]:
        return Check(name, WARN, detail, f"{config.providers[0]} is not usable here: install the onnxruntime "
                                         "build for this board (e.g. onnxruntime-gpu from JetPack)")
    return Check(name, OK, detail)


def _concrete_shape(shape: list) -> tuple[int, ...]:
    """Batch 1, 3 channels, 640x640 wherever the model leaves a dimension open."""
    fallback = (1, 3, 640, 640)
    return tuple(d if isinstance(d, int) and d > 0 else fallback[i] for i, d in enumerate(shape))


# ---- disk -----------------------------------------------------------------------------------------------

def check_disk(config: RecordConfig, sys_root: Path = Path("/")) -> Check:
    folder = Path(config.directory)
    if not folder.is_dir():
        parent = _existing_parent(folder)
        if folder.exists() or not os.access(parent, os.W_OK | os.X_OK):
            return Check("disk", FAIL, f"recordings folder {folder} does not exist and cannot be created",
                         f"sudo mkdir -p {folder} && sudo chown dashcam: {folder} (or mount the drive)")
        return Check("disk", WARN, f"recordings folder {folder} does not exist yet (`dashcam run` creates it)",
                     f"mkdir -p {folder}, then run doctor again for the speed test")
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check("disk", FAIL, f"recordings folder {folder} is not writable",
                     f"sudo chown -R dashcam: {folder}, or remount the card read-write")
    usage = shutil.disk_usage(folder)
    fstype = filesystem_type(folder, sys_root / "proc" / "mounts")
    try:
        speed = write_speed_mb_s(folder)
    except OSError as exc:
        return Check("disk", FAIL, f"write test in {folder} failed: {exc.strerror or exc}",
                     "check the card (dmesg), it may be full, failing or mounted read-only")
    detail = (f"{folder} on {fstype}, {usage.free / 1e9:.1f} GB free (floor {config.min_free_bytes / 1e9:.1f} GB), "
              f"writes {speed:.1f} MB/s with fsync")
    if usage.free < config.min_free_bytes:
        return Check("disk", FAIL, detail, "free space, or lower record.min_free_bytes; locked/ is never "
                                           "deleted automatically")
    if speed < MIN_WRITE_MB_S:
        return Check("disk", WARN, detail, "use an A2/V30 card or a USB SSD")
    return Check("disk", OK, detail)


def _existing_parent(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.is_dir():
            return parent
    return Path("/")


def filesystem_type(path: Path, mounts_file: Path) -> str:
    """The type of the filesystem holding `path`: the longest mount point that contains it."""
    resolved = str(path.resolve())
    best, kind = "", "unknown"
    try:
        lines = mounts_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return kind
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def write_speed_mb_s(folder: Path, size: int = WRITE_TEST_BYTES) -> float:
    """Write `size` bytes in 1 MiB blocks, fsync, and delete; raises OSError."""
    path = folder / f".dashcam-doctor-{os.getpid()}.tmp"
    block = os.urandom(1 << 20)
    started = time.perf_counter()
    # A new file of our own (O_EXCL): never a link or file someone left under that name.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            for _ in range(max(1, size >> 20)):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        seconds = time.perf_counter() - started
    finally:
        path.unlink(missing_ok=True)
    return (max(1, size >> 20) << 20) / 1e6 / max(seconds, 1e-6)


# ---- clock ----------------------------------------------------------------------------------------------

def check_clock(fix: GpsFix | None, now: Callable[[], dt.datetime] | None = None) -> Check:
    system = (now or (lambda: dt.datetime.now(dt.timezone.utc)))()
    if system.year < MIN_PLAUSIBLE_YEAR:
        return Check("clock", FAIL, f"system clock says {system:%Y-%m-%d}: not set",
                     "enable time sync (sudo timedatectl set-ntp true) or add an RTC battery; "
                     "segment names and retention need the date")
    gps_time = fix_utc(fix) if fix is not None else None
    if fix is None or gps_time is None:
        return Check("clock", OK, f"system clock {system:%Y-%m-%d %H:%M:%S} UTC (no GPS time to compare)")
    skew = (system - gps_time).total_seconds() - (time.monotonic_ns() - fix.t_mono_ns) / 1e9
    if abs(skew) > MAX_CLOCK_SKEW_S:
        return Check("clock", WARN, f"system clock is {skew:+.1f} s off GPS time",
                     "enable time sync (sudo timedatectl set-ntp true), or gpsd + chrony for GPS time")
    return Check("clock", OK, f"system clock within {abs(skew):.1f} s of GPS time")


# ---- temperature ----------------------------------------------------------------------------------------

THROTTLE_BITS = {0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now",
                 3: "soft temperature limit now", 16: "under-voltage since boot",
                 17: "frequency capped since boot", 18: "throttled since boot",
                 19: "soft temperature limit since boot"}


def check_temperature(sys_root: Path = Path("/")) -> Check:
    throttled = read_throttled()
    hottest = hottest_c(sys_root)
    if throttled is None and hottest is None:
        return Check("temperature", SKIP, "no vcgencmd and no /sys/class/thermal zones on this machine")
    return temperature_verdict(hottest, throttled)


def temperature_verdict(hottest_c: float | None, throttled: int | None) -> Check:
    parts = [f"{hottest_c:.1f} °C"] if hottest_c is not None else []
    flags = [text for bit, text in THROTTLE_BITS.items() if throttled and throttled & (1 << bit)]
    parts.append(f"throttled=0x{throttled:x}" + (f" ({', '.join(flags)})" if flags else "")
                 if throttled is not None else "")
    detail = ", ".join(p for p in parts if p)
    if throttled and throttled & 0x1:
        return Check("temperature", FAIL, detail, "use the official 5 V/5 A (Pi 5) or 5 V/3 A (Pi 4) supply; "
                                                  "a car USB port is not enough")
    if (hottest_c is not None and hottest_c >= CRITICAL_C) or (throttled and throttled & 0x6):
        return Check("temperature", FAIL, detail, "fit a heatsink and fan (Active Cooler); keep it out of the sun")
    if (hottest_c is not None and hottest_c >= HOT_C) or (throttled and throttled & 0xF0000):
        return Check("temperature", WARN, detail, "improve cooling: it has been throttled or runs hot")
    return Check("temperature", OK, detail)


