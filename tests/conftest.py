"""Shared fixtures: small synthetic clips, detail measures, and a scripted detector."""
from __future__ import annotations

import socket
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge.types import Detections

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def detail(image_bgr: np.ndarray) -> float:
    """High-frequency energy: variance of the Laplacian of the grey image."""
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def checkerboard(height: int, width: int, cell: int = 4) -> np.ndarray:
    ys, xs = np.indices((height, width))
    board = (((ys // cell) + (xs // cell)) % 2 * 255).astype(np.uint8)
    return cv2.merge([board, board, board])


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Encode frames losslessly enough (crf 10) that detail survives into the test input."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
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
