"""`dashcam run` under a fake systemd: READY=1 at start, WATCHDOG=1 from stored frames."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from conftest import drain_datagrams


def test_run_notifies_ready_and_watchdog(tmp_path: Path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        done = subprocess.run([sys.executable, "-m", "edge", "run", "--fast", "--max-frames", "6",
                               "--recordings", str(tmp_path / "rec")],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        received = drain_datagrams(server)
    assert received[0] == b"READY=1"
    assert b"WATCHDOG=1" in received[1:]
