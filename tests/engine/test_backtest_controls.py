"""Trading states through the engine loop: operator pause / flatten / resume / halt requests
polled from the journal's control table, acted on by the one exit owner and the risk kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.bars import align
from engine.core.exits import ExitController
from engine.core.loop import EngineLoop
from engine.core.risk import RiskKernel
from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.domain import Decision, HarvestLadder, Portfolio, SafetyLimits, Side, TradingState
from engine.journal.store import Journal
from engine.venues.candle_files import load_market_data, sample_data_dir
from engine.venues.simulated import BrokerConfig, SimulatedBroker
from tests.engine.journal_checks import assert_journal_within_limits

H = 3_600_000
TIERS = LeverageTiers.load(PACKAGED_TIERS)
CFG = BrokerConfig.from_toml()


class AlwaysLong:
    """Opens a small, wide-stopped long on every symbol without a position."""

    name = "always-long"
    version = "1"

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, snapshot, portfolio):
        self.calls += 1
        return [
            Decision(ts=snapshot.ts, symbol=s, side=Side.LONG, leverage=5.0, size_pct=0.05,
                     stop_loss_pct=0.5, take_profit_pct=None,
                     harvest=HarvestLadder(9, 9.5, 10, 9, t1_close_frac=0.5, t2_close_frac=0.5),
                     kill_threshold=0.9, kill_reduce_threshold=0.9, kill_reduce_frac=0.5,
                     max_hold_sec=365 * 86_400.0, confidence=0.5)
            for s in snapshot.symbols if s not in portfolio.positions
        ]  # fmt: skip


@pytest.fixture
def loop_and_journal(tmp_path: Path):
    md = load_market_data(
        sample_data_dir(), symbols=["BTC", "ETH"], end_ms=1_746_057_600_000 + 200 * H
    )
    bars = align(md)
    journal = Journal(tmp_path / "ctl.db")
    run_id = journal.start_run("backtest", "always-long", "1")
    broker = SimulatedBroker(CFG, TIERS, Portfolio(wallet_balance=10_000.0), run_id=run_id)
    policy = AlwaysLong()
    loop = EngineLoop(bars=bars, policy=policy, risk=RiskKernel(SafetyLimits(), TIERS),
                      exits=ExitController(CFG.break_even_offset()), broker=broker,
                      journal=journal, run_id=run_id, poll_controls=True)  # fmt: skip
    yield loop, journal, policy
    journal.close()


def test_pause_flatten_resume_halt(loop_and_journal, tmp_path: Path) -> None:
    loop, journal, policy = loop_and_journal
    pf = loop.broker.portfolio
    for i in range(10):
        loop.step(i)
    assert set(pf.positions) == {"BTC-USDT", "ETH-USDT"}

    journal.request_control("flatten", source="test")
    loop.step(10)
    assert not pf.positions and pf.state is TradingState.REDUCING
    assert {p.close_reason for p in loop.broker.closed_positions} == {"flatten"}
    handled = journal.rows("control")
    assert handled[0]["handled_ts"] is not None and "closed 2" in handled[0]["result"]

    calls = policy.calls
    for i in range(11, 20):
        loop.step(i)
    assert not pf.positions and policy.calls == calls  # REDUCING: the policy is not even asked

    journal.request_control("resume")
    loop.step(20)
    assert pf.state is TradingState.ACTIVE and len(pf.positions) == 2

    journal.request_control("flatten", symbol="BTC-USDT")
    loop.step(21)
    last = loop.broker.closed_positions[-1]
    assert (last.symbol, last.close_reason) == ("BTC-USDT", "flatten")
    assert pf.state is TradingState.ACTIVE  # one symbol flattened; the policy may enter again

    journal.request_control("halt")
    loop.step(22)
    assert pf.state is TradingState.HALTED
    # halted: even the exit controller's orders are refused (exchange backstops stay resting)
    journal.request_control("flatten", symbol="ETH-USDT")
    loop.step(23)
    assert "ETH-USDT" in pf.positions
    vetoes = journal.rows("safety_event", where="\"limit\" = 'trading_state'")
    assert vetoes and vetoes[-1]["action"] == "VETO"
    assert_journal_within_limits(journal, tiers=TIERS)


def test_pause_stops_entries_but_exits_still_work(loop_and_journal) -> None:
    loop, journal, _ = loop_and_journal
    pf = loop.broker.portfolio
    loop.step(0)
    journal.request_control("pause")
    loop.step(1)
    assert pf.state is TradingState.REDUCING and len(pf.positions) == 2
    order = loop.broker.market_order(0, "BTC-USDT", Side.SHORT, 1e-6, "kill", reduce_only=True)
    assert loop.risk.check_order(order, pf) is None  # reducing orders pass in REDUCING
