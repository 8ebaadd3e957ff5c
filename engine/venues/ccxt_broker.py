"""The live broker: the simulated broker's bookkeeping, with every order sent through ccxt.

`CcxtBroker` keeps the account the engine sees (`portfolio`) exactly as `SimulatedBroker` does —
same fill arithmetic, same protective-order records — but prices, quantities and fees come from
the exchange, and the exchange is the truth:

- entries and reduce-only closes are market orders with deterministic client order ids; a
  timeout, a dropped response or a rate limit is answered by looking the order up by its client
  id before any retry, so a retry never doubles an order (a duplicate id is looked up too);
- every position carries exchange-side STOP_MARKET and TAKE_PROFIT_MARKET backstops
  (`closePosition`), placed right after the entry, moved by placing the new stop before
  cancelling the old one, and re-placed by `sync` whenever one is missing;
- `sync` (once per bar, before the engine step) reads positions, trades and the wallet from the
  exchange: fills the exchange made on its own (a backstop triggered, a liquidation) are booked
  from the exchange's trades, and a position the exchange no longer holds is closed;
- amounts and trigger prices are rounded to the market's precision and checked against its
  minimum notional before anything is sent (a rejected order is journaled as REJECTED).

The engine step runs in a worker thread; `call` runs one ccxt coroutine on the asyncio loop that
owns the exchange and returns its result (see engine/trade.py). Nothing here knows the policy.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt

from engine.core.bars import AlignedBars
from engine.core.loop import BrokerEvent
from engine.domain import AutonomyZone, Order, OrderPurpose, OrderStatus, OrderType, Position, Side
from engine.venues.simulated import SimulatedBroker

# ccxt errors after which the order may or may not have reached the exchange: look it up first
_UNCERTAIN = (ccxt.NetworkError,)


class LiveBrokerError(Exception):
    """The exchange could not be brought to agree (after retries); shown as one line."""


# trades are read from this long before the time they belong after (clocks and rounding differ)
TRADE_SLACK_MS = 60_000


@dataclass(frozen=True, slots=True)
class ExchangePosition:
    """One open position as the exchange reports it (one-way mode)."""

    symbol: str
    side: Side
    qty: float
    entry_price: float
    mark_price: float
    liquidation_price: float | None
    leverage: float | None


@dataclass(frozen=True, slots=True)
class ExchangeTrade:
    """One execution as the exchange reports it (fees in USDT)."""

    id: str
    order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    ts: int


def _side(value: str) -> Side:
    return Side.LONG if value.lower() in ("buy", "long") else Side.SHORT


def _order_side(side: Side) -> str:
    return "buy" if side is Side.LONG else "sell"


@dataclass(slots=True)
class CcxtBroker(SimulatedBroker):
    """`SimulatedBroker` bookkeeping over a real exchange (module docstring)."""

    exchange: Any = None
    call: Callable[[Awaitable[Any]], Any] | None = None
    markets: dict[str, str] = field(default_factory=dict)  # "BTC-USDT" -> "BTC/USDT:USDT"
    retries: int = 4
    backoff_s: float = 0.2
    margin_mode: str = "cross"
    before_send: Callable[[Order], None] | None = None  # write-ahead: journal the intent first
    log: Callable[[str, Mapping[str, Any]], None] | None = None
    _leverage: dict[str, int] = field(default_factory=dict)
    _algo: dict[str, str] = field(default_factory=dict)  # client id -> exchange algo id
    _own_orders: set[str] = field(default_factory=set)  # exchange ids of our market orders
    _seen_trades: set[str] = field(default_factory=set)
    _keyed_seq: dict[tuple[int, str, str], int] = field(default_factory=dict)
    exchange_positions: dict[str, ExchangePosition] = field(default_factory=dict)

    # -- plumbing ----------------------------------------------------------------------------

    def _run(self, coro: Awaitable[Any]) -> Any:
        if self.call is None:
            raise LiveBrokerError("the live broker has no event loop to run ccxt calls on")
        return self.call(coro)

    def _note(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log(event, fields)

    def _market(self, symbol: str) -> str:
        try:
            return self.markets[symbol]
        except KeyError:
            raise LiveBrokerError(f"{symbol} is not a market of this exchange") from None

    def _key_seq(self, ts: int, symbol: str, purpose: str) -> int:
        """Sequence per (bar, symbol, purpose): the same step replayed gives the same ids."""
        key = (ts, symbol, str(purpose))
        n = self._keyed_seq.get(key, 0)
        self._keyed_seq[key] = n + 1
        return n

    def market_order(
        self, ts: int, symbol: str, side: Side, qty: float, purpose: str, reduce_only: bool = False
    ) -> Order:
        return Order.create(
            self.run_id, ts, symbol, side, OrderType.MARKET, qty, purpose,
            reduce_only=reduce_only, seq=self._key_seq(ts, symbol, purpose),
        )  # fmt: skip

    def _protective_order(self, ts: int, pos: Position, kind: OrderType, trigger: float) -> Order:
        purpose = (
            OrderPurpose.STOP_LOSS if kind is OrderType.STOP_MARKET else OrderPurpose.TAKE_PROFIT
        )
        price = self._price(pos.symbol, trigger)
        return Order.create(
            self.run_id, ts, pos.symbol, pos.side.opposite, kind, pos.qty, purpose,
            stop_price=price, reduce_only=True, seq=self._key_seq(ts, pos.symbol, purpose),
        )  # fmt: skip

    def _amount(self, symbol: str, qty: float) -> float:
        """`qty` truncated to the market's step (0 when it is below one step)."""
        try:
            return float(self.exchange.amount_to_precision(self._market(symbol), qty))
        except ccxt.InvalidOrder:  # ccxt refuses amounts under the step
            return 0.0

    def _price(self, symbol: str, price: float) -> float:
        try:
            return float(self.exchange.price_to_precision(self._market(symbol), price))
        except (ccxt.BaseError, ValueError, TypeError):
            return price

    def _min_notional(self, symbol: str) -> float:
        market = self.exchange.markets.get(self._market(symbol), {})
        cost = ((market.get("limits") or {}).get("cost") or {}).get("min")
        return float(cost) if cost else 0.0

    def _lookup(self, symbol: str, client_id: str, algo: bool) -> dict[str, Any] | None:
        params: dict[str, Any] = {"clientOrderId": client_id}
        if algo:
            params["trigger"] = True
        try:
            return self._run(self.exchange.fetch_order("", self._market(symbol), params))
        except ccxt.OrderNotFound:
            return None

    def _send(
        self, order: Order, amount: float | None, params: Mapping[str, Any], algo: bool = False
    ) -> dict[str, Any]:
        """Create an order once: an uncertain failure is looked up by client id before a retry."""
        if self.before_send is not None:
            self.before_send(order)
        kind = "market" if order.type is OrderType.MARKET else str(order.type)
        msym = self._market(order.symbol)
        request = {**params, "clientOrderId": order.client_order_id}
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
                found = self._lookup_quietly(order, algo)
                if found is not None:
                    self._note("order_found_after_retry", client_id=order.client_order_id)
                    return found
            try:
                return self._run(
                    self.exchange.create_order(
                        msym, kind, _order_side(order.side), amount, None, request
                    )
                )
            except ccxt.InvalidOrder as exc:
                if "duplicat" not in str(exc).lower():
                    raise
                found = self._lookup_quietly(order, algo)
                if found is not None:
                    return found
                last = exc
            except _UNCERTAIN as exc:
                self._note(
                    "order_uncertain", client_id=order.client_order_id, error=type(exc).__name__
                )
                last = exc
        found = self._lookup_quietly(order, algo)
        if found is not None:
            return found
        raise LiveBrokerError(
            f"{order.symbol}: order {order.client_order_id} not confirmed after "
            f"{self.retries + 1} tries ({type(last).__name__})"
        )

    def _lookup_quietly(self, order: Order, algo: bool) -> dict[str, Any] | None:
        try:
            return self._lookup(order.symbol, order.client_order_id, algo)
        except _UNCERTAIN:
            return None

    def _retrying(self, make: Callable[[], Awaitable[Any]], what: str) -> Any:
        """Idempotent calls (reads, cancels, settings): retry on network trouble."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return self._run(make())
            except _UNCERTAIN as exc:
                last = exc
        raise LiveBrokerError(f"{what}: exchange unreachable ({type(last).__name__})")

    # -- reading the exchange ------------------------------------------------------------------

    def fetch_positions(self) -> dict[str, ExchangePosition]:
        rows = self._retrying(lambda: self.exchange.fetch_positions(), "fetch positions")
        back = {v: k for k, v in self.markets.items()}
        out: dict[str, ExchangePosition] = {}
        for r in rows:
            sym = back.get(r.get("symbol"))
            qty = abs(float(r.get("contracts") or 0.0))
            if sym is None or qty <= 0:
                continue
            side = _side(str(r.get("side") or "long"))
            liq = r.get("liquidationPrice")
            out[sym] = ExchangePosition(
                sym, side, qty, float(r.get("entryPrice") or 0.0),
                float(r.get("markPrice") or r.get("entryPrice") or 0.0),
                float(liq) if liq else None,
                float(r["leverage"]) if r.get("leverage") else None,
            )  # fmt: skip
        self.exchange_positions = out
        return out

    def fetch_trades(self, symbol: str, since: int | None = None) -> list[ExchangeTrade]:
        msym = self._market(symbol)
        rows = self._retrying(
            lambda: self.exchange.fetch_my_trades(msym, since), f"{symbol}: fetch trades"
        )
        out = []
        ids: set[str] = set()
        for r in rows:
            if str(r.get("id")) in ids:
                continue  # an exchange may report one execution twice: it happened once
            ids.add(str(r.get("id")))
            fee = r.get("fee") or {}
            out.append(
                ExchangeTrade(
                    str(r.get("id")),
                    str(r.get("order")),
                    symbol,
                    _side(str(r.get("side"))),
                    float(r.get("amount") or 0.0),
                    float(r.get("price") or 0.0),
                    float(fee.get("cost") or 0.0),
                    int(r.get("timestamp") or 0),
                )  # fmt: skip
            )
        return out

    def fetch_backstops(self) -> dict[str, list[dict[str, Any]]]:
        """Open conditional orders by symbol (one call for all symbols)."""
        self.exchange.options.setdefault("fetchOpenOrders", {})["warnWithoutSymbol"] = False
        rows = self._retrying(
            lambda: self.exchange.fetch_open_orders(None, None, None, {"trigger": True}),
            "fetch open conditional orders",
        )
        back = {v: k for k, v in self.markets.items()}
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            sym = back.get(r.get("symbol"))
            if sym is not None:
                out.setdefault(sym, []).append(r)
        return out

    def fetch_wallet(self) -> float:
        """The USDT wallet balance (realised: fees and funding included, open PnL excluded)."""
        bal = self._retrying(lambda: self.exchange.fetch_balance(), "fetch balance")
        for asset in (bal.get("info") or {}).get("assets") or []:
            if asset.get("asset") == "USDT" and asset.get("walletBalance") is not None:
                return float(asset["walletBalance"])
        total = float((bal.get("USDT") or {}).get("total") or 0.0)
        upnl = sum(
            p.side.sign * p.qty * (p.mark_price - p.entry_price)
            for p in self.exchange_positions.values()
        )
        return total - upnl

    # -- orders --------------------------------------------------------------------------------

    def _settings(self, symbol: str, leverage: float) -> None:
        """Margin mode once per symbol, leverage whenever it changes (whole x, rounded down)."""
        msym = self._market(symbol)
        if symbol not in self._leverage:
            try:
                self._retrying(
                    lambda: self.exchange.set_margin_mode(self.margin_mode, msym),
                    f"{symbol}: set margin mode",
                )
            except ccxt.MarginModeAlreadySet:
                pass
            except ccxt.ExchangeError as exc:
                if "no need to change" not in str(exc).lower():
                    raise
        lev = int(math.floor(leverage))  # exchanges take whole x: never more than approved
        if lev < AutonomyZone().min_leverage:
            raise LiveBrokerError(f"{symbol}: leverage {leverage:g}x is below a whole 1x")
        if self._leverage.get(symbol) != lev:
            self._retrying(lambda: self.exchange.set_leverage(lev, msym), f"{symbol}: set leverage")
            self._leverage[symbol] = lev

    def _reject(self, order: Order, why: str) -> list[BrokerEvent]:
        self._note("order_rejected", client_id=order.client_order_id, why=why)
        return [
            BrokerEvent(
                "order", order.ts, order.symbol, order=order.with_status(OrderStatus.REJECTED, why)
            )
        ]

    def _market_fill(self, order: Order, ref_price: float) -> tuple[Order, float, float, int] | str:
        """Send a market order; (order at the filled qty, avg price, fee, ts) or a reject reason."""
        qty = self._amount(order.symbol, order.qty)
        if not qty > 0:
            return f"quantity {order.qty:g} rounds to zero at the market's step"
        if not order.reduce_only and qty * ref_price < self._min_notional(order.symbol):
            return (
                f"notional {qty * ref_price:.2f} USDT is below the market's minimum "
                f"{self._min_notional(order.symbol):g}"
            )
        params: dict[str, Any] = {"reduceOnly": True} if order.reduce_only else {}
        try:
            placed = self._send(order, qty, params)
        except (ccxt.InsufficientFunds, ccxt.InvalidOrder) as exc:
            return f"exchange rejected it: {type(exc).__name__}: {_first_line(exc)}"
        oid = str(placed.get("id") or "")
        self._own_orders.add(oid)
        filled = float(placed.get("filled") or 0.0)
        avg = float(placed.get("average") or placed.get("price") or 0.0)
        ts = int(placed.get("lastTradeTimestamp") or placed.get("timestamp") or order.ts)
        fee = 0.0
        trades = [
            t for t in self.fetch_trades(order.symbol, ts - TRADE_SLACK_MS) if t.order_id == oid
        ]
        if trades:
            filled = sum(t.qty for t in trades)
            avg = (
                trades[0].price
                if len(trades) == 1
                else sum(t.qty * t.price for t in trades) / filled
            )
            fee = sum(t.fee for t in trades)
            ts = max(t.ts for t in trades)
            self._seen_trades.update(t.id for t in trades)
        if not (filled > 0 and avg > 0):
            return f"exchange reports no fill (status {placed.get('status')})"
        return Order(
            order.client_order_id, order.ts, order.symbol, order.side, order.type, filled,
            order.purpose, order.stop_price, order.reduce_only, order.status, order.detail,
        ), avg, fee, ts  # fmt: skip

    def execute(self, order: Order, ref_price: float, ts: int | None = None) -> list[BrokerEvent]:
        got = self._market_fill(order, ref_price)
        if isinstance(got, str):
            return self._reject(order, got)
        filled, price, fee, fill_ts = got
        return self._fill(filled, price, fill_ts, fee_override=fee)

    def open_position(
        self,
        order: Order,
        ref_price: float,
        leverage: float,
        stop_loss_pct: float | None,
        take_profit_pct: float | None,
        **plan: Any,
    ) -> list[BrokerEvent]:
        """Margin mode and leverage, the market entry, then its backstops at the exchange."""
        try:
            self._settings(order.symbol, leverage)
        except (ccxt.BaseError, LiveBrokerError) as exc:
            return self._reject(order, f"leverage not set: {_first_line(exc)}")
        got = self._market_fill(order, ref_price)
        if isinstance(got, str):
            return self._reject(order, got)
        filled, price, fee, fill_ts = got
        events = self._fill(filled, price, fill_ts, fee_override=fee, leverage=leverage)
        pos = self.portfolio.positions.get(order.symbol)
        if pos is None:
            return events
        self._attach_plan(pos, stop_loss_pct, take_profit_pct, **plan)
        # the levels the exchange will hold: on its price grid, in the position as in the orders
        if pos.stop_price is not None:
            pos.stop_price = pos.initial_stop_price = self._price(pos.symbol, pos.stop_price)
        if pos.take_profit_price is not None:
            pos.take_profit_price = self._price(pos.symbol, pos.take_profit_price)
        events.extend(self._rest_protective(fill_ts, pos))
        return events

    def _place_backstop(self, order: Order) -> bool:
        try:
            placed = self._send(
                order, None, {"triggerPrice": order.stop_price, "closePosition": True}, algo=True
            )
        except (ccxt.BaseError, LiveBrokerError) as exc:
            self._note("backstop_failed", client_id=order.client_order_id, error=_first_line(exc))
            return False
        self._algo[order.client_order_id] = str(placed.get("id") or "")
        return True

    def _cancel_backstop(self, order: Order) -> None:
        msym = self._market(order.symbol)
        params = {"trigger": True, "clientOrderId": order.client_order_id}
        # already triggered or cancelled: nothing rests there, which is what was wanted
        with contextlib.suppress(ccxt.OrderNotFound, ccxt.InvalidOrder):
            self._retrying(
                lambda: self.exchange.cancel_order(
                    self._algo.get(order.client_order_id, ""), msym, params
                ),
                f"{order.symbol}: cancel backstop",
            )
        self._algo.pop(order.client_order_id, None)

    def _rest_protective(self, ts: int, pos: Position) -> list[BrokerEvent]:
        events = SimulatedBroker._rest_protective(self, ts, pos)
        for ev in events:
            if ev.order is not None and not self._place_backstop(ev.order):
                ev.order = ev.order.with_status(OrderStatus.REJECTED, "not accepted by exchange")
        return events

    def move_stop(
        self, ts: int, symbol: str, new_stop: float, detail: str = ""
    ) -> list[BrokerEvent]:
        """The new stop rests at the exchange before the old one is cancelled."""
        pos = self.portfolio.positions.get(symbol)
        old, _ = self.protective_orders(symbol)
        old_price = pos.stop_price if pos is not None else None
        events = SimulatedBroker.move_stop(self, ts, symbol, self._price(symbol, new_stop), detail)
        new, _ = self.protective_orders(symbol)
        if new is None or new is old or pos is None:
            return events
        if not self._place_backstop(new):
            # the exchange refused the new level (e.g. it would trigger at once): the old stop
            # still rests there, and so it stays in the books
            self._protective[symbol].stop = old
            pos.stop_price = old_price
            why = "new stop refused by the exchange; the previous stop stays"
            return [
                BrokerEvent("order", ts, symbol, order=new.with_status(OrderStatus.REJECTED, why))
            ]
        if old is not None:
            self._cancel_backstop(old)
        return events

    def _close_out(self, pos: Position, ts: int, reason: str) -> list[BrokerEvent]:
        events = SimulatedBroker._close_out(self, pos, ts, reason)
        for ev in events:
            if ev.kind == "cancel" and ev.order is not None:
                self._cancel_backstop(ev.order)
        return events

    # -- the bar: the exchange's truth ---------------------------------------------------------

    def process_bar(self, bars: AlignedBars, i: int, col: Mapping[str, int]) -> list[BrokerEvent]:
        """Nothing to simulate: what the exchange did is read by `sync`, before the step."""
        return []

    def sync(self, ts: int) -> list[BrokerEvent]:
        """Bring the account in line with the exchange (positions, fills it made on its own,
        wallet, backstops); the caller journals the events."""
        ex = self.fetch_positions()
        events: list[BrokerEvent] = []
        for sym, pos in list(self.portfolio.positions.items()):
            got = ex.get(sym)
            held = got.qty if got is not None and got.side is pos.side else 0.0
            if held < pos.qty * (1 - 1e-9):
                events.extend(self.book_exchange_fills(pos, held))
            pos = self.portfolio.positions.get(sym)
            if pos is not None and got is not None:
                pos.mark_price = got.mark_price or pos.mark_price
        self.portfolio.wallet_balance = self.fetch_wallet()
        events.extend(self.ensure_backstops(ts))
        return events

    def position_trades(self, pos: Position) -> list[ExchangeTrade]:
        """The exchange's trades of `pos`'s symbol that can belong to it (from a little before
        it opened: `TRADE_SLACK_MS`)."""
        return self.fetch_trades(pos.symbol, pos.opened_ts - TRADE_SLACK_MS)

    def mark_journaled(
        self, trades: Iterable[ExchangeTrade], fills: Iterable[tuple[Side, float, float, int]]
    ) -> int:
        """After a restart (which forgets the trades this process saw): the exchange `trades`
        that the journal already holds as fills (`fills`: side, qty, price, ts) are marked
        seen, so `book_exchange_fills` never books one again as another order's fill (a
        position's backstop, say, closed at the price of the trade that closed the position
        before it in the same bar). An order's trades match a fill with their side, summed
        quantity, mean price and last time, as `_market_fill` books them; a single trade
        matches a fill booked from it. Returns how many trades were marked."""
        known = list(fills)
        if not known:
            return 0

        def same(a: float, b: float) -> bool:
            return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)

        def journaled(side: Side, qty: float, price: float, ts: int) -> bool:
            return any(
                s is side and t == ts and same(q, qty) and same(p, price) for s, q, p, t in known
            )

        by_order: dict[str, list[ExchangeTrade]] = {}
        for t in trades:
            by_order.setdefault(t.order_id, []).append(t)
        marked = 0
        for trades in by_order.values():
            qty = sum(t.qty for t in trades)
            price = sum(t.qty * t.price for t in trades) / qty if qty > 0 else 0.0
            whole = journaled(trades[0].side, qty, price, max(t.ts for t in trades))
            for t in trades:
                if whole or journaled(t.side, t.qty, t.price, t.ts):
                    self._seen_trades.add(t.id)
                    marked += 1
        return marked

    def book_exchange_fills(
        self, pos: Position, held: float, trades: list[ExchangeTrade] | None = None
    ) -> list[BrokerEvent]:
        """Book the exchange's own closes (backstop, liquidation) of `pos` from its trades
        (`position_trades(pos)`, read now unless the caller has just read them)."""
        events: list[BrokerEvent] = []
        if trades is None:
            trades = self.position_trades(pos)
        trades = [
            t
            for t in trades
            if t.id not in self._seen_trades
            and t.order_id not in self._own_orders
            and t.side is pos.side.opposite
            and t.ts >= pos.opened_ts
        ]
        stop, tp = self.protective_orders(pos.symbol)
        for t in sorted(trades, key=lambda t: (t.ts, t.id)):
            if pos.symbol not in self.portfolio.positions:
                break
            self._seen_trades.add(t.id)
            template = _nearest(t.price, stop, tp)
            purpose = template.purpose if template is not None else OrderPurpose.LIQUIDATION
            order = Order.create(
                self.run_id, t.ts, pos.symbol, t.side, OrderType.MARKET, t.qty, purpose,
                reduce_only=True, seq=self._key_seq(t.ts, pos.symbol, f"x{t.id}"),
            ) if template is None else Order(
                template.client_order_id, t.ts, pos.symbol, t.side, template.type, t.qty,
                template.purpose, template.stop_price, True,
            )  # fmt: skip
            events.extend(self._fill(order, t.price, t.ts, fee_override=t.fee, reason=purpose))
        pos_now = self.portfolio.positions.get(pos.symbol)
        if pos_now is not None and held <= pos_now.qty * 1e-9:
            # no trade explains it (a manual close, or trades out of reach): the exchange is
            # the truth, the journal says why
            # a "fill" event without a fill: the loop journals the position's close row
            events.append(BrokerEvent("fill", self.portfolio.ts, pos.symbol, position=pos_now,
                                      closed=True))  # fmt: skip
            events.extend(self._close_out(pos_now, self.portfolio.ts, "not held on exchange"))
        elif pos_now is not None and held < pos_now.qty:
            pos_now.qty = held
        return events

    def ensure_backstops(self, ts: int) -> list[BrokerEvent]:
        """Every open position has its stop (and take-profit) resting at the exchange."""
        if not self.portfolio.positions:
            return []
        resting = self.fetch_backstops()
        events: list[BrokerEvent] = []
        for sym, pos in self.portfolio.positions.items():
            kinds = {str((o.get("info") or {}).get("orderType") or o.get("type")).upper()
                     for o in resting.get(sym, [])}  # fmt: skip
            missing = (pos.stop_price is not None and "STOP_MARKET" not in kinds) or (
                pos.take_profit_price is not None and "TAKE_PROFIT_MARKET" not in kinds
            )
            if not missing:
                continue
            self._note("backstop_missing", symbol=sym, resting=sorted(kinds))
            for o in resting.get(sym, []):
                cid = str(o.get("clientOrderId") or "")
                if cid:
                    self._algo[cid] = str(o.get("id") or "")
                    self._cancel_backstop(Order(cid, ts, sym, pos.side.opposite,
                                                OrderType.STOP_MARKET, pos.qty, "replace"))  # fmt: skip
            events.extend(self._rest_protective(ts, pos))
        return events

    def close_at_market(
        self, symbol: str, ts: int, purpose: str, ref_price: float
    ) -> list[BrokerEvent]:
        """Reduce-only market close of the whole position (reconciliation, fail closed)."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None:
            return []
        order = self.market_order(ts, symbol, pos.side.opposite, pos.qty, purpose, reduce_only=True)
        return self.execute(order, ref_price, ts)

    def adopt(self, ex: ExchangePosition, ts: int) -> Position:
        """Take an exchange position the journal does not know under the engine's bookkeeping.

        Its leverage is the exchange's; when the exchange does not report one, the zone's lowest
        (the whole notional counted as margin: the cautious reading of an unknown)."""
        leverage = ex.leverage or self._leverage.get(ex.symbol) or AutonomyZone().min_leverage
        pos = Position(
            symbol=ex.symbol, side=ex.side, qty=ex.qty, entry_price=ex.entry_price,
            leverage=leverage, opened_ts=ts, mark_price=ex.mark_price or ex.entry_price,
            policy="adopted",
        )  # fmt: skip
        self.portfolio.positions[ex.symbol] = pos
        return pos


def _nearest(price: float, *orders: Order | None) -> Order | None:
    """The resting backstop whose trigger is nearest the trade price (the one that fired)."""
    best, dist = None, math.inf
    for o in orders:
        if o is not None and o.stop_price is not None and abs(o.stop_price - price) < dist:
            best, dist = o, abs(o.stop_price - price)
    return best


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
