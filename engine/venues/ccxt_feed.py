"""Fetch candles and funding prints through ccxt into an on-disk cache that `load_market_data` reads.

The adapter at the edge: it talks to a ccxt exchange (or any object with the same methods), pages
forward with `since`, keeps only closed bars, and writes the shared data format and file names
(`<cache>/ohlcv/<exchange>_usdm_<BASE>-<QUOTE>_<tf>.csv`, `<cache>/funding/..._8h_funding.csv`).
The cache grows incrementally and every write is atomic, so a crash or an exchange error never
leaves a half-written file and never loses what was already fetched.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ccxt
import pandas as pd

from engine.core.bars import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    DataError,
    resolve_symbol,
    timeframe_ms,
)
from engine.venues.candle_files import parse_data_file_name

# Plumbing, not trading numbers: rows asked per request (Binance USDT-M serves up to 1500 candles
# and 1000 funding prints per call; exchanges that serve fewer just return shorter pages).
OHLCV_PAGE_ROWS = 1000
FUNDING_PAGE_ROWS = 1000
# Label of the funding files' period in their names (the loader ignores it; the shared data uses 8h).
FUNDING_FILE_PERIOD = "8h"
_NAME_PART = re.compile(r"^[A-Za-z0-9]+$")
# NetworkError, ExchangeError (BadSymbol, NotSupported...) and the rest of ccxt's errors
_FEED_ERRORS = (ccxt.BaseError,)

ProgressFn = Callable[[str, float], None]
"""Called with (symbol, fraction of its requested time range covered so far, 0..1)."""


class FeedError(Exception):
    """An exchange, network or symbol problem while fetching; what was fetched before is kept.

    `report` holds the symbols finished (or partly fetched) before the error.
    """

    def __init__(self, message: str, report: FetchReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(slots=True)
class SymbolFetch:
    """What one symbol's fetch added to the cache and what the cache now holds."""

    symbol: str  # our name, e.g. "BTC-USDT"
    market_symbol: str  # the exchange's unified symbol, e.g. "BTC/USDT:USDT"
    ohlcv_path: Path
    bars_new: int = 0
    bars_total: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    funding_path: Path | None = None
    funding_new: int = 0
    funding_total: int | None = None  # None: funding not fetched (disabled or unsupported)
    requests: int = 0


@dataclass(slots=True)
class FetchReport:
    """The outcome of `fetch_to_cache`, one entry per symbol in the order asked."""

    exchange: str
    timeframe: str
    cache_dir: Path
    symbols: list[SymbolFetch] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.symbols)


def fetch_to_cache(
    exchange: Any,
    symbols: Sequence[str],
    timeframe: str,
    since_ms: int,
    until_ms: int | None = None,
    cache_dir: str | Path = "data_cache",
    *,
    funding: bool = True,
    progress: ProgressFn | None = None,
) -> FetchReport:
    """Fetch closed `timeframe` candles (and funding prints) in [since_ms, until_ms) into `cache_dir`.

    Only what the cache lacks is requested: bars before its first one (when `since_ms` is earlier)
    and bars after its last one, so the cached series stays contiguous. Raises `FeedError` naming
    the symbol on an exchange or network error, after saving what was fetched for it. Requests
    are not throttled here: build the exchange with `enableRateLimit` and ccxt paces them.
    """
    try:
        step_ms = timeframe_ms(timeframe)
    except DataError as exc:
        raise FeedError(str(exc)) from None
    if until_ms is not None and until_ms <= since_ms:
        raise FeedError("the end of the range must be after its start")
    root = Path(cache_dir)
    ex_label = exchange_label(str(getattr(exchange, "id", "") or "exchange"))
    report = FetchReport(exchange=ex_label, timeframe=timeframe, cache_dir=root)
    has = getattr(exchange, "has", {}) or {}
    if has.get("fetchOHLCV") is False:
        raise FeedError(f"{ex_label} does not serve candles (fetchOHLCV)")
    with_funding = funding and has.get("fetchFundingRateHistory") is not False
    markets = _markets(exchange)
    chosen = [find_market(markets, name, ex_label) for name in symbols]  # all names first
    for market in chosen:
        item = _fetch_symbol(
            exchange,
            market,
            ex_label,
            timeframe,
            step_ms,
            since_ms,
            until_ms,
            root,
            with_funding,
            progress,
            report,
        )
        report.symbols.append(item)
    return report


def exchange_label(exchange_id: str) -> str:
    """The exchange part of a file name: ccxt's id without its market suffix ("binanceusdm" → "binance")."""
    label = re.sub(r"[^a-z0-9]", "", exchange_id.lower())
    for suffix in ("usdm", "coinm"):
        if label.endswith(suffix) and len(label) > len(suffix):
            return label[: -len(suffix)]
    return label


