"""The incident lock from an accelerometer (G-sensor): a crash's jolt requests a lock, a pothole's does not.

This module owns three things, kept apart so each is testable alone:

- reading an accelerometer, in m/s^2: `IioAccelerometer` through the kernel's IIO sysfs files (a chip with a
  kernel driver: LIS3DH, ADXL345, MPU-6050 ...), or `I2cAccelerometer` over I2C with the `smbus2` package, for
  an MPU-6050 or ADXL345 that has no driver bound (`smbus2` is imported only then, as `gpiod` is for the button);
- telling an impact from road noise: `ImpactDetector`, fed (t_mono_ns, ax, ay, az), no I/O, no threads;
- the sampling thread: `GSensorLock` calls `on_event(onset_mono_ns)` for every impact; the wiring points it at
  `SegmentRecorder.request_lock`, which takes the same monotonic time.

What is measured is the jolt |a - g|: the sample minus gravity, where gravity is 1 g along the samples' slow
average (time constant `GRAVITY_TAU_S`), so the camera may be mounted at any angle or upside down and nothing needs
calibrating, and a sideways crash reads as large as a vertical pothole does (| |a| - 1 g | would read a 3 g
sideways pulse as only 2.2 g). Nothing here knows or logs a location.
"""
from __future__ import annotations

import importlib
import logging
import math
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from edge.config import GSensorChip, GSensorConfig, GSensorSensitivity
from edge.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

STANDARD_GRAVITY = 9.80665  # m/s^2 per g
IIO_ROOT = Path("/sys/bus/iio/devices")

# The jolt beyond gravity, in g, that locks at each sensitivity. Everyday driving stays far below them: hard
# braking or cornering reaches about 0.8 g, and speed bumps give under 1 g. A collision's pulse lasts
# 50-150 ms; a change of speed of 10 km/h in 100 ms averages 2.8 g, and the pulse's peak is higher. Potholes
# give vertical spikes of 2-3 g, but for only about 10 ms, which `min_duration_ms` (not the threshold) rejects.
SENSITIVITY_G: dict[GSensorSensitivity, float] = {
    "high": 1.5,    # parking knocks and low-speed shunts; a sharp pothole may lock too
    "medium": 2.5,  # a collision changing the speed by about 10 km/h or more; not potholes
    "low": 3.5,     # clear collisions only, for rough roads or a stiff, rattling mount
}
# Gravity's direction is the samples' average over about this long. An impact is recognised `min_duration_ms`
# (20 ms) after it starts, when the average has moved by only 1 - exp(-20/300) = 6 % of the pulse; a mount
# turning over in 3 s lags by about 0.3 g, under the lowest threshold.
GRAVITY_TAU_S = 0.3
# The sample whose length is checked against 1 g: not the first, which a chip just woken may still read as 0.
AT_REST_CHECK_SAMPLE = 10
# Below this, engine vibration and a rough road would lock every few seconds and fill the card with locks.
MIN_THRESHOLD_G = 0.5


class Accelerometer(Protocol):
    """What `GSensorLock` samples."""

    name: str  # for logs: the chip and where it is, e.g. "lis3dh (iio:device0)"

    def read_ms2(self) -> tuple[float, float, float]:
        """One sample (x, y, z) in m/s^2; OSError or ValueError when it cannot be read."""
        ...

    def close(self) -> None: ...


# ---- the detection: pure, fed with samples -------------------------------------------------------------------

@dataclass(frozen=True)
class Impact:
    onset_mono_ns: int  # the first sample above the threshold
    peak_g: float
    duration_ms: float  # how long it had been above the threshold when it was recognized


