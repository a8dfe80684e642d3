"""One video shared by two workers (`dashcam anonymize --jobs 2 --piece-seconds S`), as real subprocesses: the
joined file has the input's frames and timestamps, every ground-truth face and plate of the sample lost its
detail in storage (the joins included), and a batch killed between pieces resumes from the pieces it finished."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import av
import cv2
import pytest

from conftest import small_frames, write_clip
from edge.batch import PIECES_NAME
from edge.bench.annotations import load_sample_truth
from edge.bench.stored import MAX_RETAINED, core_retained
from edge.camera import SAMPLE_VIDEO
from edge.types import Label
from recording import dashcam_command, run_dashcam


def _frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(container.streams.video[0])]


def _keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(float(p.pts * p.time_base) for p in container.demux(stream) if p.size and p.is_keyframe)


@pytest.fixture(scope="module")
def sample_in_pieces(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    output = tmp_path_factory.mktemp("pieces") / "out"
    result = run_dashcam("anonymize", str(SAMPLE_VIDEO), "--output", str(output), "--jobs", "2",
                         "--piece-seconds", "4", timeout=600)
    assert result.returncode == 0, result.stderr
    return output / SAMPLE_VIDEO.name, result


def test_the_joined_video_has_the_inputs_frames_and_timestamps_and_the_pieces_are_gone(sample_in_pieces):
    joined, result = sample_in_pieces
    assert "1 of 1 inputs anonymized" in result.stdout and "360 frames" in result.stdout
    assert _frame_times(joined) == pytest.approx(_frame_times(SAMPLE_VIDEO), abs=1e-6)
    # Three pieces (cut at the sample's keyframes, 122 and 244), each starting with a keyframe of its own.
    starts = {round(t * 30) for t in _keyframe_times(joined)}
    assert {0, 122, 244} <= starts
    assert not (joined.parent / PIECES_NAME).exists()


def test_every_ground_truth_face_and_plate_lost_its_detail_at_the_joins_too(sample_in_pieces):
    joined, _ = sample_in_pieces
    truth = {int(record.key): record for record in load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))}
    source, stored = cv2.VideoCapture(str(SAMPLE_VIDEO)), cv2.VideoCapture(str(joined))
    leaks, checked, index = [], 0, 0
    try:  # one frame of each at a time: the test process never holds the whole clip
        while True:
            ok_source, source_frame = source.read()
            ok_stored, stored_frame = stored.read()
            if not (ok_source and ok_stored):
                assert ok_source == ok_stored and index == 360
                break
            record = truth[index]
            for box, label in zip(record.xyxy, record.label):
                checked += 1
                kept = core_retained(source_frame, stored_frame, box)
                if kept >= MAX_RETAINED:
                    leaks.append((index, Label(int(label)).name, round(kept, 2)))
            index += 1
    finally:
        source.release()
        stored.release()
    assert checked > 1000
    assert not leaks, f"{len(leaks)} of {checked} boxes kept detail, e.g. {leaks[:10]}"


def test_a_batch_killed_between_pieces_resumes_from_the_pieces_it_finished(tmp_path):
    frames = small_frames(SAMPLE_VIDEO, (640, 360), range(180))
    clip = write_clip(tmp_path / "drive.mp4", [frames[i] for i in range(180)], fps=30, keyframe_every=30)
    output = tmp_path / "out"
    command = dashcam_command("anonymize", str(clip), "--output", str(output), "--jobs", "2", "--piece-seconds", "1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((output / PIECES_NAME).glob("*/*.json")):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the parent and its workers, with a piece finished
    process.communicate(timeout=30)
    finished = sorted((output / PIECES_NAME).glob("*/*.json"))
    assert finished and not (output / "drive.mp4").exists()
    # Mark a finished piece's record: if the resumed run reuses the piece, its counts reach the summary.
    record = json.loads(finished[0].read_text())
    record["stats"]["faces"] += 100_000
    finished[0].write_text(json.dumps(record))

    resumed = run_dashcam("anonymize", str(clip), "--output", str(output), "--jobs", "2", "--piece-seconds", "1",
                          "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "180 frames" in resumed.stdout
    faces = int(re.search(r"180 frames, (\d+) faces", resumed.stdout).group(1))
    assert faces >= 100_000  # the piece finished before the kill was joined, not done again
    assert _frame_times(output / "drive.mp4") == pytest.approx(_frame_times(clip), abs=1e-6)
    assert not (output / PIECES_NAME).exists() and not list(output.rglob("*.partial"))
