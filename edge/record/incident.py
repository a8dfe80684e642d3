"""Incident locks: a request (button, SIGUSR1, `dashcam lock`) becomes a window of monotonic time.

The window is [request - lock_before_s, request + lock_after_s]; every segment whose frames
overlap it is locked. A window no stored frame falls in (zero seconds before and after, or
frames dropped around the request) still locks the segment of the first frame after it.
Requests arrive from signal handlers and other threads, so they go
through a `queue.SimpleQueue` (its `put` is safe even inside a signal handler that
interrupted the same thread); the recorder's own thread turns them into windows.
"""
from __future__ import annotations

import datetime as dt
import queue
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class LockWindow:
    from_mono_ns: int
    until_mono_ns: int
    requested_utc: dt.datetime

    def overlaps(self, start_mono_ns: int, end_mono_ns: int) -> bool:
        return start_mono_ns <= self.until_mono_ns and end_mono_ns >= self.from_mono_ns


class LockRequests:
    """Inbox of lock requests plus the windows still open."""

    def __init__(self, before_s: float, after_s: float) -> None:
        self._before_ns = int(before_s * 1e9)
        self._after_ns = int(after_s * 1e9)
        self._inbox: queue.SimpleQueue[tuple[int, dt.datetime]] = queue.SimpleQueue()
        self.windows: list[LockWindow] = []
        self._met: set[LockWindow] = set()  # windows that have locked at least one segment

    def request(self, t_mono_ns: int | None = None) -> None:
        """Thread- and signal-safe: no locks taken, no logging, no I/O."""
        self._inbox.put((time.monotonic_ns() if t_mono_ns is None else t_mono_ns, dt.datetime.now(dt.timezone.utc)))

    def take_new(self) -> list[LockWindow]:
        """Windows for the requests that arrived since the last call (recorder thread only)."""
        new = []
        while True:
            try:
                t_mono_ns, t_utc = self._inbox.get_nowait()
            except queue.Empty:
                break
            new.append(LockWindow(t_mono_ns - self._before_ns, t_mono_ns + self._after_ns, t_utc))
        self.windows.extend(new)
        return new

    def covering(self, start_mono_ns: int, end_mono_ns: int) -> LockWindow | None:
        window = next((w for w in self.windows if w.overlaps(start_mono_ns, end_mono_ns)), None)
        if window is not None:
            self._met.add(window)
        return window

    def mark_met(self, window: LockWindow) -> None:
        self._met.add(window)

    def expire(self, now_mono_ns: int) -> list[LockWindow]:
        """Forget windows that ended before `now_mono_ns` (no later frame can fall in them); returns those
        that locked nothing, so the caller locks the segment of the frame at `now_mono_ns` for them."""
        expired = [w for w in self.windows if w.until_mono_ns < now_mono_ns]
        self.windows = [w for w in self.windows if w.until_mono_ns >= now_mono_ns]
        unmet = [w for w in expired if w not in self._met]
        self._met.difference_update(expired)
        return unmet
