"""The engine loop shared by backtest, paper and live modes: only the clock and broker differ.

One step = one closed bar on the common grid of all symbols:

1. the broker settles the bar: funding, exchange-side stop / take-profit backstops, liquidation
   (a simulated broker replays the bar's prices; a live broker reports what the exchange did);
2. positions are marked at the close and a `MarketSnapshot` is built (nothing after the close);
3. the exit controller (the one exit owner) acts first: kill, harvest rungs, stop to break-even+;
4. the policy is asked, through `safe_decide`, when it can act (trading ACTIVE and some symbol
   without a position); every decision is journaled, entries pass the risk kernel, approved ones
   become market orders with their stop / take-profit backstops;
5. an equity point (equity, margin ratio, exposure) is journaled.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.core.bars import AlignedBars
from engine.core.exits import ExitAction, ExitController
from engine.core.policy import Policy, safe_decide
from engine.core.risk import RiskKernel, ratio_of
from engine.domain import (
    AutonomyZone,
    Bars,
    ControlCommand,
    ControlRequest,
    Decision,
    EquityPoint,
    Fill,
    MarketSnapshot,
    Order,
    Portfolio,
    Position,
    SafetyEvent,
    Side,
    TradingState,
)

_ACTIVE, _HALTED = TradingState.ACTIVE, TradingState.HALTED  # module constants: cheaper per bar
_LONG = Side.LONG


@dataclass(slots=True)
class BrokerEvent:
    """Something the broker did that the journal must record."""

    kind: str  # "fill", "funding", "liquidation", "order", "cancel", "stop_moved"
    ts: int
    symbol: str
    order: Order | None = None
    fill: Fill | None = None
    amount: float = 0.0  # funding paid (+) / received (-)
    rate: float = 0.0
    position: Position | None = None  # the position after the event
    closed: bool = False  # the event closed the position


class Broker(Protocol):
    """What the loop needs of a broker (simulated here; ccxt in live mode)."""

    portfolio: Portfolio

    def process_bar(self, bars: AlignedBars, i: int, col: dict[str, int]) -> list[BrokerEvent]: ...

    def mark_to_close(self, bars: AlignedBars, i: int, col: dict[str, int]) -> None: ...

    def market_order(
        self, ts: int, symbol: str, side: Side, qty: float, purpose: str, reduce_only: bool = False
    ) -> Order: ...

    def execute(
        self, order: Order, ref_price: float, ts: int | None = None
    ) -> list[BrokerEvent]: ...

    def open_position(
        self,
        order: Order,
        ref_price: float,
        leverage: float,
        stop_loss_pct: float | None,
        take_profit_pct: float | None,
        **kwargs,
    ) -> list[BrokerEvent]: ...

    def move_stop(
        self, ts: int, symbol: str, new_stop: float, detail: str = ""
    ) -> list[BrokerEvent]: ...

    def maintenance_total(self) -> float: ...

    def expected_fill_price(self, side: Side, ref_price: float) -> float: ...


class JournalSink(Protocol):
    """The journal calls the loop makes (engine.journal.Journal implements them, buffered)."""

    def record_decision(self, decision: Decision) -> None: ...

    def record_order(self, order: Order) -> None: ...

    def record_fill(self, fill: Fill) -> None: ...

    def record_position(self, position: Position, ts: int, event: str) -> None: ...

    def record_equity(self, point: EquityPoint) -> None: ...

    def record_safety_event(self, event: SafetyEvent) -> None: ...

    def pending_controls(self) -> list[ControlRequest]: ...

    def mark_control_handled(self, request_id: int, result: str, ts: int | None = None) -> None: ...


@dataclass(slots=True)
class RunStats:
    """Counters the report shows; filled as the loop runs."""

    steps: int = 0
    symbol_bars: int = 0
    decisions: int = 0
    entries: int = 0
    skips: Counter = field(default_factory=Counter)
    safety_events: Counter = field(default_factory=Counter)
    exits: Counter = field(default_factory=Counter)
    policy_calls: int = 0
    liquidations: int = 0
    funding_events: int = 0


@dataclass(slots=True)
class EquityCurve:
    """Per-step arrays (preallocated): the run's equity curve and gauges."""

    ts: np.ndarray
    equity: np.ndarray
    exposure: np.ndarray
    margin_ratio: np.ndarray
    n: int = 0

    @classmethod
    def allocate(cls, n: int) -> EquityCurve:
        return cls(np.zeros(n, dtype=np.int64), np.zeros(n), np.zeros(n), np.zeros(n))

    def trimmed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        k = self.n
        return self.ts[:k], self.equity[:k], self.exposure[:k], self.margin_ratio[:k]


