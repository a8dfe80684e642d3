"""An NMEA log replayed on a video's own clock, so positions line up with frames.

With a recorded clip and its GPS log (the built-in sample, or a file being
re-processed), the fix for a frame is the log's fix at the same offset from the log's
first timed sentence, however fast the pipeline runs. Real-speed replay on the wall
clock (`NmeaLogReplay`) would drift ahead whenever processing is slower than real time.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import time
from pathlib import Path
from collections.abc import Callable

from edge.errors import SourceError
from edge.gps.nmea import FixAssembler, classify_and_parse
from edge.types import GpsFix


def load_fixes(path: Path) -> tuple[list[GpsFix], dict[str, int]]:
    """Every fix the log yields, in order, and the count of each kind of rejected line."""
    try:
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read NMEA log {path}: {exc.strerror}") from None
    assembler, fixes = FixAssembler(), []
    rejected: collections.Counter[str] = collections.Counter()
    for line in lines:
        sentence, kind = classify_and_parse(line)
        if sentence is None:
            rejected[kind or "unknown"] += 1
            continue
        fix = assembler.update(sentence, 0)
        if fix is not None and fix.t_utc is not None:
            fixes.append(fix)
    return fixes, dict(rejected)


class MediaSyncedReplay:
    """FixProvider whose clock is `media_time_s()`, the current frame's time in the video."""

    def __init__(self, path: Path, media_time_s: Callable[[], float], stale_after_s: float = 2.0) -> None:
        fixes, self._rejected = load_fixes(path)
        if not fixes:
            raise SourceError(f"NMEA log {path} contains no timed RMC or GGA sentence")
        stamps = [fix.t_utc for fix in fixes if fix.t_utc is not None]  # load_fixes keeps timed fixes only
        self._offsets = [(stamp - stamps[0]).total_seconds() for stamp in stamps]
        self._fixes = fixes
        self._media_time_s = media_time_s
        self._stale_after_s = stale_after_s

    def start(self) -> None:
        """Nothing to start: the log was read when this was made."""

    def stop(self) -> None:
        """Nothing to stop."""

    def latest(self) -> GpsFix | None:
        now_s = self._media_time_s()
        index = bisect.bisect_right(self._offsets, now_s) - 1
        if index < 0 or now_s - self._offsets[index] > self._stale_after_s:
            return None
        fix = self._fixes[index]
        if not fix.valid:
            return None
        # Received "now", as far as staleness and the GPS timebase are concerned.
        return dataclasses.replace(fix, t_mono_ns=time.monotonic_ns())

    def counters(self) -> dict[str, int]:
        return {"fixes": len(self._fixes), **self._rejected}
