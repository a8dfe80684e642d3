"""The G-sensor incident lock: impact detection on synthetic traces, IIO sysfs trees and I2C chips faked at the edge,
and the sampling thread against a fake IIO tree that the test rewrites while it runs."""
from __future__ import annotations

import importlib.util
import logging
import math
import struct
import threading
import time
from collections.abc import Callable, Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_iio_device, write_sysfs
from edge.config import GSensorConfig, config_from_dict
from edge.errors import ConfigError, SourceError
from edge.record.gsensor import (
    MIN_THRESHOLD_G,
    SENSITIVITY_G,
    STANDARD_GRAVITY,
    GSensorLock,
    I2cAccelerometer,
    IioAccelerometer,
    Impact,
    ImpactDetector,
    threshold_for,
)

G = STANDARD_GRAVITY
MS = 1_000_000  # ns
PERIOD_NS = 10 * MS  # 100 Hz
Sample = tuple[int, float, float, float]  # t_mono_ns, ax, ay, az in m/s^2


# ---- synthetic traces (100 Hz, m/s^2, seeded noise) ----------------------------------------------------------

def _trace(accel_g: np.ndarray, seed: int, noise_g: float = 0.02, start_ns: int = 10**12) -> list[Sample]:
    """Rows of (x, y, z) in g -> timed samples in m/s^2 with a little sensor noise."""
    noisy = accel_g + np.random.default_rng(seed).normal(0.0, noise_g, accel_g.shape)
    return [(start_ns + i * PERIOD_NS, *(float(v) * G for v in row)) for i, row in enumerate(noisy)]


def _at_rest(seconds: float, gravity_g: Iterable[float] = (0.0, 0.26, 0.97)) -> np.ndarray:
    """The camera still, tilted 15 degrees on its mount."""
    return np.tile(np.asarray(list(gravity_g), dtype=float), (round(seconds * 100), 1))


def _crash_pulse(peak_g: float = 5.0, ms: int = 100) -> np.ndarray:
    """A collision: a half-sine pulse along x (the driving direction; negative peak_g pushes the other way), as
    crash pulses are usually modelled."""
    pulse = _at_rest(ms / 1000 + 0.01)
    pulse[:, 0] -= peak_g * np.sin(np.linspace(0.0, math.pi, len(pulse)))
    return pulse


def crash_trace(seed: int = 1, aftershock_after_s: float | None = None) -> list[Sample]:
    """Rest, hard braking (0.7 g for half a second), the impact (5 g peak over 100 ms, a change of speed of about
    11 km/h), a rebound, rest; optionally a second, smaller impact (the car behind) some seconds later."""
    braking = _at_rest(0.5)
    braking[:, 0] -= 0.7
    parts = [_at_rest(2.0), braking, _crash_pulse(), _crash_pulse(peak_g=-1.0), _at_rest(1.0)]
    if aftershock_after_s is not None:
        parts += [_at_rest(aftershock_after_s - 1.0), _crash_pulse(peak_g=4.0, ms=80), _at_rest(1.0)]
    return _trace(np.concatenate(parts), seed)


CRASH_START_NS = 10**12 + 250 * PERIOD_NS  # where crash_trace's impact begins


def pothole_trace(seed: int = 2) -> list[Sample]:
    """A wheel hitting a pothole's edge: a vertical spike of about 3 g for one to two samples, then the mount
    ringing and dying away (in g beyond gravity, along the camera's z)."""
    spike = np.array([3.0, 2.1, -1.1, 0.9, -0.6, 0.4, -0.25, 0.15, -0.1])
    bump = _at_rest(len(spike) / 100, gravity_g=(0.0, 0.0, 1.0))
    bump[:, 2] += spike
    return _trace(np.concatenate([_at_rest(1.0, (0.0, 0.0, 1.0)), bump, _at_rest(1.0, (0.0, 0.0, 1.0))]), seed)


def replay(detector: ImpactDetector, samples: Iterable[Sample]) -> list[Impact]:
    return [impact for sample in samples if (impact := detector.feed(*sample)) is not None]


