"""Parking mode: while the car is off, keep a few frames a second, and all of them around motion or a jolt.

`ParkingMode` is the pipeline's frame gate (`Pipeline(gate=...)`), asked in the capture thread
whether each raw frame goes on to detection and redaction. A frame it turns away is never redacted,
stored or sent; every frame it keeps takes the same path as when driving, so parking weakens no
privacy rule. Its clock is the frames' own timeline, so a video file replays it exactly as a camera
would have lived it.

States: DRIVING (every frame), PARKED (`parking.fps` frames a second; each kept frame's 160x90 grey
thumbnail is compared with the previous one, and a change over `motion_share` of it is motion),
EVENT (every frame for `event_seconds` after motion or a G-sensor jolt). The ignition is asked about
once a second (`IgnitionSense`); an unknown answer keeps the state. When the car has been parked
`max_hours`, or the supply falls under `battery_stop_volts`, the gate sets the run's stop event: the
current segment is finished and `dashcam run` exits 0 with the reason in its log.
"""
from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from edge.config import ParkingConfig
from edge.gps import FixProvider
from edge.types import Frame

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_POLL_NS = _NS  # how often the ignition and the battery are read
_THUMB_SIZE = (160, 90)
_PIXEL_CHANGE = 24  # grey levels: above sensor noise and JPEG-like shimmer at night, below a person on a wall


class IgnitionSense(Protocol):
    def ignition_on(self, now_ns: int) -> bool | None:
        """True while the engine runs, False when it is off, None when the sense cannot tell now.

        `now_ns` is the newest frame's time, for senses that measure durations (GPS stillness)."""


class State(enum.Enum):
    DRIVING = "driving"
    PARKED = "parked"
    EVENT = "event"


class GpsStillness:
    """Ignition from GPS: off after standing still `still_seconds`, on again once moving."""

    STILL_MPS = 0.5  # receivers report a few tenths of a m/s of jitter while standing
    MOVING_MPS = 2.0

    def __init__(self, provider: FixProvider, still_seconds: float) -> None:
        self._provider = provider
        self._still_ns = int(still_seconds * _NS)
        self._still_since: int | None = None
        self._on = True

    def ignition_on(self, now_ns: int) -> bool | None:
        fix = self._provider.latest()
        if fix is None or not fix.valid or fix.speed_mps is None:
            return None
        if fix.speed_mps >= self.MOVING_MPS:
            self._still_since, self._on = None, True
        elif fix.speed_mps <= self.STILL_MPS:
            self._still_since = now_ns if self._still_since is None else self._still_since
            if now_ns - self._still_since >= self._still_ns:
                self._on = False
        return self._on


def motion_thumbnail(image_bgr: np.ndarray) -> np.ndarray:
    """A small, slightly blurred grey copy: noise and compression shimmer average out, a person does not."""
    small = cv2.resize(image_bgr, _THUMB_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)


def moved_share(previous: np.ndarray, current: np.ndarray) -> float:
    """Share of thumbnail pixels that changed, after taking out a change of the whole scene's brightness
    (a cloud, a street light coming on)."""
    difference = current.astype(np.int16) - previous.astype(np.int16)
    difference -= np.int16(np.median(difference))
    return float((np.abs(difference) > _PIXEL_CHANGE).mean())


class ParkingMode:
    def __init__(self, config: ParkingConfig, ignition: IgnitionSense, battery_volts: Callable[[], float | None]
                 | None, stop: threading.Event) -> None:
        self._config = config
        self._ignition = ignition
        self._battery_volts = battery_volts
        self._stop = stop
        self._lock = threading.Lock()  # a jolt arrives from the G-sensor's thread
        self.state = State.DRIVING
        self._now_ns = 0  # the newest frame's time
        self._next_poll_ns: int | None = None
        self._parked_since_ns = 0
        self._event_until_ns = 0
        self._next_keep_ns = 0
        self._previous_thumb: np.ndarray | None = None
        self.events = 0
        self.skipped = 0
        self.stop_reason = ""

    def admit(self, frame: Frame) -> bool:
        """Whether this raw frame goes on to detection and redaction (capture thread)."""
        with self._lock:
            now = self._now_ns = frame.timeline_ns
            if self._next_poll_ns is None or now >= self._next_poll_ns:
                self._next_poll_ns = now + _POLL_NS
                self._poll(now)
            if self.state is State.DRIVING:
                return True
            if self.state is State.EVENT and now >= self._event_until_ns:
                self.state = State.PARKED
            keep = self.state is State.EVENT or now >= self._next_keep_ns
            if keep and self.state is State.PARKED:
                self._next_keep_ns = now + round(_NS / self._config.fps)
                self._watch_motion(frame, now)
            elif self.state is State.EVENT:
                self._previous_thumb = None  # compare afresh when the event ends
            if not keep:
                self.skipped += 1
            return keep

    def on_jolt(self) -> None:
        """A G-sensor event (its thread): while parked, record at full rate around it."""
        with self._lock:
            if self.state is not State.DRIVING:
                self._start_event(self._now_ns, "a jolt")

    def _poll(self, now: int) -> None:
        on = self._ignition.ignition_on(now)
        if on is True and self.state is not State.DRIVING:
            log.info("parking mode: the ignition is on again after %.1f min; recording every frame",
                     (now - self._parked_since_ns) / 60e9)
            self.state = State.DRIVING
        elif on is False and self.state is State.DRIVING:
            log.info("parking mode: the ignition is off; keeping %.1f frames a second until something moves",
                     self._config.fps)
            self.state, self._parked_since_ns, self._next_keep_ns = State.PARKED, now, now
            self._previous_thumb = None
        if self.state is not State.DRIVING:
            self._check_limits(now)

    def _check_limits(self, now: int) -> None:
        config = self._config
        hours = (now - self._parked_since_ns) / 3600e9
        if config.max_hours and hours >= config.max_hours:
            self._end(f"parked for {hours:.1f} h (parking.max_hours {config.max_hours})")
            return
        volts = self._battery_volts() if self._battery_volts and config.battery_stop_volts else None
        if volts is not None and volts < config.battery_stop_volts:
            self._end(f"the supply is at {volts:.2f} V, under parking.battery_stop_volts {config.battery_stop_volts}")

    def _end(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
            log.warning("parking mode: stopping the recording: %s", reason)
        self._stop.set()

    def _watch_motion(self, frame: Frame, now: int) -> None:
        thumb = motion_thumbnail(frame.image_bgr)
        previous, self._previous_thumb = self._previous_thumb, thumb
        if previous is not None and moved_share(previous, thumb) >= self._config.motion_share:
            self._start_event(now, "motion")

    def _start_event(self, now: int, cause: str) -> None:
        if self.state is not State.EVENT:
            self.events += 1
            log.info("parking mode: %s; recording every frame for %.0f s", cause, self._config.event_seconds)
        self.state = State.EVENT
        self._event_until_ns = now + round(self._config.event_seconds * _NS)
