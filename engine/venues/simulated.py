"""Simulated broker for USDT-margined linear perpetuals (cross margin), bar by bar.

Venue parameters (fees, slippage) come from a `BrokerConfig`, read from a small TOML file
(`engine/sample_data/broker_binance_usdm.toml` ships Binance USDT-M's base rates); they are
properties of the venue, not trading decisions.

Order of events inside one bar, for every open position (documented, conservative):

1. funding prints whose settlement time falls in the bar are settled first, at the mark price of
   the bar's open (the mark file's open, or the trade bar's open when there is no mark file), for
   positions open at that time;
2. a gap through a level at the open fills at the open (a stop gapped through fills worse than its
   price, a take-profit gapped through fills at the open);
3. the **adverse extreme first**: the price is assumed to travel to the bar's adverse extreme (low
   for a long, high for a short) before the favourable one. Along that path, the stop-market order
   fills at its price (minus slippage) unless the account's liquidation price comes first;
   liquidation is checked with every open position at its own adverse extreme of the bar (on mark
   prices when a mark file exists, else on the trade bar's prices);
4. then the favourable extreme: a take-profit-market order fills at its price (minus slippage).
   A bar that touches both stop and take-profit therefore always counts as a stop.

Liquidation (cross margin, as Binance): when equity falls to the total maintenance margin (from the
leverage tiers), every open position is closed at its liquidation price — solved with Binance's
cross-margin formula, the other positions held at their adverse extremes — and the maintenance
margin left is lost as the clearance fee, so the wallet ends at zero.
"""

from __future__ import annotations

import bisect
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.core.bars import AlignedBars, SymbolColumns
from engine.core.loop import BrokerEvent
from engine.core.tiers import LeverageTiers
from engine.domain import (
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Portfolio,
    Position,
    Side,
    build_fill,
)
from engine.resources import SAMPLE_DATA

DEFAULT_VENUE_FILE = SAMPLE_DATA / "broker_binance_usdm.toml"
_LONG = Side.LONG  # a module constant: `Side.LONG` is a slow class lookup in per-bar loops
_QTY_EPS = 1e-12  # relative: a remaining quantity below this share of the initial one is zero


