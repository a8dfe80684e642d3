"""UTC for file names when the system clock cannot be trusted.

A Raspberry Pi without a real-time clock boots in 1970 (or at the last saved time)
until NTP or GPS sets it. Until the system clock is plausible, UTC is taken from the
last valid GPS fix plus the monotonic time elapsed since it arrived.
"""
from __future__ import annotations

import datetime as dt
import logging

from edge.types import GpsFix

log = logging.getLogger(__name__)

# Any clock before this date is unset: this software did not exist earlier.
PLAUSIBLE_SINCE = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


class GpsTimebase:
    def __init__(self) -> None:
        self._anchor: tuple[dt.datetime, int] | None = None
        self._warned = False

    def observe(self, fix: GpsFix | None) -> None:
        if fix is not None and fix.valid and fix.t_utc is not None:
            self._anchor = (fix.t_utc, fix.t_mono_ns)

    def utc_for(self, t_mono_ns: int, system_utc: dt.datetime) -> dt.datetime:
        if system_utc >= PLAUSIBLE_SINCE:
            return system_utc
        if self._anchor is None:
            if not self._warned:
                log.warning("system clock reads %s and no GPS time yet: file names use the system clock",
                            system_utc.date())
                self._warned = True
            return system_utc
        gps_utc, gps_mono_ns = self._anchor
        return gps_utc + dt.timedelta(microseconds=(t_mono_ns - gps_mono_ns) / 1000)
