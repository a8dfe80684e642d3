"""Fix providers without a serial port: an NMEA log played back, and a gpsd client.

This module owns `NmeaLogReplay`, which feeds a recorded NMEA log through the same
parser as the serial reader, paced by the UTC times in its sentences, and
`GpsdClient`, which follows gpsd's JSON watch stream (TPV and SKY reports) over TCP
and reconnects with backoff. Both keep their state in a `FixStore`, so `latest()`
and `counters()` behave exactly like the serial reader's.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import socket
import threading
import time
from pathlib import Path
from typing import IO, Any

from edge.gps.nmea import MALFORMED, UNSUPPORTED_TYPE
from edge.gps.port import LineSplitter
from edge.gps.reader import (
    BACKOFF_INITIAL_S, BACKOFF_MAX_S, CONNECTION_KINDS, LINE_KINDS, STOP_JOIN_TIMEOUT_S,
    Backoff, Clock, FixStore, NmeaFeed,
)
from edge.types import GpsFix

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 4096
MAX_GAP_S = 2.0  # a gap in the log (receiver restart, tunnel) is replayed as at most this long
LOOP_PAUSE_S = 1.0
GPSD_WATCH = b'?WATCH={"enable":true,"json":true};\n'
GPSD_MAX_LINE = 65536  # SKY reports with many satellites run to several kilobytes
_SECONDS_PER_DAY = 86400.0


def _start_thread(target: Any, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def _join(thread: threading.Thread | None, what: str) -> None:
    if thread is None:
        return
    thread.join(STOP_JOIN_TIMEOUT_S)
    if thread.is_alive():
        log.warning("%s did not stop within %.1f s", what, STOP_JOIN_TIMEOUT_S)


def _seconds_between(earlier: dt.time, later: dt.time) -> float:
    """Signed seconds from one time of day to the next, assuming they are less than 12 h apart."""
    def seconds(t: dt.time) -> float:
        return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
    delta = seconds(later) - seconds(earlier)
    if delta < -_SECONDS_PER_DAY / 2:
        delta += _SECONDS_PER_DAY  # across midnight
    elif delta > _SECONDS_PER_DAY / 2:
        delta -= _SECONDS_PER_DAY
    return delta


class _Pacer:
    """Holds each new epoch (a new UTC time in the log) back until its time has come."""

    def __init__(self, stop: threading.Event, max_gap_s: float) -> None:
        self._stop = stop
        self._max_gap_s = max_gap_s
        self._epoch: dt.time | None = None
        self._due = 0.0  # time.monotonic() at which the current epoch is released

    def reset(self) -> None:
        self._epoch = None

    def wait_for(self, epoch: dt.time) -> None:
        now = time.monotonic()
        if self._epoch is None:
            self._epoch, self._due = epoch, now
            return
        if epoch == self._epoch:
            return
        delta = _seconds_between(self._epoch, epoch)
        self._epoch = epoch
        if delta <= 0:
            return  # time went backwards (a concatenated log): no reason to wait
        # Keep a schedule rather than sleeping each delta, so parsing time does not add up;
        # but never run ahead to catch up after a stall.
        self._due = max(self._due + min(delta, self._max_gap_s), now)
        self._stop.wait(self._due - now)


class NmeaLogReplay:
    """FixProvider that plays an NMEA log file, at the speed it was recorded or as fast as possible."""

    def __init__(self, path: Path, realtime: bool = True, loop: bool = False, stale_after_s: float = 2.0,
                 clock: Clock = time.monotonic_ns, *, max_gap_s: float = MAX_GAP_S) -> None:
        self._path = Path(path)
        self._realtime = realtime
        self._loop = loop
        self._store = FixStore(LINE_KINDS, stale_after_s, clock)
        self._feed = NmeaFeed(self._store)
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._pacer = _Pacer(self._stop, max_gap_s)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the log (raising OSError now if it cannot be read) and start playing it."""
        if self._thread is not None and self._thread.is_alive():
            return
        handle = self._path.open("rb")
        self._stop.clear()
        self._finished.clear()
        self._thread = _start_thread(lambda: self._run(handle), f"gps-replay:{self._path.name}")

    def stop(self) -> None:
        self._stop.set()
        _join(self._thread, "NMEA log replay")

    def latest(self) -> GpsFix | None:
        return self._store.latest()

    def counters(self) -> dict[str, int]:
        return self._store.counters()

    def wait_finished(self, timeout_s: float | None = None) -> bool:
        """Block until the log has been played to its end (never, with loop=True) or stopped."""
        return self._finished.wait(timeout_s)

    def _run(self, handle: IO[bytes]) -> None:
        try:
            with handle:
                self._play(handle)
                while self._loop and not self._stop.is_set():
                    handle.seek(0)
                    self._pacer.reset()
                    if self._realtime:
                        self._stop.wait(LOOP_PAUSE_S)
                    self._play(handle)
        except OSError as exc:
            log.warning("NMEA log %s could not be read: %s", self._path, exc)
        finally:
            self._finished.set()

    def _play(self, handle: IO[bytes]) -> None:
        splitter = LineSplitter()
        while not self._stop.is_set():
            chunk = handle.read(READ_CHUNK_BYTES)
            if not chunk:
                return
            for raw in splitter.feed(chunk):
                sentence, _ = self._feed.accept(raw)
                if sentence is None:
                    continue
                if self._realtime and sentence.time_utc is not None:
                    self._pacer.wait_for(sentence.time_utc)
                if self._stop.is_set():
                    return
                self._feed.apply(sentence)


def _number(report: dict[str, Any], key: str) -> float | None:
    """A finite number from a gpsd report, None when absent; ValueError when it is not a number."""
    value = report.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"gpsd field {key} is not a finite number: {value!r}")
    return float(value)