def market_label(market: Mapping[str, Any]) -> str:
    """The market part of a file name, as `engine.venues.candle_files` reads it: usdm, coinm or spot."""
    if market.get("swap") or market.get("future") or market.get("contract"):
        return "coinm" if market.get("inverse") else "usdm"
    return "spot"


def find_market(markets: Mapping[str, Any], name: str, exchange: str = "") -> Mapping[str, Any]:
    """The exchange market for "BTC", "BTC-USDT", "BTCUSDT" or "BTC/USDT:USDT".

    A unified ccxt symbol is taken as is; other names match base and quote, preferring the
    perpetual linear contract over dated futures and spot.
    """
    if name in markets:
        return markets[name]
    try:
        base, quote = resolve_symbol(name).split("-", 1)
    except DataError as exc:
        raise FeedError(str(exc)) from None
    found = [
        m
        for m in markets.values()
        if str(m.get("base", "")).upper() == base and str(m.get("quote", "")).upper() == quote
    ]
    if not found:
        where = f" on {exchange}" if exchange else ""
        raise FeedError(f"{name}: no {base}/{quote} market{where}")

    def preference(m: Mapping[str, Any]) -> tuple[bool, bool, str]:
        linear_perpetual = bool(m.get("swap")) and not m.get("expiry") and m.get("linear", True)
        return (not linear_perpetual, not m.get("swap"), str(m["symbol"]))

    return min(found, key=preference)


def cache_paths(
    cache_dir: str | Path, exchange: str, market: Mapping[str, Any], timeframe: str
) -> tuple[Path, Path]:
    """Candle and funding file paths for one market, named as `engine.venues.candle_files` parses them."""
    base, quote = str(market.get("base", "")), str(market.get("quote", ""))
    if not (_NAME_PART.match(base) and _NAME_PART.match(quote)):
        raise FeedError(f"{market.get('symbol')}: base/quote cannot be used in a file name")
    stem = f"{exchange}_{market_label(market)}_{base.upper()}-{quote.upper()}"
    root = Path(cache_dir)
    ohlcv = root / "ohlcv" / f"{stem}_{timeframe}.csv"
    fund = root / "funding" / f"{stem}_{FUNDING_FILE_PERIOD}_funding.csv"
    for path in (ohlcv, fund):  # the loader must recognise what we write
        if parse_data_file_name(path) is None:
            raise FeedError(f"{market.get('symbol')}: cannot name a cache file {path.name}")
    return ohlcv, fund


def _markets(exchange: Any) -> Mapping[str, Any]:
    markets = getattr(exchange, "markets", None)
    if markets:
        return markets
    try:
        loaded = exchange.load_markets()
    except _FEED_ERRORS as exc:
        raise FeedError(
            f"cannot load the markets of {getattr(exchange, 'id', '?')}: {_one_line(exc)}"
        ) from None
    return loaded or getattr(exchange, "markets", None) or {}


def _now_ms(exchange: Any) -> int:
    """The exchange's clock when it has one (ccxt: `milliseconds()`), else this machine's."""
    clock = getattr(exchange, "milliseconds", None)
    return int(clock()) if callable(clock) else int(time.time() * 1000)


