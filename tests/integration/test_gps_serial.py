"""GPS input end to end: real pseudo-terminals, a vanishing udev-style link, log replay, gpsd.

The serial reader opens the slave side of a `pty.openpty()` pair by name, exactly as it
opens /dev/ttyACM0; a writer thread plays NMEA into the master side. pyserial flushes
the input queue when it opens a port, so every test first waits until the reader is
demonstrably reading (`wait_reading`) before it writes what it checks.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import pty
import select
import shutil
import socket
import subprocess
import threading
import time
import tracemalloc
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import free_port
from edge.gps import FixProvider
from edge.gps.reader import SerialGpsReader
from edge.gps.replay import GpsdClient, NmeaLogReplay
from edge.types import GpsFix

NMEA_DATA = Path(__file__).resolve().parents[1] / "data" / "nmea"
DRIVE = NMEA_DATA / "drive.nmea"
THREE_EPOCHS = NMEA_DATA / "three_epochs.nmea"
BAUD = 9600


def _framed(body: str) -> bytes:
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


SYNC_LINE = _framed("GPTXT,01,01,02,sync")  # a correct sentence we ignore (unsupported_type)


def log_lines(path: Path) -> list[bytes]:
    return [line.encode("ascii") + b"\r\n" for line in path.read_text(encoding="ascii").splitlines()]


def last_position(path: Path) -> tuple[float, float]:
    """The last RMC position in a log, decoded here independently of edge.gps."""
    fields = [line.split(",") for line in path.read_text(encoding="ascii").splitlines() if line[3:6] == "RMC"]
    lat, ns, lon, ew = fields[-1][3:7]
    lat_deg = int(lat[:2]) + float(lat[2:]) / 60
    lon_deg = int(lon[:3]) + float(lon[3:]) / 60
    return (lat_deg if ns == "N" else -lat_deg), (lon_deg if ew == "E" else -lon_deg)


def wait_until(predicate: Callable[[], object], timeout_s: float = 5.0, interval_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


def at(fix: GpsFix | None, position: tuple[float, float]) -> bool:
    return fix is not None and abs(fix.lat - position[0]) < 1e-6 and abs(fix.lon - position[1]) < 1e-6


class FakeReceiver:
    """A pty pair: the reader opens `name` (the slave); the test writes NMEA into the master."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.name = os.ttyname(self.slave)
        self._closed = False

    def write(self, data: bytes, timeout_s: float = 10.0) -> None:
        """Write everything, without ever blocking forever if the reader stops reading."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout_s
        while view:
            if time.monotonic() > deadline:
                raise TimeoutError("the reader stopped draining the pty")
            _, ready, _ = select.select([], [self.master], [], 0.1)
            if not ready:
                continue
            try:
                written = os.write(self.master, view[:4096])
            except BlockingIOError:
                continue
            view = view[written:]

    def play(self, lines: list[bytes], interval_s: float = 0.001) -> threading.Thread:
        """Write lines one by one from a writer thread, like a receiver streaming them."""
        def run() -> None:
            for line in lines:
                self.write(line)
                time.sleep(interval_s)
        thread = threading.Thread(target=run, name="fake-receiver", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.master)
            os.close(self.slave)


def wait_reading(reader: FixProvider, receiver: FakeReceiver, timeout_s: float = 5.0) -> None:
    """Write a harmless sentence until the reader counts a line: from then on nothing is flushed."""
    before = reader.counters()["lines"]
    deadline = time.monotonic() + timeout_s
    while reader.counters()["lines"] == before:
        assert time.monotonic() < deadline, f"reader never read from {receiver.name}: {reader.counters()}"
        receiver.write(SYNC_LINE)
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    fake = FakeReceiver()
    yield fake
    fake.close()


@pytest.fixture
def started() -> Iterator[Callable[[FixProvider], FixProvider]]:
    """Start providers and always stop them, so a failing test leaves no thread behind."""
    providers: list[FixProvider] = []

    def start(provider: FixProvider) -> FixProvider:
        providers.append(provider)
        provider.start()
        return provider

    yield start
    for provider in reversed(providers):
        provider.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now_ns = 1_000_000_000

    def __call__(self) -> int:
        return self.now_ns


NO_ERRORS = ("checksum", "no_checksum", "malformed", "binary", "overlong", "unknown_talker")


# --- (a) clean log --------------------------------------------------------------------------

def test_clean_log_gives_fixes_matching_the_last_position(receiver: FakeReceiver, started) -> None:
    reader = started(SerialGpsReader(receiver.name, BAUD))
    wait_reading(reader, receiver)
    receiver.play(log_lines(DRIVE)).join(10)
    expected = last_position(DRIVE)
    assert wait_until(lambda: at(reader.latest(), expected)), (reader.latest(), reader.counters())
    fix = reader.latest()
    assert fix is not None and fix.valid and fix.t_utc is not None
    assert fix.t_utc.isoformat() == "2024-05-14T08:30:09+00:00"
    assert fix.speed_mps == pytest.approx(12.5, abs=1e-3)
    counts = reader.counters()
    assert counts["fixes"] == 16 and counts["no_fix"] == 4  # 8 epochs with fix, 2 without; RMC + GGA each
    assert {kind: counts[kind] for kind in NO_ERRORS} == dict.fromkeys(NO_ERRORS, 0)
    assert counts["disconnects"] == counts["reconnects"] == counts["open_failures"] == 0


# --- (b) noisy stream -----------------------------------------------------------------------

def noisy_stream() -> tuple[list[bytes], dict[str, int]]:
    """The drive log with one of each kind of damage mixed in; returns lines and expected counts."""
    clean = log_lines(DRIVE)
    rmc = next(line for line in clean if b"RMC" in line and b",A," in line)
    noise = [
        (b"\xff\xfe\x00\x81\x9c\xd3garbage\r\n", "binary"),
        (b"\x00\x00\x00\x00\r\n", "binary"),
        (b"$GNRMC,0830\r\n", "no_checksum"),  # truncated sentence: indistinguishable from a missing checksum
        (rmc[20:], "malformed"),  # the tail of a sentence: no "$"
        (b"$GNGGA,08300" + rmc, "malformed"),  # cut short, and the next sentence glued on
        (rmc.replace(b"4722.", b"4723."), "checksum"),
        (rmc.split(b"*")[0] + b"\r\n", "no_checksum"),
        (_framed("XXRMC" + rmc.decode()[6:].split("*")[0]), "unknown_talker"),
        (_framed("GNRMC,083005.00,A,47x2.6140,N,00832.5020,E,0.0,,140524,,,A"), "malformed"),
        (b"$GPGSV," + b"9," * 100 + b"*00\r\n", "overlong"),
    ]
    lines: list[bytes] = []
    for index, line in enumerate(clean):
        lines.append(line)
        if index % 7 == 3:
            lines.append(noise[(index // 7) % len(noise)][0])
    expected: dict[str, int] = {}
    for index in range(len(clean)):
        if index % 7 == 3:
            kind = noise[(index // 7) % len(noise)][1]
            expected[kind] = expected.get(kind, 0) + 1
    return lines, expected


def test_noisy_stream_still_gives_fixes_and_counts_each_error_kind(receiver: FakeReceiver, started) -> None:
    reader = started(SerialGpsReader(receiver.name, BAUD))
    wait_reading(reader, receiver)
    lines, expected = noisy_stream()
    assert set(expected) == {"binary", "no_checksum", "malformed", "checksum", "unknown_talker", "overlong"}
    receiver.play(lines).join(10)
    position = last_position(DRIVE)
    assert wait_until(lambda: at(reader.latest(), position)), reader.counters()
    assert wait_until(lambda: {k: reader.counters()[k] for k in expected} == expected), (reader.counters(), expected)
    counts = reader.counters()
    assert counts["fixes"] >= 12  # a few sentences were destroyed by the glued line
    assert counts["baud_suspect"] == 0  # scattered noise is not a wrong baud rate


# --- (c) a 10 MB line -----------------------------------------------------------------------

def test_10mb_line_is_discarded_with_bounded_memory_and_reading_continues(receiver: FakeReceiver,
                                                                          started) -> None:
    reader = started(SerialGpsReader(receiver.name, BAUD))
    wait_reading(reader, receiver)
    payload = b"A" * (10 * 1024 * 1024)  # allocated before tracing starts: only the reader is measured
    tracemalloc.start()
    try:
        receiver.write(payload, timeout_s=20)
        receiver.play([b"\r\n", *log_lines(THREE_EPOCHS)]).join(10)
        position = last_position(THREE_EPOCHS)
        assert wait_until(lambda: at(reader.latest(), position)), reader.counters()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, f"peak traced memory {peak} bytes while a 10 MB line streamed"
    counts = reader.counters()
    assert counts["overlong"] == 1
    assert counts["fixes"] == 6


# --- wrong baud rate ------------------------------------------------------------------------

def test_wrong_baud_rate_garbage_is_flagged_once(receiver: FakeReceiver, started, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="edge.gps")
    reader = started(SerialGpsReader(receiver.name, BAUD))
    wait_reading(reader, receiver)
    garbage = [bytes([0x80 + (i * 37 + j * 11) % 120 for j in range(30)]) + b"\n" for i in range(45)]
    receiver.play(garbage + log_lines(THREE_EPOCHS)).join(10)
    assert wait_until(lambda: reader.counters()["fixes"] == 6), reader.counters()
    counts = reader.counters()
    assert counts["baud_suspect"] == 1 and counts["binary"] == 45
    warnings = [r.getMessage() for r in caplog.records if "baud" in r.getMessage()]
    assert len(warnings) == 1 and "9600" in warnings[0]


# --- (d) device vanishes and returns --------------------------------------------------------

def test_vanished_device_is_reopened_through_its_symlink(tmp_path: Path, started, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edge.gps")
    first = FakeReceiver()
    second: FakeReceiver | None = None
    link = tmp_path / "gps0"  # like udev's /dev/gps0
    link.symlink_to(first.name)
    try:
        reader = started(SerialGpsReader(str(link), BAUD))
        wait_reading(reader, first)
        first.play(log_lines(DRIVE)).join(10)
        assert wait_until(lambda: at(reader.latest(), last_position(DRIVE))), reader.counters()

        first.close()  # unplugged: reads fail, then the node is gone
        link.unlink()
        assert wait_until(lambda: reader.counters()["disconnects"] >= 1), reader.counters()
        assert wait_until(lambda: reader.counters()["open_failures"] >= 1), reader.counters()

        second = FakeReceiver()  # plugged back in: a new pty behind the same link
        link.symlink_to(second.name)
        assert wait_until(lambda: reader.counters()["reconnects"] >= 1, timeout_s=8), reader.counters()
        wait_reading(reader, second)
        second.play(log_lines(THREE_EPOCHS)).join(10)
        assert wait_until(lambda: at(reader.latest(), last_position(THREE_EPOCHS))), reader.counters()
        counts = reader.counters()  # before closing the second pty, which is another disconnect
    finally:
        first.close()
        if second is not None:
            second.close()
    assert counts["disconnects"] == 1 and counts["reconnects"] == 1, counts
    gps_records = [record for record in caplog.records if record.name.startswith("edge.gps")]
    assert any("reopened" in record.getMessage() for record in gps_records)
    # Location is personal data: nothing above DEBUG may carry coordinates.
    for record in gps_records:
        assert record.levelno <= logging.DEBUG or not any(
            text in record.getMessage() for text in ("4722.", "47.37", "00832.", "8.54")), record.getMessage()


# --- (e) stale fixes ------------------------------------------------------------------------

def test_fix_expires_after_the_staleness_limit_with_a_fake_clock(receiver: FakeReceiver, started) -> None:
    clock = FakeClock()
    reader = started(SerialGpsReader(receiver.name, BAUD, stale_after_s=2.0, clock=clock))
    wait_reading(reader, receiver)
    receiver.play(log_lines(THREE_EPOCHS)).join(10)
    assert wait_until(lambda: reader.counters()["fixes"] == 6), reader.counters()
    assert reader.latest() is not None
    clock.now_ns += 1_900_000_000
    assert reader.latest() is not None
    clock.now_ns += 200_000_000
    assert reader.latest() is None


def test_fix_expires_on_the_real_clock_when_the_receiver_goes_quiet(receiver: FakeReceiver, started) -> None:
    reader = started(SerialGpsReader(receiver.name, BAUD, stale_after_s=0.3))
    wait_reading(reader, receiver)
    receiver.play(log_lines(THREE_EPOCHS)).join(10)
    assert wait_until(lambda: reader.latest() is not None), reader.counters()
    assert wait_until(lambda: reader.latest() is None, timeout_s=2.0)


# --- (f) stop() -----------------------------------------------------------------------------

def test_stop_returns_promptly_while_reading(receiver: FakeReceiver) -> None:
    reader = SerialGpsReader(receiver.name, BAUD)
    reader.start()
    wait_reading(reader, receiver)
    began = time.monotonic()
    reader.stop()
    assert time.monotonic() - began < 1.0
    assert not any(t.name.startswith("gps-serial") and t.is_alive() for t in threading.enumerate())


def test_stop_returns_promptly_during_backoff(tmp_path: Path) -> None:
    reader = SerialGpsReader(str(tmp_path / "no-such-device"), BAUD, backoff_initial_s=5.0)
    reader.start()
    assert wait_until(lambda: reader.counters()["open_failures"] >= 1)
    began = time.monotonic()
    reader.stop()
    assert time.monotonic() - began < 1.0
    assert reader.latest() is None


def test_unusable_port_url_is_reported_once_and_not_retried(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="edge.gps")
    reader = SerialGpsReader("nosuchscheme://gps", BAUD, backoff_initial_s=0.05)
    reader.start()
    assert wait_until(lambda: reader.counters()["open_failures"] == 1)
    time.sleep(0.4)  # eight first backoffs: a retry would have happened by now
    reader.stop()
    assert reader.counters()["open_failures"] == 1
    assert any("nosuchscheme://gps" in record.getMessage() for record in caplog.records)


def test_latest_never_blocks_on_an_absent_device(tmp_path: Path, started) -> None:
    reader = started(SerialGpsReader(str(tmp_path / "absent"), BAUD))
    began = time.monotonic()
    for _ in range(1000):
        assert reader.latest() is None
    assert time.monotonic() - began < 0.5


# --- (g) log replay -------------------------------------------------------------------------

def test_replay_paces_at_recorded_speed(started) -> None:
    replay = NmeaLogReplay(THREE_EPOCHS, realtime=True)
    began = time.monotonic()
    started(replay)
    assert replay.wait_finished(timeout_s=6)
    elapsed = time.monotonic() - began
    assert 1.8 <= elapsed < 3.5, elapsed
    assert at(replay.latest(), last_position(THREE_EPOCHS))
    assert replay.counters()["fixes"] == 6


def test_replay_without_realtime_is_immediate(started) -> None:
    replay = NmeaLogReplay(THREE_EPOCHS, realtime=False)
    began = time.monotonic()
    started(replay)
    assert replay.wait_finished(timeout_s=2)
    assert time.monotonic() - began < 1.0  # realtime would take 2 s
    assert at(replay.latest(), last_position(THREE_EPOCHS))


def test_replay_caps_long_gaps(tmp_path: Path, started) -> None:
    lines = THREE_EPOCHS.read_text(encoding="ascii").splitlines()
    gap_log = tmp_path / "gap.nmea"
    later = [line for line in lines if "120002" in line]  # 10 minutes later, re-framed below
    moved = [_framed(line[1:].split("*")[0].replace("120002", "121002")).decode() for line in later]
    gap_log.write_text("\n".join(lines[:3] + moved) + "\n", encoding="ascii")
    replay = NmeaLogReplay(gap_log, realtime=True, max_gap_s=0.5)
    began = time.monotonic()
    started(replay)
    assert replay.wait_finished(timeout_s=3)
    assert 0.4 <= time.monotonic() - began < 1.5


def test_replay_loop_stops_promptly(started) -> None:
    replay = started(NmeaLogReplay(DRIVE, realtime=True, loop=True))
    assert wait_until(lambda: replay.latest() is not None or replay.counters()["no_fix"] > 0)
    began = time.monotonic()
    replay.stop()
    assert time.monotonic() - began < 1.0


def test_replay_of_a_missing_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        NmeaLogReplay(tmp_path / "missing.nmea").start()


# --- gpsd -----------------------------------------------------------------------------------

def tpv(lat: float, lon: float, mode: int = 3) -> bytes:
    report = {"class": "TPV", "device": "/dev/pts/9", "mode": mode, "time": "2024-05-14T08:30:09.000Z",
              "lat": lat, "lon": lon, "altMSL": 35.4, "speed": 12.5, "track": 90.0}
    return json.dumps(report).encode() + b"\r\n"


def test_gpsd_client_against_a_scripted_server_reconnects(started) -> None:
    """A scripted gpsd: the first connection ends after one fix, the second stays up."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    watches: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        scripts = [
            [b'{"class":"VERSION","release":"3.22"}\n', b'{"class":"SKY","uSat":7,"hdop":0.9}\n',
             tpv(47.0, 8.0), b"not json\n"],
            [b'{"class":"VERSION","release":"3.22"}\n', tpv(47.5, 8.5), tpv(47.6, 8.6)],
        ]
        for script in scripts:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                watches.append(conn.recv(1024))
                for line in script:
                    conn.sendall(line)
                if script is scripts[-1]:
                    done.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client = started(GpsdClient("127.0.0.1", server.getsockname()[1]))
        assert wait_until(lambda: at(client.latest(), (47.6, 8.6))), client.counters()
        fix = client.latest()
        assert fix is not None and fix.satellites == 7 and fix.hdop == 0.9 and fix.altitude_m == 35.4
        counts = client.counters()
        assert counts["reconnects"] == 1 and counts["disconnects"] == 1
        assert counts["malformed"] == 1 and counts["fixes"] == 3
        assert watches[0] == b'?WATCH={"enable":true,"json":true};\n'
    finally:
        done.set()
        thread.join(5)
        server.close()