def detector_for(sensitivity: str = "medium", **overrides: float) -> ImpactDetector:
    config = GSensorConfig(source="iio", sensitivity=sensitivity, **overrides)
    return ImpactDetector(threshold_for(config), config.min_duration_ms, config.cooldown_s)


# ---- detection -------------------------------------------------------------------------------------------

def test_a_crash_locks_once_at_the_default_level_near_its_start():
    (impact,) = replay(detector_for(), crash_trace())
    assert CRASH_START_NS <= impact.onset_mono_ns <= CRASH_START_NS + 50 * MS
    assert impact.peak_g > SENSITIVITY_G["medium"] and impact.duration_ms >= 20


@pytest.mark.parametrize("sensitivity", ["low", "medium", "high"])
def test_a_crash_locks_at_every_level(sensitivity):
    assert len(replay(detector_for(sensitivity), crash_trace(seed=3))) == 1


def test_a_second_impact_inside_the_cooldown_does_not_lock_again_but_one_after_it_does():
    assert len(replay(detector_for(), crash_trace(aftershock_after_s=3.0))) == 1
    later = replay(detector_for(), crash_trace(aftershock_after_s=12.0))
    assert len(later) == 2 and later[1].onset_mono_ns - later[0].onset_mono_ns > 10 * 10**9


def test_a_pothole_does_not_lock_at_the_default_level_but_does_at_high():
    assert replay(detector_for("medium"), pothole_trace()) == []
    assert replay(detector_for("low"), pothole_trace()) == []
    assert len(replay(detector_for("high"), pothole_trace())) == 1


def test_an_explicit_threshold_overrides_the_sensitivity():
    assert threshold_for(GSensorConfig(sensitivity="low", threshold_g=1.2)) == 1.2
    assert len(replay(detector_for("low", threshold_g=1.2), pothole_trace())) == 1
    assert [threshold_for(GSensorConfig(sensitivity=s)) for s in ("high", "medium", "low")] == [1.5, 2.5, 3.5]


def test_a_threshold_road_noise_would_cross_is_refused():
    with pytest.raises(ConfigError, match=r"gsensor.threshold_g: 0.2 g is below 0.5 g"):
        threshold_for(GSensorConfig(threshold_g=0.2))


def test_a_stall_in_sampling_does_not_stretch_one_loud_sample_into_an_impact():
    detector = detector_for()
    quiet, loud = (0.0, 0.0, G), (0.0, 0.0, 4.5 * G)
    assert detector.feed(0, *quiet) is None and detector.feed(10 * MS, *quiet) is None
    assert detector.feed(400 * MS, *loud) is None  # 390 ms after the last sample, but one sample is one sample
    assert detector.feed(410 * MS, *quiet) is None


def test_a_sensor_stuck_above_the_threshold_locks_once_not_every_cooldown():
    detector = ImpactDetector(threshold_g=2.5, min_duration_ms=20, cooldown_s=1.0)
    stuck = [(i * PERIOD_NS, 0.0, 0.0, 5 * G) for i in range(500)]  # 5 s at 4 g beyond gravity
    assert len(replay(detector, stuck)) == 1
    assert replay(detector, [(5 * 10**9 + i * PERIOD_NS, 0.0, 0.0, G) for i in range(3)]) == []
    assert len(replay(detector, [(6 * 10**9 + i * PERIOD_NS, 0.0, 0.0, 5 * G) for i in range(3)])) == 1


def test_a_sideways_crash_reads_as_large_as_it_is():
    """A 3.2 g pulse across the car, after braking: |a - g| reads about 3 g, where | |a| - 1 g | would read
    sqrt(1 + 3.2^2) - 1 = 2.35 g and miss it at the default level."""
    braking = _at_rest(0.5)
    braking[:, 0] -= 0.7
    side = _at_rest(0.11)
    side[:, 1] += 3.2 * np.sin(np.linspace(0.0, math.pi, len(side)))
    impacts = replay(detector_for("medium"), _trace(np.concatenate([_at_rest(2.0), braking, side, _at_rest(1.0)]), 3))
    assert len(impacts) == 1 and impacts[0].peak_g > 2.9


