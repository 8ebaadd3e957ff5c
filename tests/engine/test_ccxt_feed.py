"""The ccxt feed against a deterministic fake exchange: paging, closed bars only, incremental and
atomic cache, errors that keep what was fetched, and the files `load_market_data` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ccxt
import pandas as pd
import pytest

import engine.venues.ccxt_feed as feed
from engine.core.bars import resolve_symbol
from engine.venues.candle_files import load_market_data, sample_data_dir
from engine.venues.ccxt_feed import FeedError, fetch_to_cache, find_market

HOUR = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
FUNDING_EVERY = 8 * HOUR


class FakeExchange:
    """ccxt's shape without a network: hourly candles from T0 up to `now` (the last one still forming),
    funding prints every 8 h, `page_size` rows per call, and an optional error on call `fail_on`."""

    id = "binanceusdm"
    rateLimit = 0

    def __init__(
        self,
        bars: int = 48,
        *,
        page_size: int = 1000,
        fail_on: int | None = None,
        error: type[Exception] = ccxt.NetworkError,
        minutes_into_bar: int = 20,
        bases: tuple[str, ...] = ("BTC", "ETH"),
    ) -> None:
        self.now = T0 + bars * HOUR + minutes_into_bar * 60_000  # bar `bars` is forming
        self.page_size = page_size
        self.fail_on = fail_on
        self.error = error
        self.has = {"fetchOHLCV": True, "fetchFundingRateHistory": True}
        self.calls: list[tuple[str, str, int]] = []
        self.markets: dict[str, dict[str, Any]] = {}
        for base in bases:
            perp = f"{base}/USDT:USDT"
            self.markets[perp] = {"symbol": perp, "id": f"{base}USDT", "base": base,
                                  "quote": "USDT", "settle": "USDT", "type": "swap", "swap": True,
                                  "contract": True, "linear": True, "inverse": False, "spot": False}  # fmt: skip
            spot = f"{base}/USDT"
            self.markets[spot] = {"symbol": spot, "id": f"{base}USDT", "base": base,
                                  "quote": "USDT", "type": "spot", "spot": True, "swap": False}  # fmt: skip

    def milliseconds(self) -> int:
        return self.now

    def advance(self, bars: int) -> None:
        self.now += bars * HOUR

    def _call(self, kind: str, symbol: str, since: int) -> None:
        self.calls.append((kind, symbol, since))
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise self.error(f"binanceusdm GET {kind} failed\nretry later")
        if symbol not in self.markets:
            raise ccxt.BadSymbol(f"binanceusdm does not have market symbol {symbol}")

    @staticmethod
    def candle(symbol: str, ts: int) -> list[float]:
        level = 100.0 if symbol.startswith("BTC") else 10.0
        o = level + (ts - T0) // HOUR % 24
        c = o + 0.5
        return [ts, o, c + 1.0, o - 1.0, c, 3.0 + (ts - T0) // HOUR % 7]

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1h", since: int | None = None, limit: int | None = None
    ) -> list[list[float]]:
        self._call("ohlcv", symbol, since or 0)
        assert timeframe == "1h"
        t = max(since or T0, T0)
        t += -(t - T0) % HOUR  # next grid point
        rows = []
        while t <= self.now and len(rows) < min(limit or self.page_size, self.page_size):
            rows.append(self.candle(symbol, t))
            t += HOUR
        return rows

    def fetch_funding_rate_history(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        self._call("funding", symbol, since or 0)
        t = max(since or T0, T0)
        t += -(t - T0) % FUNDING_EVERY
        rows = []
        while t <= self.now and len(rows) < min(limit or self.page_size, self.page_size):
            rate = ((t - T0) // FUNDING_EVERY % 5 - 2) * 1e-5
            rows.append({"symbol": symbol, "timestamp": t, "fundingRate": rate, "info": {}})
            t += FUNDING_EVERY
        return rows

    def ohlcv_calls(self) -> list[tuple[str, str, int]]:
        return [c for c in self.calls if c[0] == "ohlcv"]


def _candles(cache: Path, base: str = "BTC") -> pd.DataFrame:
    return pd.read_csv(cache / "ohlcv" / f"binance_usdm_{base}-USDT_1h.csv")


def test_writes_files_the_loader_reads(tmp_path: Path) -> None:
    ex = FakeExchange(bars=48)
    report = fetch_to_cache(ex, ["BTC", "ETHUSDT"], "1h", T0, cache_dir=tmp_path)

    assert [s.symbol for s in report.symbols] == ["BTC-USDT", "ETH-USDT"]
    assert [s.market_symbol for s in report.symbols] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert sorted(p.name for p in (tmp_path / "funding").iterdir()) == [
        "binance_usdm_BTC-USDT_8h_funding.csv",
        "binance_usdm_ETH-USDT_8h_funding.csv",
    ]
    md = load_market_data(tmp_path)
    assert sorted(md.symbols) == ["BTC-USDT", "ETH-USDT"]
    btc = md.symbols["BTC-USDT"]
    assert btc.market == "perpetual" and btc.exchange == "binance"
    assert len(btc.candles) == 48  # the forming 49th bar is dropped
    assert btc.candles.index[-1] == T0 + 47 * HOUR
    assert list(btc.candles.iloc[5]) == FakeExchange.candle("BTC/USDT:USDT", T0 + 5 * HOUR)[1:]
    assert btc.funding is not None and len(btc.funding) == 7  # T0 .. T0+48h every 8 h
    assert not [i for i in md.issues if i.severity != "info"]
    assert report.symbols[0].bars_total == 48 and report.symbols[0].funding_total == 7
    assert report.symbols[0].first_ts == T0 and report.symbols[0].last_ts == T0 + 47 * HOUR
    assert list(_candles(tmp_path).columns) == [
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]


def test_pages_forward_until_the_last_closed_bar(tmp_path: Path) -> None:
    ex = FakeExchange(bars=250, page_size=100)
    report = fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path, funding=False)

    assert [c[2] for c in ex.ohlcv_calls()] == [T0, T0 + 100 * HOUR, T0 + 200 * HOUR]
    df = _candles(tmp_path)
    assert len(df) == 250 and df["timestamp"].is_monotonic_increasing and df["timestamp"].is_unique
    assert report.symbols[0].requests == 3
    assert report.symbols[0].funding_total is None
    assert not (tmp_path / "funding").exists()


def test_until_is_exclusive(tmp_path: Path) -> None:
    ex = FakeExchange(bars=100, page_size=30)
    fetch_to_cache(ex, ["BTC"], "1h", T0, T0 + 40 * HOUR, tmp_path, funding=False)
    df = _candles(tmp_path)
    assert df["timestamp"].iloc[-1] == T0 + 39 * HOUR and len(df) == 40
    assert len(ex.ohlcv_calls()) == 2


def test_second_call_fetches_only_new_bars(tmp_path: Path) -> None:
    ex = FakeExchange(bars=48)
    fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path)
    first = _candles(tmp_path)

    ex.calls.clear()
    again = fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path)
    assert ex.ohlcv_calls() == []  # nothing closed since: no candle request at all
    assert again.symbols[0].bars_new == 0 and again.symbols[0].bars_total == 48

    ex.advance(5)
    later = fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path)
    assert ex.ohlcv_calls() == [("ohlcv", "BTC/USDT:USDT", T0 + 48 * HOUR)]
    assert later.symbols[0].bars_new == 5 and later.symbols[0].bars_total == 53
    grown = _candles(tmp_path)
    pd.testing.assert_frame_equal(grown.head(48), first)
    assert ex.calls[-1][0] == "funding" and ex.calls[-1][2] == T0 + 48 * HOUR + 1


def test_earlier_since_backfills_before_the_cache(tmp_path: Path) -> None:
    ex = FakeExchange(bars=48)
    fetch_to_cache(ex, ["BTC"], "1h", T0 + 24 * HOUR, cache_dir=tmp_path, funding=False)
    assert _candles(tmp_path)["timestamp"].iloc[0] == T0 + 24 * HOUR

    ex.calls.clear()
    report = fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path, funding=False)
    assert ex.ohlcv_calls() == [("ohlcv", "BTC/USDT:USDT", T0)]
    assert report.symbols[0].bars_new == 24
    df = _candles(tmp_path)
    assert len(df) == 48 and df["timestamp"].is_unique and df["timestamp"].is_monotonic_increasing


@pytest.mark.parametrize("error", [ccxt.NetworkError, ccxt.ExchangeError, ccxt.RequestTimeout])
def test_error_keeps_fetched_rows_and_names_the_symbol(tmp_path: Path, error: type) -> None:
    ex = FakeExchange(bars=250, page_size=100, fail_on=2, error=error)
    with pytest.raises(FeedError) as info:
        fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path)
    message = str(info.value)
    assert "BTC/USDT:USDT" in message and "\n" not in message
    assert info.value.report is not None and info.value.report.symbols[0].bars_total == 100
    assert len(_candles(tmp_path)) == 100  # the first page is kept

    ex.fail_on = None
    ex.calls.clear()
    fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path)
    assert ex.ohlcv_calls()[0][2] == T0 + 100 * HOUR  # resumes after the kept page
    assert len(_candles(tmp_path)) == 250


def test_funding_error_keeps_candles(tmp_path: Path) -> None:
    ex = FakeExchange(bars=48, fail_on=2)  # call 1: candles, call 2: funding
    with pytest.raises(FeedError, match="BTC/USDT:USDT funding"):
        fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path)
    assert len(_candles(tmp_path)) == 48
    assert not (tmp_path / "funding").exists()


def test_unknown_symbol_is_refused_before_any_fetch(tmp_path: Path) -> None:
    ex = FakeExchange()
    with pytest.raises(FeedError, match="FOO: no FOO/USDT market on binance"):
        fetch_to_cache(ex, ["BTC", "FOO"], "1h", T0, cache_dir=tmp_path)
    assert ex.calls == [] and not tmp_path.joinpath("ohlcv").exists()


def test_exchange_bad_symbol_becomes_feed_error(tmp_path: Path) -> None:
    ex = FakeExchange()
    ex.markets["XYZ/USDT:USDT"] = {**ex.markets["BTC/USDT:USDT"], "symbol": "XYZ/USDT:USDT",
                                   "base": "XYZ"}  # fmt: skip
    ex.fail_on = 1
    ex.error = ccxt.BadSymbol
    with pytest.raises(FeedError, match=r"^XYZ/USDT:USDT: .*BadSymbol"):
        fetch_to_cache(ex, ["XYZ"], "1h", T0, cache_dir=tmp_path)


@pytest.mark.parametrize("name", ["BTC", "btc", "BTC-USDT", "BTCUSDT", "BTC/USDT:USDT"])
def test_names_resolve_to_the_perpetual(name: str) -> None:
    assert find_market(FakeExchange().markets, name)["symbol"] == "BTC/USDT:USDT"


def test_spot_symbol_given_explicitly_stays_spot(tmp_path: Path) -> None:
    report = fetch_to_cache(FakeExchange(bars=10), ["BTC/USDT"], "1h", T0, cache_dir=tmp_path)
    assert report.symbols[0].ohlcv_path.name == "binance_spot_BTC-USDT_1h.csv"
    assert report.symbols[0].funding_total is None  # spot has no funding


def test_bad_timeframe_and_range(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="unknown timeframe"):
        fetch_to_cache(FakeExchange(), ["BTC"], "1M", T0, cache_dir=tmp_path)
    with pytest.raises(FeedError, match="after its start"):
        fetch_to_cache(FakeExchange(), ["BTC"], "1h", T0, T0, tmp_path)


def test_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = FakeExchange(bars=48)
    fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path, funding=False)
    path = tmp_path / "ohlcv" / "binance_usdm_BTC-USDT_1h.csv"
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(feed.os, "replace", crash)
    ex.advance(10)
    with pytest.raises(OSError, match="disk full"):
        fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path, funding=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_unreadable_cache_file_is_a_feed_error(tmp_path: Path) -> None:
    path = tmp_path / "ohlcv" / "binance_usdm_BTC-USDT_1h.csv"
    path.parent.mkdir(parents=True)
    path.write_text("not,a,candle,file\n1,2,3,4\n")
    with pytest.raises(FeedError, match="cannot read cache file .*delete it"):
        fetch_to_cache(FakeExchange(), ["BTC"], "1h", T0, cache_dir=tmp_path)


def test_progress_reaches_one_per_symbol(tmp_path: Path) -> None:
    seen: dict[str, list[float]] = {}
    fetch_to_cache(FakeExchange(bars=250, page_size=100), ["BTC", "ETH"], "1h", T0,
                   cache_dir=tmp_path, progress=lambda s, f: seen.setdefault(s, []).append(f))  # fmt: skip
    assert set(seen) == {"BTC-USDT", "ETH-USDT"}
    for fractions in seen.values():
        assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0 < fractions[0] < 1


def test_real_ccxt_class_fits_the_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real `ccxt.binanceusdm` with its network methods swapped for the fake's."""
    fake = FakeExchange(bars=30, page_size=12)
    ex = ccxt.binanceusdm({"enableRateLimit": True})
    assert ex.has["fetchOHLCV"] and ex.has["fetchFundingRateHistory"]

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("load_markets must not be needed when markets are set")

    monkeypatch.setattr(ex, "load_markets", no_network)
    monkeypatch.setattr(ex, "fetch_ohlcv", fake.fetch_ohlcv)
    monkeypatch.setattr(ex, "fetch_funding_rate_history", fake.fetch_funding_rate_history)
    monkeypatch.setattr(ex, "milliseconds", fake.milliseconds)
    ex.markets = fake.markets

    report = fetch_to_cache(ex, ["BTC"], "1h", T0, cache_dir=tmp_path)
    assert report.exchange == "binance" and report.symbols[0].bars_total == 30
    assert len(fake.ohlcv_calls()) == 3
    md = load_market_data(tmp_path, symbols=["btc"])
    assert len(md.symbols["BTC-USDT"].candles) == 30


