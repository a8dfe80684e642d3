"""Segment files: length, names, sidecars, permissions and atomic completion, on a real clip."""
from __future__ import annotations

import json
import re
import stat

from conftest import ScriptedDetector, read_all_frames, write_clip, canary_frames
from test_fail_closed import _record


def test_segments_split_by_length_with_sidecars(tmp_path):
    clip = write_clip(tmp_path / "long.mp4", canary_frames(25), fps=10)
    stats, segments = _record(clip, tmp_path / "rec", ScriptedDetector(), segment_seconds=1.0)
    assert [len(read_all_frames(s.video_path)) for s in segments] == [10, 10, 5]
    assert len({s.video_path.name for s in segments}) == 3
    for info in segments:
        assert re.fullmatch(r"dashcam_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\dZ(_\d+)?\.mp4", info.video_path.name)
        assert stat.S_IMODE(info.video_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(info.sidecar_path.stat().st_mode) == 0o600
        sidecar = json.loads(info.sidecar_path.read_text())
        assert sidecar["video"] == info.video_path.name
        assert sidecar["fps"] == 10 and (sidecar["width"], sidecar["height"]) == (320, 240)
        assert set(sidecar["redaction"]) == {"faces", "plates", "whole_frame_redacted_frames", "dropped_frames"}
        assert sidecar["start_utc"].endswith("Z") and sidecar["models"] == {"scripted": "0"}
    assert sum(json.loads(s.sidecar_path.read_text())["frame_count"] for s in segments) == stats.frames_stored
    assert not list((tmp_path / "rec").glob("*.partial"))


def test_no_audio_stream(tmp_path):
    import av

    clip = write_clip(tmp_path / "c.mp4", canary_frames(5), fps=10)
    _, segments = _record(clip, tmp_path / "rec", ScriptedDetector())
    with av.open(str(segments[0].video_path)) as container:
        assert [s.type for s in container.streams] == ["video"]
