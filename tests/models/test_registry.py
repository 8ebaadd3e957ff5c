"""Registry: a model set is loaded only if every file is there, intact, fresh and matching."""

from __future__ import annotations

import json

import pytest

from models.errors import (
    ModelCorruptError,
    ModelMismatchError,
    ModelMissingError,
    ModelStaleError,
)
from models.features import FeatureSpec
from models.registry import HEAD_NAMES, list_models, load_models, write_card


def _edit_card(directory, name, **changes):
    path = directory / f"{name}.json"
    card = json.loads(path.read_text())
    card.update(changes)
    write_card(path, card)  # sealed: these tests are about what the seal cannot catch


def test_a_good_set_loads(trained):
    models = load_models(trained.out_dir, spec=FeatureSpec())
    assert set(models.models) == set(HEAD_NAMES)
    assert models.set_id == trained.set_id
    assert all(status == "ok" for _, _, status in list_models(trained.out_dir))


@pytest.mark.parametrize("suffix", ["txt", "json"])
def test_missing_file(model_copy, suffix):
    (model_copy / f"adverse.{suffix}").unlink()
    with pytest.raises(ModelMissingError, match="adverse"):
        load_models(model_copy)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelMissingError, match="qctl train"):
        load_models(tmp_path / "nowhere")


def test_tampered_model_bytes(model_copy):
    path = model_copy / "direction.txt"
    path.write_text(path.read_text().replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(ModelCorruptError, match="sha256"):
        load_models(model_copy)


def test_unreadable_model_matching_its_card(model_copy):
    import hashlib

    path = model_copy / "kill.txt"
    path.write_bytes(b"not a lightgbm model")
    _edit_card(model_copy, "kill", model_sha256=hashlib.sha256(b"not a lightgbm model").hexdigest())
    with pytest.raises(ModelCorruptError, match="cannot be read"):
        load_models(model_copy)


def test_corrupt_card(model_copy):
    (model_copy / "universe.json").write_text("{ not json")
    with pytest.raises(ModelCorruptError, match="not valid JSON"):
        load_models(model_copy)


def test_stale_set(model_copy):
    models = load_models(model_copy)
    with pytest.raises(ModelStaleError, match="valid until"):
        load_models(model_copy, now_ms=models.valid_until_ms + 1)
    load_models(model_copy, now_ms=models.valid_until_ms)


def test_card_feature_set_mismatch(model_copy):
    _edit_card(model_copy, "direction", feature_hash="0123456789abcdef")
    with pytest.raises(ModelMismatchError, match="feature set"):
        load_models(model_copy)


def test_caller_feature_set_mismatch(model_copy):
    with pytest.raises(ModelMismatchError, match="trained on feature set"):
        load_models(model_copy, spec=FeatureSpec(vol_window=30))


def test_models_from_two_sets_are_not_mixed(model_copy):
    _edit_card(model_copy, "favourable_t2", set_id="someotherset")
    with pytest.raises(ModelMismatchError, match="belongs to set"):
        load_models(model_copy)


def test_list_reports_each_refusal(model_copy):
    (model_copy / "kill.txt").unlink()
    statuses = {name: status for name, _, status in list_models(model_copy)}
    assert statuses["direction"] == "ok"
    assert "missing" in statuses["kill"]
