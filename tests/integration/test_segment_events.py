"""Segments announce themselves: a subscriber (an uploader, a web app) gets every finished and locked segment
with its typed sidecar, read from the real files; a subscriber that fails never stops recording."""
from __future__ import annotations

from edge.record.retention import RetentionPolicy
from edge.record.loop import LoopOptions
from edge.record.store import read_sidecar
from recording import FPS, feed, recorder

S = 1_000_000_000


def test_every_finished_and_locked_segment_is_announced_with_the_sidecar_on_disk(tmp_path):
    rec = recorder(tmp_path / "rec", LoopOptions(RetentionPolicy.from_preset("loop-only", 72, 0, 0), 1.5, 0.0))
    seen = []
    rec.events.subscribe(seen.append)
    index = feed(rec, 0, 35)  # segments 0..2 finished, 3 being written
    rec.request_lock(t_mono_ns=int(3.2 * S))  # reaches back 1.5 s: segments 1, 2 (finished) and 3 (current)
    feed(rec, index, 15)
    rec.close()

    finished = [e for e in seen if e.kind == "finished"]
    assert [e.video_path.name for e in finished] == [info.video_path.name for info in rec.finished]
    assert all(e.sidecar == read_sidecar(e.sidecar_path) for e in finished if e.video_path.exists())
    assert [e.sidecar.frame_count for e in finished] == [FPS] * 5
    locked = [e for e in seen if e.kind == "locked"]
    assert [e.video_path.name for e in locked] == [rec.finished[1].video_path.name, rec.finished[2].video_path.name]
    assert locked[0].locked and locked[0].video_path.parent.name == "locked"
    assert finished[3].locked and finished[3].video_path.parent.name == "locked"  # locked as it finished


def test_a_failing_subscriber_is_dropped_and_recording_goes_on(tmp_path, caplog):
    rec = recorder(tmp_path / "rec")
    calls = []

    def broken(event):
        calls.append(event)
        raise RuntimeError("uploader bug")

    rec.events.subscribe(broken)
    feed(rec, 0, 3 * FPS)
    rec.close()
    assert len(calls) == 1 and len(rec.finished) == 3
    assert "failed and is unsubscribed: uploader bug" in caplog.text
