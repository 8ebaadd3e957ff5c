"""The monitor's queries agree with plain SQL over the same journal."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from engine.core.tiers import LeverageTiers
from engine.domain import SafetyLimits
from engine.journal import store
from engine.journal.store import Journal, JournalError
from tui.data import (
    LATEST_PER_SYMBOL_INDEXED,
    LATEST_PER_SYMBOL_SCAN,
    MonitorError,
    OpenPosition,
    RunInfo,
    check_journal,
    has_symbol_index,
    latest_positions_sql,
    load_snapshot,
    open_positions,
    run_limits,
    stale_after_ms,
    timeframe_ms,
    with_liquidation_prices,
)


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


def _position_rows(conn: sqlite3.Connection, run_id: str, symbols: int, cycles: int) -> None:
    """`cycles` open/stop_moved/close rounds per symbol; the first symbol ends open."""
    rows = []
    ts = 1
    for k in range(cycles):
        for j in range(symbols):
            for event in ("open", "stop_moved", "close"):
                ts += 1
                if event == "close" and k == cycles - 1 and j == 0:
                    continue
                closed = ts if event == "close" else None
                rows.append((run_id, ts, event, f"S{j:02d}-USDT", "long", 1.0, 100.0, 5.0, ts,
                             95.0, 0, 100.0, closed))  # fmt: skip
    conn.executemany(
        "INSERT INTO position (run_id, ts, event, symbol, side, qty, entry_price, leverage, "
        "opened_ts, stop_price, harvest_stage, mark_price, closed_ts, close_reason, policy, "
        "model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '')",
        rows,
    )


def _vm_steps(path: Path, run_id: str, sql: str | None = None) -> int:
    """SQLite VM instructions a query costs (`open_positions` by default): work done, the same
    on any machine."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    with Journal.open_readonly(path) as journal:
        journal.connection.set_progress_handler(tick, 1)
        if sql is None:
            open_positions(journal, run_id)
        else:
            journal.connection.execute(sql, {"run": run_id}).fetchall()
    return steps


