"""Model files on disk: `<name>.txt` (LightGBM's text model) + `<name>.json` (its card).

`load_models` refuses anything it cannot vouch for — a missing file, a card that is not valid
(`models.validity`: incomplete, edited, dates that disagree), a model past its `valid_until`, a
card that does not match the feature set or the rest of its set, bytes that do not match the
card's hash — with a `ModelError` subclass, so the policy fails closed. `qctl models list` asks
the same function, so the two can never disagree about a set.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from models.config import LADDER
from models.errors import (
    ModelCorruptError,
    ModelError,
    ModelMismatchError,
    ModelMissingError,
)
from models.features import FeatureError, FeatureSpec
from models.validity import check_card, check_fresh, seal_card

# 2: the kill card carries the reduce step (reduce_*_by_regime);
# 3: sealed cards (card_sha256), costs and net-of-cost entry thresholds;
# 4: the favourable cards carry the ladder scale chosen on validation (ladder_scale)
FORMAT_VERSION = 4
HEAD_NAMES = (
    "universe",
    "direction",
    "adverse",
    *(f"favourable_{role}" for role in LADDER),
    "kill",
)


# what every card of one set must agree on (the policy reads them from the direction card)
SHARED_FIELDS = (
    "training_window",
    "symbols",
    "holdout_symbols",
    "data_hash",
    "feature_spec",
    "feature_ranges",
    "train_config",
    "costs",
    "seed",
    "created_at",
    "valid_until_ms",
    "valid_until",
    "qctl_version",
)


def qctl_version() -> str:
    try:
        return version("qctl")
    except PackageNotFoundError:
        return "0.0.0+local"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_model(out_dir: Path, name: str, booster: lgb.Booster, card: dict[str, Any]) -> dict:
    """Write the model text and its card (with the text's sha256); returns the card written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = booster.model_to_string().encode()
    card = dict(card, model_file=f"{name}.txt", model_sha256=hashlib.sha256(text).hexdigest())
    _atomic_write(out_dir / f"{name}.txt", text)
    return write_card(out_dir / f"{name}.json", card)


def write_card(path: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Seal and write a card; returns it as written. Editing a card by hand breaks its seal."""
    sealed = seal_card(card)
    _atomic_write(path, json.dumps(sealed, indent=2, sort_keys=True).encode())
    return sealed


@dataclass(frozen=True)
class LoadedModel:
    name: str
    booster: lgb.Booster
    card: dict[str, Any]

    def outputs(self) -> dict[str, Any]:
        return self.card["outputs"]


@dataclass(frozen=True)
class ModelSet:
    """The boosters of one training run, checked against each other and the feature set."""

    directory: Path
    models: dict[str, LoadedModel]
    spec: FeatureSpec

    @property
    def card(self) -> dict[str, Any]:
        """The card of the direction head: what all cards of the set share."""
        return self.models["direction"].card

    @property
    def set_id(self) -> str:
        return self.card["set_id"]

    @property
    def valid_until_ms(self) -> int:
        return int(self.card["valid_until_ms"])

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.card["features"])

    def ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest value of each feature seen in training, in feature order."""
        r = self.card["feature_ranges"]
        lo = np.array([r[name][0] for name in self.features], dtype=np.float64)
        hi = np.array([r[name][1] for name in self.features], dtype=np.float64)
        return lo, hi

    def booster(self, name: str) -> lgb.Booster:
        return self.models[name].booster

    def check_fresh(self, ts_ms: int) -> None:
        """Raise `ModelStaleError` for data past the set's validity (`models.validity`)."""
        check_fresh(self.card, ts_ms)


def read_card(path: Path) -> dict[str, Any]:
    """A valid card (`models.validity.check_card`); anything else raises a `ModelError`."""
    if not path.is_file():
        raise ModelMissingError(f"model card missing: {path}")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelCorruptError(f"model card {path} is not valid JSON: {exc}") from exc
    return check_card(card, str(path), path.stem)


def _load_one(directory: Path, name: str) -> LoadedModel:
    card = read_card(directory / f"{name}.json")
    model_path = directory / f"{name}.txt"
    if not model_path.is_file():
        raise ModelMissingError(f"model file missing: {model_path}")
    data = model_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != card["model_sha256"]:
        raise ModelCorruptError(f"model file {model_path} does not match its card's sha256")
    try:
        booster = lgb.Booster(model_str=data.decode())
    except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise ModelCorruptError(f"model file {model_path} cannot be read: {exc}") from exc
    if booster.feature_name() != card["inputs"]:
        raise ModelMismatchError(f"model {name}: its inputs differ from those on its card")
    return LoadedModel(name, booster, card)


def _spec_of(card: dict[str, Any], name: str) -> FeatureSpec:
    try:
        spec = FeatureSpec.from_params(card["feature_spec"])
    except (FeatureError, TypeError) as exc:
        raise ModelMismatchError(f"model {name}: feature parameters not understood: {exc}") from exc
    if spec.version() != card["feature_hash"] or list(spec.names()) != card["features"]:
        raise ModelMismatchError(
            f"model {name}: card feature set {card['feature_hash']} does not match this qctl's "
            f"features for the same parameters ({spec.version()}); retrain with `qctl train`"
        )
    return spec


def load_models(
    directory: str | Path, spec: FeatureSpec | None = None, now_ms: int | None = None
) -> ModelSet:
    """Load and check a model set. `spec`: the feature set the caller computes, if fixed;
    `now_ms`: refuse a set that is stale at that time."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelMissingError(f"no model directory {directory}; run `qctl train` first")
    models = {name: _load_one(directory, name) for name in HEAD_NAMES}
    first = models["direction"].card
    set_spec = _spec_of(first, "direction")
    for name, model in models.items():
        card = model.card
        if card["format_version"] != FORMAT_VERSION:
            raise ModelMismatchError(
                f"model {name}: card format {card['format_version']}, expected {FORMAT_VERSION}; "
                "retrain with `qctl train`"
            )
        if card["set_id"] != first["set_id"]:
            raise ModelMismatchError(
                f"model {name} belongs to set {card['set_id']}, the others to {first['set_id']}"
            )
        if card["feature_hash"] != first["feature_hash"] or card["features"] != first["features"]:
            raise ModelMismatchError(f"model {name}: feature set differs from the rest of its set")
        differ = [k for k in SHARED_FIELDS if card[k] != first[k]]
        if differ:
            raise ModelMismatchError(
                f"model {name}: {', '.join(differ)} differ(s) from the rest of its set"
            )
        if set(card["feature_ranges"]) != set(card["features"]):
            raise ModelCorruptError(f"model {name}: feature ranges do not cover its features")
    if spec is not None and spec.version() != set_spec.version():
        raise ModelMismatchError(
            f"models were trained on feature set {set_spec.version()}, "
            f"the caller computes {spec.version()}"
        )
    model_set = ModelSet(directory, models, set_spec)
    if now_ms is not None:
        model_set.check_fresh(now_ms)
    return model_set


def set_verdict(directory: str | Path, at_ms: int) -> str:
    """`"ok"` if the policy would use the set for data at `at_ms`, else the refusal message.

    The same `load_models` the policy calls: one definition of a usable set.
    """
    try:
        load_models(directory, now_ms=at_ms)
    except ModelError as exc:
        return str(exc)
    return "ok"


def list_models(directory: str | Path) -> list[tuple[str, dict[str, Any] | None, str]]:
    """(name, card or None, status) for each head: status "ok" or the refusal message.

    Per head only; `set_verdict` says whether the set as a whole would be used.
    """
    directory = Path(directory)
    rows = []
    for name in HEAD_NAMES:
        try:
            card = read_card(directory / f"{name}.json")
            _load_one(directory, name)
            rows.append((name, card, "ok"))
        except ModelError as exc:
            card = None
            try:
                card = json.loads((directory / f"{name}.json").read_text())
            except (OSError, ValueError):
                card = None
            rows.append((name, card if isinstance(card, dict) else None, str(exc)))
    return rows
