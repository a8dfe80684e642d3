"""`dashcam anonymize --engine ray` on a real local Ray cluster the test starts (a head and a second node on
127.0.0.1, one CPU each): photos and a video cut into pieces come out the same bytes as with the local pool."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pytest

from conftest import free_port, small_frames, wait_for_port, write_clip
from edge.batch import RESUME_NAME
from edge.camera import SAMPLE_VIDEO
from recording import dashcam_command

pytest.importorskip("ray", reason="the [cluster] extra (Ray) is not installed")
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def ray_cluster():
    """A head and a worker node, both in the foreground (`--block`), so that stopping them stops only them;
    token authentication as a real cluster has it."""
    port = free_port()
    # Ray's sockets live under its temp folder, and a Unix socket path must stay under 108 bytes.
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    head = subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                             f"--temp-dir={temp}", *common], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    nodes = [head]
    try:
        wait_for_port(port, head, seconds=120)
        nodes.append(subprocess.Popen([RAY, "start", f"--address=127.0.0.1:{port}", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        _wait_for_cpus(port, env, 2)
        yield f"127.0.0.1:{port}", env
    finally:
        for node in reversed(nodes):
            node.terminate()
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, 9)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_cpus(port: int, env: dict[str, str], cpus: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = subprocess.run([RAY, "status", f"--address=127.0.0.1:{port}"], env=env, capture_output=True,
                                text=True, timeout=60)
        if f"/{cpus}.0 CPU" in status.stdout:
            return
        time.sleep(1)
    raise AssertionError(f"the Ray cluster did not reach {cpus} CPUs: {status.stdout} {status.stderr}")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cluster") / "in"
    folder.mkdir()
    frames = small_frames(SAMPLE_VIDEO, (640, 360), range(90))
    for i in (0, 45, 89):
        cv2.imwrite(str(folder / f"photo_{i}.jpg"), frames[i])
    write_clip(folder / "drive.mp4", [frames[i] for i in range(90)], fps=30, keyframe_every=30)
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != RESUME_NAME}


def test_a_ray_cluster_writes_the_same_bytes_as_the_local_pool_pieces_included(ray_cluster, inputs, tmp_path):
    address, env = ray_cluster
    pieces = ["--jobs", "2", "--piece-seconds", "1"]  # the 3 s clip in three pieces
    local = subprocess.run(dashcam_command("anonymize", str(inputs), "--output", str(tmp_path / "local"), *pieces),
                           capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    on_ray = subprocess.run(dashcam_command("anonymize", str(inputs), "--output", str(tmp_path / "ray"), *pieces,
                                            "--engine", "ray", "--ray-address", address),
                            capture_output=True, text=True, timeout=300, env=env)
    assert on_ray.returncode == 0, on_ray.stderr
    assert "4 of 4 inputs anonymized" in on_ray.stdout and "Traceback" not in on_ray.stderr
    assert _tree(tmp_path / "ray") == _tree(tmp_path / "local")
    assert len(_tree(tmp_path / "ray")) == 4


def test_an_unreachable_ray_cluster_is_one_line_and_exit_2(inputs, tmp_path):
    result = subprocess.run(dashcam_command("anonymize", str(inputs), "--output", str(tmp_path / "out"),
                                            "--engine", "ray", "--ray-address", f"127.0.0.1:{free_port()}"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Ray cluster" in result.stderr and "Traceback" not in result.stderr
