"""Start-up is recovery: put the journal's open positions back and make them agree with the venue.

A missing report never means flat. On every start of `qctl trade`:

- the run's open positions (the latest position row per symbol that is not a close) are rebuilt
  from the journal with their exit plan and resting backstops;
- live: the exchange is the truth. A journal position the exchange no longer holds is closed
  from the exchange's trades (a backstop that fired while the engine was down) or, with no trade
  to explain it, closed in the journal with the reason; an exchange position the journal does not
  know is adopted (a journaled safety event) — with the plan of the run's entry decision for it
  when the journal holds that entry's order, otherwise with the stop resting at the exchange; an
  adopted position with neither is closed at market (fail closed: no position without a stop);
  missing backstops are re-placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.domain import (
    HarvestLadder,
    LimitName,
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Position,
    SafetyAction,
    SafetyEvent,
    Side,
)

_PLAN_COLUMNS = (
    "kill_threshold",
    "kill_reduce_threshold",
    "kill_reduce_frac",
    "max_hold_sec",
)


@dataclass(slots=True)
class JournalState:
    """What the journal says the run holds."""

    positions: dict[str, Position] = field(default_factory=dict)
    backstops: dict[str, tuple[Order | None, Order | None]] = field(default_factory=dict)
    wallet_balance: float | None = None
    last_step_ts: int | None = None  # close time of the last step journaled (its equity row)
    pending_entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # symbol -> decision


def _ladder(row: Mapping[str, Any]) -> HarvestLadder | None:
    if row.get("harvest_t1_r") is None:
        return None
    return HarvestLadder(
        float(row["harvest_t1_r"]),
        float(row["harvest_t2_r"]),
        float(row["harvest_t3_r"]),
        float(row["harvest_lock_r"]),
        row.get("harvest_t1_close_frac"),
        row.get("harvest_t2_close_frac"),
    )


def position_from_row(row: Mapping[str, Any]) -> Position:
    """A journal position row back into the domain type (the columns mirror its fields)."""
    return Position(
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=float(row["qty"] or 0.0),
        entry_price=float(row["entry_price"] or 0.0),
        leverage=float(row["leverage"]),  # every position row carries its leverage
        opened_ts=int(row["opened_ts"]),
        stop_price=row.get("stop_price"),
        take_profit_price=row.get("take_profit_price"),
        harvest=_ladder(row),
        kill_threshold=row.get("kill_threshold"),
        kill_reduce_threshold=row.get("kill_reduce_threshold"),
        kill_reduce_frac=row.get("kill_reduce_frac"),
        max_hold_sec=row.get("max_hold_sec"),
        initial_qty=float(row.get("initial_qty") or 0.0),
        initial_stop_price=row.get("initial_stop_price"),
        harvest_stage=int(row.get("harvest_stage") or 0),
        kill_reduced=bool(row.get("kill_reduced")),
        mark_price=float(row.get("mark_price") or 0.0),
        realised_pnl=float(row.get("realised_pnl") or 0.0),
        fees_paid=float(row.get("fees_paid") or 0.0),
        funding_paid=float(row.get("funding_paid") or 0.0),
        policy=row.get("policy") or "",
        model_version=row.get("model_version") or "",
    )


def order_from_row(row: Mapping[str, Any]) -> Order:
    return Order(
        row["client_order_id"],
        int(row["ts"]),
        row["symbol"],
        Side(row["side"]),
        OrderType(row["type"]),
        float(row["qty"] or 0.0),
        row["purpose"],
        row.get("stop_price"),
        bool(row.get("reduce_only")),
        OrderStatus(row["status"]),
        row.get("detail") or "",
    )


def read_journal_state(journal: Any, run_id: str) -> JournalState:
    """The open positions, their backstops, the wallet and the last step of `run_id`."""
    state = JournalState()
    latest: dict[str, Mapping[str, Any]] = {}
    for row in journal.rows("position", run_id):
        latest[row["symbol"]] = row
    for sym, row in latest.items():
        if row["event"] != "close" and row.get("closed_ts") is None and (row["qty"] or 0) > 0:
            state.positions[sym] = position_from_row(row)
    orders = journal.rows("order", run_id)
    for sym, pos in state.positions.items():
        stop = tp = None
        for row in orders:
            if row["symbol"] != sym or row["status"] != "NEW" or row["ts"] < pos.opened_ts:
                continue
            if row["purpose"] == OrderPurpose.STOP_LOSS:
                stop = order_from_row(row)
            elif row["purpose"] == OrderPurpose.TAKE_PROFIT:
                tp = order_from_row(row)
        state.backstops[sym] = (stop, tp)
    # entries sent (journaled ahead of sending) whose fill the journal never got
    filled = {r["client_order_id"] for r in journal.rows("fill", run_id)}
    decisions = journal.rows("decision", run_id, where="action != 'skip'")
    for row in orders:
        if row["purpose"] != OrderPurpose.ENTRY or row["status"] != "NEW":
            continue
        if row["client_order_id"] in filled or row["symbol"] in state.positions:
            continue
        match = [d for d in decisions if d["symbol"] == row["symbol"] and d["ts"] <= row["ts"]]
        if match:
            state.pending_entries[row["symbol"]] = {
                **match[-1],
                "entry_client_order_id": row["client_order_id"],
            }
    eq = journal.rows("equity", run_id, order_by="id DESC", limit=1)
    if eq:
        state.wallet_balance = float(eq[0]["wallet_balance"])
        state.last_step_ts = int(eq[0]["ts"])
    return state


def plan_from_decision(row: Mapping[str, Any]) -> dict[str, Any]:
    """The exit plan an entry decision row carried (for `_attach_plan`)."""
    plan: dict[str, Any] = {c: row.get(c) for c in _PLAN_COLUMNS}
    plan["harvest"] = _ladder(row)
    plan["policy"] = row.get("policy") or ""
    plan["model_version"] = row.get("model_version") or ""
    return plan


def safety(
    ts: int, symbol: str, action: SafetyAction, detail: str, qty: float = 0.0
) -> SafetyEvent:
    return SafetyEvent(ts, symbol, LimitName.RECONCILE, qty, None, 0.0, action, detail)
