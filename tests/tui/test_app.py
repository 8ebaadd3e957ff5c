"""The monitor against a real backtest journal: what it shows, and the one thing it writes."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable, Sparkline, Static

from tests.tui.conftest import settle as _settle
from tui import data
from tui.app import ConfirmControl, MonitorApp
from tui.data import Snapshot
from tui.widgets import LimitGauge, RunHeader, distance_cell, fmt_pct

REPO = Path(__file__).resolve().parents[2]
SIZE = (160, 45)
NO_TIMER = 3600.0  # seconds: the tests trigger every read themselves


def _sql(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


def test_tables_and_gauges_show_the_journal(backtest_journal: Path, run_async: Callable) -> None:
    async def scenario() -> None:
        app = MonitorApp(backtest_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            positions = app.query_one("#positions", DataTable)
            open_symbols = [
                s
                for s, e in _sql(
                    backtest_journal,
                    "SELECT symbol, event FROM position WHERE id IN "
                    "(SELECT MAX(id) FROM position GROUP BY symbol) ORDER BY symbol",
                )
                if e != "close"
            ]
            assert open_symbols
            assert [positions.get_row_at(i)[0] for i in range(positions.row_count)] == open_symbols

            decisions = app.query_one("#decisions", DataTable)
            journal_rows = _sql(
                backtest_journal, "SELECT symbol, action, skip FROM decision ORDER BY id DESC"
            )
            assert decisions.row_count == min(len(journal_rows), 50)
            for i, (symbol, action, skip) in enumerate(journal_rows[: decisions.row_count]):
                row = decisions.get_row_at(i)
                assert (row[1], str(row[2])) == (symbol, action)
                if skip is not None:
                    assert str(row[6]).startswith(skip)
            assert any(skip for _, _, skip in journal_rows), "the sample run skips some trades"

            ((margin_ratio, exposure),) = _sql(
                backtest_journal,
                "SELECT margin_ratio, exposure FROM equity ORDER BY id DESC LIMIT 1",
            )
            gauge = app.query_one("#gauge-margin", LimitGauge)
            assert gauge.value == margin_ratio and gauge.bound == 0.1 and not gauge.breached
            assert fmt_pct(margin_ratio) in str(gauge.render())
            assert app.query_one("#gauge-exposure", LimitGauge).value == exposure
            assert app.query_one("#gauge-exposure", LimitGauge).bound == 2.0
            assert app.query_one("#gauge-position", LimitGauge).bound == 0.5

            (n_equity,) = _sql(backtest_journal, "SELECT COUNT(*) FROM equity")[0]
            assert len(app.query_one("#equity", Sparkline).data or []) == min(n_equity, 500)
            assert not app.query_one("#message", Static).display

    run_async(scenario())


def test_pause_and_resume_write_control_rows(running_journal: Path, run_async: Callable) -> None:
    async def scenario() -> None:
        app = MonitorApp(running_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            await pilot.press("p")
            await _settle(app, pilot)
            await pilot.press("r")
            await _settle(app, pilot)
            assert "2 control request(s) pending" in str(app.query_one("#header").render())

    run_async(scenario())
    (run_id,) = _sql(running_journal, "SELECT id FROM run")[0]
    rows = _sql(
        running_journal, "SELECT command, run_id, source, handled_ts FROM control ORDER BY id"
    )
    assert rows == [("pause", run_id, "tui", None), ("resume", run_id, "tui", None)]


def test_flatten_and_halt_need_confirmation(running_journal: Path, run_async: Callable) -> None:
    async def scenario() -> None:
        app = MonitorApp(running_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            selected = app.query_one("#positions", DataTable).get_row_at(0)[0]
            assert app.selected_symbol == selected
            for key in ("f", "F", "h"):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, ConfirmControl)
                await pilot.press("n")
                await _settle(app, pilot)
                assert not isinstance(app.screen, ConfirmControl)
            assert _sql(running_journal, "SELECT command FROM control") == []

            for key in ("f", "F", "h"):
                await pilot.press(key)
                await pilot.pause()
                if key == "f":
                    assert selected in str(app.screen.query_one("#confirm-question").render())
                await pilot.press("y")
                await _settle(app, pilot)

    run_async(scenario())
    (selected,) = _sql(
        running_journal,
        "SELECT symbol FROM position WHERE id IN (SELECT MAX(id) FROM position GROUP BY symbol) "
        "AND event != 'close' ORDER BY symbol LIMIT 1",
    )[0]
    assert _sql(running_journal, "SELECT command, symbol, source FROM control ORDER BY id") == [
        ("flatten", selected, "tui"),
        ("flatten", None, "tui"),
        ("halt", None, "tui"),
    ]


def test_a_finished_run_refuses_controls(journal_path: Path, run_async: Callable) -> None:
    async def scenario() -> None:
        app = MonitorApp(journal_path, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            assert app.snapshot is not None and app.snapshot.run.ended
            for key in ("p", "r", "f", "F", "h"):
                await pilot.press(key)
                await _settle(app, pilot)
                assert not isinstance(app.screen, ConfirmControl)
            messages = [n.message for n in app._notifications]
            assert len(messages) == 5
            run_id = app.snapshot.run.id
            assert all(f"run {run_id} is finished, nothing would act" in m for m in messages)
            assert "pending" not in str(app.query_one("#header").render())

    run_async(scenario())
    assert _sql(journal_path, "SELECT COUNT(*) FROM control") == [(0,)]


def test_a_run_that_ends_while_shown_refuses_controls(
    running_journal: Path, run_async: Callable
) -> None:
    async def scenario() -> None:
        app = MonitorApp(running_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            with sqlite3.connect(running_journal) as conn:  # the engine finishes meanwhile
                conn.execute("UPDATE run SET status = 'finished', ended_ts = 1")
            await pilot.press("p")  # the monitor still shows the run as running
            await _settle(app, pilot)
            assert any("is finished, nothing would act" in n.message for n in app._notifications)
            assert app.snapshot is not None and app.snapshot.run.ended  # re-read after refusal

    run_async(scenario())
    assert _sql(running_journal, "SELECT COUNT(*) FROM control") == [(0,)]


def test_missing_journal_shows_a_message(tmp_path: Path, run_async: Callable) -> None:
    missing = tmp_path / "missing.db"

    async def scenario() -> None:
        app = MonitorApp(missing, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            message = app.query_one("#message", Static)
            assert message.display and message.has_class("error")
            assert f"journal {missing} does not exist" in str(message.render())
            assert app.query_one("#positions", DataTable).row_count == 0
            await pilot.press("p")  # nothing to pause: no write, no crash
            await _settle(app, pilot)

    run_async(scenario())
    assert not missing.exists()


def test_cli_refuses_a_missing_journal_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    proc = subprocess.run(
        [sys.executable, "-m", "qctl.cli", "tui", "--db", str(missing)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "1000"},  # rich wraps stderr at 80 columns otherwise
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: journal {missing} does not exist"]
    assert not missing.exists()


def test_timer_picks_up_new_rows_and_flags_a_breach(
    journal_path: Path, run_async: Callable
) -> None:
    async def scenario() -> None:
        app = MonitorApp(journal_path, refresh_seconds=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            gauge = app.query_one("#gauge-margin", LimitGauge)
            assert not gauge.breached
            with sqlite3.connect(journal_path) as conn:  # the engine writing a bad bar
                conn.execute(
                    "INSERT INTO equity (run_id, ts, equity, wallet_balance, unrealised_pnl, "
                    "margin_ratio, exposure, open_positions, state) SELECT run_id, ts + 1, "
                    "equity, wallet_balance, unrealised_pnl, 0.05, exposure, open_positions, "
                    "'REDUCING' FROM equity ORDER BY id DESC LIMIT 1"
                )
            for _ in range(300):  # up to 30 s on a loaded machine
                await pilot.pause(0.1)
                if gauge.value == 0.05:
                    break
            assert gauge.breached and "BREACH" in str(gauge.render())
            assert "REDUCING" in str(app.query_one("#header").render())

    run_async(scenario())


def _header_style(lines: Text | None, word: str) -> str:
    """The style of `word` in the header (the heartbeat's colour)."""
    assert lines is not None and word in lines.plain, lines
    start = lines.plain.index(word)
    return " ".join(str(s.style) for s in lines.spans if s.start <= start < s.end)


def _set_run(path: Path, **values: object) -> None:
    with sqlite3.connect(path) as conn:
        have = {r[1] for r in conn.execute("PRAGMA table_info(run)")}
        for name in values:
            if name not in have:  # a journal of a schema before the run heartbeat
                conn.execute(f"ALTER TABLE run ADD COLUMN {name}")
        sets = ", ".join(f"{name} = ?" for name in values)
        conn.execute(f"UPDATE run SET {sets}", tuple(values.values()))


def test_heartbeat_fresh_stale_and_fallback(running_journal: Path, run_async: Callable) -> None:
    now = time.time_ns() // 1_000_000
    _set_run(running_journal, mode="paper", heartbeat_ts=now, pid=os.getpid(),
             host=socket.gethostname())  # fmt: skip

    async def show() -> tuple[Snapshot, Text]:
        app = MonitorApp(running_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            lines = app.query_one("#header", RunHeader).lines
            assert app.snapshot is not None and lines is not None
            return app.snapshot, lines

    snap, lines = asyncio.run(show())
    assert "STALE" not in lines.plain and "green" in _header_style(lines, "heartbeat")

    _set_run(running_journal, heartbeat_ts=now - 3_600_000)  # an hour old, the writer alive
    snap, lines = asyncio.run(show())
    assert (snap.heartbeat_age_ms or 0) >= 3_600_000
    assert "red" in _header_style(lines, "STALE")

    # no heartbeat column value: the latest equity point stands in (its bar is long past)
    _set_run(running_journal, heartbeat_ts=None)
    snap, lines = asyncio.run(show())
    assert snap.equity is not None and snap.heartbeat_ts == snap.equity.ts
    assert "red" in _header_style(lines, "STALE")


def test_a_crashed_engine_is_shown_and_refuses_controls(
    running_journal: Path, run_async: Callable
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    _set_run(running_journal, mode="live", heartbeat_ts=1, pid=int(gone.stdout),
             host=socket.gethostname())  # fmt: skip
    if data.run_state({"status": "running", "heartbeat_ts": 1, "pid": int(gone.stdout),
                       "host": socket.gethostname()}) != "crashed":  # fmt: skip
        pytest.skip("this journal schema has no writer liveness (run_liveness)")

    async def scenario() -> None:
        app = MonitorApp(running_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=SIZE) as pilot:
            await _settle(app, pilot)
            assert app.snapshot is not None and app.snapshot.run.state == "crashed"
            assert "red" in _header_style(app.query_one("#header", RunHeader).lines, "CRASHED")
            await pilot.press("p")
            await _settle(app, pilot)
            (note,) = [n.message for n in app._notifications]
            assert "is crashed, nothing would act" in note and "qctl trade" in note

    run_async(scenario())
    assert _sql(running_journal, "SELECT COUNT(*) FROM control") == [(0,)]


def test_distance_cells_turn_red_near_the_level() -> None:
    assert distance_cell(-0.01).style == "bold red"  # past the stop
    assert distance_cell(0.02).style == ""
    assert distance_cell(0.04, warn=0.05).style == "bold red"  # within 5 % of liquidation
    assert distance_cell(0.2, warn=0.05).style == ""
    assert distance_cell(None).plain == "-"