class ImpactDetector:
    """Recognizes a jolt above `threshold_g` that lasts `min_duration_ms`, then stays quiet for `cooldown_s`.

    Each sample stands for the time since the one before it, capped at `max_sample_span_ms`: a stall in
    sampling (a busy CPU, a slow bus) must not stretch one loud sample into a long impact.
    """

    def __init__(self, threshold_g: float, min_duration_ms: float, cooldown_s: float,
                 max_sample_span_ms: float = 15.0) -> None:
        self.threshold_g = threshold_g
        self._min_duration_ns = round(min_duration_ms * 1e6)
        self._cooldown_ns = round(cooldown_s * 1e9)
        self._max_span_ns = round(max_sample_span_ms * 1e6)
        self._previous_ns: int | None = None
        self._onset_ns: int | None = None  # set while the signal is above the threshold
        self._above_ns = 0
        self._peak_g = 0.0
        self._quiet_until_ns: int | None = None
        # After an impact the signal must drop below the threshold once before the next can count: a stuck or
        # mis-scaled sensor would otherwise lock again after every cooldown.
        self._must_settle = False
        self._mean: tuple[float, float, float] | None = None  # m/s^2, the samples' slow average

    def dynamic_g(self, ax: float, ay: float, az: float, span_ns: int = 0) -> float:
        """|a - g| in g for a sample in m/s^2, then the gravity estimate moved towards the sample.

        g is 1 g along the samples' slow average: its direction follows the mounting, its length stays 1 g,
        so a mis-scaled or stuck sensor reads as one lasting jolt (locked once), not as a new gravity.
        """
        if not all(map(math.isfinite, (ax, ay, az))):
            return math.nan  # a broken reading: quiet, and not part of the average
        if self._mean is None:
            self._mean = (ax, ay, az)  # the first sample: the camera at rest, whichever way it points
        mx, my, mz = self._mean
        length = math.sqrt(mx * mx + my * my + mz * mz)
        if length == 0.0:  # free fall since start: no direction yet, so only the length can be judged
            jolt_g = abs(math.sqrt(ax * ax + ay * ay + az * az) / STANDARD_GRAVITY - 1.0)
        else:
            gx, gy, gz = (STANDARD_GRAVITY * m / length for m in (mx, my, mz))
            jolt_g = math.sqrt((ax - gx) ** 2 + (ay - gy) ** 2 + (az - gz) ** 2) / STANDARD_GRAVITY
        weight = min(1.0, span_ns / (GRAVITY_TAU_S * 1e9))
        self._mean = (mx + weight * (ax - mx), my + weight * (ay - my), mz + weight * (az - mz))
        return jolt_g

    def feed(self, t_mono_ns: int, ax: float, ay: float, az: float) -> Impact | None:
        """Takes one sample in m/s^2; returns the impact this sample completes, if any."""
        span_ns = 0 if self._previous_ns is None else min(max(t_mono_ns - self._previous_ns, 0), self._max_span_ns)
        self._previous_ns = t_mono_ns
        jolt_g = self.dynamic_g(ax, ay, az, span_ns)
        if not jolt_g >= self.threshold_g:  # written so that a NaN (a broken reading) counts as quiet
            self._onset_ns = None
            self._must_settle = False
            return None
        if self._must_settle or (self._quiet_until_ns is not None and t_mono_ns < self._quiet_until_ns):
            return None
        if self._onset_ns is None:
            self._onset_ns, self._above_ns, self._peak_g = t_mono_ns, 0, 0.0
        self._above_ns += span_ns
        self._peak_g = max(self._peak_g, jolt_g)
        if self._above_ns < self._min_duration_ns:
            return None
        impact = Impact(self._onset_ns, self._peak_g, self._above_ns / 1e6)
        self._onset_ns = None
        self._quiet_until_ns = t_mono_ns + self._cooldown_ns
        self._must_settle = True
        return impact

    def reset(self) -> None:
        """Forget a jolt in progress and the last sample's time (after a gap in the samples); the cooldown stays."""
        self._previous_ns = None
        self._onset_ns = None


def threshold_for(config: GSensorConfig) -> float:
    """The jolt in g that locks: `threshold_g` when set, else the sensitivity's."""
    if config.threshold_g == 0:
        return SENSITIVITY_G[config.sensitivity]
    if config.threshold_g < MIN_THRESHOLD_G:
        raise ConfigError(f"gsensor.threshold_g: {config.threshold_g} g is below {MIN_THRESHOLD_G} g: road noise "
                          "would lock every few seconds (0 = from gsensor.sensitivity)")
    return config.threshold_g


# ---- Linux IIO: a chip with a kernel driver ------------------------------------------------------------------

AXES = ("x", "y", "z")