class BrokerConfigError(ValueError):
    """The venue file is missing, unreadable or holds an invalid rate."""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Venue parameters, as fractions: fee of the notional, adverse slippage of the price.

    Every order this broker fills takes liquidity (market, stop-market, take-profit-market), so
    fills pay `taker_fee`; `maker_fee` is part of the venue's schedule, kept for resting limit
    orders, which this engine does not send.
    """

    taker_fee: float
    maker_fee: float
    slippage: float
    venue: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "venue":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BrokerConfigError(f"broker {f.name} must be a number, got {value!r}")
            if not math.isfinite(value) or not 0 <= value < 1:
                raise BrokerConfigError(
                    f"broker {f.name} must be a fraction in [0, 1), got {value}"
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "") -> BrokerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BrokerConfigError(f"{source or 'broker config'}: unknown key {unknown[0]!r}")
        missing = sorted(k for k in known - {"venue"} if k not in data)
        if missing:
            raise BrokerConfigError(f"{source or 'broker config'}: missing {', '.join(missing)}")
        return cls(**dict(data))

    @classmethod
    def from_toml(cls, path: str | Path | None = None) -> BrokerConfig:
        """Read the `[broker]` table of a TOML file (default: the packaged Binance USDT-M one)."""
        p = Path(path) if path is not None else DEFAULT_VENUE_FILE
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise BrokerConfigError(f"cannot read broker config {p}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise BrokerConfigError(f"broker config {p} is not valid TOML: {exc}") from None
        table = data.get("broker", data)
        return cls.from_mapping(table, str(p))

    def entry_cost(self) -> float:
        """The most an entry's fill costs, as a fraction of its notional (`RiskKernel.check`):
        the taker fee, plus the slippage as the position is then marked at the reference price
        (a short filled at ref x (1 - s) is worth s / (1 - s) more marked there)."""
        return self.taker_fee + self.slippage / (1 - self.slippage)

    def exit_cost(self) -> float:
        """What an exit leg's fill costs, as a fraction of its notional (taker fee and
        slippage): `RiskKernel.hold_limits` sizes its trims with it."""
        return self.taker_fee + self.slippage

    def break_even_offset(self) -> float:
        """Price fraction a round trip costs (taker fee and slippage, entry leg and exit leg)."""
        return 2 * self.exit_cost()


# -- pure arithmetic (hand-checked in tests) -------------------------------------------------


def funding_payment(side: Side, qty: float, mark_price: float, rate: float) -> float:
    """USDT the position pays (+) or receives (-): positive rates make longs pay shorts."""
    return side.sign * qty * mark_price * rate


def cross_liquidation_price(
    side: Side,
    qty: float,
    entry_price: float,
    wallet_balance: float,
    mm_rate: float,
    mm_amount: float,
    other_equity: float = 0.0,
    other_maintenance: float = 0.0,
) -> float:
    """Binance's cross-margin liquidation price of one position (one-way mode).

    Solves `wallet + other_equity + s*q*(P - entry) = q*P*mm_rate - mm_amount + other_maintenance`
    for P, where s = +1 long / -1 short, `other_equity` is the other positions' unrealised PnL and
    `other_maintenance` their maintenance margin. Returns 0 (long) when the account cannot be
    liquidated at any positive price.
    """
    s = side.sign
    numerator = (
        wallet_balance + other_equity - other_maintenance + mm_amount - s * qty * entry_price
    )
    denominator = qty * mm_rate - s * qty
    price = numerator / denominator
    return max(price, 0.0)


@dataclass(slots=True)
class _BarRow:
    """One open position's bar: trade prices and mark prices (mark = trade without a mark file)."""

    pos: Position
    o: float
    h: float
    lo: float
    mo: float
    mh: float
    ml: float


@dataclass(slots=True)
class _Protective:
    stop: Order | None = None
    take_profit: Order | None = None


