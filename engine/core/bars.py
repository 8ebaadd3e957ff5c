"""Bars as the core sees them: validated per-symbol data, data issues, and all symbols on one grid.

Venues fill these (candle files in engine/venues/candle_files.py, ccxt in live mode); the loop reads
`AlignedBars` and never touches a file or an exchange.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")


MARK_COLUMNS = ("open", "high", "low", "close")


FUNDING_COLUMNS = ("funding_rate",)


_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


_KNOWN_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "PERP", "BTC", "ETH")


_DEFAULT_QUOTE = "USDT"


class DataError(Exception):
    """Raised when no usable market data is left (the user must fix the data path or symbols)."""


class IssueKind(StrEnum):
    GAP = "gap"
    UNSORTED = "unsorted"
    DUPLICATE = "duplicate"
    NAN = "nan"
    NON_POSITIVE_PRICE = "non_positive_price"
    HIGH_BELOW_LOW = "high_below_low"
    MISSING_SYMBOL = "missing_symbol"
    EMPTY = "empty"
    UNREADABLE = "unreadable"
    TIMEFRAME_MISMATCH = "timeframe_mismatch"
    NO_FUNDING = "no_funding"
    NO_MARK = "no_mark"
    SPOT_AS_PERP = "spot_as_perpetual"
    SHADOWED_FILE = "shadowed_file"
    TIMESTAMP_UNIT = "timestamp_unit"  # epoch seconds (or us, ns) converted to milliseconds


class Severity(StrEnum):
    ERROR = "error"  # the symbol (or file) cannot be used
    WARNING = "warning"  # rows were dropped or bars are missing
    INFO = "info"  # a documented simplification (no funding file, spot traded as perpetual)


@dataclass(frozen=True, slots=True)
class DataIssue:
    """One problem found in the input data, shown in the backtest report."""

    symbol: str
    kind: IssueKind
    severity: Severity
    detail: str
    count: int = 1
    first_ts: int | None = None
    source: str = ""

    def __str__(self) -> str:
        return f"{self.severity} {self.symbol}: {self.kind} — {self.detail}"


@dataclass(slots=True)
class SymbolData:
    """Validated candles (and funding / mark prices when present) of one symbol."""

    symbol: str
    timeframe: str
    market: str  # "perpetual" or "spot"
    candles: pd.DataFrame  # index "timestamp" (int64 ms open time); float64 open..volume
    funding: pd.DataFrame | None  # index "timestamp" (ms settlement time); float64 funding_rate
    source: str
    mark: pd.DataFrame | None = None  # index "timestamp"; float64 open..close (mark-price candles)
    exchange: str = ""

    @property
    def is_spot(self) -> bool:
        return self.market == "spot"


@dataclass(slots=True)
class MarketData:
    """Everything the engine reads: per-symbol data plus every issue found while loading it."""

    symbols: dict[str, SymbolData]
    timeframe: str
    issues: list[DataIssue] = field(default_factory=list)

    @property
    def has_funding(self) -> bool:
        return any(sd.funding is not None for sd in self.symbols.values())

    @property
    def has_mark(self) -> bool:
        return any(sd.mark is not None for sd in self.symbols.values())

    @property
    def n_bars(self) -> int:
        return sum(len(sd.candles) for sd in self.symbols.values())

    def issues_for(self, symbol: str) -> list[DataIssue]:
        return [i for i in self.issues if i.symbol == symbol]


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds in a timeframe such as "1m", "15m", "1h", "8h", "1d"."""
    m = re.fullmatch(r"(\d+)([mhdw])", timeframe.strip())
    if not m or int(m.group(1)) <= 0:
        raise DataError(f"unknown timeframe {timeframe!r} (use e.g. 5m, 1h, 4h, 1d)")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def resolve_symbol(name: str, available: Iterable[str] | None = None) -> str:
    """Map "btc", "BTCUSDT", "BTC/USDT:USDT", "btc-usdt" to the canonical "BTC-USDT".

    With `available`, a bare base ("sol") resolves to the one available symbol with that base.
    """
    raw = name.strip().upper()
    if not raw:
        raise DataError("empty symbol name")
    raw = raw.split(":", 1)[0].replace("/", "-").replace("_", "-")
    if "-" in raw:
        base, quote = raw.split("-", 1)
        return f"{base}-{quote}"
    for quote in _KNOWN_QUOTES:
        if raw.endswith(quote) and len(raw) > len(quote):
            return f"{raw[: -len(quote)]}-{quote}"
    if available is not None:
        matches = sorted(s for s in available if s.split("-", 1)[0] == raw)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            preferred = f"{raw}-{_DEFAULT_QUOTE}"
            if preferred in matches:
                return preferred
            raise DataError(f"symbol {name!r} is ambiguous: {', '.join(matches)}")
    return f"{raw}-{_DEFAULT_QUOTE}"