class KnownRow(Mapping[str, int]):
    """Bars known per symbol after one step, read from a row of `AlignedBars.known` on demand."""

    __slots__ = ("_row", "_col")

    def __init__(self, row: np.ndarray, col: Mapping[str, int]) -> None:
        self._row = row
        self._col = col

    def __getitem__(self, symbol: str) -> int:
        return self._row.item(self._col[symbol])

    def get(self, symbol: str, default: int = 0) -> int:  # type: ignore[override]
        j = self._col.get(symbol)
        return default if j is None else self._row.item(j)

    def __iter__(self) -> Iterator[str]:
        return iter(self._col)

    def __len__(self) -> int:
        return len(self._col)

    def items(self):  # type: ignore[override]
        return zip(self._col, self._row.tolist(), strict=True)


def journal_events(journal: JournalSink, events: Iterable[BrokerEvent]) -> None:
    """Journal what a broker did: orders, fills, and a position row for each fill or stop move
    (also used outside a step, by start-up recovery)."""
    for ev in events:
        if ev.order is not None:
            journal.record_order(ev.order)
        if ev.fill is not None:
            journal.record_fill(ev.fill)
        if ev.position is None:
            continue
        # funding changes only `funding_paid`: it shows in the position's next row (and the
        # close row holds the total), so a funding print adds no row of its own
        if ev.kind == "fill":
            purpose = str(ev.order.purpose) if ev.order is not None else "fill"
            event = "close" if ev.closed else "open" if purpose == "entry" else purpose
            journal.record_position(ev.position, ev.ts, event)
        elif ev.kind == "stop_moved":
            journal.record_position(ev.position, ev.ts, "stop_moved")


