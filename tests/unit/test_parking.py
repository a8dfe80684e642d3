"""Parking mode's gate: the rate while parked, motion and jolts, the ignition senses, and when it stops."""
from __future__ import annotations

import datetime as dt
import logging
import threading

import numpy as np
import pytest

from edge.config import ParkingConfig, config_from_dict
from edge.errors import ConfigError
from edge.parking import GpsStillness, ParkingMode, State
from edge.record.ignition import SupplyVoltage
from edge.types import Frame, GpsFix

FPS = 30
NS = 1_000_000_000


class Switch:
    """The ignition at the hardware edge: whatever the test sets, or None for "cannot tell"."""

    def __init__(self, on: bool | None) -> None:
        self.on = on
        self.calls = 0

    def ignition_on(self, _now_ns: int) -> bool | None:
        self.calls += 1
        return self.on


STREET = np.repeat(np.random.default_rng(7).integers(60, 200, (360, 640, 1), dtype=np.uint8), 3, axis=2)


def _scene(index: int, walker_from: int | None = None) -> np.ndarray:
    """A street with texture; from `walker_from` on, a dark figure crosses it."""
    image = STREET.copy()
    if walker_from is not None and index >= walker_from:
        x = 40 + 12 * (index - walker_from)
        image[150:330, x:x + 60] = 20
    return image


