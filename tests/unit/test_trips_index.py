"""The SQLite trips index: grouping, distance and box from sidecar tracks, locks, rebuilding when lost or corrupt."""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import stat
from pathlib import Path

import pytest

from edge.record.index import TripsIndex
from edge.record.store import RecordingsFolder, format_utc, segment_stem

T0 = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.timezone.utc)


def put_segment(folder: RecordingsFolder, start: dt.datetime, seconds: float = 60, track: list | None = None,
                locked: bool = False) -> str:
    """A segment as the recorder leaves it: a video file (content irrelevant here) and its sidecar."""
    target = folder.locked_dir if locked else folder.root
    target.mkdir(parents=True, exist_ok=True)
    stem = segment_stem(start)
    (target / f"{stem}.mp4").write_bytes(b"\0" * 1000)
    sidecar = {"video": f"{stem}.mp4", "start_utc": format_utc(start),
               "end_utc": format_utc(start + dt.timedelta(seconds=seconds)), "frame_count": int(seconds * 10),
               "fps": 10.0, "locked": locked,
               "location": None if track is None else {"precision_decimals": 4, "track": track}}
    (target / f"{stem}.json").write_text(json.dumps(sidecar))
    return f"{stem}.mp4"


def point(lat: float, lon: float) -> dict:
    return {"t_utc": None, "lat": lat, "lon": lon, "speed_mps": None, "course_deg": None, "altitude_m": None}


@pytest.fixture
def folder(tmp_path: Path) -> RecordingsFolder:
    folder = RecordingsFolder(tmp_path / "rec")
    folder.create()
    return folder


def test_segments_group_into_trips_by_gap(folder):
    for minute in (0, 1, 2):  # one drive
        put_segment(folder, T0 + dt.timedelta(minutes=minute))
    put_segment(folder, T0 + dt.timedelta(hours=3))  # after lunch
    index = TripsIndex.open(folder, trip_gap_s=300)
    trips = index.trips()
    assert [t.segment_count for t in trips] == [3, 1]
    assert trips[0].start_utc.startswith("2026-11-21T08:00:00") and trips[0].end_utc.startswith("2026-11-21T08:03:00")
    assert trips[0].duration_s == pytest.approx(180)
    assert [s.trip_id for s in index.segments()] == [trips[0].id] * 3 + [trips[1].id]


def test_distance_and_bounding_box_come_from_the_rounded_track(folder):
    # 0.001 degree of latitude is about 111 m.
    put_segment(folder, T0, track=[point(48.0, 11.0), point(48.001, 11.0), point(48.002, 11.001)])
    put_segment(folder, T0 + dt.timedelta(minutes=1))  # no GPS: no distance, no box
    index = TripsIndex.open(folder, trip_gap_s=300)
    with_gps, without = index.segments()
    assert with_gps.distance_m == pytest.approx(111.2 + 134.4, abs=2)
    assert (with_gps.min_lat, with_gps.min_lon, with_gps.max_lat, with_gps.max_lon) == (48.0, 11.0, 48.002, 11.001)
    assert without.distance_m is None and without.min_lat is None
    (trip,) = index.trips()
    assert trip.distance_m == pytest.approx(with_gps.distance_m)
    assert (trip.min_lat, trip.max_lon) == (48.0, 11.001)


def test_locked_segments_are_flagged(folder):
    put_segment(folder, T0)
    locked = put_segment(folder, T0 + dt.timedelta(minutes=1), locked=True)
    index = TripsIndex.open(folder, trip_gap_s=300)
    assert [s.name for s in index.segments(locked_only=True)] == [locked]
    assert index.trips()[0].locked_count == 1


def test_the_file_is_wal_mode_private_and_survives_reopening(folder):
    put_segment(folder, T0)
    TripsIndex.open(folder, trip_gap_s=300).close()
    assert stat.S_IMODE(folder.index_path.stat().st_mode) == 0o600
    with sqlite3.connect(folder.index_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 1
    reopened = TripsIndex.open(folder, trip_gap_s=300)
    assert len(reopened.segments()) == 1


def test_a_corrupt_index_is_rebuilt_from_the_sidecars(folder, caplog):
    put_segment(folder, T0, track=[point(48.0, 11.0), point(48.001, 11.0)])
    put_segment(folder, T0 + dt.timedelta(minutes=1), locked=True)
    TripsIndex.open(folder, trip_gap_s=300).close()
    folder.index_path.write_bytes(b"this is not an SQLite database, it is a torn write" * 100)
    with caplog.at_level(logging.WARNING):
        index = TripsIndex.open(folder, trip_gap_s=300)
    assert "rebuilding" in caplog.text
    assert [s.locked for s in index.segments()] == [False, True]
    assert index.segments()[0].distance_m == pytest.approx(111.2, abs=1)
    index.close()
    with sqlite3.connect(folder.index_path) as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_an_index_of_another_schema_version_is_rebuilt(folder):
    put_segment(folder, T0)
    TripsIndex.open(folder, trip_gap_s=300).close()
    with sqlite3.connect(folder.index_path) as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    assert len(TripsIndex.open(folder, trip_gap_s=300).segments()) == 1


def test_a_lost_index_is_rebuilt_and_vanished_files_are_dropped(folder):
    first = put_segment(folder, T0)
    put_segment(folder, T0 + dt.timedelta(minutes=1))
    TripsIndex.open(folder, trip_gap_s=300).close()
    (folder.root / first).unlink()
    (folder.root / first).with_suffix(".json").unlink()
    assert len(TripsIndex.open(folder, trip_gap_s=300).segments()) == 1
    folder.index_path.unlink()
    for suffix in ("-wal", "-shm"):
        folder.index_path.with_name(folder.index_path.name + suffix).unlink(missing_ok=True)
    assert len(TripsIndex.open(folder, trip_gap_s=300).segments()) == 1


def test_removing_the_last_segment_of_a_trip_removes_the_trip(folder):
    name = put_segment(folder, T0)
    index = TripsIndex.open(folder, trip_gap_s=300)
    index.remove([name])
    assert index.trips() == []


def test_read_only_open_of_a_damaged_index_indexes_in_memory_and_leaves_the_file(folder):
    put_segment(folder, T0)
    folder.index_path.write_bytes(b"garbage" * 100)
    index = TripsIndex.open(folder, trip_gap_s=300, writable=False)
    assert len(index.segments()) == 1
    assert folder.index_path.read_bytes() == b"garbage" * 100


def test_new_names_never_collide_with_locked_segments_and_a_lock_never_overwrites(folder):
    locked = put_segment(folder, T0, locked=True)
    fresh = folder.new_video_path(T0)
    assert fresh.name != locked and fresh.parent == folder.root
    (folder.root / locked).write_bytes(b"other footage, same second")  # e.g. restored by hand
    (folder.root / locked).with_suffix(".json").write_text("{}")
    (segment,) = [s for s in folder.segments() if not s.locked]
    moved = folder.lock(segment, T0)
    assert moved.locked and moved.name != locked
    assert (folder.locked_dir / locked).read_bytes() == b"\0" * 1000
