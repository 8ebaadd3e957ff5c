"""Journals written row by row with the Journal API: one clean run, and the same run with one
violation of one invariant, so each `qctl verify` journal check can be shown to fail alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.core.tiers import PACKAGED_TIERS
from engine.domain import (
    Decision,
    EquityPoint,
    Fill,
    HarvestLadder,
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Position,
    SafetyLimits,
    Side,
)
from engine.journal.store import Journal

HOUR_MS = 3_600_000
T0 = 1_750_000_000_000 // HOUR_MS * HOUR_MS
TIERS = PACKAGED_TIERS

VIOLATIONS = {
    "leverage": "journal.leverage",
    "bracket": "journal.leverage",
    "margin_ratio": "journal.margin_ratio",
    "position_size": "journal.position_size",
    "exposure": "journal.exposure",
    "protective_stop": "journal.protective_stop",
}


@dataclass(frozen=True)
class Entry:
    symbol: str
    price: float
    leverage: float
    size_pct: float
    stop_pct: float
    t1_r: float


ENTRIES = (
    Entry("BTC-USDT", 60_000.0, 7.5, 0.12, 0.021, 1.8),
    Entry("ETH-USDT", 3_000.0, 4.0, 0.08, 0.03, 2.6),
    Entry("SOL-USDT", 150.0, 2.5, 0.05, 0.045, 1.2),
)


def seed_run(
    journal: Journal,
    violation: str | None = None,
    *,
    policy: str = "ai",
    equity: float = 10_000.0,
    entries: tuple[Entry, ...] = ENTRIES,
    limits: SafetyLimits | None = None,
) -> str:
    """One run: each entry decided, filled, protected by a stop, marked over a few bars."""
    run_id = journal.start_run(
        "backtest", policy, "v1", limits=limits or SafetyLimits(), symbols=[e.symbol for e in entries],
        initial_equity=equity, started_ts=T0,
    )  # fmt: skip
    gross = 0.0
    for k, e in enumerate(entries):
        ts = T0 + (k + 1) * HOUR_MS
        size, lev = e.size_pct, e.leverage
        if violation == "position_size" and k == 0:
            size = 0.6
        if violation == "leverage" and k == 0:
            lev = 130.0
        notional = equity * size
        if violation == "bracket" and k == 0:
            notional, lev = 4_000_000.0, 80.0  # bracket: 50x above 3M of BTC notional
        qty = notional / e.price
        stop = e.price * (1 - e.stop_pct)
        journal.record_decision(
            Decision(
                ts=ts, symbol=e.symbol, side=Side.LONG, leverage=lev, size_pct=size,
                stop_loss_pct=e.stop_pct, take_profit_pct=3 * e.stop_pct,
                harvest=HarvestLadder(e.t1_r, e.t1_r + 1, e.t1_r + 2, e.t1_r / 2),
                kill_threshold=0.6, confidence=0.7, policy=policy, model_version="v1",
            )
        )  # fmt: skip
        entry = Order.create(
            run_id, ts, e.symbol, Side.LONG, OrderType.MARKET, qty, OrderPurpose.ENTRY
        )
        journal.record_order(entry.with_status(OrderStatus.FILLED))
        journal.record_fill(Fill(entry.client_order_id, ts, e.symbol, Side.LONG, qty, e.price, 0.0))
        protected = not (violation == "protective_stop" and k == 1)
        if protected:
            journal.record_order(
                Order.create(
                    run_id, ts, e.symbol, Side.SHORT, OrderType.STOP_MARKET, qty,
                    OrderPurpose.STOP_LOSS, stop_price=stop, reduce_only=True, seq=1,
                )
            )  # fmt: skip
        pos = Position(
            e.symbol, Side.LONG, qty, e.price, lev, ts,
            stop_price=stop if protected else None, initial_stop_price=stop if protected else None,
        )  # fmt: skip
        journal.record_position(pos, ts, "open")
        gross += notional
        exposure = 2.5 if violation == "exposure" and k == 2 else gross / equity
        ratio = 0.05 if violation == "margin_ratio" and k == 1 else 0.95
        journal.record_equity(EquityPoint(ts, equity, equity, 0.0, ratio, exposure, k + 1))
    last = T0 + (len(entries) + 1) * HOUR_MS
    journal.record_equity(
        EquityPoint(last, equity, equity, 0.0, 0.95, gross / equity, len(entries))
    )
    journal.finish_run("finished", ended_ts=last)
    return run_id


def seeded_db(path: Path, violation: str | None = None, **kwargs) -> Path:
    with Journal(path) as journal:
        seed_run(journal, violation, **kwargs)
    return path
