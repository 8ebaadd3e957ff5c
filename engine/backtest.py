"""Backtest: the engine loop (engine/core/loop.py) over recorded bars with the simulated broker.

`run_backtest` wires data, policy, risk kernel, exit controller, broker and journal, runs every
bar of the common grid, and returns what the report needs: metrics, counters, trades, the equity
curve, the data issues and what the run did *not* model (no funding, no mark prices, spot data).
"""

from __future__ import annotations

import contextlib
import gc
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.bars import AlignedBars, DataIssue, MarketData, align
from engine.core.clock import BacktestClock
from engine.core.exits import ExitController
from engine.core.loop import EngineLoop, JournalSink, RunStats
from engine.core.metrics import Metrics, TradeRecord, compute_metrics
from engine.core.policy import Policy
from engine.core.risk import RiskKernel
from engine.core.tiers import LeverageTiers
from engine.domain import Portfolio, Position, SafetyLimits
from engine.resources import SAMPLE_DATA
from engine.venues.simulated import BrokerConfig, SimulatedBroker


class BacktestError(Exception):
    """A backtest cannot start (bad equity, empty window...); shown to the user as one line."""


@dataclass(slots=True)
class BacktestResult:
    """Everything a report shows about one run."""

    run_id: str
    policy: str
    policy_version: str
    symbols: list[str]
    timeframe: str
    metrics: Metrics
    stats: RunStats
    trades: list[TradeRecord]
    ts: np.ndarray
    equity: np.ndarray
    exposure: np.ndarray
    margin_ratio: np.ndarray
    issues: list[DataIssue]
    notes: list[str] = field(default_factory=list)
    funding_symbols: list[str] = field(default_factory=list)
    spot_symbols: list[str] = field(default_factory=list)
    open_positions: list[Position] = field(default_factory=list)
    elapsed_s: float = 0.0
    broker: dict[str, float | str] = field(default_factory=dict)

    @property
    def has_funding(self) -> bool:
        return bool(self.funding_symbols)

    @property
    def symbol_bars_per_s(self) -> float:
        return self.stats.symbol_bars / self.elapsed_s if self.elapsed_s > 0 else 0.0


def trade_record(pos: Position) -> TradeRecord:
    """A closed position as a round trip (pnl net of its fees and funding)."""
    qty = pos.initial_qty
    exit_price = (
        pos.entry_price + pos.side.sign * pos.realised_pnl / qty if qty > 0 else pos.entry_price
    )
    return TradeRecord(
        symbol=pos.symbol,
        side=str(pos.side),
        entry_ts=int(pos.opened_ts),
        exit_ts=int(pos.closed_ts if pos.closed_ts is not None else pos.opened_ts),
        entry_price=float(pos.entry_price),
        exit_price=float(exit_price),
        qty=float(qty),
        pnl=float(pos.realised_pnl - pos.fees_paid - pos.funding_paid),
        fees=float(pos.fees_paid),
        funding=float(-pos.funding_paid),
        exit_reason=pos.close_reason,
    )


def _notes(bars: AlignedBars, md: MarketData, tiers: LeverageTiers) -> list[str]:
    notes = []
    if not bars.has_funding.any():
        notes.append("no funding data: funding was NOT settled in this run")
    elif not bars.has_funding.all():
        missing = [s for s, f in zip(bars.symbols, bars.has_funding, strict=True) if not f]
        notes.append(f"no funding data for {', '.join(missing)}: funding not settled for them")
    if not bars.has_mark.all():
        notes.append(
            "no mark-price file"
            + ("" if not bars.has_mark.any() else " for some symbols")
            + ": liquidation and funding use the trade bars' prices as mark"
        )
    spot = [s for s, sd in md.symbols.items() if sd.is_spot]
    if spot:
        notes.append(f"SPOT data traded as if perpetual (tests only): {', '.join(spot)}")
    notes.append(f"leverage tiers: {tiers.source or 'given in code'}")
    return notes


