"""Baud-rate probing for `dashcam doctor`: which speed gives readable NMEA, and how soon.

This module owns the probing logic only. `probe_baud` listens at one speed for a few
seconds and counts sentences with a correct checksum (proof that the line speed is
right) against unreadable lines; `detect_baud` tries the configured speed first, then
the usual receiver speeds, and stops at the first that proves itself. The listener is
passed in, so the search order and verdicts are testable without a serial port.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge.gps.nmea import BINARY, OVERLONG, UNKNOWN_TALKER, UNSUPPORTED_TYPE, FixAssembler, classify_and_parse
from edge.gps.port import LineSplitter, open_port, read_available
from edge.types import GpsFix

COMMON_BAUDS = (4800, 9600, 38400, 115200)
# A checksum-correct sentence proves the speed; these kinds all had one.
_PROVEN = (None, UNKNOWN_TALKER, UNSUPPORTED_TYPE)
MIN_VALID_SENTENCES = 3


@dataclass
class BaudProbe:
    """What one listening period at one speed produced."""

    baud: int
    valid: int = 0
    garbage: int = 0
    first_valid_s: float | None = None
    fix: GpsFix | None = None

    @property
    def proven(self) -> bool:
        return self.valid >= MIN_VALID_SENTENCES


Listener = Callable[[int], BaudProbe]


def search_order(configured: int, candidates: Iterable[int] = COMMON_BAUDS) -> list[int]:
    """The configured speed first, then the other candidates, without repeats."""
    return [configured] + [b for b in candidates if b != configured]


def detect_baud(configured: int, listen: Listener, candidates: Iterable[int] = COMMON_BAUDS) -> list[BaudProbe]:
    """Probe speeds in order until one proves itself; returns every probe made (the last may be proven)."""
    probes = []
    for baud in search_order(configured, candidates):
        probe = listen(baud)
        probes.append(probe)
        if probe.proven:
            break
    return probes


def count_lines(probe: BaudProbe, lines: Iterable[str | None], elapsed_s: float,
                assembler: FixAssembler) -> None:
    """Classify decoded lines (None = undecodable) into the probe; keeps the newest valid fix."""
    for text in lines:
        if text is None:
            probe.garbage += 1
            continue
        sentence, kind = classify_and_parse(text)
        if kind in (BINARY, OVERLONG):
            probe.garbage += 1
        elif kind in _PROVEN:
            probe.valid += 1
            if probe.first_valid_s is None:
                probe.first_valid_s = elapsed_s
        if sentence is not None:
            fix = assembler.update(sentence, time.monotonic_ns())
            if fix is not None and fix.valid:
                probe.fix = fix


def serial_listener(url: str, seconds: float) -> Listener:
    """A listener on a real port; raises OSError (SerialException) when the port cannot be opened."""

    def listen(baud: int) -> BaudProbe:
        probe = BaudProbe(baud)
        assembler = FixAssembler()
        splitter = LineSplitter()
        port = open_port(url, baud)
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < seconds:
                raw = splitter.feed(read_available(port))
                count_lines(probe, [line.text for line in raw], elapsed, assembler)
                if probe.proven and probe.fix is not None:
                    break  # no need to wait out the period
        finally:
            port.close()
        return probe

    return listen


def fix_utc(fix: GpsFix) -> dt.datetime | None:
    """The fix's time as an aware UTC datetime (NMEA times are UTC)."""
    if fix.t_utc is None:
        return None
    return fix.t_utc if fix.t_utc.tzinfo else fix.t_utc.replace(tzinfo=dt.timezone.utc)
