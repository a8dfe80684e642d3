"""The burned-in stamp: what it says (time, speed, position only when asked) and that it is drawn after redaction."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from conftest import checkerboard, detail
from edge.config import PrivacyZone, RedactConfig, StampConfig, config_from_dict
from edge.errors import ConfigError
from edge.gps.privacy import LocationPolicy
from edge.redact import Redactor
from edge.stamp import FrameStamp
from edge.types import Detections, Frame, GpsFix, Label

NOON_UTC = dt.datetime(2026, 7, 1, 12, 0, 5, tzinfo=dt.timezone.utc)
HOME = PrivacyZone("home", lat=48.13743, lon=11.57549, radius_m=300)


def _fix(lat: float = 48.2, lon: float = 11.6, speed_mps: float | None = 13.9, valid: bool = True) -> GpsFix:
    return GpsFix(t_utc=NOON_UTC, lat=lat, lon=lon, valid=valid, t_mono_ns=0, speed_mps=speed_mps)


def _frame(fix: GpsFix | None = None, image: np.ndarray | None = None) -> Frame:
    image = np.full((360, 640, 3), 128, np.uint8) if image is None else image
    return Frame(image_bgr=image, index=0, t_mono_ns=0, t_utc=NOON_UTC, fix=fix)


def _policy(*zones: PrivacyZone) -> LocationPolicy:
    return LocationPolicy(4, list(zones), pause_in_zones=False)


def test_local_time_and_speed_without_position_by_default():
    stamp = FrameStamp(StampConfig(enabled=True, timezone="Europe/Berlin"), _policy())
    assert stamp.text(_frame(_fix())) == "2026-07-01 14:00:05 CEST  50 km/h"


def test_mph_and_no_fix():
    stamp = FrameStamp(StampConfig(enabled=True, timezone="America/New_York", speed_unit="mph"), _policy())
    assert stamp.text(_frame(_fix(speed_mps=10.0))) == "2026-07-01 08:00:05 EDT  22 mph"
    assert stamp.text(_frame(None)).endswith("-- mph")
    assert stamp.text(_frame(_fix(valid=False))).endswith("-- mph")


def test_position_only_when_enabled_rounded_and_never_in_a_privacy_zone():
    config = StampConfig(enabled=True, timezone="UTC", coordinates=True)
    stamp = FrameStamp(config, _policy(HOME))
    assert stamp.text(_frame(_fix(lat=48.212345, lon=-11.654321))) == \
        "2026-07-01 12:00:05 UTC  50 km/h  48.2123 N 11.6543 W"
    at_home = stamp.text(_frame(_fix(lat=48.1375, lon=11.5756)))
    assert at_home == "2026-07-01 12:00:05 UTC  50 km/h"  # speed says nothing of where home is
    assert FrameStamp(config, None).text(_frame(_fix())) == "2026-07-01 12:00:05 UTC  50 km/h"  # no GPS set up


def test_the_stamp_is_drawn_on_the_hidden_image_in_its_corner():
    image = checkerboard(360, 640, 3) // 2 + 60
    plate = Detections(np.array([[0, 300, 640, 360]], np.float32), np.array([0.9]), np.array([Label.PLATE]))
    stamp = FrameStamp(StampConfig(enabled=True, timezone="UTC", corner="bottom-left"), _policy())
    sealed = Redactor(RedactConfig(plate_mask_scale=1.0), overlay=stamp).redact(_frame(_fix(), image.copy()), plate)
    bottom_left = sealed.image_bgr[320:360, 0:200]
    # White text over the blurred band: it was drawn after the blur (drawn before, it would be smeared grey).
    assert (bottom_left >= 250).all(axis=2).sum() > 50
    unstamped = Redactor(RedactConfig(plate_mask_scale=1.0)).redact(_frame(_fix(), image.copy()), plate)
    assert detail(unstamped.image_bgr[320:360, 0:200]) < detail(bottom_left)
    assert (sealed.image_bgr[:280] == unstamped.image_bgr[:280]).all()  # nothing but the corner changed


def test_a_failing_stamp_still_stores_the_hidden_frame():
    class Broken:
        def draw(self, image_bgr: np.ndarray, frame: Frame) -> None:
            raise ValueError("no font")

    plate = Detections(np.array([[10, 10, 100, 50]], np.float32), np.array([0.9]), np.array([Label.PLATE]))
    image = checkerboard(360, 640, 3)
    sealed = Redactor(RedactConfig(), overlay=Broken()).redact(_frame(None, image.copy()), plate)
    assert sealed.counts.plates == 1 and not sealed.counts.whole_frame
    assert detail(sealed.image_bgr[15:45, 15:95]) < 0.1 * detail(image[15:45, 15:95])


def test_unknown_time_zone_is_one_clear_error():
    with pytest.raises(ConfigError, match="stamp.timezone: unknown time zone 'Mars/Olympus'"):
        config_from_dict({"stamp": {"timezone": "Mars/Olympus"}})
