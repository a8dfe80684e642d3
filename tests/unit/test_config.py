from pathlib import Path

import pytest

from edge.config import Config, config_from_dict, describe_defaults, load_config
from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_without_a_file():
    config = load_config(None)
    assert config.source.kind == "sample" and config.redact.on_failure == "blur_frame"


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    assert isinstance(load_config(path), Config)


@pytest.mark.parametrize("data,message", [
    ({"detect": {"facez": {}}}, "unknown key 'detect.facez'"),
    ({"colour": 1}, "unknown key 'colour'"),
    ({"detect": {"faces": {"score_threshold": "high"}}}, "detect.faces.score_threshold: expected a number"),
    ({"detect": {"faces": {"score_threshold": 1.5}}}, "detect.faces.score_threshold: expected at most 1.0"),
    ({"redact": {"mode": "smear"}}, "redact.mode: expected one of gaussian, pixelate, fill"),
    ({"record": {"segment_seconds": True}}, "record.segment_seconds: expected a number"),
    ({"detect": {"providers": "CPUExecutionProvider"}}, "detect.providers: expected a list of strings"),
    ({"source": "camera"}, "source must be a mapping"),
    ({"source": {"realtime": "yes"}}, "source.realtime: expected true or false"),
    ({"detect": {"faces": {"enabled": False}, "plates": {"enabled": False}}}, "nothing would be anonymized"),
    ({"gps": {"privacy_zones": [{"lat": 91}]}}, "gps.privacy_zones[0].lat: expected at most 90"),
    ({"gps": {"privacy_zones": [{"radius": 5}]}}, "unknown key 'gps.privacy_zones[0].radius'"),
    ({"gps": {"baud": 1234}}, "gps.baud: expected one of 4800, 9600"),
])
def test_bad_values_name_the_key_and_file(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, origin="my.yaml")
    assert str(err.value).startswith("my.yaml: ") and message in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("detect:\n  faces: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: line .* is not valid YAML"):
        load_config(broken)


def test_device_index_may_be_a_number():
    assert config_from_dict({"source": {"device": 0}}).source.device == "0"


def test_described_defaults_round_trip():
    import yaml
    assert config_from_dict(yaml.safe_load(describe_defaults())) == Config()
