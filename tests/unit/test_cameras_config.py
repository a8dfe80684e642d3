"""`cameras:`: several cameras in one config, each taking what it leaves out from the top level."""
from __future__ import annotations

import pytest

from edge.config import config_from_dict
from edge.errors import ConfigError

FRONT_AND_CABIN = {
    "detect": {"faces": {"score_threshold": 0.2}, "plates": {"score_threshold": 0.05}},
    "record": {"directory": "/media/card/recordings", "segment_seconds": 30},
    "cameras": [
        {"name": "front", "source": {"kind": "v4l2", "device": "/dev/video0"}},
        {"name": "cabin", "source": {"kind": "v4l2", "device": "/dev/video2", "fps": 15},
         "detect": {"plates": {"enabled": False}, "faces": {"models": ["yunet", "yolo5face", "centerface"]}},
         "redact": {"masks": [{"name": "rear window", "points": [[0.3, 0], [0.7, 0], [0.7, 0.2], [0.3, 0.2]]}]},
         "record": {"directory": "/media/card/cabin"}},
    ],
}


def test_each_camera_takes_what_it_leaves_out_from_the_top_level():
    config = config_from_dict(FRONT_AND_CABIN)
    (front_name, front), (cabin_name, cabin) = config.camera_runs()
    assert (front_name, cabin_name) == ("front", "cabin")
    assert front.source.device == "/dev/video0" and cabin.source.fps == 15
    assert front.detect.faces.score_threshold == cabin.detect.faces.score_threshold == 0.2  # from the top
    assert front.detect.plates.enabled and not cabin.detect.plates.enabled
    assert cabin.detect.plates.score_threshold == 0.05  # a section merged key by key, not replaced
    assert cabin.detect.faces.models == ["yunet", "yolo5face", "centerface"]
    assert front.redact.masks == [] and cabin.redact.masks[0].name == "rear window"
    assert front.record.directory == "/media/card/recordings/front" and cabin.record.directory == "/media/card/cabin"
    assert front.record.segment_seconds == cabin.record.segment_seconds == 30
    assert front.cameras == [] and cabin.gps == config.gps


def test_without_cameras_there_is_one_unnamed_camera():
    config = config_from_dict({"source": {"kind": "sample"}})
    assert [(name, camera) for name, camera in config.camera_runs()] == [("", config)]


@pytest.mark.parametrize("cameras, needle", [
    ([{"source": {"kind": "sample"}}], "cameras[0].name: expected a name"),
    ([{"name": "front"}, {"name": "front"}], "cameras[1].name: 'front' is used twice"),
    ([{"name": "../etc"}], "cameras[0].name: expected a name"),
    ([{"name": "front", "gps": {"source": "none"}}], "unknown key 'cameras[0].gps'"),
    ([{"name": "cabin", "detect": {"faces": {"enabled": False}, "plates": {"enabled": False}}}],
     "cameras[0].detect.faces.enabled and cameras[0].detect.plates.enabled are both false"),
    ([{"name": "cabin", "detect": {"faces": {"score_treshold": 0.1}}}], "cameras[0].detect.faces.score_treshold"),
    ([{"name": "rear", "track": {"detect_every": 20, "max_gap_frames": 10}}], "cameras[0].track.detect_every (20)"),
    ("front", "cameras: expected a list of cameras"),
])
def test_camera_mistakes_are_one_clear_error_naming_the_camera(cameras, needle):
    with pytest.raises(ConfigError) as raised:
        config_from_dict({"cameras": cameras}, origin="car.yaml")
    assert needle in str(raised.value) and str(raised.value).startswith("car.yaml: "), raised.value


def test_top_level_masks_with_cameras_are_refused():
    mask = {"name": "dash", "points": [[0, 0.8], [1, 0.8], [1, 1]]}
    with pytest.raises(ConfigError, match="give each camera its own masks"):
        config_from_dict({"redact": {"masks": [mask]}, "cameras": [{"name": "front"}]})


def test_a_top_level_section_that_is_no_mapping_is_one_clear_error_with_cameras():
    with pytest.raises(ConfigError, match="car.yaml: redact must be a mapping, got str"):
        config_from_dict({"redact": "blur", "cameras": [{"name": "front"}]}, origin="car.yaml")
