"""Loop recording with real encoders and files: budget rotation around a locked segment, stopping rather than
deleting evidence, age retention, `dashcam lock` / `trips` / `export` as a user runs them, and storage errors."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from edge.record.index import TripsIndex
from edge.record.retention import RetentionPolicy, StorageFullError
from edge.record.encoder import EncoderSettings
from edge.record.lease import running_recorder
from edge.record.loop import LoopOptions, LoopStore
from edge.record.segments import SegmentRecorder
from edge.record.store import RecordingsFolder, segment_stem
from recording import FPS, decodable_frames, feed, recorder, run_config, run_dashcam, start_dashcam

S = 1_000_000_000


def segment_bytes(tmp_path: Path) -> int:
    """Size of one 1-second segment (video + sidecar) of the test frames."""
    rec = recorder(tmp_path / "calibrate")
    feed(rec, 0, FPS)
    rec.close()
    return sum(s.size_bytes for s in RecordingsFolder(tmp_path / "calibrate").segments())


def loop_only(max_bytes: int, before_s: float = 0.0, after_s: float = 0.0) -> LoopOptions:
    return LoopOptions(RetentionPolicy.from_preset("loop-only", 72, max_bytes, 0), before_s, after_s)


def test_small_budget_rotates_oldest_first_and_keeps_the_locked_segment(tmp_path):
    size = segment_bytes(tmp_path)
    budget = int(3.5 * size)
    rec = recorder(tmp_path / "rec", loop_only(budget))
    index = feed(rec, 0, 25)  # segments 0 and 1 finished, segment 2 being written
    rec.request_lock(t_mono_ns=int(2.45 * S))  # during segment 2; no seconds before or after
    feed(rec, index, 55)  # 8 segments in all
    rec.close()

    written = [info.video_path.name for info in rec.finished]
    assert len(written) == 8
    folder = RecordingsFolder(tmp_path / "rec")
    left = folder.segments()
    locked = [s for s in left if s.locked]
    assert [s.name for s in locked] == [written[2]] and locked[0].video_path.parent == folder.locked_dir
    assert json.loads(locked[0].sidecar_path.read_text())["locked"] is True
    assert decodable_frames(locked[0].video_path) == FPS
    unlocked = [s.name for s in left if not s.locked]
    assert unlocked and unlocked == written[-len(unlocked):]  # the newest survive, the oldest went first
    assert sum(s.size_bytes for s in left) <= budget
    assert not list(folder.root.glob("*.partial"))
    index_rows = TripsIndex.open(folder, 300).segments()
    assert sorted(row.name for row in index_rows) == sorted(s.name for s in left)
    assert [row.name for row in index_rows if row.locked] == [written[2]]


def test_when_only_locked_segments_are_left_recording_stops_instead_of_deleting(tmp_path):
    size = segment_bytes(tmp_path)
    rec = recorder(tmp_path / "rec", loop_only(int(2.5 * size), before_s=0, after_s=60))
    rec.request_lock(t_mono_ns=0)  # everything from now on is evidence
    with pytest.raises(StorageFullError, match="only locked segments are left"):
        feed(rec, 0, 5 * FPS)
    rec.close()
    left = RecordingsFolder(tmp_path / "rec").segments()
    assert len(left) == 2 and all(s.locked for s in left)
    assert all(decodable_frames(s.video_path) == FPS for s in left)


def test_lock_reaches_back_and_forward_across_segments(tmp_path):
    rec = recorder(tmp_path / "rec", loop_only(0, before_s=1.5, after_s=1.0))
    index = feed(rec, 0, 45)  # segments 0..3 finished, 4 started
    rec.request_lock(t_mono_ns=int(4.5 * S))  # window 3.0 .. 5.5 s: segments 3, 4 and 5
    feed(rec, index, 35)
    rec.close()
    locked = [info.video_path.name for info in rec.finished if info.locked]
    assert locked == [segment_stem(dt.datetime(2026, 11, 21, 8, 0, n, tzinfo=dt.timezone.utc)) + ".mp4"
                      for n in (3, 4, 5)]


def test_footage_older_than_72_hours_is_deleted_at_start_but_locked_footage_is_kept(tmp_path):
    folder = RecordingsFolder(tmp_path / "rec")
    folder.create()
    now = dt.datetime.now(dt.timezone.utc)
    for name, target in ((segment_stem(now - dt.timedelta(hours=80)), folder.root),
                         (segment_stem(now - dt.timedelta(hours=1)), folder.root),
                         (segment_stem(now - dt.timedelta(hours=90)), folder.locked_dir)):
        (target / f"{name}.mp4").write_bytes(b"\0" * 100)
        (target / f"{name}.json").write_text("{}")
    rec = recorder(folder.root, LoopOptions(RetentionPolicy.from_preset("eu-72h", 72, 0, 0)))
    rec.close()
    ages = sorted(round((now - s.start_utc).total_seconds() / 3600) for s in folder.segments())
    assert ages == [1, 90]


def wait_for(predicate, timeout: float = 60.0, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(step)


def test_dashcam_lock_from_another_shell_then_trips_and_export(tmp_path):
    recordings = tmp_path / "rec"
    config = run_config(tmp_path, clip_seconds=40, record_yaml=f"  directory: {recordings}\n  segment_seconds: 1\n"
                        "  lock_before_seconds: 1\n  lock_after_seconds: 1\n")
    process = start_dashcam("run", "--config", str(config))
    try:
        wait_for(lambda: len(list(recordings.glob("dashcam_*.mp4"))) >= 3)
        result = run_dashcam("lock", "--config", str(config))
        assert result.returncode == 0, result.stderr
        assert "lock requested" in result.stdout
        # The current segment and its neighbours within 1 s: three on a quiet machine; under load a
        # dropped-frame gap can split or stretch segments, so the window may hold only two. The exact
        # window is checked in-process (test_lock_reaches_back_and_forward_across_segments).
        wait_for(lambda: len(list((recordings / "locked").glob("*.mp4"))) >= 2)
        time.sleep(2.5)  # past the 1 s after the request: the "after" segment is locked too
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    locked = sorted((recordings / "locked").glob("*.mp4"))
    assert 2 <= len(locked) <= 4
    for video in locked:
        sidecar = json.loads(video.with_suffix(".json").read_text())
        assert sidecar["locked"] is True and sidecar["locked_at_utc"].endswith("Z")
        assert decodable_frames(video) == sidecar["frame_count"]
    for sidecar in recordings.glob("dashcam_*.json"):
        assert json.loads(sidecar.read_text())["locked"] is False

    trips = run_dashcam("trips", "--config", str(config), "--segments")
    assert trips.returncode == 0, trips.stderr
    assert "locked segments" in trips.stdout
    for video in locked:
        assert video.name in trips.stdout

    out = tmp_path / "usb"
    exported = run_dashcam("export", "1", "--config", str(config), "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    all_segments = list(recordings.glob("dashcam_*.mp4")) + locked
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(p.name for p in all_segments)
    assert (out / "trip-1.gpx").read_text().startswith("<?xml")
    one = run_dashcam("export", locked[0].stem, "--config", str(config), "--output", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(
        [locked[0].name, locked[0].with_suffix(".json").name, locked[0].stem + ".gpx",
         locked[0].with_suffix(".manifest").name, "device-key.pub.pem", "README-verify.txt", "export-statement.json"])
    # Locked from another shell while recording: the signed amendments make both exports verify.
    for folder in (out, tmp_path / "one"):
        verified = run_dashcam("verify", str(folder))
        assert verified.returncode == 0, verified.stdout
        assert verified.stdout.count(" locked") >= (len(locked) if folder == out else 1)


def test_lock_with_nothing_recording_is_a_clear_error(tmp_path):
    result = run_dashcam("lock", "--recordings", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nothing is recording" in result.stderr


def test_corrupt_index_is_rebuilt_by_dashcam_trips(tmp_path):
    recordings = tmp_path / "rec"
    config = run_config(tmp_path, clip_seconds=3, realtime=False,
                        record_yaml=f"  directory: {recordings}\n  segment_seconds: 1\n")
    result = run_dashcam("run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    (recordings / "index.sqlite3").write_bytes(b"\x13garbage, not a database" * 200)
    trips = run_dashcam("trips", "--config", str(config), "--segments")
    assert trips.returncode == 0, trips.stderr
    assert "rebuilding" in trips.stderr
    assert len([line for line in trips.stdout.splitlines() if line.strip().startswith("dashcam_")]) == 3
    with sqlite3.connect(recordings / "index.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 3


def make_read_only(path: Path) -> bool:
    """Read-only for this process: permissions for a normal user, the immutable flag for root."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return True
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def undo_read_only(path: Path) -> None:
    if os.geteuid() != 0:
        path.chmod(0o755)
    else:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_read_only_recordings_folder_is_one_clear_error(tmp_path):
    recordings = tmp_path / "rec"
    recordings.mkdir()
    if not make_read_only(recordings):
        pytest.skip("cannot make a folder read-only here")
    try:
        config = run_config(tmp_path, clip_seconds=3, record_yaml=f"  directory: {recordings}\n")
        started = time.monotonic()
        result = run_dashcam("run", "--config", str(config), timeout=60)
    finally:
        undo_read_only(recordings)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(recordings) in result.stderr and "dashcam: error:" in result.stderr
    assert time.monotonic() - started < 60