def run_backtest(
    md: MarketData,
    policy: Policy,
    *,
    equity: float,
    limits: SafetyLimits | None = None,
    tiers: LeverageTiers | None = None,
    broker_config: BrokerConfig | None = None,
    journal: JournalSink | None = None,
    run_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    data_source: str = "",
    poll_controls: bool = False,
) -> BacktestResult:
    """Run `policy` over `md` from `equity` USDT; journal every row when a journal is given.

    A journal with `start_run` (engine.journal.Journal) gets its run row created and finished
    here; `progress(done, total)` is called after each step. `poll_controls` makes the loop act
    on operator requests (pause, flatten...) queued in the journal's control table.
    """
    if not (equity > 0 and np.isfinite(equity)):
        raise BacktestError(f"starting equity must be a positive number of USDT, got {equity}")
    limits = limits or SafetyLimits()
    tiers = tiers or LeverageTiers.load()
    cfg = broker_config or BrokerConfig.from_toml()
    bars = align(md)
    if bars.n_steps == 0:
        raise BacktestError("no bars to run over")
    name = getattr(policy, "name", type(policy).__name__)
    version = getattr(policy, "version", "")
    notes = _notes(bars, md, tiers)
    broker_info = {
        "venue": cfg.venue,
        "taker_fee": cfg.taker_fee,
        "maker_fee": cfg.maker_fee,
        "slippage": cfg.slippage,
    }
    if journal is not None and hasattr(journal, "start_run"):
        run_id = journal.start_run(
            "backtest",
            name,
            version,
            limits=limits,
            timeframe=md.timeframe,
            symbols=bars.symbols,
            data_source=data_source,
            initial_equity=equity,
            config={"broker": broker_info, "notes": notes},
            run_id=run_id,
        )
    run_id = run_id or f"bt-{uuid.uuid4().hex[:12]}"

    risk = RiskKernel(limits, tiers, cfg.entry_cost(), cfg.exit_cost())
    broker = SimulatedBroker(cfg, tiers, Portfolio(wallet_balance=float(equity)), run_id=run_id)
    # a policy that chose its kill thresholds on a score of its own also provides that score
    exits = ExitController(
        cfg.break_even_offset(), kill_scorer=getattr(policy, "kill_scores", None)
    )
    loop = EngineLoop(
        bars=bars,
        policy=policy,
        risk=risk,
        exits=exits,
        broker=broker,
        journal=journal,
        run_id=run_id,
        poll_controls=poll_controls,
    )
    # a policy that can score the whole history up front does so, on the series the loop's
    # snapshots wrap (StaticPolicy.prepare_history); it lets go of them after the run
    prepare = getattr(policy, "prepare_history", None)
    if prepare is not None:
        prepare(loop.series, bars.step_ms)
    clock = BacktestClock(bars.n_steps)
    total = len(clock)
    cb = None if progress is None else (lambda i: progress(i + 1, total))
    # a journal that can commit its batches in a child process does so while the loop runs
    # (not while operator controls are polled: those read the journal between bars)
    write_behind = None if poll_controls else getattr(journal, "set_write_behind", None)
    t0 = time.perf_counter()
    status = "failed"
    try:
        if write_behind is not None:
            write_behind(True)
        with _gc_frozen():
            loop.run(clock, cb)
        status = "finished"
    finally:
        if prepare is not None:
            prepare(None)
        if write_behind is not None:
            write_behind(False)
        elapsed = time.perf_counter() - t0
        if journal is not None and hasattr(journal, "finish_run"):
            summary = {"status": status, "steps": loop.stats.steps}
            if status == "finished":
                ts, eq, _, _ = loop.curve.trimmed()
                summary.update(final_equity=float(eq[-1]), total_return=float(eq[-1] / equity - 1))
            journal.finish_run(status, summary)

    ts, eq, exposure, mr = loop.curve.trimmed()
    trades = [trade_record(p) for p in broker.closed_positions]
    metrics = compute_metrics(
        ts,
        eq,
        trades,
        bar_ms=bars.step_ms,
        exposure=exposure,
        fees_paid=broker.fees_paid,
        funding_paid=broker.funding_paid,
    )
    return BacktestResult(
        run_id=run_id,
        policy=name,
        policy_version=version,
        symbols=list(bars.symbols),
        timeframe=md.timeframe,
        metrics=metrics,
        stats=loop.stats,
        trades=trades,
        ts=ts,
        equity=eq,
        exposure=exposure,
        margin_ratio=mr,
        issues=list(md.issues),
        notes=notes,
        funding_symbols=[s for s, f in zip(bars.symbols, bars.has_funding, strict=True) if f],
        spot_symbols=[s for s, sd in md.symbols.items() if sd.is_spot],
        open_positions=list(broker.portfolio.positions.values()),
        elapsed_s=elapsed,
        broker=broker_info,
    )


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """While the loop runs, the objects that exist before it (modules, the loaded candles, the
    policy) are left out of the cyclic garbage collector's passes (`gc.freeze`): the loop frees
    none of them, and a full pass no longer walks them. Restored after, even on an error."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(slots=True)
class BacktestInputs:
    """Market data and venue of a backtest from files, checked before any policy is built."""

    market: MarketData
    broker_config: BrokerConfig
    data_source: str

    @property
    def symbol_bars(self) -> int:
        return self.market.n_bars


def load_inputs(
    data_dir: str | Path | None = None,
    *,
    symbols: Sequence[str] | None = None,
    timeframe: str = "1h",
    start_ms: int | None = None,
    end_ms: int | None = None,
    broker_file: str | Path | None = None,
) -> BacktestInputs:
    """Load candles (default: the shipped sample) and the venue file; bad values are user
    errors (BacktestError, DataError, BrokerConfigError), raised before anything runs."""
    from engine.venues.candle_files import load_market_data, sample_data_dir

    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise BacktestError("the end of the window is not after its start")
    folder = Path(data_dir) if data_dir is not None else sample_data_dir()
    md = load_market_data(folder, symbols=list(symbols) if symbols else None,
                          timeframe=timeframe, start_ms=start_ms, end_ms=end_ms)  # fmt: skip
    return BacktestInputs(md, BrokerConfig.from_toml(broker_file), str(folder))


def run_journaled(
    inputs: BacktestInputs,
    policy: Policy,
    *,
    equity: float,
    db: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """`run_backtest` writing every row to the SQLite journal `db` (":memory:" keeps none)."""
    from engine.journal.store import Journal

    if not (equity > 0 and np.isfinite(equity)):
        raise BacktestError(f"starting equity must be a positive number of USDT, got {equity}")
    journal = Journal(db)
    try:
        return run_backtest(inputs.market, policy, equity=equity,
                            broker_config=inputs.broker_config, journal=journal,
                            progress=progress, data_source=inputs.data_source)  # fmt: skip
    finally:
        journal.close()


def default_policy_path() -> Path:
    """The packaged copy of examples/legacy_policy.toml (made by bench/make_sample_data.py)."""
    return SAMPLE_DATA / "legacy_policy.toml"
