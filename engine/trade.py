"""Paper and live trading: the backtest's loop on the exchange's clock (one process, one asyncio loop).

Each cycle waits for the next closed bar (polled through ccxt), rebuilds the bar grid from the
feed, and runs exactly one `EngineLoop.step` — the same policy → risk kernel → exit controller →
broker → journal path as `qctl backtest`; only the clock (the exchange's bar closes) and the
broker differ: paper mode fills with the simulated broker on the live bars, live mode sends
orders through `CcxtBroker`. The step runs in a worker thread so that the broker's ccxt calls can
be awaited on the one event loop that owns the exchange (`_call`).

Start-up is recovery (engine/reconcile.py); operator controls in the journal's control table
are acted on at every bar and between bars; SIGINT/SIGTERM finish the cycle, flush the journal
and leave the exchange's backstops in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.bars import align, timeframe_ms
from engine.core.exits import ExitController
from engine.core.loop import EngineLoop, journal_events
from engine.core.policy import Policy
from engine.core.risk import RiskKernel
from engine.core.tiers import LeverageTiers
from engine.domain import Portfolio, SafetyAction, SafetyLimits, Side, TradingState
from engine.reconcile import plan_from_decision, read_journal_state, safety
from engine.venues.live_feed import LiveFeed, wait_for_bar
from engine.venues.simulated import BrokerConfig, SimulatedBroker

MODES = ("paper", "live")


class TradeError(Exception):
    """`qctl trade` cannot start or go on (bad settings, exchange refused); one line for the user."""


@dataclass(slots=True)
class TradeSettings:
    """What `qctl trade` was asked to do. Venue facts (fees) come from the broker config."""

    mode: str
    symbols: list[str]
    timeframe: str = "1h"
    exchange_id: str = "binanceusdm"
    api_url: str | None = None
    history_bars: int = 500
    max_bars: int | None = None
    poll_seconds: float = 2.0
    equity: float | None = None  # paper only: the simulated account's starting balance
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    new_run: bool = False
    stall_after_s: float | None = None  # fail when no bar closes for this long (None: wait)

    def check(self) -> None:
        if self.mode not in MODES:
            raise TradeError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.symbols:
            raise TradeError("no symbols to trade: give --symbols or a policy with a universe")
        timeframe_ms(self.timeframe)
        if self.mode == "paper" and not (
            self.equity and self.equity > 0 and math.isfinite(self.equity)
        ):
            raise TradeError("paper mode needs a positive --equity in USDT")
        if self.max_bars is not None and self.max_bars < 1:
            raise TradeError("--max-bars must be at least 1")
        if not self.poll_seconds > 0:
            raise TradeError("--poll-seconds must be positive")


@dataclass(slots=True)
class CycleTiming:
    """Where one cycle's time went (seconds); `bench/trade_bench.py` reports shares of it."""

    total: float = 0.0
    exchange: float = 0.0  # awaiting ccxt (feed and broker)
    policy: float = 0.0
    journal: float = 0.0
    cpu: float = 0.0  # CPU time of qctl's own work in the cycle (robust to a loaded machine)


@dataclass(slots=True)
class TradeSummary:
    run_id: str
    mode: str
    bars: int = 0
    decisions: int = 0
    entries: int = 0
    equity: float = 0.0
    state: str = ""
    status: str = "stopped"
    reconciled: list[str] = field(default_factory=list)
    timings: list[CycleTiming] = field(default_factory=list)