def _iso_utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"gpsd time is not a string: {value!r}")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"gpsd time without a zone: {value!r}")
    return parsed.astimezone(dt.timezone.utc)


def tpv_to_fix(report: dict[str, Any], t_mono_ns: int, satellites: int | None = None,
               hdop: float | None = None) -> GpsFix:
    """A gpsd TPV report as a fix: mode 2 (2D) or 3 (3D) with lat and lon is valid.

    Altitude prefers mean sea level (altMSL, or the older alt) like NMEA GGA, and falls
    back to the ellipsoid height altHAE. Raises ValueError for a report with bad fields.
    """
    mode = report.get("mode", 0)
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise ValueError(f"gpsd mode is not an integer: {mode!r}")
    lat, lon = _number(report, "lat"), _number(report, "lon")
    has_position = lat is not None and lon is not None and abs(lat) <= 90.0 and abs(lon) <= 180.0
    altitudes = (_number(report, key) for key in ("altMSL", "alt", "altHAE"))
    altitude = next((value for value in altitudes if value is not None), None)
    return GpsFix(
        t_utc=_iso_utc(report.get("time")),
        lat=lat if has_position and lat is not None else math.nan,
        lon=lon if has_position and lon is not None else math.nan,
        valid=mode >= 2 and has_position,
        t_mono_ns=t_mono_ns,
        speed_mps=_number(report, "speed"),
        course_deg=_number(report, "track"),
        altitude_m=altitude,
        fix_quality=None,  # gpsd's status codes do not map onto NMEA GGA quality
        satellites=satellites,
        hdop=hdop,
    )


def sky_summary(report: dict[str, Any]) -> tuple[int | None, float | None]:
    """Satellites used and HDOP from a gpsd SKY report (uSat, or counted from the list)."""
    used = report.get("uSat")
    if used is None and isinstance(report.get("satellites"), list):
        used = sum(1 for sat in report["satellites"] if isinstance(sat, dict) and sat.get("used") is True)
    if used is not None and (isinstance(used, bool) or not isinstance(used, int)):
        raise ValueError(f"gpsd uSat is not an integer: {used!r}")
    return used, _number(report, "hdop")


class GpsdClient:
    """FixProvider that follows a gpsd daemon's JSON stream; reconnects with backoff forever."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2947, stale_after_s: float = 2.0,
                 clock: Clock = time.monotonic_ns, *, connect_timeout_s: float = 1.0,
                 read_timeout_s: float = 0.2, backoff_initial_s: float = BACKOFF_INITIAL_S,
                 backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self._address = (host, port)
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._store = FixStore(LINE_KINDS + CONNECTION_KINDS, stale_after_s, clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._satellites: int | None = None
        self._hdop: float | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = _start_thread(self._run, f"gpsd:{self._address[0]}:{self._address[1]}")

    def stop(self) -> None:
        self._stop.set()
        _join(self._thread, "gpsd client")

    def latest(self) -> GpsFix | None:
        return self._store.latest()

    def counters(self) -> dict[str, int]:
        return self._store.counters()

    def _run(self) -> None:
        interrupted = False
        while not self._stop.is_set():
            sock = self._connect(warn=not interrupted)
            if sock is not None:
                if interrupted:
                    self._store.count("reconnects")
                    log.info("gpsd at %s:%s reconnected", *self._address)
                with sock:
                    if self._session(sock):
                        self._backoff.reset()
            interrupted = True
            self._stop.wait(self._backoff.next_delay())

    def _connect(self, warn: bool) -> socket.socket | None:
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout_s)
        except OSError as exc:
            self._store.count("open_failures")
            log.log(logging.WARNING if warn else logging.DEBUG,
                    "gpsd at %s:%s unreachable (%s); retrying with backoff", *self._address, exc)
            return None
        sock.settimeout(self._read_timeout_s)
        return sock

    def _session(self, sock: socket.socket) -> bool:
        """Watch until stop() or a connection error; True when any data arrived."""
        splitter = LineSplitter(GPSD_MAX_LINE)
        received = False
        try:
            sock.sendall(GPSD_WATCH)
            while not self._stop.is_set():
                try:
                    data = sock.recv(READ_CHUNK_BYTES)
                except TimeoutError:
                    continue
                if not data:
                    raise ConnectionResetError("gpsd closed the connection")
                received = True
                for raw in splitter.feed(data):
                    self._store.count("lines")
                    if raw.error is not None:
                        self._store.count(raw.error)
                    else:
                        self._handle(raw.text or "")
        except OSError as exc:
            self._store.count("disconnects")
            log.warning("gpsd at %s:%s connection lost (%s); reconnecting", *self._address, exc)
        return received

    def _handle(self, text: str) -> None:
        try:
            report = json.loads(text)
        except json.JSONDecodeError:
            self._store.count(MALFORMED)
            return
        kind = report.get("class") if isinstance(report, dict) else None
        try:
            if kind == "TPV":
                self._store.publish(tpv_to_fix(report, self._store.now_ns(), self._satellites, self._hdop))
            elif kind == "SKY":
                self._take_sky(report)
            else:
                self._store.count(UNSUPPORTED_TYPE if kind is not None else MALFORMED)
        except ValueError as exc:
            self._store.count(MALFORMED)
            log.debug("bad gpsd %s report: %s", kind, exc)

    def _take_sky(self, report: dict[str, Any]) -> None:
        # Newer gpsd sends partial SKY reports; keep what an earlier one said.
        satellites, hdop = sky_summary(report)
        if satellites is not None:
            self._satellites = satellites
        if hdop is not None:
            self._hdop = hdop
