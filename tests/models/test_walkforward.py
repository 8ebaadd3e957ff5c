"""The walk-forward through the engine, and the harvest ladder chosen on validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.backtest import default_policy_path, run_backtest
from engine.core.policy import StaticPolicy
from engine.domain import AutonomyZone
from engine.venues.candle_files import load_market_data, sample_data_dir
from models.compare import OutOfSample
from models.config import TrainConfig
from models.errors import TrainConfigError
from models.features import FeatureSpec
from models.report import render_report
from models.train import LadderTrades, choose_ladder, simulate_ladder
from models.walkforward import (
    RESULT_FILE,
    WalkForwardConfig,
    slice_market,
    walk_forward,
    walk_forward_blocks,
)

from .conftest import BARS, SMALL, SYMBOLS

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def small_market():
    md = load_market_data(sample_data_dir(), symbols=list(SYMBOLS))
    first = min(int(sd.candles.index[0]) for sd in md.symbols.values())
    return slice_market(md, first, first + BARS * HOUR_MS, 0)


@pytest.fixture(scope="module")
def walked(small_market):
    cfg = TrainConfig.from_mapping({"embargo_bars": 6}, base=SMALL)
    wf = WalkForwardConfig.from_mapping({"folds": 2, "initial_fraction": 0.6})
    return walk_forward(small_market, default_policy_path(), cfg, wf, equity=10_000.0)


def test_blocks_follow_each_other_to_the_end_with_an_embargo_before_each(small_market):
    candles = {s: sd.candles for s, sd in small_market.symbols.items()}
    cfg = TrainConfig.from_mapping({"embargo_bars": 6}, base=SMALL)
    blocks = walk_forward_blocks(candles, cfg, WalkForwardConfig(folds=3, initial_fraction=0.5))
    last = max(int(c.index[-1]) for c in candles.values()) + HOUR_MS
    assert blocks[-1].end_ms == last
    for a, b in zip(blocks, blocks[1:], strict=False):
        assert a.end_ms == b.start_ms
    for b in blocks:
        assert b.train_end_ms == b.start_ms - 6 * HOUR_MS
    with pytest.raises(TrainConfigError):
        WalkForwardConfig(folds=0, initial_fraction=0.5)


def test_each_fold_trains_before_its_block_and_runs_both_policies_through_the_engine(
    walked, small_market
):
    assert len(walked["folds"]) == 2
    for fold in walked["folds"]:
        assert fold["train_end"] < fold["start"] < fold["end"]
        for label in ("legacy", "ai"):
            run = fold["runs"][label]
            for key in ("total_return", "sharpe", "max_drawdown", "trades", "fees", "funding"):
                assert key in run
            assert run["limit_breaches"] == 0
    # the legacy column is the engine's own backtest of the legacy policy on the same bars
    fold = walked["folds"][1]
    start = int(np.datetime64(fold["start"].rstrip("Z"), "ms").astype(np.int64))
    end = int(np.datetime64(fold["end"].rstrip("Z"), "ms").astype(np.int64))
    part = slice_market(small_market, start, end, FeatureSpec().lookback_bars + 1)
    direct = run_backtest(
        part, OutOfSample(StaticPolicy.from_toml(default_policy_path()), start), equity=10_000.0
    )
    assert fold["runs"]["legacy"]["trades"] == direct.metrics.n_trades
    assert fold["runs"]["legacy"]["total_return"] == pytest.approx(direct.metrics.total_return)
    summary = walked["summary"]
    assert summary["folds"] == 2
    assert 0 <= summary["ai_sharpe_above_legacy"] <= 2
    json.dumps(walked)  # JSON-ready, as `qctl train --walk-forward` writes it


def test_the_report_shows_the_walk_forward_of_its_own_set_only(walked, model_copy, trained):
    path = model_copy / RESULT_FILE
    path.write_text(json.dumps(dict(walked, model_set=trained.set_id)))
    page = render_report(model_copy)
    assert "Walk-forward through the engine" in page
    assert page.count("<td>legacy</td>") == 2  # one row per fold
    assert "fold 1, " in page and "fold 2, " in page  # each fold's equity plot
    path.write_text(json.dumps(dict(walked, model_set="someotherset")))
    assert "belongs to model set someotherset" in render_report(model_copy)


def _trades(close: list[list[float]], stop: float, fav: list[float]) -> LadderTrades:
    c = np.array(close, dtype=float)
    n = len(c)
    return LadderTrades(
        stop=np.full(n, stop),
        favourable=np.tile(np.array(fav, dtype=float), (n, 1)),
        close=c,
        best=c.copy(),
        worst=c.copy(),
        funding=np.zeros(n),
    )


def test_the_ladder_simulation_follows_the_exit_rules_net_of_costs():
    zone = AutonomyZone()
    cost = 0.001
    # straight up through every rung: T1 and T2 take their share at the close, T3 the rest
    up = _trades([[0.01, 0.02, 0.03, 0.04, 0.05]], stop=0.01, fav=[0.01, 0.01, 0.02, 0.03])
    net = simulate_ladder(up, 1.0, zone, (0.4, 0.5), cost)
    assert net[0] == pytest.approx(0.4 * 0.01 + 0.6 * 0.5 * 0.02 + 0.3 * 0.03 - cost)
    # down through the stop: the whole position at the stop
    down = _trades([[-0.005, -0.02, -0.03]], stop=0.01, fav=[0.01, 0.02, 0.03, 0.04])
    assert simulate_ladder(down, 1.0, zone, (0.4, 0.5), cost)[0] == pytest.approx(-0.01 - cost)
    # lock: up past the lock then back down closes at break-even-plus (the round trip), net 0
    back = _trades([[0.006, -0.02]], stop=0.01, fav=[0.005, 0.05, 0.06, 0.07])
    assert simulate_ladder(back, 1.0, zone, (0.4, 0.5), cost)[0] == pytest.approx(0.0)


def test_the_ladder_scale_is_chosen_by_net_return_per_trade():
    zone = AutonomyZone()
    cfg = TrainConfig.from_mapping({"ladder_scales": [0.5, 1.0, 3.0]})
    # trends that run far: wider rungs keep more of the move
    paths = [[0.01 * (j + 1) for j in range(12)]] * 20
    trades = _trades(paths, stop=0.01, fav=[0.005, 0.01, 0.015, 0.02])
    chosen = choose_ladder(trades, cfg, zone, (0.4, 0.5), 0.001)
    means = [c["net_mean"] for c in chosen["candidates"]]
    assert chosen["scale"] == 3.0 and chosen["net_mean"] == max(means)
    assert means == sorted(means)
    # moves that come back: taking profit early is worth more
    paths = [[0.01, 0.012, 0.0, -0.012, -0.02, -0.02]] * 20
    trades = _trades(paths, stop=0.03, fav=[0.02, 0.01, 0.015, 0.02])
    chosen = choose_ladder(trades, cfg, zone, (0.4, 0.5), 0.001)
    assert chosen["scale"] < 3.0


def test_a_scale_that_pins_t1_to_the_zone_bound_is_not_chosen():
    """A ladder whose T1 is the zone's floor for every trade decides nothing (and fails
    `qctl verify`'s variation check): it loses to any scale whose T1 varies."""
    zone = AutonomyZone()
    cfg = TrainConfig.from_mapping({"ladder_scales": [0.5, 1.0, 3.0]})
    n = 20
    paths = np.array([[0.006, -0.03]] * n)  # a small pop, then a fall: the earliest T1 pays most
    fav_t1 = np.linspace(0.001, 0.009, n)  # at 0.5x every T1 is under the 0.5 R floor
    trades = LadderTrades(
        stop=np.full(n, 0.01),
        favourable=np.column_stack([fav_t1 / 2, fav_t1, fav_t1 * 1.5, fav_t1 * 2]),
        close=paths,
        best=paths.copy(),
        worst=paths.copy(),
        funding=np.zeros(n),
    )
    chosen = choose_ladder(trades, cfg, zone, (0.4, 0.5), 0.001)
    by_scale = {c["scale"]: c for c in chosen["candidates"]}
    assert by_scale[0.5]["t1_varies"] is False and by_scale[1.0]["t1_varies"] is True
    assert by_scale[0.5]["net_mean"] >= max(c["net_mean"] for c in chosen["candidates"])
    assert chosen["scale"] != 0.5 and chosen["t1_varies"]


def test_cards_record_the_ladder_and_the_policy_uses_it(trained):
    t1 = trained.cards["favourable_t1"]
    ladder = t1["metrics"]["ladder"]
    assert t1["outputs"]["ladder_scale"] == ladder["scale"]
    assert ladder["scale"] in TrainConfig.defaults().ladder_scales or ladder["scale"] in [
        c["scale"] for c in ladder["candidates"]
    ]
    assert "net_mean" in ladder and ladder["trades"] > 0