def test_gpsd_client_keeps_retrying_while_nothing_listens(started) -> None:
    client = started(GpsdClient("127.0.0.1", free_port(), backoff_initial_s=0.05))
    assert wait_until(lambda: client.counters()["open_failures"] >= 2)
    assert client.latest() is None


@contextlib.contextmanager
def running_gpsd(device: str, port: int) -> Iterator[subprocess.Popen]:
    # -N foreground, -n poll the device without waiting for a client, -b never reconfigure it.
    process = subprocess.Popen(["gpsd", "-N", "-n", "-b", "-S", str(port), device],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_gpsd_client_against_real_gpsd_reading_a_pty(receiver: FakeReceiver, started) -> None:
    if shutil.which("gpsd") is None:
        pytest.skip("gpsd is not installed (apt install gpsd); the scripted-server test covers the client")
    port = free_port()
    stop_feeding = threading.Event()
    epochs = log_lines(DRIVE)[-10:]  # one epoch with a fix, repeated like a live receiver

    def feed() -> None:
        while not stop_feeding.is_set():
            for line in epochs:
                with contextlib.suppress(OSError, TimeoutError):
                    receiver.write(line, timeout_s=1)
            stop_feeding.wait(0.2)

    with running_gpsd(receiver.name, port) as process:
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            client = started(GpsdClient("127.0.0.1", port, backoff_initial_s=0.1))
            got_fix = wait_until(lambda: client.latest() is not None, timeout_s=12)
            if not got_fix and process.poll() is not None:
                pytest.skip(f"gpsd could not run here: {process.stderr.read().decode(errors='replace')[-300:]}")
            assert got_fix, client.counters()
            fix = client.latest()
            assert fix is not None and at(fix, last_position(DRIVE))
            assert fix.t_utc is not None and fix.t_utc.isoformat().startswith("2024-05-14T08:30:09")
        finally:
            stop_feeding.set()
            feeder.join(3)


def test_dashcam_gps_command_prints_fixes_and_counters(receiver: FakeReceiver) -> None:
    """`dashcam gps --port PTY --baud 9600`: what a user runs to check the wiring."""
    import sys

    process = subprocess.Popen([sys.executable, "-m", "edge", "gps", "--port", receiver.name, "--baud", str(BAUD),
                                "--seconds", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stream = log_lines(DRIVE) + [b"\xff\xfe garbage\r\n", _framed("GPRMC,bad")[:-5] + b"*00\r\n"]
    done = threading.Event()

    def feed() -> None:
        for line in stream * 20:
            if done.is_set():
                return
            try:
                receiver.write(line, timeout_s=1.0)
            except (OSError, TimeoutError):  # the command has exited and stopped reading
                return
            time.sleep(0.02)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    stdout, stderr = process.communicate(timeout=60)
    done.set()
    writer.join(timeout=5)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    lines = stdout.strip().splitlines()
    assert len(lines) >= 3
    assert any("lat " in line and "km/h" in line for line in lines), stdout
    assert "binary=" in stdout and "malformed=" in stdout and "fixes=" in stdout
