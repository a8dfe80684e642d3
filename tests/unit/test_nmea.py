"""NMEA parsing, fix assembly, line splitting and gpsd report conversion, without devices."""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from edge.gps.nmea import (
    KNOTS_TO_MPS, REJECT_KINDS, SUPPORTED_TALKERS, FixAssembler, Sentence, classify_and_parse,
)
from edge.gps.port import LineSplitter, RawLine
from edge.gps.reader import FixStore, NmeaFeed, describe_fix
from edge.gps.replay import sky_summary, tpv_to_fix
from edge.types import GpsFix

NMEA_DATA = Path(__file__).resolve().parents[1] / "data" / "nmea"
UTC = dt.timezone.utc


def nmea(body: str) -> str:
    """Frame a sentence body with "$" and its checksum, computed independently of edge.gps."""
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    return f"${body}*{checksum:02X}"


def parse(line: str) -> Sentence:
    sentence, kind = classify_and_parse(line)
    assert kind is None, f"rejected as {kind}: {line}"
    assert sentence is not None
    return sentence


RMC = "GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"
GGA = "GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
VTG = "GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A"
GSA = "GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"
GSV = "GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45"


# --- accepted sentences -------------------------------------------------------------------

@pytest.mark.parametrize("talker", sorted(SUPPORTED_TALKERS))
@pytest.mark.parametrize("body", [RMC, GGA, VTG, GSA, GSV], ids=["RMC", "GGA", "VTG", "GSA", "GSV"])
def test_every_supported_type_and_talker_parses(talker: str, body: str) -> None:
    sentence = parse(nmea(talker + body[2:]))
    assert sentence.talker == talker
    assert sentence.sentence_type == body[2:5]


def test_rmc_fields() -> None:
    s = parse(nmea(RMC))
    assert s.time_utc == dt.time(12, 35, 19, tzinfo=UTC)
    assert s.date_utc == dt.date(1994, 3, 23)
    assert s.lat == pytest.approx(48 + 7.038 / 60)
    assert s.lon == pytest.approx(11 + 31.0 / 60)
    assert s.status_ok is True
    assert s.speed_mps == pytest.approx(22.4 * 0.514444, rel=1e-5)
    assert s.course_deg == pytest.approx(84.4)


def test_knots_to_metres_per_second() -> None:
    assert KNOTS_TO_MPS == pytest.approx(0.514444, rel=1e-6)
    s = parse(nmea("GNRMC,000000,A,0000.000,N,00000.000,E,10.0,0.0,010124,,"))
    assert s.speed_mps == pytest.approx(5.14444, rel=1e-5)


def test_southern_and_western_hemispheres_are_negative() -> None:
    s = parse(nmea("GPRMC,101010,A,3351.500,S,15112.600,W,0.0,,010124,,"))
    assert s.lat == pytest.approx(-(33 + 51.5 / 60))
    assert s.lon == pytest.approx(-(151 + 12.6 / 60))


def test_gga_fields() -> None:
    s = parse(nmea(GGA))
    assert (s.fix_quality, s.satellites_used, s.hdop, s.altitude_m) == (1, 8, 0.9, 545.4)
    assert s.time_utc == dt.time(12, 35, 19, tzinfo=UTC)
    assert s.date_utc is None


def test_vtg_prefers_kmh_and_falls_back_to_knots() -> None:
    s = parse(nmea(VTG))
    assert s.speed_mps == pytest.approx(10.2 / 3.6)
    assert s.course_deg == pytest.approx(54.7)
    knots_only = parse(nmea("GPVTG,054.7,T,,M,005.5,N,,K,A"))
    assert knots_only.speed_mps == pytest.approx(5.5 * KNOTS_TO_MPS)


def test_gsa_and_gsv_fields() -> None:
    gsa = parse(nmea(GSA))
    assert (gsa.fix_type, gsa.hdop) == (3, 1.3)
    assert parse(nmea(GSV)).satellites_in_view == 8


def test_lowercase_checksum_is_accepted() -> None:
    line = nmea("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W")
    assert line.endswith("*6A")
    assert parse(line[:-2] + "6a").sentence_type == "RMC"


def test_trailing_crlf_is_ignored() -> None:
    assert parse(nmea(RMC) + "\r\n").sentence_type == "RMC"


# --- rejected lines: one kind each --------------------------------------------------------

def test_bad_checksum_is_rejected() -> None:
    good = nmea(RMC)
    bad = good[:-2] + ("00" if good[-2:] != "00" else "01")
    assert classify_and_parse(bad) == (None, "checksum")


def test_missing_checksum_is_rejected() -> None:
    assert classify_and_parse("$" + RMC) == (None, "no_checksum")


