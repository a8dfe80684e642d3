"""Signed evidence on real recordings: every finished segment is signed into one chain, locks are amended,
deletions logged, and `dashcam verify` reports any flipped byte, removed segment or reordered file."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import SourceError
from edge.evidence.chain import ManifestFile, SegmentSigner, SigningContext, amend, read_deletions
from edge.evidence.records import RecordError
from edge.evidence.keys import PUBLIC_NAME, DeviceKey
from edge.evidence.verify import verify
from edge.record.encoder import EncoderSettings
from edge.record.loop import LoopOptions, LoopStore
from edge.record.retention import RetentionPolicy
from edge.record.segments import SegmentRecorder
from edge.record.store import CHAIN_HEAD_NAME, DELETIONS_NAME, RecordingsFolder, read_sidecar
from recording import FPS, SIZE, feed, recorder, run_config, run_dashcam, start_dashcam

S = 1_000_000_000
# Each one-second test segment is about 150 kB: this budget keeps about two.
SMALL_BUDGET = LoopOptions(RetentionPolicy.from_preset("loop-only", 72, max_bytes=450_000, min_free_bytes=0))


def signed_recorder(directory: Path, key: DeviceKey, loop: LoopOptions | None = None
                    ) -> tuple[SegmentRecorder, SegmentSigner]:
    """The recorder and signer wired as `dashcam run` wires them."""
    store = LoopStore.open(directory, loop)
    signer = SegmentSigner.open(store.folder, key, SigningContext("c0ffee", "privacy-dashcam test"))
    rec = SegmentRecorder(store, *SIZE, FPS, 1.0, EncoderSettings(preset="ultrafast"), {"scripted": "0"}, "test")
    signer.watch(store, rec.events)
    return rec, signer


@pytest.fixture
def key(tmp_path) -> DeviceKey:
    return DeviceKey.load_or_create(tmp_path / "keys")


@pytest.fixture
def recorded(tmp_path, key) -> Path:
    """Four finished one-second segments, signed."""
    rec, signer = signed_recorder(tmp_path / "rec", key)
    feed(rec, 0, 4 * FPS)
    rec.close()
    assert signer.signed == 4 and signer.failed == 0
    return tmp_path / "rec"


def test_every_finished_segment_is_signed_into_one_chain_that_verifies(recorded, key):
    manifests = sorted(recorded.glob("*.manifest"))
    assert len(manifests) == 4
    files = [ManifestFile.read(p) for p in manifests]
    assert [f.sequence for f in files] == [1, 2, 3, 4]
    assert files[0].manifest.payload["previous"] is None
    assert all(b.manifest.payload["previous"] == a.manifest.sha256 for a, b in zip(files, files[1:]))
    first = files[0].manifest.payload
    sidecar = read_sidecar(manifests[0].with_suffix(".json"))
    assert first["frame_count"] == sidecar.frame_count == FPS
    assert first["redaction"]["whole_frame_redacted_frames"] == sidecar.redaction.whole_frame_redacted_frames
    assert first["models"] == {"scripted": "0"} and first["config_sha256"] == "c0ffee"
    assert first["device"] == key.fingerprint and not first["signed_after_restart"]
    head = json.loads((recorded / CHAIN_HEAD_NAME).read_text())["payload"]
    assert head["sequence"] == 4 and head["manifest"] == files[-1].manifest.sha256

    report = verify(recorded, key.public_path)
    assert report.ok, report.failures
    assert report.verified == 4 and len([line for line in report.lines if line.startswith("OK")]) == 4


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("dashcam_*.mp4"))


def _remove(video: Path) -> None:
    for suffix in (".mp4", ".json", ".manifest"):
        video.with_suffix(suffix).unlink()


def _swap(a: Path, b: Path) -> None:
    temporary = a.with_name("swap.tmp")
    a.rename(temporary)
    b.rename(a)
    temporary.rename(b)


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "flipped byte in a video": (lambda f: _flip_byte(_segments(f)[1]), "the video is not the one signed"),
    "flipped byte in a sidecar": (lambda f: _flip_byte(_segments(f)[2].with_suffix(".json")),
                                  "the sidecar is not the one signed"),
    "edited manifest": (lambda f: _edit_json(_segments(f)[0].with_suffix(".manifest")),
                        "signature does not verify"),
    "removed middle segment": (lambda f: _remove(_segments(f)[1]), "#2: missing from the chain"),
    "removed newest segment": (lambda f: _remove(_segments(f)[-1]), "#4: missing from the chain"),
    "removed first segment": (lambda f: _remove(_segments(f)[0]), "#1: missing from the chain"),
    "two videos swapped": (lambda f: _swap(_segments(f)[0], _segments(f)[1]), "the video is not the one signed"),
    "segment renamed with its files": (lambda f: _rename_all(_segments(f)[0], "dashcam_2026-11-21_07-59-00Z"),
                                       "the manifest was renamed"),
    "unsigned video added": (lambda f: shutil.copy(_segments(f)[0], f / "dashcam_2026-11-22_08-00-00Z.mp4"),
                             "no manifest: this video is not signed"),
}


def _edit_json(path: Path) -> None:
    data = json.loads(path.read_text())
    data["manifest"]["payload"]["redaction"]["faces"] += 1
    path.write_text(json.dumps(data))


def _rename_all(video: Path, stem: str) -> None:
    for suffix in (".mp4", ".json", ".manifest"):
        video.with_suffix(suffix).rename(video.with_name(stem + suffix))


@pytest.mark.parametrize("tampering", TAMPERING)
def test_any_alteration_removal_or_reordering_is_reported_by_name(recorded, key, tampering):
    change, message = TAMPERING[tampering]
    change(recorded)
    report = verify(recorded, key.public_path)
    assert not report.ok
    assert any(message in failure for failure in report.failures), report.failures


def test_a_lock_after_signing_is_a_signed_amendment_and_the_locked_segment_verifies(tmp_path, key):
    loop = LoopOptions(RetentionPolicy.from_preset("loop-only", 72, 0, 0), 1.5, 0.0)
    rec, signer = signed_recorder(tmp_path / "rec", key, loop)
    index = feed(rec, 0, 35)
    deadline = time.monotonic() + 30
    while signer.signed < 3 and time.monotonic() < deadline:  # the three finished segments signed before the lock
        time.sleep(0.05)
    rec.request_lock(t_mono_ns=int(3.2 * S))
    feed(rec, index, 15)
    rec.close()
    locked = sorted((tmp_path / "rec" / "locked").glob("*.manifest"))
    assert len(locked) == 3 and not list((tmp_path / "rec").glob(f"{locked[0].stem}.manifest"))
    amended = ManifestFile.read(locked[0])
    assert len(amended.amendments) == 1 and amended.current(key.public)["locked"]
    assert amended.amendments[0].payload["manifest"] == amended.manifest.sha256
    report = verify(tmp_path / "rec", key.public_path)
    assert report.ok, report.failures
    assert sum(" locked" in line for line in report.lines) == 3
    as_it_finished = ManifestFile.read(locked[2])  # the lock covered it while it was written: signed locked
    assert not as_it_finished.amendments and as_it_finished.manifest.payload["locked"]


def test_loop_deletions_are_signed_lines_that_explain_the_gap(tmp_path, key):
    rec, signer = signed_recorder(tmp_path / "rec", key, SMALL_BUDGET)
    feed(rec, 0, 6 * FPS)  # room for about two segments: each new one deletes the oldest
    rec.close()
    deletions, damaged = read_deletions(tmp_path / "rec" / DELETIONS_NAME)
    deleted = [d.payload["sequence"] for d in deletions]
    assert len(deleted) >= 2 and deleted == list(range(1, len(deleted) + 1)) and damaged == 0
    manifests = sorted((tmp_path / "rec").glob("dashcam_*.manifest"))
    assert len(manifests) == len(_segments(tmp_path / "rec")) == 6 - len(deleted)  # no orphaned manifest
    report = verify(tmp_path / "rec", key.public_path)
    assert report.ok, report.failures
    n = len(deleted)
    assert any(line.startswith(f"GAP   #1-{n}: {n} deleted (signed deletion log: loop recording)")
               for line in report.lines)

    lines = (tmp_path / "rec" / DELETIONS_NAME).read_text().splitlines()
    (tmp_path / "rec" / DELETIONS_NAME).write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # one line removed
    report = verify(tmp_path / "rec", key.public_path)
    assert any("#2: missing from the chain and not in the deletion log" in f for f in report.failures)


def test_what_was_unsigned_at_a_start_is_signed_then_and_marked(tmp_path, key):
    rec = recorder(tmp_path / "rec")  # no signer: as if power was cut before any signing
    feed(rec, 0, 2 * FPS)
    rec.close()
    rec, signer = signed_recorder(tmp_path / "rec", key)
    feed(rec, 2 * FPS, FPS, start_ns=10 * S)
    rec.close()
    files = [ManifestFile.read(p) for p in sorted((tmp_path / "rec").glob("*.manifest"))]
    assert [f.manifest.payload["signed_after_restart"] for f in files] == [True, True, False]
    assert verify(tmp_path / "rec", key.public_path).ok


def test_a_torn_deletion_line_is_cut_at_the_next_start(tmp_path, key):
    loop = SMALL_BUDGET
    rec, _signer = signed_recorder(tmp_path / "rec", key, loop)
    feed(rec, 0, 4 * FPS)
    rec.close()
    log_path = tmp_path / "rec" / DELETIONS_NAME
    with log_path.open("ab") as handle:
        handle.write(b'{"kind":"deletion","payl')  # power cut mid-line
    rec, _signer = signed_recorder(tmp_path / "rec", key, loop)
    feed(rec, 2 * FPS, FPS, start_ns=10 * S)
    rec.close()
    deletions, damaged = read_deletions(log_path)
    assert damaged == 0 and len(deletions) >= 2
    assert verify(tmp_path / "rec", key.public_path).ok


def test_kill_9_mid_segment_then_restart_signs_the_recovered_segment_and_marks_it(tmp_path):
    state = tmp_path / "state"
    config = run_config(tmp_path, clip_seconds=30, record_yaml="  segment_seconds: 2\n"
                        f"evidence:\n  key_dir: {state}\n")
    recordings = tmp_path / "rec"
    process = start_dashcam("run", "--config", str(config), "--recordings", str(recordings))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(recordings.glob("*.manifest"))) < 2:
        time.sleep(0.2)
    time.sleep(0.7)  # into the next segment
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert list(recordings.glob("*.mp4.partial"))

    again = run_dashcam("run", "--config", str(config), "--recordings", str(recordings), "--max-frames", "5")
    assert again.returncode == 0, again.stderr
    recovered = [ManifestFile.read(p) for p in recordings.glob("*.manifest")]
    marked = [f.manifest.payload for f in recovered if f.manifest.payload["recovered"]]
    assert marked and all(m["signed_after_restart"] for m in marked)
    result = run_dashcam("verify", str(recordings), "--key", str(state / PUBLIC_NAME))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " recovered signed-after-restart" in result.stdout


def test_an_exported_trip_verifies_elsewhere_with_only_the_public_key(tmp_path):
    state = tmp_path / "state"
    config = run_config(tmp_path, clip_seconds=3.5, record_yaml="  segment_seconds: 1\n"
                        f"evidence:\n  key_dir: {state}\n", realtime=False)
    recordings = tmp_path / "rec"
    assert run_dashcam("run", "--config", str(config), "--recordings", str(recordings)).returncode == 0
    shown = run_dashcam("key", "--config", str(config), "--export", str(tmp_path / "owner.pub.pem"))
    assert shown.returncode == 0 and "fingerprint " in shown.stdout and "BEGIN PUBLIC KEY" in shown.stdout
    exported = run_dashcam("export", "1", "--config", str(config), "--recordings", str(recordings),
                           "--output", str(tmp_path / "usb"))
    assert exported.returncode == 0, exported.stderr
    assert "dashcam verify" in exported.stdout

    # Another machine: the export and the owner's public key, no recordings folder, no private key.
    elsewhere = tmp_path / "insurer" / "trip"
    shutil.copytree(tmp_path / "usb", elsewhere)
    shutil.rmtree(state)
    result = run_dashcam("verify", str(elsewhere), "--key", str(tmp_path / "owner.pub.pem"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("\nOK ") + result.stdout.startswith("OK ") == 4
    assert "dashcam verify . --key device-key.pub.pem" in (elsewhere / "README-verify.txt").read_text()

    videos = sorted(elsewhere.glob("*.mp4"))
    _remove(videos[-1])  # the last segment of the trip: only the export statement can tell
    result = run_dashcam("verify", str(elsewhere), "--key", str(tmp_path / "owner.pub.pem"))
    assert result.returncode == 1 and "listed in the export statement but missing" in result.stdout
    (elsewhere / "trip-1.gpx").write_text("<gpx/>")
    result = run_dashcam("verify", str(elsewhere), "--key", str(tmp_path / "owner.pub.pem"))
    assert "trip-1.gpx: the file is not the one signed" in result.stdout


@pytest.mark.parametrize("target, key_text, message", [
    ("missing", None, "does not exist"),
    ("empty", None, "nothing to verify"),
    ("folder", None, "no public key: pass --key"),
    ("folder", "not a key", "not a PEM public key"),
])
def test_unusable_input_exits_2_with_one_line(tmp_path, recorded, target, key_text, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "folder": recorded}
    args = ["verify", str(paths[target])]
    if key_text is not None:
        (tmp_path / "bad.pem").write_text(key_text)
        args += ["--key", str(tmp_path / "bad.pem")]
    result = run_dashcam(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(recorded / PUBLIC_NAME)


def test_wipe_erases_manifests_the_chain_head_and_the_deletion_log(tmp_path, key):
    from edge.record.store import RecordingsFolder
    from edge.wipe import wipe

    rec, _signer = signed_recorder(tmp_path / "rec", key, SMALL_BUDGET)
    feed(rec, 0, 4 * FPS)
    rec.close()
    assert (tmp_path / "rec" / DELETIONS_NAME).exists() and (tmp_path / "rec" / CHAIN_HEAD_NAME).exists()
    wipe(RecordingsFolder(tmp_path / "rec"))
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["locked"]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=10)
garbage = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                    st.fixed_dictionaries({"manifest": st.fixed_dictionaries(
                        {"kind": st.just("manifest"), "payload": st.dictionaries(st.sampled_from(
                            ["sequence", "video", "sidecar", "chain", "previous", "device"]), json_values),
                         "signature": st.just("AAAA")})}).map(lambda v: json.dumps(v).encode()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(["manifest", "head", "statement", "deletions"]), content=garbage)
def test_verify_reports_garbage_files_without_a_traceback(recorded, key, tmp_path_factory, target, content):
    folder = tmp_path_factory.mktemp("garbage") / "rec"
    shutil.copytree(recorded, folder)
    path = {"manifest": _segments(folder)[1].with_suffix(".manifest"), "head": folder / CHAIN_HEAD_NAME,
            "statement": folder / "export-statement.json", "deletions": folder / DELETIONS_NAME}[target]
    path.write_bytes(content)
    try:
        report = verify(folder, key.public_path)
    except SourceError as exc:  # an unusable head or statement: exit 2 with one line
        assert target in ("head", "statement") and str(exc)
    else:
        assert not report.ok or target == "deletions"


def test_a_sidecar_edited_then_locked_is_not_signed_and_verify_reports_it(recorded, key):
    """A lock may change where a segment is and its lock fields; an edit of anything else is never amended."""
    video = _segments(recorded)[1]
    sidecar = json.loads(video.with_suffix(".json").read_text())
    sidecar["redaction"]["faces"] += 5  # someone with the card, but not the key
    video.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    folder = RecordingsFolder(recorded)
    locked = folder.lock(folder.find(video.stem), dt.datetime.now(dt.timezone.utc))
    with pytest.raises(RecordError, match="changed beyond its lock state"):
        amend(key, locked, ManifestFile.read(locked.video_path.with_suffix(".manifest")))
    rec, signer = signed_recorder(recorded, key)  # the next start does not amend it either
    signer.wait_until_idle()
    rec.close()
    assert signer.failed == 1
    report = verify(recorded, key.public_path)
    assert any("the sidecar is not the one signed" in f for f in report.failures)


def test_a_locked_segment_removed_by_hand_is_not_logged_as_a_deletion(recorded, key):
    folder = RecordingsFolder(recorded)
    locked = folder.lock(folder.find(_segments(recorded)[1].stem), dt.datetime.now(dt.timezone.utc))
    rec, _signer = signed_recorder(recorded, key)
    rec.close()
    locked.video_path.unlink()  # locked footage: dashcam never deletes it
    rec, _signer = signed_recorder(recorded, key)
    rec.close()
    assert locked.video_path.with_suffix(".manifest").exists()
    deletions, _ = read_deletions(recorded / DELETIONS_NAME)
    assert not deletions
    report = verify(recorded, key.public_path)
    assert any("the video" in f and "is missing" in f for f in report.failures)


def test_an_unlocked_segment_missing_at_a_start_is_logged_as_such_not_as_loop_recording(recorded, key):
    video = _segments(recorded)[1]
    video.unlink()
    video.with_suffix(".json").unlink()
    rec, _signer = signed_recorder(recorded, key)
    rec.close()
    report = verify(recorded, key.public_path)
    assert report.ok, report.failures
    assert any("missing at the recorder's start" in line for line in report.lines)
