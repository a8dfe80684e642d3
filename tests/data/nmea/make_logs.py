"""Writes the NMEA fixture logs in this folder; run it again after changing it.

The logs are synthetic (a short made-up drive), so every checksum is computed here
rather than copied from a receiver recording.

    python tests/data/nmea/make_logs.py
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
KNOTS_PER_MPS = 3600.0 / 1852.0


def sentence(body: str) -> str:
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}"


def dm(value: float, degree_digits: int) -> str:
    degrees = int(abs(value))
    minutes = (abs(value) - degrees) * 60.0
    return f"{degrees:0{degree_digits}d}{minutes:07.4f}"


def epoch(hhmmss: str, date: str, lat: float | None, lon: float | None, speed_mps: float,
          course: float, sats: int, talker: str = "GN") -> list[str]:
    """One second of receiver output, u-blox order: RMC VTG GGA GSA GSV..."""
    if lat is None or lon is None:  # cold start: empty fields, status V, quality 0
        return [
            sentence(f"{talker}RMC,{hhmmss}.00,V,,,,,,,{date},,,N"),
            sentence(f"{talker}VTG,,,,,,,,,N"),
            sentence(f"{talker}GGA,{hhmmss}.00,,,,,0,00,99.99,,,,,,"),
            sentence(f"{talker}GSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"),
            sentence("GPGSV,1,1,02,05,,,22,12,,,18"),
        ]
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    knots = speed_mps * KNOTS_PER_MPS
    kmh = speed_mps * 3.6
    return [
        sentence(f"{talker}RMC,{hhmmss}.00,A,{dm(lat, 2)},{ns},{dm(lon, 3)},{ew},{knots:.3f},{course:.2f},{date},,,A"),
        sentence(f"{talker}VTG,{course:.2f},T,,M,{knots:.3f},N,{kmh:.3f},K,A"),
        sentence(f"{talker}GGA,{hhmmss}.00,{dm(lat, 2)},{ns},{dm(lon, 3)},{ew},1,{sats:02d},0.92,35.4,M,47.0,M,,"),
        sentence(f"{talker}GSA,A,3,05,12,15,18,24,25,29,,,,,,1.60,0.92,1.31"),
        sentence("GPGSV,2,1,07,05,45,120,40,12,60,250,42,15,30,080,38,18,20,310,35"),
        sentence("GPGSV,2,2,07,24,15,040,33,25,70,180,44,29,10,200,30"),
        sentence("GLGSV,1,1,03,65,40,100,36,72,25,300,31,81,55,210,39"),
        sentence("GAGSV,1,1,02,02,35,140,37,11,50,260,40"),
        sentence("BDGSV,1,1,01,07,62,190,41"),
        sentence(f"{talker}GLL,{dm(lat, 2)},{ns},{dm(lon, 3)},{ew},{hhmmss}.00,A,A"),
    ]


def drive() -> list[str]:
    """Two seconds without fix, then eight seconds heading east at 12.5 m/s."""
    lines = [sentence("GPTXT,01,01,02,u-blox ag - www.u-blox.com")]
    lines += epoch("083000", "140524", None, None, 0.0, 0.0, 0)
    lines += epoch("083001", "140524", None, None, 0.0, 0.0, 0)
    lat, lon = 47.3769, 8.5417
    for second in range(2, 10):
        lines += epoch(f"0830{second:02d}", "140524", lat, lon, 12.5, 90.0, 7)
        lon += 12.5 / 75_300.0  # about 12.5 m east at this latitude
    return lines


def three_epochs() -> list[str]:
    lines = []
    for second in range(3):
        lat, lon = 47.3769 + second * 1e-4, 8.5417
        lines += epoch(f"1200{second:02d}", "140524", lat, lon, 11.0, 0.0, 8, talker="GP")[:3]
    return lines


def main() -> None:
    (HERE / "drive.nmea").write_text("\r\n".join(drive()) + "\r\n", encoding="ascii", newline="")
    (HERE / "three_epochs.nmea").write_text("\r\n".join(three_epochs()) + "\r\n", encoding="ascii", newline="")


if __name__ == "__main__":
    main()
