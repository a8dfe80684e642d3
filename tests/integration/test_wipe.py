"""`dashcam wipe`: erases segments, sidecars, partials, locked/ and the index; keeps strangers'
files; asks first unless --yes; refuses while a recorder holds the folder."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from edge.cli import main
from edge.record.lease import RecorderLease
from edge.record.store import RecordingsFolder

OURS = ["dashcam_2026-11-20_08-00-00Z.mp4", "dashcam_2026-11-20_08-00-00Z.json",
        "dashcam_2026-11-20_08-01-00Z.mp4.partial", "dashcam_2026-11-20_08-01-00Z.json.partial",
        "index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm",
        "locked/dashcam_2026-11-19_17-00-00Z.mp4", "locked/dashcam_2026-11-19_17-00-00Z.json"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    (root / "locked").mkdir(parents=True)
    for name in OURS:
        (root / name).write_bytes(b"x" * 1000)
    (root / "notes.txt").write_text("mine", encoding="utf-8")
    return root


def test_wipe_yes_erases_all_footage_and_the_index(folder: Path, capsys):
    assert main(["wipe", "--recordings", str(folder), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "9 files" in out and "kept (not dashcam's)" in out and "notes.txt" in out
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["locked", "notes.txt"]
    assert not (folder / "dashcam.pid").exists()


def test_wipe_asks_and_a_no_keeps_everything(folder: Path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    assert main(["wipe", "--recordings", str(folder)]) == 1
    assert "nothing erased" in capsys.readouterr().out
    assert all((folder / name).exists() for name in OURS)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal, no answer: nothing erased
    assert main(["wipe", "--recordings", str(folder)]) == 1
    assert all((folder / name).exists() for name in OURS)


def test_wipe_after_typing_yes(folder: Path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    assert main(["wipe", "--recordings", str(folder)]) == 0
    assert not any((folder / name).exists() for name in OURS)


def test_wipe_refuses_while_a_recorder_holds_the_folder(folder: Path, capsys):
    lease = RecorderLease.acquire(RecordingsFolder(folder))
    try:
        assert main(["wipe", "--recordings", str(folder), "--yes"]) == 2
    finally:
        lease.release()
    err = capsys.readouterr().err
    assert "is recording into" in err and "systemctl stop dashcam" in err
    assert all((folder / name).exists() for name in OURS)


def test_wipe_missing_folder_is_a_user_error(tmp_path: Path, capsys):
    assert main(["wipe", "--recordings", str(tmp_path / "nope"), "--yes"]) == 2
    assert "no recordings folder" in capsys.readouterr().err