def test_corrupted_field_is_caught_by_the_checksum() -> None:
    good = nmea(RMC)
    assert classify_and_parse(good.replace("4807.038", "4807.039")) == (None, "checksum")


@pytest.mark.parametrize("line, kind", [
    (nmea(RMC)[:-2] + "00", "checksum"),
    ("$" + RMC, "no_checksum"),
    (nmea("XXRMC" + RMC[5:]), "unknown_talker"),
    (nmea("IIGGA" + GGA[5:]), "unknown_talker"),
    (nmea("GPGLL,4916.45,N,12311.12,W,225444,A"), "unsupported_type"),
    (nmea("GPTXT,01,01,02,ANTSTATUS=OK"), "unsupported_type"),
    (nmea("PUBX,00,081350.00,4717.113210,N"), "unsupported_type"),
    (nmea("GPZZZ,1,2,3"), "unsupported_type"),
    ("GPRMC,123519,A,4807.038,N,01131.000,E,,,230394,,*00", "malformed"),  # no "$"
    (nmea(RMC)[:-1], "malformed"),  # one checksum digit
    (nmea(RMC) + "junk", "malformed"),
    ("$*00", "malformed"),
    ("", "malformed"),
    (nmea("GPRMC,123519,A,48x7.038,N,01131.000,E,,,230394,,"), "malformed"),
    (nmea("GPRMC,12x519,A,4807.038,N,01131.000,E,,,230394,,"), "malformed"),
    (nmea("GPRMC,123519,A,4807.038,N,01131.000,E,,,32139A,,"), "malformed"),
    (nmea("GPRMC,123519,A,4807.038,Q,01131.000,E,,,230394,,"), "malformed"),
    (nmea("GPRMC,123519,A,4875.038,N,01131.000,E,,,230394,,"), "malformed"),  # 75 minutes
    (nmea("GPRMC,123519,A,9107.038,N,01131.000,E,,,230394,,"), "malformed"),  # beyond the pole
    (nmea("GPRMC,123519,X,4807.038,N,01131.000,E,,,230394,,"), "malformed"),
    (nmea("GPRMC,123519,A,4807.038,N,01131.000,E,nan,,230394,,"), "malformed"),
    (nmea("GPRMC,123519,A,4807.038,N,01131.000,E,-3.0,,230394,,"), "malformed"),
    (nmea("GPGGA,123519,4807.038,N,01131.000,E,one,08,0.9,545.4,M,,,,"), "malformed"),
    (nmea("GPGSA,A,7,,,,,,,,,,,,,,,"), "malformed"),
    (nmea("GPRMC,123519,A,4807.038,N") + "\x00", "binary"),
    ("$GPRMC,1235\x0319,A*00", "binary"),
    ("$GPRMC,123519,A,48°07.038,N*00", "binary"),
    ("$GPRMC," + "1," * 70 + "*00", "overlong"),
])
def test_rejection_kinds(line: str, kind: str) -> None:
    assert classify_and_parse(line) == (None, kind)


def test_every_reject_kind_is_reachable_and_counted() -> None:
    store = FixStore(["lines", "fixes", "no_fix", *REJECT_KINDS], 2.0, lambda: 0)
    feed = NmeaFeed(store)
    lines = [
        RawLine(nmea(RMC)[:-2] + "00"), RawLine("$" + RMC), RawLine(nmea("XXRMC" + RMC[5:])),
        RawLine(nmea("GPGLL,4916.45,N,12311.12,W,225444,A")), RawLine("RMC,,,"),
        RawLine(None, "binary"), RawLine(None, "overlong"), RawLine(nmea(RMC)),
    ]
    for raw in lines:
        feed.handle(raw)
    counts = store.counters()
    assert {kind: counts[kind] for kind in REJECT_KINDS} == dict.fromkeys(REJECT_KINDS, 1)
    assert counts["lines"] == len(lines)
    assert counts["fixes"] == 1


# --- fix assembly -------------------------------------------------------------------------

def feed_all(assembler: FixAssembler, bodies: list[str], t_mono_ns: int = 1) -> list[GpsFix]:
    fixes = []
    for body in bodies:
        fix = assembler.update(parse(nmea(body)), t_mono_ns)
        if fix is not None:
            fixes.append(fix)
    return fixes


def test_rmc_gives_a_valid_fix_with_utc_date_and_time() -> None:
    fix, = feed_all(FixAssembler(), [RMC], t_mono_ns=42)
    assert fix.valid
    assert fix.t_utc == dt.datetime(1994, 3, 23, 12, 35, 19, tzinfo=UTC)
    assert fix.t_utc.tzinfo is not None and fix.t_utc.utcoffset() == dt.timedelta(0)
    assert fix.t_mono_ns == 42
    assert fix.speed_mps == pytest.approx(22.4 * KNOTS_TO_MPS)