@pytest.mark.parametrize("indexed", [False, True])
def test_open_positions_with_and_without_the_symbol_index(
    journal_path: Path, indexed: bool
) -> None:
    (run_id,) = _sql(journal_path, "SELECT id FROM run")[0]
    with Journal(journal_path) as journal:  # the current schema (it may have the index already)
        other = journal.start_run("paper", "other")
    with sqlite3.connect(journal_path) as conn:
        have = has_symbol_index(conn)
        if indexed and not have:  # what the schema bump of issue 14 adds
            conn.execute("CREATE INDEX test_position_run_symbol ON position (run_id, symbol)")
        if not indexed and have:  # a journal of an older schema
            names = [n for (n,) in conn.execute("SELECT name FROM pragma_index_list('position')")]
            for name in names:
                cols = [c for (c,) in conn.execute(
                    "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (name,))]  # fmt: skip
                if cols[:2] == ["run_id", "symbol"]:
                    conn.execute(f'DROP INDEX "{name}"')
        assert has_symbol_index(conn) == indexed
        assert (latest_positions_sql(conn) == LATEST_PER_SYMBOL_INDEXED) == indexed
        _position_rows(conn, other, symbols=5, cycles=3)  # another run's rows stay out

    expected = [
        s
        for s, e in _sql(
            journal_path,
            "SELECT symbol, event FROM position WHERE id IN (SELECT MAX(id) FROM position "
            "WHERE run_id = ? GROUP BY symbol) ORDER BY symbol",
            run_id,
        )
        if e != "close"
    ]
    with Journal.open_readonly(journal_path) as journal:
        assert [p.symbol for p in open_positions(journal, run_id)] == expected
        assert [p.symbol for p in open_positions(journal, other)] == ["S00-USDT"]


def test_open_positions_cost_does_not_grow_with_history(tmp_path: Path) -> None:
    """With the symbol index, 10x the position history costs about the same (plus a log)."""
    steps, scan_steps = {}, {}
    for cycles in (20, 200):
        path = tmp_path / f"h{cycles}.db"
        with Journal(path) as journal:
            run_id = journal.start_run(
                "paper", "test", symbols=[f"S{j:02d}-USDT" for j in range(8)]
            )
        with sqlite3.connect(path) as conn:
            if not has_symbol_index(conn):
                conn.execute("CREATE INDEX test_position_run_symbol ON position (run_id, symbol)")
            _position_rows(conn, run_id, symbols=8, cycles=cycles)
        steps[cycles] = _vm_steps(path, run_id)
        scan_steps[cycles] = _vm_steps(path, run_id, LATEST_PER_SYMBOL_SCAN)
        with Journal.open_readonly(path) as journal:
            assert [p.symbol for p in open_positions(journal, run_id)] == ["S00-USDT"]
    assert steps[200] < 1.3 * steps[20], steps
    assert scan_steps[200] > 5 * scan_steps[20], scan_steps  # the scan grows with history


def test_safety_counts_continue_from_the_previous_read(journal_path: Path) -> None:
    (run_id,) = _sql(journal_path, "SELECT id FROM run")[0]

    def add(limit: str, n: int) -> None:
        with sqlite3.connect(journal_path) as conn:
            conn.executemany(
                'INSERT INTO safety_event (run_id, ts, symbol, "limit", requested, bound, '
                "action, detail) VALUES (?, 1, 'BTC-USDT', ?, 2.0, 1.0, 'CLIP', '')",
                [(run_id, limit)] * n,
            )

    first = load_snapshot(journal_path)
    before = dict(first.safety_counts)
    add("max_leverage", 3)
    add("min_margin_ratio", 1)
    second = load_snapshot(journal_path, previous=first)
    want = dict(before)
    want["max_leverage"] = want.get("max_leverage", 0) + 3
    want["min_margin_ratio"] = want.get("min_margin_ratio", 0) + 1
    assert second.safety_counts == want == load_snapshot(journal_path).safety_counts
    assert list(second.safety_counts.values()) == sorted(want.values(), reverse=True)
    assert load_snapshot(journal_path, previous=second).safety_counts == want  # no double count


def test_position_pnl_and_distances(backtest_journal: Path) -> None:
    snap = load_snapshot(backtest_journal)
    assert snap.equity is not None and snap.positions
    for p in snap.positions:
        row = _sql(
            backtest_journal,
            "SELECT side, qty, entry_price, mark_price, stop_price FROM position "
            "WHERE symbol = ? ORDER BY id DESC LIMIT 1",
            p.symbol,
        )[0]
        side, qty, entry, mark, stop = row
        sign = 1 if side == "long" else -1
        assert p.unrealised_pnl == pytest.approx(sign * qty * (mark - entry))
        assert p.stop_distance == pytest.approx(sign * (mark - stop) / mark)
        assert p.stop_distance > 0  # an open position is on the safe side of its stop
        assert p.liquidation_price is not None and p.liquidation_distance is not None
        assert p.liquidation_distance > p.stop_distance  # the stop fires first

    # one position: the cross liquidation price is where equity meets maintenance margin
    one = OpenPosition("BTC-USDT", "long", 1.0, 100_000.0, 100_000.0, 10.0, 95_000.0, None, 0,
                       "open", 0)  # fmt: skip
    tiers = LeverageTiers.load()
    (priced,) = with_liquidation_prices((one,), wallet_balance=10_000.0, tiers=tiers)
    liq = priced.liquidation_price
    assert liq is not None and 90_000.0 < liq < 100_000.0
    equity_at_liq = 10_000.0 + (liq - 100_000.0)
    assert equity_at_liq == pytest.approx(tiers.maintenance_margin("BTC-USDT", liq), rel=1e-9)
    assert priced.liquidation_distance == pytest.approx((100_000.0 - liq) / 100_000.0)
    short = dataclasses.replace(one, side="short", stop_price=105_000.0)
    (priced,) = with_liquidation_prices((short,), wallet_balance=10_000.0, tiers=tiers)
    assert priced.liquidation_price is not None and priced.liquidation_price > 100_000.0
    assert priced.stop_distance == pytest.approx(0.05)  # a short's stop is 5 % above the mark


def test_stale_limits() -> None:
    run = RunInfo("r", "paper", "p", "1", "running", "1h", (), None, 0, None)
    assert stale_after_ms(run) == 2 * 3_600_000 + 30_000  # two bars and some slack
    assert stale_after_ms(dataclasses.replace(run, timeframe="5m")) == 2 * 300_000 + 30_000
    with_beat = dataclasses.replace(run, heartbeat_ts=1)
    if hasattr(store, "STALE_AFTER_MS"):
        assert stale_after_ms(with_beat) == store.STALE_AFTER_MS == 60_000
    assert timeframe_ms("15m") == 900_000 and timeframe_ms("x") is None


def test_a_writer_adds_the_symbol_index_to_an_older_journal(journal_path: Path) -> None:
    with sqlite3.connect(journal_path) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM pragma_index_list('position')")]
        for name in names:
            if name.startswith("ix_position_run_symbol"):
                conn.execute(f'DROP INDEX "{name}"')
        assert not has_symbol_index(conn)
    with Journal(journal_path):
        pass
    with sqlite3.connect(journal_path) as conn:
        assert has_symbol_index(conn)
