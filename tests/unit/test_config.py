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
    ({"detect": {"faces": {"score_threshold": 1.5}}}, "detect.faces.score_threshold: expected at most 0.9"),
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


# ---- no number can weaken redaction: every numeric key is finite and bounded ---------------------------

def _numeric_keys(cls: type = Config, prefix: str = "") -> list[tuple[str, type, dict]]:
    """(dotted key, int or float, rules) for every number in the config tree; list items as key[0]."""
    import dataclasses
    import typing

    keys = []
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        if dataclasses.is_dataclass(hint):
            keys += _numeric_keys(hint, f"{prefix}{item.name}.")
        elif typing.get_origin(hint) is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            keys += _numeric_keys(typing.get_args(hint)[0], f"{prefix}{item.name}[0].")
        elif hint in (int, float) and "choices" not in item.metadata:
            keys.append((f"{prefix}{item.name}", hint, dict(item.metadata)))
    return keys


def _nested(key: str, value) -> dict:
    """`a.b[0].c` = value as the mapping YAML would give."""
    data: dict = {}
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        if part.endswith("[0]"):
            child: dict = {"name": "front"} if part == "cameras[0]" else {}  # a camera is known by its name
            node[part[:-3]] = [child]
            node = child
        else:
            node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


NUMERIC_KEYS = _numeric_keys()


def test_the_walk_finds_the_numbers():
    names = {key for key, _, _ in NUMERIC_KEYS}
    assert {"redact.face_mask_scale", "track.max_gap_ms", "gps.privacy_zones[0].radius_m",
            "record.segment_seconds"} <= names and len(names) > 30


@pytest.mark.parametrize("key, kind, rules", NUMERIC_KEYS, ids=[k for k, _, _ in NUMERIC_KEYS])
def test_every_number_has_both_bounds(key, kind, rules):
    assert "min" in rules and "max" in rules, f"{key} needs a min and a max"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("key, kind, rules", NUMERIC_KEYS, ids=[k for k, _, _ in NUMERIC_KEYS])
def test_non_finite_numbers_are_refused(key, kind, rules, value):
    with pytest.raises(ConfigError) as err:
        config_from_dict(_nested(key, value), origin="bad.yaml")
    message = str(err.value)
    assert message.startswith(f"bad.yaml: {key}: expected ") and "\n" not in message


@pytest.mark.parametrize("key, kind, rules", NUMERIC_KEYS, ids=[k for k, _, _ in NUMERIC_KEYS])
def test_values_past_either_bound_are_refused(key, kind, rules):
    step = 1 if kind is int else 1e-6 * max(1.0, abs(rules["max"]))
    for value, expected in ((rules["min"] - step, "at least"), (rules["max"] + step, "at most"), (10**30, None)):
        with pytest.raises(ConfigError) as err:
            config_from_dict(_nested(key, kind(value) if kind is int else value), origin="bad.yaml")
        assert key in str(err.value) and (expected is None or expected in str(err.value))


@pytest.mark.parametrize("data, message", [
    ({"track": {"detect_every": 30, "max_gap_frames": 20}}, "above track.max_gap_frames"),
    ({"detect": {"plates": {"road_top": 0.8, "road_bottom": 0.5}}}, "must be above"),
])
def test_cross_key_rules(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, origin="bad.yaml")


@pytest.mark.parametrize("text, key", [
    ("detect:\n  plates:\n    score_threshold: .nan\n", "detect.plates.score_threshold"),
    ("redact:\n  plate_mask_scale: .nan\n", "redact.plate_mask_scale"),
    ("record:\n  segment_seconds: .inf\n", "record.segment_seconds"),
    ("track:\n  max_gap_ms: -.inf\n", "track.max_gap_ms"),
])
def test_the_cli_refuses_a_non_finite_value_in_one_line_with_exit_2(tmp_path, text, key):
    stderr = _run_refused(tmp_path, text.encode())
    assert key in stderr and "finite" in stderr
    assert not (tmp_path / "rec").exists() or not any((tmp_path / "rec").iterdir())


def _run_refused(tmp_path: Path, content: bytes) -> str:
    """`dashcam run` with this config file: it must stop with exit 2 and one line, which is returned."""
    import subprocess
    import sys

    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--fast", "--config", str(config),
                             "--recordings", str(tmp_path / "rec")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_renamed_key_says_what_replaced_it():
    with pytest.raises(ConfigError, match=r"detect.faces.model was replaced by detect.faces.models"):
        config_from_dict({"detect": {"faces": {"model": "yunet"}}})


@pytest.mark.parametrize("content, message", [
    (b"detect:\n  timeout_ms: 100\ndetect:\n  timeout_ms: 9000\n", r"line 3 is not valid YAML: duplicate key 'detect'"),
    (b"track:\n  detect_every: 3\n  detect_every: 30\n", r"line 3 is not valid YAML: duplicate key 'detect_every'"),
    (b"source:\n  path: caf\xe9.mp4\n", r"is not UTF-8 text"),
    (b"\x00\x01\x02binary", r"is binary, not YAML text"),
    (b"source: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", r"nested too deeply|not valid YAML"),
    (b"# " + b"x" * (1 << 21) + b"\n", r"a config is a few kB"),
])
def test_hostile_config_files_get_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_an_endless_config_file_is_refused_without_reading_it_all():
    with pytest.raises(ConfigError, match="a config is a few kB"):
        load_config(Path("/dev/zero"))


@pytest.mark.parametrize("content", [b"detect:\n  timeout_ms: 100\ndetect:\n  timeout_ms: 9000\n",
                                     b"\xff\xfe\x00binary"])
def test_the_cli_refuses_a_duplicate_key_or_a_binary_file_in_one_line_with_exit_2(tmp_path, content):
    assert "bad.yaml" in _run_refused(tmp_path, content)


def test_an_unquoted_off_is_the_choice_off_not_a_bad_value(tmp_path):
    """YAML 1.1 reads `mirror: off` as false; a choice named off takes it as meant."""
    path = tmp_path / "c.yaml"
    path.write_text("detect:\n  mirror: off\n")
    assert load_config(path).detect.mirror == "off"
    path.write_text("detect:\n  mirror: true\n")
    with pytest.raises(ConfigError, match="detect.mirror: expected one of off, stills, files, always, got True"):
        load_config(path)