def test_full_epoch_merges_all_sentence_types() -> None:
    assembler = FixAssembler()
    fixes = feed_all(assembler, [RMC, VTG, GGA, GSA, GSV, "GLGSV,1,1,03,65,40,100,36,72,25,300,31,81,55,210,39"])
    last = fixes[-1]
    assert len(fixes) == 2  # RMC and GGA each complete a fix
    assert last.valid and last.t_utc == dt.datetime(1994, 3, 23, 12, 35, 19, tzinfo=UTC)
    assert (last.fix_quality, last.satellites, last.altitude_m) == (1, 8, 545.4)
    assert last.hdop == 0.9  # GGA's; GSA's 1.3 comes later and completes no fix
    assert last.speed_mps == pytest.approx(10.2 / 3.6)  # VTG came after RMC
    assert assembler.fix_type == 3
    assert assembler.satellites_in_view == 11  # 8 GPS + 3 GLONASS


def test_gga_takes_its_date_from_the_last_rmc() -> None:
    fixes = feed_all(FixAssembler(), [RMC, "GPGGA,123520.00,4807.040,N,01131.000,E,1,08,0.9,545.4,M,,,,"])
    assert fixes[-1].t_utc == dt.datetime(1994, 3, 23, 12, 35, 20, tzinfo=UTC)


def test_gga_after_midnight_rolls_the_rmc_date_forward() -> None:
    fixes = feed_all(FixAssembler(), [
        "GPRMC,235959.50,A,4807.038,N,01131.000,E,0.0,,311224,,",
        "GPGGA,000000.50,4807.038,N,01131.000,E,1,08,0.9,545.4,M,,,,",
    ])
    assert fixes[-1].t_utc == dt.datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def test_gga_only_receiver_gives_valid_fixes_without_date() -> None:
    fix, = feed_all(FixAssembler(), [GGA])
    assert fix.valid
    assert fix.t_utc is None  # GGA has no date, and no RMC ever came
    assert fix.lat == pytest.approx(48 + 7.038 / 60)
    assert (fix.fix_quality, fix.satellites, fix.hdop, fix.altitude_m) == (1, 8, 0.9, 545.4)


def test_gga_quality_zero_is_invalid() -> None:
    fix, = feed_all(FixAssembler(), ["GPGGA,123519,4807.038,N,01131.000,E,0,00,,,M,,,,"])
    assert not fix.valid


def test_rmc_status_v_makes_later_gga_invalid_too() -> None:
    fixes = feed_all(FixAssembler(), [RMC.replace(",A,", ",V,", 1), GGA])
    assert [fix.valid for fix in fixes] == [False, False]


def test_rmc_mode_indicator_n_is_invalid() -> None:
    fix, = feed_all(FixAssembler(), ["GPRMC,123519,A,4807.038,N,01131.000,E,0.0,,230394,,,N"])
    assert not fix.valid


@pytest.mark.parametrize("body", [
    "GPRMC,,V,,,,,,,,,,N",
    "GNRMC,083000.00,V,,,,,,,140524,,,N",
    "GPGGA,,,,,,0,,,,,,,,",
    "GNGGA,083000.00,,,,,0,00,99.99,,,,,,",
])
def test_receiver_without_fix_gives_an_invalid_fix_and_no_exception(body: str) -> None:
    fix, = feed_all(FixAssembler(), [body])
    assert not fix.valid
    assert math.isnan(fix.lat) and math.isnan(fix.lon)


def test_empty_vtg_gsa_gsv_are_accepted() -> None:
    assembler = FixAssembler()
    assert feed_all(assembler, ["GPVTG,,,,,,,,,N", "GPGSA,A,1,,,,,,,,,,,,,,,", "GPGSV,1,1,00"]) == []
    assert assembler.fix_type == 1


def test_lost_fix_never_repeats_the_old_position() -> None:
    fixes = feed_all(FixAssembler(), [RMC, "GPRMC,123520,V,,,,,,,230394,,,N"])
    assert fixes[0].valid and not fixes[1].valid
    assert math.isnan(fixes[1].lat)


def test_fixture_logs_have_correct_checksums_and_give_fixes() -> None:
    for path in sorted(NMEA_DATA.glob("*.nmea")):
        assembler, valid = FixAssembler(), 0
        for line in path.read_text(encoding="ascii").splitlines():
            sentence, kind = classify_and_parse(line)
            assert kind in (None, "unsupported_type"), f"{path.name}: {line} -> {kind}"
            fix = assembler.update(sentence, 0) if sentence is not None else None
            valid += bool(fix and fix.valid)
        assert valid >= 3, path.name


# --- line splitter ------------------------------------------------------------------------

