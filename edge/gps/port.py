"""Serial port access and bounded line splitting for GPS receivers.

This module owns the only pyserial calls: opening a port by URL with
`serial.serial_for_url` (device paths such as /dev/ttyACM0, udev symlinks, ptys,
`loop://`, `socket://`), reading whatever has arrived, and `LineSplitter`, which turns
raw bytes into ASCII lines while holding at most one maximum-length line in memory:
a receiver at the wrong baud rate or a broken stream never grows the buffer.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import TypeAlias

import serial

from edge.gps.nmea import BINARY, MAX_LINE_CHARS, OVERLONG

DEFAULT_READ_TIMEOUT_S = 0.2
READ_CHUNK_BYTES = 4096

# What the rest of edge.gps may hold without importing pyserial. serial.SerialException
# is an OSError subclass, so callers catch OSError for every device failure.
SerialPort: TypeAlias = serial.SerialBase


@dataclass(frozen=True)
class RawLine:
    """One line without its line ending: `text` when it decoded as ASCII, else `error`."""

    text: str | None
    error: str | None = None


class LineSplitter:
    """Splits a byte stream at LF; a line longer than `max_line` bytes is dropped and reported once.

    The over-long line is discarded chunk by chunk up to its newline, so a 10 MB line
    without a newline costs no more memory than a normal one.
    """

    def __init__(self, max_line: int = MAX_LINE_CHARS) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be positive, got {max_line}")
        self._max_line = max_line
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line that was already reported

    @property
    def buffered(self) -> int:
        """Bytes held for the unfinished line (at most `max_line`)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[RawLine]:
        """Take the next bytes; returns the lines they completed, in order."""
        lines: list[RawLine] = []
        view = memoryview(data)  # slicing a memoryview copies nothing
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._hold(view[start:], lines)
                return lines
            self._finish(view[start:end], lines)
            start = end + 1

    def _hold(self, piece: memoryview, lines: list[RawLine]) -> None:
        if self._discarding or not piece:
            return
        if len(self._buffer) + len(piece) > self._max_line:
            self._buffer.clear()
            self._discarding = True
            lines.append(RawLine(None, OVERLONG))
            return
        self._buffer += piece

    def _finish(self, piece: memoryview, lines: list[RawLine]) -> None:
        if self._discarding:
            self._discarding = False  # the over-long line ends here; it was counted when it overflowed
            return
        if len(self._buffer) + len(piece) > self._max_line:
            self._buffer.clear()
            lines.append(RawLine(None, OVERLONG))
            return
        self._buffer += piece
        raw = bytes(self._buffer).rstrip(b"\r")
        self._buffer.clear()
        if not raw:
            return  # blank lines carry nothing and are not errors
        try:
            lines.append(RawLine(raw.decode("ascii")))
        except UnicodeDecodeError:
            lines.append(RawLine(None, BINARY))


def open_port(url: str, baud: int, timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> SerialPort:
    """Open a serial port by path or pyserial URL.

    Raises serial.SerialException (an OSError) when the device cannot be opened, and
    ValueError for settings that can never work (an unknown URL scheme, a bad baud rate).
    """
    return serial.serial_for_url(url, baudrate=baud, timeout=timeout_s)


def read_available(port: SerialPort, limit: int = READ_CHUNK_BYTES) -> bytes:
    """Wait up to the port timeout for data, then return what has arrived (at most `limit` bytes).

    A vanished device raises serial.SerialException (read) or a plain OSError (EIO from
    the in_waiting ioctl); callers catch both.
    """
    waiting = port.in_waiting
    return port.read(min(max(waiting, 1), limit))
