"""One definition of a usable model set: the policy and `qctl models list` refuse the same cards."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.domain import Portfolio, SkipReason
from models.errors import ModelError
from models.policy import AIPolicy
from models.registry import list_models, load_models, set_verdict, write_card
from models.validity import CARD_FIELDS, iso_ms

from .conftest import snapshot_at


def _edited(value: object) -> object:
    """A different value of the same kind (so only the seal or a consistency check can tell)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 1
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1")
    if isinstance(value, list):
        return value[:-1] if value else ["x"]
    if isinstance(value, dict):
        return {**value, "edited": 1}
    raise AssertionError(type(value))


def _refusals(directory, head: str, at_ms: int) -> tuple[str, str, str | None]:
    """What the list command, the set check and the policy say about the set."""
    statuses = dict((name, status) for name, _, status in list_models(directory))
    policy = AIPolicy.from_dir(directory, round_trip_cost=0.0)
    return statuses[head], set_verdict(directory, at_ms), policy.error and str(policy.error)


def test_every_card_field_is_guarded(trained, tmp_path):
    card = json.loads((trained.out_dir / "direction.json").read_text())
    assert set(card) == set(CARD_FIELDS)  # the test below covers every field a card has
    at = card["training_window"]["end_ms"]
    assert set_verdict(trained.out_dir, at) == "ok"
    for field in CARD_FIELDS:
        copy = tmp_path / field
        shutil.copytree(trained.out_dir, copy)
        edited = dict(card, **{field: _edited(card[field])})
        (copy / "direction.json").write_text(json.dumps(edited))
        head, verdict, policy_error = _refusals(copy, "direction", at)
        assert head != "ok", field
        assert verdict != "ok", field
        assert policy_error is not None, field
        with pytest.raises(ModelError):
            load_models(copy)


def test_a_deliberate_edit_of_one_date_is_refused_too(trained, tmp_path):
    """The field the policy used to read alone: valid_until in the past, valid_until_ms not."""
    shutil.copytree(trained.out_dir, tmp_path / "m")
    for path in (tmp_path / "m").glob("*.json"):
        card = json.loads(path.read_text())
        card["valid_until"] = "2020-01-01T00:00:00Z"
        write_card(path, card)  # re-sealed: only the consistency check can catch it
    head, verdict, policy_error = _refusals(tmp_path / "m", "kill", 0)
    assert "disagrees" in head and "disagrees" in verdict and "disagrees" in policy_error


def test_expiry_is_judged_the_same_by_the_list_and_the_policy(trained, market, tmp_path):
    candles, funding = market
    expiry = int(candles["BTC-USDT"].index[1300])
    shutil.copytree(trained.out_dir, tmp_path / "m")
    for path in (tmp_path / "m").glob("*.json"):
        card = json.loads(path.read_text())
        card["valid_until_ms"], card["valid_until"] = expiry, iso_ms(expiry)
        write_card(path, card)
    assert set_verdict(tmp_path / "m", expiry) == "ok"
    assert "valid until" in set_verdict(tmp_path / "m", expiry + 1)
    policy = AIPolicy.from_dir(tmp_path / "m", funding=funding, round_trip_cost=0.0)
    before = policy.decide(snapshot_at(candles, 1290), Portfolio(wallet_balance=1e4))
    after = policy.decide(snapshot_at(candles, 1301), Portfolio(wallet_balance=1e4))
    assert SkipReason.MODEL_STALE not in {d.skip for d in before}
    assert {d.skip for d in after} == {SkipReason.MODEL_STALE}


def test_cards_of_one_set_must_agree(trained, tmp_path):
    shutil.copytree(trained.out_dir, tmp_path / "m")
    path = tmp_path / "m" / "kill.json"
    card = json.loads(path.read_text())
    card["costs"] = {**card["costs"], "round_trip": card["costs"]["round_trip"] + 0.001}
    write_card(path, card)
    assert "costs" in set_verdict(tmp_path / "m", 0)
