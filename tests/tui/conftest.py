"""A real journal for the monitor tests: a short backtest of the packaged legacy policy."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

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
def run_async() -> Callable[[Awaitable[None]], None]:
    """Run a coroutine to completion (no async pytest plugin needed)."""
    return asyncio.run
