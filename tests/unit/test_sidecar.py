"""The typed, versioned sidecar: what the recorder writes reads back identical, older and newer versions are read,
and a sidecar of the wrong shape is refused (the readers then treat it as lost and rebuild it)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.record.sidecar import SCHEMA_VERSION, LocationSummary, RedactionCounts, Sidecar, SidecarError

FULL = Sidecar(video="dashcam_2026-11-21_08-00-00Z.mp4", start_utc="2026-11-21T08:00:00.000Z",
               end_utc="2026-11-21T08:00:59.967Z", frame_count=1800, duration_s=60.0, fps=30.0,
               fps_fraction="30/1", width=1280, height=720, codec="h264", source="camera", models={"yunet": "ab12"},
               redaction=RedactionCounts(faces=3, plates=2, whole_frame_redacted_frames=1, dropped_frames=4),
               software="privacy-dashcam 0.1", location=LocationSummary(4, 1790, ({"lat": 52.52, "lon": 13.4},)),
               locked=True, locked_at_utc="2026-11-21T08:00:30.000Z", gap_before_s=2.5)


def test_a_written_sidecar_reads_back_identical_through_json():
    text = json.dumps(FULL.to_json())
    assert Sidecar.from_json(json.loads(text)) == FULL
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION


def test_a_version_1_sidecar_without_duration_or_version_is_read():
    old = {"video": "a.mp4", "frame_count": 300, "fps": 30.0, "redaction": {"faces": 1}, "location": None}
    sidecar = Sidecar.from_json(old)
    assert sidecar.schema_version == 1 and sidecar.duration_s == 10.0 and sidecar.redaction.faces == 1


def test_keys_from_a_newer_version_survive_a_rewrite():
    newer = {**FULL.to_json(), "schema_version": SCHEMA_VERSION + 1, "upload": {"state": "done"}}
    rewritten = Sidecar.from_json(newer).replace(locked=False).to_json()
    assert rewritten["upload"] == {"state": "done"} and rewritten["locked"] is False


@pytest.mark.parametrize("broken", [[], {"frame_count": "many"}, {"fps": -1}, {"redaction": [1]},
                                    {"location": {"track": "north"}}, {"video": 3}, {"duration_s": float("nan")}])
def test_a_sidecar_of_the_wrong_shape_is_refused(broken):
    with pytest.raises(SidecarError):
        Sidecar.from_json(broken)


# What JSON holds: no NaN or infinity (Python's json writes them, but they are not JSON and NaN != NaN).
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                           | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=8)
KEYS = list(FULL.to_json()) + ["recovered_note", "in_progress"]


@given(st.fixed_dictionaries({}, optional={key: JSON_VALUES for key in KEYS}) | JSON_VALUES)
def test_any_json_is_read_or_refused_with_a_sidecar_error_never_another_exception(value):
    try:
        sidecar = Sidecar.from_json(value)
    except SidecarError:
        return
    again = Sidecar.from_json(json.loads(json.dumps(sidecar.to_json())))
    assert again == sidecar.replace(schema_version=SCHEMA_VERSION)  # rewritten in this version, nothing lost
