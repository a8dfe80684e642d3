"""The serial GPS reader thread, and the pieces every fix provider shares.

This module owns `SerialGpsReader`: a daemon thread that opens a serial port, feeds
its lines through `edge.gps.nmea`, keeps the latest fix under a lock, and reopens the
port with exponential backoff when the receiver is unplugged. `FixStore` (latest fix,
staleness, counters) and `NmeaFeed` (lines to counted sentences to fixes) are shared
with `edge.gps.replay`. `describe_fix` formats a fix for the terminal.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from edge.gps.nmea import (
    BINARY, OVERLONG, REJECT_KINDS, UNKNOWN_TALKER, UNSUPPORTED_TYPE,
    FixAssembler, Sentence, classify_and_parse,
)
from edge.gps.port import DEFAULT_READ_TIMEOUT_S, LineSplitter, RawLine, SerialPort, open_port, read_available
from edge.types import GpsFix

log = logging.getLogger(__name__)

Clock = Callable[[], int]  # monotonic nanoseconds

BACKOFF_INITIAL_S = 0.25
BACKOFF_MAX_S = 5.0
STOP_JOIN_TIMEOUT_S = 2.0
# A wrong baud rate turns every byte into noise: a run of unreadable lines this long says so.
BAUD_SUSPECT_STREAK = 20

LINE_KINDS = ("lines", "fixes", "no_fix") + REJECT_KINDS
CONNECTION_KINDS = ("disconnects", "open_failures", "reconnects")
SERIAL_COUNTER_KINDS = LINE_KINDS + CONNECTION_KINDS + ("baud_suspect",)


class FixStore:
    """The newest fix and the counters, written by one worker thread and read by any thread."""

    def __init__(self, kinds: Iterable[str], stale_after_s: float, clock: Clock) -> None:
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be positive, got {stale_after_s}")
        self._lock = threading.Lock()
        self._counts = {kind: 0 for kind in kinds}
        self._fix: GpsFix | None = None
        self._stale_after_ns = int(stale_after_s * 1e9)
        self._clock = clock

    def now_ns(self) -> int:
        return self._clock()

    def count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + n

    def publish(self, fix: GpsFix) -> None:
        with self._lock:
            self._fix = fix
            kind = "fixes" if fix.valid else "no_fix"
            self._counts[kind] = self._counts.get(kind, 0) + 1

    def latest(self) -> GpsFix | None:
        """The newest fix if it is valid and younger than the staleness limit."""
        with self._lock:
            fix = self._fix
        if fix is None or not fix.valid:
            return None
        if self._clock() - fix.t_mono_ns > self._stale_after_ns:
            return None
        return fix

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class NmeaFeed:
    """Lines in, fixes out: counts every line and rejection, assembles and publishes fixes."""

    def __init__(self, store: FixStore) -> None:
        self._store = store
        self._assembler = FixAssembler()

    def accept(self, raw: RawLine) -> tuple[Sentence | None, str | None]:
        """Classify one line; returns (sentence, None) or (None, rejection kind), both counted."""
        self._store.count("lines")
        if raw.error is not None:
            self._store.count(raw.error)
            return None, raw.error
        sentence, kind = classify_and_parse(raw.text or "")
        if kind is not None:
            self._store.count(kind)
            # DEBUG only: the line may hold coordinates.
            log.debug("rejected NMEA line (%s): %r", kind, raw.text)
        return sentence, kind

    def apply(self, sentence: Sentence) -> GpsFix | None:
        fix = self._assembler.update(sentence, self._store.now_ns())
        if fix is not None:
            self._store.publish(fix)
        return fix

    def handle(self, raw: RawLine) -> str | None:
        """accept() then apply(); returns the rejection kind or None."""
        sentence, kind = self.accept(raw)
        if sentence is not None:
            self.apply(sentence)
        return kind


class Backoff:
    """Exponential reconnect delay: initial, doubling, capped; reset after a healthy session."""

    def __init__(self, initial_s: float = BACKOFF_INITIAL_S, maximum_s: float = BACKOFF_MAX_S) -> None:
        self._initial_s = initial_s
        self._maximum_s = maximum_s
        self._next_s = initial_s

    def next_delay(self) -> float:
        delay = self._next_s
        self._next_s = min(self._next_s * 2.0, self._maximum_s)
        return delay

    def reset(self) -> None:
        self._next_s = self._initial_s


class SerialGpsReader:
    """FixProvider for an NMEA receiver on a serial port (USB /dev/ttyACM0, UART, pty, udev link).

    Never blocks the caller: the port lives in a daemon thread, `latest()` only takes a
    lock. When the device vanishes it is reopened forever, with backoff, until stop().
    """

    def __init__(self, url: str, baud: int, stale_after_s: float = 2.0, clock: Clock = time.monotonic_ns,
                 *, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
                 backoff_initial_s: float = BACKOFF_INITIAL_S, backoff_max_s: float = BACKOFF_MAX_S) -> None:
        if baud <= 0:
            raise ValueError(f"baud must be positive, got {baud}")
        self._url = url
        self._baud = baud
        self._read_timeout_s = read_timeout_s
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._store = FixStore(SERIAL_COUNTER_KINDS, stale_after_s, clock)
        self._feed = NmeaFeed(self._store)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._garbage_streak = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"gps-serial:{self._url}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("GPS reader for %s did not stop within %.1f s", self._url, STOP_JOIN_TIMEOUT_S)

    def latest(self) -> GpsFix | None:
        return self._store.latest()

    def counters(self) -> dict[str, int]:
        return self._store.counters()

    def _run(self) -> None:
        interrupted = False  # an open failed or a session ended in an error: the next open is a reconnect
        while not self._stop.is_set():
            try:
                port = self._open(warn=not interrupted)
            except ValueError as exc:
                # Bad settings never start working: say so once and end, rather than retry forever.
                self._store.count("open_failures")
                log.error("GPS port %s cannot be used with baud %d: %s", self._url, self._baud, exc)
                return
            if port is not None:
                if interrupted:
                    self._store.count("reconnects")
                    log.info("GPS port %s reopened", self._url)
                healthy = self._pump(port)
                self._close(port)
                if healthy:
                    self._backoff.reset()
            interrupted = True
            self._stop.wait(self._backoff.next_delay())

    def _open(self, warn: bool) -> SerialPort | None:
        try:
            return open_port(self._url, self._baud, self._read_timeout_s)
        except OSError as exc:  # serial.SerialException included
            self._store.count("open_failures")
            # Warn once per outage; the retries every few seconds would flood the log.
            log.log(logging.WARNING if warn else logging.DEBUG,
                    "GPS port %s cannot be opened (%s); retrying with backoff", self._url, exc)
            return None

    def _pump(self, port: SerialPort) -> bool:
        """Read until stop() or a device error; True when the session delivered any data."""
        splitter = LineSplitter()  # a fresh one: a partial line from the old session is meaningless
        received = False
        while not self._stop.is_set():
            try:
                data = read_available(port)
            except OSError as exc:  # SerialException from read(), plain EIO from the in_waiting ioctl
                self._store.count("disconnects")
                log.warning("GPS port %s failed while reading (%s); reopening", self._url, exc)
                return received
            received = received or bool(data)
            for raw in splitter.feed(data):
                self._watch_baud(self._feed.handle(raw))
        return received

    def _watch_baud(self, kind: str | None) -> None:
        if kind in (BINARY, OVERLONG):
            self._garbage_streak += 1
            if self._garbage_streak == BAUD_SUSPECT_STREAK:
                self._store.count("baud_suspect")
                log.warning("GPS port %s: %d unreadable lines in a row; check the baud rate (set to %d)",
                            self._url, BAUD_SUSPECT_STREAK, self._baud)
        elif kind in (None, UNKNOWN_TALKER, UNSUPPORTED_TYPE):
            self._garbage_streak = 0  # a correct checksum proves the line speed is right
        # malformed and checksum kinds neither prove nor disprove the baud rate.

    def _close(self, port: SerialPort) -> None:
        try:
            port.close()
        except OSError as exc:
            log.debug("closing GPS port %s failed: %s", self._url, exc)


def describe_fix(fix: GpsFix | None) -> str:
    """One terminal line: UTC time, position (6 decimals), speed km/h, satellites, HDOP, quality."""
    if fix is None:
        return "no fix"
    when = fix.t_utc.strftime("%Y-%m-%d %H:%M:%S UTC") if fix.t_utc is not None else "time unknown"
    where = f"lat {fix.lat:.6f} lon {fix.lon:.6f}" if fix.valid else "no fix"
    speed = f"{fix.speed_mps * 3.6:.1f} km/h" if fix.speed_mps is not None else "- km/h"
    sats = f"sats {fix.satellites}" if fix.satellites is not None else "sats -"
    hdop = f"hdop {fix.hdop:.1f}" if fix.hdop is not None else "hdop -"
    quality = f"quality {fix.fix_quality}" if fix.fix_quality is not None else "quality -"
    return "  ".join((when, where, speed, sats, hdop, quality))
