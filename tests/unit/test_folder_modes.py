"""Folders dashcam makes are its user's alone (0700), like the files in them (0600)."""
from __future__ import annotations

import stat
from pathlib import Path

from edge.record.atomic import FOLDER_MODE, write_atomic
from edge.record.store import RecordingsFolder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_recordings_and_locked_folders_are_made_0700(tmp_path):
    folder = RecordingsFolder(tmp_path / "rec")
    folder.create()
    assert FOLDER_MODE == 0o700
    assert _mode(folder.root) == 0o700 and _mode(folder.locked_dir) == 0o700


def test_a_folder_made_for_an_atomic_write_is_0700(tmp_path):
    written = write_atomic(tmp_path / "out" / "trip-1.gpx", b"<gpx/>")
    assert _mode(written.parent) == 0o700 and _mode(written) == 0o600
