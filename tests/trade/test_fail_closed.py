"""The fail-closed drill on a live session: with no usable model, not one entry reaches the exchange."""

from __future__ import annotations

import pytest

from engine.journal.store import Journal
from engine.venues.simulated import BrokerConfig
from models.policy import AIPolicy
from tests.trade.conftest import run_session


def _missing(tmp_path):
    return tmp_path / "no_models_here"


def _corrupt(tmp_path):
    d = tmp_path / "corrupt"
    d.mkdir()
    (d / "card.json").write_text("{ not json", encoding="utf-8")
    return d


@pytest.mark.parametrize("broken", [_missing, _corrupt], ids=["missing", "corrupt"])
def test_no_model_means_no_order(sim, tmp_path, broken):
    policy = AIPolicy.from_dir(
        broken(tmp_path), round_trip_cost=BrokerConfig.from_toml().break_even_offset()
    )
    db = tmp_path / "live.db"
    summary = run_session(sim, db, bars=12, policy=policy)
    assert summary.bars == 12 and summary.entries == 0
    assert sim.ledger()["orders"] == [] and sim.ledger()["algo_orders"] == []
    with Journal.open_readonly(db) as j:
        decisions = j.rows("decision")
    assert decisions and all(d["action"] == "skip" and d["skip"] for d in decisions)
