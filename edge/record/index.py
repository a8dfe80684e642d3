"""The trips index: an SQLite file (WAL) listing segments and grouping them into trips.

`<recordings>/index.sqlite3` is derived data. Sidecars are the truth; when the index is
missing, unreadable (sqlite3.DatabaseError, e.g. a torn write on a card) or from another
schema version, it is deleted and rebuilt from them, and on every open it is reconciled
with the files present. A trip is a run of segments separated by gaps shorter than
`trip_gap_s`; its times, distance and bounding box are aggregated by the `trip_summary`
view, so they stay right as retention deletes its oldest segments.
Distances and boxes come from the sidecar tracks, which are already rounded and
zone-filtered; coordinates are never logged.

Being derived, the index never stops recording: when the disk is full or the card
misbehaves, a failed write is logged once and the index goes on in memory, and read-only
opens (`dashcam trips`, `export`) reconcile a copy in memory, so a row missed while the
disk was full shows up there at once and in the file at the recorder's next start.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import StorageError
from edge.gps.privacy import distance_m
from edge.record.atomic import CREATE_FLAGS, FILE_MODE, is_regular_file
from edge.record.sidecar import Sidecar
from edge.record.store import RecordingsFolder, StoredSegment, format_utc, parse_utc, read_sidecar

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trips (id INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE segments (
    name TEXT PRIMARY KEY,
    trip_id INTEGER NOT NULL REFERENCES trips(id),
    start_utc TEXT NOT NULL,
    end_utc TEXT NOT NULL,
    duration_s REAL NOT NULL,
    frame_count INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    distance_m REAL,
    min_lat REAL, min_lon REAL, max_lat REAL, max_lon REAL,
    locked INTEGER NOT NULL DEFAULT 0,
    recovered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX segments_by_start ON segments(start_utc);
CREATE VIEW trip_summary AS
    SELECT trip_id AS id, MIN(start_utc) AS start_utc, MAX(end_utc) AS end_utc,
           SUM(duration_s) AS duration_s, SUM(distance_m) AS distance_m,
           MIN(min_lat) AS min_lat, MIN(min_lon) AS min_lon, MAX(max_lat) AS max_lat, MAX(max_lon) AS max_lon,
           COUNT(*) AS segment_count, SUM(locked) AS locked_count
    FROM segments GROUP BY trip_id;
"""
_SEGMENT_COLUMNS = ("name, trip_id, start_utc, end_utc, duration_s, frame_count, size_bytes, distance_m, "
                    "min_lat, min_lon, max_lat, max_lon, locked, recovered")


@dataclass(frozen=True)
class SegmentRow:
    name: str
    trip_id: int
    start_utc: str
    end_utc: str
    duration_s: float
    frame_count: int
    size_bytes: int
    distance_m: float | None
    min_lat: float | None
    min_lon: float | None
    max_lat: float | None
    max_lon: float | None
    locked: bool
    recovered: bool


@dataclass(frozen=True)
class TripRow:
    id: int
    start_utc: str
    end_utc: str
    duration_s: float
    distance_m: float | None
    min_lat: float | None
    min_lon: float | None
    max_lat: float | None
    max_lon: float | None
    segment_count: int
    locked_count: int


def segment_row_values(segment: StoredSegment, sidecar: Sidecar | None) -> dict:
    """Index columns for one segment, from its sidecar (or its name alone when the sidecar is lost)."""
    sidecar = sidecar or Sidecar(video=segment.name)
    start = sidecar.start_utc or format_utc(segment.start_utc)
    points = sidecar.location.points() if sidecar.location else []
    values = {"name": segment.name, "start_utc": start, "end_utc": sidecar.end_utc or start,
              "duration_s": sidecar.duration_s, "frame_count": sidecar.frame_count,
              "size_bytes": segment.size_bytes, "locked": int(segment.locked),
              "recovered": int(sidecar.recovered), "distance_m": None,
              "min_lat": None, "min_lon": None, "max_lat": None, "max_lon": None}
    if points:
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        values.update(distance_m=sum(distance_m(*a, *b) for a, b in zip(points, points[1:])),
                      min_lat=min(lats), min_lon=min(lons), max_lat=max(lats), max_lon=max(lons))
    return values


