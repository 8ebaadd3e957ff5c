"""The loop's speed shortcuts leave exactly the journal of the plain path.

The broker's quiet-bar test (`SimulatedBroker._quiet_bar`: nothing can fill or liquidate in this
bar, so the full bar pass is skipped) must change nothing: with every bar through the full pass,
the journal is the same row for row, bit for bit, and so are the curve, trades and metrics. On
the shipped sample, on a book pushed past the exposure limit, and on randomised hostile books
(gaps, funding prints, liquidations, harvest ladders, kill and time exits). The hostile books are
also a harness for any later shortcut: compare it against the plain path the same way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.backtest import BacktestResult, run_backtest
from engine.core.bars import MarketData, SymbolData
from engine.core.policy import StaticPolicy
from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.journal.store import Journal
from engine.venues.candle_files import load_market_data, sample_data_dir
from engine.venues.simulated import BrokerConfig, SimulatedBroker
from tests.engine.limits_scenario import FullBookPolicy, falling_market
from tests.engine.test_backtest_golden import POLICY, TABLES, journal_digest

H = 3_600_000
T0 = 1_750_000_000_000 // H * H
# qctl: ignore[symbol_selection] test data, not a trading universe
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT")


def hostile_market(seed: int, n: int = 600) -> MarketData:
    """Random walks with fat-tailed moves and market-wide wicks (liquidations), missing bars (gaps),
    symbols starting late and ending early, and funding prints every 8 bars."""
    rng = np.random.default_rng(seed)
    crashes = rng.choice(np.arange(n // 4, n), size=4, replace=False)  # market-wide wicks
    out = {}
    for k, sym in enumerate(SYMBOLS):
        steps = rng.standard_t(3, n) * 0.012 + 0.0004 * rng.standard_normal()
        close = 50.0 * (k + 1) * np.exp(np.cumsum(steps))
        opens = np.concatenate(([close[0]], close[:-1])) * np.exp(rng.normal(0, 0.002, n))
        wick = np.abs(rng.normal(0, 0.008, n))
        high = np.maximum(opens, close) * (1 + wick)
        low = np.minimum(opens, close) * (1 - wick * rng.uniform(0.5, 1.5, n))
        low[crashes] *= 0.3  # every position at a ruinous adverse extreme
        high[crashes] *= 3.0
        ts = T0 + H * np.arange(n, dtype=np.int64)
        keep = rng.uniform(size=n) > 0.03  # ~3 % of bars missing
        lo_cut, hi_cut = int(rng.integers(0, n // 6)), n - int(rng.integers(0, n // 6))
        keep[:lo_cut] = keep[hi_cut:] = False
        df = pd.DataFrame(
            {"open": opens, "high": high, "low": low, "close": close, "volume": 1.0},
            index=pd.Index(ts, name="timestamp"),
        )[keep]
        f_ts = ts[::8] + H // 2
        funding = pd.DataFrame(
            {"funding_rate": rng.normal(0.0001, 0.0006, len(f_ts))},
            index=pd.Index(f_ts, name="timestamp"),
        )
        out[sym] = SymbolData(sym, "1h", "perpetual", df, funding, "synthetic")
    return MarketData(out, "1h")


def hostile_policy(seed: int) -> StaticPolicy:
    """The legacy rules, made aggressive: high leverage, big size, frequent refreshes, a tight
    harvest ladder and kill thresholds that fire."""
    rng = np.random.default_rng(seed)
    base = StaticPolicy.from_toml(POLICY).config
    kill = float(rng.uniform(0.42, 0.6))
    cfg = dataclasses.replace(
        base,
        leverage=float(rng.choice([20.0, 50.0, 75.0])),
        notional_usdt=float(rng.uniform(1_500, 4_500)),
        refresh_bars=int(rng.integers(2, 7)),
        lookback_bars=12,
        min_trend_score=0.0,
        min_sigma=0.0,
        core_symbols=(),
        count=len(SYMBOLS),
        stop_loss_pct=float(rng.choice([base.stop_loss_pct, 0.9])),  # 0.9: liquidation first
        max_hold_sec=float(rng.choice([6, 20, 60])) * 3600,
        kill_threshold=kill,
        close_threshold=kill,
        kill_reduce_threshold=kill - float(rng.uniform(0.05, 0.1)),
        harvest=dataclasses.replace(base.harvest, t1_r=0.6, t2_r=1.2, t3_r=2.0, lock_r=0.5),
    )
    return StaticPolicy(cfg)


def _run(tmp: Path, name: str, md: MarketData, policy: object) -> tuple:
    """One journaled backtest, and the digest of its journal."""
    db = tmp / f"{name}.db"
    with Journal(db) as journal:
        res = run_backtest(md, policy, equity=10_000.0, tiers=LeverageTiers.load(PACKAGED_TIERS),
                           broker_config=BrokerConfig.from_toml(), journal=journal,
                           run_id="run")  # fmt: skip
    return res, journal_digest(db, "run")


def _assert_same(a: tuple[BacktestResult, dict], b: tuple[BacktestResult, dict]) -> None:
    (ra, da), (rb, db) = a, b
    for table in TABLES:
        assert da[table] == db[table], f"{table} rows differ"
    for field in ("ts", "equity", "exposure", "margin_ratio"):
        assert np.array_equal(getattr(ra, field), getattr(rb, field)), field
    assert ra.trades == rb.trades
    assert ra.metrics == rb.metrics
    assert ra.stats.steps == rb.stats.steps and ra.stats.exits == rb.stats.exits


def test_hostile_books_cover_what_they_claim(tmp_path: Path) -> None:
    """The randomised books do reach the paths the comparisons are about."""
    seen = {"liquidation": 0, "funding": 0, "kill": 0, "harvest": 0, "stop_to_break_even": 0}
    for seed in range(6):
        res = run_backtest(hostile_market(seed), hostile_policy(seed), equity=10_000.0,
                           tiers=LeverageTiers.load(PACKAGED_TIERS))  # fmt: skip
        assert res.stats.entries > 5
        seen["liquidation"] += res.stats.liquidations
        seen["funding"] += res.stats.funding_events
        seen["kill"] += res.stats.exits["kill"] + res.stats.exits["kill_reduce"]
        seen["harvest"] += sum(v for k, v in res.stats.exits.items() if k.startswith("harvest"))
        seen["stop_to_break_even"] += res.stats.exits["stop_to_break_even"]
    assert all(seen.values()), seen


@pytest.mark.parametrize("seed", range(6))
def test_quiet_bar_shortcut_equals_the_full_bar_pass(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker's quiet-bar test (and its cached not-liquidatable bound) only skips work: with
    every bar through the full pass (funding, gaps, stops, liquidation, take-profits) the journal
    is the same."""
    md, policy = hostile_market(seed), hostile_policy(seed)
    fast = _run(tmp_path, "fast", md, policy)
    monkeypatch.setattr(SimulatedBroker, "_quiet_bar", lambda self, bars, i, col: False)
    _assert_same(fast, _run(tmp_path, "full", md, policy))


def test_sample_quiet_bar_shortcut_equals_the_full_bar_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md = load_market_data(sample_data_dir())
    policy = StaticPolicy.from_toml(POLICY)
    fast = _run(tmp_path, "fast", md, policy)
    assert fast[1]["fill"]["rows"] > 10
    monkeypatch.setattr(SimulatedBroker, "_quiet_bar", lambda self, bars, i, col: False)
    _assert_same(fast, _run(tmp_path, "full", md, policy))


def test_limit_breach_book_quiet_bar_shortcut_equals_the_full_bar_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _run(tmp_path, "fast", falling_market(), FullBookPolicy())
    assert fast[0].stats.safety_events  # the book went past the exposure limit
    monkeypatch.setattr(SimulatedBroker, "_quiet_bar", lambda self, bars, i, col: False)
    _assert_same(fast, _run(tmp_path, "full", falling_market(), FullBookPolicy()))
