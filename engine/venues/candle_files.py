"""Load candle, funding and mark-price files into validated per-symbol frames.

Files follow the shared data naming, `<exchange>_<market>_<BASE>-<QUOTE>_<tf>.csv` (optionally
`.csv.gz` or `.parquet`; `<exchange>_` may be absent), with `_funding` / `_mark` suffixes for funding
prints and mark-price candles. Problems become `DataIssue`s instead of being repaired silently: bad
rows are dropped and reported, and gaps stay gaps (the engine simply has no bar there).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.bars import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    MARK_COLUMNS,
    DataError,
    DataIssue,
    IssueKind,
    MarketData,
    Severity,
    SymbolData,
    resolve_symbol,
    timeframe_ms,
)
from engine.resources import SAMPLE_DATA

_FILE_RE = re.compile(
    r"^(?:(?P<exchange>[a-z0-9]+)_)?(?P<market>[a-z]+)_(?P<base>[A-Za-z0-9]+)-(?P<quote>[A-Za-z0-9]+)"
    r"_(?P<tf>\d+[mhdw])(?:_(?P<kind>funding|mark))?\.(?P<ext>csv|csv\.gz|parquet)$"
)
# Market labels in file names that denote a perpetual (linear or inverse) contract.
_PERP_MARKETS = frozenset({"usdm", "coinm", "perp", "swap", "futures", "linear"})
_MAX_LISTED = 5  # how many example timestamps an issue lists
# Epoch timestamp units told apart by magnitude: (lower bound of the band, factor to ms, name).
# Candles exist from 2009 on: seconds then lie in [1e8, 1e11), milliseconds in [1e11, 1e14)...
_TS_UNITS = (
    (1e8, 1e3, "seconds"),
    (1e11, 1.0, "milliseconds"),
    (1e14, 1e-3, "microseconds"),
    (1e17, 1e-6, "nanoseconds"),
)


@dataclass(frozen=True, slots=True)
class _FileName:
    path: Path
    exchange: str
    market: str
    symbol: str
    timeframe: str
    kind: str  # "ohlcv", "funding" or "mark"


def sample_data_dir() -> Path:
    """The real-data slice shipped in the package (ohlcv/ and funding/, gzip CSV)."""
    return SAMPLE_DATA


def parse_data_file_name(path: Path) -> _FileName | None:
    """Read exchange, market, symbol, timeframe and kind from a data file name (None: not ours)."""
    m = _FILE_RE.match(path.name)
    if not m:
        return None
    return _FileName(
        path=path,
        exchange=m.group("exchange") or "",
        market=m.group("market"),
        symbol=f"{m.group('base').upper()}-{m.group('quote').upper()}",
        timeframe=m.group("tf"),
        kind=m.group("kind") or "ohlcv",
    )


def _resolve_dirs(
    ohlcv_dir: Path, funding_dir: Path | None, mark_dir: Path | None
) -> tuple[Path, Path | None, Path | None]:
    """Accept either a data root (holding ohlcv/, funding/, mark/) or the candle folder itself."""
    if not ohlcv_dir.exists():
        raise DataError(f"data folder not found: {ohlcv_dir}")
    if not ohlcv_dir.is_dir():
        raise DataError(f"not a folder: {ohlcv_dir}")
    root = ohlcv_dir
    if (ohlcv_dir / "ohlcv").is_dir():
        ohlcv_dir = ohlcv_dir / "ohlcv"
    else:
        root = ohlcv_dir.parent
    if funding_dir is None and (root / "funding").is_dir():
        funding_dir = root / "funding"
    if mark_dir is None and (root / "mark").is_dir():
        mark_dir = root / "mark"
    return ohlcv_dir, funding_dir, mark_dir


def _scan(folder: Path | None, kind: str, timeframe: str | None) -> list[_FileName]:
    if folder is None or not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.iterdir()):
        fn = parse_data_file_name(p)
        if fn is None or fn.kind != kind:
            continue
        if timeframe is not None and fn.timeframe != timeframe:
            continue
        found.append(fn)
    return found


def _market_rank(fn: _FileName) -> tuple[int, str]:
    """Prefer perpetual files over spot ones when both hold the same symbol."""
    return (0 if fn.market in _PERP_MARKETS else 1, fn.path.name)


def _read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV (plain or gzip) or Parquet file into a frame with a 'timestamp' int64 ms column."""
    if path.name.endswith(".parquet"):
        df = pd.read_parquet(path)
        if "timestamp" not in df.columns and df.index.name in ("timestamp", "date", "time"):
            df = df.reset_index()
    else:
        df = pd.read_csv(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    if "timestamp" not in df.columns:
        for alt in ("date", "time", "open_time"):
            if alt in df.columns:
                df = df.rename(columns={alt: "timestamp"})
                break
    missing = [c for c in ("timestamp", *columns) if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}")
    ts, unit = _epoch_ms(df["timestamp"])
    out = pd.DataFrame(
        {c: pd.to_numeric(df[c], errors="coerce").astype("float64") for c in columns}
    )
    out.insert(0, "timestamp", ts)
    out.attrs["timestamp_unit"] = unit
    return out


def _epoch_ms(ts: pd.Series) -> tuple[pd.Series, str]:
    """Timestamps as float ms since the epoch, and the unit they were written in.

    Dates (text or datetime) are parsed; numbers are told apart by magnitude (`_TS_UNITS`), so
    seconds are never read as 1970 milliseconds. A cell that cannot be read, or whose magnitude
    belongs to another unit than the file's, becomes NaN: that row is dropped and reported, the
    rest of the file is kept. A file whose times lie before 1973 in any unit is refused.
    """
    if pd.api.types.is_datetime64_any_dtype(ts):
        return ts.dt.tz_localize(None).dt.as_unit("ms").astype("int64").astype("float64"), "date"
    num = pd.to_numeric(ts, errors="coerce").astype("float64")
    if not pd.api.types.is_numeric_dtype(ts) and num.notna().sum() * 2 < ts.notna().sum():
        with warnings.catch_warnings():  # unparseable cells become NaT; nothing on stderr
            warnings.simplefilter("ignore")
            dt = pd.to_datetime(ts, utc=True, errors="coerce", format="mixed")
        ms = dt.dt.tz_localize(None).dt.as_unit("ms").astype("int64").astype("float64")
        return ms.where(dt.notna()), "date"
    finite = num[np.isfinite(num)]
    if finite.empty:
        return num, "milliseconds"
    magnitude = float(np.median(np.abs(finite)))
    if magnitude < _TS_UNITS[0][0]:
        raise ValueError(
            f"timestamps around {magnitude:.0f} are neither seconds nor milliseconds since "
            "1970 of a date with candles (expected e.g. 1704067200 or 1704067200000)"
        )
    k = max(j for j, (low, _, _) in enumerate(_TS_UNITS) if magnitude >= low)
    low, factor, unit = _TS_UNITS[k]
    high = _TS_UNITS[k + 1][0] if k + 1 < len(_TS_UNITS) else np.inf
    with np.errstate(invalid="ignore"):
        outside = ~((num >= low) & (num < high))
    return (num * factor).where(~outside), unit


def _check_order(
    df: pd.DataFrame, symbol: str, source: str, issues: list[DataIssue], what: str
) -> pd.DataFrame:
    """Report NaN timestamps, unsorted and duplicate rows; return sorted, unique rows."""
    bad_ts = df["timestamp"].isna()
    if bad_ts.any():
        issues.append(
            DataIssue(
                symbol,
                IssueKind.NAN,
                Severity.WARNING,
                f"{int(bad_ts.sum())} {what} row(s) without a readable timestamp dropped",
                int(bad_ts.sum()),
                source=source,
            )
        )
        df = df[~bad_ts]
    df = df.assign(timestamp=df["timestamp"].astype("int64"))
    ts = df["timestamp"].to_numpy()
    if len(ts) > 1 and np.any(np.diff(ts) < 0):
        n_back = int(np.sum(np.diff(ts) < 0))
        issues.append(
            DataIssue(
                symbol,
                IssueKind.UNSORTED,
                Severity.WARNING,
                f"{what} rows are not sorted by time ({n_back} step(s) back); sorted on load",
                n_back,
                source=source,
            )
        )
        df = df.sort_values("timestamp", kind="stable")
    dup = df["timestamp"].duplicated(keep="first")
    if dup.any():
        dup_ts = df.loc[dup, "timestamp"].to_numpy()
        issues.append(
            DataIssue(
                symbol,
                IssueKind.DUPLICATE,
                Severity.WARNING,
                f"{int(dup.sum())} duplicate {what} timestamp(s); first row kept "
                f"(e.g. {_fmt_ts_list(dup_ts)})",
                int(dup.sum()),
                int(dup_ts[0]),
                source=source,
            )
        )
        df = df[~dup.to_numpy()]
    return df


def _validate_candles(
    df: pd.DataFrame,
    symbol: str,
    source: str,
    issues: list[DataIssue],
    price_cols: Sequence[str],
    what: str,
) -> pd.DataFrame:
    """Drop and report rows with NaN or infinite values, non-positive prices or inconsistent
    high/low (1e400 reads as infinity: a bad row like NaN)."""
    df = _check_order(df, symbol, source, issues, what)
    values = df[list(price_cols)].to_numpy()
    nan_rows = ~np.isfinite(values).all(axis=1)
    if "volume" in df.columns:
        nan_rows |= ~np.isfinite(df["volume"].to_numpy())
    with np.errstate(invalid="ignore"):
        nonpos = (values <= 0).any(axis=1) & ~nan_rows
        o, h, lo, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
        bad_hl = ((h < lo) | (h < np.maximum(o, c)) | (lo > np.minimum(o, c))) & ~nan_rows & ~nonpos
        if "volume" in df.columns:
            nonpos |= (df["volume"].to_numpy() < 0) & ~nan_rows
    ts = df["timestamp"].to_numpy()
    for mask, kind, label in (
        (nan_rows, IssueKind.NAN, "with NaN or infinite values"),
        (nonpos, IssueKind.NON_POSITIVE_PRICE, "with zero/negative prices or negative volume"),
        (bad_hl, IssueKind.HIGH_BELOW_LOW, "with high < low (or open/close outside high..low)"),
    ):
        n = int(mask.sum())
        if n:
            issues.append(
                DataIssue(
                    symbol,
                    kind,
                    Severity.WARNING,
                    f"{n} {what} row(s) {label} dropped (e.g. {_fmt_ts_list(ts[mask])}); "
                    "they leave gaps",
                    n,
                    int(ts[mask][0]),
                    source=source,
                )
            )
    keep = ~(nan_rows | nonpos | bad_hl)
    return df[keep] if not keep.all() else df


def _report_unit(df: pd.DataFrame, symbol: str, source: str, issues: list[DataIssue]) -> None:
    """Say so when a file's numeric timestamps were not milliseconds (they were converted)."""
    unit = df.attrs.get("timestamp_unit", "milliseconds")
    if unit not in ("milliseconds", "date"):
        issues.append(
            DataIssue(
                symbol,
                IssueKind.TIMESTAMP_UNIT,
                Severity.INFO,
                f"timestamps of {source} are in {unit} since 1970; converted to milliseconds",
                source=source,
            )
        )


def _report_gaps(
    ts: np.ndarray, step_ms: int, symbol: str, source: str, issues: list[DataIssue], what: str
) -> None:
    if len(ts) < 2:
        return
    d = np.diff(ts)
    off_grid = d % step_ms != 0
    if off_grid.any():
        issues.append(
            DataIssue(
                symbol,
                IssueKind.TIMEFRAME_MISMATCH,
                Severity.WARNING,
                f"{int(off_grid.sum())} {what} step(s) are not a multiple of the timeframe "
                f"(e.g. after {_fmt_ts_list(ts[:-1][off_grid])})",
                int(off_grid.sum()),
                int(ts[:-1][off_grid][0]),
                source=source,
            )
        )
    gap = d > step_ms
    if gap.any():
        missing = int(((d[gap] // step_ms) - 1).sum())
        largest = int(d[gap].max() // step_ms) - 1
        starts = ts[:-1][gap] + step_ms
        issues.append(
            DataIssue(
                symbol,
                IssueKind.GAP,
                Severity.WARNING,
                f"{missing} missing {what} bar(s) in {int(gap.sum())} gap(s), largest "
                f"{largest} bar(s) (from {_fmt_ts_list(starts)}); not filled",
                missing,
                int(starts[0]),
                source=source,
            )
        )


def _fmt_ts(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def _fmt_ts_list(ts: np.ndarray) -> str:
    shown = ", ".join(_fmt_ts(t) for t in ts[:_MAX_LISTED])
    return shown + (", …" if len(ts) > _MAX_LISTED else "")


def _to_indexed(df: pd.DataFrame) -> pd.DataFrame:
    out = df.set_index("timestamp")
    out.index = out.index.astype("int64")
    out.index.name = "timestamp"
    return out


def _cut(df: pd.DataFrame, start_ms: int | None, end_ms: int | None) -> pd.DataFrame:
    if start_ms is not None:
        df = df[df["timestamp"] >= start_ms]
    if end_ms is not None:
        df = df[df["timestamp"] < end_ms]
    return df


def _pick(
    files: list[_FileName],
    symbol: str,
    issues: list[DataIssue],
    what: str,
    like: _FileName | None = None,
) -> _FileName | None:
    """The file for `symbol` (with `like`: only from the same exchange and market as `like`)."""
    chosen = [f for f in files if f.symbol == symbol]
    if like is not None:
        chosen = [f for f in chosen if (f.exchange, f.market) == (like.exchange, like.market)]
    if not chosen:
        return None
    chosen.sort(key=_market_rank)
    for other in chosen[1:]:
        issues.append(
            DataIssue(
                symbol,
                IssueKind.SHADOWED_FILE,
                Severity.INFO,
                f"{what} file {other.path.name} ignored; {chosen[0].path.name} used",
                source=other.path.name,
            )
        )
    return chosen[0]


def load_market_data(
    ohlcv_dir: str | Path,
    funding_dir: str | Path | None = None,
    symbols: Sequence[str] | None = None,
    timeframe: str = "1h",
    *,
    mark_dir: str | Path | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> MarketData:
    """Load and validate candles (+ funding, + mark) for `symbols` (all found when None).

    `ohlcv_dir` may be the candle folder or a root holding ohlcv/, funding/ and mark/. Funding and
    mark folders default to siblings of the candle folder. Rows in [start_ms, end_ms) are kept.
    Raises `DataError` only when no symbol has usable candles.
    """
    step_ms = timeframe_ms(timeframe)
    o_dir, f_dir, m_dir = _resolve_dirs(
        Path(ohlcv_dir),
        Path(funding_dir) if funding_dir is not None else None,
        Path(mark_dir) if mark_dir is not None else None,
    )
    candle_files = _scan(o_dir, "ohlcv", timeframe)
    funding_files = _scan(f_dir, "funding", None) + _scan(o_dir, "funding", None)
    mark_files = _scan(m_dir, "mark", timeframe) + _scan(o_dir, "mark", timeframe)
    available = sorted({f.symbol for f in candle_files})
    issues: list[DataIssue] = []

    if symbols is None:
        wanted = available
    else:
        wanted = []
        for name in symbols:
            sym = resolve_symbol(name, available)
            if sym not in wanted:
                wanted.append(sym)

    out: dict[str, SymbolData] = {}
    for sym in wanted:
        fn = _pick(candle_files, sym, issues, "candle")
        if fn is None:
            others = sorted({f.timeframe for f in _scan(o_dir, "ohlcv", None) if f.symbol == sym})
            hint = f" (found timeframe(s) {', '.join(others)})" if others else ""
            issues.append(
                DataIssue(
                    sym,
                    IssueKind.MISSING_SYMBOL,
                    Severity.ERROR,
                    f"no {timeframe} candle file in {o_dir}{hint}",
                )
            )
            continue
        sd = _load_symbol(fn, funding_files, mark_files, step_ms, start_ms, end_ms, issues)
        if sd is not None:
            out[sym] = sd

    if not out:
        where = f"{o_dir}"
        if not available:
            raise DataError(
                f"no {timeframe} candle files in {where} (expected names like "
                f"binance_usdm_BTC-USDT_{timeframe}.csv)"
            )
        raise DataError(
            f"no usable {timeframe} candles for {', '.join(wanted) or 'any symbol'} in "
            f"{where}: " + "; ".join(str(i) for i in issues if i.severity == "error")
        )
    return MarketData(symbols=out, timeframe=timeframe, issues=issues)


def _load_symbol(
    fn: _FileName,
    funding_files: list[_FileName],
    mark_files: list[_FileName],
    step_ms: int,
    start_ms: int | None,
    end_ms: int | None,
    issues: list[DataIssue],
) -> SymbolData | None:
    sym = fn.symbol
    try:
        raw = _read_table(fn.path, CANDLE_COLUMNS)
    except Exception as exc:  # a broken file is reported, the other symbols still run
        issues.append(
            DataIssue(
                sym,
                IssueKind.UNREADABLE,
                Severity.ERROR,
                f"cannot read {fn.path.name}: {exc}",
                source=fn.path.name,
            )
        )
        return None
    _report_unit(raw, sym, fn.path.name, issues)
    df = _validate_candles(raw, sym, fn.path.name, issues, MARK_COLUMNS, "candle")
    df = _cut(df, start_ms, end_ms)
    if df.empty:
        issues.append(
            DataIssue(
                sym,
                IssueKind.EMPTY,
                Severity.ERROR,
                f"no candles in {fn.path.name} for the requested window",
                source=fn.path.name,
            )
        )
        return None
    _report_gaps(df["timestamp"].to_numpy(), step_ms, sym, fn.path.name, issues, "candle")

    market = "perpetual" if fn.market in _PERP_MARKETS else "spot"
    if market == "spot":
        issues.append(
            DataIssue(
                sym,
                IssueKind.SPOT_AS_PERP,
                Severity.INFO,
                f"{fn.path.name} is spot data, traded as if it were a perpetual (for tests only)",
                source=fn.path.name,
            )
        )

    funding = None
    f_fn = _pick(funding_files, sym, issues, "funding", fn) if market == "perpetual" else None
    if f_fn is not None:
        try:
            f_raw = _read_table(f_fn.path, FUNDING_COLUMNS)
            f_df = _check_order(f_raw, sym, f_fn.path.name, issues, "funding")
            nan = f_df["funding_rate"].isna().to_numpy()
            if nan.any():
                issues.append(
                    DataIssue(
                        sym,
                        IssueKind.NAN,
                        Severity.WARNING,
                        f"{int(nan.sum())} funding print(s) with NaN dropped",
                        int(nan.sum()),
                        source=f_fn.path.name,
                    )
                )
                f_df = f_df[~nan]
            funding = _to_indexed(_cut(f_df, start_ms, end_ms))
        except Exception as exc:
            issues.append(
                DataIssue(
                    sym,
                    IssueKind.UNREADABLE,
                    Severity.WARNING,
                    f"cannot read {f_fn.path.name}: {exc}; run without funding",
                    source=f_fn.path.name,
                )
            )
    if funding is None:
        why = "spot data has no funding" if market == "spot" else "no funding file found"
        issues.append(
            DataIssue(
                sym,
                IssueKind.NO_FUNDING,
                Severity.INFO,
                f"{why}; funding is not settled for this symbol",
            )
        )

    mark = None
    m_fn = _pick(mark_files, sym, issues, "mark", fn) if market == "perpetual" else None
    if m_fn is not None:
        try:
            m_raw = _read_table(m_fn.path, MARK_COLUMNS)
            m_df = _validate_candles(m_raw, sym, m_fn.path.name, issues, MARK_COLUMNS, "mark")
            mark = _to_indexed(_cut(m_df, start_ms, end_ms))
        except Exception as exc:
            issues.append(
                DataIssue(
                    sym,
                    IssueKind.UNREADABLE,
                    Severity.WARNING,
                    f"cannot read {m_fn.path.name}: {exc}; bar prices used as mark",
                    source=m_fn.path.name,
                )
            )
    return SymbolData(
        symbol=sym,
        timeframe=fn.timeframe,
        market=market,
        candles=_to_indexed(df),
        funding=funding,
        source=fn.path.name,
        mark=mark,
        exchange=fn.exchange,
    )
