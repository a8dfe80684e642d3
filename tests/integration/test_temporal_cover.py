"""The temporal cover end to end, proven from decoded files: hard scene cuts between different
faces, the slowest cadence the config allows, and a live run on a CPU deliberately loaded.

The clip is cut from the committed sample without its black separator frames, so one scene
of faces cuts straight to another; its ground truth comes from the sample's. Every
ground-truth box must have lost its detail in every stored frame (or the frame was blurred
whole), measured as the sample privacy test does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import read_all_frames, write_clip
from edge.bench.annotations import load_sample_truth
from edge.bench.stored import MAX_RETAINED, core_retained, retained_detail
from edge.camera import SAMPLE_VIDEO

# (first, last) sample frames of each scene used; faces, faces, plates, faces, plates.
SCENES = [(61, 90), (183, 212), (0, 29), (304, 333), (122, 151)]


@dataclass
class CutClip:
    path: Path
    frames: list[np.ndarray]
    truth: list[list[np.ndarray]]  # per clip frame: ground-truth boxes


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory) -> CutClip:
    source = read_all_frames(SAMPLE_VIDEO)
    by_index = {int(r.key): r for r in load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))}
    frames, truth = [], []
    for first, last in SCENES:
        for index in range(first, last + 1):
            frames.append(source[index])
            truth.append(list(by_index[index].xyxy))
    path = write_clip(tmp_path_factory.mktemp("cuts") / "cuts.mp4", frames, fps=30)
    return CutClip(path, frames, truth)


def _anonymize(clip: Path, out: Path, config_text: str) -> tuple[Path, dict]:
    config = out / "config.yaml"
    out.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text)
    stats_path = out / "stats.json"
    result = subprocess.run([sys.executable, "-m", "edge", "anonymize", "--config", str(config), "--stats-json",
                             str(stats_path), "--output", str(out / "anon"), str(clip)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (video,) = sorted((out / "anon").glob("*.mp4"))
    return video, json.loads(stats_path.read_text())


def _leaks(clip: CutClip, stored: list[np.ndarray], pairs: list[tuple[int, int]]) -> tuple[list, int]:
    """(stored frame, source frame) pairs -> boxes that kept their detail, and the number checked."""
    leaks, checked = [], 0
    for stored_index, source_index in pairs:
        for box in clip.truth[source_index]:
            checked += 1
            kept = core_retained(clip.frames[source_index], stored[stored_index], box)
            if kept >= MAX_RETAINED:
                leaks.append((source_index, [round(float(v)) for v in box], round(kept, 2)))
    return leaks, checked


@pytest.mark.parametrize("cadence", [3, 30])
def test_hard_cuts_between_faces_leak_nothing(cut_clip, tmp_path, cadence):
    """Default cadence, and `detect_every` at the maximum the config accepts."""
    video, stats = _anonymize(cut_clip.path, tmp_path, f"track:\n  detect_every: {cadence}\n")
    stored = read_all_frames(video)
    assert len(stored) == len(cut_clip.frames)
    assert stats["scene_cuts"] == len(SCENES) - 1
    leaks, checked = _leaks(cut_clip, stored, [(i, i) for i in range(len(stored))])
    assert checked > 500
    assert not leaks, f"{len(leaks)} of {checked} boxes kept detail, e.g. {leaks[:8]}"
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else None
    if duration is not None:
        assert abs(duration - len(stored) / 30) < 0.1  # stored time is the source's time


def test_the_measure_sees_the_faces_when_nothing_hides_them(cut_clip):
    """Guards the test above: the clip as written keeps its detail, so a leak would show."""
    decoded = read_all_frames(cut_clip.path)
    leaks, checked = _leaks(cut_clip, decoded, [(i, i) for i in range(len(decoded))])
    assert len(leaks) > 0.9 * checked


def _busy_loops(count: int) -> list[subprocess.Popen]:
    spin = "import time\nend = time.time() + 120\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", spin])
            for _ in range(count)]


def test_a_live_run_on_a_loaded_cpu_drops_frames_but_leaks_nothing_and_keeps_true_time(cut_clip, tmp_path):
    """`dashcam run` replaying the cut clip in real time while three busy loops take the two cores."""
    config = tmp_path / "live.yaml"
    config.write_text(f"source:\n  kind: file\n  path: {cut_clip.path}\n  realtime: true\ngps:\n  source: none\n")
    stats_path = tmp_path / "stats.json"
    load = _busy_loops(3)
    try:
        result = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(config), "--recordings",
                                 str(tmp_path / "rec"), "--stats-json", str(stats_path)],
                                capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        for process in load:
            process.kill()
            process.wait()
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_path.read_text())
    (video,) = sorted((tmp_path / "rec").glob("*.mp4"))
    stored = read_all_frames(video)
    with av.open(str(video)) as container:
        stamps = [float(frame.time) for frame in container.decode(video=0)]
    assert len(stamps) == len(stored) == stats["frames_stored"]
    # Each stored frame is matched to its source frame by its timestamp: the time of capture.
    pairs = [(i, min(len(cut_clip.frames) - 1, round(stamp * 30))) for i, stamp in enumerate(stamps)]
    assert stats["dropped_overload"] > 0, "the load did not make the live line drop frames"
    # True time: a sample of stored frames, the last ones included, shows the source frame its timestamp names.
    for stored_index, source_index in pairs[::7] + pairs[-5:]:
        if not _blurred_whole(stored[stored_index], cut_clip.frames[source_index]):
            assert abs(_closest(stored[stored_index], cut_clip.frames, source_index) - source_index) <= 1
    leaks, checked = _leaks(cut_clip, stored, pairs)
    assert checked > 100
    assert not leaks, f"{len(leaks)} of {checked} boxes kept detail, e.g. {leaks[:8]}"
    # The clip spans the source's time, less the tail the overloaded line may have dropped (counted).
    assert stamps[-1] > (len(cut_clip.frames) - 10 - stats["dropped_overload"]) / 30


def _blurred_whole(stored: np.ndarray, source: np.ndarray) -> bool:
    return retained_detail(source, stored) < 0.1


def _closest(stored: np.ndarray, frames: list[np.ndarray], around: int, reach: int = 6) -> int:
    """The source frame near `around` that the stored frame looks most like (small grey copies)."""
    def small(image: np.ndarray) -> np.ndarray:
        return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (160, 90), interpolation=cv2.INTER_AREA).astype(int)

    target = small(stored)
    candidates = range(max(0, around - reach), min(len(frames), around + reach + 1))
    return min(candidates, key=lambda i: float(np.abs(small(frames[i]) - target).mean()))
