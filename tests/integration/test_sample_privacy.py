"""The demo end to end: `dashcam run` on the committed sample, privacy proven from the stored file.

Every ground-truth face and plate in the sample must have lost its detail in storage:
the central part of each box (the identifying core) keeps less than MAX_RETAINED of the
source's fine detail, where an untouched region keeps about 0.7.
"""
from __future__ import annotations

import json
import stat
import subprocess
import sys

import numpy as np
import pytest

from conftest import read_all_frames
from edge.bench.stored import MAX_RETAINED, core_retained, retained_detail
from edge.bench.annotations import load_sample_truth
from edge.camera import SAMPLE_VIDEO
from edge.types import Label



@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    recordings = tmp_path_factory.mktemp("recordings")
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--fast", "--recordings", str(recordings)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return recordings, result


def test_summary_and_files(demo_run):
    recordings, result = demo_run
    videos = sorted(recordings.glob("*.mp4"))
    assert len(videos) == 1 and not list(recordings.glob("*.partial"))
    sidecar = json.loads(videos[0].with_suffix(".json").read_text())
    assert sidecar["frame_count"] == 360 and (sidecar["width"], sidecar["height"]) == (1280, 720)
    assert sidecar["redaction"]["faces"] > 0 and sidecar["redaction"]["plates"] > 0
    assert stat.S_IMODE(videos[0].stat().st_mode) == 0o600
    for line in ("frames captured        360", "faces redacted", "plates redacted", "fail-closed frames",
                 "files written          1"):
        assert line in result.stdout


def test_every_ground_truth_region_lost_its_detail(demo_run):
    recordings, _ = demo_run
    stored = read_all_frames(next(recordings.glob("*.mp4")))
    source = read_all_frames(SAMPLE_VIDEO)
    truth = load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))
    assert len(stored) == len(source) == len(truth) == 360
    leaks, checked = [], 0
    for record in truth:
        index = int(record.key)
        for box, label, track in zip(record.xyxy, record.label, record.track):
            kept = core_retained(source[index], stored[index], box)
            checked += 1
            if kept >= MAX_RETAINED:
                leaks.append((index, Label(int(label)).name, int(track), round(kept, 2)))
    assert checked > 1000
    assert not leaks, f"{len(leaks)} of {checked} boxes kept detail, e.g. {leaks[:10]}"


def test_the_measure_sees_detail_where_nothing_was_redacted(demo_run):
    """Guards the test above against a measure that is low everywhere."""
    recordings, _ = demo_run
    stored = read_all_frames(next(recordings.glob("*.mp4")))
    source = read_all_frames(SAMPLE_VIDEO)
    whole = [retained_detail(source[i], stored[i]) for i in range(0, 360, 20)]
    # About half of a frame keeps 0.7-0.9 of its detail; the rest is heads, plates and persons hidden, or dark.
    assert np.median(whole) > 0.35
