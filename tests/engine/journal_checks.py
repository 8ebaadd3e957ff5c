"""`assert_journal_within_limits`: no journal row of any backtest may break a hard limit.

Checked against the owner's limits (or the stricter ones given) and the exchange brackets:
- every entry decision: 1 <= leverage <= max_leverage, 0 < size_pct <= max position fraction,
  kill threshold and harvest R inside the autonomy zone;
- every opened position: leverage within the bracket for its notional, notional at most the
  position limit of the equity at that time;
- at every step where a position opened: total exposure within the limit and margin ratio at or
  above the minimum;
- every CLIP safety event: the applied value within its bound (at or above it for the margin
  ratio, a floor).
The tolerance covers the fill's slippage and fee (a decision is checked at the reference price).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.domain import AutonomyZone, SafetyLimits
from engine.journal.store import Journal

REL_TOL = 0.01  # slippage + fees between the decision's reference price and the fill


def _connect(db: str | Path | Journal) -> sqlite3.Connection:
    if isinstance(db, Journal):
        db.flush()
        return db.connection
    return sqlite3.connect(str(db))


def journal_violations(
    db: str | Path | Journal,
    limits: SafetyLimits | None = None,
    tiers: LeverageTiers | None = None,
) -> list[str]:
    """Every row that breaks a hard limit, described in one line each (empty: none)."""
    limits = limits or SafetyLimits()
    tiers = tiers or LeverageTiers.load(PACKAGED_TIERS)
    zone = AutonomyZone.for_limits(limits)
    conn = _connect(db)
    bad: list[str] = []
    for row in conn.execute(
        "SELECT id, symbol, leverage, size_pct, kill_threshold, harvest_t1_r, harvest_t2_r, "
        "harvest_t3_r, harvest_lock_r FROM decision WHERE action IN ('long', 'short')"
    ):
        did, sym, lev, size, kill, *harvest = row
        if not (zone.min_leverage <= lev <= limits.max_leverage):
            bad.append(f"decision {did} {sym}: leverage {lev}")
        if not (0 < size <= limits.max_position_fraction):
            bad.append(f"decision {did} {sym}: size_pct {size}")
        if not (zone.min_kill_threshold <= kill <= zone.max_kill_threshold):
            bad.append(f"decision {did} {sym}: kill_threshold {kill}")
        for r in harvest:
            if r is not None and not (zone.min_harvest_r <= r <= zone.max_harvest_r):
                bad.append(f"decision {did} {sym}: harvest {r} R")
    opened = conn.execute(
        "SELECT p.id, p.run_id, p.ts, p.symbol, p.qty, p.entry_price, p.leverage, e.equity, "
        "e.exposure, e.margin_ratio FROM position p JOIN equity e "
        "ON e.run_id = p.run_id AND e.ts = p.ts WHERE p.event = 'open'"
    ).fetchall()
    for pid, _run, _ts, sym, qty, entry, lev, equity, exposure, ratio in opened:
        notional = qty * entry
        if lev > limits.max_leverage or (
            tiers.has(sym) and lev > tiers.max_leverage(sym, notional)
        ):
            bad.append(f"position {pid} {sym}: leverage {lev} above the limit or bracket")
        # equity after the step; the entry's own fee and slippage are inside the tolerance
        if notional > limits.max_position_fraction * equity * (1 + REL_TOL):
            bad.append(f"position {pid} {sym}: notional {notional:.2f} vs equity {equity:.2f}")
        if exposure > limits.max_exposure_fraction * (1 + REL_TOL):
            bad.append(f"position {pid} {sym}: exposure {exposure:.4f} after opening")
        if ratio < limits.min_margin_ratio * (1 - REL_TOL):
            bad.append(f"position {pid} {sym}: margin ratio {ratio:.4f} after opening")
    for eid, applied, bound, limit in conn.execute(
        "SELECT id, applied, bound, \"limit\" FROM safety_event WHERE action = 'CLIP'"
    ):
        # the margin ratio is a floor (a trim restores it from below); every other limit a cap
        floor = limit == "min_margin_ratio"
        if applied is None or (
            applied < bound * (1 - 1e-9) if floor else applied > bound * (1 + 1e-9)
        ):
            bad.append(f"safety_event {eid} {limit}: applied {applied} outside bound {bound}")
    return bad


def assert_journal_within_limits(
    db: str | Path | Journal,
    limits: SafetyLimits | None = None,
    tiers: LeverageTiers | None = None,
) -> None:
    """Fail with the offending rows if any journal row breaks a hard limit."""
    bad = journal_violations(db, limits, tiers)
    assert not bad, f"{len(bad)} journal row(s) break a hard limit:\n" + "\n".join(bad[:20])
