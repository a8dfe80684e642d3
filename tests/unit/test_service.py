"""sd_notify over a real AF_UNIX datagram socket, and the watchdog's rate limit."""
from __future__ import annotations

import socket
from pathlib import Path

from conftest import drain_datagrams
from edge.service import Watchdog, notify


def test_notify_sends_a_datagram_to_notify_socket(tmp_path: Path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        assert notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert server.recv(256) == b"READY=1"


def test_notify_abstract_socket():
    name = f"dashcam-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert server.recv(256) == b"WATCHDOG=1"


def test_notify_is_a_no_op_outside_systemd(tmp_path: Path):
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})


def test_watchdog_pings_at_most_once_per_interval(tmp_path: Path):
    path = tmp_path / "notify"
    now = [0.0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        dog = Watchdog(interval_s=5.0, send=lambda s: notify(s, {"NOTIFY_SOCKET": str(path)}),
                       clock=lambda: now[0])
        for _ in range(30):  # 30 frames over 14.5 s
            dog.frame_stored()
            now[0] += 0.5
        received = drain_datagrams(server)
    assert received == [b"WATCHDOG=1"] * 3 and dog.pings == 3  # t = 0, 5, 10