def test_a_broken_reading_is_quiet():
    detector = ImpactDetector(threshold_g=0.5, min_duration_ms=0, cooldown_s=0)  # the first loud sample locks
    assert detector.feed(0, math.nan, 0.0, G) is None and detector.feed(MS, 0.0, 0.0, 3 * G) is not None


ORIENTATIONS = {"upright": (0, 0, 1), "upside down": (0, 0, -1), "on its side": (1, 0, 0), "facing down": (0, -1, 0),
                "tilted 30 degrees": (0.0, 0.5, math.sqrt(3) / 2), "askew": (0.48, -0.6, -0.64)}


@pytest.mark.parametrize("gravity_g", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_gravity_alone_never_locks_whichever_way_the_camera_points(gravity_g):
    assert replay(ImpactDetector(MIN_THRESHOLD_G, 0, 0), _trace(_at_rest(10.0, gravity_g), seed=4, noise_g=0.05)) == []


def test_the_camera_turning_over_slowly_does_not_lock():
    angle = np.linspace(0.0, math.pi, 300)  # upright to upside down in 3 s: a mount that came loose
    turning = np.stack([np.zeros_like(angle), np.sin(angle), np.cos(angle)], axis=1)
    assert replay(ImpactDetector(MIN_THRESHOLD_G, 0, 0), _trace(turning, seed=5)) == []


@settings(max_examples=60, deadline=None)
@given(polar=st.floats(0.0, math.pi), azimuth=st.floats(0.0, 2 * math.pi), noise_g=st.floats(0.0, 0.05),
       seed=st.integers(0, 2**32 - 1))
def test_any_still_orientation_with_small_noise_never_locks(polar, azimuth, noise_g, seed):
    gravity_g = (math.sin(polar) * math.cos(azimuth), math.sin(polar) * math.sin(azimuth), math.cos(polar))
    noisy = _at_rest(2.0, gravity_g) + np.random.default_rng(seed).uniform(-noise_g, noise_g, (200, 3))
    assert replay(ImpactDetector(MIN_THRESHOLD_G, 0, 0), _trace(noisy, seed, noise_g=0.0)) == []


# ---- a fake IIO sysfs tree ------------------------------------------------------------------------------------

def test_a_shared_scale_turns_counts_into_m_s2(tmp_path):
    folder = make_iio_device(tmp_path, 0, raw=(-250, 10, 1000))
    assert IioAccelerometer(folder).read_ms2() == pytest.approx((-0.25 * G, 0.01 * G, G))


def test_per_axis_scales_win_over_the_shared_one(tmp_path):
    folder = make_iio_device(tmp_path, 0, raw=(100, 200, 400), in_accel_x_scale="0.01", in_accel_y_scale="0.02",
                             in_accel_z_scale="0.005", in_accel_scale="99")
    assert IioAccelerometer(folder).read_ms2() == pytest.approx((1.0, 4.0, 2.0))


def test_offsets_are_added_before_scaling(tmp_path):
    folder = make_iio_device(tmp_path, 0, raw=(110, 0, 1000), in_accel_x_offset="-10", in_accel_offset="5")
    assert IioAccelerometer(folder).read_ms2() == pytest.approx((0.1 * G, 0.005 * G, 1.005 * G))


def test_auto_detection_takes_the_first_device_with_in_accel_x_raw(tmp_path):
    make_iio_device(tmp_path, 0, name="bmg160", raw=None, in_anglvel_x_raw=3)  # a gyroscope
    make_iio_device(tmp_path, 1, name=None, raw=None, in_voltage0_raw=812)  # an ADC without a name file
    make_iio_device(tmp_path, 10, name="adxl345")
    make_iio_device(tmp_path, 2, name="lis3dh")
    (tmp_path / "trigger0").mkdir()
    found = IioAccelerometer.find("", root=tmp_path)
    assert found.folder.name == "iio:device2" and found.name == "lis3dh (iio:device2)"


@pytest.mark.parametrize("spec", ["adxl345", "iio:device10", "10", "{root}/iio:device10"])
def test_a_device_is_named_by_chip_number_or_folder(tmp_path, spec):
    make_iio_device(tmp_path, 2, name="lis3dh")
    make_iio_device(tmp_path, 10, name="adxl345")
    assert IioAccelerometer.find(spec.format(root=tmp_path), root=tmp_path).chip == "adxl345"


def test_a_numeric_iio_device_in_the_config_file_is_a_device_number(tmp_path):
    make_iio_device(tmp_path, 1)
    config = config_from_dict({"gsensor": {"source": "iio", "iio_device": 1}}).gsensor
    lock = GSensorLock.open(config, lambda t: None, iio_root=tmp_path)
    assert lock is not None and config.iio_device == "1"


@pytest.mark.parametrize("setup, spec, message", [
    (lambda root: None, "", r"no accelerometer under .*fake-sys \(.*none, .*does not exist\)"),
    (lambda root: root.mkdir(), "", r"no accelerometer under .*fake-sys \(.* here: none\)"),
    (lambda root: make_iio_device(root, 0, name="bmg160", raw=None), "", r"here: iio:device0 bmg160\)"),
    (lambda root: make_iio_device(root, 0), "3", r"iio_device: .*iio:device3 does not exist .*iio:device0 lis3dh"),
    (lambda root: make_iio_device(root, 0), "mpu6050", r"no IIO device named 'mpu6050'"),
    (lambda root: make_iio_device(root, 0, name="ads1015", raw=None), "0", r"\(ads1015\) has no in_accel_x_raw"),
    (lambda root: make_iio_device(root, 0, in_accel_scale="0"), "", r"in_accel_scale is 0"),
    (lambda root: make_iio_device(root, 0, in_accel_scale="fast"), "", r"in_accel_scale holds 'fast', not a number"),
])
def test_a_missing_or_unusable_device_is_one_clear_source_error(tmp_path, setup, spec, message):
    root = tmp_path / "fake-sys"
    setup(root)
    with pytest.raises(SourceError, match=message) as err:
        GSensorLock.open(GSensorConfig(source="iio", iio_device=spec), lambda t: None, iio_root=root)
    assert "\n" not in str(err.value)


def test_a_device_without_a_scale_is_refused(tmp_path):
    folder = make_iio_device(tmp_path, 0)
    (folder / "in_accel_scale").unlink()
    with pytest.raises(SourceError, match=r"neither in_accel_x_scale nor in_accel_scale"):
        IioAccelerometer(folder)


def test_garbage_in_a_raw_file_is_a_value_error_naming_the_file(tmp_path):
    folder = make_iio_device(tmp_path, 0)
    reader = IioAccelerometer(folder)
    write_sysfs(folder / "in_accel_y_raw", "\x00garbage")
    with pytest.raises(ValueError, match=r"in_accel_y_raw holds '\\x00garbage', not a number"):
        reader.read_ms2()
    with pytest.raises(SourceError, match="cannot read the accelerometer lis3dh"):
        IioAccelerometer(folder)


def test_the_config_section_is_off_by_default_and_validated():
    assert GSensorConfig().source == "none" and GSensorLock.open(GSensorConfig(), lambda t: None) is None
    config = config_from_dict({"gsensor": {"source": "i2c", "i2c_chip": "adxl345", "i2c_address": 0x1D}}).gsensor
    assert (config.i2c_chip, config.i2c_address, config.sensitivity) == ("adxl345", 0x1D, "medium")
    with pytest.raises(ConfigError, match="gsensor.sensitivity: expected one of low, medium, high"):
        config_from_dict({"gsensor": {"sensitivity": "max"}})
    with pytest.raises(ConfigError, match="gsensor.rate_hz: expected at least 50"):
        config_from_dict({"gsensor": {"rate_hz": 10}})


# ---- the sampling thread against the fake tree --------------------------------------------------------------

def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Calls:
    """The on_event callback: remembers the onset times and lets a test wait for them."""

    def __init__(self) -> None:
        self.onsets: list[int] = []
        self.arrived = threading.Semaphore(0)

    def __call__(self, onset_mono_ns: int) -> None:
        self.onsets.append(onset_mono_ns)
        self.arrived.release()


def test_the_thread_locks_once_on_a_crash_written_into_the_files(tmp_path):
    folder = make_iio_device(tmp_path, 0, raw=(0, 260, 970))
    calls = Calls()
    lock = GSensorLock.open(GSensorConfig(source="iio"), calls, iio_root=tmp_path)
    assert lock is not None
    lock.start()
    try:
        assert wait_until(lambda: lock.samples >= 5)
        before_ns = time.monotonic_ns()
        write_sysfs(folder / "in_accel_x_raw", -4500)  # 4.5 g against the driving direction, held
        assert calls.arrived.acquire(timeout=5)
        samples_at_lock = lock.samples
        assert wait_until(lambda: lock.samples >= samples_at_lock + 30)  # it stays loud: still one lock
        write_sysfs(folder / "in_accel_x_raw", 0)
    finally:
        lock.stop()
    assert lock.events == 1 and len(calls.onsets) == 1 and before_ns <= calls.onsets[0] <= time.monotonic_ns()
    assert lock.read_errors == 0


def test_garbage_in_a_raw_file_is_counted_and_does_not_stop_the_thread(tmp_path, caplog):
    folder = make_iio_device(tmp_path, 0)
    calls = Calls()
    lock = GSensorLock(IioAccelerometer(folder), ImpactDetector(2.5, 20, 10), calls)
    caplog.set_level(logging.WARNING, logger="edge.record.gsensor")
    lock.start()
    try:
        write_sysfs(folder / "in_accel_z_raw", "garbage")
        assert wait_until(lambda: lock.read_errors >= 10)
        write_sysfs(folder / "in_accel_z_raw", 1000)
        assert wait_until(lambda: lock.samples >= 3)
        write_sysfs(folder / "in_accel_z_raw", 5000)
        assert calls.arrived.acquire(timeout=5)
    finally:
        lock.stop()
    unreadable = [r for r in caplog.records if "unreadable sample" in r.getMessage()]
    assert len(unreadable) == 1 and "in_accel_z_raw holds 'garbage'" in unreadable[0].getMessage()
    assert lock.events == 1 and not lock.gone


def test_a_device_that_goes_away_is_reported_once_and_read_again_when_it_is_back(tmp_path, caplog):
    folder = make_iio_device(tmp_path, 0)
    calls = Calls()
    lock = GSensorLock(IioAccelerometer(folder), ImpactDetector(2.5, 20, 10), calls, gone_after_s=0.05,
                       retry_every_s=0.02)
    caplog.set_level(logging.WARNING, logger="edge.record.gsensor")
    lock.start()
    try:
        assert wait_until(lambda: lock.samples >= 3)
        folder.rename(tmp_path / "unplugged")
        assert wait_until(lambda: lock.gone)
        errors_when_gone = lock.read_errors
        assert wait_until(lambda: lock.read_errors >= errors_when_gone + 5)
        (tmp_path / "unplugged").rename(folder)
        assert wait_until(lambda: not lock.gone)
        write_sysfs(folder / "in_accel_x_raw", 4000)
        assert calls.arrived.acquire(timeout=5)
    finally:
        lock.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("stopped answering" in m for m in messages) == 1 and sum("answers again" in m for m in messages) == 1
    assert not any("Traceback" in m for m in messages)


def test_a_wrong_scale_is_pointed_out_at_start(tmp_path, caplog):
    folder = make_iio_device(tmp_path, 0, in_accel_scale="0.0981")  # ten times too large: 10 g at rest
    lock = GSensorLock(IioAccelerometer(folder), ImpactDetector(2.5, 20, 10), lambda t: None)
    caplog.set_level(logging.WARNING, logger="edge.record.gsensor")
    lock.start()
    try:
        assert wait_until(lambda: lock.samples > 10)
    finally:
        lock.stop()
    assert any("reads 10.00 g at start" in r.getMessage() for r in caplog.records)


# ---- I2C chips, faked at the SMBus ----------------------------------------------------------------------------

class FakeSMBus:
    """Stands in for smbus2.SMBus: one chip with an id register and six data bytes; records writes."""

    def __init__(self, chip_id: int, data: bytes, answers: bool = True) -> None:
        self.chip_id = chip_id
        self.data = data
        self.answers = answers
        self.writes: list[tuple[int, int, int]] = []
        self.closed = False

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        if not self.answers:
            raise OSError(121, "Remote I/O error")
        return self.chip_id

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self.writes.append((i2c_addr, register, value))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        return list(self.data[:length])

    def close(self) -> None:
        self.closed = True


def test_an_mpu6050_is_woken_set_to_16_g_and_read_big_endian():
    bus = FakeSMBus(0x68, struct.pack(">hhh", -2048, 1024, 2048))
    reader = I2cAccelerometer.open(1, "mpu6050", open_bus=lambda number: bus)
    assert bus.writes == [(0x68, 0x6B, 0x00), (0x68, 0x1C, 0x18)]
    assert reader.read_ms2() == pytest.approx((-G, 0.5 * G, G))
    assert reader.name == "MPU-6050 (0x68 on /dev/i2c-1)"
    reader.close()
    assert bus.closed


def test_an_adxl345_is_set_to_full_resolution_and_read_little_endian():
    bus = FakeSMBus(0xE5, struct.pack("<hhh", 0, -128, 256))
    reader = I2cAccelerometer.open(0, "adxl345", address=0x1D, open_bus=lambda number: bus)
    assert bus.writes == [(0x1D, 0x31, 0x0B), (0x1D, 0x2D, 0x08)]
    assert reader.read_ms2() == pytest.approx((0.0, -0.4992 * G, 0.9984 * G))


def test_an_i2c_chip_feeds_the_lock_through_the_config():
    bus = FakeSMBus(0x68, struct.pack(">hhh", 0, 0, 2048))
    config = GSensorConfig(source="i2c", i2c_bus=3, i2c_chip="mpu6050", i2c_address=0x69)
    lock = GSensorLock.open(config, lambda t: None, open_bus=lambda number: bus)
    assert lock is not None and bus.writes[0][0] == 0x69


def test_an_unexpected_chip_id_is_a_warning_not_a_refusal(caplog):
    bus = FakeSMBus(0x70, struct.pack(">hhh", 0, 0, 2048))  # an MPU-6500 on an "MPU-6050" board
    with caplog.at_level(logging.WARNING, logger="edge.record.gsensor"):
        I2cAccelerometer.open(1, "mpu6050", open_bus=lambda number: bus)
    assert "answers id 0x70, not the 0x68 of an MPU-6050" in caplog.text


def test_a_chip_that_does_not_answer_is_one_clear_source_error_and_the_bus_is_closed():
    bus = FakeSMBus(0x68, b"", answers=False)
    with pytest.raises(SourceError, match=r"no answer from an MPU-6050 \(0x68 on /dev/i2c-1\): Remote I/O error"):
        I2cAccelerometer.open(1, "mpu6050", open_bus=lambda number: bus)
    assert bus.closed


def test_a_short_i2c_read_is_an_unreadable_sample():
    bus = FakeSMBus(0x68, struct.pack(">hhh", 0, 0, 2048))
    reader = I2cAccelerometer.open(1, "mpu6050", open_bus=lambda number: bus)
    bus.data = b"\x01\x02"
    with pytest.raises(ValueError, match="2 bytes instead of 6"):
        reader.read_ms2()


def test_a_reserved_i2c_address_is_a_config_error():
    with pytest.raises(ConfigError, match="gsensor.i2c_address: 0x03 is a reserved"):
        I2cAccelerometer.open(1, "mpu6050", address=0x03, open_bus=lambda number: FakeSMBus(0x68, b""))


def test_a_missing_i2c_bus_is_a_source_error():
    def no_bus(number: int) -> FakeSMBus:
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(SourceError, match=r"cannot open /dev/i2c-7: No such file or directory \(is I2C enabled"):
        I2cAccelerometer.open(7, "adxl345", open_bus=no_bus)


@pytest.mark.skipif(importlib.util.find_spec("smbus2") is not None, reason="smbus2 is installed here")
def test_without_smbus2_the_i2c_source_says_what_to_install():
    with pytest.raises(SourceError, match="pip install smbus2"):
        GSensorLock.open(GSensorConfig(source="i2c"), lambda t: None)
