"""Which `FixProvider` a run reads positions from, chosen from the `gps` config section.

`auto` replays the built-in sample's NMEA log when the source is the built-in sample, and
means no GPS otherwise. A recorded log replayed beside a recorded video follows the
video's own clock (`media_time_s`, the current frame's time in the file), so a replay
faster or slower than real time still puts each fix on the right frame.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge import SAMPLE_DIR
from edge.config import GpsConfig
from edge.errors import SourceError
from edge.gps import FixProvider
from edge.gps.reader import SerialGpsReader
from edge.gps.replay import GpsdClient, NmeaLogReplay
from edge.gps.synced import MediaSyncedReplay

SAMPLE_NMEA = SAMPLE_DIR / "drive.nmea"

MediaClock = Callable[[], float]  # seconds of the source's own timeline at the current frame


def location_provider(gps: GpsConfig, source_kind: str, media_clock: MediaClock | None) -> FixProvider | None:
    """The configured provider (not started), or None for no GPS; SourceError for a missing log."""
    kind = gps.source
    if kind == "auto":
        kind = "replay" if source_kind == "sample" else "none"
    if kind == "none":
        return None
    if kind == "serial":
        return SerialGpsReader(gps.port, gps.baud, stale_after_s=gps.stale_after_s)
    if kind == "gpsd":
        return GpsdClient(gps.gpsd_host, gps.gpsd_port, stale_after_s=gps.stale_after_s)
    log_path = Path(gps.log) if gps.log else SAMPLE_NMEA
    if not log_path.is_file():
        raise SourceError(f"NMEA log not found: {log_path} (gps.log)")
    if media_clock is not None:
        return MediaSyncedReplay(log_path, media_clock, stale_after_s=gps.stale_after_s)
    return NmeaLogReplay(log_path, realtime=True, stale_after_s=gps.stale_after_s)