class _TimedPolicy:
    """Wraps the policy to measure the time spent deciding (for the status line and the bench)."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.name = getattr(inner, "name", type(inner).__name__)
        self.version = getattr(inner, "version", "")

    def decide(self, snapshot: Any, portfolio: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner.decide(snapshot, portfolio)
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TradeSession:
    """One `qctl trade` process: connect, recover, then one engine step per closed bar."""

    def __init__(
        self,
        settings: TradeSettings,
        policy: Policy,
        journal: Any,
        exchange: Any,
        *,
        broker_config: BrokerConfig | None = None,
        tiers: LeverageTiers | None = None,
        out: Callable[[str], None] = print,
        log: Callable[[str, Mapping[str, Any]], None] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        """`on_wait` runs each time the session waits for a bar (a test's or demo's clock: the
        local exchange in manual mode advances one bar there)."""
        settings.check()
        self.s = settings
        self.policy = _TimedPolicy(policy)
        self.journal = journal
        self.exchange = exchange
        self.cfg = broker_config or BrokerConfig.from_toml()
        self.tiers = tiers or LeverageTiers.load()
        self.out = out
        self.log = log or (lambda event, fields: None)
        self.risk = RiskKernel(
            settings.limits, self.tiers, self.cfg.entry_cost(), self.cfg.exit_cost()
        )
        self.exits = ExitController(
            self.cfg.break_even_offset(), kill_scorer=getattr(policy, "kill_scores", None)
        )
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exchange_s = 0.0
        self.broker: SimulatedBroker | None = None
        self.feed: LiveFeed | None = None
        self.run_id = ""
        self.engine: EngineLoop | None = None
        self.last_step = -1
        self.on_wait = on_wait

    # -- plumbing ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the session to stop after the current cycle (signal handlers call this)."""
        self._stop.set()

    def _call(self, coro: Any) -> Any:
        """Run one ccxt coroutine on the session's loop from the engine's worker thread."""
        assert self._loop is not None
        t0 = time.perf_counter()
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        finally:
            self._exchange_s += time.perf_counter() - t0

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # -- start-up ------------------------------------------------------------------------------

    async def _markets(self) -> dict[str, str]:
        from engine.venues.ccxt_feed import FeedError, find_market

        await self.exchange.load_markets()
        out = {}
        for sym in self.s.symbols:
            try:
                out[sym] = str(
                    find_market(self.exchange.markets, sym, self.s.exchange_id)["symbol"]
                )
            except FeedError as exc:
                raise TradeError(str(exc)) from None
        return out

    def _open_run(self) -> tuple[str, bool]:
        """Resume this journal's latest unfinished run of the mode, or start one."""
        if not self.s.new_run:
            for row in reversed(self.journal.runs()):
                if row["mode"] == self.s.mode and row["status"] != "finished":
                    self.journal.resume_run(row["id"])
                    return row["id"], True
        run_id = self.journal.start_run(
            self.s.mode,
            self.policy.name,
            self.policy.version,
            limits=self.s.limits,
            timeframe=self.s.timeframe,
            symbols=self.s.symbols,
            data_source=f"ccxt:{self.s.exchange_id}" + (f"@{self.s.api_url}" if self.s.api_url else ""),
            initial_equity=self.s.equity,
            config={"broker": {"venue": self.cfg.venue, "taker_fee": self.cfg.taker_fee,
                               "slippage": self.cfg.slippage},
                    "poll_seconds": self.s.poll_seconds, "history_bars": self.s.history_bars},
        )  # fmt: skip
        return run_id, False

    def _make_broker(self, markets: dict[str, str], wallet: float) -> SimulatedBroker:
        if self.s.mode == "paper":
            return SimulatedBroker(
                self.cfg, self.tiers, Portfolio(wallet_balance=wallet), run_id=self.run_id
            )
        from engine.venues.ccxt_broker import CcxtBroker

        def before_send(order: Any) -> None:  # write-ahead: the intent is committed first
            self.journal.record_order(order)
            self.journal.flush()

        return CcxtBroker(
            self.cfg, self.tiers, Portfolio(wallet_balance=wallet), run_id=self.run_id,
            exchange=self.exchange, call=self._call, markets=markets,
            before_send=before_send, log=self.log,
        )  # fmt: skip

    def _recover(self, resumed: bool) -> list[str]:
        """Rebuild the run's positions from the journal; live: agree with the exchange."""
        notes: list[str] = []
        state = read_journal_state(self.journal, self.run_id) if resumed else None
        broker = self.broker
        assert broker is not None
        if state is not None:
            if state.wallet_balance is not None and self.s.mode == "paper":
                broker.portfolio.wallet_balance = state.wallet_balance
            for sym, pos in state.positions.items():
                broker.restore(pos, *state.backstops.get(sym, (None, None)))
            if state.positions:
                notes.append(f"restored {len(state.positions)} open position(s) from the journal")
            if state.last_step_ts is not None:
                self.last_step = state.last_step_ts
        if self.s.mode == "live":
            notes.extend(self._reconcile_live(state))
        self.journal.flush()
        return notes

    def _reconcile_live(self, state: Any) -> list[str]:
        from engine.venues.ccxt_broker import TRADE_SLACK_MS, CcxtBroker

        broker = self.broker
        assert isinstance(broker, CcxtBroker)
        notes: list[str] = []
        ts = self._exchange_now(broker)
        broker.portfolio.ts = ts
        held = broker.fetch_positions()
        journal = self.journal
        # the trades the journal already holds are not the exchange's own fills (a restart
        # forgets which trades this process saw)
        # (each position's trades are read once: booking the closes below uses them too)
        trades = {}
        for sym, pos in broker.portfolio.positions.items():
            trades[sym] = broker.position_trades(pos)
            rows = journal.rows("fill", self.run_id, where="symbol = ? AND ts >= ?",
                                params=(sym, pos.opened_ts - TRADE_SLACK_MS))  # fmt: skip
            broker.mark_journaled(trades[sym], (
                (Side(r["side"]), float(r["qty"]), float(r["price"]), int(r["ts"])) for r in rows
            ))  # fmt: skip
        # journal positions the exchange closed (or reduced) while the engine was down
        for sym in list(broker.portfolio.positions):
            pos = broker.portfolio.positions[sym]
            ex = held.get(sym)
            qty = ex.qty if ex is not None and ex.side is pos.side else 0.0
            if qty < pos.qty * (1 - 1e-9):
                events = broker.book_exchange_fills(pos, qty, trades[sym])
                journal_events(self.journal, events)
                what = "closed" if sym not in broker.portfolio.positions else f"reduced to {qty:g}"
                notes.append(f"{sym}: {what} on the exchange while down (booked from its trades)")
                journal.record_safety_event(
                    safety(
                        ts,
                        sym,
                        SafetyAction.CLIP,
                        f"journal position {what} to match the exchange",
                        qty,
                    )
                )
        # exchange positions the journal does not hold: adopt
        resting = broker.fetch_backstops() if held else {}
        for sym, ex in held.items():
            if sym in broker.portfolio.positions:
                broker.portfolio.positions[sym].mark_price = ex.mark_price or ex.entry_price
                continue
            pos = broker.adopt(ex, ts)
            pending = state.pending_entries.get(sym) if state is not None else None
            how = "adopted"
            if pending is not None:
                broker._attach_plan(pos, pending.get("stop_loss_pct"), pending.get("take_profit_pct"),
                                    **plan_from_decision(pending))  # fmt: skip
                pos.leverage = float(pending.get("leverage") or pos.leverage)
                how = "adopted with the plan of its entry decision"
            else:
                stops = [o for o in resting.get(sym, [])
                         if str((o.get("info") or {}).get("orderType") or o.get("type")).upper() == "STOP_MARKET"]  # fmt: skip
                trigger = (
                    stops[0].get("triggerPrice") or stops[0].get("stopPrice") if stops else None
                )
                if trigger:
                    pos.stop_price = pos.initial_stop_price = float(trigger)
                    how = "adopted with the stop resting at the exchange"
            self._journal_fills_of(pos, pending["entry_client_order_id"] if pending else None)
            journal.record_position(pos, ts, "adopted")
            journal.record_safety_event(
                safety(
                    ts,
                    sym,
                    SafetyAction.CLIP,
                    f"exchange position unknown to the journal: {how}",
                    ex.qty,
                )
            )
            notes.append(f"{sym}: {how} ({ex.side} {ex.qty:g} @ {ex.entry_price:g})")
            if pos.stop_price is None:
                events = broker.close_at_market(sym, ts, "flatten", ex.mark_price or ex.entry_price)
                journal_events(self.journal, events)
                journal.record_safety_event(
                    safety(
                        ts,
                        sym,
                        SafetyAction.VETO,
                        "adopted position has no stop and no plan: closed at market (fail closed)",
                        ex.qty,
                    )
                )
                notes.append(f"{sym}: no stop and no plan: closed at market")
        events = broker.ensure_backstops(ts)
        if events:
            notes.append(f"re-placed backstops of {sorted({e.symbol for e in events})}")
            journal_events(self.journal, events)
        broker.portfolio.wallet_balance = broker.fetch_wallet()
        return notes

    def _exchange_now(self, broker: Any) -> int:
        """The exchange's clock (journal rows of a recovery carry the venue's time)."""
        try:
            return int(broker._run(self.exchange.fetch_time()))
        except Exception:  # noqa: BLE001 - no time endpoint: the wall clock will do
            return int(time.time() * 1000)

    def _journal_fills_of(self, pos: Any, client_order_id: str | None) -> None:
        """The exchange trades that built an adopted position (those after the journal's last
        fill of the symbol, on the position's side), journaled as its fills: the journal holds
        every fill of the account's positions, ours or not. The position opened at the first."""
        from engine.domain import Fill

        broker = self.broker
        last = self.journal.rows(
            "fill",
            self.run_id,
            where="symbol = ?",
            params=(pos.symbol,),
            order_by="ts DESC",
            limit=1,
        )
        since = int(last[0]["ts"]) + 1 if last else None
        opened = None
        for t in broker.fetch_trades(pos.symbol, since):
            broker._seen_trades.add(t.id)
            if (since is not None and t.ts < since) or t.side is not pos.side:
                continue
            cid = client_order_id or f"exchange-{t.order_id}"
            self.journal.record_fill(Fill(cid, t.ts, pos.symbol, t.side, t.qty, t.price, t.fee))
            pos.fees_paid += t.fee
            opened = t.ts if opened is None else min(opened, t.ts)
        if opened is not None:
            pos.opened_ts = opened

    def _engine_for(self, last_open: int) -> tuple[EngineLoop, int]:
        assert self.feed is not None and self.broker is not None
        bars = align(self.feed.market_data(until=last_open))
        i = int(bars.ts.searchsorted(last_open))
        engine = EngineLoop(
            bars=bars, policy=self.policy, risk=self.risk, exits=self.exits, broker=self.broker,
            journal=self.journal, run_id=self.run_id, poll_controls=True,
        )  # fmt: skip
        return engine, i

    def _step(self, engine: EngineLoop, i: int, close_ts: int) -> None:
        if self.s.mode == "live":  # the exchange's truth first (a CcxtBroker)
            self.broker.portfolio.ts = close_ts
            engine._j_events(self.broker.sync(close_ts))
        engine.step(i)

    def _controls_between_bars(self) -> None:
        """Operator requests are acted on between bars too (on the last closed bar's prices)."""
        requests = self.journal.pending_controls() if self.engine is not None else []
        if not requests:
            return
        for request in requests:
            result = self.engine.apply_control(request, self.engine.bars.n_steps - 1)
            self.journal.mark_control_handled(request.id, result, int(time.time() * 1000))
            self.log(
                "control",
                {"command": str(request.command), "symbol": request.symbol, "result": result},
            )
        self.journal.flush()

    def _heartbeat(self) -> None:
        """Wall-clock liveness in the run row (the TUI shows a stale one in red)."""
        self.journal.heartbeat(int(time.time() * 1000))

    async def run(self) -> TradeSummary:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.stop)
        markets = await self._markets()
        self.feed = LiveFeed(self.exchange, markets, self.s.timeframe, self.s.history_bars)
        await self.feed.start()
        self.run_id, resumed = self._open_run()
        wallet = float(self.s.equity or 0.0)
        self.broker = self._make_broker(markets, wallet)
        summary = TradeSummary(self.run_id, self.s.mode)
        status = "failed"
        try:
            summary.reconciled = await asyncio.to_thread(self._recover, resumed)
            for note in summary.reconciled:
                self.out(f"recovery: {note}")
                self.log("recovery", {"note": note})
            self._heartbeat()
            step_ms = self.feed.step_ms
            # a fresh run trades from the next bar to close; a resumed one from the first bar
            # after the last step it journaled (a step cut short by a crash is run again:
            # its orders carry the same client ids, so none is sent twice)
            after = self.feed.common_last()
            if resumed and self.last_step > 0:
                after = min(after, self.last_step - step_ms)
            self.out(
                f"{self.s.mode} trading {len(markets)} symbol(s) on {self.s.timeframe}, run {self.run_id}"
                + (" (resumed)" if resumed else "")
            )
            while not self._stop.is_set():
                if self.s.max_bars is not None and summary.bars >= self.s.max_bars:
                    break
                last = await self._wait(after)
                if last is None:
                    break
                skipped = (last - after) // step_ms - 1 if after else 0
                if skipped > 0:
                    self.log("bars_skipped", {"count": int(skipped)})
                after = last
                timing = await self._cycle(last, last + step_ms)
                summary.timings.append(timing)
                summary.bars += 1
                assert self.engine is not None
                summary.decisions += self.engine.stats.decisions
                summary.entries += self.engine.stats.entries
                self.out(self._status_line(last + step_ms, summary, timing))
            status = "stopped"
        finally:
            pf = self.broker.portfolio
            summary.equity, summary.state, summary.status = pf.equity, str(pf.state), status
            with contextlib.suppress(Exception):
                self.journal.finish_run(status, {"status": status, "bars": summary.bars,
                                                 "final_equity": pf.equity, "open_positions": len(pf.positions)})  # fmt: skip
            self.log("stop", {"status": status, "bars": summary.bars})
        return summary

    async def _wait(self, after: int) -> int | None:
        """The next closed bar; controls and the heartbeat are served while waiting."""
        assert self.feed is not None

        async def tick(seconds: float) -> None:
            self._heartbeat()
            if self.on_wait is not None:
                self.on_wait()
            await asyncio.to_thread(self._controls_between_bars)
            await self._sleep(seconds)

        t0 = time.perf_counter()
        last = await wait_for_bar(
            self.feed, after, poll_seconds=self.s.poll_seconds, stop=self._stop.is_set,
            sleep=tick, max_wait_s=self.s.stall_after_s,
        )  # fmt: skip
        self._exchange_s += time.perf_counter() - t0
        return last

    async def _cycle(self, last_open: int, close_ts: int) -> CycleTiming:
        t0 = time.perf_counter()
        self._exchange_s = 0.0
        self.policy.seconds = 0.0
        c0 = time.thread_time()
        engine, i = self._engine_for(last_open)
        cpu = time.thread_time() - c0
        self.engine = engine

        def step_and_flush() -> tuple[float, float]:
            c1 = time.thread_time()
            self._step(engine, i, close_ts)
            j0 = time.perf_counter()
            self.journal.flush()
            return time.thread_time() - c1, time.perf_counter() - j0

        step_cpu, journal_s = await asyncio.to_thread(step_and_flush)
        self._heartbeat()
        self.log("cycle", {"bar_close": close_ts, "decisions": engine.stats.decisions,
                           "entries": engine.stats.entries, "state": str(self.broker.portfolio.state)})  # fmt: skip
        return CycleTiming(
            time.perf_counter() - t0, self._exchange_s, self.policy.seconds, journal_s,
            cpu + step_cpu,
        )  # fmt: skip

    def _status_line(self, close_ts: int, summary: TradeSummary, t: CycleTiming) -> str:
        pf = self.broker.portfolio
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(close_ts / 1000))
        exposure = pf.exposure()
        state = pf.state if pf.state is not TradingState.ACTIVE else "ACTIVE"
        return (
            f"{when} bar {summary.bars}: equity {pf.equity:,.2f} USDT, {len(pf.positions)} open, "
            f"exposure {exposure:.0%}, {state}; {self.engine.stats.decisions} decision(s), "
            f"{self.engine.stats.entries} entr{'y' if self.engine.stats.entries == 1 else 'ies'}; "
            f"cycle {t.total * 1000:.0f} ms"
        )


MIN_SCRUBBED = 6  # shorter "keys" are not credentials, and masking them would garble text


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every credential in `secrets` masked."""
    for s in secrets:
        if len(s) >= MIN_SCRUBBED:
            text = text.replace(s, "***")
    return text


def json_logger(
    path: str, secrets: tuple[str, ...] = ()
) -> Callable[[str, Mapping[str, Any]], None]:
    """Structured log lines (JSON) appended to `path`; credentials never reach the file."""
    fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    hidden = tuple(secrets)

    def log(event: str, fields: Mapping[str, Any]) -> None:
        line = json.dumps({"ts": int(time.time() * 1000), "pid": os.getpid(), "event": event, **fields},
                          default=str)  # fmt: skip
        fh.write(scrub(line, hidden) + "\n")
        fh.flush()

    return log
