import pytest

from edge.config import DetectConfig
from edge.detect.models import MODELS, keys_for, resolve_model, sha256_of
from edge.errors import ModelError


def test_shipped_models_match_their_recorded_sha256():
    for key, model in MODELS.items():
        assert sha256_of(resolve_model(key)) == model.sha256


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="model file missing: .*yunet_n_dynamic.onnx"):
        resolve_model("yunet", tmp_path)


def test_altered_model_is_refused(tmp_path):
    (tmp_path / "yunet_n_dynamic.onnx").write_bytes(b"not the model")
    with pytest.raises(ModelError, match="has sha256 .* expected"):
        resolve_model("yunet", tmp_path)


def test_models_readme_lists_every_sha256():
    from edge.detect.models import default_models_dir
    card = (default_models_dir() / "README.md").read_text()
    for model in MODELS.values():
        assert model.filename in card and model.sha256 in card


def test_every_registered_model_names_a_detector_class_that_builds_from_the_config():
    assert set(keys_for("face")) | set(keys_for("plate")) | set(keys_for("people")) == set(MODELS)
    for model in MODELS.values():
        assert callable(model.detector_class().from_config), model.key
    assert DetectConfig().faces.models[0] in keys_for("face")
