"""Features: never a value from after the bar, one code path for training and the policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.features import (
    FeatureError,
    FeatureSpec,
    build_features,
    cross_sectional_rank,
    feature_matrix,
    funding_arrays,
    symbol_features,
)

SPEC = FeatureSpec()


def _perturb_after(frame: pd.DataFrame, t: int, seed: int, cols) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    later = out.index > t
    for col in cols:
        out.loc[later, col] = out.loc[later, col].to_numpy() * rng.uniform(0.5, 1.5, later.sum())
    return out


def test_features_ignore_every_bar_after_t(market):
    candles, funding = market
    base = build_features(candles, funding, SPEC)
    t = int(candles["BTC-USDT"].index[900])
    moved_candles = {
        s: _perturb_after(c, t, i, ["open", "high", "low", "close", "volume"])
        for i, (s, c) in enumerate(candles.items())
    }
    moved_funding = {s: _perturb_after(f, t, 7, ["funding_rate"]) for s, f in funding.items()}
    moved = build_features(moved_candles, moved_funding, SPEC)

    past = base["timestamp"] <= t
    pd.testing.assert_frame_equal(base[past], moved[past])
    # the perturbation is real: later features do change
    assert not base[~past][list(SPEC.names())].equals(moved[~past][list(SPEC.names())])


def test_last_bar_from_a_tail_window_equals_the_full_series(market):
    candles, funding = market
    need = SPEC.lookback_bars
    symbols = sorted(candles)
    for end in (need, 700, 1500):
        tails = [candles[s].iloc[end - need : end] for s in symbols]
        fund = [funding_arrays(funding[s]) for s in symbols]
        last = feature_matrix(
            np.stack([t.index.to_numpy() for t in tails]),
            np.stack([t["high"].to_numpy() for t in tails]),
            np.stack([t["low"].to_numpy() for t in tails]),
            np.stack([t["close"].to_numpy() for t in tails]),
            np.stack([t["volume"].to_numpy() for t in tails]),
            fund,
            SPEC,
            last_only=True,
        )[:, 0, :]
        full = np.stack(
            [
                symbol_features(candles[s], funding[s], SPEC).iloc[end - 1].to_numpy()
                for s in symbols
            ]
        )
        np.testing.assert_allclose(last, full, rtol=1e-9, atol=1e-12)
        assert np.isfinite(last).all(), "lookback_bars must be enough for complete features"


def test_one_bar_short_of_the_lookback_leaves_features_missing(market):
    candles, funding = market
    c = candles["BTC-USDT"].iloc[: SPEC.lookback_bars - 1]
    feats = symbol_features(c, funding["BTC-USDT"], SPEC)
    assert feats.iloc[-1].isna().any()


def test_funding_is_taken_as_of_the_bar_open_never_later():
    idx = pd.Index(np.arange(6, dtype=np.int64) * 3_600_000, name="timestamp")
    candles = pd.DataFrame(
        {"open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0, "volume": 5.0}, index=idx
    )
    funding = pd.DataFrame(
        {"funding_rate": [0.001, 0.002, 0.003]},
        index=pd.Index([0, 2 * 3_600_000, 2 * 3_600_000 + 1], dtype=np.int64),
    )
    spec = FeatureSpec(funding_prints=2)
    feats = symbol_features(candles, funding, spec)
    assert feats["funding_rate"].tolist() == [0.001, 0.001, 0.002, 0.003, 0.003, 0.003]
    assert np.isnan(feats["funding_mean"].iloc[0])
    assert feats["funding_mean"].iloc[2] == pytest.approx(0.0015)
    assert feats["funding_mean"].iloc[3] == pytest.approx(0.0025)


def test_cross_sectional_ranks_only_count_symbols_present_at_that_time(market):
    candles, funding = market
    late = candles["SOL-USDT"].iloc[600:]  # SOL "lists" later than the others
    frame = build_features({**candles, "SOL-USDT": late}, funding, SPEC)
    t_before = int(candles["BTC-USDT"].index[500])
    at = frame[frame["timestamp"] == t_before]
    assert "SOL-USDT" not in set(at["symbol"])
    assert sorted(at["xs_rank_sigma"]) == pytest.approx([1 / 3, 2 / 3, 1.0])
    t_after = int(candles["BTC-USDT"].index[1200])
    assert sorted(frame[frame["timestamp"] == t_after]["xs_rank_sigma"]) == pytest.approx(
        [0.25, 0.5, 0.75, 1.0]
    )


def test_numpy_rank_matches_pandas_rank():
    values = np.array([0.3, np.nan, 0.1, 0.3, 2.0])
    expected = pd.Series(values).rank(pct=True).to_numpy()
    np.testing.assert_allclose(cross_sectional_rank(values), expected, equal_nan=True)


def test_regime_takes_the_four_labels(market):
    candles, funding = market
    feats = symbol_features(candles["ETH-USDT"], funding["ETH-USDT"], SPEC)
    assert set(feats["regime"].dropna().unique()) == {0.0, 1.0, 2.0, 3.0}


def test_spec_version_tracks_names_and_parameters():
    assert FeatureSpec().version() == FeatureSpec().version()
    assert FeatureSpec(vol_window=30).version() != SPEC.version()
    assert FeatureSpec(use_funding=False).version() != SPEC.version()
    assert "funding_rate" not in FeatureSpec(use_funding=False).names()
    assert len(set(SPEC.names())) == len(SPEC.names())
    assert FeatureSpec.from_params(SPEC.params()) == SPEC


def test_bad_specs_and_candles_are_refused():
    with pytest.raises(FeatureError):
        FeatureSpec(vol_window=1)
    with pytest.raises(FeatureError):
        FeatureSpec.from_params({"no_such_window": 3})
    bad = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.Index([0, 1], dtype=np.int64))
    with pytest.raises(FeatureError, match="lack column"):
        symbol_features(bad, None, SPEC)