def _fetch_symbol(
    exchange: Any,
    market: Mapping[str, Any],
    ex_label: str,
    timeframe: str,
    step_ms: int,
    since_ms: int,
    until_ms: int | None,
    root: Path,
    with_funding: bool,
    progress: ProgressFn | None,
    report: FetchReport,
) -> SymbolFetch:
    unified = str(market["symbol"])
    ohlcv_path, funding_path = cache_paths(root, ex_label, market, timeframe)
    sym = parse_data_file_name(ohlcv_path).symbol  # type: ignore[union-attr]
    item = SymbolFetch(symbol=sym, market_symbol=unified, ohlcv_path=ohlcv_path)
    now = _now_ms(exchange)
    # a bar is closed once open + step <= now: request open times below end_ms
    end_ms = min(until_ms, now - step_ms + 1) if until_ms is not None else now - step_ms + 1
    span = max(end_ms - since_ms, 1)

    def tell(cursor: int) -> None:
        if progress is not None:
            progress(sym, min(max((cursor - since_ms) / span, 0.0), 1.0))

    def get_candles(start: int) -> list[list[float]]:
        item.requests += 1
        return exchange.fetch_ohlcv(unified, timeframe, start, OHLCV_PAGE_ROWS)

    def get_funding(start: int) -> list[list[float]]:
        item.requests += 1
        rows = exchange.fetch_funding_rate_history(unified, start, FUNDING_PAGE_ROWS)
        return [[r["timestamp"], r["fundingRate"]] for r in rows if r.get("timestamp") is not None]

    cached = _read_cache(ohlcv_path, CANDLE_COLUMNS)
    fetched: list[list[float]] = []
    try:
        for start, end in _missing_ranges(cached, since_ms, end_ms, step_ms):
            _page(get_candles, start, end, step_ms, fetched, tell)
    except _FEED_ERRORS as exc:
        _save(ohlcv_path, cached, fetched, CANDLE_COLUMNS, item, candles=True)
        report.symbols.append(item)
        raise FeedError(f"{unified}: {_one_line(exc)} (kept what was fetched)", report) from None
    _save(ohlcv_path, cached, fetched, CANDLE_COLUMNS, item, candles=True)
    tell(end_ms)

    if with_funding and market_label(market) != "spot":
        item.funding_path = funding_path
        f_cached = _read_cache(funding_path, FUNDING_COLUMNS)
        funding_end = until_ms if until_ms is not None else now + 1
        f_rows: list[list[float]] = []
        try:
            # prints are not on a bar grid: a 1 ms step pages past the last print seen
            for start, end in _missing_ranges(f_cached, since_ms, funding_end, 1):
                _page(get_funding, start, end, 1, f_rows, None)
        except _FEED_ERRORS as exc:
            _save(funding_path, f_cached, f_rows, FUNDING_COLUMNS, item, candles=False)
            report.symbols.append(item)
            raise FeedError(
                f"{unified} funding: {_one_line(exc)} (kept what was fetched)", report
            ) from None
        _save(funding_path, f_cached, f_rows, FUNDING_COLUMNS, item, candles=False)
    return item


def _missing_ranges(
    cached: pd.DataFrame, since_ms: int, end_ms: int, step: int
) -> list[tuple[int, int]]:
    """[start, end) ranges to request: before the cache's first row and after its last one."""
    if cached.empty:
        return [(since_ms, end_ms)] if since_ms < end_ms else []
    first, last = int(cached["timestamp"].iloc[0]), int(cached["timestamp"].iloc[-1])
    ranges = []
    if since_ms < first:
        ranges.append((since_ms, min(first, end_ms)))
    if last + step < end_ms:
        ranges.append((last + step, end_ms))
    return ranges


def _page(
    get: Callable[[int], list[list[float]]],
    start: int,
    end: int,
    step: int,
    out: list[list[float]],
    tell: Callable[[int], None] | None,
) -> None:
    """Request pages forward from `start` until `end` or until a page brings no new row."""
    cursor = start
    while cursor < end:
        rows = [r for r in get(cursor) if r and r[0] is not None and int(r[0]) >= cursor]
        if not rows:
            return
        newest = max(int(r[0]) for r in rows)
        out.extend(r for r in rows if int(r[0]) < end)
        cursor = newest + step
        if tell is not None:
            tell(cursor)


def _read_cache(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    cols = ["timestamp", *columns]
    if not path.exists():
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "timestamp" else "float64") for c in cols}
        )
    try:
        df = pd.read_csv(path)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(missing)}")
        df = df[cols].dropna(subset=["timestamp"])
        df["timestamp"] = df["timestamp"].astype("int64")
    except Exception as exc:
        raise FeedError(
            f"cannot read cache file {path}: {_one_line(exc)} (delete it to fetch it again)"
        ) from None
    return df.sort_values("timestamp").drop_duplicates("timestamp", keep="last")


def _save(
    path: Path,
    cached: pd.DataFrame,
    rows: list[list[float]],
    columns: Sequence[str],
    item: SymbolFetch,
    *,
    candles: bool,
) -> None:
    """Merge new rows into the cached ones (new wins on equal timestamps) and replace the file."""
    cols = ["timestamp", *columns]
    new = pd.DataFrame([list(r[: len(cols)]) for r in rows], columns=cols)
    if not new.empty:
        new["timestamp"] = new["timestamp"].astype("int64")
        new[list(columns)] = new[list(columns)].apply(pd.to_numeric, errors="coerce")
    before = set(cached["timestamp"].tolist())
    merged = pd.concat([cached, new], ignore_index=True) if not new.empty else cached
    merged = merged.drop_duplicates("timestamp", keep="last").sort_values("timestamp")
    added = int((~merged["timestamp"].isin(before)).sum())
    if candles:
        item.bars_new += added
        item.bars_total = len(merged)
        if len(merged):
            item.first_ts = int(merged["timestamp"].iloc[0])
            item.last_ts = int(merged["timestamp"].iloc[-1])
    else:
        item.funding_new += added
        item.funding_total = len(merged)
    if added or (not path.exists() and len(merged)):
        _write_atomic(path, merged)


def _write_atomic(path: Path, df: pd.DataFrame) -> None:
    """Write to a temporary file in the same folder, then rename it over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            df.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
