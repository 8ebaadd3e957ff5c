"""Bars as the core sees them: validated per-symbol data, data issues, and all symbols on one grid.

Venues fill these (candle files in engine/venues/candle_files.py, ccxt in live mode); the loop reads
`AlignedBars` and never touches a file or an exchange.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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


class SymbolColumns:
    """One candle field of every symbol as an (n_steps, n_symbols) matrix, read from the
    per-symbol arrays (no dense copy: ~8 bytes per symbol-bar saved per field): NaN where a
    symbol has no bar at a step (a gap, or before its first bar).

    Symbol j has a bar at step i when its count of known bars grows at i; that bar is its
    `known[i, j] - 1`-th. Reads of one cell (`[i, j]`, `item(i, j)`) and of one row (`[i]`) are
    cheap; any other index, and `np.asarray`, build the dense matrix (tests, small data)."""

    __slots__ = ("_cols", "_known", "shape")

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, cols: list[np.ndarray], known: np.ndarray) -> None:
        self._cols = cols
        self._known = known
        self.shape = known.shape

    def __len__(self) -> int:
        return self.shape[0]

    def item(self, i: int, j: int) -> float:
        if i < 0:
            i += self.shape[0]
        known = self._known
        k = known.item(i, j) - 1
        if k < 0 or (i > 0 and known.item(i - 1, j) > k):
            return math.nan
        return self._cols[j].item(k)

    def row(self, i: int) -> np.ndarray:
        return np.array([self.item(i, j) for j in range(self.shape[1])])

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple) and len(key) == 2 and all(_is_int(k) for k in key):
            return self.item(int(key[0]), int(key[1]))
        if _is_int(key):
            return self.row(int(key))
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        n, m = self.shape
        out = np.full((n, m), np.nan)
        for j, col in enumerate(self._cols):
            steps = bar_steps(self._known[:, j])
            out[steps, j] = col[: len(steps)]
        return out if dtype is None else out.astype(dtype)


class StepRows:
    """An (n_steps, n_symbols) matrix equal to `fill` except at a few steps (funding prints:
    one step in eight of an hourly grid), stored as those steps' rows only."""

    __slots__ = ("_at", "_rows", "_fill_row", "shape", "dtype")

    ndim = 2

    def __init__(self, steps: np.ndarray, rows: np.ndarray, n_steps: int, fill: Any) -> None:
        self._at = {int(s): k for k, s in enumerate(steps.tolist())}
        self._rows = rows
        self.shape = (n_steps, rows.shape[1])
        self.dtype = rows.dtype
        fill_row = np.full(rows.shape[1], fill, dtype=rows.dtype)
        fill_row.flags.writeable = False
        self._fill_row = fill_row

    def __len__(self) -> int:
        return self.shape[0]

    def row(self, i: int) -> np.ndarray:
        if i < 0:
            i += self.shape[0]
        k = self._at.get(i)
        return self._fill_row if k is None else self._rows[k]

    def item(self, i: int, j: int) -> Any:
        return self.row(i).item(j)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple) and len(key) == 2 and all(_is_int(k) for k in key):
            return self.row(int(key[0]))[int(key[1])]
        if _is_int(key):
            return self.row(int(key))
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.tile(self._fill_row, (self.shape[0], 1))
        for i, k in self._at.items():
            out[i] = self._rows[k]
        return out if dtype is None else out.astype(dtype)


def _is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def bar_steps(known_col: np.ndarray) -> np.ndarray:
    """The grid steps at which a symbol has a bar (its known-bar count grows), in bar order."""
    return np.flatnonzero(np.diff(known_col, prepend=0) > 0)


Matrix = np.ndarray | SymbolColumns | StepRows
_NAN4 = (math.nan, math.nan, math.nan, math.nan)


@dataclass(slots=True)
class AlignedBars:
    """All symbols on one time grid (the union of their bar open times), for the event loop.

    Matrices are (n_steps, n_symbols) float64 with NaN where a symbol has no bar (a gap or before
    its first bar): gaps stay gaps. `known[i, j]` counts the bars of symbol j with an open time at or
    before step i, so `series[sym].head(known[i, j])` is exactly what is known after step i closes.
    `funding[i, j]` is the rate of a print settled during step i (NaN: none); `mark_*` hold
    mark-price candles where a mark file exists, NaN elsewhere (`has_mark[j]` says which).

    `align` builds the candle matrices as `SymbolColumns` over the per-symbol series and the
    funding ones as `StepRows` (memory linear in the data, no dense copies); ndarrays work too.
    Read a cell with `.item(i, j)` or `[i, j]`, a row with `[i]`.
    """

    symbols: list[str]
    timeframe: str
    step_ms: int
    ts: np.ndarray  # int64 open times of the grid steps
    open: Matrix
    high: Matrix
    low: Matrix
    close: Matrix
    volume: Matrix
    known: np.ndarray  # int32 (or int64)
    funding: Matrix
    funding_ts: Matrix  # int64 settlement time of the print in funding[i, j] (0 where none)
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

    def candle(self, i: int, j: int) -> tuple[float, float, float, float]:
        """(open, high, low, close) of symbol j at step i, NaN where it has no bar."""
        o, h, lo, c = self.open, self.high, self.low, self.close
        if type(o) is type(h) is type(lo) is type(c) is SymbolColumns:
            known = self.known  # the bar's index in the symbol's series, found once
            k = known.item(i, j) - 1
            if k < 0 or (i > 0 and known.item(i - 1, j) > k):
                return _NAN4
            return (
                o._cols[j].item(k),  # type: ignore[union-attr]
                h._cols[j].item(k),  # type: ignore[union-attr]
                lo._cols[j].item(k),  # type: ignore[union-attr]
                c._cols[j].item(k),  # type: ignore[union-attr]
            )
        return o.item(i, j), h.item(i, j), lo.item(i, j), c.item(i, j)

    def present(self) -> np.ndarray:
        """Per step, how many symbols have a bar with a finite close in it."""
        close = self.close
        if isinstance(close, np.ndarray):
            return np.count_nonzero(np.isfinite(close), axis=1)
        out = np.zeros(self.n_steps, dtype=np.int64)
        for j, sym in enumerate(self.symbols):
            steps = bar_steps(self.known[:, j])
            finite = np.isfinite(self.series[sym][4][: len(steps)])
            np.add.at(out, steps[finite], 1)
        return out


