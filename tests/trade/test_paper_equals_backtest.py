"""The same bars through `qctl backtest` and `qctl trade --paper` give the same decisions."""

from __future__ import annotations

from engine.backtest import default_policy_path
from engine.core.bars import align
from engine.core.clock import BacktestClock
from engine.core.exits import ExitController
from engine.core.loop import EngineLoop
from engine.core.policy import StaticPolicy
from engine.core.risk import RiskKernel
from engine.core.tiers import LeverageTiers
from engine.domain import Portfolio, SafetyLimits
from engine.journal.store import MEMORY, Journal
from engine.venues.candle_files import load_market_data, sample_data_dir
from engine.venues.simulated import BrokerConfig, SimulatedBroker
from tests.trade.conftest import HISTORY, SYMBOLS, run_session

COLUMNS = ("ts", "symbol", "action", "leverage", "size_pct", "stop_loss_pct", "take_profit_pct",
           "harvest_t1_r", "kill_threshold", "skip")  # fmt: skip


def _decisions(journal: Journal) -> list[tuple]:
    return [tuple(r[c] for c in COLUMNS) for r in journal.rows("decision")]


def test_paper_decisions_equal_the_backtest_of_the_same_bars(sim, tmp_path):
    db = tmp_path / "paper.db"
    summary = run_session(sim, db, mode="paper", bars=60)
    assert summary.bars == 60
    with Journal.open_readonly(db) as j:
        paper = _decisions(j)
        steps = [r["ts"] for r in j.rows("equity")]
    assert any(d[2] != "skip" for d in paper), "the paper session entered at least once"

    # the backtest: the bars the paper feed held (its warm-up history, then one per step)
    first_close, last_close = steps[0], steps[-1]
    md = load_market_data(sample_data_dir(), symbols=SYMBOLS, timeframe="1h", end_ms=last_close)
    bars = align(md)
    step_ms = bars.step_ms
    first_step = int(bars.ts.searchsorted(first_close - step_ms))
    md = load_market_data(
        sample_data_dir(), symbols=SYMBOLS, timeframe="1h",
        start_ms=int(bars.ts[first_step - HISTORY]), end_ms=last_close,
    )  # fmt: skip
    bars = align(md)
    cfg = BrokerConfig.from_toml()
    tiers = LeverageTiers.load()
    journal = Journal(MEMORY)
    journal.start_run("backtest", "legacy")
    loop = EngineLoop(
        bars=bars,
        policy=StaticPolicy.from_toml(default_policy_path()),
        risk=RiskKernel(SafetyLimits(), tiers),
        exits=ExitController(cfg.break_even_offset()),
        broker=SimulatedBroker(cfg, tiers, Portfolio(wallet_balance=10_000.0)),
        journal=journal,
        run_id="bt",
    )
    loop.run(BacktestClock(bars.n_steps, start=HISTORY))
    assert _decisions(journal) == paper
