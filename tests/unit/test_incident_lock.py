"""Lock requests, the recorder lease behind `dashcam lock`, and the GPIO button loop (with a fake line)."""
from __future__ import annotations

import datetime as dt
import importlib.util
import os
import signal
import threading

import pytest

from edge.errors import ConfigError, StorageError
from edge.record.button import GpioLockButton, parse_line
from edge.record.incident import LockRequests
from edge.record.lease import RecorderLease, running_recorder, signal_lock
from edge.record.store import RecordingsFolder

S = 1_000_000_000


def test_a_request_becomes_a_window_around_it():
    locks = LockRequests(before_s=30, after_s=10)
    locks.request(t_mono_ns=100 * S)
    (window,) = locks.take_new()
    assert (window.from_mono_ns, window.until_mono_ns) == (70 * S, 110 * S)
    assert locks.covering(60 * S, 71 * S) is window  # a segment ending inside the window
    assert locks.covering(109 * S, 200 * S) is window  # a segment starting inside it
    assert locks.covering(0, 69 * S) is None and locks.covering(111 * S, 120 * S) is None
    assert locks.take_new() == []
    locks.expire(110 * S)
    assert locks.windows == [window]
    locks.expire(111 * S)
    assert locks.windows == []


def test_requests_are_safe_from_a_signal_handler():
    locks = LockRequests(before_s=1, after_s=1)
    previous = signal.signal(signal.SIGUSR1, lambda *_: locks.request())
    try:
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(locks.take_new()) == 3


def test_lease_is_exclusive_and_names_the_recorder(tmp_path):
    folder = RecordingsFolder(tmp_path)
    assert running_recorder(folder) is None
    lease = RecorderLease.acquire(folder)
    try:
        assert running_recorder(folder) == os.getpid()
        with pytest.raises(StorageError, match="already recording"):
            RecorderLease.acquire(folder)
    finally:
        lease.release()
    assert running_recorder(folder) is None and not folder.pid_path.exists()


def test_a_leftover_pid_file_is_not_a_running_recorder(tmp_path):
    """After a crash the file stays but nobody holds its lock: `dashcam lock` must not signal that pid."""
    folder = RecordingsFolder(tmp_path)
    folder.pid_path.write_text("1\n")
    assert running_recorder(folder) is None
    with pytest.raises(StorageError, match="nothing is recording"):
        signal_lock(folder)


def test_signal_lock_reaches_the_lease_holder(tmp_path):
    folder = RecordingsFolder(tmp_path)
    received = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.set())
    lease = RecorderLease.acquire(folder)
    try:
        assert signal_lock(folder) == os.getpid()
        assert received.wait(2)
    finally:
        lease.release()
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("spec,expected", [("gpiochip0:17", ("/dev/gpiochip0", 17)),
                                           ("/dev/gpiochip4:5", ("/dev/gpiochip4", 5))])
def test_gpio_line_spec(spec, expected):
    assert parse_line(spec) == expected


@pytest.mark.parametrize("spec", ["17", "gpiochip0:", "gpiochip0:x", ":3"])
def test_bad_gpio_line_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError, match="lock_gpio_line"):
        parse_line(spec)


@pytest.mark.skipif(importlib.util.find_spec("gpiod") is not None, reason="gpiod is installed here")
def test_missing_gpiod_package_is_explained():
    with pytest.raises(ConfigError, match="pip install gpiod"):
        GpioLockButton.open("gpiochip0:17", lambda: None)


class FakeLine:
    """Stands in for a gpiod LineRequest: delivers the scripted presses, then stays quiet."""

    def __init__(self, presses: int) -> None:
        self._pending = presses
        self.released = False

    def wait_edge_events(self, timeout: dt.timedelta) -> bool:
        if self._pending:
            return True
        threading.Event().wait(min(timeout.total_seconds(), 0.01))
        return False

    def read_edge_events(self) -> list:
        self._pending -= 1
        return ["falling edge"]

    def release(self) -> None:
        self.released = True


def test_button_presses_request_locks():
    pressed = threading.Semaphore(0)
    line = FakeLine(presses=2)
    button = GpioLockButton(line, pressed.release)
    button.start()
    try:
        assert pressed.acquire(timeout=2) and pressed.acquire(timeout=2)
    finally:
        button.stop()
    assert button.presses == 2 and line.released
