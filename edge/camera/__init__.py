"""Frame sources: the `FrameSource` protocol and `open_source`, which picks one from config.

Hardware and codec access (OpenCV capture) lives in this package only, so everything
downstream runs in CI on files.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from edge import SAMPLE_DIR
from edge.camera.images import ImageFolderSource
from edge.camera.opencv import GStreamerSource, V4L2Source, VideoFileSource
from edge.config import SourceConfig
from edge.types import Frame

SAMPLE_VIDEO = SAMPLE_DIR / "drive_720p.mp4"


class FrameSource(Protocol):
    """Delivers frames in capture order; `read()` returns None when the source has ended."""

    name: str
    fps: float
    width: int
    height: int

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def media_clock(source: FrameSource) -> Callable[[], float] | None:
    """The source's own timeline at the current frame (a video file's), or None for a camera's or a folder's."""
    return source.media_time_s if isinstance(source, VideoFileSource) else None


def open_source(config: SourceConfig) -> FrameSource:
    if config.kind == "sample":
        return VideoFileSource(SAMPLE_VIDEO, realtime=config.realtime, max_pixels=config.max_pixels)
    if config.kind == "file":
        return VideoFileSource(Path(config.path), realtime=config.realtime, max_pixels=config.max_pixels)
    if config.kind == "images":
        return ImageFolderSource(Path(config.path), fps=config.fps or 1.0, max_pixels=config.max_pixels)
    if config.kind == "v4l2":
        return V4L2Source(config.device, config.width, config.height, config.fps)
    if config.kind == "picamera2":
        from edge.camera.picam import Picamera2Source  # imports picamera2 itself, lazily
        return Picamera2Source(config.width, config.height, config.fps)
    return GStreamerSource(config.pipeline)
