"""Heat policy: how far to degrade the pipeline when the board runs hot or falls behind.

This module owns the decision, not the sensors (edge/board.py reads those): readings in
(temperature, throttled flag, detection lag), a `Level` out, and `HeatGovernor`, which
applies the level to a running pipeline. The order is privacy-safe: every level costs recall
headroom or picture, never redaction.

    0 NORMAL            the configured cadence and resolution
    1 SLOWER_DETECT     detect half as often (track.detect_every x2); the tracker carries boxes
    2 LOWER_RESOLUTION  also search faces at half the long side
    3 BLUR_WHOLE        blur every frame whole: recording goes on, nothing identifiable is kept

There is no level that skips or weakens redaction. Escalation goes one level at a time,
at most once per `escalate_after_s`, so one slow frame does not jump to whole-frame blur
(the pipeline's stale-frame rule already blurs frames whose detection is late). Recovery
has hysteresis: one level down only after `recover_after_s` of continuously cool readings.
The clock is passed in, so tests drive time.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

MAX_DETECT_EVERY = 30
MIN_LONG_SIDE = 320


class Level(IntEnum):
    NORMAL = 0
    SLOWER_DETECT = 1
    LOWER_RESOLUTION = 2
    BLUR_WHOLE = 3


@dataclass(frozen=True)
class Reading:
    """One sample. `detect_lag` is detection time over its budget: above 1.0 the detector falls behind."""

    temp_c: float | None
    throttled: bool
    detect_lag: float


@dataclass(frozen=True)
class ThermalSettings:
    hot_c: float = 80.0          # the Pi firmware soft limit; escalate at or above
    cool_c: float = 70.0         # recover only below this: 10 °C of hysteresis
    max_lag: float = 1.0         # detection slower than its budget
    cool_lag: float = 0.7        # and back with margin before recovering
    escalate_after_s: float = 10.0
    recover_after_s: float = 60.0


@dataclass(frozen=True)
class Degradation:
    """What a level means for the pipeline settings."""

    detect_every: int
    input_long_side: int
    blur_whole: bool


class ThermalPolicy:
    def __init__(self, settings: ThermalSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings or ThermalSettings()
        self._clock = clock
        self._level = Level.NORMAL
        self._changed_at: float | None = None
        self._cool_since: float | None = None

    @property
    def level(self) -> Level:
        return self._level

    def update(self, reading: Reading) -> Level:
        now = self._clock()
        if self._stressed(reading):
            self._cool_since = None
            if self._level < Level.BLUR_WHOLE and self._may_escalate(now):
                self._set(Level(self._level + 1), now, reading)
        elif self._cool(reading):
            if self._cool_since is None:
                self._cool_since = now
            elif self._level > Level.NORMAL and now - self._cool_since >= self._settings.recover_after_s:
                self._set(Level(self._level - 1), now, reading)
                self._cool_since = now  # each further step down needs its own cool period
        else:
            self._cool_since = None  # in the band between: hold the level
        return self._level

    def _stressed(self, reading: Reading) -> bool:
        hot = reading.temp_c is not None and reading.temp_c >= self._settings.hot_c
        return hot or reading.throttled or reading.detect_lag > self._settings.max_lag

    def _cool(self, reading: Reading) -> bool:
        cool = reading.temp_c is None or reading.temp_c < self._settings.cool_c
        return cool and not reading.throttled and reading.detect_lag <= self._settings.cool_lag

    def _may_escalate(self, now: float) -> bool:
        return self._changed_at is None or now - self._changed_at >= self._settings.escalate_after_s

    def _set(self, level: Level, now: float, reading: Reading) -> None:
        log.warning("thermal level %s -> %s (temperature %s °C, throttled %s, detection lag %.2f)",
                    self._level.name, level.name, reading.temp_c, reading.throttled, reading.detect_lag)
        self._level = level
        self._changed_at = now


def degrade(level: Level, detect_every: int, input_long_side: int) -> Degradation:
    """The configured cadence and face resolution, adjusted for a level."""
    every = min(detect_every * 2, MAX_DETECT_EVERY) if level >= Level.SLOWER_DETECT else detect_every
    side = max(input_long_side // 2, MIN_LONG_SIDE) if level >= Level.LOWER_RESOLUTION else input_long_side
    return Degradation(every, min(side, input_long_side), level >= Level.BLUR_WHOLE)


class HeatGovernor:
    """Applies the policy to a running live pipeline: samples the board every `period_s`, sets the level.

    The pipeline asks `detect_every()` for its cadence and `blur_whole()` before each frame, and
    reports each detection's duration to `note_detection`. Detection lag is the time one
    detection takes over the delay line's length: beyond 1.0 the frames leave the line on the
    tracker's prediction alone. Lower face resolution goes through `set_face_long_side`.
    """

    def __init__(self, policy: ThermalPolicy, sensors: Callable[[], tuple[float | None, bool]],
                 base_detect_every: int, base_long_side: int, budget_s: float,
                 set_face_long_side: Callable[[int], None], period_s: float = 2.0) -> None:
        self._policy = policy
        self._sensors = sensors
        self._base = (base_detect_every, base_long_side)
        self._budget_s = budget_s
        self._set_face_long_side = set_face_long_side
        self._period_s = period_s
        self._detect_s = 0.0  # moving average of one detection's duration
        self._current = degrade(Level.NORMAL, *self._base)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def detect_every(self) -> int:
        return self._current.detect_every

    def blur_whole(self) -> bool:
        return self._current.blur_whole

    def note_detection(self, seconds: float) -> None:
        self._detect_s = seconds if self._detect_s == 0.0 else 0.8 * self._detect_s + 0.2 * seconds

    def sample(self) -> Level:
        """Read the sensors once and apply the resulting level (the thread calls this)."""
        temp_c, throttled = self._sensors()
        lag = self._detect_s / self._budget_s if self._budget_s > 0 else 0.0
        level = self._policy.update(Reading(temp_c, throttled, lag))
        wanted = degrade(level, *self._base)
        if wanted.input_long_side != self._current.input_long_side:
            self._set_face_long_side(wanted.input_long_side)
        self._current = wanted
        return level

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._period_s + 1)

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self.sample()


@runtime_checkable
class FaceResolutionKnob(Protocol):
    """A face detector whose input size can be lowered while the board is hot."""

    def set_input_long_side(self, long_side: int) -> None: ...


def governor_for(detectors: Iterable[object], sensors: Callable[[], tuple[float | None, bool]], detect_every: int,
                 face_long_side: int, delay_frames: int, fps: float,
                 policy: ThermalPolicy | None = None) -> HeatGovernor:
    """A governor for a live pipeline: its budget is the delay line's length in time (a detection slower
    than that leaves frames to the tracker's prediction alone), its resolution knobs the face detectors."""
    knobs = [d for d in detectors if isinstance(d, FaceResolutionKnob)]

    def set_face_long_side(long_side: int) -> None:
        for knob in knobs:
            knob.set_input_long_side(long_side)

    budget_s = max(1, delay_frames) / fps
    return HeatGovernor(policy or ThermalPolicy(), sensors, detect_every, face_long_side, budget_s,
                        set_face_long_side)
