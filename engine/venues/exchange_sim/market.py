"""The replay clock and prices of the local exchange: recorded candles, one bar at a time.

The simulated clock stands at the open of the *forming* bar. Everything before it is history a
client may read; the forming bar is served the way Binance serves it (close time in the future, and
here only its open price is known: open = high = low = close, volume 0), so a client that drops the
last bar when its close time lies ahead never sees the future. Market orders fill at that open.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path

import numpy as np

from engine.core.bars import MarketData, timeframe_ms

EXCHANGE_FILE = Path(__file__).resolve().parent / "exchange.toml"
_MAX_DECIMALS = 8


class ExchangeConfigError(ValueError):
    """The exchange parameter file is missing, unreadable or holds an invalid value."""


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Venue parameters of the local exchange (see exchange.toml for what each one means)."""

    starting_balance: float
    default_leverage: int
    min_notional: float
    history_bars: int
    step_value: float

    @classmethod
    def from_toml(cls, path: str | Path | None = None) -> ExchangeConfig:
        p = Path(path) if path is not None else EXCHANGE_FILE
        try:
            table = tomllib.loads(p.read_text(encoding="utf-8")).get("exchange", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ExchangeConfigError(f"cannot read exchange parameters {p}: {exc}") from None
        names = {f.name for f in fields(cls)}
        if set(table) != names:
            raise ExchangeConfigError(f"{p}: expected exactly the keys {sorted(names)}")
        return cls(**table)


def price_decimals(values: np.ndarray) -> int:
    """The fewest decimals that write every recorded price exactly: the symbol's tick."""
    sample = values[np.isfinite(values)][:2000]
    for d in range(_MAX_DECIMALS + 1):
        scaled = sample * 10**d
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return d
    return _MAX_DECIMALS


def qty_decimals(price: float, step_value: float) -> int:
    """Decimals of the quantity step: the power of ten worth at most `step_value` USDT."""
    return max(0, min(_MAX_DECIMALS, math.ceil(math.log10(price / step_value))))


def fmt(x: float | int) -> str:
    """A number as Binance writes it: a plain decimal string, never an exponent.

    Called for every value of every kline row, so the common case (repr without an exponent)
    takes the short path.
    """
    if isinstance(x, int):
        return str(x)
    text = repr(float(x))
    if text.endswith(".0"):
        text = text[:-2]
        return "0" if text == "-0" else text
    if "e" in text:
        text = format(Decimal(text), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    if text in ("inf", "-inf", "nan"):
        return "0"
    return text


@dataclass(slots=True)
class SymbolSeries:
    """One symbol's candles (and funding prints) as arrays, with its Binance filters."""

    symbol: str  # ours: BTC-USDT
    market_id: str  # Binance: BTCUSDT
    base: str
    quote: str
    ts: np.ndarray
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    v: np.ndarray
    funding_ts: np.ndarray
    funding_rate: np.ndarray
    price_decimals: int
    qty_decimals: int

    @property
    def tick(self) -> float:
        return 10.0**-self.price_decimals

    @property
    def step(self) -> float:
        return 10.0**-self.qty_decimals


@dataclass(frozen=True, slots=True)
class ClosedBar:
    """A bar that just closed: the path the triggers are checked on."""

    symbol: str
    open_ms: int
    o: float
    h: float
    lo: float
    c: float


@dataclass(frozen=True, slots=True)
class FundingPrint:
    symbol: str
    time_ms: int
    rate: float


class ReplayMarket:
    """Recorded bars on one time grid; `advance()` closes the forming bar and opens the next."""

    def __init__(self, data: MarketData, config: ExchangeConfig, start_ms: int | None = None):
        self.timeframe = data.timeframe
        self.step_ms = timeframe_ms(data.timeframe)
        self.series: dict[str, SymbolSeries] = {}
        for sym, sd in data.symbols.items():
            base, quote = sym.split("-", 1)
            df = sd.candles
            closes = df["close"].to_numpy(dtype="float64")
            if sd.funding is not None and len(sd.funding):
                f_ts = sd.funding.index.to_numpy(dtype="int64")
                f_rate = sd.funding["funding_rate"].to_numpy(dtype="float64")
            else:
                f_ts, f_rate = np.empty(0, "int64"), np.empty(0, "float64")
            self.series[sym] = SymbolSeries(
                symbol=sym,
                market_id=f"{base}{quote}",
                base=base,
                quote=quote,
                ts=df.index.to_numpy(dtype="int64"),
                o=df["open"].to_numpy(dtype="float64"),
                h=df["high"].to_numpy(dtype="float64"),
                lo=df["low"].to_numpy(dtype="float64"),
                c=closes,
                v=df["volume"].to_numpy(dtype="float64"),
                funding_ts=f_ts,
                funding_rate=f_rate,
                price_decimals=price_decimals(
                    np.concatenate([closes, df["high"].to_numpy(dtype="float64")])
                ),
                qty_decimals=qty_decimals(float(np.median(closes)), config.step_value),
            )
        self.by_market_id = {s.market_id: s for s in self.series.values()}
        self.grid = np.unique(np.concatenate([s.ts for s in self.series.values()]))
        if start_ms is None:
            self.cursor = min(config.history_bars, len(self.grid) // 2)
        else:
            self.cursor = int(np.searchsorted(self.grid, start_ms, side="left"))
            if self.cursor >= len(self.grid):
                from engine.core.bars import DataError

                raise DataError("--start lies after the last recorded bar")

    # -- the clock ---------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """Simulated time: the open of the forming bar."""
        return int(self.grid[self.cursor])

    @property
    def finished(self) -> bool:
        """The last recorded bar is forming: the clock cannot move further."""
        return self.cursor >= len(self.grid) - 1

    def advance(self) -> tuple[list[ClosedBar], list[FundingPrint]]:
        """Close the forming bar; return its bars and the funding prints settled at the new open."""
        if self.finished:
            return [], []
        t_closed = self.now_ms
        self.cursor += 1
        t_new = self.now_ms
        bars, prints = [], []
        for s in self.series.values():
            i = int(np.searchsorted(s.ts, t_closed))
            if i < len(s.ts) and s.ts[i] == t_closed:
                bars.append(ClosedBar(s.symbol, t_closed, s.o[i], s.h[i], s.lo[i], s.c[i]))
            lo = int(np.searchsorted(s.funding_ts, t_closed, side="right"))
            hi = int(np.searchsorted(s.funding_ts, t_new, side="right"))
            prints.extend(
                FundingPrint(s.symbol, int(s.funding_ts[k]), float(s.funding_rate[k]))
                for k in range(lo, hi)
            )
        return bars, prints

    # -- prices ------------------------------------------------------------------------------

    def price(self, symbol: str) -> float:
        """The current price: the forming bar's open, else the last close before it."""
        s = self.series[symbol]
        now = self.now_ms
        i = int(np.searchsorted(s.ts, now, side="right")) - 1
        if i < 0:
            return float(s.o[0])
        return float(s.o[i]) if s.ts[i] == now else float(s.c[i])

    def last_funding(self, symbol: str) -> tuple[float, int]:
        """The latest funding rate printed at or before now, and the next settlement time."""
        s = self.series[symbol]
        i = int(np.searchsorted(s.funding_ts, self.now_ms, side="right"))
        rate = float(s.funding_rate[i - 1]) if i > 0 else 0.0
        nxt = int(s.funding_ts[i]) if i < len(s.funding_ts) else 0
        return rate, nxt

    def klines(
        self,
        symbol: str,
        interval_ms: int,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[list[object]]:
        """Binance kline rows up to now; the forming bar last, known only by its open.

        `interval_ms` is the data timeframe or a multiple of it (bars aggregated on the epoch grid).
        """
        s = self.series[symbol]
        m = interval_ms // self.step_ms
        now = self.now_ms
        hi = int(np.searchsorted(s.ts, now, side="right"))  # rows with open <= now
        if end_ms is not None:
            hi = min(hi, int(np.searchsorted(s.ts, end_ms, side="right")))
        if start_ms is not None:
            lo = int(np.searchsorted(s.ts, start_ms // interval_ms * interval_ms, side="left"))
            hi = min(hi, lo + (limit + 1) * m)
        else:
            lo = max(0, hi - (limit + 1) * m)
        rows: list[list[object]] = []
        ts = s.ts[lo:hi].tolist()  # plain Python numbers: indexing numpy scalars is slow
        opens, highs, lows = s.o[lo:hi].tolist(), s.h[lo:hi].tolist(), s.lo[lo:hi].tolist()
        closes, vols = s.c[lo:hi].tolist(), s.v[lo:hi].tolist()
        if ts and ts[-1] == now:  # the forming bar: only its open is known
            highs[-1] = lows[-1] = closes[-1] = opens[-1]
            vols[-1] = 0.0
        buckets: dict[int, list[float]] = {}
        order: list[int] = []
        for t, o, h, low, c, v in zip(ts, opens, highs, lows, closes, vols, strict=True):
            b = t // interval_ms * interval_ms
            agg = buckets.get(b)
            if agg is None:
                buckets[b] = [o, h, low, c, v]
                order.append(b)
            else:
                agg[1] = max(agg[1], h)
                agg[2] = min(agg[2], low)
                agg[3] = c
                agg[4] += v
        for b in order:
            if start_ms is not None and b < start_ms:
                continue
            if end_ms is not None and b > end_ms:
                continue
            o, h, low, c, v = buckets[b]
            quote_volume = v * c
            rows.append(
                [
                    b,
                    fmt(o),
                    fmt(h),
                    fmt(low),
                    fmt(c),
                    fmt(v),
                    b + interval_ms - 1,
                    fmt(quote_volume),
                    0,
                    "0",
                    "0",
                    "0",
                ]
            )
        return rows[:limit] if start_ms is not None else rows[-limit:]
