"""Board sensors: SoC temperature (sysfs thermal zones) and the Raspberry Pi firmware's throttling flags.

Read by `dashcam doctor` once and by the heat governor every few seconds. Either may be
missing (a PC has no `vcgencmd`, a container may hide /sys): readers return None or an
empty list then, never raise.
"""
from __future__ import annotations

import glob
import logging
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

# `vcgencmd get_throttled` bits that mean "slowed down right now" (frequency capped, throttled,
# soft temperature limit); bit 0 (under-voltage) is a supply fault, reported by doctor.
THROTTLED_NOW_MASK = 0xE


def read_throttled() -> int | None:
    """The firmware's throttling bit field, or None where there is no vcgencmd."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("vcgencmd get_throttled failed: %s", exc)
        return None
    _, _, value = out.strip().partition("=")
    try:
        return int(value, 16)
    except ValueError:
        return None


def read_thermal_zones(sys_root: Path = Path("/")) -> list[float]:
    temps = []
    for name in sorted(glob.glob(str(sys_root / "sys" / "class" / "thermal" / "thermal_zone*" / "temp"))):
        try:
            temps.append(int(Path(name).read_text(encoding="ascii").strip()) / 1000)
        except (OSError, ValueError):
            continue  # some zones refuse reads (EINVAL/ENODATA) when their sensor is off
    return temps


def hottest_c(sys_root: Path = Path("/")) -> float | None:
    temps = read_thermal_zones(sys_root)
    return max(temps) if temps else None


def read_sensors() -> tuple[float | None, bool]:
    """(hottest zone in °C or None, whether the firmware is slowing the SoC down right now)."""
    throttled = read_throttled()
    return hottest_c(), bool(throttled and throttled & THROTTLED_NOW_MASK)