def align(md: MarketData) -> AlignedBars:
    """Put every symbol of `md` on the union grid of bar open times (no filling)."""
    symbols = list(md.symbols)
    step_ms = timeframe_ms(md.timeframe)
    grid = np.unique(np.concatenate([sd.candles.index.to_numpy() for sd in md.symbols.values()]))
    n, m = len(grid), len(symbols)
    any_mark = any(sd.mark is not None and len(sd.mark) for sd in md.symbols.values())
    if any_mark:
        mo, mh, ml, mc = (np.full((n, m), np.nan) for _ in range(4))
    else:  # no mark file at all: one read-only NaN view, no memory
        mo = mh = ml = mc = np.broadcast_to(np.float64(np.nan), (n, m))
    # funding prints: (step, symbol, settlement time, rate), kept sparse
    f_steps: list[np.ndarray] = []
    f_cols: list[np.ndarray] = []
    f_times: list[np.ndarray] = []
    f_rates: list[np.ndarray] = []
    known = np.zeros((n, m), dtype=np.int32 if n < 2**31 else np.int64)
    has_f = np.zeros(m, dtype=bool)
    has_m = np.zeros(m, dtype=bool)
    series: dict[str, tuple[np.ndarray, ...]] = {}
    for j, sym in enumerate(symbols):
        sd = md.symbols[sym]
        ts = np.asarray(sd.candles.index.to_numpy(), dtype=np.int64)  # no copy when int64
        cols = [
            np.ascontiguousarray(sd.candles[k].to_numpy(dtype=np.float64)) for k in CANDLE_COLUMNS
        ]
        series[sym] = (ts, *cols)
        known[:, j] = np.searchsorted(ts, grid, side="right")
        if sd.funding is not None and len(sd.funding):
            f_ts = sd.funding.index.to_numpy().astype(np.int64)
            # the step whose [open, open + step) holds the settlement time
            step = np.searchsorted(grid, f_ts, side="right") - 1
            inside = (step >= 0) & (f_ts < grid[np.clip(step, 0, n - 1)] + step_ms)
            f_steps.append(step[inside])
            f_cols.append(np.full(int(inside.sum()), j))
            f_times.append(f_ts[inside])
            f_rates.append(sd.funding["funding_rate"].to_numpy()[inside])
            has_f[j] = True
        if sd.mark is not None and len(sd.mark):
            m_ts = sd.mark.index.to_numpy().astype(np.int64)
            pos = np.searchsorted(grid, m_ts)
            ok = (pos < n) & (grid[np.clip(pos, 0, n - 1)] == m_ts)
            for mat, k in zip((mo, mh, ml, mc), MARK_COLUMNS, strict=True):
                mat[pos[ok], j] = sd.mark[k].to_numpy()[ok]
            has_m[j] = True
    if f_steps:
        steps_all = np.concatenate(f_steps)
        cols_all, times_all = np.concatenate(f_cols), np.concatenate(f_times)
        rates_all = np.concatenate(f_rates)
    else:
        steps_all = cols_all = times_all = np.zeros(0, dtype=np.int64)
        rates_all = np.zeros(0)
    f_at = np.unique(steps_all)
    rows = np.searchsorted(f_at, steps_all)
    rate_rows = np.full((len(f_at), m), np.nan)
    time_rows = np.zeros((len(f_at), m), dtype=np.int64)
    # in symbol order, later prints of a step overwrite earlier ones (as dense assignment did)
    rate_rows[rows, cols_all] = rates_all
    time_rows[rows, cols_all] = times_all
    funding_steps = np.zeros(n, dtype=bool)
    funding_steps[f_at[np.isfinite(rate_rows).any(axis=1)]] = True
    by_field = list(zip(*(series[s][1:] for s in symbols), strict=True)) if m else [[]] * 5
    o, h, lo, c, v = (SymbolColumns(list(cols), known) for cols in by_field)
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
        funding=StepRows(f_at, rate_rows, n, np.nan),
        funding_ts=StepRows(f_at, time_rows, n, 0),
        mark_open=mo,
        mark_high=mh,
        mark_low=ml,
        mark_close=mc,
        has_funding=has_f,
        has_mark=has_m,
        funding_steps=funding_steps,
        series=series,
    )
