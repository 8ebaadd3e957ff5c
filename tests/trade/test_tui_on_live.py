"""`qctl tui` beside a running `qctl trade --live`: it follows the journal being written, and a
control sent from it is acted on by the live session (real ccxt, the local exchange)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from engine.backtest import default_policy_path
from engine.core.policy import StaticPolicy
from engine.journal.store import Journal
from engine.trade import TradeSession, TradeSettings
from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim.server import DEFAULT_API_KEY, DEFAULT_SECRET
from tests.trade.conftest import HISTORY, SYMBOLS
from tui.app import MonitorApp

WAIT_S = 90.0  # the most any step may take on a loaded machine


class LiveThread(threading.Thread):
    """A live session in its own thread and event loop, advancing the exchange one bar per wait."""

    def __init__(self, sim, db: Path) -> None:
        super().__init__(daemon=True)
        self.sim, self.db = sim, db
        self.session: TradeSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            ex = make_exchange("binanceusdm", self.sim.url, DEFAULT_API_KEY, DEFAULT_SECRET)
            journal = Journal(self.db)
            settings = TradeSettings(mode="live", symbols=SYMBOLS, poll_seconds=0.02,
                                     history_bars=HISTORY)  # fmt: skip
            self.session = TradeSession(
                settings, StaticPolicy.from_toml(default_policy_path()), journal, ex,
                out=lambda s: None, on_wait=lambda: self.sim.advance(1),
            )  # fmt: skip
            try:
                await self.session.run()
            finally:
                await ex.close()
                journal.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def stop(self) -> None:
        if self.loop is not None and self.session is not None:
            self.loop.call_soon_threadsafe(self.session.stop)
        self.join(timeout=60)


def _sql(path: Path, query: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_the_monitor_follows_a_live_session_and_its_pause_is_acted_on(sim, tmp_path):
    db = tmp_path / "live.db"
    live = LiveThread(sim, db)
    live.start()
    deadline = time.monotonic() + WAIT_S
    while not (db.exists() and _sql(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'equity'")[0][0]
               and _sql(db, "SELECT COUNT(*) FROM equity")[0][0] >= 3):  # fmt: skip
        assert time.monotonic() < deadline and live.is_alive(), live.error
        time.sleep(0.05)

    async def scenario() -> None:
        app = MonitorApp(db, refresh_seconds=0.1)
        async with app.run_test(size=(160, 45)) as pilot:
            end = time.monotonic() + WAIT_S
            while app.snapshot is None or app.snapshot.run.ended:
                assert time.monotonic() < end, "the monitor never showed the running session"
                await pilot.pause(0.1)
            assert app.snapshot.run.mode == "live"
            await pilot.press("p")
            while not _sql(db, "SELECT 1 FROM control WHERE handled_ts IS NOT NULL"):
                assert time.monotonic() < end, "the live session never handled the pause"
                await pilot.pause(0.1)
            while app.snapshot.equity is None or app.snapshot.equity.state != "REDUCING":
                assert time.monotonic() < end, "the monitor never showed REDUCING"
                await pilot.pause(0.1)

    try:
        asyncio.run(scenario())
    finally:
        live.stop()
    assert live.error is None, live.error
    ((source, result),) = _sql(db, "SELECT source, result FROM control")
    assert "REDUCING" in result and source
    assert _sql(db, "SELECT status FROM run")[0][0] == "stopped"
