"""Attaches the latest GPS fix and a trustworthy UTC time to each captured frame."""
from __future__ import annotations

from edge.gps import FixProvider
from edge.gps.privacy import LocationPolicy
from edge.gps.timebase import GpsTimebase
from edge.types import Frame


class LocationStamper:
    def __init__(self, provider: FixProvider, policy: LocationPolicy, timebase: GpsTimebase | None = None) -> None:
        self._provider = provider
        self._policy = policy
        self._timebase = timebase or GpsTimebase()

    def stamp(self, frame: Frame) -> bool:
        """Attach fix and UTC; False when the frame must not be recorded (paused in a privacy zone)."""
        frame.fix = self._provider.latest()
        self._timebase.observe(frame.fix)
        frame.t_utc = self._timebase.utc_for(frame.t_mono_ns, frame.t_utc)
        return not self._policy.should_pause(frame.fix)