def test_splitter_joins_chunks_and_strips_crlf() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"$GPRMC,1") == []
    assert splitter.feed(b"23\r\n$GP") == [RawLine("$GPRMC,123")]
    assert splitter.feed(b"GGA\r\n\r\n") == [RawLine("$GPGGA")]


def test_splitter_reports_non_ascii_as_binary() -> None:
    assert LineSplitter().feed(b"\xff\xfe\x80abc\n$GPTXT\n") == [RawLine(None, "binary"), RawLine("$GPTXT")]


def test_splitter_discards_a_10mb_line_chunk_wise_and_counts_it_once() -> None:
    splitter = LineSplitter(max_line=120)
    chunk = b"A" * 4096
    events: list[RawLine] = []
    for _ in range(10 * 1024 * 1024 // len(chunk)):
        events += splitter.feed(chunk)
        assert splitter.buffered <= 120
    events += splitter.feed(b"AAAA\n$GPTXT,ok\n")
    assert events == [RawLine(None, "overlong"), RawLine("$GPTXT,ok")]


def test_splitter_counts_an_overlong_line_that_arrives_whole() -> None:
    assert LineSplitter(max_line=10).feed(b"x" * 11 + b"\nshort\n") == [RawLine(None, "overlong"), RawLine("short")]


def test_splitter_rejects_bad_limit() -> None:
    with pytest.raises(ValueError):
        LineSplitter(max_line=0)


# --- store, description, gpsd reports -----------------------------------------------------

def test_store_expires_stale_fixes_and_hides_invalid_ones() -> None:
    now = [0]
    store = FixStore(["fixes", "no_fix"], 2.0, lambda: now[0])
    fix = GpsFix(t_utc=None, lat=1.0, lon=2.0, valid=True, t_mono_ns=0)
    store.publish(fix)
    now[0] = 2_000_000_000
    assert store.latest() is fix
    now[0] = 2_000_000_001
    assert store.latest() is None
    store.publish(GpsFix(t_utc=None, lat=math.nan, lon=math.nan, valid=False, t_mono_ns=now[0]))
    assert store.latest() is None
    assert store.counters() == {"fixes": 1, "no_fix": 1}


def test_describe_fix() -> None:
    fix = GpsFix(t_utc=dt.datetime(2024, 5, 14, 8, 30, 9, tzinfo=UTC), lat=47.3769, lon=8.5428617,
                 valid=True, t_mono_ns=0, speed_mps=12.5, fix_quality=1, satellites=7, hdop=0.92)
    assert describe_fix(fix) == (
        "2024-05-14 08:30:09 UTC  lat 47.376900 lon 8.542862  45.0 km/h  sats 7  hdop 0.9  quality 1")
    assert describe_fix(None) == "no fix"
    bare = GpsFix(t_utc=None, lat=math.nan, lon=math.nan, valid=False, t_mono_ns=0)
    assert describe_fix(bare) == "time unknown  no fix  - km/h  sats -  hdop -  quality -"


def test_tpv_to_fix() -> None:
    report = {"class": "TPV", "mode": 3, "time": "2024-05-14T08:30:09.000Z", "lat": 47.3769, "lon": 8.5417,
              "altHAE": 82.4, "altMSL": 35.4, "speed": 12.5, "track": 90.0}
    fix = tpv_to_fix(report, 7, satellites=9, hdop=0.8)
    assert fix.valid and (fix.lat, fix.lon, fix.altitude_m, fix.speed_mps, fix.course_deg) == (
        47.3769, 8.5417, 35.4, 12.5, 90.0)
    assert fix.t_utc == dt.datetime(2024, 5, 14, 8, 30, 9, tzinfo=UTC)
    assert (fix.t_mono_ns, fix.satellites, fix.hdop) == (7, 9, 0.8)
    assert tpv_to_fix({"mode": 3, "lat": 1.0, "lon": 2.0, "altHAE": 5.0}, 0).altitude_m == 5.0
    no_fix = tpv_to_fix({"class": "TPV", "mode": 1}, 0)
    assert not no_fix.valid and math.isnan(no_fix.lat)
    with pytest.raises(ValueError):
        tpv_to_fix({"mode": 3, "lat": "47", "lon": 8.0}, 0)
    with pytest.raises(ValueError):
        tpv_to_fix({"mode": 3, "lat": 47.0, "lon": 8.0, "time": "yesterday"}, 0)


def test_sky_summary() -> None:
    assert sky_summary({"uSat": 7, "hdop": 0.9}) == (7, 0.9)
    sats = [{"PRN": 1, "used": True}, {"PRN": 2, "used": False}, {"PRN": 3, "used": True}]
    assert sky_summary({"satellites": sats}) == (2, None)
