"""The one definition of a valid model card, read by the policy and by `qctl models list` alike.

A card is valid when every field is there with the right type, its seal (`card_sha256`, the
sha256 of the rest of the card in canonical JSON) matches, and its dates agree with each other:
`valid_until` is `valid_until_ms` written out, the training window's `start`/`end` are its
`start_ms`/`end_ms`, and validity begins after training ends. A set is fresh at a time if that
time is not past `valid_until_ms`. The seal is an integrity check against edits and bit rot, not
a signature: `seal_card` re-seals a card on purpose (a drill that expires a set does so).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from models.errors import ModelCorruptError, ModelStaleError

SEAL_KEY = "card_sha256"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# every field of a card and the type it must have
CARD_FIELDS: dict[str, Callable[[object], bool]] = {
    "format_version": _is_int,
    "name": lambda v: isinstance(v, str),
    "objective": lambda v: isinstance(v, str),
    "set_id": lambda v: isinstance(v, str) and bool(v),
    "features": _is_str_list,
    "inputs": _is_str_list,
    "feature_hash": lambda v: isinstance(v, str),
    "feature_spec": lambda v: isinstance(v, dict),
    "feature_ranges": lambda v: isinstance(v, dict),
    "training_window": lambda v: isinstance(v, dict),
    "symbols": _is_str_list,
    "holdout_symbols": _is_str_list,
    "data_hash": lambda v: isinstance(v, str),
    "metrics": lambda v: isinstance(v, dict),
    "outputs": lambda v: isinstance(v, dict),
    "train_config": lambda v: isinstance(v, dict),
    "costs": lambda v: isinstance(v, dict),
    "seed": _is_int,
    "created_at": lambda v: isinstance(v, str),
    "valid_until_ms": _is_int,
    "valid_until": lambda v: isinstance(v, str),
    "qctl_version": lambda v: isinstance(v, str),
    "model_file": lambda v: isinstance(v, str),
    "model_sha256": lambda v: isinstance(v, str) and len(v) == 64,
    SEAL_KEY: lambda v: isinstance(v, str) and len(v) == 64,
}


def iso_ms(ms: int) -> str:
    """A millisecond timestamp as the cards write it (UTC, whole seconds)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(card: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in card.items() if k != SEAL_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def seal_card(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card with its seal (re)computed over every other field."""
    out = {k: v for k, v in card.items() if k != SEAL_KEY}
    out[SEAL_KEY] = hashlib.sha256(_canonical(out)).hexdigest()
    return out


def check_card(card: object, where: str, name: str | None = None) -> dict[str, Any]:
    """Raise `ModelCorruptError` unless `card` is a complete, sealed, self-consistent card.

    `where` names the card in the message; `name`: the head the file should hold.
    """
    if not isinstance(card, dict):
        raise ModelCorruptError(f"model card {where} is not a JSON object")
    missing = [k for k in CARD_FIELDS if k not in card]
    if missing:
        raise ModelCorruptError(f"model card {where} lacks {', '.join(missing)}; retrain")
    unknown = sorted(set(card) - set(CARD_FIELDS))
    if unknown:
        raise ModelCorruptError(f"model card {where} has unknown field(s) {', '.join(unknown)}")
    bad = [k for k, ok in CARD_FIELDS.items() if not ok(card[k])]
    if bad:
        raise ModelCorruptError(f"model card {where}: field(s) of the wrong type: {', '.join(bad)}")
    if hashlib.sha256(_canonical(card)).hexdigest() != card[SEAL_KEY]:
        raise ModelCorruptError(
            f"model card {where} was edited after training (its card_sha256 does not match)"
        )
    if name is not None and (card["name"] != name or card["model_file"] != f"{name}.txt"):
        raise ModelCorruptError(f"model card {where} describes {card['name']!r}, not {name!r}")
    window = card["training_window"]
    for key in ("start_ms", "end_ms", "bar_ms"):
        if not _is_int(window.get(key)):
            raise ModelCorruptError(f"model card {where}: training_window.{key} missing")
    dates = [
        ("valid_until", card["valid_until"], card["valid_until_ms"]),
        ("training_window.start", window.get("start"), window["start_ms"]),
        ("training_window.end", window.get("end"), window["end_ms"]),
    ]
    for label, text, ms in dates:
        if text != iso_ms(ms):
            raise ModelCorruptError(
                f"model card {where}: {label} {text!r} disagrees with its milliseconds "
                f"({iso_ms(ms)})"
            )
    if not window["start_ms"] < window["end_ms"] < card["valid_until_ms"]:
        raise ModelCorruptError(
            f"model card {where}: valid_until must come after the training window"
        )
    if card["seed"] != card["train_config"].get("seed"):
        raise ModelCorruptError(f"model card {where}: seed differs from its train_config")
    return card


def check_fresh(card: Mapping[str, Any], at_ms: int) -> None:
    """Raise `ModelStaleError` if data at `at_ms` lies past the card's validity."""
    if at_ms > int(card["valid_until_ms"]):
        raise ModelStaleError(
            f"model set {card['set_id']} is valid until {card['valid_until']} "
            f"(data at {iso_ms(at_ms)}); retrain with `qctl train` on newer data"
        )
