"""Shared fixtures for the engine tests: limits, tiers, decisions, portfolios, snapshots, journals.

Tiers come from the packaged copy so that results do not depend on ../shared being present.
Market data for end-to-end checks is the real slice shipped in engine/sample_data/ohlcv.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.domain import (
    AutonomyZone,
    Bars,
    Decision,
    HarvestLadder,
    MarketSnapshot,
    Portfolio,
    Position,
    SafetyLimits,
    Side,
)
from engine.journal.store import Journal

REPO = Path(__file__).resolve().parents[2]
SAMPLE_OHLCV = REPO / "engine" / "sample_data" / "ohlcv"
LEGACY_TOML = REPO / "examples" / "legacy_policy.toml"
HOUR_MS = 3_600_000
T0 = 1_746_057_600_000  # 2025-05-01 00:00 UTC, the first bar of the shared Binance USDT-M set


@pytest.fixture(scope="session")
def tiers() -> LeverageTiers:
    return LeverageTiers.load(PACKAGED_TIERS)


@pytest.fixture
def limits() -> SafetyLimits:
    return SafetyLimits()


@pytest.fixture
def zone() -> AutonomyZone:
    return AutonomyZone()


@pytest.fixture
def make_entry() -> Callable[..., Decision]:
    """An in-zone entry decision (the legacy numbers) with any field overridden."""

    def make(**changes: object) -> Decision:
        base = Decision(
            ts=T0,
            symbol="BTC-USDT",
            side=Side.LONG,
            leverage=10.0,
            size_pct=0.02,
            stop_loss_pct=0.025,
            take_profit_pct=0.06,
            harvest=HarvestLadder(2.0, 4.0, 6.0, 1.5, t1_close_frac=0.3, t2_close_frac=0.3),
            kill_threshold=0.6,
            kill_reduce_threshold=0.55,
            kill_reduce_frac=0.5,
            max_hold_sec=86_400.0,
            confidence=0.7,
            policy="test",
            model_version="t1",
            reasons=(("trend", 0.5),),
        )
        return base.with_changes(**changes)

    return make


def position(
    symbol: str,
    side: Side,
    qty: float,
    entry: float,
    leverage: float = 10.0,
    mark: float | None = None,
) -> Position:
    p = Position(
        symbol=symbol,
        side=side,
        qty=qty,
        entry_price=entry,
        leverage=leverage,
        opened_ts=T0,
        stop_price=entry * 0.9,
        initial_stop_price=entry * 0.9,
    )
    if mark is not None:
        p.mark_price = mark
    return p


def portfolio(wallet: float = 10_000.0, *positions: Position, **kw: object) -> Portfolio:
    return Portfolio(wallet_balance=wallet, positions={p.symbol: p for p in positions}, **kw)


def bars_from_closes(closes: np.ndarray, start: int = T0, step: int = HOUR_MS) -> Bars:
    closes = np.asarray(closes, dtype=np.float64)
    ts = start + step * np.arange(len(closes), dtype=np.int64)
    return Bars.from_arrays(ts, closes, closes, closes, closes, np.ones_like(closes))


def snapshot_of(series: dict[str, Bars], n: int, timeframe_ms: int = HOUR_MS) -> MarketSnapshot:
    """What is known after bar n-1 closed (every symbol on the same grid)."""
    any_bars = next(iter(series.values()))
    ts = int(any_bars.ts[n - 1]) + timeframe_ms
    return MarketSnapshot(ts, timeframe_ms, series, {s: min(n, len(b)) for s, b in series.items()})


@pytest.fixture(scope="session")
def sample_series() -> dict[str, Bars]:
    """The real Binance USDT-M 1h candles shipped with the package, as read-only arrays."""
    out: dict[str, Bars] = {}
    for f in sorted(SAMPLE_OHLCV.glob("binance_usdm_*_1h.csv.gz")):
        symbol = f.name.removeprefix("binance_usdm_").split("_")[0]
        df = pd.read_csv(f)
        out[symbol] = Bars.from_arrays(
            df["timestamp"].to_numpy(),
            df["open"].to_numpy(),
            df["high"].to_numpy(),
            df["low"].to_numpy(),
            df["close"].to_numpy(),
            df["volume"].to_numpy(),
        )
    assert out, f"no sample candles in {SAMPLE_OHLCV}"
    return out


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def journal(journal_path: Path) -> Iterator[Journal]:
    with Journal(journal_path) as j:
        j.start_run("backtest", "test", "t1", limits=SafetyLimits(), run_id="run-test")
        yield j
