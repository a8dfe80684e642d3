"""GPS input: the `FixProvider` protocol that the pipeline reads positions through.

This package owns everything between a GNSS receiver and a `GpsFix`:
`nmea` turns NMEA 0183 lines into fixes (no I/O), `port` reads bounded lines from a
serial port, `reader` runs the serial reader thread, and `replay` plays an NMEA log
or follows gpsd. Every provider is polled, never waited on: `latest()` only takes a
lock, so a dead receiver can never stall capture.
"""
from __future__ import annotations

from typing import Protocol

from edge.types import GpsFix


class FixProvider(Protocol):
    """A background source of GPS fixes; all methods are safe to call from any thread."""

    def start(self) -> None:
        """Start the background thread; returns at once, even when the device is absent."""
        ...

    def stop(self) -> None:
        """Stop the background thread and close the device; returns within about a second."""
        ...

    def latest(self) -> GpsFix | None:
        """The newest fix if it is valid and not older than the staleness limit, else None."""
        ...

    def counters(self) -> dict[str, int]:
        """A snapshot of the event counters (lines, fixes, each rejection kind, reconnects)."""
        ...


__all__ = ["FixProvider"]
