"""Training: deterministic, blind to everything after --train-end, cards complete."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from engine.domain import AutonomyZone
from models.config import TrainConfig
from models.errors import TrainConfigError, TrainDataError
from models.features import FeatureSpec
from models.heads import auc, ndcg, pinball, platt_apply, platt_fit
from models.registry import HEAD_NAMES
from models.train import (
    KillTrades,
    build_training_set,
    fold_bounds,
    kill_grid,
    kill_reduce_levels,
    kill_thresholds,
    reduce_fraction_grid,
    train_models,
)

from .conftest import SMALL


def _model_bytes(directory):
    return {name: (directory / f"{name}.txt").read_bytes() for name in HEAD_NAMES}


def test_same_seed_same_bytes_and_future_data_is_never_read(market, trained, tmp_path):
    candles, funding = market
    end = trained.cards["direction"]["training_window"]["end_ms"]
    # scramble everything at or after the training end: the models must not change
    rng = np.random.default_rng(3)
    later = {}
    for s, c in candles.items():
        c = c.copy()
        mask = c.index >= end
        c.loc[mask, ["open", "high", "low", "close"]] *= rng.uniform(0.5, 2.0, (mask.sum(), 1))
        later[s] = c
    again = train_models(later, funding, tmp_path / "again", SMALL, train_end_ms=end)
    assert _model_bytes(again.out_dir) == _model_bytes(trained.out_dir)
    assert again.set_id == trained.set_id


def test_another_seed_gives_other_models(market, trained, tmp_path):
    candles, funding = market
    other = train_models(candles, funding, tmp_path / "seed", replace(SMALL, seed=SMALL.seed + 1))
    assert _model_bytes(other.out_dir) != _model_bytes(trained.out_dir)


def test_cards_carry_what_the_registry_and_the_report_need(trained, market):
    spec = FeatureSpec()
    for name in HEAD_NAMES:
        card = json.loads((trained.out_dir / f"{name}.json").read_text())
        assert card["feature_hash"] == spec.version()
        assert card["features"] == list(spec.names())
        assert card["data_hash"] and card["qctl_version"] and card["created_at"]
        assert card["valid_until_ms"] > card["training_window"]["end_ms"]
        assert set(card["feature_ranges"]) == set(spec.names())
        assert card["metrics"], name
    metrics = trained.metrics
    assert 0 <= metrics["direction"]["auc"] <= 1
    assert 0 <= metrics["kill"]["auc"] <= 1
    assert metrics["adverse"]["pinball"] > 0
    assert any(k.startswith("ndcg@") for k in metrics["universe"])
    thresholds = trained.cards["kill"]["outputs"]["thresholds_by_regime"]
    assert all(0.3 <= v <= 0.9 for v in thresholds.values())
    # the graded reduce step, per regime next to each kill threshold, from the grids
    outputs = trained.cards["kill"]["outputs"]
    levels, fracs = outputs["reduce_thresholds_by_regime"], outputs["reduce_fracs_by_regime"]
    assert set(levels) == set(fracs) == set(thresholds)
    assert all(0.3 <= levels[k] <= thresholds[k] for k in thresholds)
    assert set(fracs.values()) <= set(reduce_fraction_grid(SMALL).tolist())
    assert set(metrics["kill"]["expectancy_with_reduce"]) >= {"all"}


def _trades(kill_p, path, held, regime) -> KillTrades:
    return KillTrades(
        kill_p=np.array(kill_p, dtype=float),
        path=np.array(path, dtype=float),
        held=np.array(held, dtype=float),
        regime=np.array(regime, dtype=float),
    )


def test_reduce_level_and_fraction_are_chosen_on_validation_trades():
    """Synthetic trades whose best reduce step is known by hand.

    Grids (5 points, zone 0.3-0.9): levels 0.3 0.45 0.6 0.75 0.9; fractions 1/6 ... 5/6.
    - regime 0: the kill probability sits at 0.5 (above 0.3 and 0.45, below the 0.6 kill), the
      trade is up 2 % at the first bar and down 4 % at the horizon: reducing as early and as
      much as possible pays, at 0.45 (ties with 0.3 go to the higher level) and 5/6;
    - regime 1: the same probabilities but the early bar is the loser: never reduce, which is the
      kill threshold itself (0.75 for this regime) with the smallest fraction;
    - regime 2: the probability passes the 0.6 kill at the first bar, so the kill takes the whole
      trade and a reduce can never come first: no reduce either;
    - regime 3: too few trades, it takes the values chosen over all trades.
    """
    cfg = replace(SMALL, grid_points=5, min_data_in_leaf=3)
    zone = AutonomyZone()
    assert kill_grid(cfg, zone).tolist() == [0.3, 0.45, 0.6, 0.75, 0.9]
    rows = (
        [([0.5, 0.5, 0.5], [0.02, 0.0, -0.01], -0.04, 0)] * 6
        + [([0.5, 0.5, 0.5], [-0.02, 0.0, 0.01], 0.04, 1)] * 3
        + [([0.7, 0.7, 0.7], [-0.05, 0.0, 0.05], 0.1, 2)] * 3
        + [([0.5, 0.5, 0.5], [0.02, 0.0, -0.01], -0.04, 3)] * 1
    )
    trades = _trades(*(list(col) for col in zip(*rows, strict=True)))
    kill = {"all": 0.6, "0": 0.6, "1": 0.75, "2": 0.6, "3": 0.6}
    chosen = kill_reduce_levels(trades, kill, cfg, zone)
    assert chosen.thresholds == {"all": 0.45, "0": 0.45, "1": 0.75, "2": 0.6, "3": 0.45}
    assert chosen.fracs == pytest.approx(
        {"all": 5 / 6, "0": 5 / 6, "1": 1 / 6, "2": 1 / 6, "3": 5 / 6}
    )
    # regime 0: -4 % held, +2 % on 5/6 of it at the first bar
    assert chosen.expectancy["0"] == pytest.approx(-0.04 + 5 / 6 * 0.06)
    assert chosen.expectancy["1"] == pytest.approx(0.04) and "3" not in chosen.expectancy
    assert all(chosen.thresholds[k] <= kill[k] for k in kill)


def test_the_kill_thresholds_are_chosen_on_the_same_trades():
    cfg = replace(SMALL, grid_points=5, min_data_in_leaf=3)
    # the probability climbs to 0.8 at the second bar, where the trade is best
    trades = _trades([[0.4, 0.8, 0.8]] * 4, [[-0.01, 0.03, -0.02]] * 4, [-0.05] * 4, [0] * 4)
    thresholds, expectancy = kill_thresholds(None, None, cfg, AutonomyZone(), 0, trades)
    assert thresholds == {"all": 0.45, "0": 0.45}  # closes at 0.8 > 0.45, not at 0.4 > 0.3
    assert expectancy["all"] == pytest.approx(0.03) and expectancy["no_kill"] == -0.05


def test_training_rows_end_a_full_horizon_before_the_training_end(market):
    candles, funding = market
    cfg = SMALL
    end = int(candles["BTC-USDT"].index[1000])
    ts = build_training_set(candles, funding, FeatureSpec(), cfg, train_end_ms=end)
    last = int(ts.frame["timestamp"].max())
    assert last + (cfg.horizon_bars + 1) * ts.bar_ms <= end


def test_walk_forward_blocks_leave_a_purge_before_each_validation_block():
    cfg = TrainConfig.from_mapping({"folds": 3, "val_fraction": 0.1})
    ts = np.arange(1000, dtype=np.int64) * 10
    bounds = fold_bounds(ts, cfg)
    assert len(bounds) == 3
    assert bounds[0][0] == 7000 and bounds[-1][1] > ts[-1]
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


def test_holdout_symbols_are_not_trained_on(market, tmp_path):
    candles, funding = market
    result = train_models(candles, funding, tmp_path / "h", SMALL, holdout_symbols=["XRP-USDT"])
    card = result.cards["direction"]
    assert "XRP-USDT" not in card["symbols"] and card["holdout_symbols"] == ["XRP-USDT"]
    with pytest.raises(TrainDataError, match="not in the data"):
        train_models(candles, funding, tmp_path / "x", SMALL, holdout_symbols=["NOPE-USDT"])


def test_too_little_data_is_a_clear_error(market, tmp_path):
    candles, funding = market
    end = int(candles["BTC-USDT"].index[100])
    with pytest.raises(TrainDataError, match="bars before"):
        train_models(candles, funding, tmp_path / "e", SMALL, train_end_ms=end)


def test_train_config_from_toml(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("[train]\nrounds = 7\nfavourable_quantiles = [0.2, 0.4, 0.6, 0.8]\n")
    cfg = TrainConfig.from_toml(path)
    assert cfg.rounds == 7 and cfg.favourable_quantiles == (0.2, 0.4, 0.6, 0.8)
    path.write_text("[train]\nround = 7\n")
    with pytest.raises(TrainConfigError, match="unknown training parameter 'round'"):
        TrainConfig.from_toml(path)
    with pytest.raises(TrainConfigError, match="favourable_quantiles"):
        TrainConfig.from_mapping({"favourable_quantiles": [0.9, 0.4, 0.6, 0.8]})
    with pytest.raises(TrainConfigError, match="not found"):
        TrainConfig.from_toml(tmp_path / "missing.toml")


def test_metric_helpers_on_known_values():
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auc(np.array([0, 1]), np.array([0.9, 0.1])) == 0.0
    assert pinball(np.array([1.0]), np.array([0.0]), 0.8) == pytest.approx(0.8)
    assert pinball(np.array([0.0]), np.array([1.0]), 0.8) == pytest.approx(0.2)
    rel = np.array([3, 0, 0, 3])
    assert ndcg(rel, np.array([2.0, 1.0, 2.0, 1.0]), np.array([1, 1, 2, 2]), 1) == pytest.approx(
        0.5
    )


def test_platt_scaling_recovers_a_known_calibration():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=20000)
    y = (rng.random(20000) < platt_apply(raw, 0.5, -0.3)).astype(float)
    a, b = platt_fit(raw, y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-0.3, abs=0.05)


def test_no_usable_rows_is_a_clear_data_error() -> None:
    """Degenerate data (no complete feature/label row) is a one-line TrainDataError, not LightGBM's crash."""
    import numpy as np

    from models.config import TrainConfig
    from models.errors import TrainDataError
    from models.heads import dataset

    with pytest.raises(TrainDataError, match="no usable training rows"):
        dataset(TrainConfig.defaults(), np.zeros((0, 3)), ["a", "b", "c"])


def test_each_fold_trains_only_on_rows_purged_and_embargoed_before_its_block(market):
    from models.train import fold_jobs

    candles, funding = market
    cfg = replace(SMALL, embargo_bars=10)
    ts_set = build_training_set(candles, funding, FeatureSpec(), cfg)
    jobs = fold_jobs(ts_set, cfg)
    assert len(jobs) == cfg.folds
    for rows, block in jobs:
        # a training label ends `horizon_bars` after its bar: it must end, plus the embargo,
        # before the block's first bar
        last_label_end = int(rows["timestamp"].max()) + cfg.horizon_bars * ts_set.bar_ms
        assert last_label_end + cfg.embargo_bars * ts_set.bar_ms < int(block["timestamp"].min())
        assert int(rows["timestamp"].max()) < int(block["timestamp"].min())
    # without the embargo the gap shrinks by exactly the embargo
    plain = fold_jobs(ts_set, replace(cfg, embargo_bars=0))
    assert all(
        int(p[0]["timestamp"].max()) > int(e[0]["timestamp"].max())
        for p, e in zip(plain, jobs, strict=True)
    )