class IioAccelerometer:
    """An accelerometer under /sys/bus/iio/devices: value in m/s^2 = (in_accel_X_raw + offset) * scale.

    Scale and offset are read once at open: they change only when someone changes the chip's range, and reading
    them with every sample would triple the reads.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.chip = _read_text(folder / "name", default="unknown chip")
        self.name = f"{self.chip} ({folder.name})"
        if not folder.is_dir():
            raise SourceError(f"gsensor.iio_device: {folder} does not exist (the IIO devices here: "
                              f"{_listing(folder.parent)})")
        if not (folder / "in_accel_x_raw").is_file():
            raise SourceError(f"gsensor: {folder} ({self.chip}) has no in_accel_x_raw: it is not an accelerometer")
        self._raw_paths = tuple(folder / f"in_accel_{axis}_raw" for axis in AXES)
        self._scales = tuple(self._calibration(axis, "scale", required=True) for axis in AXES)
        self._offsets = tuple(self._calibration(axis, "offset", required=False) for axis in AXES)
        try:
            self.read_ms2()
        except (OSError, ValueError) as exc:
            raise SourceError(f"gsensor: cannot read the accelerometer {self.name}: {_reason(exc)}") from None

    @classmethod
    def find(cls, device: str = "", root: Path = IIO_ROOT) -> IioAccelerometer:
        """The accelerometer `device` names (iio:deviceN, N, a folder, or a chip name), or the first one found."""
        if not device:
            return cls(_first_accelerometer(root))
        if "/" in device:
            folder = Path(device)
        elif device.isdigit():
            folder = root / f"iio:device{device}"
        elif re.fullmatch(r"iio:device\d+", device):
            folder = root / device
        else:
            folder = _device_named(device, root)
        return cls(folder)

    def read_ms2(self) -> tuple[float, float, float]:
        x, y, z = (_read_number(path, int) for path in self._raw_paths)
        return ((x + self._offsets[0]) * self._scales[0], (y + self._offsets[1]) * self._scales[1],
                (z + self._offsets[2]) * self._scales[2])

    def close(self) -> None:
        pass  # every sample opens and closes its files: a device that comes back is read again as it is

    def _calibration(self, axis: str, kind: Literal["scale", "offset"], required: bool) -> float:
        """The axis's own in_accel_X_KIND, else the shared in_accel_KIND (the IIO ABI allows either)."""
        for path in (self.folder / f"in_accel_{axis}_{kind}", self.folder / f"in_accel_{kind}"):
            if path.is_file():
                try:
                    value = _read_number(path, float)
                except (OSError, ValueError) as exc:
                    raise SourceError(f"gsensor: cannot read {path}: {_reason(exc)}") from None
                if kind == "scale" and value == 0:
                    raise SourceError(f"gsensor: {path} is 0: the accelerometer would always read 0")
                return value
        if required:
            raise SourceError(f"gsensor: {self.name} has neither in_accel_{axis}_scale nor in_accel_scale: its raw "
                              "values cannot be turned into m/s^2")
        return 0.0


def _device_number(folder: Path) -> int:
    match = re.fullmatch(r"iio:device(\d+)", folder.name)
    return int(match.group(1)) if match else -1


def _iio_devices(root: Path) -> list[Path]:
    """The iio:deviceN folders under root, by N (iio:device10 after iio:device2); triggers and others left out."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    return sorted((p for p in entries if _device_number(p) >= 0 and p.is_dir()), key=_device_number)


def _first_accelerometer(root: Path) -> Path:
    for folder in _iio_devices(root):
        if (folder / "in_accel_x_raw").is_file():
            return folder
    raise SourceError(f"gsensor: no accelerometer under {root} (no iio:device* has in_accel_x_raw; the IIO devices "
                      f"here: {_listing(root)}): load the chip's kernel driver, use gsensor.source i2c, or set "
                      "gsensor.source none")


def _device_named(chip: str, root: Path) -> Path:
    for folder in _iio_devices(root):
        if _read_text(folder / "name", default="") == chip:
            return folder
    raise SourceError(f"gsensor.iio_device: no IIO device named {chip!r} under {root} (the IIO devices here: "
                      f"{_listing(root)})")


def _listing(root: Path) -> str:
    """'iio:device0 lis3dh, iio:device1 ads1015' for error messages, or why there is nothing."""
    if not root.is_dir():
        return f"none, {root} does not exist"
    names = [f"{p.name} {_read_text(p / 'name', default='?')}" for p in _iio_devices(root)]
    return ", ".join(names) if names else "none"


def _read_text(path: Path, default: str) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return default


def _read_number(path: Path, kind: Callable[[str], float]) -> float:
    """A sysfs value such as '-123\\n' or '0.009576806\\n'; ValueError names the file and a bit of the text."""
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{path.name} holds {text[:20]!r}, not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path.name} holds {text[:20]!r}, not a finite number")
    return value


def _reason(exc: BaseException) -> str:
    return (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)


# ---- I2C: a chip without a kernel driver, with smbus2 ---------------------------------------------------------

class SMBusLike(Protocol):
    """The part of `smbus2.SMBus` the I2C reader uses."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class I2cChip:
    label: str
    default_address: int
    id_register: int
    chip_id: int
    setup: tuple[tuple[int, int], ...]  # (register, value) written in this order at open
    data_register: int  # X, Y, Z as three signed 16-bit values from here
    byteorder: Literal["big", "little"]
    g_per_lsb: float


