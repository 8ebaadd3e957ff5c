"""The Binance USD-M REST endpoints ccxt's `binanceusdm` calls, as functions of the parsed params.

Each endpoint takes the request's parameters (strings, as sent) and returns the JSON Binance
returns, or raises `ApiError` with Binance's code. The replay clock is caught up before every call,
so whatever a client reads is consistent with the bars that have closed by then.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.venues.exchange_sim.ledger import ApiError, Ledger
from engine.venues.exchange_sim.market import ReplayMarket, fmt

Params = Mapping[str, str]
Handler = Callable[[Params], Any]

_INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
# Binance's (default, cap) of the `limit` parameter per endpoint: request plumbing, not trading
PAGE_LIMITS = {
    "klines": (500, 1500),
    "userTrades": (500, 1000),
    "allOrders": (500, 1000),
    "fundingRate": (100, 1000),
    "income": (100, 1000),
}
ORDER_TYPES = ["MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET"]
_CONDITIONAL = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"})


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    signed: bool


class SimExchange:
    """Market + ledger behind one lock, with the replay clock driven by wall time or `advance`."""

    def __init__(self, market: ReplayMarket, ledger: Ledger, bar_seconds: float) -> None:
        if not (bar_seconds >= 0 and math.isfinite(bar_seconds)):
            raise ValueError(f"bar_seconds must be >= 0, got {bar_seconds}")
        self.market = market
        self.ledger = ledger
        self.bar_seconds = bar_seconds
        self.lock = threading.RLock()
        self._wall0 = time.monotonic()
        self._start_cursor = market.cursor
        self._manual_bars = 0
        self.routes: dict[tuple[str, str], Route] = self._routes()

    # -- the clock ---------------------------------------------------------------------------

    def sync(self) -> None:
        """Close every bar whose wall time has passed (none in manual mode)."""
        with self.lock:
            wall_bars = 0
            if self.bar_seconds > 0:
                wall_bars = int((time.monotonic() - self._wall0) / self.bar_seconds)
            target = self._start_cursor + self._manual_bars + wall_bars
            while self.market.cursor < target and not self.market.finished:
                bars, prints = self.market.advance()
                self.ledger.on_bar(bars, prints)

    def advance(self, n: int) -> int:
        """Close `n` bars now (on top of the wall clock); returns the new simulated time."""
        if n < 0:
            raise ValueError("advance takes a non-negative number of bars")
        with self.lock:
            self._manual_bars += n
            self.sync()
            return self.market.now_ms

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            self.sync()
            out = self.ledger.snapshot()
            out["timeframe"] = self.market.timeframe
            out["bar_seconds"] = self.bar_seconds
            out["symbols"] = sorted(self.market.series)
            return out

    # -- helpers -----------------------------------------------------------------------------

    def _symbol(self, params: Params, required: bool = True) -> str | None:
        market_id = params.get("symbol")
        if not market_id:
            if required:
                raise ApiError(
                    -1102,
                    "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
                )
            return None
        s = self.market.by_market_id.get(market_id)
        if s is None:
            raise ApiError(-1121, "Invalid symbol.")
        return s.symbol

    @staticmethod
    def _int(params: Params, name: str, default: int | None = None) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'.") from None

    def _limit(self, params: Params, endpoint: str) -> int:
        default, cap = PAGE_LIMITS[endpoint]
        return max(1, min(self._int(params, "limit", default) or default, cap))

    @staticmethod
    def _float(params: Params, name: str) -> float | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return float(raw)
        except ValueError:
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'.") from None

    @staticmethod
    def _bool(params: Params, name: str) -> bool:
        return str(params.get(name, "false")).lower() == "true"

    @staticmethod
    def _side(params: Params) -> str:
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise ApiError(
                -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed."
            )
        if params.get("positionSide", "BOTH") != "BOTH":
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        return side

    # -- public endpoints --------------------------------------------------------------------

    def ping(self, params: Params) -> dict[str, Any]:
        return {}

    def server_time(self, params: Params) -> dict[str, Any]:
        """Wall time: ccxt signs with the wall clock; simulated time lives in klines and orders."""
        return {"serverTime": int(time.time() * 1000)}

    def exchange_info(self, params: Params) -> dict[str, Any]:
        symbols = []
        for s in self.market.series.values():
            tick, step = fmt(s.tick), fmt(s.step)
            symbols.append(
                {
                    "symbol": s.market_id,
                    "pair": s.market_id,
                    "contractType": "PERPETUAL",
                    "onboardDate": int(s.ts[0]),
                    "status": "TRADING",
                    "baseAsset": s.base,
                    "quoteAsset": s.quote,
                    "marginAsset": s.quote,
                    "pricePrecision": s.price_decimals,
                    "quantityPrecision": s.qty_decimals,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": tick,
                            "maxPrice": "10000000",
                            "tickSize": tick,
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": step,
                            "maxQty": "100000000",
                            "stepSize": step,
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": step,
                            "maxQty": "100000000",
                            "stepSize": step,
                        },
                        {
                            "filterType": "MIN_NOTIONAL",
                            "notional": fmt(self.ledger.config.min_notional),
                        },
                    ],
                    "orderTypes": ORDER_TYPES,
                    "timeInForce": ["GTC"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "futuresType": "U_MARGINED",
            "assets": [{"asset": "USDT", "marginAvailable": True}],
            "symbols": symbols,
        }

    def klines(self, params: Params) -> list[list[Any]]:
        sym = self._symbol(params)
        assert sym is not None
        interval = params.get("interval", "")
        interval_ms = _INTERVAL_MS.get(interval)
        if interval_ms is None or interval_ms % self.market.step_ms:
            raise ApiError(-1120, "Invalid interval.")
        limit = self._limit(params, "klines")
        return self.market.klines(
            sym, interval_ms, self._int(params, "startTime"), self._int(params, "endTime"), limit
        )

    def _ticker(self, sym: str) -> dict[str, Any]:
        s = self.market.series[sym]
        rows = self.market.klines(sym, self.market.step_ms, None, None, 25)
        last = self.market.price(sym)
        first = float(rows[0][1]) if rows else last
        high = max(float(r[2]) for r in rows) if rows else last
        low = min(float(r[3]) for r in rows) if rows else last
        vol = sum(float(r[5]) for r in rows)
        qvol = sum(float(r[7]) for r in rows)
        return {
            "symbol": s.market_id,
            "priceChange": fmt(last - first),
            "priceChangePercent": fmt(round((last - first) / first * 100, 3)),
            "weightedAvgPrice": fmt(qvol / vol if vol else last),
            "lastPrice": fmt(last),
            "lastQty": "0",
            "openPrice": fmt(first),
            "highPrice": fmt(high),
            "lowPrice": fmt(low),
            "volume": fmt(vol),
            "quoteVolume": fmt(qvol),
            "openTime": int(rows[0][0]) if rows else self.market.now_ms,
            "closeTime": self.market.now_ms,
            "count": 0,
        }

    def ticker_24hr(self, params: Params) -> Any:
        sym = self._symbol(params, required=False)
        if sym is not None:
            return self._ticker(sym)
        return [self._ticker(s) for s in self.market.series]

    def ticker_price(self, params: Params) -> Any:
        sym = self._symbol(params, required=False)
        rows = [
            {
                "symbol": self.market.series[s].market_id,
                "price": fmt(self.market.price(s)),
                "time": self.market.now_ms,
            }
            for s in ([sym] if sym else list(self.market.series))
        ]
        return rows[0] if sym else rows

    def _premium(self, sym: str) -> dict[str, Any]:
        price = fmt(self.market.price(sym))
        rate, nxt = self.market.last_funding(sym)
        return {
            "symbol": self.market.series[sym].market_id,
            "markPrice": price,
            "indexPrice": price,
            "estimatedSettlePrice": price,
            "lastFundingRate": fmt(rate),
            "interestRate": "0",
            "nextFundingTime": nxt,
            "time": self.market.now_ms,
        }

    def premium_index(self, params: Params) -> Any:
        sym = self._symbol(params, required=False)
        if sym is not None:
            return self._premium(sym)
        return [self._premium(s) for s in self.market.series]

    def funding_rate(self, params: Params) -> list[dict[str, Any]]:
        sym = self._symbol(params)
        assert sym is not None
        s = self.market.series[sym]
        start = self._int(params, "startTime")
        end = self._int(params, "endTime")
        limit = self._limit(params, "fundingRate")
        now = self.market.now_ms
        rows = [
            {
                "symbol": s.market_id,
                "fundingTime": int(t),
                "fundingRate": fmt(float(r)),
                "markPrice": "",
            }
            for t, r in zip(s.funding_ts, s.funding_rate, strict=True)
            if t <= now and (start is None or t >= start) and (end is None or t <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    # -- account -----------------------------------------------------------------------------

    def leverage_bracket(self, params: Params) -> Any:
        sym = self._symbol(params, required=False)
        out = []
        for name in [sym] if sym else list(self.market.series):
            brackets = [
                {
                    "bracket": i + 1,
                    "initialLeverage": int(t.max_leverage),
                    "notionalCap": t.max_notional,
                    "notionalFloor": t.min_notional,
                    "maintMarginRatio": t.maintenance_margin_rate,
                    "cum": t.maintenance_amount,
                }
                for i, t in enumerate(self.ledger.tiers.tiers(name))
            ]
            out.append(
                {
                    "symbol": self.market.series[name].market_id,
                    "brackets": brackets,
                }
            )
        return out

    def account(self, params: Params) -> dict[str, Any]:
        return self.ledger.account_json()

    def balance(self, params: Params) -> list[dict[str, Any]]:
        a = self.ledger.account_json()["assets"][0]
        return [
            {
                "accountAlias": "sim",
                "asset": "USDT",
                "balance": a["walletBalance"],
                "crossWalletBalance": a["crossWalletBalance"],
                "crossUnPnl": a["crossUnPnl"],
                "availableBalance": a["availableBalance"],
                "maxWithdrawAmount": a["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": a["updateTime"],
            }
        ]

    def position_risk(self, params: Params) -> list[dict[str, Any]]:
        sym = self._symbol(params, required=False)
        return [self.ledger.position_json(s) for s in ([sym] if sym else list(self.market.series))]

    def position_mode(self, params: Params) -> dict[str, Any]:
        return {"dualSidePosition": False}

    def set_leverage(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params)
        assert sym is not None
        lev = self._int(params, "leverage")
        if lev is None:
            raise ApiError(
                -1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed."
            )
        return self.ledger.set_leverage(sym, lev)

    def set_margin_type(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params)
        assert sym is not None
        return self.ledger.set_margin_type(sym, params.get("marginType", "").upper())

    def symbol_config(self, params: Params) -> list[dict[str, Any]]:
        """Leverage and margin type per symbol (ccxt: fetch_leverage, fetch_margin_mode)."""
        sym = self._symbol(params, required=False)
        led = self.ledger
        return [
            {
                "symbol": self.market.series[s].market_id,
                "marginType": led.margin_type[s],
                "isAutoAddMargin": "false",
                "leverage": led.leverage[s],
                "maxNotionalValue": fmt(led.max_notional_at(s, led.leverage[s])),
            }
            for s in ([sym] if sym else list(self.market.series))
        ]

    def commission_rate(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params)
        assert sym is not None
        return {
            "symbol": self.market.series[sym].market_id,
            "makerCommissionRate": fmt(self.ledger.broker.maker_fee),
            "takerCommissionRate": fmt(self.ledger.broker.taker_fee),
        }

    def income(self, params: Params) -> list[dict[str, Any]]:
        """Funding fees, commissions and realized PnL, as Binance's income history lists them."""
        sym = self._symbol(params, required=False)
        kind = params.get("incomeType")
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        limit = self._limit(params, "income")
        rows: list[dict[str, Any]] = []
        ids = 0

        def add(s: str, income_type: str, amount: float, t: int, info: str = "") -> None:
            nonlocal ids
            ids += 1
            if (sym and s != sym) or (kind and kind != income_type):
                return
            if (start is not None and t < start) or (end is not None and t > end):
                return
            rows.append(
                {
                    "symbol": self.market.series[s].market_id,
                    "incomeType": income_type,
                    "income": fmt(amount),
                    "asset": "USDT",
                    "info": info,
                    "time": t,
                    "tranId": ids,
                    "tradeId": info,
                }
            )

        for f in self.ledger.fills:
            add(f.symbol, "COMMISSION", -f.fee, f.time_ms, str(f.trade_id))
            if f.realized_pnl:
                add(f.symbol, "REALIZED_PNL", f.realized_pnl, f.time_ms, str(f.trade_id))
        for e in self.ledger.funding:
            if e.position_qty:
                add(e.symbol, "FUNDING_FEE", -e.paid, e.time_ms)
        rows.sort(key=lambda r: (r["time"], r["tranId"]))
        return rows[:limit] if start is not None else rows[-limit:]

    # -- orders --------------------------------------------------------------------------------

    def new_order(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params)
        assert sym is not None
        side = self._side(params)
        order_type = params.get("type", "")
        if order_type in _CONDITIONAL:
            raise ApiError(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
            )
        if order_type != "MARKET":
            raise ApiError(
                -1116, "Invalid orderType. (the local exchange fills MARKET orders only)"
            )
        qty = self._float(params, "quantity")
        if qty is None:
            raise ApiError(
                -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."
            )
        client_id = params.get("newClientOrderId") or f"sim-{self.ledger._next_order}"
        order = self.ledger.place_market(
            sym, side, qty, client_id, self._bool(params, "reduceOnly")
        )
        return self.ledger.order_json(order)

    def get_order(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params)
        oid, cid = params.get("orderId"), params.get("origClientOrderId")
        if oid is None and cid is None:
            raise ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
        return self.ledger.order_json(self.ledger.find_order(sym or "", oid, cid))

    def cancel_order(self, params: Params) -> dict[str, Any]:
        """Market orders fill at once, so there is never a regular order left to cancel."""
        sym = self._symbol(params)
        oid, cid = params.get("orderId"), params.get("origClientOrderId")
        if oid is None and cid is None:
            raise ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
        del sym  # a filled order and an unknown one get the same answer from Binance
        raise ApiError(-2011, "Unknown order sent.")

    def open_orders(self, params: Params) -> list[dict[str, Any]]:
        self._symbol(params, required=False)
        return []

    def all_orders(self, params: Params) -> list[dict[str, Any]]:
        sym = self._symbol(params)
        limit = self._limit(params, "allOrders")
        rows = [self.ledger.order_json(o) for o in self.ledger.orders.values() if o.symbol == sym]
        return rows[-limit:]

    def new_algo_order(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params)
        assert sym is not None
        if params.get("algoType", "CONDITIONAL") != "CONDITIONAL":
            raise ApiError(-1116, "Invalid algoType.")
        side = self._side(params)
        client_id = params.get("clientAlgoId") or f"sim-algo-{self.ledger._next_algo}"
        trigger = self._float(params, "triggerPrice")
        algo = self.ledger.place_algo(
            sym,
            side,
            params.get("type", ""),
            trigger if trigger is not None else math.nan,
            self._float(params, "quantity"),
            self._bool(params, "closePosition"),
            self._bool(params, "reduceOnly"),
            client_id,
            params.get("workingType", "CONTRACT_PRICE"),
        )
        return self.ledger.algo_json(algo)

    def get_algo_order(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params, required=False)
        aid, cid = params.get("algoId"), params.get("clientAlgoId")
        if aid is None and cid is None:
            raise ApiError(-1102, "Either algoId or clientAlgoId must be sent.")
        return self.ledger.algo_json(self.ledger.find_algo(sym, aid, cid))

    def cancel_algo_order(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params, required=False)
        aid, cid = params.get("algoId"), params.get("clientAlgoId")
        if aid is None and cid is None:
            raise ApiError(-1102, "Either algoId or clientAlgoId must be sent.")
        algo = self.ledger.cancel_algo(sym, aid, cid)
        return {
            "algoId": algo.algo_id,
            "clientAlgoId": algo.client_algo_id,
            "code": "200",
            "msg": "success",
        }

    def cancel_all_orders(self, params: Params) -> dict[str, Any]:
        """Nothing rests on the book here (market orders fill at once): a no-op, as on Binance."""
        self._symbol(params)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def cancel_all_algo_orders(self, params: Params) -> dict[str, Any]:
        sym = self._symbol(params)
        for a in self.ledger.algos.values():
            if a.symbol == sym and a.status == "NEW":
                self.ledger.cancel_algo(sym, str(a.algo_id), None)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def open_algo_orders(self, params: Params) -> list[dict[str, Any]]:
        sym = self._symbol(params, required=False)
        return [
            self.ledger.algo_json(a)
            for a in self.ledger.algos.values()
            if a.status == "NEW" and (sym is None or a.symbol == sym)
        ]

    def all_algo_orders(self, params: Params) -> list[dict[str, Any]]:
        sym = self._symbol(params)
        return [self.ledger.algo_json(a) for a in self.ledger.algos.values() if a.symbol == sym]

    def user_trades(self, params: Params) -> list[dict[str, Any]]:
        sym = self._symbol(params)
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        from_id = self._int(params, "fromId")
        limit = self._limit(params, "userTrades")
        rows: list[dict[str, Any]] = []
        for f in self.ledger.fills:
            if f.symbol != sym:
                continue
            if from_id is not None and f.trade_id < from_id:
                continue
            if (start is not None and f.time_ms < start) or (end is not None and f.time_ms > end):
                continue
            row = self.ledger.trade_json(f)
            rows.append(row)
            if f.reported_twice:
                rows.append(dict(row))
        return rows[:limit] if (start is not None or from_id is not None) else rows[-limit:]

    # -- routing -------------------------------------------------------------------------------

    def _routes(self) -> dict[tuple[str, str], Route]:
        public = {
            "/fapi/v1/ping": self.ping,
            "/fapi/v1/time": self.server_time,
            "/fapi/v1/exchangeInfo": self.exchange_info,
            "/fapi/v1/klines": self.klines,
            "/fapi/v1/continuousKlines": self.klines,
            "/fapi/v1/markPriceKlines": self.klines,  # mark = trade price in the replay
            "/fapi/v1/indexPriceKlines": self.klines,
            "/fapi/v1/ticker/24hr": self.ticker_24hr,
            "/fapi/v1/ticker/price": self.ticker_price,
            "/fapi/v1/premiumIndex": self.premium_index,
            "/fapi/v1/fundingRate": self.funding_rate,
        }
        signed = {
            ("GET", "/fapi/v1/leverageBracket"): self.leverage_bracket,
            ("GET", "/fapi/v2/account"): self.account,
            ("GET", "/fapi/v3/account"): self.account,
            ("GET", "/fapi/v2/balance"): self.balance,
            ("GET", "/fapi/v3/balance"): self.balance,
            ("GET", "/fapi/v2/positionRisk"): self.position_risk,
            ("GET", "/fapi/v3/positionRisk"): self.position_risk,
            ("GET", "/fapi/v1/positionSide/dual"): self.position_mode,
            ("POST", "/fapi/v1/leverage"): self.set_leverage,
            ("POST", "/fapi/v1/marginType"): self.set_margin_type,
            ("GET", "/fapi/v1/income"): self.income,
            ("GET", "/fapi/v1/symbolConfig"): self.symbol_config,
            ("GET", "/fapi/v1/commissionRate"): self.commission_rate,
            ("DELETE", "/fapi/v1/allOpenOrders"): self.cancel_all_orders,
            ("DELETE", "/fapi/v1/algoOpenOrders"): self.cancel_all_algo_orders,
            ("POST", "/fapi/v1/order"): self.new_order,
            ("GET", "/fapi/v1/order"): self.get_order,
            ("DELETE", "/fapi/v1/order"): self.cancel_order,
            ("GET", "/fapi/v1/openOrders"): self.open_orders,
            ("GET", "/fapi/v1/allOrders"): self.all_orders,
            ("POST", "/fapi/v1/algoOrder"): self.new_algo_order,
            ("GET", "/fapi/v1/algoOrder"): self.get_algo_order,
            ("DELETE", "/fapi/v1/algoOrder"): self.cancel_algo_order,
            ("GET", "/fapi/v1/openAlgoOrders"): self.open_algo_orders,
            ("GET", "/fapi/v1/allAlgoOrders"): self.all_algo_orders,
            ("GET", "/fapi/v1/userTrades"): self.user_trades,
        }
        routes = {("GET", p): Route(h, False) for p, h in public.items()}
        routes.update({k: Route(h, True) for k, h in signed.items()})
        return routes

    def call(self, method: str, path: str, params: Params) -> Any:
        """Run one endpoint under the lock, after catching the clock up."""
        route = self.routes.get((method, path))
        if route is None:
            raise ApiError(-5000, f"Path {method} {path} not found", http_status=404)
        with self.lock:
            self.sync()
            return route.handler(params)