def test_markets_are_loaded_when_missing(tmp_path: Path) -> None:
    ex = FakeExchange(bars=5)
    markets = ex.markets
    ex.markets = {}
    loads: list[int] = []

    def load_markets() -> dict[str, Any]:
        loads.append(1)
        ex.markets = markets
        return markets

    ex.load_markets = load_markets  # type: ignore[method-assign]
    fetch_to_cache(ex, ["ETH"], "1h", T0, cache_dir=tmp_path)
    assert loads == [1]

    ex.markets = {}

    def offline() -> dict[str, Any]:
        raise ccxt.NetworkError("binanceusdm GET exchangeInfo: timeout")

    ex.load_markets = offline  # type: ignore[method-assign]
    with pytest.raises(FeedError, match="cannot load the markets of binanceusdm: .*timeout"):
        fetch_to_cache(ex, ["ETH"], "1h", T0, cache_dir=tmp_path)


class ReplayExchange(FakeExchange):
    """Serves the real candles and funding shipped in engine/sample_data, Binance-style pages."""

    def __init__(self, page_size: int = 1500) -> None:
        super().__init__(page_size=page_size, bases=())
        self.data = load_market_data(sample_data_dir())
        for sym in self.data.symbols:
            base, quote = sym.split("-")
            unified = f"{base}/{quote}:{quote}"
            self.markets[unified] = {"symbol": unified, "base": base, "quote": quote,
                                     "swap": True, "linear": True, "contract": True}  # fmt: skip
        last = max(int(sd.candles.index[-1]) for sd in self.data.symbols.values())
        self.now = last + HOUR + 60_000

    def _rows(self, symbol: str) -> Any:
        return self.data.symbols[resolve_symbol(symbol)]

    def fetch_ohlcv(self, symbol, timeframe="1h", since=None, limit=None):  # type: ignore[no-untyped-def]
        self._call("ohlcv", symbol, since or 0)
        df = self._rows(symbol).candles
        df = df[df.index >= (since or 0)].head(min(limit or self.page_size, self.page_size))
        return [[int(t), *row] for t, row in zip(df.index, df.to_numpy().tolist(), strict=True)]

    def fetch_funding_rate_history(self, symbol, since=None, limit=None):  # type: ignore[no-untyped-def]
        self._call("funding", symbol, since or 0)
        df = self._rows(symbol).funding
        df = df[df.index >= (since or 0)].head(min(limit or self.page_size, self.page_size))
        return [
            {"timestamp": int(t), "fundingRate": float(r)} for t, r in df["funding_rate"].items()
        ]


def test_real_sample_round_trips_through_the_cache(tmp_path: Path) -> None:
    """Real candles fetched page by page come back from the cache exactly as the source holds them."""
    ex = ReplayExchange()
    names = list(ex.data.symbols)
    first = min(int(sd.candles.index[0]) for sd in ex.data.symbols.values())
    fetch_to_cache(ex, names, "1h", first, cache_dir=tmp_path)
    cached = load_market_data(tmp_path)
    assert list(cached.symbols) == names
    for sym, src in ex.data.symbols.items():
        pd.testing.assert_frame_equal(cached.symbols[sym].candles, src.candles)
        assert src.funding is not None
        pd.testing.assert_frame_equal(cached.symbols[sym].funding, src.funding)