def test_vanished_recordings_folder_ends_the_run_with_a_clear_error(tmp_path):
    """The card is pulled mid-run: one clear line, exit 2, no crash loop and no folder recreated behind our back."""
    recordings = tmp_path / "rec"
    config = run_config(tmp_path, clip_seconds=40, record_yaml=f"  directory: {recordings}\n  segment_seconds: 1\n")
    process = start_dashcam("run", "--config", str(config))
    try:
        wait_for(lambda: len(list(recordings.glob("dashcam_*.mp4"))) >= 1)
        recordings.rename(tmp_path / "elsewhere")  # gone from its path at once, as when a card is pulled
        shutil.rmtree(tmp_path / "elsewhere", ignore_errors=True)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "dashcam: error:" in stderr and str(recordings) in stderr
    assert not recordings.exists()


def test_folder_turning_read_only_mid_run_ends_the_run_with_a_clear_error(tmp_path):
    """A card remounted read-only after errors: one clear line and exit 2, not a retry loop."""
    recordings = tmp_path / "rec"
    config = run_config(tmp_path, clip_seconds=40, record_yaml=f"  directory: {recordings}\n  segment_seconds: 1\n")
    process = start_dashcam("run", "--config", str(config))
    try:
        wait_for(lambda: len(list(recordings.glob("dashcam_*.mp4"))) >= 1)
        if not make_read_only(recordings):
            pytest.skip("cannot make a folder read-only here")
        _, stderr = process.communicate(timeout=30)
    finally:
        undo_read_only(recordings)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "dashcam: error:" in stderr and str(recordings) in stderr


