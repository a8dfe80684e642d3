"""NMEA 0183 sentences to `GpsFix`, without any I/O.

This module owns two decisions: whether one line is an acceptable sentence (framing,
enforced checksum, known talker, supported type, sane fields), with every rejected
line sorted into one counter kind; and how `FixAssembler` merges RMC, GGA, VTG, GSA
and GSV sentences into fixes.

pynmea2 splits sentences into named fields, but its lazy field conversion silently
returns the raw text when a value is bad (a timestamp of "12x519" comes back as that
string), so fields are converted here from the raw text, and a bad field rejects the
whole sentence as "malformed".
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import pynmea2
from pynmea2.nmea_utils import datestamp, dm_to_sd, timestamp

from edge.types import GpsFix

# NMEA allows 82 characters including "$" and CR LF; some receivers exceed it a little.
MAX_LINE_CHARS = 120
KNOTS_TO_MPS = 1852.0 / 3600.0
KMH_TO_MPS = 1.0 / 3.6

# GB is the BeiDou talker of older receivers, BD of newer ones.
SUPPORTED_TALKERS = frozenset({"GP", "GN", "GL", "GA", "BD", "GB"})
SUPPORTED_TYPES = frozenset({"RMC", "GGA", "VTG", "GSA", "GSV"})

# Counter kinds for rejected lines. Each rejected line is counted under exactly one.
CHECKSUM = "checksum"
NO_CHECKSUM = "no_checksum"
UNKNOWN_TALKER = "unknown_talker"
UNSUPPORTED_TYPE = "unsupported_type"  # a correct sentence we do not use (GLL, TXT, $PUBX): not an error
MALFORMED = "malformed"
BINARY = "binary"
OVERLONG = "overlong"
REJECT_KINDS = (CHECKSUM, NO_CHECKSUM, UNKNOWN_TALKER, UNSUPPORTED_TYPE, MALFORMED, BINARY, OVERLONG)

_FRAME_RE = re.compile(r"^\$(?P<body>[^*$]*)(?:\*(?P<checksum>.*))?$")
_CHECKSUM_RE = re.compile(r"^[0-9A-Fa-f]{2}$")
_ADDRESS_RE = re.compile(r"^[A-Z0-9]{5}$")
_HALF_DAY = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Sentence:
    """One accepted sentence with its fields converted; None where the receiver left a field empty."""

    talker: str
    sentence_type: str  # "RMC", "GGA", "VTG", "GSA" or "GSV"
    time_utc: dt.time | None = None  # timezone-aware (UTC); RMC and GGA only
    date_utc: dt.date | None = None  # RMC only
    lat: float | None = None
    lon: float | None = None
    status_ok: bool | None = None  # RMC: status A (and mode indicator not N)
    speed_mps: float | None = None
    course_deg: float | None = None
    fix_quality: int | None = None  # GGA: 0 = invalid, 1 = GPS, 2 = DGPS, 4/5 = RTK
    satellites_used: int | None = None
    hdop: float | None = None
    altitude_m: float | None = None  # GGA: above mean sea level
    fix_type: int | None = None  # GSA: 1 = no fix, 2 = 2D, 3 = 3D
    satellites_in_view: int | None = None  # GSV


def nmea_checksum(body: str) -> int:
    """XOR of the characters between "$" and "*", as the receiver computes it."""
    value = 0
    for char in body:
        value ^= ord(char)
    return value


def classify_and_parse(line: str) -> tuple[Sentence | None, str | None]:
    """Return (sentence, None) for an acceptable line, else (None, kind) with the rejection kind."""
    text = line.rstrip("\r\n")
    if len(text) > MAX_LINE_CHARS:
        return None, OVERLONG
    if not (text.isascii() and text.isprintable()):
        return None, BINARY
    match = _FRAME_RE.match(text)
    if match is None:
        return None, MALFORMED
    body, checksum = match["body"], match["checksum"]
    if checksum is None:
        # pynmea2 accepts a missing checksum unless check=True; we never trust one.
        return None, NO_CHECKSUM
    if not _CHECKSUM_RE.match(checksum):
        return None, MALFORMED
    if int(checksum, 16) != nmea_checksum(body):
        return None, CHECKSUM
    address = body.split(",", 1)[0]
    if address.startswith("P"):  # proprietary ($PUBX, $PMTK...): intact but not ours
        return None, UNSUPPORTED_TYPE
    if not _ADDRESS_RE.match(address) or "," not in body:
        return None, MALFORMED
    talker, kind = address[:2], address[2:]
    if talker not in SUPPORTED_TALKERS:
        return None, UNKNOWN_TALKER
    if kind not in SUPPORTED_TYPES:
        return None, UNSUPPORTED_TYPE
    try:
        parsed = pynmea2.parse(text, check=True)
    except pynmea2.ParseError:
        return None, MALFORMED
    try:
        sentence = _CONVERTERS[kind](talker, parsed)
    except ValueError:
        return None, MALFORMED
    return sentence, None


def _raw(parsed: pynmea2.NMEASentence, name: str) -> str:
    """The field's text as sent, "" when absent; bypasses pynmea2's lenient conversion."""
    index = type(parsed).name_to_idx[name]
    return parsed.data[index].strip() if index < len(parsed.data) else ""


def _opt_float(text: str, minimum: float | None = None) -> float | None:
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ValueError(f"field value {text!r} out of range")
    return value


def _opt_int(text: str, minimum: int = 0) -> int | None:
    if not text:
        return None
    value = int(text)
    if value < minimum:
        raise ValueError(f"field value {text!r} out of range")
    return value


def _opt_time(text: str) -> dt.time | None:
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit():
        raise ValueError(f"bad time {text!r}")
    return timestamp(text)


def _opt_date(text: str) -> dt.date | None:
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise ValueError(f"bad date {text!r}")
    return datestamp(text)


def _coordinate(text: str, hemisphere: str, positive: str, negative: str, limit: float) -> float:
    if hemisphere not in (positive, negative):
        raise ValueError(f"bad hemisphere {hemisphere!r}")
    degrees = dm_to_sd(text)  # raises ValueError unless the text is DDDMM.MMMM
    minutes = float(text[text.index(".") - 2:])
    if minutes >= 60.0 or degrees > limit:
        raise ValueError(f"coordinate {text!r} out of range")
    return degrees if hemisphere == positive else -degrees


def _position(parsed: pynmea2.NMEASentence) -> tuple[float | None, float | None]:
    """Signed degrees, or (None, None) when the receiver sent empty fields (no fix)."""
    lat_text, lon_text = _raw(parsed, "lat"), _raw(parsed, "lon")
    if not lat_text or not lon_text:
        return None, None
    lat = _coordinate(lat_text, _raw(parsed, "lat_dir"), "N", "S", 90.0)
    lon = _coordinate(lon_text, _raw(parsed, "lon_dir"), "E", "W", 180.0)
    return lat, lon


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _rmc(talker: str, parsed: pynmea2.NMEASentence) -> Sentence:
    status = _raw(parsed, "status")
    if status not in ("A", "V", ""):
        raise ValueError(f"bad RMC status {status!r}")
    # NMEA 2.3+ adds a mode indicator; "N" means not valid even when the status says A.
    status_ok = status == "A" and _raw(parsed, "mode_indicator") != "N"
    lat, lon = _position(parsed)
    return Sentence(
        talker, "RMC",
        time_utc=_opt_time(_raw(parsed, "timestamp")),
        date_utc=_opt_date(_raw(parsed, "datestamp")),
        lat=lat, lon=lon, status_ok=status_ok,
        speed_mps=_scaled(_opt_float(_raw(parsed, "spd_over_grnd"), 0.0), KNOTS_TO_MPS),
        course_deg=_opt_float(_raw(parsed, "true_course"), 0.0),
    )


def _gga(talker: str, parsed: pynmea2.NMEASentence) -> Sentence:
    lat, lon = _position(parsed)
    return Sentence(
        talker, "GGA",
        time_utc=_opt_time(_raw(parsed, "timestamp")),
        lat=lat, lon=lon,
        fix_quality=_opt_int(_raw(parsed, "gps_qual")),
        satellites_used=_opt_int(_raw(parsed, "num_sats")),
        hdop=_opt_float(_raw(parsed, "horizontal_dil"), 0.0),
        altitude_m=_opt_float(_raw(parsed, "altitude")),
    )


def _vtg(talker: str, parsed: pynmea2.NMEASentence) -> Sentence:
    kmh = _opt_float(_raw(parsed, "spd_over_grnd_kmph"), 0.0)
    knots = _opt_float(_raw(parsed, "spd_over_grnd_kts"), 0.0)
    speed = _scaled(kmh, KMH_TO_MPS) if kmh is not None else _scaled(knots, KNOTS_TO_MPS)
    return Sentence(talker, "VTG", speed_mps=speed, course_deg=_opt_float(_raw(parsed, "true_track"), 0.0))


def _gsa(talker: str, parsed: pynmea2.NMEASentence) -> Sentence:
    fix_type = _opt_int(_raw(parsed, "mode_fix_type"), 1)
    if fix_type is not None and fix_type > 3:
        raise ValueError(f"bad GSA fix type {fix_type}")
    return Sentence(talker, "GSA", fix_type=fix_type, hdop=_opt_float(_raw(parsed, "hdop"), 0.0))


def _gsv(talker: str, parsed: pynmea2.NMEASentence) -> Sentence:
    return Sentence(talker, "GSV", satellites_in_view=_opt_int(_raw(parsed, "num_sv_in_view")))


_CONVERTERS: dict[str, Callable[[str, pynmea2.NMEASentence], Sentence]] = {
    "RMC": _rmc, "GGA": _gga, "VTG": _vtg, "GSA": _gsa, "GSV": _gsv,
}


class FixAssembler:
    """Merges sentences into fixes; RMC and GGA each complete a fix, the others add detail.

    Validity: an RMC fix is valid when its status is A; a GGA fix when its quality is
    above 0 and the latest RMC (if any was seen) did not say V. Either needs a position:
    empty position fields give an invalid fix with NaN coordinates, never a stale
    position. Speed and course come from the latest RMC or VTG, HDOP from GGA or GSA.
    """

    def __init__(self) -> None:
        self._rmc_utc: dt.datetime | None = None  # the last RMC's date and time: GGA has no date
        self._rmc_ok: bool | None = None
        self._speed_mps: float | None = None
        self._course_deg: float | None = None
        self._fix_quality: int | None = None
        self._satellites: int | None = None
        self._hdop: float | None = None
        self._altitude_m: float | None = None
        self._fix_type: int | None = None
        self._in_view: dict[str, int] = {}

    @property
    def fix_type(self) -> int | None:
        """The latest GSA fix type (1 = no fix, 2 = 2D, 3 = 3D)."""
        return self._fix_type

    @property
    def satellites_in_view(self) -> int | None:
        """Satellites in view summed over constellations (latest GSV per talker)."""
        return sum(self._in_view.values()) if self._in_view else None

    def update(self, sentence: Sentence, t_mono_ns: int) -> GpsFix | None:
        """Take one sentence; returns a new fix after RMC or GGA, None after the others."""
        if sentence.sentence_type == "RMC":
            return self._take_rmc(sentence, t_mono_ns)
        if sentence.sentence_type == "GGA":
            return self._take_gga(sentence, t_mono_ns)
        if sentence.sentence_type == "VTG":
            self._speed_mps, self._course_deg = sentence.speed_mps, sentence.course_deg
        elif sentence.sentence_type == "GSA":
            self._fix_type = sentence.fix_type
            if sentence.hdop is not None:
                self._hdop = sentence.hdop
        elif sentence.sentence_type == "GSV" and sentence.satellites_in_view is not None:
            self._in_view[sentence.talker] = sentence.satellites_in_view
        return None

    def _take_rmc(self, sentence: Sentence, t_mono_ns: int) -> GpsFix:
        self._rmc_ok = bool(sentence.status_ok)
        self._speed_mps, self._course_deg = sentence.speed_mps, sentence.course_deg
        t_utc = None
        if sentence.date_utc is not None and sentence.time_utc is not None:
            t_utc = dt.datetime.combine(sentence.date_utc, sentence.time_utc)
            self._rmc_utc = t_utc
        return self._fix(sentence, t_utc, self._rmc_ok, t_mono_ns)

    def _take_gga(self, sentence: Sentence, t_mono_ns: int) -> GpsFix:
        self._fix_quality = sentence.fix_quality
        self._satellites = sentence.satellites_used
        self._altitude_m = sentence.altitude_m
        if sentence.hdop is not None:
            self._hdop = sentence.hdop
        ok = (sentence.fix_quality or 0) > 0 and self._rmc_ok is not False
        return self._fix(sentence, self._gga_utc(sentence.time_utc), ok, t_mono_ns)

    def _gga_utc(self, time_utc: dt.time | None) -> dt.datetime | None:
        if time_utc is None or self._rmc_utc is None:
            return None
        candidate = dt.datetime.combine(self._rmc_utc.date(), time_utc)
        if self._rmc_utc - candidate > _HALF_DAY:  # GGA just after midnight, RMC date from before it
            candidate += dt.timedelta(days=1)
        elif candidate - self._rmc_utc > _HALF_DAY:
            candidate -= dt.timedelta(days=1)
        return candidate

    def _fix(self, sentence: Sentence, t_utc: dt.datetime | None, ok: bool, t_mono_ns: int) -> GpsFix:
        lat, lon = sentence.lat, sentence.lon
        has_position = lat is not None and lon is not None
        return GpsFix(
            t_utc=t_utc,
            lat=lat if lat is not None and lon is not None else math.nan,
            lon=lon if lat is not None and lon is not None else math.nan,
            valid=ok and has_position,
            t_mono_ns=t_mono_ns,
            speed_mps=self._speed_mps,
            course_deg=self._course_deg,
            altitude_m=self._altitude_m,
            fix_quality=self._fix_quality,
            satellites=self._satellites,
            hdop=self._hdop,
        )
