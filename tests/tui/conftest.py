"""A real journal for the monitor tests: a short backtest of the packaged legacy policy."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from engine.backtest import default_policy_path, run_backtest
from engine.core.policy import StaticPolicy
from engine.journal.store import Journal
from engine.venues.candle_files import load_market_data, sample_data_dir

FIRST_BAR_MS = 1_746_057_600_000  # 2025-05-01 00:00 UTC, the first bar of the sample
HOUR_MS = 3_600_000
BARS = 300
EQUITY_USDT = 10_000.0


@pytest.fixture(scope="session")
def backtest_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session; tests that write get their own copy (`journal_path`)."""
    path = tmp_path_factory.mktemp("tui-journal") / "qctl.db"
    md = load_market_data(
        sample_data_dir(), symbols=["BTC", "ETH"], end_ms=FIRST_BAR_MS + BARS * HOUR_MS
    )
    policy = StaticPolicy.from_toml(default_policy_path())
    with Journal(path) as journal:
        run_backtest(md, policy, equity=EQUITY_USDT, journal=journal)
    return path


@pytest.fixture
def journal_path(backtest_journal: Path, tmp_path: Path) -> Path:
    path = tmp_path / "qctl.db"
    shutil.copy(backtest_journal, path)
    return path


@pytest.fixture
def running_journal(journal_path: Path) -> Path:
    """The same journal, its run still going (as a live run or one that crashed and restarts)."""
    with sqlite3.connect(journal_path) as conn:
        conn.execute("UPDATE run SET status = 'running', ended_ts = NULL")
    return journal_path


def screen_text(app: App) -> str:
    """What the terminal shows, as plain text (one line per terminal row)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(
        app.screen._compositor.render_update(
            full=True, screen_stack=app._background_screens, simplify=True
        )
    )
    return console.export_text()


async def settle(app: App, pilot: Pilot) -> None:
    """Wait for the worker threads, then for their messages to be handled.

    With a short refresh a newer read may cancel the one waited for (the reads are exclusive).
    """
    for _ in range(2):
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()


@pytest.fixture
def run_async() -> Callable[[Awaitable[None]], None]:
    """Run a coroutine to completion (no async pytest plugin needed)."""
    return asyncio.run
