"""Training: deterministic, blind to everything after --train-end, cards complete."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from models.config import TrainConfig
from models.errors import TrainConfigError, TrainDataError
from models.features import FeatureSpec
from models.heads import auc, ndcg, pinball, platt_apply, platt_fit
from models.registry import HEAD_NAMES
from models.train import build_training_set, fold_bounds, train_models

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
