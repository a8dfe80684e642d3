"""`dashcam anonymize` at scale, as real subprocesses: a worker pool gives the same bytes as one process, a
batch killed mid-file resumes without a half-written output, and folders can be searched keeping their tree."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import pytest

from conftest import small_frames, write_clip
from edge.batch import RESUME_NAME
from edge.camera import SAMPLE_VIDEO
from recording import dashcam_command, run_dashcam


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Six photos (frames of the sample, with faces and plates) and a 2 s clip, in a folder with a subfolder."""
    folder = tmp_path_factory.mktemp("batch") / "in"
    (folder / "more").mkdir(parents=True)
    frames = small_frames(SAMPLE_VIDEO, (640, 360), [*range(60), *range(60, 180, 30), 300])
    for i, index in enumerate(range(0, 180, 30)):
        cv2.imwrite(str(folder / f"photo_{i}.jpg"), frames[index])
    write_clip(folder / "drive.mp4", [frames[i] for i in range(60)], fps=30)
    cv2.imwrite(str(folder / "more" / "photo_0.jpg"), frames[300])  # same name as one above, another folder
    return folder


@pytest.fixture(scope="module")
def one_process(inputs, tmp_path_factory) -> Path:
    """The reference: the same inputs anonymized by a single process."""
    output = tmp_path_factory.mktemp("one") / "out"
    result = _anonymize(str(inputs), "--output", str(output), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    return output


def _anonymize(*args: str) -> subprocess.CompletedProcess:
    return run_dashcam("anonymize", *args, timeout=300)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != RESUME_NAME}


def test_a_pool_of_workers_writes_the_same_bytes_as_one_process(inputs, one_process, tmp_path):
    two = _anonymize(str(inputs), "--output", str(tmp_path / "two"), "--jobs", "2")
    assert two.returncode == 0, two.stderr
    assert "7 of 7 inputs anonymized" in two.stdout and "[7/7" in two.stdout
    assert _tree(one_process) == _tree(tmp_path / "two")
    assert len(_tree(tmp_path / "two")) == 7
    log = [json.loads(line) for line in (tmp_path / "two" / RESUME_NAME).read_text().splitlines()]
    assert len(log) == 7 and all(entry["config_sha256"] and entry["models"] for entry in log)


def test_recursive_keeps_the_tree_and_without_it_the_subfolder_is_not_searched(inputs, tmp_path):
    result = _anonymize(str(inputs), "--output", str(tmp_path / "out"), "--recursive", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "more" / "photo_0.jpg").is_file() and (tmp_path / "out" / "photo_0.jpg").is_file()
    assert "8 of 8 inputs" in result.stdout


def test_a_batch_killed_mid_file_resumes_without_a_half_written_output(inputs, one_process, tmp_path):
    process = subprocess.Popen(dashcam_command("anonymize", str(inputs), "--output", str(tmp_path / "out"),
                                               "--jobs", "2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (tmp_path / "out" / RESUME_NAME).exists():
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the parent and its workers, mid-batch
    process.communicate(timeout=30)
    finished_before = len((tmp_path / "out" / RESUME_NAME).read_text().splitlines())
    assert 1 <= finished_before < 7
    complete = {name for name in _tree(tmp_path / "out") if not name.endswith(".partial")}
    for name in complete:  # whatever has its final name is whole
        assert (tmp_path / "out" / name).read_bytes() == (one_process / name).read_bytes()

    resumed = _anonymize(str(inputs), "--output", str(tmp_path / "out"), "--jobs", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"({finished_before} done before, skipped)" in resumed.stdout
    assert _tree(tmp_path / "out") == _tree(one_process)  # no .partial left, every output whole

    os.utime(inputs / "photo_3.jpg")  # a changed input is done again, the others are not
    again = _anonymize(str(inputs), "--output", str(tmp_path / "out"), "--jobs", "2", "--resume")
    assert "(6 done before, skipped)" in again.stdout


def test_a_corrupt_input_in_the_pool_is_named_and_the_others_are_done(inputs, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("photo_0.jpg", "photo_1.jpg", "photo_2.jpg", "photo_3.jpg"):
        (folder / name).write_bytes((inputs / name).read_bytes())
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    result = _anonymize(str(folder), "--output", str(tmp_path / "out"), "--jobs", "2")
    assert result.returncode == 2 and "broken.mp4" in result.stderr and "Traceback" not in result.stderr
    assert "4 of 5 inputs anonymized" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").glob("*.jpg")) == ["photo_0.jpg", "photo_1.jpg",
                                                                       "photo_2.jpg", "photo_3.jpg"]


def test_a_missing_model_with_a_pool_is_one_line_and_exit_2(inputs, tmp_path):
    (tmp_path / "empty").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f"detect:\n  models_dir: {tmp_path / 'empty'}\n")
    result = _anonymize(str(inputs), "--output", str(tmp_path / "out"), "--jobs", "2", "--config", str(config))
    assert result.returncode == 2 and "model file missing" in result.stderr and "Traceback" not in result.stderr
