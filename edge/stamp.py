"""The burned-in stamp: local time, speed and (only when asked) position, drawn on redacted frames.

`FrameStamp` is the `Overlay` that `Redactor` draws after every region is hidden and before the
frame is sealed: the detectors never see the text, so it cannot keep them from finding a face or
plate, and what it covers was already hidden or is not identifying. The position is shown only when
`stamp.coordinates` is on, rounded as stored coordinates are and never inside a privacy zone
(`LocationPolicy.storable`), because a stamp travels with every clip that is shared.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

import cv2
import numpy as np

from edge.config import StampConfig
from edge.gps.privacy import LocationPolicy
from edge.types import Frame, GpsFix

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MPS_TO = {"kmh": (3.6, "km/h"), "mph": (2.2369363, "mph")}
_WHITE, _BLACK = (255, 255, 255), (0, 0, 0)


class FrameStamp:
    def __init__(self, config: StampConfig, policy: LocationPolicy | None) -> None:
        self._config = config
        self._policy = policy  # None: no GPS configured, so no position whatever the setting
        self._zone = zoneinfo.ZoneInfo(config.timezone) if config.timezone else None

    def text(self, frame: Frame) -> str:
        """The stamp's one line for this frame, e.g. `2026-12-06 14:03:21 CET  52 km/h`."""
        parts = []
        if self._config.time:
            parts.append(self._local_time(frame.t_utc))
        if self._config.speed:
            parts.append(self._speed(frame.fix))
        if self._config.coordinates and self._policy is not None:
            point = self._policy.storable(frame.fix)
            if point is not None:  # no fix, or inside a privacy zone: no position at all
                parts.append(f"{abs(point.lat):.{self._policy.precision_decimals}f} {'N' if point.lat >= 0 else 'S'} "
                             f"{abs(point.lon):.{self._policy.precision_decimals}f} {'E' if point.lon >= 0 else 'W'}")
        return "  ".join(parts)

    def draw(self, image_bgr: np.ndarray, frame: Frame) -> None:
        """White text with a black outline, readable on sky and on road, in the configured corner."""
        text = self.text(frame)
        if not text:
            return
        height, width = image_bgr.shape[:2]
        text_px = max(8, round(self._config.height * height))
        thickness = max(1, text_px // 12)
        scale = cv2.getFontScaleFromHeight(_FONT, text_px, thickness)
        (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
        margin = max(4, text_px // 3)
        x = margin if self._config.corner.endswith("left") else max(margin, width - margin - text_w)
        y = text_h + margin if self._config.corner.startswith("top") else height - margin - baseline
        cv2.putText(image_bgr, text, (x, y), _FONT, scale, _BLACK, thickness + 2 * max(1, thickness), cv2.LINE_AA)
        cv2.putText(image_bgr, text, (x, y), _FONT, scale, _WHITE, thickness, cv2.LINE_AA)

    def _local_time(self, t_utc: dt.datetime) -> str:
        local = t_utc.astimezone(self._zone)  # None: the system's zone
        return local.strftime("%Y-%m-%d %H:%M:%S %Z").strip()

    def _speed(self, fix: GpsFix | None) -> str:
        factor, unit = _MPS_TO[self._config.speed_unit]
        if fix is None or not fix.valid or fix.speed_mps is None:
            return f"-- {unit}"
        return f"{fix.speed_mps * factor:.0f} {unit}"
