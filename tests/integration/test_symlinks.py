"""Symlinks planted where dashcam writes or reads (it runs as root in the service): real links, real files.
Nothing is ever written or exported through a link; the link's target is left exactly as it was."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.errors import StorageError
from edge.record.atomic import write_atomic
from edge.record.encoder import EncoderSettings, VideoEncoder
from edge.record.store import RecordingsFolder
from recording import SIZE, FPS, feed, recorder, redacted, run_dashcam

SECRET = b"root:$6$secret-hash:19000:0:99999:7:::\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside every dashcam folder, standing in for /etc/shadow."""
    path = tmp_path / "etc" / "shadow"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def assert_untouched(victim: Path) -> None:
    assert victim.read_bytes() == SECRET


def test_a_partial_link_planted_in_the_output_folder_is_replaced_not_written_through(tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    (out / "trip.gpx.partial").symlink_to(victim)
    write_atomic(out / "trip.gpx", b"<gpx/>")
    assert_untouched(victim)
    assert (out / "trip.gpx").read_bytes() == b"<gpx/>" and not (out / "trip.gpx").is_symlink()
    assert not os.path.lexists(out / "trip.gpx.partial")


def test_a_final_name_that_is_a_link_is_replaced_by_the_file_not_followed(tmp_path, victim):
    (tmp_path / "trip.gpx").symlink_to(victim)
    write_atomic(tmp_path / "trip.gpx", b"<gpx/>")
    assert_untouched(victim)
    assert not (tmp_path / "trip.gpx").is_symlink()


def test_the_video_encoder_never_writes_through_a_planted_partial(tmp_path, victim):
    final = tmp_path / "dashcam_2026-11-21_08-00-00Z.mp4"
    Path(f"{final}.partial").symlink_to(victim)
    encoder = VideoEncoder(final, *SIZE, FPS, EncoderSettings(preset="ultrafast"), crash_safe=True)
    for index in range(FPS):
        encoder.write(redacted(index, index * 100_000_000))
    encoder.close()
    assert_untouched(victim)
    assert final.stat().st_size > 1000 and not final.is_symlink()


def test_recovery_removes_links_planted_in_the_recordings_folder_and_the_index_is_rebuilt(tmp_path, victim):
    recordings = tmp_path / "rec"
    first = recorder(recordings)
    feed(first, 0, FPS)
    first.close()
    (recordings / "dashcam_2026-11-21_09-00-00Z.mp4.partial").symlink_to(victim)
    (recordings / "dashcam_2026-11-21_09-00-01Z.json.partial").symlink_to(victim)
    (recordings / "index.sqlite3").unlink()
    (recordings / "index.sqlite3").symlink_to(victim)
    (recordings / "index.sqlite3-wal").symlink_to(victim)
    second = recorder(recordings)
    feed(second, 0, FPS, start_ns=100 * 10**9)
    second.close()
    assert_untouched(victim)
    assert not [p for p in recordings.iterdir() if p.is_symlink()]
    assert (recordings / "index.sqlite3").is_file() and not (recordings / "index.sqlite3").is_symlink()
    assert len(RecordingsFolder(recordings).segments()) == 2


def test_a_pid_file_that_is_a_link_is_one_clear_error(tmp_path, victim):
    recordings = tmp_path / "rec"
    recordings.mkdir()
    (recordings / "dashcam.pid").symlink_to(victim)
    with pytest.raises(StorageError, match="dashcam.pid is a symbolic link: remove it"):
        recorder(recordings)
    assert_untouched(victim)


def test_export_copies_only_regular_files_of_the_recordings_folder(tmp_path, victim):
    recordings = tmp_path / "rec"
    rec = recorder(recordings)
    feed(rec, 0, 2 * FPS)
    rec.close()
    real = rec.finished[0].video_path
    planted = recordings / "dashcam_2026-11-21_08-00-00Z_9.mp4"  # sorts into the same trip as the real ones
    planted.symlink_to(victim)
    planted.with_suffix(".json").symlink_to(victim)
    real.with_suffix(".json").unlink()
    real.with_suffix(".json").symlink_to(victim)  # a real segment whose sidecar was swapped for a link

    by_name = run_dashcam("export", planted.stem, "--recordings", str(recordings), "-o", str(tmp_path / "a"))
    assert by_name.returncode == 2 and "no segment or trip named" in by_name.stderr, by_name.stderr
    trip = run_dashcam("export", "1", "--recordings", str(recordings), "-o", str(tmp_path / "b"))
    assert trip.returncode == 0, trip.stderr
    exported = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert planted.name not in exported and real.name in exported
    assert real.with_suffix(".json").name not in exported
    for path in (tmp_path / "b").iterdir():
        assert SECRET not in path.read_bytes()
    assert_untouched(victim)
