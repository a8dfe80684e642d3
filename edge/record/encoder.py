"""Video encoding of redacted frames with PyAV (FFmpeg), into a `.partial` file renamed when done.

The container follows the output name's suffix; no audio stream is ever added.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from edge.errors import StorageError
from edge.record.atomic import commit, discard, open_partial
from edge.types import RedactedFrame

log = logging.getLogger(__name__)

# suffix -> (FFmpeg muxer, encoder that muxer takes, or None for the configured one)
CONTAINERS: dict[str, tuple[str, str | None]] = {
    ".mp4": ("mp4", None), ".m4v": ("mp4", None), ".mov": ("mov", None),
    ".mkv": ("matroska", None), ".ts": ("mpegts", None),
    ".avi": ("avi", "mpeg4"), ".webm": ("webm", "libvpx-vp9"),
}


@dataclass(frozen=True)
class EncoderSettings:
    codec: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"


def fps_fraction(fps: float) -> Fraction:
    """An exact rate for a float fps, so 29.97 stays 30000/1001 in the output."""
    return Fraction(fps).limit_denominator(1001)


class VideoEncoder:
    """Writes `RedactedFrame`s at a constant rate to `final_path` once `close()` succeeds."""

    def __init__(self, final_path: Path, width: int, height: int, fps: float, settings: EncoderSettings) -> None:
        suffix = final_path.suffix.lower()
        if suffix not in CONTAINERS:
            raise StorageError(f"cannot write {final_path.name}: unsupported video container '{suffix}' "
                               f"(supported: {', '.join(sorted(CONTAINERS))})")
        muxer, forced_codec = CONTAINERS[suffix]
        codec = forced_codec or settings.codec
        self.final_path = final_path
        self.codec = codec
        self.frame_count = 0
        self._handle = open_partial(final_path)
        self._container = av.open(self._handle, mode="w", format=muxer)
        rate = fps_fraction(fps)
        self._time_base = 1 / rate
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        # x264's 4:2:0 needs even sides; odd-sized input keeps its size in 4:4:4 instead.
        even = width % 2 == 0 and height % 2 == 0
        self._stream.pix_fmt = "yuv420p" if even or codec != "libx264" else "yuv444p"
        if codec == "libx264":
            self._stream.options = {"crf": str(settings.crf), "preset": settings.preset}
        self._size = (width, height)

    def write(self, frame: RedactedFrame) -> None:
        if not isinstance(frame, RedactedFrame):
            raise TypeError(f"VideoEncoder accepts RedactedFrame only, got {type(frame).__name__}")
        height, width = frame.image_bgr.shape[:2]
        if (width, height) != self._size:
            raise ValueError(f"frame is {width}x{height}, stream is {self._size[0]}x{self._size[1]}")
        video_frame = av.VideoFrame.from_ndarray(frame.image_bgr, format="bgr24")
        video_frame.pts = self.frame_count
        video_frame.time_base = self._time_base
        self._mux(self._stream.encode(video_frame))
        self.frame_count += 1

    def _mux(self, packets: list) -> None:
        try:
            self._container.mux(packets)
        except OSError as exc:
            raise StorageError(f"cannot write {self.final_path}: {exc.strerror or exc}") from None

    def close(self) -> Path:
        """Flush the encoder, finish the container and move the file to its final name."""
        self._mux(self._stream.encode(None))
        self._container.close()
        return commit(self._handle, self.final_path)

    def abort(self) -> None:
        """Drop the unfinished file (used when nothing was written)."""
        try:
            self._container.close()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.debug("closing an aborted container: %s", exc)
        discard(self._handle, self.final_path)
