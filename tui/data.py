"""Read-only queries behind the monitor, returning plain dataclasses (no Textual here).

Everything goes through `Journal.open_readonly`, so the monitor can never write a trading row;
`load_snapshot` opens, reads and closes the file in one call so that it can run in a worker thread.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.domain import LimitsError, SafetyLimits
from engine.journal.store import Journal, JournalError


class MonitorError(JournalError):
    """The journal holds nothing to monitor (no run, or not the run asked for)."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: str
    mode: str
    policy: str
    policy_version: str
    status: str
    timeframe: str
    symbols: tuple[str, ...]
    initial_equity: float | None
    started_ts: int
    ended_ts: int | None


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """The latest snapshot of a position that is not closed."""

    symbol: str
    side: str
    qty: float | None
    entry_price: float | None
    mark_price: float | None
    leverage: float | None
    stop_price: float | None
    take_profit_price: float | None
    harvest_stage: int
    event: str
    ts: int

    @property
    def notional(self) -> float | None:
        """|qty| x price, marked at the snapshot's mark price (the entry price if none)."""
        price = self.mark_price if self.mark_price else self.entry_price
        if self.qty is None or price is None:
            return None
        return abs(self.qty) * price


@dataclass(frozen=True, slots=True)
class DecisionView:
    ts: int
    symbol: str
    action: str
    leverage: float | None
    size_pct: float | None
    confidence: float | None
    skip: str | None
    skip_detail: str
    reasons: tuple[tuple[str, float | None], ...]

    @property
    def why(self) -> str:
        """The skip reason code (with its detail) or the top feature contributions."""
        if self.skip:
            return f"{self.skip}: {self.skip_detail}" if self.skip_detail else self.skip
        return ", ".join(
            f"{name}={value:+.2f}" if value is not None else f"{name}=?"
            for name, value in self.reasons
        )


