"""The monitor's queries agree with plain SQL over the same journal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine.domain import SafetyLimits
from engine.journal.store import JournalError
from tui.data import MonitorError, check_journal, load_snapshot, run_limits


def _sql(path: Path, query: str, *args: object) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchall()


def test_snapshot_matches_the_journal(backtest_journal: Path) -> None:
    snap = load_snapshot(backtest_journal, decisions=20)
    (run_id,) = _sql(backtest_journal, "SELECT id FROM run")[0]
    assert snap.run.id == run_id and snap.run.symbols == ("BTC-USDT", "ETH-USDT")

    last_events = _sql(
        backtest_journal,
        "SELECT symbol, event FROM position WHERE id IN "
        "(SELECT MAX(id) FROM position GROUP BY symbol) ORDER BY symbol",
    )
    assert [p.symbol for p in snap.positions] == [s for s, e in last_events if e != "close"]

    newest = _sql(backtest_journal, "SELECT symbol, action, skip FROM decision ORDER BY id DESC")
    assert [(d.symbol, d.action, d.skip) for d in snap.decisions] == newest[:20]
    assert all(d.why.startswith(d.skip) for d in snap.decisions if d.skip)

    equity, margin, exposure = _sql(
        backtest_journal, "SELECT equity, margin_ratio, exposure FROM equity ORDER BY id DESC"
    )[0]
    assert snap.equity is not None
    assert (snap.equity.equity, snap.equity.margin_ratio, snap.equity.exposure) == (
        equity,
        margin,
        exposure,
    )
    assert snap.equity_curve[-1] == equity
    assert snap.limits == SafetyLimits()


def test_open_position_disappears_after_its_close_row(journal_path: Path) -> None:
    snap = load_snapshot(journal_path)
    assert snap.positions, "the sample run ends with an open position"
    symbol = snap.positions[0].symbol
    with sqlite3.connect(journal_path) as conn:
        conn.execute(
            "INSERT INTO position (run_id, ts, event, symbol, side, qty, entry_price, leverage, "
            "opened_ts, harvest_stage, closed_ts, close_reason, policy, model_version) "
            "SELECT run_id, ts + 1, 'close', symbol, side, 0, entry_price, leverage, opened_ts, "
            "harvest_stage, ts + 1, 'test', policy, model_version FROM position "
            "WHERE symbol = ? ORDER BY id DESC LIMIT 1",
            (symbol,),
        )
    assert symbol not in {p.symbol for p in load_snapshot(journal_path).positions}


def test_run_limits_only_ever_stricter() -> None:
    assert run_limits(json.dumps({"min_margin_ratio_pct": 20.0})).min_margin_ratio == 0.2
    assert run_limits(json.dumps({"max_total_exposure_pct": 100.0})).max_exposure_fraction == 1.0
    assert run_limits(json.dumps({"max_total_exposure_pct": 900.0})) == SafetyLimits()
    assert run_limits("not json") == SafetyLimits()
    assert run_limits("{}") == SafetyLimits()


def test_missing_journal_and_unknown_run(tmp_path: Path, backtest_journal: Path) -> None:
    with pytest.raises(JournalError, match="does not exist"):
        load_snapshot(tmp_path / "nope.db")
    with pytest.raises(MonitorError, match="no run nope"):
        check_journal(backtest_journal, "nope")
    not_a_journal = tmp_path / "other.db"
    not_a_journal.write_text("hello")
    with pytest.raises(JournalError):
        load_snapshot(not_a_journal)