@dataclass(slots=True)
class SimulatedBroker:
    """Fills market orders at a reference price with slippage; holds stop/take-profit backstops.

    The broker owns the account (`portfolio`): wallet balance, open positions and their marks.
    """

    config: BrokerConfig
    tiers: LeverageTiers
    portfolio: Portfolio
    run_id: str = "sim"
    closed_positions: list[Position] = field(default_factory=list)
    fees_paid: float = 0.0
    funding_paid: float = 0.0
    n_liquidations: int = 0
    _protective: dict[str, _Protective] = field(default_factory=dict)
    _seq: int = 0
    _tier_cache: dict[str, tuple[list[float], tuple]] = field(default_factory=dict)
    _bracket: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    _mark_seen: bool | None = None  # whether the bars carry any mark-price file
    _fills: int = 0  # fills so far (a position opened, resized or closed)
    # the closes `_quiet_bar` read at step i, for `mark_to_close` of the same step (i, fills
    # then, [(position, close), ...]); None when the bar was not quiet
    _quiet_closes: tuple[int, int, list[tuple[Position, float]]] | None = None

    # -- orders ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def market_order(
        self,
        ts: int,
        symbol: str,
        side: Side,
        qty: float,
        purpose: str,
        reduce_only: bool = False,
    ) -> Order:
        """A market order with a deterministic client order id (not yet executed)."""
        return Order.create(
            self.run_id,
            ts,
            symbol,
            side,
            OrderType.MARKET,
            qty,
            purpose,
            reduce_only=reduce_only,
            seq=self._next_seq(),
        )

    def expected_fill_price(self, side: Side, ref_price: float) -> float:
        """Where a market order of `side` fills: the reference moved against it by the slippage."""
        return ref_price * (1 + side.sign * self.config.slippage)

    def execute(self, order: Order, ref_price: float, ts: int | None = None) -> list[BrokerEvent]:
        """Fill a market order at `ref_price` moved against the taker by the slippage."""
        price = self.expected_fill_price(order.side, ref_price)
        return self._fill(order, price, ts if ts is not None else order.ts)

    def open_position(
        self,
        order: Order,
        ref_price: float,
        leverage: float,
        stop_loss_pct: float | None,
        take_profit_pct: float | None,
        *,
        harvest: Any = None,
        kill_threshold: float | None = None,
        kill_reduce_threshold: float | None = None,
        kill_reduce_frac: float | None = None,
        max_hold_sec: float | None = None,
        policy: str = "",
        model_version: str = "",
    ) -> list[BrokerEvent]:
        """Execute an entry and rest its stop-market / take-profit-market backstops.

        The exit values (ladder, kill and reduce thresholds, time exit) ride on the position for
        the exit controller."""
        price = self.expected_fill_price(order.side, ref_price)
        events = self._fill(order, price, order.ts, leverage=leverage)
        pos = self.portfolio.positions.get(order.symbol)
        if pos is None:
            return events
        self._attach_plan(
            pos,
            stop_loss_pct,
            take_profit_pct,
            harvest=harvest,
            kill_threshold=kill_threshold,
            kill_reduce_threshold=kill_reduce_threshold,
            kill_reduce_frac=kill_reduce_frac,
            max_hold_sec=max_hold_sec,
            policy=policy,
            model_version=model_version,
        )
        events.extend(self._rest_protective(order.ts, pos))
        return events

    def _attach_plan(
        self,
        pos: Position,
        stop_loss_pct: float | None,
        take_profit_pct: float | None,
        *,
        harvest: Any = None,
        kill_threshold: float | None = None,
        kill_reduce_threshold: float | None = None,
        kill_reduce_frac: float | None = None,
        max_hold_sec: float | None = None,
        policy: str = "",
        model_version: str = "",
    ) -> None:
        """Put the entry decision's exit plan on a just-opened position (stop and take-profit
        prices from the fill's entry price)."""
        pos.harvest = harvest
        pos.kill_threshold = kill_threshold
        pos.kill_reduce_threshold = kill_reduce_threshold
        pos.kill_reduce_frac = kill_reduce_frac
        pos.max_hold_sec = max_hold_sec
        pos.policy = policy
        pos.model_version = model_version
        entry = pos.entry_price
        s = pos.side.sign
        if stop_loss_pct is not None:
            pos.stop_price = entry * (1 - s * stop_loss_pct)
            pos.initial_stop_price = pos.stop_price
        if take_profit_pct is not None:
            pos.take_profit_price = entry * (1 + s * take_profit_pct)

    def _rest_protective(self, ts: int, pos: Position) -> list[BrokerEvent]:
        prot = self._protective.setdefault(pos.symbol, _Protective())
        events = []
        if pos.stop_price is not None:
            prot.stop = self._protective_order(ts, pos, OrderType.STOP_MARKET, pos.stop_price)
            events.append(BrokerEvent("order", ts, pos.symbol, order=prot.stop))
        if pos.take_profit_price is not None:
            prot.take_profit = self._protective_order(
                ts, pos, OrderType.TAKE_PROFIT_MARKET, pos.take_profit_price
            )
            events.append(BrokerEvent("order", ts, pos.symbol, order=prot.take_profit))
        return events

    def _protective_order(self, ts: int, pos: Position, kind: OrderType, trigger: float) -> Order:
        """A reduce-only stop-market or take-profit-market order closing all of `pos`."""
        purpose = (
            OrderPurpose.STOP_LOSS if kind is OrderType.STOP_MARKET else OrderPurpose.TAKE_PROFIT
        )
        return Order.create(
            self.run_id, ts, pos.symbol, pos.side.opposite, kind, pos.qty, purpose,
            stop_price=trigger, reduce_only=True, seq=self._next_seq(),
        )  # fmt: skip

    def move_stop(
        self, ts: int, symbol: str, new_stop: float, detail: str = ""
    ) -> list[BrokerEvent]:
        """Cancel the resting stop-market order and rest a new one at `new_stop`."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None:
            return []
        prot = self._protective.setdefault(symbol, _Protective())
        events = []
        if prot.stop is not None:
            events.append(
                BrokerEvent(
                    "cancel", ts, symbol, order=prot.stop.with_status(OrderStatus.CANCELED, detail)
                )
            )
        pos.stop_price = new_stop
        prot.stop = self._protective_order(ts, pos, OrderType.STOP_MARKET, new_stop)
        events.append(BrokerEvent("order", ts, symbol, order=prot.stop))
        events.append(BrokerEvent("stop_moved", ts, symbol, position=pos))
        return events

    def restore(self, pos: Position, stop: Order | None, take_profit: Order | None) -> None:
        """Put a journaled open position and its resting backstops back (a restart)."""
        self.portfolio.positions[pos.symbol] = pos
        self._fills += 1
        if stop is not None or take_profit is not None:
            self._protective[pos.symbol] = _Protective(stop, take_profit)

    def protective_orders(self, symbol: str) -> tuple[Order | None, Order | None]:
        prot = self._protective.get(symbol)
        return (prot.stop, prot.take_profit) if prot is not None else (None, None)

    def _fill(
        self,
        order: Order,
        price: float,
        ts: int,
        fee_override: float | None = None,
        reason: str = "",
        leverage: float | None = None,
    ) -> list[BrokerEvent]:
        """Apply a fill to the account: open (with `leverage`), add to, reduce or close."""
        pf = self.portfolio
        self._fills += 1
        pos = pf.positions.get(order.symbol)
        qty = order.qty
        fee = self.config.taker_fee * qty * price if fee_override is None else fee_override
        realised = 0.0
        closed = False
        if pos is None or not pos.is_open:
            why = "no position to reduce" if order.reduce_only else None
            if leverage is None and why is None:
                why = "an entry needs its leverage: open positions with open_position()"
            if why is not None:
                return [
                    BrokerEvent(
                        "order",
                        ts,
                        order.symbol,
                        order=order.with_status(OrderStatus.REJECTED, why),
                    )
                ]
            pos = Position(
                symbol=order.symbol,
                side=order.side,
                qty=qty,
                entry_price=price,
                leverage=leverage,
                opened_ts=ts,
                mark_price=price,
            )
            pf.positions[order.symbol] = pos
        elif pos.side is order.side:
            new_qty = pos.qty + qty
            pos.entry_price = (pos.entry_price * pos.qty + price * qty) / new_qty
            pos.qty = new_qty
            pos.initial_qty = max(pos.initial_qty, new_qty)
        else:
            qty = min(qty, pos.qty)
            realised = pos.side.sign * qty * (price - pos.entry_price)
            pos.qty -= qty
            pos.realised_pnl += realised
            if pos.qty <= pos.initial_qty * _QTY_EPS:
                pos.qty = 0.0
                closed = True
        pos.fees_paid += fee
        pos.mark_price = price
        pf.wallet_balance += realised - fee
        self.fees_paid += fee
        fill = build_fill(
            order.client_order_id, ts, order.symbol, order.side, qty, price, fee, False, realised
        )
        filled = order.with_status(OrderStatus.FILLED, reason)
        events = [
            BrokerEvent(
                "fill", ts, order.symbol, order=filled, fill=fill, position=pos, closed=closed
            )
        ]
        if closed:
            events.extend(self._close_out(pos, ts, reason or str(order.purpose)))
        else:
            events.extend(self._resize_protective(pos, ts))
        return events

    def _resize_protective(self, pos: Position, ts: int) -> list[BrokerEvent]:
        """Resting backstops follow the position's size after a partial close (amend)."""
        prot = self._protective.get(pos.symbol)
        if prot is None:
            return []
        events = []
        if prot.stop is not None and prot.stop.qty != pos.qty:
            prot.stop = prot.stop.resized(pos.qty, prot.stop.ts)
            events.append(BrokerEvent("order", ts, pos.symbol, order=prot.stop))
        if prot.take_profit is not None and prot.take_profit.qty != pos.qty:
            prot.take_profit = prot.take_profit.resized(pos.qty, prot.take_profit.ts)
            events.append(BrokerEvent("order", ts, pos.symbol, order=prot.take_profit))
        return events

    def _close_out(self, pos: Position, ts: int, reason: str) -> list[BrokerEvent]:
        pos.closed_ts = ts
        pos.close_reason = reason
        self.portfolio.positions.pop(pos.symbol, None)
        self.closed_positions.append(pos)
        prot = self._protective.pop(pos.symbol, None)
        events = []
        if prot is not None:
            for o in (prot.stop, prot.take_profit):
                if o is not None and o.purpose != reason:
                    events.append(
                        BrokerEvent(
                            "cancel",
                            ts,
                            pos.symbol,
                            order=o.with_status(
                                OrderStatus.CANCELED, f"position closed ({reason})"
                            ),
                        )
                    )
        return events

    # -- the bar -----------------------------------------------------------------------------

    def process_bar(self, bars: AlignedBars, i: int, col: Mapping[str, int]) -> list[BrokerEvent]:
        """Funding, stops, liquidation and take-profits during step `i` (module docstring order)."""
        pf = self.portfolio
        if not pf.positions:
            return []
        # 1. funding prints settled in the bar come first, for every open position
        events = self._settle_funding_prints(bars, i, col) if bars.funding_steps[i] else []
        if self._quiet_bar(bars, i, col):
            return events
        ts_open = int(bars.ts[i])
        ts_close = ts_open + bars.step_ms
        rows: list[_BarRow] = []
        for sym, pos in list(pf.positions.items()):
            j = col[sym]
            o, h, lo, _ = bars.candle(i, j)
            if bars.has_mark[j] and not math.isnan(bars.mark_open[i, j]):
                mo, mh, ml = (
                    float(bars.mark_open[i, j]),
                    float(bars.mark_high[i, j]),
                    float(bars.mark_low[i, j]),
                )
            else:
                mo, mh, ml = o, h, lo
            rows.append(_BarRow(pos, o, h, lo, mo, mh, ml))

        # gaps through a level at the open
        for r in rows:
            pos = r.pos
            if not pos.is_open or math.isnan(r.o):
                continue
            s = pos.side.sign
            if pos.stop_price is not None and s * (r.o - pos.stop_price) <= 0:
                events.extend(self._trigger(pos, OrderPurpose.STOP_LOSS, r.o, ts_open))
            elif pos.take_profit_price is not None and s * (r.o - pos.take_profit_price) >= 0:
                events.extend(self._trigger(pos, OrderPurpose.TAKE_PROFIT, r.o, ts_open))

        # adverse extremes: liquidation vs stops
        events.extend(self._adverse_pass([r for r in rows if r.pos.is_open], ts_close))

        # favourable extremes: take-profits
        for r in rows:
            pos = r.pos
            if not pos.is_open or pos.take_profit_price is None or math.isnan(r.h):
                continue
            fav = r.h if pos.side is Side.LONG else r.lo
            if pos.side.sign * (fav - pos.take_profit_price) >= 0:
                events.extend(
                    self._trigger(pos, OrderPurpose.TAKE_PROFIT, pos.take_profit_price, ts_close)
                )
        return events

    def _settle_funding_prints(
        self, bars: AlignedBars, i: int, col: Mapping[str, int]
    ) -> list[BrokerEvent]:
        """Settle the funding prints of step `i` for the positions open at their time, at the
        mark price of the bar's open (the trade bar's open without a mark file)."""
        events: list[BrokerEvent] = []
        rates = bars.funding[i]
        for sym, pos in list(self.portfolio.positions.items()):
            j = col[sym]
            rate = rates.item(j)
            if rate != rate:  # NaN: no print for this symbol in this bar
                continue
            f_ts = int(bars.funding_ts.item(i, j))
            if pos.opened_ts > f_ts:
                continue
            mo = bars.open.item(i, j)
            if bars.has_mark[j]:
                m = bars.mark_open.item(i, j)
                if m == m:
                    mo = m
            mark = mo if not math.isnan(mo) else pos.mark_price
            events.append(self._settle_funding(pos, f_ts, mark, float(rate)))
        return events

    def _quiet_bar(self, bars: AlignedBars, i: int, col: Mapping[str, int]) -> bool:
        """True when the rest of the bar (funding aside: settled first) can change nothing: no
        stop or take-profit reached or gapped through at the open, and the account not
        liquidatable even with every position at its adverse extreme at once. A fast path
        only: when in doubt, the full pass runs."""
        positions = self.portfolio.positions
        self._quiet_closes = None
        if self._mark_seen is None:
            self._mark_seen = bool(bars.has_mark.any())
        if self._mark_seen and bars.has_mark[[col[s] for s in positions]].any():
            return False
        o_m, h_m, lo_m, c_m = bars.open, bars.high, bars.low, bars.close
        # the candle matrices read the per-symbol series (`AlignedBars.candle`, inline)
        cols = type(o_m) is type(h_m) is type(lo_m) is type(c_m) is SymbolColumns
        if cols:
            known = bars.known
            o_c, h_c, lo_c, c_c = o_m._cols, h_m._cols, lo_m._cols, c_m._cols  # type: ignore[union-attr]
        candle = bars.candle
        nan = math.nan
        equity = self.portfolio.wallet_balance
        maint = 0.0
        bracket = self._bracket
        closes: list[tuple[Position, float]] = []
        for sym, pos in positions.items():
            j = col[sym]
            if cols:
                k = known.item(i, j) - 1
                if k < 0 or (i > 0 and known.item(i - 1, j) > k):
                    o = h = lo = c = nan
                else:
                    o, h, lo, c = o_c[j].item(k), h_c[j].item(k), lo_c[j].item(k), c_c[j].item(k)
            else:
                o, h, lo, c = candle(i, j)
            long = pos.side is _LONG
            stop, tp = pos.stop_price, pos.take_profit_price
            if long:
                if stop is not None and (lo <= stop or o <= stop):
                    return False
                if tp is not None and (h >= tp or o >= tp):
                    return False
                x = lo
            else:
                if stop is not None and (h >= stop or o >= stop):
                    return False
                if tp is not None and (lo <= tp or o <= tp):
                    return False
                x = h
            closes.append((pos, c))
            if x != x:  # no bar for this symbol now: it stays at its last mark
                x = pos.mark_price
            qty = pos.qty
            equity += (qty if long else -qty) * (x - pos.entry_price)
            n = abs(qty * x)
            last = bracket.get(sym)  # `maintenance`, its cached-bracket case inline
            if last is not None and last[0] < n <= last[1]:
                maint += n * last[2] - last[3]
            else:
                maint += self.maintenance(sym, n)[0]
        if equity > maint:
            self._quiet_closes = (i, self._fills, closes)
            return True
        return False

    def maintenance(self, symbol: str, notional: float) -> tuple[float, float, float]:
        """(maintenance margin, rate, cum) in the bracket of `notional` (top bracket beyond).

        Same numbers as `LeverageTiers.maintenance_margin`; the symbol's brackets and its last
        bracket are cached (a position's notional rarely leaves its bracket).
        """
        n = abs(notional)
        last = self._bracket.get(symbol)
        if last is not None and last[0] < n <= last[1]:
            return n * last[2] - last[3], last[2], last[3]
        cached = self._tier_cache.get(symbol)
        if cached is None:
            tiers = self.tiers.tiers(symbol)
            cached = ([t.max_notional for t in tiers], tiers)
            self._tier_cache[symbol] = cached
        caps, tiers = cached
        k = bisect.bisect_left(caps, n)
        t = tiers[k if k < len(tiers) else -1]
        rate, cum = t.maintenance_margin_rate, t.maintenance_amount
        if k < len(tiers):
            self._bracket[symbol] = (t.min_notional, t.max_notional, rate, cum)
        return n * rate - cum, rate, cum

    def maintenance_total(self) -> float:
        """Summed maintenance margin of the open positions at their marks (USDT)."""
        total = 0  # summed like `sum()`: from int 0
        bracket = self._bracket
        for s, p in self.portfolio.positions.items():
            n = abs(p.qty * p.mark_price)
            last = bracket.get(s)  # `maintenance`, its cached-bracket case inline
            if last is not None and last[0] < n <= last[1]:
                total += n * last[2] - last[3]
            else:
                total += self.maintenance(s, n)[0]
        return total

    def _settle_funding(self, pos: Position, ts: int, mark: float, rate: float) -> BrokerEvent:
        paid = funding_payment(pos.side, pos.qty, mark, rate)
        pos.funding_paid += paid
        self.portfolio.wallet_balance -= paid
        self.funding_paid += paid
        return BrokerEvent("funding", ts, pos.symbol, amount=paid, rate=rate, position=pos)

    def _trigger(self, pos: Position, purpose: str, level: float, ts: int) -> list[BrokerEvent]:
        """Fill the resting stop / take-profit of `pos` at `level` (plus slippage)."""
        stop, tp = self.protective_orders(pos.symbol)
        order = stop if purpose == OrderPurpose.STOP_LOSS else tp
        if order is None:
            order = Order.create(
                self.run_id,
                ts,
                pos.symbol,
                pos.side.opposite,
                OrderType.STOP_MARKET
                if purpose == OrderPurpose.STOP_LOSS
                else OrderType.TAKE_PROFIT_MARKET,
                pos.qty,
                purpose,
                stop_price=level,
                reduce_only=True,
                seq=self._next_seq(),
            )
        order = order.resized(pos.qty, ts)
        price = level * (1 + order.side.sign * self.config.slippage)
        return self._fill(order, price, ts, reason=str(purpose))

    def _adverse_pass(self, rows: list[_BarRow], ts: int) -> list[BrokerEvent]:
        """Stops and liquidation on the way to each position's adverse extreme of the bar."""
        if not rows:
            return []
        pf = self.portfolio
        adverse_mark: dict[str, float] = {}
        adverse_trade: dict[str, float] = {}
        equity = pf.wallet_balance
        maint = 0.0
        for r in rows:
            pos = r.pos
            long = pos.side is Side.LONG
            xm = r.ml if long else r.mh
            if math.isnan(xm):
                xm = pos.mark_price
            adverse_mark[pos.symbol] = xm
            adverse_trade[pos.symbol] = r.lo if long else r.h
            equity += pos.side.sign * pos.qty * (xm - pos.entry_price)
            maint += self.maintenance(pos.symbol, pos.qty * xm)[0]
        if equity > maint:
            # even with every position at its worst price at once the account is not liquidated
            return self._stops(adverse_trade, {}, ts)
        events: list[BrokerEvent] = []
        for _ in range(len(rows) + 1):
            liq = self._liquidation_prices(adverse_mark)
            hit = {
                s: lp
                for s, lp in liq.items()
                if pf.positions[s].side.sign * (adverse_mark[s] - lp) <= 0
            }
            stopped = self._stops(adverse_trade, hit, ts)
            if stopped:
                events.extend(stopped)
                for ev in stopped:
                    adverse_mark.pop(ev.symbol, None)
                    adverse_trade.pop(ev.symbol, None)
                continue  # stops changed the wallet: solve the liquidation prices again
            if hit:
                events.extend(self._liquidate(liq, ts))
            break
        return events

    def _stops(
        self, adverse_trade: Mapping[str, float], liq_hit: Mapping[str, float], ts: int
    ) -> list[BrokerEvent]:
        """Fill the stops the adverse extreme reaches before any liquidation price."""
        events: list[BrokerEvent] = []
        for sym, x in adverse_trade.items():
            pos = self.portfolio.positions.get(sym)
            if pos is None or pos.stop_price is None or math.isnan(x):
                continue
            s = pos.side.sign
            if s * (x - pos.stop_price) > 0:
                continue
            lp = liq_hit.get(sym)
            if lp is not None and s * (pos.stop_price - lp) <= 0:
                continue  # the liquidation price comes first on the way down (up)
            events.extend(self._trigger(pos, OrderPurpose.STOP_LOSS, pos.stop_price, ts))
        return events

    def _liquidation_prices(self, adverse: Mapping[str, float]) -> dict[str, float]:
        """Each open position's cross liquidation price, the others at their adverse extremes."""
        pf = self.portfolio
        upnl: dict[str, float] = {}
        maint: dict[str, tuple[float, float, float]] = {}
        for sym, pos in pf.positions.items():
            x = adverse.get(sym, pos.mark_price)
            upnl[sym] = pos.side.sign * pos.qty * (x - pos.entry_price)
            maint[sym] = self.maintenance(sym, pos.qty * x)
        tot_upnl = sum(upnl.values())
        tot_maint = sum(m[0] for m in maint.values())
        out = {}
        for sym, pos in pf.positions.items():
            mm, rate, cum = maint[sym]
            out[sym] = cross_liquidation_price(
                pos.side,
                pos.qty,
                pos.entry_price,
                pf.wallet_balance,
                rate,
                cum,
                other_equity=tot_upnl - upnl[sym],
                other_maintenance=tot_maint - mm,
            )
        return out

    def _liquidate(self, liq: Mapping[str, float], ts: int) -> list[BrokerEvent]:
        """Close every position at its liquidation price; the margin left is the clearance fee."""
        pf = self.portfolio
        events: list[BrokerEvent] = []
        self.n_liquidations += 1
        for sym in list(pf.positions):
            pos = pf.positions[sym]
            order = Order.create(
                self.run_id,
                ts,
                sym,
                pos.side.opposite,
                OrderType.MARKET,
                pos.qty,
                OrderPurpose.LIQUIDATION,
                reduce_only=True,
                seq=self._next_seq(),
            )
            events.extend(
                self._fill(
                    order, liq[sym], ts, fee_override=0.0, reason=str(OrderPurpose.LIQUIDATION)
                )
            )
        # what is left (the maintenance margin) goes to the insurance fund; a deficit is its loss
        left = pf.wallet_balance
        pf.wallet_balance = 0.0
        if left > 0:
            self.fees_paid += left
        events.append(BrokerEvent("liquidation", ts, "*", amount=left))
        return events

    # -- marking -------------------------------------------------------------------------

    def mark_to_close(self, bars: AlignedBars, i: int, col: Mapping[str, int]) -> None:
        """Mark open positions at the step's close (mark close when a mark file exists)."""
        close = bars.close
        has_mark = self._mark_seen if self._mark_seen is not None else bool(bars.has_mark.any())
        quiet = self._quiet_closes
        if quiet is not None:
            self._quiet_closes = None
            if (
                not has_mark
                and quiet[0] == i
                and quiet[1] == self._fills
                and len(quiet[2]) == len(self.portfolio.positions)
            ):  # this step's quiet bar read the closes of these very positions
                for pos, price in quiet[2]:
                    if price == price:  # not NaN: no bar keeps the last mark
                        pos.mark_price = price
                return
        if not has_mark:
            for sym, pos in self.portfolio.positions.items():
                price = close.item(i, col[sym])
                if price == price:  # not NaN: no bar keeps the last mark
                    pos.mark_price = price
            return
        for sym, pos in self.portfolio.positions.items():
            j = col[sym]
            price = bars.mark_close[i, j] if has_mark and bars.has_mark[j] else close.item(i, j)
            if math.isnan(price):
                price = close.item(i, j)
            if not math.isnan(price):
                pos.mark_price = float(price)