class EngineLoop:
    """Runs steps (see module docstring). Mode-agnostic: give it a clock's steps and a broker."""

    def __init__(
        self,
        *,
        bars: AlignedBars,
        policy: Policy,
        risk: RiskKernel,
        exits: ExitController,
        broker: Broker,
        journal: JournalSink | None,
        run_id: str,
        zone: AutonomyZone | None = None,
        poll_controls: bool = False,
    ) -> None:
        self.poll_controls = poll_controls
        self.bars = bars
        self.policy = policy
        self.risk = risk
        self.exits = exits
        self.broker = broker
        self.journal = journal
        self.run_id = run_id
        self.zone = zone or risk.zone
        self.col = {s: j for j, s in enumerate(bars.symbols)}
        self.series = {s: Bars.from_arrays(*bars.series[s]) for s in bars.symbols}
        exits.series = self.series  # the arrays this loop's snapshots wrap (read up to n_bars)
        self.stats = RunStats()
        self.curve = EquityCurve.allocate(bars.n_steps)
        self._present = bars.present().tolist()
        # a policy that knows it returns nothing at most bars (StaticPolicy between universe
        # refreshes) says so, and the loop skips the call: the same decisions, less work per bar
        self._acts_at: Callable[[int, int], bool] | None = getattr(policy, "acts_at", None)
        self._n_symbols = len(bars.symbols)
        # a journal that takes the equity row's values directly (engine.journal.Journal)
        self._equity_values: Callable[..., None] | None = (
            getattr(journal, "record_equity_values", None) if journal is not None else None
        )

    # -- journal helpers (no-ops without a journal) ------------------------------------------

    def _j_events(self, events: Iterable[BrokerEvent]) -> None:
        events = list(events)
        for ev in events:
            if ev.kind == "funding":
                self.stats.funding_events += 1
            elif ev.kind == "liquidation":
                self.stats.liquidations += 1
        if self.journal is not None:
            journal_events(self.journal, events)

    def _j_safety(self, event: SafetyEvent) -> None:
        self.stats.safety_events[str(event.limit)] += 1
        if self.journal is not None:
            self.journal.record_safety_event(event)

    def _j_decision(self, d: Decision) -> None:
        self.stats.decisions += 1
        if d.skip is not None:
            self.stats.skips[str(d.skip)] += 1
        if self.journal is not None:
            self.journal.record_decision(d)

    # -- the step ----------------------------------------------------------------------------

    def snapshot(self, i: int) -> MarketSnapshot:
        """What is known right after step i closed (per-symbol windows end at bar i).

        The per-symbol bar counts are read lazily from row i: building a snapshot costs the same
        for 5 symbols or 500, and only symbols someone asks about are looked at."""
        b = self.bars
        return MarketSnapshot(
            int(b.ts[i]) + b.step_ms, b.step_ms, self.series, KnownRow(b.known[i], self.col)
        )

    def step(self, i: int) -> None:
        b = self.bars
        broker = self.broker
        pf = broker.portfolio
        ts = b.ts.item(i) + b.step_ms
        pf.ts = ts
        stats = self.stats
        stats.steps += 1
        stats.symbol_bars += self._present[i]

        if pf.positions:
            events = broker.process_bar(b, i, self.col)
            if events:
                self._j_events(events)
            broker.mark_to_close(b, i, self.col)
        if pf.wallet_balance <= 0 and not pf.positions and pf.state is not _HALTED:
            pf.state = _HALTED
        snap = self.snapshot(i)
        if self.poll_controls and self.journal is not None:
            for request in self.journal.pending_controls():
                result = self.apply_control(request, i)
                self.journal.mark_control_handled(request.id, result, ts)

        if pf.positions:
            for action in self.exits.evaluate(snap, pf):
                self._apply_exit(action, ts, i)

        risk = self.risk
        if pf.positions or risk.limit_reducing:  # the limits hold at every bar close
            guard = risk.hold_limits(pf, ts, lambda s: self._has_price(s, i))
            pf.state = guard.state
            for event in guard.events:
                self._j_safety(event)
            for action in guard.exits:
                self._apply_exit(action, ts, i)

        if (
            pf.state is _ACTIVE
            and len(pf.positions) < self._n_symbols
            and (self._acts_at is None or self._acts_at(ts, b.step_ms))
        ):
            stats.policy_calls += 1
            for d in safe_decide(self.policy, snap, pf, self.zone):
                self._handle_decision(d, i)

        self._record_equity(i, ts)

    def apply_control(self, request: ControlRequest, i: int) -> str:
        """Act on an operator request (pause, resume, flatten, halt); returns the result text.

        Flatten goes through the exit controller like any other exit: with a symbol it closes
        that position only; without one it closes all and leaves trading REDUCING.
        """
        pf = self.broker.portfolio
        ts = int(self.bars.ts[i]) + self.bars.step_ms
        cmd = request.command
        self.risk.limit_reducing = False  # from now on the state is the operator's, not a limit's
        if cmd is ControlCommand.PAUSE:
            pf.state = TradingState.REDUCING
        elif cmd is ControlCommand.HALT:
            pf.state = TradingState.HALTED
        elif cmd is ControlCommand.RESUME:
            if pf.equity <= 0:
                return "refused: equity is not positive"
            pf.state = TradingState.ACTIVE
        elif cmd is ControlCommand.FLATTEN:
            actions = self.exits.flatten(pf, f"operator flatten ({request.source or 'control'})")
            if request.symbol is not None:
                actions = [a for a in actions if a.symbol == request.symbol]
            else:
                pf.state = TradingState.REDUCING
            for action in actions:
                self._apply_exit(action, ts, i)
            return f"closed {len(actions)} position(s); state {pf.state}"
        return f"state {pf.state}"

    def _price(self, symbol: str, i: int) -> float:
        return float(self.bars.close.item(i, self.col[symbol]))

    def _has_price(self, symbol: str, i: int) -> bool:
        """Whether `symbol` has a bar at step `i`, so an order can fill at its close now."""
        return symbol in self.col and math.isfinite(self._price(symbol, i))

    def _apply_exit(self, action: ExitAction, ts: int, i: int) -> None:
        pf = self.broker.portfolio
        pos = pf.positions.get(action.symbol)
        if pos is None:
            return
        if action.new_stop is not None and action.close_qty <= 0:
            self.stats.exits["stop_to_break_even"] += 1
            self._j_events(self.broker.move_stop(ts, action.symbol, action.new_stop, action.detail))
            return
        price = self._price(action.symbol, i)
        if not math.isfinite(price):
            return  # no bar for this symbol now: nothing is known to act on
        order = self.broker.market_order(
            ts, action.symbol, pos.side.opposite, action.close_qty, action.purpose, reduce_only=True
        )
        veto = self.risk.check_order(order, pf)
        if veto is not None:
            self._j_safety(veto)
            return
        self.stats.exits[str(action.purpose)] += 1
        events = self.broker.execute(order, price, ts)
        if action.harvest_stage is not None:
            pos.harvest_stage = action.harvest_stage  # before journaling: the row shows it
        if action.kill_reduced:
            pos.kill_reduced = True
        self._j_events(events)
        if action.purpose == "kill" or action.symbol not in pf.positions:
            self.exits.forget(action.symbol)

    def _handle_decision(self, d: Decision, i: int) -> None:
        if d.skip is not None or d.side is None:
            self._j_decision(d)
            return
        pf = self.broker.portfolio
        price = self._price(d.symbol, i) if d.symbol in self.col else math.nan
        verdict = self.risk.check(d, pf, price)
        for ev in verdict.events:
            self._j_safety(ev)
        self._j_decision(verdict.decision)
        if not verdict.approved:
            return
        ad = verdict.decision
        self.stats.entries += 1
        # the approved notional at the expected fill price (slippage included), not more
        qty = verdict.notional / self.broker.expected_fill_price(d.side, price)
        order = self.broker.market_order(d.ts, d.symbol, d.side, qty, "entry")
        self._j_events(
            self.broker.open_position(
                order,
                price,
                float(ad.leverage),
                ad.stop_loss_pct,
                ad.take_profit_pct,
                harvest=ad.harvest,
                kill_threshold=ad.kill_threshold,
                kill_reduce_threshold=ad.kill_reduce_threshold,
                kill_reduce_frac=ad.kill_reduce_frac,
                max_hold_sec=ad.max_hold_sec,
                policy=ad.policy,
                model_version=ad.model_version,
            )
        )

    def _record_equity(self, i: int, ts: int) -> None:
        pf = self.broker.portfolio
        wallet = pf.wallet_balance
        positions = pf.positions
        if positions:
            upnl = gross = 0.0
            for p in positions.values():
                q, m = p.qty, p.mark_price
                upnl += (q if p.side is _LONG else -q) * (m - p.entry_price)
                gross += q * m
            equity = wallet + upnl
            mr = ratio_of(equity, self.broker.maintenance_total())
            exposure = gross / equity if equity > 0 else math.inf
        else:
            equity = wallet
            mr = 1.0 if equity > 0 else 0.0
            exposure = 0.0
        c = self.curve
        k = c.n
        c.ts[k], c.equity[k], c.exposure[k], c.margin_ratio[k] = ts, equity, exposure, mr
        c.n = k + 1
        if self._equity_values is not None:  # the journal's row without an EquityPoint
            self._equity_values(
                ts, equity, wallet, equity - wallet, mr, exposure, len(positions), pf.state
            )
        elif self.journal is not None:
            self.journal.record_equity(
                EquityPoint(
                    ts, equity, wallet, equity - wallet, mr, exposure, len(positions), pf.state
                )
            )

    def run(self, steps: Iterable[int], progress: Callable[[int], None] | None = None) -> None:
        """Run every step the clock yields; `progress(i)` is called after each step."""
        for i in steps:
            self.step(i)
            if progress is not None:
                progress(i)