I2C_CHIPS: dict[GSensorChip, I2cChip] = {
    # MPU-6050 register map: PWR_MGMT_1 0x6B = 0 wakes it (it starts asleep); ACCEL_CONFIG 0x1C AFS_SEL=3 (0x18)
    # is +-16 g at 2048 LSB/g, because the default +-2 g would clip a crash's pulse; ACCEL_XOUT_H 0x3B, big-endian;
    # WHO_AM_I 0x75 reads 0x68.
    "mpu6050": I2cChip("MPU-6050", 0x68, 0x75, 0x68, ((0x6B, 0x00), (0x1C, 0x18)), 0x3B, "big", 1 / 2048),
    # ADXL345: DATA_FORMAT 0x31 = FULL_RES | +-16 g (0x0B), 3.9 mg/LSB in every range; POWER_CTL 0x2D = 0x08
    # starts measuring (last, as the kernel driver does); DATAX0 0x32, little-endian; DEVID 0x00 reads 0xE5.
    "adxl345": I2cChip("ADXL345", 0x53, 0x00, 0xE5, ((0x31, 0x0B), (0x2D, 0x08)), 0x32, "little", 0.0039),
}


class I2cAccelerometer:
    """An MPU-6050 or ADXL345 read directly over I2C, set to +-16 g at open."""

    def __init__(self, bus: SMBusLike, chip: I2cChip, address: int, bus_name: str = "i2c") -> None:
        self._bus = bus
        self._chip = chip
        self._address = address
        self._format = (">" if chip.byteorder == "big" else "<") + "hhh"
        self._ms2_per_lsb = chip.g_per_lsb * STANDARD_GRAVITY
        self.name = f"{chip.label} (0x{address:02x} on {bus_name})"
        try:
            self._check_id()
            for register, value in chip.setup:
                bus.write_byte_data(address, register, value)
            self.read_ms2()
        except (OSError, ValueError) as exc:
            raise SourceError(f"gsensor: no answer from an {self.name}: {_reason(exc)} (check the wiring and "
                              "gsensor.i2c_address; `i2cdetect -y BUS` lists the addresses that answer)") from None

    def _check_id(self) -> None:
        chip_id = self._bus.read_byte_data(self._address, self._chip.id_register)
        if chip_id != self._chip.chip_id:
            # Clones and relatives (MPU-6500 and others) answer other ids with the same registers: read on, but say so.
            log.warning("the chip at 0x%02x answers id 0x%02x, not the 0x%02x of an %s; reading it as one",
                        self._address, chip_id, self._chip.chip_id, self._chip.label)

    @classmethod
    def open(cls, bus_number: int, chip_key: GSensorChip, address: int = 0,
             open_bus: Callable[[int], SMBusLike] | None = None) -> I2cAccelerometer:
        chip = I2C_CHIPS[chip_key]
        address = address or chip.default_address
        if not 0x08 <= address <= 0x77:
            raise ConfigError(f"gsensor.i2c_address: 0x{address:02x} is a reserved I2C address (0x08-0x77 are usable)")
        opener = open_bus or _smbus2_opener()
        try:
            bus = opener(bus_number)
        except OSError as exc:
            raise SourceError(f"gsensor: cannot open /dev/i2c-{bus_number}: {_reason(exc)} (is I2C enabled, and is "
                              "this user in the i2c group?)") from None
        try:
            return cls(bus, chip, address, bus_name=f"/dev/i2c-{bus_number}")
        except SourceError:
            bus.close()
            raise

    def read_ms2(self) -> tuple[float, float, float]:
        data = self._bus.read_i2c_block_data(self._address, self._chip.data_register, 6)
        if len(data) != 6:
            raise ValueError(f"{len(data)} bytes instead of 6")
        x, y, z = struct.unpack(self._format, bytes(data))
        return x * self._ms2_per_lsb, y * self._ms2_per_lsb, z * self._ms2_per_lsb

    def close(self) -> None:
        self._bus.close()


def _smbus2_opener() -> Callable[[int], SMBusLike]:
    try:
        smbus2: Any = importlib.import_module("smbus2")
    except ImportError:
        raise SourceError("gsensor.source i2c needs the smbus2 package: pip install smbus2 (or pip install "
                          "'privacy-dashcam[gsensor]')") from None
    opener: Callable[[int], SMBusLike] = smbus2.SMBus
    return opener


# ---- the sampling thread -------------------------------------------------------------------------------------

