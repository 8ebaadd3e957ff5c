"""Closed candles from an exchange, bar by bar, for paper and live mode (ccxt async).

The feed keeps every closed bar it has seen since start-up (the warm-up history first) and hands
the core the same `MarketData` a backtest reads from files, so the loop sees the same windows in
both modes. A bar is closed once the exchange returns a newer one: like Binance, exchanges return
the bar still forming last, and it is dropped (its prices are not final).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.core.bars import CANDLE_COLUMNS, MarketData, SymbolData, timeframe_ms


class FeedStalled(Exception):
    """No closed bar arrived for longer than the feed allows (shown as one line)."""


@dataclass(slots=True)
class _Series:
    """One symbol's closed bars in growing arrays (amortised appends, no per-cycle copies)."""

    ts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    n: int = 0
    funding_ts: list[int] = field(default_factory=list)
    funding: list[float] = field(default_factory=list)

    @property
    def last(self) -> int | None:
        return int(self.ts[self.n - 1]) if self.n else None

    def append(self, t: int, row: Sequence[float]) -> None:
        if self.n == len(self.ts):
            capacity = max(64, 2 * self.n)  # rows, doubled: amortised O(1) appends
            self.ts = np.resize(self.ts, capacity)
            self.values = np.resize(self.values, (capacity, 5))
        self.ts[self.n] = t
        self.values[self.n] = row
        self.n += 1

    def keep_last(self, k: int) -> None:
        if self.n > k:
            cut = self.n - k
            self.ts[:k] = self.ts[cut : self.n]
            self.values[:k] = self.values[cut : self.n]
            self.n = k


@dataclass(slots=True)
class LiveFeed:
    """Closed candles of `symbols` ("BTC-USDT" -> ccxt symbol in `markets`) on `timeframe`."""

    exchange: Any
    markets: Mapping[str, str]
    timeframe: str
    history_bars: int
    max_bars_kept: int = 20_000
    page: int = 1000  # ccxt caps a klines request at 1000 bars
    with_funding: bool = True  # funding prints too (paper mode settles them like a backtest)
    _series: dict[str, _Series] = field(default_factory=dict)
    requests: int = 0

    @property
    def step_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def symbols(self) -> list[str]:
        return list(self.markets)

    async def _fetch(self, symbol: str, since: int | None, limit: int) -> list[list[float]]:
        self.requests += 1
        return await self.exchange.fetch_ohlcv(
            self.markets[symbol], self.timeframe, since=since, limit=limit
        )

    def _append(self, symbol: str, rows: Sequence[Sequence[float]]) -> int:
        """Add the closed rows (all but the newest one returned); returns how many were new."""
        s = self._series.setdefault(symbol, _Series())
        if not rows:
            return 0
        newest = max(int(r[0]) for r in rows)
        added = 0
        for r in sorted(rows, key=lambda r: r[0]):
            t = int(r[0])
            if t >= newest or (s.last is not None and t <= s.last):
                continue
            s.append(t, [float(x) for x in r[1:6]])
            added += 1
        s.keep_last(self.max_bars_kept)
        return added

    async def _catch_up(self, symbol: str) -> int:
        """Fetch every bar after the last one kept (pages of `page`), or the warm-up history."""
        s = self._series.get(symbol)
        added = 0
        if s is None or s.last is None:
            rows = await self._fetch(symbol, None, min(self.page, self.history_bars + 1))
            added = self._append(symbol, rows)
        else:
            while True:
                since = s.last + self.step_ms
                rows = await self._fetch(symbol, since, self.page)
                n = self._append(symbol, rows)
                added += n
                if n == 0 or len(rows) < self.page:
                    break
        if added and self.with_funding:
            await self._funding(symbol)
        return added

    async def _funding(self, symbol: str) -> None:
        """Funding prints settled up to the newest closed bar (kept from the first bar kept)."""
        s = self._series[symbol]
        if not s.n:
            return
        since = s.funding_ts[-1] + 1 if s.funding_ts else int(s.ts[0])
        self.requests += 1
        rows = await self.exchange.fetch_funding_rate_history(self.markets[symbol], since, 1000)
        for r in sorted(rows, key=lambda r: r["timestamp"]):
            t, rate = int(r["timestamp"]), r.get("fundingRate")
            if rate is None or (s.funding_ts and t <= s.funding_ts[-1]):
                continue
            s.funding_ts.append(t)
            s.funding.append(float(rate))

    async def start(self) -> None:
        """Load the warm-up history of every symbol (concurrently)."""
        await asyncio.gather(*(self._catch_up(s) for s in self.symbols))

    async def poll(self) -> int:
        """Fetch what closed since the last poll; returns the open time of the newest bar that
        every symbol has (0 when a symbol has none yet)."""
        await asyncio.gather(*(self._catch_up(s) for s in self.symbols))
        return self.common_last()

    def common_last(self) -> int:
        lasts = [self._series.get(s, _Series()).last for s in self.symbols]
        return 0 if any(t is None for t in lasts) else int(min(lasts))  # type: ignore[type-var]

    def market_data(self, until: int | None = None) -> MarketData:
        """Everything kept (bars opened at or before `until`) as the core's `MarketData`."""
        out: dict[str, SymbolData] = {}
        for sym in self.symbols:
            s = self._series.get(sym, _Series())
            k = s.n if until is None else int(np.searchsorted(s.ts[: s.n], until, side="right"))
            ts, vals = s.ts[:k].copy(), s.values[:k].copy()
            frame = pd.DataFrame(
                vals, columns=list(CANDLE_COLUMNS), index=pd.Index(ts, name="timestamp")
            )
            funding = None
            if s.funding_ts:
                f_ts = np.asarray(s.funding_ts, dtype=np.int64)
                f_val = np.asarray(s.funding, dtype=np.float64)
                if until is not None:  # prints settled up to the close of the bar at `until`
                    keep = f_ts < until + self.step_ms
                    f_ts, f_val = f_ts[keep], f_val[keep]
                funding = pd.DataFrame(
                    {"funding_rate": f_val}, index=pd.Index(f_ts, name="timestamp")
                )
            out[sym] = SymbolData(sym, self.timeframe, "perpetual", frame, funding, "ccxt")
        return MarketData(out, self.timeframe)


async def wait_for_bar(
    feed: LiveFeed,
    after: int,
    *,
    poll_seconds: float,
    stop: Callable[[], bool],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_wait_s: float | None = None,
) -> int | None:
    """Poll until every symbol has a closed bar opened after `after`; None when `stop()` says so.

    Polling (not a timer on the wall clock) keeps the loop aligned with the exchange's own bar
    closes, whatever the exchange's clock; `poll_seconds` bounds how late a bar is seen.
    """
    waited = 0.0
    while not stop():
        last = await feed.poll()
        if last > after:
            return last
        if max_wait_s is not None and waited >= max_wait_s:
            raise FeedStalled(f"no new closed {feed.timeframe} bar for {waited:.0f} s")
        await sleep(poll_seconds)
        waited += poll_seconds
    return None
