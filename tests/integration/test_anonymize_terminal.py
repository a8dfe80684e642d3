"""`dashcam anonymize` on a real pseudo-terminal: a progress bar with the time left instead of a line per
input, and the same summary; the plain lines when its output is not a terminal are tested elsewhere."""
from __future__ import annotations

import os
import pty
import subprocess
import time

import cv2

from conftest import small_frames
from edge.camera import SAMPLE_VIDEO
from recording import dashcam_command


def test_on_a_terminal_a_progress_bar_replaces_the_line_per_input(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    frames = small_frames(SAMPLE_VIDEO, (640, 360), [0, 60, 120])
    for index, image in frames.items():
        cv2.imwrite(str(folder / f"photo_{index}.jpg"), image)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(dashcam_command("anonymize", str(folder), "--output", str(tmp_path / "out"),
                                               "--jobs", "1"), stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert "[####################] 3/3 tasks (100%)" in text
    assert "3 of 3 inputs anonymized" in text and "throughput:" in text
    assert "photo_0.jpg ->" not in text  # no line per input on a terminal
