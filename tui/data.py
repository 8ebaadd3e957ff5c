"""Read-only queries behind the monitor, returning plain dataclasses (no Textual here).

Everything goes through `Journal.open_readonly`, so the monitor can never write a trading row;
`load_snapshot` opens, reads and closes the file in one call so that it can run in a worker thread.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.core.tiers import LeverageTiers, TiersError
from engine.domain import LimitsError, SafetyLimits, Side
from engine.journal import store
from engine.journal.store import LATEST_POSITIONS_SQL, Journal, JournalError
from engine.venues.simulated import cross_liquidation_price

HEARTBEAT_COLUMNS = ("heartbeat_ms", "heartbeat_ts", "heartbeat")  # the run row's, if any


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
    heartbeat_ts: int | None = None  # the engine's own heartbeat (wall clock), if it writes one
    state: str = ""  # `run_state`: the status, or the writer's liveness while `running`

    @property
    def ended(self) -> bool:
        """The run's record is closed (finished, failed, stopped; or crashed)."""
        return self.ended_ts is not None or self.state not in ("running", "unknown")

    @property
    def accepts_controls(self) -> bool:
        """Something may still act on a control request for this run."""
        return not self.ended


def run_state(row: dict[str, Any]) -> str:
    """The run's status, except that a `running` row whose writer is gone reads `crashed`.

    Uses the journal's own liveness rule (`run_liveness`: heartbeat, pid and host of the writer)
    when the journal schema has one; `unknown` when it cannot tell (another host, an old schema).
    """
    status = str(row["status"])
    liveness = getattr(store, "run_liveness", None)
    if status == "running" and liveness is not None:
        return str(liveness(row))
    return status


TIMEFRAME_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
STALE_SLACK_MS = 30_000  # a cycle may run late by this much before the engine counts as stale
UNKNOWN_BAR_STALE_MS = 120_000


def timeframe_ms(timeframe: str) -> int | None:
    """'15m' -> 900000; None when it is not a number and a unit."""
    unit = TIMEFRAME_MS.get(timeframe[-1:]) if timeframe else None
    try:
        return int(timeframe[:-1]) * unit if unit else None
    except ValueError:
        return None


def stale_after_ms(run: RunInfo) -> int:
    """How old a heartbeat may be before the monitor shows it stale (red).

    With a heartbeat in the run row, the journal's own limit (`STALE_AFTER_MS`); without one the
    latest equity point stands in, written once per bar: two bars plus some slack.
    `qctl tui --stale` overrides both.
    """
    journal_limit = getattr(store, "STALE_AFTER_MS", None)
    if run.heartbeat_ts is not None and journal_limit is not None:
        return int(journal_limit)
    bar = timeframe_ms(run.timeframe)
    return UNKNOWN_BAR_STALE_MS if bar is None else 2 * bar + STALE_SLACK_MS


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
    liquidation_price: float | None = None  # cross margin, from the latest wallet balance

    @property
    def price(self) -> float | None:
        """The price the position is marked at (its entry price when it has no mark yet)."""
        return self.mark_price if self.mark_price else self.entry_price

    @property
    def sign(self) -> int:
        return Side(self.side).sign if self.side in ("long", "short") else 0

    @property
    def notional(self) -> float | None:
        """|qty| x price, marked at the snapshot's mark price (the entry price if none)."""
        if self.qty is None or self.price is None:
            return None
        return abs(self.qty) * self.price

    @property
    def unrealised_pnl(self) -> float | None:
        """sign x qty x (mark - entry), USDT."""
        if self.qty is None or self.entry_price is None or self.price is None:
            return None
        return self.sign * abs(self.qty) * (self.price - self.entry_price)

    def _room(self, level: float | None) -> float | None:
        """How far the price can move against the position before `level`, as a fraction."""
        price = self.price
        if level is None or not price or not self.sign:
            return None
        return self.sign * (price - level) / price

    @property
    def stop_distance(self) -> float | None:
        """Fraction of the mark price left before the stop (negative: past it)."""
        return self._room(self.stop_price)

    @property
    def liquidation_distance(self) -> float | None:
        """Fraction of the mark price left before liquidation (None when it cannot happen)."""
        if not self.liquidation_price:
            return None
        return self._room(self.liquidation_price)


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
    wallet_balance: float | None
    unrealised_pnl: float | None
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
    safety: SafetyTally | None = None
    pending_controls: int = 0
    read_ms: int = 0  # wall clock of this read

    @property
    def safety_counts(self) -> dict[str, int]:
        """Clips and vetoes per limit, most first."""
        return dict(self.safety.counts) if self.safety is not None else {}

    @property
    def heartbeat_ts(self) -> int | None:
        """The engine's heartbeat if the run row has one, else the latest equity point's time."""
        if self.run.heartbeat_ts is not None:
            return self.run.heartbeat_ts
        return self.equity.ts if self.equity is not None else None

    @property
    def heartbeat_age_ms(self) -> int | None:
        """How old the heartbeat is at `read_ms`; None for a backtest (its times are the data's)."""
        hb = self.heartbeat_ts
        if hb is None or (self.run.mode == "backtest" and self.run.heartbeat_ts is None):
            return None
        return max(0, self.read_ms - hb)

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


