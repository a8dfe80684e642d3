"""A one-line text progress indicator for long runs on stderr: `frame 120/360 (33%)` for the benchmark,
`[######..............] 120/360 inputs (33%), 2m10s left` for a batch.

It redraws at most a few times a second and stays silent when the stream is not a
terminal, so logs and CI output are not flooded. This is user interface for the CLI,
not logging: it never carries results.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


BAR_WIDTH = 20


def duration(seconds: float) -> str:
    """`1h02m03s`, or `2m03s` under an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    def __init__(self, total: int | None, *, unit: str = "frame", stream: TextIO | None = None,
                 min_interval_s: float = 0.25, clock: Callable[[], float] = time.monotonic, bar: bool = False) -> None:
        self._total, self._unit, self._bar = total, unit, bar
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._min_interval_s, self._clock = min_interval_s, clock
        self._started = clock()
        self._last_draw: float | None = None
        self._drawn = False

    def update(self, done: int) -> None:
        """Report `done` units finished; draws only if enough time passed or the run is complete."""
        if not self._enabled:
            return
        now = self._clock()
        finished = self._total is not None and done >= self._total
        if self._last_draw is not None and now - self._last_draw < self._min_interval_s and not finished:
            return
        self._last_draw = now
        self._stream.write("\r" + self.text(done))
        self._stream.flush()
        self._drawn = True

    def text(self, done: int) -> str:
        if not self._total:
            return f"{self._unit} {done}"
        if not self._bar:
            return f"{self._unit} {done}/{self._total} ({100 * done // self._total}%)"
        share = min(1.0, done / self._total)
        filled = int(round(share * BAR_WIDTH))
        elapsed = self._clock() - self._started
        left = f", {duration(elapsed / done * (self._total - done))} left" if 0 < done < self._total else ""
        return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self._total} {self._unit}s "
                f"({int(100 * share)}%){left}  ")

    def close(self) -> None:
        """End the line so the next output starts on its own."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
