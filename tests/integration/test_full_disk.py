"""A disk that really fills (a small tmpfs; the kernel returns ENOSPC): recording frees the oldest unlocked
footage and goes on, never touches locked footage, stops with one line only when nothing more may go,
and starts again on a full disk. The fault-injection test fills the disk under a real `dashcam run`."""
from __future__ import annotations

import hashlib
import logging
import signal
import time
from pathlib import Path

import pytest

from conftest import fill_disk, free_bytes
from edge.errors import StorageError
from edge.record.atomic import write_atomic
from edge.record.index import TripsIndex
from edge.record.retention import RetentionPolicy, StorageFullError
from edge.record.loop import LoopOptions
from edge.record.store import RecordingsFolder
from recording import FPS, decodable_frames, feed, recorder, run_config, run_dashcam, start_dashcam

S = 1_000_000_000
ONE_SEGMENT = 150_000  # a 1 s segment of the noisy test frames is about 150 kB


def loop_only(after_s: float = 0.0) -> LoopOptions:
    """No byte budget at all: only the kernel says when the disk is full."""
    return LoopOptions(RetentionPolicy.from_preset("loop-only", 72, 0, 0), 0.0, after_s)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_disk_that_fills_before_any_budget_frees_the_oldest_unlocked_segment_and_recording_goes_on(small_disk):
    disk = small_disk(4)
    rec = recorder(disk / "rec", loop_only())
    index = feed(rec, 0, 15)  # segment 0 finished, segment 1 being written
    rec.request_lock(t_mono_ns=int(1.45 * S))  # segment 1 is evidence
    index = feed(rec, index, 25)  # segments 0..3 finished
    locked = RecordingsFolder(disk / "rec").segments()[1]
    fill_disk(disk, leave_bytes=ONE_SEGMENT // 2)  # less than one more segment fits
    feed(rec, index, 60)  # six more segments: every one needs space freed first
    rec.close()

    written = [info.video_path.name for info in rec.finished]
    left = RecordingsFolder(disk / "rec").segments()
    assert rec.deleted_for_full_disk >= 3
    assert [s.name for s in left if s.locked] == [written[1]]
    assert digest(left[[s.name for s in left].index(written[1])].video_path) == digest(locked.video_path)
    unlocked = [s.name for s in left if not s.locked]
    assert written[0] not in unlocked and unlocked == written[-len(unlocked):]  # the oldest went, the newest stay
    assert all(decodable_frames(s.video_path) == FPS for s in left)  # no segment was torn by the full disk
    assert not list((disk / "rec").glob("*.partial"))
    rows = TripsIndex.open(RecordingsFolder(disk / "rec"), 300).segments()
    assert sorted(r.name for r in rows) == sorted(s.name for s in left)


def test_a_full_disk_holding_only_locked_footage_stops_with_one_line_and_restarts_once_space_is_freed(small_disk):
    disk = small_disk(4)
    rec = recorder(disk / "rec", loop_only(after_s=600))
    rec.request_lock(t_mono_ns=0)  # everything is evidence
    index = feed(rec, 0, 2 * FPS)
    filler = fill_disk(disk, leave_bytes=ONE_SEGMENT // 2)
    with pytest.raises(StorageFullError) as stopped:
        feed(rec, index, 10 * FPS)
    rec.close()
    message = str(stopped.value)
    assert message.startswith(f"recording stopped: the disk holding {disk / 'rec'} is full")
    assert "only locked segments are left" in message
    locked = RecordingsFolder(disk / "rec").segments()
    assert len(locked) == 2 and all(s.locked and decodable_frames(s.video_path) == FPS for s in locked)

    with pytest.raises(StorageFullError, match="is full and only locked segments are left"):
        recorder(disk / "rec", loop_only())  # still full: the start says so, and keeps the leftover for later

    filler.unlink()  # the owner exported and removed other files
    rec = recorder(disk / "rec", loop_only())
    feed(rec, 0, FPS, start_ns=100 * S)
    rec.close()
    after = RecordingsFolder(disk / "rec").segments()
    assert {s.name for s in locked} <= {s.name for s in after if s.locked}
    assert any(s.name == rec.finished[0].video_path.name for s in after)
    assert not list((disk / "rec").glob("*.partial"))


def test_starting_on_a_full_disk_recovers_the_leftover_and_records(small_disk, caplog):
    """The issue's lock-out: a start on a full disk recovered the leftover, then died in SQLite (exit 1, forever)."""
    disk = small_disk(4)
    rec = recorder(disk / "rec", loop_only())
    feed(rec, 0, 35)  # three segments and a half-written fourth
    rec._current.encoder._handle.sync()  # as after a power cut: the fourth stays a .partial
    rec._store._lease.release()  # the process "died": its lock goes with it
    (disk / "rec" / "index.sqlite3").unlink()  # the index must be rebuilt on a full disk too
    fill_disk(disk)
    caplog.set_level(logging.WARNING)
    rec = recorder(disk / "rec", loop_only())
    feed(rec, 0, 2 * FPS, start_ns=100 * S)
    rec.close()
    assert rec.deleted_for_full_disk >= 1
    assert "the disk is full: deleting the oldest unlocked segment" in caplog.text
    left = RecordingsFolder(disk / "rec").segments()
    assert rec.finished and all(info.video_path.exists() for info in rec.finished)
    assert all(decodable_frames(s.video_path) > 0 for s in left)


def test_trips_index_writes_that_fail_never_raise_and_readers_still_see_every_segment(small_disk, caplog):
    disk = small_disk(4)
    rec = recorder(disk / "rec", loop_only())
    feed(rec, 0, 20)
    rec.close()
    folder = RecordingsFolder(disk / "rec")
    index = TripsIndex.open(folder, 300)
    fill_disk(disk)
    caplog.set_level(logging.WARNING)
    for _ in range(200):  # the WAL grows until SQLite says the disk is full
        for segment in folder.segments():
            index.add(segment)
    index.remove([folder.segments()[0].name])
    index.close()
    assert "the trips index could not be updated" in caplog.text
    assert caplog.text.count("the trips index could not be updated") == 1  # said once, not per write
    reader = TripsIndex.open(folder, 300, writable=False)
    assert sorted(r.name for r in reader.segments()) == sorted(s.name for s in folder.segments())


# ---- the fault-injection test: a real `dashcam run`, a disk filled under it, a power cut, a restart -----------

def wait_for(predicate, process, timeout: float = 60.0) -> None:
    """Poll until `predicate()`; a recorder that exits meanwhile fails the test with its stderr."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"dashcam exited {process.returncode}: {process.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_a_disk_filled_during_a_real_run_keeps_recording_and_a_restart_after_a_power_cut_records_again(
        small_disk, tmp_path):
    disk = small_disk(6)
    recordings = disk / "rec"
    record = f"  directory: {recordings}\n  segment_seconds: 1\n  retention: loop-only\n  min_free_bytes: 0\n" \
             "  lock_before_seconds: 0\n  lock_after_seconds: 0\n"
    # Earlier footage: two unlocked segments and one locked (from a first run and `dashcam lock`).
    first = start_dashcam("run", "--config", str(run_config(tmp_path, clip_seconds=60, record_yaml=record)))
    try:
        wait_for(lambda: len(list(recordings.glob("dashcam_*.mp4"))) >= 2, first)
        assert run_dashcam("lock", "--recordings", str(recordings)).returncode == 0
        wait_for(lambda: len(list((recordings / "locked").glob("dashcam_*.mp4"))) >= 1, first)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    folder = RecordingsFolder(recordings)
    before = folder.segments()
    locked = {s.name: digest(s.video_path) for s in before if s.locked}
    oldest_unlocked = [s.name for s in before if not s.locked][:2]
    assert locked and len(oldest_unlocked) == 2

    second = start_dashcam("run", "--config", str(run_config(tmp_path, clip_seconds=60, record_yaml=record)))
    try:
        wait_for(lambda: len(folder.segments()) > len(before), second)
        fill_disk(disk, leave_bytes=ONE_SEGMENT // 2)  # another program fills the card under the recorder
        filled_at = {s.name for s in folder.segments()}
        wait_for(lambda: len({s.name for s in folder.segments()} - filled_at) >= 4, second)  # four new segments since
        assert second.poll() is None, second.communicate()[1]  # still recording
        second.kill()  # power cut, with the disk full
        _, stderr = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
    assert "the disk is full: deleting the oldest unlocked segment" in stderr
    assert "Traceback" not in stderr
    assert free_bytes(disk) < ONE_SEGMENT

    third = run_dashcam("run", "--config", str(run_config(tmp_path, clip_seconds=60, record_yaml=record)),
                        "--max-frames", str(3 * FPS), "--fast")
    assert third.returncode == 0, third.stderr
    assert "Traceback" not in third.stderr
    after = folder.segments()
    assert {s.name: digest(s.video_path) for s in after if s.locked} == locked  # evidence untouched
    assert not set(oldest_unlocked) & {s.name for s in after}  # the oldest unlocked footage went first
    newest = [line for line in third.stdout.splitlines() if "dashcam_" in line]
    assert len(newest) == 3 and all(Path(line.strip()).exists() for line in newest)  # recording again
    assert all(decodable_frames(Path(line.strip())) == FPS for line in newest)
    assert not list(recordings.glob("*.partial"))


def test_space_that_never_comes_back_ends_the_retries_instead_of_emptying_the_loop(small_disk):
    """Deleted files another program still holds open keep their blocks: after a few tries, one clear error."""
    disk = small_disk(1)
    fill_disk(disk)
    freed = []
    with pytest.raises(StorageError, match="the disk stays full after freeing space 8 times"):
        write_atomic(disk / "sidecar.json", b"x" * 10_000, make_room=lambda: freed.append(1))
    assert len(freed) == 8
    assert not list(disk.glob("*.partial"))
