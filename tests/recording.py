"""Helpers for the loop-recording tests: redacted frames on a chosen clock, small run configs, decoding."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np

from conftest import write_clip
from edge.config import RedactConfig
from edge.record.encoder import EncoderSettings
from edge.record.loop import LoopOptions
from edge.record.segments import SegmentRecorder
from edge.redact import RedactedFrame, Redactor
from edge.types import Detections, Frame

FPS = 10
SIZE = (160, 120)
T0_UTC = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.timezone.utc)


def redacted(index: int, t_mono_ns: int, seed: int = 0) -> RedactedFrame:
    """A noisy frame (so segment sizes are steady) stamped with the given monotonic time."""
    rng = np.random.default_rng(seed * 100_000 + index)
    image = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    t_utc = T0_UTC + dt.timedelta(seconds=t_mono_ns / 1e9)
    frame = Frame(image, index, t_mono_ns, t_utc)
    return Redactor(RedactConfig()).redact(frame, Detections.empty())


def recorder(directory: Path, loop: LoopOptions | None = None, segment_seconds: float = 1.0) -> SegmentRecorder:
    return SegmentRecorder.open(directory, *SIZE, FPS, segment_seconds, EncoderSettings(preset="ultrafast"),
                           {"scripted": "0"}, "test", loop=loop)


def feed(rec: SegmentRecorder, first: int, count: int, start_ns: int = 0, seed: int = 0) -> int:
    """Write frames first..first+count-1 at FPS; returns the next index."""
    for index in range(first, first + count):
        rec.write(redacted(index, start_ns + index * 1_000_000_000 // FPS, seed))
    return first + count


def decodable_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def run_config(tmp_path: Path, clip_seconds: float, record_yaml: str = "", fps: int = FPS,
               realtime: bool = True) -> Path:
    """A config recording a small synthetic clip (replayed like a camera), faces only, no GPS: fast on any CI."""
    clip = tmp_path / "camera.mp4"
    if not clip.exists():
        rng = np.random.default_rng(1)
        base = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
        frames = [np.roll(base, 2 * i, axis=1) for i in range(int(clip_seconds * fps))]
        write_clip(clip, frames, fps=fps)
    config = tmp_path / "dashcam.yaml"
    config.write_text(f"source:\n  kind: file\n  path: {clip}\n  realtime: {str(realtime).lower()}\n"
                      "gps:\n  source: none\n"
                      "detect:\n  plates: {enabled: false}\n"
                      f"record:\n  preset: ultrafast\n{record_yaml}")
    return config


def file_run_config(tmp_path: Path, clip: Path, **sections: dict) -> Path:
    """A config replaying `clip` as fast as it decodes (no GPS, no second line, state in tmp_path), with the
    given sections added, for `dashcam run --config`."""
    data = {"source": {"kind": "file", "path": str(clip), "realtime": False}, "gps": {"source": "none"},
            "detect": {"people": {"enabled": False}},
            "record": {"directory": str(tmp_path / "rec"), "min_free_bytes": 0},
            "evidence": {"key_dir": str(tmp_path / "state")}, **sections}
    config = tmp_path / "dashcam.yaml"
    config.write_text(json.dumps(data))  # JSON is YAML
    return config


def dashcam_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def run_dashcam(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(dashcam_command(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def start_dashcam(*args: str) -> subprocess.Popen:
    return subprocess.Popen(dashcam_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
