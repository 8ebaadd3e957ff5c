"""Shared fixtures: a small slice of the shipped real data and one small trained model set."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.domain import Bars, MarketSnapshot
from engine.venues.candle_files import load_market_data, sample_data_dir
from models.config import TrainConfig
from models.train import TrainResult, train_models

SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT")
BARS = 1600
HOUR_MS = 3_600_000

# Small and single-threaded so the suite stays fast and independent of the machine's load.
# `min_entry_t = 0`, `entry_fold_share = 0`: these small models' edge is too thin to clear the
# evidence bar, and most
# tests are about the mechanics of the decisions they make once they trade; a small Kelly
# fraction keeps their (noisy, large) validation edge from putting every size at the cap.
SMALL = TrainConfig.from_mapping(
    {
        "min_entry_t": 0.0,
        "entry_fold_share": 0.0,
        "kelly_fraction": 0.02,
        "num_threads": 1,
        "num_leaves": 7,
        "rounds": 15,
        "min_data_in_leaf": 30,
        "folds": 2,
        "val_fraction": 0.2,
        "grid_points": 5,
        "horizon_bars": 12,
    }
)


@pytest.fixture(scope="session")
def market() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame | None]]:
    """The first BARS hours of four shipped symbols, with their funding."""
    md = load_market_data(sample_data_dir(), symbols=list(SYMBOLS))
    candles = {s: d.candles.iloc[:BARS].copy() for s, d in md.symbols.items()}
    end = min(int(c.index[-1]) for c in candles.values())
    funding = {
        s: d.funding.loc[d.funding.index <= end].copy() if d.funding is not None else None
        for s, d in md.symbols.items()
    }
    return candles, funding


@pytest.fixture(scope="session")
def trained(market, tmp_path_factory) -> TrainResult:
    candles, funding = market
    out = tmp_path_factory.mktemp("models") / "set"
    return train_models(candles, funding, out, SMALL)


@pytest.fixture
def model_copy(trained, tmp_path) -> Path:
    """A private copy of the trained set, for drills that damage it."""
    dest = tmp_path / "models"
    shutil.copytree(trained.out_dir, dest)
    return dest


def snapshot_at(candles: dict[str, pd.DataFrame], i: int) -> MarketSnapshot:
    """What is known once bar i (of every symbol) has closed."""
    series = {
        s: Bars.from_arrays(
            c.index.to_numpy(np.int64),
            *(c[k].to_numpy() for k in ("open", "high", "low", "close", "volume")),
        )
        for s, c in candles.items()
    }
    ts = int(next(iter(candles.values())).index[i]) + HOUR_MS
    known = {
        s: int(np.searchsorted(c.index.to_numpy(), ts - HOUR_MS, side="right"))
        for s, c in candles.items()
    }
    return MarketSnapshot(ts, HOUR_MS, series, known)