def _heartbeat(row: dict[str, Any]) -> int | None:
    for name in HEARTBEAT_COLUMNS:
        if row.get(name) is not None:
            return int(row[name])
    return None


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
        heartbeat_ts=_heartbeat(row),
        state=run_state(row),
    )


# The latest row of each symbol the run traded, by skip-scan: the journal's own query (one seek
# per symbol in the position(run_id, symbol, id) index), kept to the positions still open, so a
# refresh costs O(symbols x log rows), not O(history).
LATEST_PER_SYMBOL_INDEXED = (
    f"SELECT * FROM ({LATEST_POSITIONS_SQL}) WHERE event != 'close' AND closed_ts IS NULL "
    "ORDER BY symbol"
)

# Without that index (a journal of an older schema) one pass over the run's position rows is
# cheaper than a skip-scan, which would re-read them once per symbol.
LATEST_PER_SYMBOL_SCAN = """
SELECT * FROM position
WHERE run_id = :run
  AND id IN (SELECT MAX(id) FROM position WHERE run_id = :run GROUP BY symbol)
  AND event != 'close' AND closed_ts IS NULL
ORDER BY symbol
"""


def has_symbol_index(connection: sqlite3.Connection) -> bool:
    """Whether the journal indexes position rows by (run_id, symbol) (schema bump of issue 14)."""
    for (name,) in connection.execute("SELECT name FROM pragma_index_list('position')"):
        info = connection.execute(
            "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (name,)
        ).fetchall()
        if [c for (c,) in info[:2]] == ["run_id", "symbol"]:
            return True
    return False


def latest_positions_sql(connection: sqlite3.Connection) -> str:
    """The open-positions query this journal can answer fastest."""
    if has_symbol_index(connection):
        return LATEST_PER_SYMBOL_INDEXED
    return LATEST_PER_SYMBOL_SCAN


def open_positions(journal: Journal, run_id: str) -> tuple[OpenPosition, ...]:
    """The latest `position` row per symbol, kept when that row is not a close."""
    conn = journal.connection
    cur = conn.execute(latest_positions_sql(conn), {"run": run_id})
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
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


@functools.cache
def _tiers() -> LeverageTiers | None:
    try:
        return LeverageTiers.load()
    except (TiersError, OSError):
        return None


