"""The monitor on a run that is being written: controls sent from it are acted on by the engine.

The writer is the engine loop itself (`EngineLoop` with `poll_controls=True`, the path
`qctl backtest` and `qctl trade` share) in another thread, committing every row at once and
stepping one bar every few milliseconds; the monitor follows it on a short timer, as `qctl tui`
follows `qctl trade`. The policy holds a wide-stopped long on every symbol, so that only the
controls close positions and every change the test waits for is the control's doing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine.core.bars import align
from engine.core.exits import ExitController
from engine.core.loop import EngineLoop
from engine.core.risk import RiskKernel
from engine.core.tiers import LeverageTiers
from engine.domain import Decision, HarvestLadder, Portfolio, SafetyLimits, Side
from engine.journal.store import Journal
from engine.venues.candle_files import load_market_data, sample_data_dir
from engine.venues.simulated import BrokerConfig, SimulatedBroker
from tests.tui.conftest import FIRST_BAR_MS, HOUR_MS, screen_text
from tui.app import ConfirmControl, MonitorApp

BAR_DELAY_S = 0.02  # wall time per bar of the writer
BARS = 3000  # more than the scenario needs: the run is still going when the test ends it
WAIT_S = 60.0  # the most any step of the scenario may take on a loaded machine


class HoldLong:
    """Opens a small long with a far stop on every flat symbol; its exits never trigger."""

    name = "hold-long"
    version = "1"

    def decide(self, snapshot, portfolio) -> list[Decision]:
        return [
            Decision(ts=snapshot.ts, symbol=s, side=Side.LONG, leverage=3.0, size_pct=0.05,
                     stop_loss_pct=0.6, take_profit_pct=None,
                     harvest=HarvestLadder(9, 9.5, 10, 9, t1_close_frac=0.5, t2_close_frac=0.5),
                     kill_threshold=0.9, kill_reduce_threshold=0.9, kill_reduce_frac=0.5,
                     max_hold_sec=365 * 86_400.0, confidence=0.5, reasons=(("hold", 1.0),))
            for s in snapshot.symbols if s not in portfolio.positions
        ]  # fmt: skip


class EngineThread(threading.Thread):
    """The engine loop over the packaged sample, polling controls, written to `path` as it goes."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            md = load_market_data(
                sample_data_dir(), symbols=["BTC", "ETH"], end_ms=FIRST_BAR_MS + BARS * HOUR_MS
            )
            bars = align(md)
            tiers = LeverageTiers.load()
            cfg = BrokerConfig.from_toml()
            with Journal(self.path, batch_size=1) as journal:  # every row visible at once
                run_id = journal.start_run(
                    "paper", HoldLong.name, HoldLong.version, timeframe="1h", symbols=bars.symbols
                )
                broker = SimulatedBroker(cfg, tiers, Portfolio(wallet_balance=10_000.0),
                                         run_id=run_id)  # fmt: skip
                loop = EngineLoop(bars=bars, policy=HoldLong(),
                                  risk=RiskKernel(SafetyLimits(), tiers),
                                  exits=ExitController(cfg.break_even_offset()), broker=broker,
                                  journal=journal, run_id=run_id, poll_controls=True)  # fmt: skip
                for i in range(bars.n_steps):
                    if self.stop.is_set():
                        break
                    loop.step(i)
                    time.sleep(BAR_DELAY_S)
                journal.finish_run("finished")
        except BaseException as exc:  # reported by the test
            self.error = exc


def _sql(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


async def _until(pilot, what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def test_controls_sent_from_the_monitor_are_acted_on(tmp_path: Path, run_async: Callable) -> None:
    path = tmp_path / "live.db"
    engine = EngineThread(path)
    engine.start()
    deadline = time.monotonic() + WAIT_S
    while not (path.exists() and _sql(path, "SELECT COUNT(*) FROM sqlite_master")[0][0]):
        assert time.monotonic() < deadline and engine.is_alive(), engine.error
        time.sleep(0.05)

    def handled() -> list[tuple]:
        return _sql(path, "SELECT command, symbol, result FROM control WHERE handled_ts NOT NULL")

    async def scenario() -> None:
        app = MonitorApp(path, refresh_seconds=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(
                pilot,
                "an open position",
                lambda: app.snapshot is not None and bool(app.snapshot.positions),
            )
            assert app.snapshot is not None and not app.snapshot.run.ended
            assert app.snapshot.equity is not None and app.snapshot.equity.state == "ACTIVE"

            await pilot.press("p")
            await _until(pilot, "the pause to be handled", lambda: len(handled()) == 1)
            await _until(
                pilot,
                "the monitor to show REDUCING",
                lambda: (
                    app.snapshot is not None
                    and app.snapshot.equity is not None
                    and app.snapshot.equity.state == "REDUCING"
                ),
            )
            assert screen_text(app).splitlines()[0].split()[0] == "REDUCING"

            selected = app.selected_symbol
            symbols = [p.symbol for p in app.snapshot.positions]
            assert selected in symbols and len(symbols) == 2
            (other,) = set(symbols) - {selected}
            await pilot.press("f")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmControl)
            await pilot.press("y")
            await _until(pilot, "the flatten of one symbol", lambda: len(handled()) == 2)
            await _until(
                pilot,
                f"{selected} to be closed",
                lambda: (
                    app.snapshot is not None
                    and [p.symbol for p in app.snapshot.positions] not in ([], None)
                    and selected not in [p.symbol for p in app.snapshot.positions]
                ),
            )

            await pilot.press("F")
            await pilot.pause()
            await pilot.press("y")
            await _until(pilot, "the flatten of all", lambda: len(handled()) == 3)
            await _until(
                pilot,
                "every position to be closed",
                lambda: app.snapshot is not None and not app.snapshot.positions,
            )

            await pilot.press("h")
            await pilot.pause()
            await pilot.press("y")
            await _until(pilot, "the halt", lambda: len(handled()) == 4)
            await _until(
                pilot,
                "the monitor to show HALTED",
                lambda: (
                    app.snapshot is not None
                    and app.snapshot.equity is not None
                    and app.snapshot.equity.state == "HALTED"
                ),
            )
            assert app.snapshot.pending_controls == 0

    try:
        run_async(scenario())
    finally:
        engine.stop.set()
        engine.join(WAIT_S)
    assert engine.error is None, engine.error
    pause, one, everything, halt = handled()
    assert pause == ("pause", None, "state REDUCING")
    assert one[0] == "flatten" and one[1] is not None and one[2].startswith("closed 1 position")
    assert everything == ("flatten", None, "closed 1 position(s); state REDUCING")
    assert halt == ("halt", None, "state HALTED")
    closes = _sql(path, "SELECT symbol, close_reason FROM position WHERE event = 'close'")
    assert sorted(s for s, _ in closes) == ["BTC-USDT", "ETH-USDT"]
    assert all("flatten" in reason for _, reason in closes)
