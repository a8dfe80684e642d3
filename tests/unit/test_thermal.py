"""The heat policy, driven by a fake clock: escalation order, pacing, hysteresis, never unredacted."""
from __future__ import annotations

from edge.thermal import Level, Reading, ThermalPolicy, ThermalSettings, degrade, governor_for

HOT = Reading(temp_c=84.0, throttled=False, detect_lag=0.5)
WARM = Reading(temp_c=75.0, throttled=False, detect_lag=0.5)   # between cool_c and hot_c
COOL = Reading(temp_c=55.0, throttled=False, detect_lag=0.3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _policy() -> tuple[ThermalPolicy, FakeClock]:
    clock = FakeClock()
    return ThermalPolicy(ThermalSettings(escalate_after_s=10, recover_after_s=60), clock), clock


def _feed(policy: ThermalPolicy, clock: FakeClock, reading: Reading, seconds: float, step: float = 1.0) -> Level:
    end = clock.now + seconds
    while clock.now < end:
        policy.update(reading)
        clock.now += step
    return policy.level


def test_escalates_one_level_per_interval_in_the_privacy_safe_order():
    policy, clock = _policy()
    seen = []
    for _ in range(40):
        seen.append(policy.update(HOT))
        clock.now += 1
    assert seen[0] == Level.SLOWER_DETECT
    assert seen[9] == Level.SLOWER_DETECT and seen[10] == Level.LOWER_RESOLUTION
    assert seen[20] == Level.BLUR_WHOLE and seen[-1] == Level.BLUR_WHOLE  # the top: never beyond, never unredacted
    assert sorted(set(seen)) == [Level.SLOWER_DETECT, Level.LOWER_RESOLUTION, Level.BLUR_WHOLE]


def test_throttling_and_detection_lag_also_escalate():
    for reading in (Reading(50.0, True, 0.2), Reading(50.0, False, 1.6), Reading(None, False, 1.2)):
        policy, _clock = _policy()
        assert policy.update(reading) == Level.SLOWER_DETECT


def test_recovers_one_level_per_cool_period_only():
    policy, clock = _policy()
    assert _feed(policy, clock, HOT, 30) == Level.BLUR_WHOLE
    assert _feed(policy, clock, COOL, 59) == Level.BLUR_WHOLE      # not yet: hysteresis
    assert _feed(policy, clock, COOL, 2) == Level.LOWER_RESOLUTION
    assert _feed(policy, clock, COOL, 58) == Level.LOWER_RESOLUTION
    assert _feed(policy, clock, COOL, 60) == Level.SLOWER_DETECT
    assert _feed(policy, clock, COOL, 61) == Level.NORMAL


def test_warm_band_holds_the_level_and_restarts_the_cool_period():
    policy, clock = _policy()
    _feed(policy, clock, HOT, 1)
    assert policy.level == Level.SLOWER_DETECT
    _feed(policy, clock, COOL, 50)
    assert _feed(policy, clock, WARM, 100) == Level.SLOWER_DETECT  # warm neither escalates nor recovers
    assert _feed(policy, clock, COOL, 50) == Level.SLOWER_DETECT   # the earlier 50 s cool do not count
    assert _feed(policy, clock, COOL, 15) == Level.NORMAL


def test_degrade_settings_per_level():
    zero = degrade(Level.NORMAL, 4, 960)
    assert (zero.detect_every, zero.input_long_side, zero.blur_whole) == (4, 960, False)
    one = degrade(Level.SLOWER_DETECT, 4, 960)
    assert (one.detect_every, one.input_long_side, one.blur_whole) == (8, 960, False)
    two = degrade(Level.LOWER_RESOLUTION, 20, 960)
    assert (two.detect_every, two.input_long_side, two.blur_whole) == (30, 480, False)
    three = degrade(Level.BLUR_WHOLE, 4, 400)
    assert (three.input_long_side, three.blur_whole) == (320, True)


# ---- the governor that applies the policy to a running pipeline ----------------------------------------------

class FakeSensors:
    def __init__(self) -> None:
        self.temp_c: float | None = 55.0
        self.throttled = False

    def __call__(self) -> tuple[float | None, bool]:
        return self.temp_c, self.throttled


def _governor():
    from edge.thermal import HeatGovernor

    policy, clock = _policy()
    sensors, sides = FakeSensors(), []
    governor = HeatGovernor(policy, sensors, base_detect_every=3, base_long_side=1280, budget_s=0.4,
                            set_face_long_side=sides.append)
    return governor, clock, sensors, sides


def test_governor_degrades_in_order_and_never_skips_redaction():
    governor, clock, sensors, sides = _governor()
    assert (governor.detect_every(), governor.blur_whole()) == (3, False)
    sensors.temp_c = 85.0
    seen = []
    for _ in range(4):
        seen.append((governor.sample(), governor.detect_every(), governor.blur_whole()))
        clock.now += 10
    assert seen == [(Level.SLOWER_DETECT, 6, False), (Level.LOWER_RESOLUTION, 6, False),
                    (Level.BLUR_WHOLE, 6, True), (Level.BLUR_WHOLE, 6, True)]
    assert sides == [640]  # faces searched at half the long side from level 2 on


def test_governor_counts_a_slow_detector_as_stress_and_recovers_when_cool():
    governor, clock, sensors, sides = _governor()
    governor.note_detection(0.6)  # 1.5x the 0.4 s delay line
    assert governor.sample() == Level.SLOWER_DETECT and governor.detect_every() == 6
    for _ in range(5):
        governor.note_detection(0.1)  # the moving average settles below the cool limit
    for _ in range(7):
        clock.now += 10
        governor.sample()
    assert governor.sample() == Level.NORMAL and governor.detect_every() == 3 and sides == []


def test_governor_for_lowers_the_resolution_of_every_face_detector_and_touches_nothing_else():
    class FaceModel:
        def __init__(self) -> None:
            self.sides: list[int] = []

        def set_input_long_side(self, long_side: int) -> None:
            self.sides.append(long_side)

    class PlateModel:
        pass

    policy, clock = _policy()
    faces, sensors = [FaceModel(), FaceModel()], FakeSensors()
    governor = governor_for([faces[0], PlateModel(), faces[1]], sensors, detect_every=3, face_long_side=1280,
                            delay_frames=12, fps=30.0, policy=policy)
    sensors.temp_c = 85.0
    for _ in range(2):
        governor.sample()
        clock.now += 10
    assert [f.sides for f in faces] == [[640], [640]]
    governor.note_detection(0.3)  # the budget is the delay line: 12 frames at 30 fps = 0.4 s
    assert governor.detect_every() == 6