@dataclass(slots=True)
class AlignedBars:
    """All symbols on one time grid (the union of their bar open times), for the event loop.

    Matrices are (n_steps, n_symbols) float64 with NaN where a symbol has no bar (a gap or before
    its first bar): gaps stay gaps. `known[i, j]` counts the bars of symbol j with an open time at or
    before step i, so `series[sym].head(known[i, j])` is exactly what is known after step i closes.
    `funding[i, j]` is the rate of a print settled during step i (NaN: none); `mark_*` hold
    mark-price candles where a mark file exists, NaN elsewhere (`has_mark[j]` says which).
    """

    symbols: list[str]
    timeframe: str
    step_ms: int
    ts: np.ndarray  # int64 open times of the grid steps
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    known: np.ndarray  # int64
    funding: np.ndarray
    funding_ts: np.ndarray  # int64 settlement time of the print in funding[i, j] (0 where none)
    mark_open: np.ndarray
    mark_high: np.ndarray
    mark_low: np.ndarray
    mark_close: np.ndarray
    has_funding: np.ndarray  # bool per symbol
    has_mark: np.ndarray  # bool per symbol
    funding_steps: np.ndarray  # bool per step: some symbol has a funding print in it
    series: dict[str, tuple[np.ndarray, ...]]  # symbol -> (ts, open, high, low, close, volume)

    @property
    def n_steps(self) -> int:
        return len(self.ts)

    def index(self, symbol: str) -> int:
        return self.symbols.index(symbol)


def align(md: MarketData) -> AlignedBars:
    """Put every symbol of `md` on the union grid of bar open times (no filling)."""
    symbols = list(md.symbols)
    step_ms = timeframe_ms(md.timeframe)
    grid = np.unique(np.concatenate([sd.candles.index.to_numpy() for sd in md.symbols.values()]))
    n, m = len(grid), len(symbols)

    def nan_matrix() -> np.ndarray:
        return np.full((n, m), np.nan)

    o, h, lo, c, v = (nan_matrix() for _ in range(5))
    any_mark = any(sd.mark is not None and len(sd.mark) for sd in md.symbols.values())
    if any_mark:
        mo, mh, ml, mc = (nan_matrix() for _ in range(4))
    else:  # no mark file at all: one read-only NaN view, no memory
        mo = mh = ml = mc = np.broadcast_to(np.float64(np.nan), (n, m))
    fund = nan_matrix()
    fund_ts = np.zeros((n, m), dtype=np.int64)
    known = np.zeros((n, m), dtype=np.int64)
    has_f = np.zeros(m, dtype=bool)
    has_m = np.zeros(m, dtype=bool)
    series: dict[str, tuple[np.ndarray, ...]] = {}
    for j, sym in enumerate(symbols):
        sd = md.symbols[sym]
        ts = sd.candles.index.to_numpy().astype(np.int64)
        rows = np.searchsorted(grid, ts)
        cols = [
            np.ascontiguousarray(sd.candles[k].to_numpy(dtype=np.float64)) for k in CANDLE_COLUMNS
        ]
        for mat, col in zip((o, h, lo, c, v), cols, strict=True):
            mat[rows, j] = col
        series[sym] = (ts, *cols)
        known[:, j] = np.searchsorted(ts, grid, side="right")
        if sd.funding is not None and len(sd.funding):
            f_ts = sd.funding.index.to_numpy().astype(np.int64)
            # the step whose [open, open + step) holds the settlement time
            step = np.searchsorted(grid, f_ts, side="right") - 1
            inside = (step >= 0) & (f_ts < grid[np.clip(step, 0, n - 1)] + step_ms)
            fund[step[inside], j] = sd.funding["funding_rate"].to_numpy()[inside]
            fund_ts[step[inside], j] = f_ts[inside]
            has_f[j] = True
        if sd.mark is not None and len(sd.mark):
            m_ts = sd.mark.index.to_numpy().astype(np.int64)
            pos = np.searchsorted(grid, m_ts)
            ok = (pos < n) & (grid[np.clip(pos, 0, n - 1)] == m_ts)
            for mat, k in zip((mo, mh, ml, mc), MARK_COLUMNS, strict=True):
                mat[pos[ok], j] = sd.mark[k].to_numpy()[ok]
            has_m[j] = True
    return AlignedBars(
        symbols=symbols,
        timeframe=md.timeframe,
        step_ms=step_ms,
        ts=grid.astype(np.int64),
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        known=known,
        funding=fund,
        funding_ts=fund_ts,
        mark_open=mo,
        mark_high=mh,
        mark_low=ml,
        mark_close=mc,
        has_funding=has_f,
        has_mark=has_m,
        funding_steps=np.isfinite(fund).any(axis=1),
        series=series,
    )
