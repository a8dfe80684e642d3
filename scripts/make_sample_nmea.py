"""Write the sample clip's GPS log: 13 s of a u-blox-style NMEA 0183 stream at 1 Hz.

The log is synthetic (a drive east along a city street at about 40 km/h, with a gentle
curve), shaped like a multi-GNSS receiver's default output: GNRMC, GNVTG, GNGGA,
GNGSA, GPGSV/GLGSV and GNGLL each epoch, with real checksums. The first two epochs
have no fix yet, as after a cold start. Deterministic; reproduces
edge/data/sample/drive.nmea:

    python scripts/make_sample_nmea.py
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
from functools import reduce
from pathlib import Path

START = dt.datetime(2026, 11, 21, 8, 15, 0, tzinfo=dt.timezone.utc)
ORIGIN = (48.137400, 11.575500)  # degrees; a synthetic route
EPOCHS = 13
NO_FIX_EPOCHS = 2
ALTITUDE_M = 519.4
M_PER_DEG_LAT = 111_320.0


def checksum(body: str) -> str:
    return f"{reduce(lambda acc, ch: acc ^ ord(ch), body, 0):02X}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body)}"


def ddmm(value: float, is_lat: bool) -> tuple[str, str]:
    hemisphere = ("N" if value >= 0 else "S") if is_lat else ("E" if value >= 0 else "W")
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60
    width = 2 if is_lat else 3
    return f"{degrees:0{width}d}{minutes:08.5f}", hemisphere


def route(second: int) -> tuple[float, float, float, float]:
    """lat, lon, speed m/s, course degrees at a given second."""
    speed = 11.0 + 0.4 * math.sin(second / 3)
    course = 88.0 + 1.5 * second  # a gentle right-hand curve
    lat, lon = ORIGIN
    for s in range(second):
        heading = math.radians(88.0 + 1.5 * s)
        step = 11.0 + 0.4 * math.sin(s / 3)
        lat += step * math.cos(heading) / M_PER_DEG_LAT
        lon += step * math.sin(heading) / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return lat, lon, speed, course % 360


def epoch(second: int) -> list[str]:
    t = START + dt.timedelta(seconds=second)
    hhmmss, ddmmyy = t.strftime("%H%M%S.00"), t.strftime("%d%m%y")
    gsv = [sentence("GPGSV,3,1,10,02,45,123,38,05,62,289,41,12,18,044,33,13,33,197,36"),
           sentence("GPGSV,3,2,10,15,72,071,44,18,09,321,28,20,27,248,35,24,14,165,31"),
           sentence("GPGSV,3,3,10,25,51,305,40,29,22,098,34"),
           sentence("GLGSV,1,1,04,65,38,210,32,66,70,302,37,72,21,049,29,81,44,150,35")]
    if second < NO_FIX_EPOCHS:
        return [sentence(f"GNRMC,{hhmmss},V,,,,,,,{ddmmyy},,,N"), sentence("GNVTG,,,,,,,,,N"),
                sentence(f"GNGGA,{hhmmss},,,,,0,00,99.99,,,,,,"), sentence("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"),
                *gsv, sentence(f"GNGLL,,,,,{hhmmss},V,N")]
    lat, lon, speed, course = route(second)
    lat_s, ns = ddmm(lat, True)
    lon_s, ew = ddmm(lon, False)
    knots, kmh = speed / 0.514444, speed * 3.6
    return [
        sentence(f"GNRMC,{hhmmss},A,{lat_s},{ns},{lon_s},{ew},{knots:.3f},{course:.2f},{ddmmyy},,,A"),
        sentence(f"GNVTG,{course:.2f},T,,M,{knots:.3f},N,{kmh:.3f},K,A"),
        sentence(f"GNGGA,{hhmmss},{lat_s},{ns},{lon_s},{ew},1,09,0.92,{ALTITUDE_M:.1f},M,47.3,M,,"),
        sentence("GNGSA,A,3,02,05,12,13,15,20,25,29,,,,,1.61,0.92,1.32"),
        *gsv,
        sentence(f"GNGLL,{lat_s},{ns},{lon_s},{ew},{hhmmss},A,A"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[1]
                        / "edge" / "data" / "sample" / "drive.nmea")
    args = parser.parse_args()
    lines = [line for second in range(EPOCHS) for line in epoch(second)]
    args.output.write_text("\r\n".join(lines) + "\r\n", encoding="ascii", newline="")


if __name__ == "__main__":
    main()