@dataclass(frozen=True, slots=True)
class EquityView:
    ts: int
    equity: float | None
    margin_ratio: float | None
    exposure: float | None
    open_positions: int
    state: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one refresh of the monitor shows."""

    path: str
    run: RunInfo
    limits: SafetyLimits
    positions: tuple[OpenPosition, ...]
    decisions: tuple[DecisionView, ...]
    equity: EquityView | None
    equity_curve: tuple[float, ...]
    safety_counts: dict[str, int] = field(default_factory=dict)
    pending_controls: int = 0

    @property
    def largest_position_fraction(self) -> float | None:
        """The largest open notional as a fraction of the latest equity (0 when flat)."""
        if self.equity is None or not self.equity.equity:
            return None
        notionals = [p.notional for p in self.positions if p.notional is not None]
        return max(notionals, default=0.0) / self.equity.equity


def run_limits(limits_json: str | None) -> SafetyLimits:
    """The limits a run recorded, when valid; the hard limits otherwise (never looser)."""
    try:
        data = json.loads(limits_json or "{}")
    except json.JSONDecodeError:
        return SafetyLimits()
    if not isinstance(data, dict):
        return SafetyLimits()
    known = {f.name for f in fields(SafetyLimits)}
    try:
        return SafetyLimits.from_mapping({k: v for k, v in data.items() if k in known})
    except LimitsError:
        return SafetyLimits()


def _float(x: Any) -> float | None:
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def _reasons(text: str | None) -> tuple[tuple[str, float | None], ...]:
    try:
        pairs = json.loads(text or "[]")
    except json.JSONDecodeError:
        return ()
    out = []
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            out.append((str(pair[0]), _float(pair[1])))
    return tuple(out)


def _run_info(row: dict[str, Any]) -> RunInfo:
    try:
        symbols = tuple(str(s) for s in json.loads(row["symbols"] or "[]"))
    except (json.JSONDecodeError, TypeError):
        symbols = ()
    return RunInfo(
        id=row["id"],
        mode=row["mode"],
        policy=row["policy"],
        policy_version=row["policy_version"] or "",
        status=row["status"],
        timeframe=row["timeframe"] or "",
        symbols=symbols,
        initial_equity=_float(row["initial_equity"]),
        started_ts=int(row["started_ts"]),
        ended_ts=None if row["ended_ts"] is None else int(row["ended_ts"]),
    )


def open_positions(journal: Journal, run_id: str) -> tuple[OpenPosition, ...]:
    """The latest `position` row per symbol, kept when that row is not a close."""
    rows = journal.rows(
        "position",
        run_id,
        where="id IN (SELECT MAX(id) FROM position WHERE run_id = ? GROUP BY symbol) "
        "AND event != 'close' AND closed_ts IS NULL",
        params=(run_id,),
        order_by="symbol",
    )
    return tuple(
        OpenPosition(
            symbol=r["symbol"],
            side=r["side"],
            qty=_float(r["qty"]),
            entry_price=_float(r["entry_price"]),
            mark_price=_float(r["mark_price"]),
            leverage=_float(r["leverage"]),
            stop_price=_float(r["stop_price"]),
            take_profit_price=_float(r["take_profit_price"]),
            harvest_stage=int(r["harvest_stage"] or 0),
            event=r["event"],
            ts=int(r["ts"]),
        )
        for r in rows
    )


def recent_decisions(journal: Journal, run_id: str, limit: int) -> tuple[DecisionView, ...]:
    """The last `limit` decisions of the run, newest first."""
    rows = journal.rows("decision", run_id, order_by="id DESC", limit=limit)
    return tuple(
        DecisionView(
            ts=int(r["ts"]),
            symbol=r["symbol"],
            action=r["action"],
            leverage=_float(r["leverage"]),
            size_pct=_float(r["size_pct"]),
            confidence=_float(r["confidence"]),
            skip=r["skip"],
            skip_detail=r["skip_detail"] or "",
            reasons=_reasons(r["reasons"]),
        )
        for r in rows
    )


def latest_equity(journal: Journal, run_id: str) -> EquityView | None:
    rows = journal.rows("equity", run_id, order_by="id DESC", limit=1)
    if not rows:
        return None
    r = rows[0]
    return EquityView(
        ts=int(r["ts"]),
        equity=_float(r["equity"]),
        margin_ratio=_float(r["margin_ratio"]),
        exposure=_float(r["exposure"]),
        open_positions=int(r["open_positions"] or 0),
        state=r["state"],
    )


def equity_curve(journal: Journal, run_id: str, points: int) -> tuple[float, ...]:
    """The last `points` equity values, oldest first (unknown values left out)."""
    rows = journal.rows("equity", run_id, order_by="id DESC", limit=points)
    values = (_float(r["equity"]) for r in reversed(rows))
    return tuple(v for v in values if v is not None)


def safety_counts(journal: Journal, run_id: str) -> dict[str, int]:
    """How many clips and vetoes each hard limit caused in the run."""
    cur = journal.connection.execute(
        'SELECT "limit", COUNT(*) FROM safety_event WHERE run_id = ? GROUP BY 1 ORDER BY 2 DESC',
        (run_id,),
    )
    return {str(name): int(n) for name, n in cur.fetchall()}


def pending_controls(journal: Journal, run_id: str) -> int:
    """Operator requests for this run (or any run) that the engine has not handled yet."""
    cur = journal.connection.execute(
        "SELECT COUNT(*) FROM control WHERE handled_ts IS NULL AND (run_id IS NULL OR run_id = ?)",
        (run_id,),
    )
    return int(cur.fetchone()[0])


def resolve_run(journal: Journal, run_id: str | None) -> dict[str, Any]:
    """The row of `run_id`, or of the latest run when None; `MonitorError` if there is none."""
    wanted = run_id if run_id is not None else journal.latest_run_id()
    if wanted is None:
        raise MonitorError(f"journal {journal.path} has no run yet")
    rows = journal.rows("run", where="id = ?", params=(wanted,))
    if not rows:
        raise MonitorError(f"journal {journal.path} has no run {wanted}")
    return rows[0]


def check_journal(path: str | Path, run_id: str | None = None) -> str:
    """Open the journal read-only and return the run to monitor (raises `JournalError`)."""
    with Journal.open_readonly(path) as journal:
        return str(resolve_run(journal, run_id)["id"])


def load_snapshot(
    path: str | Path,
    run_id: str | None = None,
    *,
    decisions: int = 50,
    curve_points: int = 500,
) -> Snapshot:
    """One consistent read of everything the monitor shows (`JournalError` when unreadable)."""
    try:
        with Journal.open_readonly(path) as journal:
            journal.connection.execute("BEGIN")  # one read transaction: one consistent state
            run_row = resolve_run(journal, run_id)
            rid = str(run_row["id"])
            return Snapshot(
                path=str(path),
                run=_run_info(run_row),
                limits=run_limits(run_row["limits"]),
                positions=open_positions(journal, rid),
                decisions=recent_decisions(journal, rid, decisions),
                equity=latest_equity(journal, rid),
                equity_curve=equity_curve(journal, rid, curve_points),
                safety_counts=safety_counts(journal, rid),
                pending_controls=pending_controls(journal, rid),
            )
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read journal {path}: {exc}") from None
