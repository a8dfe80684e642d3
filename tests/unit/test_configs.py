"""Every shipped config in configs/ validates against the typed config."""
from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_the_board_configs_are_there():
    assert {"default", "pi5", "pi4", "jetson-orin"} <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates(path: Path):
    load_config(path)


def test_board_choices():
    pi5, pi4 = load_config(CONFIGS[0].with_name("pi5.yaml")), load_config(CONFIGS[0].with_name("pi4.yaml"))
    jetson = load_config(CONFIGS[0].with_name("jetson-orin.yaml"))
    assert pi4.track.detect_every > pi5.track.detect_every
    assert pi4.detect.faces.input_long_side < pi5.detect.faces.input_long_side
    assert pi4.record.preset == "superfast"
    assert jetson.detect.providers == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    for config in (pi5, pi4, jetson):
        assert config.source.kind == "gstreamer" and config.source.pipeline.rstrip().split("!")[-1].strip() \
            .startswith("appsink")
        assert config.redact.on_failure == "blur_frame"


def test_picamera2_without_the_package_is_a_clear_source_error():
    import importlib.util

    from edge.camera import open_source
    from edge.config import config_from_dict
    from edge.errors import SourceError

    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(SourceError, match="python3-picamera2"):
        open_source(config_from_dict({"source": {"kind": "picamera2"}}).source)
