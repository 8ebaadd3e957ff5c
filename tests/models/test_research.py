"""The candidate-idea research: legacy signal as the policy computes it, no look-ahead, costs."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import default_policy_path
from engine.core.policy import StaticPolicy, load_static_config
from engine.venues.simulated import BrokerConfig
from models.research import IdeaParams, evaluate_ideas, legacy_signal

from .conftest import SMALL

LEGACY = load_static_config(default_policy_path())
PARAMS = IdeaParams(tail_share=0.3, min_symbols=3)
COST = BrokerConfig.from_toml().break_even_offset()
HELD = ["XRP-USDT"]


def _end(candles) -> int:
    first = min(int(c.index[0]) for c in candles.values())
    return first + 1200 * 3_600_000


def test_the_legacy_signal_is_the_static_policy_s_score(market):
    candles, _ = market
    c = candles["BTC-USDT"]
    sig = legacy_signal(c, LEGACY)
    need = LEGACY.lookback_bars + 1
    closes = np.stack([c["close"].to_numpy()[i - need + 1 : i + 1] for i in (100, 700, 1500)])
    scores = StaticPolicy(LEGACY).score(closes)
    for i, s in zip((100, 700, 1500), scores, strict=True):
        assert sig["legacy_trend_z"].iloc[i] == pytest.approx(s.trend_z)
        assert sig["legacy_sigma"].iloc[i] == pytest.approx(s.sigma)


def test_validation_figures_never_read_bars_after_the_training_end(market):
    candles, funding = market
    end = _end(candles)
    base = evaluate_ideas(candles, funding, LEGACY, COST, SMALL, PARAMS, train_end_ms=end,
                          holdout_symbols=HELD)  # fmt: skip
    rng = np.random.default_rng(3)
    altered = {}
    for s, c in candles.items():
        c = c.copy()
        later = c.index >= end
        c.loc[later, ["open", "high", "low", "close"]] *= rng.uniform(0.5, 2.0, (later.sum(), 1))
        altered[s] = c
    again = evaluate_ideas(altered, funding, LEGACY, COST, SMALL, PARAMS, train_end_ms=end,
                           holdout_symbols=HELD)  # fmt: skip
    assert [r.name for r in base] == [r.name for r in again]
    assert len(base) == 8
    for a, b in zip(base, again, strict=True):
        assert a.validation == b.validation, a.name
    # the held-out figures do use those bars
    assert any(a.held_out != b.held_out for a, b in zip(base, again, strict=True))


def test_costs_above_every_move_leave_no_idea_standing(market):
    candles, funding = market
    moves = [np.abs(np.diff(np.log(c["close"].to_numpy()))).max() for c in candles.values()]
    cost = 50 * float(max(moves))
    rows = evaluate_ideas(candles, funding, LEGACY, cost, SMALL, PARAMS, train_end_ms=_end(candles),
                          holdout_symbols=HELD)  # fmt: skip
    for r in rows:
        assert r.validation["chosen"] is None, r.name
        every = r.validation["every_signal"]
        assert every["trades"] == 0 or every["net_mean"] < 0, r.name
        assert r.held_out["chosen"]["trades"] == 0


def test_a_walk_forward_block_is_judged_on_its_own_bars_only(market):
    candles, funding = market
    first = min(int(c.index[0]) for c in candles.values())
    end, stop = first + 1100 * 3_600_000, first + 1400 * 3_600_000
    kwargs = {"train_end_ms": end, "test_symbols": sorted(candles), "test_end_ms": stop}
    base = evaluate_ideas(candles, funding, LEGACY, COST, SMALL, PARAMS, **kwargs)
    altered = {}
    for s, c in candles.items():
        c = c.copy()
        c.loc[c.index >= stop, ["open", "high", "low", "close"]] *= 3.0
        altered[s] = c
    again = evaluate_ideas(altered, funding, LEGACY, COST, SMALL, PARAMS, **kwargs)
    for a, b in zip(base, again, strict=True):
        assert a.validation == b.validation and a.held_out == b.held_out, a.name
    assert sum(r.held_out["every_signal"]["trades"] for r in base) > 0
