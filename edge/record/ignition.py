"""Whether the car's ignition is on, and the supply voltage: the hardware edge of parking mode.

Two senses, both read when asked (parking mode polls about once a second):
- `SupplyVoltage`: a sysfs file with the supply voltage (a power-supply driver's `voltage_now`
  in microvolts, or an ADC's `in_voltageN_raw` behind a divider), times a scale. A running engine
  charges the battery at 13-14.5 V; a resting 12 V battery reads under 13 V, so a threshold
  tells them apart, and the same reading guards the battery.
- `GpioIgnition`: a GPIO line wired to the switched ignition feed through a divider or an
  optocoupler, read through libgpiod 2's `gpiod` package (imported only when configured).
A reading that fails is None ("unknown"): parking mode then keeps its current state.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, SourceError
from edge.record.button import parse_line

log = logging.getLogger(__name__)


class SupplyVoltage:
    """The supply voltage from one sysfs file; `ignition_on` when it is at or above the charging voltage."""

    def __init__(self, path: Path, scale: float, on_volts: float) -> None:
        self._path = path
        self._scale = scale
        self._on_volts = on_volts
        self._warned = False

    def volts(self) -> float | None:
        try:
            text = self._path.read_text(encoding="ascii").strip()
            return float(text) * self._scale
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            if not self._warned:  # a loose wire would otherwise log once a second
                log.warning("cannot read the supply voltage from %s: %s", self._path, exc)
                self._warned = True
            return None

    def ignition_on(self, _now_ns: int = 0) -> bool | None:
        volts = self.volts()
        return None if volts is None else volts >= self._on_volts


class GpioIgnition:
    """The ignition feed on a GPIO line: on while the line is active (high, or low with `active_low`)."""

    def __init__(self, request: Any, line: int) -> None:
        self._request = request
        self._line = line

    @classmethod
    def open(cls, spec: str, active_low: bool) -> GpioIgnition:
        chip, line = parse_line(spec, "parking.gpio_line")
        try:
            gpiod = importlib.import_module("gpiod")
        except ImportError:
            raise ConfigError("parking.ignition gpio needs the gpiod package: pip install gpiod") from None
        settings = gpiod.LineSettings(direction=gpiod.line.Direction.INPUT, active_low=active_low)
        try:
            request = gpiod.request_lines(chip, consumer="dashcam-ignition", config={line: settings})
        except OSError as exc:
            raise SourceError(f"cannot open the ignition line {spec}: {exc.strerror or exc}") from None
        return cls(request, line)

    def ignition_on(self, _now_ns: int = 0) -> bool | None:
        try:
            value = self._request.get_value(self._line)
        except OSError as exc:
            log.warning("cannot read the ignition line: %s", exc)
            return None
        return bool(getattr(value, "value", value))  # gpiod.line.Value.ACTIVE is 1

    def close(self) -> None:
        self._request.release()