def _frame(index: int, image: np.ndarray) -> Frame:
    return Frame(image_bgr=image, index=index, t_mono_ns=index * NS // FPS, t_utc=dt.datetime.now(dt.timezone.utc))


def _run(mode: ParkingMode, first: int, count: int, walker_from: int | None = None, brighter: int = 0) -> list[int]:
    kept = []
    for index in range(first, first + count):
        image = _scene(index, walker_from)
        if brighter:
            image = np.clip(image.astype(np.int16) + brighter, 0, 255).astype(np.uint8)
        if mode.admit(_frame(index, image)):
            kept.append(index)
    return kept


def _mode(switch: Switch, volts: float | None = 12.6, stop: threading.Event | None = None, **config: float
          ) -> ParkingMode:
    return ParkingMode(ParkingConfig(enabled=True, **config), switch, lambda: volts, stop or threading.Event())


def test_driving_keeps_every_frame():
    assert _run(_mode(Switch(True)), 0, 90) == list(range(90))


def test_parked_keeps_two_frames_a_second_of_a_still_scene():
    mode = _mode(Switch(False), fps=2.0)
    kept = _run(mode, 0, 10 * FPS)
    assert mode.state is State.PARKED and mode.events == 0
    assert len(kept) == 20 and np.diff(kept).tolist() == [15] * 19
    assert mode.skipped == 10 * FPS - 20


def test_motion_records_every_frame_for_event_seconds_then_the_low_rate_again():
    mode = _mode(Switch(False), fps=2.0, event_seconds=2.0)
    kept = _run(mode, 0, 12 * FPS, walker_from=3 * FPS)
    # The walker appears at frame 90; the next kept frame (90) sees it; everything from there for 2 s is kept.
    assert mode.events >= 1
    assert set(range(90, 150)) <= set(kept)
    assert len([i for i in kept if i < 90]) == 6  # 2 a second before
    assert len(kept) < 12 * FPS / 2  # and the low rate again once the walker has gone and the scene is still


def test_a_change_of_the_whole_scene_s_brightness_is_not_motion():
    mode = _mode(Switch(False), fps=2.0)
    _run(mode, 0, 2 * FPS)
    _run(mode, 2 * FPS, 2 * FPS, brighter=40)  # a street light comes on
    assert mode.events == 0 and mode.state is State.PARKED


def test_a_jolt_while_parked_records_at_full_rate_and_is_ignored_while_driving():
    driving = _mode(Switch(True))
    _run(driving, 0, 10)
    driving.on_jolt()
    assert driving.state is State.DRIVING and driving.events == 0
    mode = _mode(Switch(False), fps=1.0, event_seconds=1.0)
    _run(mode, 0, FPS)
    mode.on_jolt()
    assert _run(mode, FPS, FPS) == list(range(FPS, 2 * FPS)) and mode.events == 1


def test_ignition_on_again_resumes_every_frame_and_unknown_keeps_the_state():
    switch = Switch(False)
    mode = _mode(switch)
    _run(mode, 0, 2 * FPS)
    switch.on = None  # a loose wire: no change
    assert len(_run(mode, 2 * FPS, 2 * FPS)) == 4
    switch.on = True
    kept = _run(mode, 4 * FPS, 2 * FPS)
    assert len(kept) >= 2 * FPS - 1 and mode.state is State.DRIVING
    assert switch.calls <= 7  # polled about once a second, not once a frame


def test_a_low_battery_stops_the_recording_with_its_reason(caplog):
    stop = threading.Event()
    mode = _mode(Switch(False), volts=11.7, stop=stop)
    with caplog.at_level(logging.WARNING, logger="edge.parking"):
        _run(mode, 0, 5)
    assert stop.is_set() and "11.70 V" in mode.stop_reason and "battery_stop_volts" in caplog.text


def test_a_low_battery_while_driving_does_not_stop():
    stop = threading.Event()
    _run(_mode(Switch(True), volts=11.7, stop=stop), 0, 3 * FPS)  # cranking dips, a weak battery while charging
    assert not stop.is_set()


def test_parking_longer_than_max_hours_stops():
    stop = threading.Event()
    mode = _mode(Switch(False), stop=stop, max_hours=0.001)  # 3.6 s
    _run(mode, 0, 3 * FPS)
    assert not stop.is_set()
    _run(mode, 3 * FPS, 2 * FPS)
    assert stop.is_set() and "parking.max_hours" in mode.stop_reason


def test_supply_voltage_from_a_sysfs_file(tmp_path, caplog):
    path = tmp_path / "voltage_now"
    sense = SupplyVoltage(path, 1e-6, on_volts=13.2)
    path.write_text("14100000\n")
    assert sense.volts() == pytest.approx(14.1) and sense.ignition_on() is True
    path.write_text("12480000\n")
    assert sense.ignition_on() is False
    path.write_text("garbage\n")
    with caplog.at_level(logging.WARNING):
        assert sense.ignition_on() is None and sense.volts() is None
    assert caplog.text.count("cannot read the supply voltage") == 1  # once, not once a second
    path.unlink()
    assert sense.volts() is None


class Receiver:
    def __init__(self) -> None:
        self.fix: GpsFix | None = None

    def latest(self) -> GpsFix | None:
        return self.fix

    def moving(self, speed_mps: float) -> None:
        self.fix = GpsFix(t_utc=None, lat=48.0, lon=11.0, valid=True, t_mono_ns=0, speed_mps=speed_mps)


def test_gps_stillness_is_off_after_standing_still_and_on_once_moving():
    receiver = Receiver()
    sense = GpsStillness(receiver, still_seconds=60)  # type: ignore[arg-type]
    assert sense.ignition_on(0) is None  # no fix yet
    receiver.moving(0.2)
    assert sense.ignition_on(0) is True and sense.ignition_on(59 * NS) is True
    assert sense.ignition_on(61 * NS) is False
    receiver.moving(1.0)  # jitter, not driving
    assert sense.ignition_on(62 * NS) is False
    receiver.moving(5.0)
    assert sense.ignition_on(63 * NS) is True


def test_config_demands_the_ignition_s_source():
    with pytest.raises(ConfigError, match="parking.voltage_path is empty"):
        config_from_dict({"parking": {"enabled": True}})
    with pytest.raises(ConfigError, match="parking.gpio_line is empty"):
        config_from_dict({"parking": {"enabled": True, "ignition": "gpio"}})
    with pytest.raises(ConfigError, match="battery_stop_volts"):
        config_from_dict({"parking": {"enabled": True, "voltage_path": "/x", "battery_stop_volts": 13.5}})
    assert config_from_dict({"parking": {"ignition": "gpio"}}).parking.enabled is False  # off: nothing demanded


class FakeLineRequest:
    """A gpiod LineRequest at the hardware edge: get_value gives what the ignition feed reads (gpiod's Value enum
    has .value 1 for active), or raises like a line that went away."""

    class Value:
        def __init__(self, value: int) -> None:
            self.value = value

    def __init__(self) -> None:
        self.level: int | None = 1
        self.released = False

    def get_value(self, line: int) -> FakeLineRequest.Value:
        if self.level is None:
            raise OSError(19, "No such device")
        return self.Value(self.level)

    def release(self) -> None:
        self.released = True


def test_the_ignition_line_reads_on_off_and_unknown():
    from edge.record.ignition import GpioIgnition

    request = FakeLineRequest()
    line = GpioIgnition(request, 27)
    assert line.ignition_on() is True
    request.level = 0
    assert line.ignition_on() is False
    request.level = None
    assert line.ignition_on() is None  # parking mode keeps its state
    line.close()
    assert request.released


def test_an_ignition_line_without_gpiod_is_one_clear_error():
    import importlib.util

    if importlib.util.find_spec("gpiod") is not None:
        pytest.skip("gpiod is installed here")
    from edge.record.ignition import GpioIgnition

    with pytest.raises(ConfigError, match="needs the gpiod package"):
        GpioIgnition.open("gpiochip0:27", active_low=False)
    with pytest.raises(ConfigError, match="parking.gpio_line: expected CHIP:LINE"):
        GpioIgnition.open("pin27", active_low=False)