class TripsIndex:
    """Thread-safe access to the index; the recorder writes, `dashcam trips` reads."""

    def __init__(self, connection: sqlite3.Connection, folder: RecordingsFolder, trip_gap_s: float) -> None:
        self._db = connection
        self._folder = folder
        self._trip_gap_s = trip_gap_s
        self._mutex = threading.Lock()

    @classmethod
    def open(cls, folder: RecordingsFolder, trip_gap_s: float, writable: bool = True) -> TripsIndex:
        """Open, repair if needed, and reconcile with the files. Read-only opens never write the file."""
        if not writable:
            return cls._open_read_only(folder, trip_gap_s)
        try:
            index = cls(_open_file(folder.index_path), folder, trip_gap_s)
        except (sqlite3.Error, StorageError) as exc:
            log.warning("the trips index %s cannot be written (%s): keeping it in memory until the next start",
                        folder.index_path, exc)
            index = cls(_in_memory(), folder, trip_gap_s)
        index.reconcile()
        return index

    @classmethod
    def _open_read_only(cls, folder: RecordingsFolder, trip_gap_s: float) -> TripsIndex:
        """Another process owns the file (or the card is read-only): copy it into memory, or rebuild there."""
        try:
            _refuse_links(folder.index_path)
            connection = sqlite3.connect(f"{folder.index_path.as_uri()}?mode=ro", uri=True,
                                         check_same_thread=False, timeout=5.0)
            memory = _copy_to_memory(connection)
        except (sqlite3.Error, StorageError) as exc:
            log.info("reading the trips index %s failed (%s): indexing the sidecars in memory",
                     folder.index_path, exc)
            memory = _in_memory()
        index = cls(memory, folder, trip_gap_s)
        index.reconcile()  # in memory only: the file is the recorder's
        return index

    def close(self) -> None:
        with self._mutex:
            try:
                self._db.close()
            except sqlite3.Error as exc:
                log.warning("closing the trips index: %s", exc)

    def _write(self, what: str, change: Callable[[sqlite3.Connection], None]) -> None:
        """Run one write transaction. When the file refuses it (disk full, card error), the index moves to an
        in-memory copy for the rest of the run: never raised, logged once, and no longer competing with the
        footage for the space retention frees. The next start reconciles the file with the sidecars."""
        with self._mutex:
            try:
                with self._db:
                    change(self._db)
                return
            except sqlite3.Error as exc:
                log.warning("the trips index could not be updated (%s: %s); recording goes on, the index is kept "
                            "in memory and rebuilt from the sidecars on the next start", what, exc)
            self._db = _copy_to_memory(self._db)
            try:
                with self._db:
                    change(self._db)
            except sqlite3.Error as exc:
                log.warning("the in-memory trips index could not be updated either: %s", exc)

    # ---- writing --------------------------------------------------------------------------------------------

    def add(self, segment: StoredSegment, sidecar: Sidecar | None = None) -> None:
        """Insert or refresh one segment, joining the trip of the segment just before it if the gap is short."""
        values = segment_row_values(segment, sidecar if sidecar is not None else read_sidecar(segment.sidecar_path))

        def insert(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM segments WHERE name = ?", (segment.name,))
            values["trip_id"] = self._trip_for(db, values["start_utc"])
            columns = ", ".join(values)
            db.execute(f"INSERT INTO segments ({columns}) VALUES ({', '.join('?' * len(values))})",
                       tuple(values.values()))

        self._write(f"adding {segment.name}", insert)

    def _trip_for(self, db: sqlite3.Connection, start_utc: str) -> int:
        previous = db.execute("SELECT trip_id, end_utc FROM segments WHERE start_utc <= ? "
                              "ORDER BY start_utc DESC LIMIT 1", (start_utc,)).fetchone()
        if previous is not None and _gap_s(previous[1], start_utc) <= self._trip_gap_s:
            return int(previous[0])
        return int(db.execute("INSERT INTO trips DEFAULT VALUES").lastrowid or 0)  # set by every INSERT

    def remove(self, names: list[str]) -> None:
        def delete(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM segments WHERE name = ?", [(n,) for n in names])
            db.execute("DELETE FROM trips WHERE id NOT IN (SELECT trip_id FROM segments)")

        self._write(f"removing {len(names)} segments", delete)

    def reconcile(self) -> None:
        """Add segments the index lacks, drop rows whose files are gone, and fix locked flags."""
        on_disk = {s.name: s for s in self._folder.segments()}
        with self._mutex:
            known = dict(self._db.execute("SELECT name, locked FROM segments").fetchall())
        missing = [s for name, s in on_disk.items() if name not in known]
        gone = [name for name in known if name not in on_disk]
        relocked = [name for name, locked in known.items() if name in on_disk and bool(locked) != on_disk[name].locked]
        if gone:
            self.remove(gone)
        for segment in sorted(missing, key=lambda s: (s.start_utc, s.name)):
            self.add(segment)
        for name in relocked:
            self.add(on_disk[name])
        if missing or gone or relocked:
            log.info("trips index: %d segments added, %d removed, %d lock flags fixed",
                     len(missing), len(gone), len(relocked))

    # ---- reading --------------------------------------------------------------------------------------------

    def trips(self) -> list[TripRow]:
        with self._mutex:
            rows = self._db.execute("SELECT id, start_utc, end_utc, duration_s, distance_m, min_lat, min_lon, "
                                    "max_lat, max_lon, segment_count, locked_count FROM trip_summary "
                                    "ORDER BY start_utc").fetchall()
        return [TripRow(*row) for row in rows]

    def segments(self, trip_id: int | None = None, locked_only: bool = False) -> list[SegmentRow]:
        query, args = f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE 1", []
        if trip_id is not None:
            query, args = query + " AND trip_id = ?", [trip_id]
        if locked_only:
            query += " AND locked = 1"
        with self._mutex:
            rows = self._db.execute(query + " ORDER BY start_utc, name", args).fetchall()
        return [_segment_row(row) for row in rows]


def _segment_row(row: tuple) -> SegmentRow:
    (name, trip_id, start_utc, end_utc, duration_s, frame_count, size_bytes, distance,
     min_lat, min_lon, max_lat, max_lon, locked, recovered) = row
    return SegmentRow(name, trip_id, start_utc, end_utc, duration_s, frame_count, size_bytes, distance,
                      min_lat, min_lon, max_lat, max_lon, bool(locked), bool(recovered))


def _gap_s(end_utc: str, start_utc: str) -> float:
    try:
        return (parse_utc(start_utc) - parse_utc(end_utc)).total_seconds()
    except ValueError:
        return float("inf")


def _open_file(path: Path) -> sqlite3.Connection:
    """The index file, rebuilt when damaged (a torn write) or of another schema; sqlite3.Error when the disk
    refuses (full, read-only), which leaves the file as it is."""
    try:
        return _connect(path)
    except sqlite3.OperationalError:
        raise  # disk full, locked, I/O error: nothing says the file is damaged
    except sqlite3.DatabaseError as exc:
        log.warning("trips index %s is unreadable (%s): rebuilding it from the sidecars", path, exc)
    _remove_database(path)
    return _connect(path)


def _copy_to_memory(connection: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory copy of an index (reading works on a full disk); an empty one when even reading fails."""
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        connection.backup(memory)
        _check(memory)
    except sqlite3.Error as exc:
        log.warning("could not copy the trips index into memory (%s): starting an empty one", exc)
        memory.close()
        memory = _in_memory()
    try:
        connection.close()
    except sqlite3.Error as exc:
        log.debug("closing the trips index file: %s", exc)
    return memory


def _in_memory() -> sqlite3.Connection:
    return _create(sqlite3.connect(":memory:", check_same_thread=False))


def _database_files(path: Path) -> tuple[Path, Path, Path]:
    return path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _foreign_entries(path: Path) -> list[Path]:
    """Entries under the index's names that are not regular files (a planted symlink): SQLite would follow them."""
    return [name for name in _database_files(path) if os.path.lexists(name) and not is_regular_file(name)]


def _refuse_links(path: Path) -> None:
    foreign = _foreign_entries(path)
    if foreign:
        raise StorageError(f"{foreign[0]} is not a regular file (a symlink?): remove it")


def _remove_links(path: Path) -> None:
    """The recorder owns these names: a link planted there is removed (never its target) and the index rebuilt."""
    for name in _foreign_entries(path):
        log.warning("removing %s: not a regular file (a symlink?); the trips index is rebuilt", name)
        try:
            name.unlink()
        except OSError as exc:
            raise StorageError(f"cannot remove {name}: {exc.strerror or exc}") from None


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating with mode 0600: tracks are personal data) and check the schema version."""
    _remove_links(path)
    try:
        os.close(os.open(path, CREATE_FLAGS, FILE_MODE))
    except FileExistsError:
        pass  # an existing index (checked above to be a regular file) is opened below
    except OSError as exc:
        raise sqlite3.OperationalError(f"cannot create {path.name}: {exc.strerror}") from None
    connection = sqlite3.connect(path, check_same_thread=False, timeout=5.0)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut may lose the latest rows, never corrupt; the index is rebuildable.
        connection.execute("PRAGMA synchronous=NORMAL")
        if not connection.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone():
            return _create(connection)
        _check(connection)
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection


def _create(connection: sqlite3.Connection) -> sqlite3.Connection:
    with connection:
        connection.executescript(_SCHEMA)
        connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    return connection


def _check(connection: sqlite3.Connection) -> None:
    """Raise sqlite3.DatabaseError unless this is an intact index of our schema version."""
    (result,) = connection.execute("PRAGMA quick_check").fetchone()
    if result != "ok":
        raise sqlite3.DatabaseError(f"integrity check: {result}")
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or row[0] != str(SCHEMA_VERSION):
        raise sqlite3.DatabaseError(f"schema version {row[0] if row else 'missing'}, expected {SCHEMA_VERSION}")


def _remove_database(path: Path) -> None:
    for leftover in _database_files(path):
        try:
            leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot replace the damaged trips index {leftover}: {exc.strerror}") from None
