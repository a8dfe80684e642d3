"""Location privacy applied before anything is stored: rounding and privacy zones.

A fix inside a configured zone (home, work) is stored as no location at all; outside,
coordinates are rounded to `precision_decimals` (4 decimals is about 11 m). The raw
fix never leaves memory; only `StoredPoint`s reach sidecars and GPX files.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from edge.config import GpsConfig, PrivacyZone
from edge.types import GpsFix

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class StoredPoint:
    """What may be written about a position: rounded, and never from inside a zone."""

    t_utc: dt.datetime | None
    lat: float
    lon: float
    speed_mps: float | None
    course_deg: float | None
    altitude_m: float | None

    def to_json(self) -> dict:
        return {
            "t_utc": self.t_utc.isoformat().replace("+00:00", "Z") if self.t_utc else None,
            "lat": self.lat, "lon": self.lon,
            "speed_mps": None if self.speed_mps is None else round(self.speed_mps, 1),
            "course_deg": None if self.course_deg is None else round(self.course_deg),
            "altitude_m": None if self.altitude_m is None else round(self.altitude_m),
        }


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


class LocationPolicy:
    def __init__(self, precision_decimals: int, zones: list[PrivacyZone], pause_in_zones: bool) -> None:
        self.precision_decimals = precision_decimals
        self.zones = list(zones)
        self.pause_in_zones = pause_in_zones

    @classmethod
    def from_config(cls, config: GpsConfig) -> LocationPolicy:
        return cls(config.precision_decimals, config.privacy_zones, config.pause_in_zones)

    def in_zone(self, fix: GpsFix | None) -> bool:
        if fix is None:
            return False
        return any(distance_m(fix.lat, fix.lon, z.lat, z.lon) <= z.radius_m for z in self.zones)

    def should_pause(self, fix: GpsFix | None) -> bool:
        """Recording pauses only when configured and the position is known to be in a zone."""
        return self.pause_in_zones and self.in_zone(fix)

    def storable(self, fix: GpsFix | None) -> StoredPoint | None:
        """The rounded point to store, or None (no valid fix, or inside a zone)."""
        if fix is None or not fix.valid or self.in_zone(fix):
            return None
        digits = self.precision_decimals
        return StoredPoint(fix.t_utc, round(fix.lat, digits), round(fix.lon, digits), fix.speed_mps,
                           fix.course_deg, fix.altitude_m)