def with_liquidation_prices(
    positions: tuple[OpenPosition, ...],
    wallet_balance: float | None,
    tiers: LeverageTiers | None = None,
) -> tuple[OpenPosition, ...]:
    """Each position's cross-margin liquidation price, the others held at their marks.

    Same arithmetic as the simulated broker (`cross_liquidation_price`, Binance's formula) with
    the leverage tiers `qctl backtest` uses; left unknown when a symbol has no tiers, because
    every other position's maintenance margin enters each price.
    """
    tiers = tiers if tiers is not None else _tiers()
    if tiers is None or wallet_balance is None or not positions:
        return positions
    parts = {}
    for p in positions:
        if p.notional is None or p.unrealised_pnl is None or not tiers.has(p.symbol):
            return positions
        tier = tiers.tier(p.symbol, p.notional) or tiers.tiers(p.symbol)[-1]
        maintenance = p.notional * tier.maintenance_margin_rate - tier.maintenance_amount
        parts[p.symbol] = (p.unrealised_pnl, maintenance, tier)
    total_upnl = sum(u for u, _, _ in parts.values())
    total_maint = sum(m for _, m, _ in parts.values())
    out = []
    for p in positions:
        upnl, maint, tier = parts[p.symbol]
        price = cross_liquidation_price(
            Side(p.side),
            abs(p.qty or 0.0),
            p.entry_price or 0.0,
            wallet_balance,
            tier.maintenance_margin_rate,
            tier.maintenance_amount,
            other_equity=total_upnl - upnl,
            other_maintenance=total_maint - maint,
        )
        out.append(dataclasses.replace(p, liquidation_price=price if price > 0 else None))
    return tuple(out)


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
        wallet_balance=_float(r["wallet_balance"]),
        unrealised_pnl=_float(r["unrealised_pnl"]),
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


@dataclass(frozen=True, slots=True)
class SafetyTally:
    """Clips and vetoes per limit of one run, counted up to row `last_id` of `safety_event`.

    Handed back to the next read, so that a refresh counts only the rows written since (rows
    are only ever appended): O(new events), where a GROUP BY would re-read the run's history.
    """

    run_id: str
    last_id: int = 0
    counts: tuple[tuple[str, int], ...] = ()


def safety_tally(journal: Journal, run_id: str, since: SafetyTally | None = None) -> SafetyTally:
    """How many clips and vetoes each hard limit caused in the run (continuing `since`)."""
    base = since if since is not None and since.run_id == run_id else SafetyTally(run_id)
    cur = journal.connection.execute(
        'SELECT "limit", COUNT(*), MAX(id) FROM safety_event WHERE run_id = ? AND id > ? '
        "GROUP BY 1",
        (run_id, base.last_id),
    )
    counts = dict(base.counts)
    last_id = base.last_id
    for name, n, top in cur.fetchall():
        counts[str(name)] = counts.get(str(name), 0) + int(n)
        last_id = max(last_id, int(top))
    ordered = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return SafetyTally(run_id, last_id, ordered)


def safety_counts(journal: Journal, run_id: str) -> dict[str, int]:
    """How many clips and vetoes each hard limit caused in the run, most first."""
    return dict(safety_tally(journal, run_id).counts)


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
    previous: Snapshot | None = None,
) -> Snapshot:
    """One consistent read of everything the monitor shows (`JournalError` when unreadable).

    Give the `previous` snapshot of the same journal to count only the safety events since.
    """
    since = previous.safety if previous is not None else None
    try:
        with Journal.open_readonly(path) as journal:
            journal.connection.execute("BEGIN")  # one read transaction: one consistent state
            run_row = resolve_run(journal, run_id)
            rid = str(run_row["id"])
            equity = latest_equity(journal, rid)
            positions = with_liquidation_prices(
                open_positions(journal, rid), equity.wallet_balance if equity else None
            )
            return Snapshot(
                path=str(path),
                run=_run_info(run_row),
                limits=run_limits(run_row["limits"]),
                positions=positions,
                decisions=recent_decisions(journal, rid, decisions),
                equity=equity,
                equity_curve=equity_curve(journal, rid, curve_points),
                safety=safety_tally(journal, rid, since),
                pending_controls=pending_controls(journal, rid),
                read_ms=time.time_ns() // 1_000_000,
            )
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read journal {path}: {exc}") from None
