import datetime as dt

import pytest

from edge.config import PrivacyZone
from edge.gps.privacy import LocationPolicy, distance_m
from edge.gps.timebase import GpsTimebase
from edge.types import GpsFix

UTC = dt.timezone.utc


def fix(lat=48.137412345, lon=11.575587654, valid=True, t_utc=dt.datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
        t_mono_ns=0) -> GpsFix:
    return GpsFix(t_utc=t_utc, lat=lat, lon=lon, valid=valid, t_mono_ns=t_mono_ns, speed_mps=10.0)


def test_distance_of_one_degree_of_latitude():
    assert distance_m(48.0, 11.0, 49.0, 11.0) == pytest.approx(111_195, rel=1e-3)


def test_precision_rounds_stored_coordinates():
    point = LocationPolicy(4, [], False).storable(fix())
    assert (point.lat, point.lon) == (48.1374, 11.5756)
    assert LocationPolicy(2, [], False).storable(fix()).lat == 48.14


def test_no_point_for_invalid_or_missing_fix():
    policy = LocationPolicy(4, [], False)
    assert policy.storable(None) is None and policy.storable(fix(valid=False)) is None


def test_zone_hides_location_inside_and_not_outside():
    home = PrivacyZone(name="home", lat=48.1374, lon=11.5756, radius_m=300)
    policy = LocationPolicy(4, [home], pause_in_zones=False)
    inside = fix(lat=48.1390, lon=11.5756)     # about 180 m north
    outside = fix(lat=48.1410, lon=11.5756)    # about 400 m north
    assert policy.in_zone(inside) and policy.storable(inside) is None
    assert not policy.in_zone(outside) and policy.storable(outside) is not None
    assert not policy.should_pause(inside)
    assert LocationPolicy(4, [home], pause_in_zones=True).should_pause(inside)


def test_timebase_uses_system_clock_when_plausible():
    base = GpsTimebase()
    now = dt.datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    base.observe(fix(t_mono_ns=1_000))
    assert base.utc_for(5_000, now) == now


def test_timebase_uses_gps_time_when_the_clock_reads_1970():
    base = GpsTimebase()
    boot = dt.datetime(1970, 1, 1, 0, 0, 42, tzinfo=UTC)
    assert base.utc_for(0, boot) == boot  # nothing better yet
    base.observe(fix(t_mono_ns=10_000_000_000))
    named = base.utc_for(12_500_000_000, boot)
    assert named == dt.datetime(2026, 11, 21, 8, 0, 2, 500_000, tzinfo=UTC)


def test_timebase_ignores_invalid_fixes():
    base = GpsTimebase()
    boot = dt.datetime(1970, 1, 1, tzinfo=UTC)
    base.observe(fix(valid=False))
    assert base.utc_for(0, boot) == boot
