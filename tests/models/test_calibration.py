"""Calibration on validation improves probabilities; size is a fraction of the calibrated edge."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.domain import Portfolio, SafetyLimits
from models.heads import brier, isotonic_apply, isotonic_fit, platt_apply, platt_fit
from models.policy import AIPolicy, UniverseConfig
from models.registry import write_card

from .conftest import snapshot_at


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores whose sigmoid is badly calibrated: the truth is sigmoid(3 * raw - 0.8)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(3 * raw - 0.8)))).astype(float)
    return raw, y


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_improves_the_brier_score_out_of_sample(method):
    fit_raw, fit_y = _synthetic(5000, 1)
    raw, y = _synthetic(5000, 2)
    naive = brier(y, 1 / (1 + np.exp(-raw)))
    if method == "isotonic":
        p = isotonic_apply(raw, *isotonic_fit(fit_raw, fit_y))
    else:
        p = platt_apply(raw, *platt_fit(fit_raw, fit_y))
    assert brier(y, p) < naive - 0.01
    assert brier(y, p) < brier(y, np.full(len(y), fit_y.mean()))


def test_isotonic_knots_are_monotone_few_and_each_rests_on_many_points():
    raw, y = _synthetic(3000, 3)
    xs, ys = isotonic_fit(raw, y, max_points=10)
    assert len(xs) <= 10 and np.all(np.diff(ys) >= 0) and np.all(np.diff(xs) > 0)
    # an outlier at the top end moves no knot alone
    xs2, ys2 = isotonic_fit(np.r_[raw, 99.0], np.r_[y, 1.0], max_points=10)
    assert ys2[-1] == pytest.approx(ys[-1], abs=0.01)


def _entries(directory, market, count: int) -> dict:
    """The entries a model set makes over a stretch of the market, by (ts, symbol), with a
    universe of `count` symbols."""
    candles, funding = market
    policy = AIPolicy.from_dir(
        directory,
        funding=funding,
        round_trip_cost=0.0,
        universe=UniverseConfig.from_mapping({"count": count}),
    )
    out = {}
    for i in range(1300, 1590, 3):
        for d in policy.decide(snapshot_at(candles, i), Portfolio(wallet_balance=1e4)):
            if d.skip is None:
                out[(d.ts, d.symbol)] = d
    return out


def test_size_is_the_card_s_fraction_of_the_kelly_bet(trained, market, tmp_path):
    """Halving the Kelly fraction on the card halves every uncapped size, nothing else."""
    shutil.copytree(trained.out_dir, tmp_path / "half")
    path = tmp_path / "half" / "direction.json"
    card = json.loads(path.read_text())
    card["outputs"]["kelly_fraction"] /= 2
    write_card(path, card)
    full = _entries(trained.out_dir, market, count=4)
    half = _entries(tmp_path / "half", market, count=4)
    assert full and full.keys() == half.keys()
    cap = SafetyLimits().max_position_fraction
    pairs = [(full[k].size_pct, half[k].size_pct) for k in full if full[k].size_pct < cap]
    assert pairs
    assert all(h == pytest.approx(f / 2) for f, h in pairs)
    assert all(full[k].side == half[k].side for k in full)


def test_the_kelly_bet_is_shared_across_the_universe(trained, market):
    """Twice the symbols in the universe: every uncapped size of the same entry halves."""
    four, eight = (
        _entries(trained.out_dir, market, 4),
        _entries(trained.out_dir, market, 8),
    )  # 4 symbols in the data: the same entries either way
    assert four and four.keys() == eight.keys()
    cap = SafetyLimits().max_position_fraction
    pairs = [(four[k].size_pct, eight[k].size_pct) for k in four if four[k].size_pct < cap]
    assert pairs and all(e == pytest.approx(f / 2) for f, e in pairs)
