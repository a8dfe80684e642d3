"""Opt-in upload against a real `rclone serve webdav` on 127.0.0.1: only the chosen anonymized segments (with
sidecars and manifests) leave, a transfer killed mid-file is resumed, and the remote copy verifies."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import UploadConfig
from edge.evidence.keys import PUBLIC_NAME, DeviceKey
from edge.evidence.verify import STATEMENT_NAME, verify
from edge.record.loop import LoopOptions
from edge.record.store import RecordingsFolder
from edge.upload.uploader import Uploader
from conftest import free_port, wait_for_port
from recording import FPS, dashcam_command, feed, run_config, run_dashcam
from test_evidence import S, signed_recorder

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None,
                                reason="rclone is not installed (apt install rclone; .ci/run does)")


@pytest.fixture
def webdav(tmp_path) -> Iterator[tuple[Path, Path]]:
    """A real WebDAV server (rclone serve) on 127.0.0.1 serving an empty folder; (served folder, rclone config)."""
    served = tmp_path / "server"
    served.mkdir()
    port = free_port()
    server = subprocess.Popen(["rclone", "serve", "webdav", str(served), "--addr", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, server, 20)
    config = tmp_path / "rclone.conf"
    config.write_text(f"[car-nas]\ntype = webdav\nurl = http://127.0.0.1:{port}\nvendor = other\n")
    yield served, config
    server.terminate()
    server.wait(timeout=10)


def test_locked_only_sends_exactly_the_locked_segments_and_the_remote_verifies(tmp_path, webdav):
    served, rclone_config = webdav
    key = DeviceKey.load_or_create(tmp_path / "keys")
    rec, _signer = signed_recorder(tmp_path / "rec", key, LoopOptions(lock_before_s=1.5, lock_after_s=0.0))
    uploader = Uploader.open(RecordingsFolder(rec.directory), UploadConfig(enabled=True, remote="car-nas:dashcam",
                                                        rclone_config=str(rclone_config), bandwidth="off"), key)
    rec.events.subscribe(uploader.on_segment)
    index = feed(rec, 0, 45)  # segments 0..3 finished
    rec.request_lock(t_mono_ns=int(2.5 * S))  # reaches back 1.5 s, into the finished segments
    feed(rec, index, 15)
    rec.close()
    result = uploader.upload_pending()
    uploader.close()
    locked_videos = list((tmp_path / "rec" / "locked").glob("*.mp4"))
    assert result.sent == len(locked_videos) >= 1 and result.failed == 0

    locked = sorted((tmp_path / "rec" / "locked").glob("dashcam_*"))
    sent = sorted((served / "dashcam").iterdir())
    assert {p.name for p in sent} == {p.name for p in locked} | {STATEMENT_NAME, PUBLIC_NAME}
    assert not any(p.name.startswith(("dashcam-", "index")) for p in sent)  # no queue, index or deletion log
    unlocked = {p.name for p in (tmp_path / "rec").glob("dashcam_*.mp4")}
    assert unlocked and not unlocked & {p.name for p in sent}
    report = verify(served / "dashcam", key.public_path)
    assert report.ok, report.failures
    assert report.verified == len(locked_videos)


def test_a_transfer_killed_mid_file_is_sent_again_and_checked(tmp_path, webdav):
    served, rclone_config = webdav
    state = tmp_path / "state"
    recordings = tmp_path / "rec"
    rec, _signer = signed_recorder(recordings, DeviceKey.load_or_create(state))
    feed(rec, 0, 3 * FPS)  # noise: about 150 kB a segment, several seconds each at 30 kB/s
    rec.close()
    videos = {p.name: p.stat().st_size for p in recordings.glob("dashcam_*.mp4")}
    assert len(videos) == 3
    config = tmp_path / "upload.yaml"
    config.write_text(f"evidence:\n  key_dir: {state}\nupload:\n  remote: car-nas:trip\n"
                      f"  rclone_config: {rclone_config}\n  select: all\n  bandwidth: 30K\n")

    process = subprocess.Popen(dashcam_command("upload", "--config", str(config), "--recordings", str(recordings)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    half_sent = None
    deadline = time.monotonic() + 60
    while half_sent is None and time.monotonic() < deadline and process.poll() is None:
        for path in (served / "trip").glob("*.mp4") if (served / "trip").is_dir() else []:
            if 0 < path.stat().st_size < videos[path.name]:
                half_sent = path.name
        time.sleep(0.05)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)  # dashcam and its rclone: the car switched off mid-file
    out, err = process.communicate(timeout=10)
    assert half_sent, f"no file was caught half-sent: {out!r} {err!r}"

    unlimited = config.read_text().replace("bandwidth: 30K", "bandwidth: 'off'")
    config.write_text(unlimited)
    resumed = run_dashcam("upload", "--config", str(config), "--recordings", str(recordings))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "uploads: 3 sent" in resumed.stdout
    assert {p.name: p.stat().st_size for p in (served / "trip").glob("*.mp4")} == videos
    checked = run_dashcam("verify", str(served / "trip"), "--key", str(state / PUBLIC_NAME))
    assert checked.returncode == 0, checked.stdout
    trips = run_dashcam("trips", "--config", str(config), "--recordings", str(recordings))
    assert "uploads: 3 sent" in trips.stdout


def test_uploads_wait_for_the_chosen_wifi(tmp_path, webdav):
    served, rclone_config = webdav
    key = DeviceKey.load_or_create(tmp_path / "keys")
    rec, _signer = signed_recorder(tmp_path / "rec", key)
    feed(rec, 0, 2 * FPS)
    rec.close()
    network = {"ssid": "motorway-services"}
    config = UploadConfig(enabled=True, remote="car-nas:d", rclone_config=str(rclone_config), select="all",
                          when="wifi", wifi_ssid="home", bandwidth="off")
    uploader = Uploader.open(RecordingsFolder(rec.directory), config, key, ssid=lambda: network["ssid"])
    waiting = uploader.upload_pending()
    assert waiting.waiting and waiting.sent == 0 and not (served / "d").exists()
    network["ssid"] = "home"
    assert uploader.upload_pending().sent == 2
    uploader.close()


def test_dashcam_run_with_uploads_on_sends_while_recording_and_queues_the_rest(tmp_path, webdav):
    served, rclone_config = webdav
    config = run_config(tmp_path, clip_seconds=6, record_yaml="  segment_seconds: 1\n"
                        f"evidence:\n  key_dir: {tmp_path / 'state'}\n"
                        f"upload:\n  enabled: true\n  remote: car-nas:live\n  rclone_config: {rclone_config}\n"
                        "  select: all\n  bandwidth: 'off'\n")
    recordings = tmp_path / "rec"
    recorded = run_dashcam("run", "--config", str(config), "--recordings", str(recordings))
    assert recorded.returncode == 0, recorded.stderr
    assert list((served / "live").glob("*.mp4")), "nothing was sent while recording"
    finished = run_dashcam("upload", "--config", str(config), "--recordings", str(recordings))
    assert finished.returncode == 0 and "uploads: 6 sent" in finished.stdout, finished.stdout + finished.stderr
    assert len(list((served / "live").glob("*.manifest"))) == 6


def test_hashes_the_remote_reports_are_compared_with_the_local_files(tmp_path):
    """rclone's local backend reports MD5 and SHA-1 (as SFTP and most clouds do); WebDAV above reports none."""
    (tmp_path / "rclone.conf").write_text("[disk]\ntype = local\n")
    key = DeviceKey.load_or_create(tmp_path / "keys")
    rec, _signer = signed_recorder(tmp_path / "rec", key)
    feed(rec, 0, FPS)
    rec.close()
    config = UploadConfig(enabled=True, remote=f"disk:{tmp_path / 'usb'}", rclone_config=str(tmp_path / "rclone.conf"),
                          select="all", bandwidth="off")
    uploader = Uploader.open(RecordingsFolder(rec.directory), config, key)
    assert uploader.upload_pending().sent == 1
    [row] = uploader.queue.rows("done")
    uploader.close()
    assert set(row.checked.split("+")) >= {"md5", "sha1", "size"}
    assert verify(tmp_path / "usb", key.public_path).ok