class GSensorLock:
    """Samples an accelerometer in its own thread; calls `on_event(onset_mono_ns)` (from that thread) per impact.

    An unreadable sample is counted and logged at most once every `error_log_every_s`; after `gone_after_s` of
    nothing but failures the device counts as gone: one warning, then a try every `retry_every_s` until it answers.
    """

    def __init__(self, reader: Accelerometer, detector: ImpactDetector, on_event: Callable[[int], None], *,
                 rate_hz: float = 100.0, gone_after_s: float = 2.0, retry_every_s: float = 1.0,
                 error_log_every_s: float = 60.0) -> None:
        self._reader = reader
        self._detector = detector
        self._on_event = on_event
        self._period_ns = round(1e9 / rate_hz)
        self._gone_after_ns = round(gone_after_s * 1e9)
        self._retry_ns = round(retry_every_s * 1e9)
        self._error_log_every_ns = round(error_log_every_s * 1e9)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, name="gsensor", daemon=True)
        self._failing_since_ns: int | None = None
        self._last_error_log_ns: int | None = None
        self.gone = False
        self.samples = 0
        self.read_errors = 0
        self.events = 0

    @classmethod
    def open(cls, config: GSensorConfig, on_event: Callable[[int], None], *, iio_root: Path = IIO_ROOT,
             open_bus: Callable[[int], SMBusLike] | None = None) -> GSensorLock | None:
        """The lock `config` describes, not started; None when gsensor.source is none."""
        if config.source == "none":
            return None
        detector = ImpactDetector(threshold_for(config), config.min_duration_ms, config.cooldown_s,
                                  max_sample_span_ms=1.5e3 / config.rate_hz)
        reader: Accelerometer
        if config.source == "iio":
            reader = IioAccelerometer.find(config.iio_device, iio_root)
        else:
            reader = I2cAccelerometer.open(config.i2c_bus, config.i2c_chip, config.i2c_address, open_bus)
        return cls(reader, detector, on_event, rate_hz=config.rate_hz)

    def start(self) -> None:
        self._thread.start()
        log.info("G-sensor incident lock on %s: %.1f g beyond gravity", self._reader.name, self._detector.threshold_g)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 + self._retry_ns / 1e9)
        self._reader.close()

    def _sample_loop(self) -> None:
        next_ns = time.monotonic_ns()
        while not self._stop.is_set():
            t_ns = time.monotonic_ns()
            try:
                x, y, z = self._reader.read_ms2()
            except (OSError, ValueError) as exc:
                self._read_failed(t_ns, exc)
            else:
                self._read_ok(t_ns, x, y, z)
            # A fixed grid of sample times, but no burst to catch up after a stall: the detector caps each
            # sample's span, and old moments cannot be sampled late anyway.
            next_ns = max(next_ns + (self._retry_ns if self.gone else self._period_ns), time.monotonic_ns())
            self._stop.wait((next_ns - time.monotonic_ns()) / 1e9)

    def _read_ok(self, t_ns: int, x: float, y: float, z: float) -> None:
        if self.samples == AT_REST_CHECK_SAMPLE:
            self._check_at_rest(x, y, z)
        if self.gone:
            log.warning("the accelerometer %s answers again; G-sensor locks are back on", self._reader.name)
            self.gone = False
        self._failing_since_ns = None
        self.samples += 1
        impact = self._detector.feed(t_ns, x, y, z)
        if impact is not None:
            self.events += 1
            log.warning("G-sensor impact: %.1f g beyond gravity for %.0f ms or more; locking the incident",
                        impact.peak_g, impact.duration_ms)
            self._on_event(impact.onset_mono_ns)

    def _read_failed(self, t_ns: int, exc: OSError | ValueError) -> None:
        self.read_errors += 1
        if self._failing_since_ns is None:
            self._failing_since_ns = t_ns
        if not self.gone and t_ns - self._failing_since_ns >= self._gone_after_ns:
            self.gone = True
            self._detector.reset()
            log.warning("the accelerometer %s stopped answering (%s); no G-sensor locks until it is back, trying "
                        "every %.0f s", self._reader.name, _reason(exc), self._retry_ns / 1e9)
        elif not self.gone and (self._last_error_log_ns is None
                                or t_ns - self._last_error_log_ns >= self._error_log_every_ns):
            self._last_error_log_ns = t_ns
            log.warning("the accelerometer %s gave an unreadable sample (%s); %d so far", self._reader.name,
                        _reason(exc), self.read_errors)

    def _check_at_rest(self, x: float, y: float, z: float) -> None:
        """A wrong scale makes every jolt lock, or none: at start the camera should feel about 1 g."""
        magnitude_g = math.sqrt(x * x + y * y + z * z) / STANDARD_GRAVITY
        if not 0.5 <= magnitude_g <= 1.5:
            log.warning("the accelerometer %s reads %.2f g at start, not about 1 g: check its scale", self._reader.name,
                        magnitude_g)
