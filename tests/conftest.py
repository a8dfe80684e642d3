"""Shared fixtures: small synthetic clips, detail measures, a scripted detector, and a real small filesystem."""
from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge.types import Detections

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
# Device keys made by `dashcam run` in tests (edge.evidence.keys) go to a folder of the test run, not ~/.local/state.
_STATE_HOME = tempfile.mkdtemp(prefix="dashcam-test-state-")
os.environ["XDG_STATE_HOME"] = _STATE_HOME
atexit.register(shutil.rmtree, _STATE_HOME, ignore_errors=True)  # a test run leaves no folder behind in /tmp


def load_script(name: str) -> types.ModuleType:
    """scripts/NAME.py imported as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def detail(image_bgr: np.ndarray) -> float:
    """High-frequency energy: variance of the Laplacian of the grey image."""
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def checkerboard(height: int, width: int, cell: int = 4) -> np.ndarray:
    ys, xs = np.indices((height, width))
    board = (((ys // cell) + (xs // cell)) % 2 * 255).astype(np.uint8)
    return cv2.merge([board, board, board])


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10, keyframe_every: int | None = None) -> Path:
    """Encode frames losslessly enough (crf 10) that detail survives into the test input; a keyframe every
    `keyframe_every` frames if given (x264's default is 250)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if keyframe_every:
            stream.codec_context.gop_size = keyframe_every
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def read_all_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def small_frames(path: Path, size: tuple[int, int], indices: range | list[int]) -> dict[int, np.ndarray]:
    """Frames `indices` of a video, scaled to `size`, decoded one at a time: the test process never holds the
    whole clip at full size (a later test measures a child's peak memory, which starts at this process's)."""
    wanted, frames = set(indices), {}
    capture = cv2.VideoCapture(str(path))
    index = 0
    while index <= max(wanted):
        ok, image = capture.read()
        if not ok:
            break
        if index in wanted:
            frames[index] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        index += 1
    capture.release()
    return frames


def canary_frames(count: int = 12, height: int = 240, width: int = 320) -> list[np.ndarray]:
    """Flat grey frames with a high-detail checkerboard patch at (100..180, 60..140)."""
    frames = []
    for _ in range(count):
        image = np.full((height, width, 3), 128, np.uint8)
        image[60:140, 100:180] = checkerboard(80, 80)
        image[150:230, 220:300] = checkerboard(80, 80)  # a second patch that nobody detects
        frames.append(image)
    return frames


class ScriptedDetector:
    """A fake at the model edge: returns the given boxes per call, or raises when told to."""

    name = "scripted"

    def __init__(self, boxes: dict[int, Detections] | None = None, raise_on: set[int] | None = None,
                 default: Detections | None = None) -> None:
        self._boxes = boxes or {}
        self._raise_on = raise_on or set()
        self._default = default if default is not None else Detections.empty()
        self.calls = 0

    def detect(self, image_bgr: np.ndarray) -> Detections:
        index = self.calls
        self.calls += 1
        if index in self._raise_on or -1 in self._raise_on:
            raise RuntimeError(f"scripted failure on call {index}")
        return self._boxes.get(index, self._default)


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    """Until `process` listens on 127.0.0.1:`port`; fails at once if it exits, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def drain_datagrams(server: socket.socket) -> list[bytes]:
    """Every datagram already queued on a bound socket (a fake systemd NOTIFY_SOCKET), in order."""
    server.setblocking(False)
    received = []
    while True:
        try:
            received.append(server.recv(64))
        except BlockingIOError:
            return received


@pytest.fixture
def canary_clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "canary.mp4", canary_frames())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """`small_disk(megabytes)`: a real tmpfs of that size, so ENOSPC comes from the kernel, not a mock.

    Mounting needs root (CI runs as root); elsewhere the test is skipped with one line.
    """
    mounts: list[Path] = []

    def mount(megabytes: int) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a small real filesystem (tmpfs) needs root to mount")
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill_disk(folder: Path, leave_bytes: int = 0) -> Path:
    """Write a filler file until the filesystem is full, then give back `leave_bytes`; returns the filler."""
    filler = folder / "filler.bin"
    chunk = b"\xff" * (1 << 16)
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError:
            pass
        small = bytes(4096)
        try:
            while True:
                handle.write(small)
        except OSError:
            pass
        if leave_bytes:
            handle.truncate(max(0, handle.tell() - leave_bytes))
    return filler


def free_bytes(folder: Path) -> int:
    info = os.statvfs(folder)
    return info.f_bavail * info.f_frsize


# ---- a fake accelerometer in sysfs (the G-sensor's hardware edge) ---------------------------------------------

def write_sysfs(path: Path, value: object) -> None:
    """As the kernel shows an attribute: text and a newline; replaced whole, so a reader never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{value}\n")
    os.replace(partial, path)


def make_iio_device(root: Path, index: int, name: str | None = "lis3dh",
                    raw: tuple[int, int, int] | None = (0, 0, 1000), **attributes: object) -> Path:
    """iio:deviceN with `name`, in_accel_{x,y,z}_raw (None: not an accelerometer) and further attributes, by
    default a shared scale of 1 mg per count."""
    folder = root / f"iio:device{index}"
    folder.mkdir(parents=True)
    if name is not None:
        write_sysfs(folder / "name", name)
    if raw is not None:
        for axis, value in zip("xyz", raw):
            write_sysfs(folder / f"in_accel_{axis}_raw", value)
        attributes = {"in_accel_scale": "0.009806650", **attributes}
    for attribute, value in attributes.items():
        write_sysfs(folder / attribute, value)
    return folder