def test_a_full_budget_with_nothing_deletable_stops_the_run_with_one_clear_line(tmp_path):
    """`keep` never deletes: at the budget the run ends (exit 2) and says why, and the footage is all there."""
    recordings = tmp_path / "rec"
    config = run_config(tmp_path, clip_seconds=6, realtime=False, record_yaml=(
        f"  directory: {recordings}\n  segment_seconds: 1\n  retention: keep\n  max_bytes: 1000\n"))
    result = run_dashcam("run", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "recording stopped" in result.stderr and "retention is 'keep'" in result.stderr
    kept = list(recordings.glob("dashcam_*.mp4"))
    assert kept and all(decodable_frames(v) == FPS for v in kept)
    assert not list(recordings.glob("*.partial"))


@pytest.mark.skipif(importlib.util.find_spec("gpiod") is not None, reason="gpiod is installed here")
def test_a_gpio_lock_button_without_gpiod_is_one_clear_error(tmp_path):
    config = run_config(tmp_path, clip_seconds=2, realtime=False,
                        record_yaml=f"  directory: {tmp_path / 'rec'}\n  lock_gpio_line: gpiochip0:17\n")
    result = run_dashcam("run", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "pip install gpiod" in result.stderr


def test_building_a_recorder_touches_no_disk_and_opening_the_store_does_the_start_up(tmp_path):
    """Start-up I/O (folder, lease, recovery, index, retention) is `LoopStore.open`'s; constructors do none."""
    folder = tmp_path / "rec"
    SegmentRecorder(LoopStore(RecordingsFolder(folder), LoopOptions()), 160, 120, 10, 1.0,
                    EncoderSettings(preset="ultrafast"), {}, "test")
    assert not folder.exists()
    store = LoopStore.open(folder)
    try:
        assert (folder / "locked").is_dir() and (folder / "index.sqlite3").is_file()
        assert running_recorder(store.folder) == os.getpid()
    finally:
        store.close()
    assert running_recorder(RecordingsFolder(folder)) is None


def test_a_lock_with_no_seconds_around_it_that_falls_between_two_segments_still_locks_one(tmp_path):
    """Frames are 0.1 s apart: a request at 0.95 s falls after segment 0's last frame and before segment 1's
    first. With lock_before/after 0 no frame lies in the window; the footage right after it is locked."""
    rec = recorder(tmp_path / "rec", loop_only(0))
    index = feed(rec, 0, 10)  # segment 0: frames at 0.0 .. 0.9 s
    rec.request_lock(t_mono_ns=int(0.95 * S))
    feed(rec, index, 25)
    rec.close()
    assert [info.locked for info in rec.finished] == [False, True, False, False]
