"""engine.venues.candle_files: file naming, formats, validation into DataIssues (never repaired silently), align."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.core.bars import DataError, IssueKind, Severity, align, resolve_symbol, timeframe_ms
from engine.venues.candle_files import load_market_data, parse_data_file_name, sample_data_dir

H = 3_600_000
T0 = 1_746_057_600_000


def _candles(n: int, start: int = T0, price: float = 100.0) -> pd.DataFrame:
    ts = start + H * np.arange(n)
    close = price + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(n, 10.0),
        }
    )


def _write(folder: Path, name: str, df: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    if name.endswith(".parquet"):
        df.to_parquet(p, index=False)
    else:
        df.to_csv(p, index=False)
    return p


def _kinds(md, symbol: str) -> set[IssueKind]:
    return {i.kind for i in md.issues_for(symbol)}


def test_sample_data_ships_six_symbols_with_funding() -> None:
    md = load_market_data(sample_data_dir())
    assert sorted(md.symbols) == [
        "BTC-USDT", "DOGE-USDT", "ETH-USDT", "LINK-USDT", "SOL-USDT", "XRP-USDT",
    ]  # fmt: skip
    for sd in md.symbols.values():
        assert sd.market == "perpetual"
        assert len(sd.candles) == 9120 and sd.funding is not None and len(sd.funding) == 1140
        assert sd.candles.index.dtype == np.int64
        assert list(sd.candles.columns) == ["open", "high", "low", "close", "volume"]
    assert md.has_funding and not md.has_mark
    assert not [i for i in md.issues if i.severity != Severity.INFO]
    size = sum(p.stat().st_size for p in sample_data_dir().rglob("*") if p.is_file())
    assert size < 3_000_000


def test_sample_rows_are_the_shared_rows_unchanged() -> None:
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "ohlcv"
    src = shared / "binance_usdm_BTC-USDT_1h.csv"
    if not src.is_file():
        pytest.skip("../shared/data is not present on this machine")
    packed = sample_data_dir() / "ohlcv" / "binance_usdm_BTC-USDT_1h.csv.gz"
    assert gzip.decompress(packed.read_bytes()) == src.read_bytes()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("btc", "BTC-USDT"),
        ("BTCUSDT", "BTC-USDT"),
        ("BTC/USDT:USDT", "BTC-USDT"),
        ("btc-usdt", "BTC-USDT"),
        ("1000PEPE", "1000PEPE-USDT"),
        ("ETH/BTC", "ETH-BTC"),
    ],
)
def test_resolve_symbol(name: str, expected: str) -> None:
    assert resolve_symbol(name) == expected


def test_resolve_bare_base_uses_available_symbols() -> None:
    assert resolve_symbol("ada", ["ADA-BTC"]) == "ADA-BTC"
    with pytest.raises(DataError, match="ambiguous"):
        resolve_symbol("ada", ["ADA-BTC", "ADA-ETH"])


def test_file_names() -> None:
    fn = parse_data_file_name(Path("binance_usdm_BTC-USDT_8h_funding.csv"))
    assert fn is not None and (fn.exchange, fn.market, fn.symbol, fn.timeframe, fn.kind) == (
        "binance", "usdm", "BTC-USDT", "8h", "funding",
    )  # fmt: skip
    fn = parse_data_file_name(Path("perp_XRP-USDT_1h_mark.csv.gz"))
    assert fn is not None and (fn.exchange, fn.market, fn.kind) == ("", "perp", "mark")
    assert parse_data_file_name(Path("README.md")) is None
    assert timeframe_ms("15m") == 15 * 60_000 and timeframe_ms("1d") == 24 * H
    with pytest.raises(DataError):
        timeframe_ms("hourly")


def test_csv_gzip_and_parquet_read_alike(tmp_path: Path) -> None:
    df = _candles(5)
    _write(tmp_path / "a", "binance_usdm_BTC-USDT_1h.csv", df)
    _write(tmp_path / "b", "binance_usdm_BTC-USDT_1h.parquet", df)
    gz = tmp_path / "c" / "binance_usdm_BTC-USDT_1h.csv.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    frames = [load_market_data(tmp_path / d).symbols["BTC-USDT"].candles for d in "abc"]
    for f in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], f)


def test_problems_become_issues_and_bad_rows_are_dropped(tmp_path: Path) -> None:
    df = _candles(10)
    df.loc[2, "close"] = np.nan  # NaN
    df.loc[4, "low"] = -1.0  # negative price
    df.loc[6, "high"] = df.loc[6, "low"] - 1  # high < low
    df = pd.concat([df, df.iloc[[8]]])  # duplicate
    df = df.iloc[[1, 0, *range(2, len(df))]]  # unsorted
    df = df[df["timestamp"] != T0 + 9 * H]  # bar 9 missing
    df = pd.concat([df, _candles(3, start=T0 + 12 * H)])  # bars 10 and 11 missing too
    _write(tmp_path, "binance_usdm_BTC-USDT_1h.csv", df)
    md = load_market_data(tmp_path)
    kinds = _kinds(md, "BTC-USDT")
    assert {
        IssueKind.NAN, IssueKind.NON_POSITIVE_PRICE, IssueKind.HIGH_BELOW_LOW,
        IssueKind.DUPLICATE, IssueKind.UNSORTED, IssueKind.GAP,
    } <= kinds  # fmt: skip
    c = md.symbols["BTC-USDT"].candles
    assert c.index.is_monotonic_increasing and c.index.is_unique
    # dropped rows stay missing: nothing is filled
    for dropped in (2, 4, 6, 9, 10, 11):
        assert T0 + dropped * H not in c.index
    gap = next(i for i in md.issues if i.kind == IssueKind.GAP)
    assert gap.count == 6 and "not filled" in gap.detail


def test_missing_symbol_is_reported_and_nothing_usable_raises(tmp_path: Path) -> None:
    _write(tmp_path, "binance_usdm_BTC-USDT_1h.csv", _candles(5))
    md = load_market_data(tmp_path, symbols=["btc", "doge"])
    assert list(md.symbols) == ["BTC-USDT"]
    missing = [i for i in md.issues if i.kind == IssueKind.MISSING_SYMBOL]
    assert [(i.symbol, i.severity) for i in missing] == [("DOGE-USDT", Severity.ERROR)]
    with pytest.raises(DataError, match="no usable 1h candles"):
        load_market_data(tmp_path, symbols=["doge"])
    with pytest.raises(DataError, match="no 4h candle files"):
        load_market_data(tmp_path, timeframe="4h")
    with pytest.raises(DataError, match="not found"):
        load_market_data(tmp_path / "nope")


def test_spot_is_labelled_and_perpetual_preferred(tmp_path: Path) -> None:
    _write(tmp_path / "ohlcv", "binance_spot_ETH-USDT_1h.csv", _candles(5))
    _write(tmp_path / "ohlcv", "binance_spot_BTC-USDT_1h.csv", _candles(5))
    _write(tmp_path / "ohlcv", "binance_usdm_BTC-USDT_1h.csv", _candles(5, price=200.0))
    _write(tmp_path / "funding", "binance_usdm_BTC-USDT_8h_funding.csv",
           pd.DataFrame({"timestamp": [T0], "funding_rate": [0.0001]}))  # fmt: skip
    _write(tmp_path / "funding", "other_usdm_ETH-USDT_8h_funding.csv",
           pd.DataFrame({"timestamp": [T0], "funding_rate": [0.0001]}))  # fmt: skip
    md = load_market_data(tmp_path)
    assert md.symbols["BTC-USDT"].market == "perpetual"
    assert md.symbols["BTC-USDT"].candles["close"].iloc[0] == 200.0
    assert md.symbols["BTC-USDT"].funding is not None
    eth = md.symbols["ETH-USDT"]
    assert eth.is_spot and eth.funding is None  # never funding from another venue or market
    assert IssueKind.SPOT_AS_PERP in _kinds(md, "ETH-USDT")
    assert IssueKind.NO_FUNDING in _kinds(md, "ETH-USDT")
    assert IssueKind.SHADOWED_FILE in _kinds(md, "BTC-USDT")


def test_start_end_window(tmp_path: Path) -> None:
    _write(tmp_path, "binance_usdm_BTC-USDT_1h.csv", _candles(10))
    md = load_market_data(tmp_path, start_ms=T0 + 2 * H, end_ms=T0 + 5 * H)
    assert list(md.symbols["BTC-USDT"].candles.index) == [T0 + k * H for k in (2, 3, 4)]


def test_align_keeps_gaps_as_nan_and_counts_known_bars(tmp_path: Path) -> None:
    _write(tmp_path / "ohlcv", "binance_usdm_BTC-USDT_1h.csv", _candles(4))
    eth = _candles(4)
    _write(tmp_path / "ohlcv", "binance_usdm_ETH-USDT_1h.csv", eth[eth.index != 1])
    _write(tmp_path / "funding", "binance_usdm_BTC-USDT_8h_funding.csv",
           pd.DataFrame({"timestamp": [T0 + 2 * H + 17], "funding_rate": [0.0003]}))  # fmt: skip
    md = load_market_data(tmp_path)
    a = align(md)
    j_btc, j_eth = a.index("BTC-USDT"), a.index("ETH-USDT")
    assert list(a.ts) == [T0 + k * H for k in range(4)]
    assert np.isnan(a.close[1, j_eth]) and not np.isnan(a.close[1, j_btc])
    assert list(a.known[:, j_eth]) == [1, 1, 2, 3]
    assert list(a.known[:, j_btc]) == [1, 2, 3, 4]
    # the print settles in the step whose hour holds its (jittered) time
    assert a.funding[2, j_btc] == 0.0003 and a.funding_ts[2, j_btc] == T0 + 2 * H + 17
    assert np.isnan(a.funding[:, j_eth]).all()
    assert a.has_funding.tolist() == [True, False]


def test_aligned_matrices_read_the_series_without_dense_copies() -> None:
    """The candle matrices are views over the per-symbol series and the funding matrices hold
    only the steps with a print: every cell, row and the dense form equal the matrices a dense
    alignment builds (gaps, late starts, early ends, several prints in one step)."""
    from engine.core.bars import MarketData, StepRows, SymbolColumns, SymbolData

    rng = np.random.default_rng(7)
    grid = T0 + H * np.arange(40)
    symbols: dict[str, SymbolData] = {}
    for k, keep in enumerate([np.ones(40, bool), rng.random(40) < 0.7, np.arange(40) >= 9,
                              np.arange(40) < 25]):  # fmt: skip
        ts = grid[keep]
        c = 100 + rng.normal(0, 1, len(ts)).cumsum()
        candles = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                                "volume": rng.uniform(1, 9, len(ts))},
                               index=pd.Index(ts, name="timestamp"))  # fmt: skip
        f_ts = np.array([grid[3] + 5, grid[11], grid[11] + 7, grid[30] + 1])
        funding = pd.DataFrame({"funding_rate": rng.normal(0, 1e-4, 4)},
                               index=pd.Index(f_ts, name="timestamp"))  # fmt: skip
        name = f"S{k}-USDT"
        symbols[name] = SymbolData(name, "1h", "perpetual", candles, funding, "test")
    a = align(MarketData(symbols, "1h"))
    assert isinstance(a.close, SymbolColumns) and isinstance(a.funding, StepRows)
    assert a.known.dtype == np.int32
    for j, sd in enumerate(symbols.values()):
        rows = np.searchsorted(grid, sd.candles.index.to_numpy())
        for field, mat in (("open", a.open), ("high", a.high), ("low", a.low),
                           ("close", a.close), ("volume", a.volume)):  # fmt: skip
            dense = np.full(40, np.nan)
            dense[rows] = sd.candles[field].to_numpy()
            np.testing.assert_array_equal(np.asarray(mat)[:, j], dense)
            got = [mat[i, j] for i in range(40)]
            np.testing.assert_array_equal(np.array(got, dtype=float), dense)
            np.testing.assert_array_equal([mat[i][j] for i in range(40)], dense)
        for i in range(40):
            want = tuple(np.asarray(m)[i, j] for m in (a.open, a.high, a.low, a.close))
            np.testing.assert_array_equal(a.candle(i, j), want)
        fund = np.full(40, np.nan)
        f_ts = sd.funding.index.to_numpy()
        step = np.searchsorted(grid, f_ts, side="right") - 1
        fund[step] = sd.funding["funding_rate"].to_numpy()  # the later print of a step wins
        np.testing.assert_array_equal(np.asarray(a.funding)[:, j], fund)
        assert [a.funding_ts[i, j] for i in (3, 11, 30)] == [
            grid[3] + 5,
            grid[11] + 7,
            grid[30] + 1,
        ]
    assert a.present().tolist() == np.isfinite(np.asarray(a.close)).sum(axis=1).tolist()
    assert a.funding_steps.tolist() == np.isfinite(np.asarray(a.funding)).any(axis=1).tolist()


# -- hostile cells (issue 15) ------------------------------------------------------------------


def _csv_text(folder: Path, rows: list[str], name: str = "binance_usdm_BTC-USDT_1h.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return p


def _rows(n: int, scale: float = 1.0, start: int = T0) -> list[str]:
    return [f"{int((start + H * k) * scale)},100,101,99,100,5" for k in range(n)]


@pytest.mark.parametrize("cell", ["inf", "1e400", "-inf", "Infinity"])
def test_infinite_prices_are_bad_rows(tmp_path: Path, cell: str) -> None:
    rows = _rows(10)
    rows[4] = f"{T0 + 4 * H},100,{cell},99,100,5"
    _csv_text(tmp_path, rows)
    md = load_market_data(tmp_path)
    candles = md.symbols["BTC-USDT"].candles
    assert len(candles) == 9 and np.isfinite(candles.to_numpy()).all()
    (issue,) = [i for i in md.issues_for("BTC-USDT") if i.kind is IssueKind.NAN]
    assert issue.count == 1 and "infinite" in issue.detail and issue.first_ts == T0 + 4 * H


@pytest.mark.parametrize("column", ["timestamp", "close"])
def test_one_bad_cell_drops_its_row_not_the_symbol(tmp_path: Path, column: str, capfd) -> None:
    rows = _rows(10)
    cells = rows[3].split(",")
    cells[0 if column == "timestamp" else 4] = "not-a-number"
    rows[3] = ",".join(cells)
    _csv_text(tmp_path, rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pandas warning would fail the test
        md = load_market_data(tmp_path)
    assert len(md.symbols["BTC-USDT"].candles) == 9
    assert not [i for i in md.issues_for("BTC-USDT") if i.severity is Severity.ERROR]
    assert any(i.count == 1 for i in md.issues_for("BTC-USDT") if i.kind is IssueKind.NAN)
    assert capfd.readouterr().err == ""  # nothing on stderr


def test_a_bad_cell_in_a_date_column_drops_its_row_quietly(tmp_path: Path, capfd) -> None:
    dates = pd.to_datetime(T0 + H * np.arange(6), unit="ms", utc=True).strftime("%Y-%m-%d %H:%M")
    rows = [f"{d},100,101,99,100,5" for d in dates]
    rows[2] = "someday,100,101,99,100,5"
    _csv_text(tmp_path, rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md = load_market_data(tmp_path)
    assert list(md.symbols["BTC-USDT"].candles.index[:2]) == [T0, T0 + H]
    assert len(md.symbols["BTC-USDT"].candles) == 5 and capfd.readouterr().err == ""


@pytest.mark.parametrize(("scale", "unit"), [(1e-3, "seconds"), (1e3, "microseconds")])
def test_timestamp_units_are_detected(tmp_path: Path, scale: float, unit: str) -> None:
    _csv_text(tmp_path / "ms", _rows(24))
    _csv_text(tmp_path / "other", _rows(24, scale))
    ms, other = load_market_data(tmp_path / "ms"), load_market_data(tmp_path / "other")
    pd.testing.assert_frame_equal(ms.symbols["BTC-USDT"].candles, other.symbols["BTC-USDT"].candles)
    (issue,) = [i for i in other.issues_for("BTC-USDT") if i.kind is IssueKind.TIMESTAMP_UNIT]
    assert unit in issue.detail and issue.severity is Severity.INFO
    assert not [i for i in other.issues_for("BTC-USDT") if i.kind is IssueKind.TIMEFRAME_MISMATCH]


def test_timestamps_of_no_known_unit_are_refused_in_one_line(tmp_path: Path) -> None:
    _csv_text(tmp_path, [f"{k},100,101,99,100,5" for k in range(1, 30)])
    with pytest.raises(DataError) as exc:
        load_market_data(tmp_path)
    assert "neither seconds nor milliseconds" in str(exc.value) and "\n" not in str(exc.value)
