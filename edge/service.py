"""systemd integration without a dependency: `sd_notify` datagrams and a rate-limited watchdog.

This module owns talking to the service manager. With Type=notify the unit is "started"
only after READY=1, and with WatchdogSec systemd restarts the recorder when WATCHDOG=1
stops arriving; `Watchdog.frame_stored` is called after every stored frame and pings at
most once per interval, so a wedged camera or encoder (no frames stored) gets the
service restarted. Outside systemd ($NOTIFY_SOCKET unset) every call does nothing.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PING_INTERVAL_S = 5.0  # WatchdogSec=30 in the unit: several pings per period


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send one state string (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...); False when not under systemd."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("cannot notify systemd (%s): %s", state.split("=")[0], exc)
        return False
    return True


class Watchdog:
    """Turns a per-frame callback into WATCHDOG=1 pings, at most one per `interval_s`."""

    def __init__(self, interval_s: float = PING_INTERVAL_S, send: Callable[[str], bool] = notify,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._send = send
        self._clock = clock
        self._last: float | None = None
        self.pings = 0

    def frame_stored(self) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval_s:
            return
        self._last = now
        if self._send("WATCHDOG=1"):
            self.pings += 1


class CamerasWatchdog:
    """One watchdog for several cameras: it is fed only once every camera has stored a frame since the last
    feed, so one wedged camera among working ones still gets the service restarted."""

    def __init__(self, names: list[str], watchdog: Watchdog | None = None) -> None:
        self._names = set(names)
        self._watchdog = watchdog or Watchdog()
        self._since_feed: set[str] = set()
        self._lock = threading.Lock()

    def stored_by(self, name: str) -> Callable[[], None]:
        """The per-frame callback of camera `name`."""
        def frame_stored() -> None:
            with self._lock:
                self._since_feed.add(name)
                if self._since_feed < self._names:
                    return
                self._since_feed.clear()
            self._watchdog.frame_stored()
        return frame_stored
