"""Hostile and careless input through the real command: decompression bombs, a bad --output, a read-only disk,
a variable-frame-rate file, and stop signals during start-up. Each ends in one line and a documented status."""
from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import write_clip
from edge.camera.images import read_image
from edge.camera.opencv import VideoFileSource
from edge.errors import SourceError
from edge.record.encoder import EncoderSettings, VideoEncoder
from recording import redacted, run_dashcam, start_dashcam


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid grey PNG of side x side pixels whose zeros compress to a few hundred kB (as in the issue)."""
    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body)
                     + png_chunk(b"IEND", b""))
    return path


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("dashcam: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_png_declaring_400_million_pixels_is_refused_from_its_header_without_the_memory(tmp_path):
    bomb = write_png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(SourceError, match="declares more than 179 million pixels a frame, more than source.max_pix"):
        read_image(bomb)
    with pytest.raises(SourceError, match="12000x12000 is 144 million pixels a frame, more than source.max_pixels"):
        read_image(write_png_bomb(tmp_path / "smaller.png", side=12_000), max_pixels=1_000_000)
    process = start_dashcam("anonymize", str(bomb), "-o", str(tmp_path / "out"))
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    process.stderr.close()
    result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
    assert result.returncode == 2
    assert "bomb.png: its header declares more than 179 million pixels" in one_error_line(result)
    assert usage.ru_maxrss < 1_000_000  # kB; decoding it took 2.6 GB, the models alone take a few hundred MB
    assert not list((tmp_path / "out").iterdir())


def test_a_video_above_the_configured_pixel_count_is_refused_before_decoding(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", [np.zeros((120, 160, 3), np.uint8)] * 3)
    with pytest.raises(SourceError, match="160x120 is 0 million pixels a frame, more than source.max_pixels"):
        VideoFileSource(clip, realtime=False, max_pixels=10_000)
    config = tmp_path / "small.yaml"
    config.write_text("source:\n  max_pixels: 10000\n")
    result = run_dashcam("anonymize", str(clip), "-o", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 2 and "source.max_pixels" in one_error_line(result)


def test_anonymize_with_output_pointing_at_a_file_is_one_line(tmp_path, canary_clip):
    target = tmp_path / "not-a-folder"
    target.write_text("keep me")
    result = run_dashcam("anonymize", str(canary_clip), "-o", str(target))
    assert result.returncode == 2
    assert "is a file, not a folder" in one_error_line(result)
    assert target.read_text() == "keep me"


def test_anonymize_into_a_missing_folder_on_a_read_only_disk_is_one_line(tmp_path, canary_clip):
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only filesystem (tmpfs) needs root")
    disk = tmp_path / "ro"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = run_dashcam("anonymize", str(canary_clip), "-o", str(disk / "trip" / "out"))
    finally:
        subprocess.run(["umount", "-l", str(disk)])
    assert result.returncode == 2
    assert "cannot create the output folder" in one_error_line(result) and "Read-only file system" in result.stderr


def test_a_variable_frame_rate_file_is_not_called_truncated_but_a_cut_one_is(tmp_path, caplog):
    vfr = tmp_path / "vfr.mkv"  # Matroska stores no frame count: OpenCV estimates duration x nominal rate
    encoder = VideoEncoder(vfr, 160, 120, 30, EncoderSettings(preset="ultrafast"))
    t_ns = 0
    for index in range(90):
        encoder.write(redacted(index, t_ns))
        t_ns += 100_000_000 if index % 3 == 0 else 33_333_333  # every third frame waits three frames
    encoder.close()
    caplog.set_level(logging.WARNING)
    for path in (vfr, tmp_path / "cut.mkv"):
        if path.name == "cut.mkv":
            path.write_bytes(vfr.read_bytes()[: vfr.stat().st_size // 2])
        source = VideoFileSource(path, realtime=False)
        frames = 0
        while source.read() is not None:
            frames += 1
        source.close()
        if path == vfr:
            assert frames == 90 and "truncated" not in caplog.text
    assert "cut.mkv ended at" in caplog.text and "the file may be truncated" in caplog.text


def wait_for_handler(pid: int, signum: int, timeout_s: float = 60.0) -> None:
    """Until the process catches `signum` (its SigCgt mask in /proc): dashcam's own code is running.

    Before that the interpreter itself is starting, and a SIGTERM there kills it with the
    default action, which no program can change.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (signum - 1) & 1:
                return
        time.sleep(0.005)
    raise AssertionError("dashcam never installed its stop handlers")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_during_start_up_exits_130_with_one_line_and_stores_nothing(tmp_path, stop):
    """Signals at several moments of start-up (imports, C-extension initialization, model loading): each ends
    in one line and 130, or, once recording has begun, in a finished segment and 0. Never a traceback."""
    interrupted = 0
    for delay_s in (0.0, 0.1, 0.2, 0.3):
        recordings = tmp_path / f"rec{delay_s}"
        process = start_dashcam("run", "--recordings", str(recordings), "--fast")
        wait_for_handler(process.pid, signal.SIGTERM)  # installed first thing, with SIGINT's
        time.sleep(delay_s)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
        assert "Traceback" not in stderr, stderr
        if process.returncode == 130:
            interrupted += 1
            assert stderr.strip().splitlines()[-1] == f"dashcam: interrupted by {stop.name}"
            assert not recordings.exists() or not list(recordings.glob("dashcam_*"))
        else:
            assert process.returncode == 0 and "dashcam: recording" in stderr, stderr
    assert interrupted >= 2  # start-up takes about half a second here, so most land before recording
