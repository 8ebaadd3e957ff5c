"""`qctl data fetch` as a user runs it, against the fake exchange: summary table, incremental rerun,
a cache that `qctl backtest --data` reads, and one-line errors with exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import ccxt
import pytest
from typer.testing import CliRunner

import qctl.data_cmd
from engine.venues.candle_files import load_market_data
from qctl.cli import app, main
from tests.engine.test_ccxt_feed import FakeExchange

runner = CliRunner()
SINCE = "2025-01-01"  # == T0


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeExchange:
    ex = FakeExchange(bars=600, page_size=250)
    made: list[str] = []

    def make(exchange_id: str) -> FakeExchange:
        made.append(exchange_id)
        return ex

    monkeypatch.setattr(qctl.data_cmd, "make_exchange", make)
    ex.made = made  # type: ignore[attr-defined]
    return ex


def test_help() -> None:
    assert runner.invoke(app, ["data", "--help"]).exit_code == 0
    result = runner.invoke(app, ["data", "fetch", "--help"])
    assert result.exit_code == 0
    for flag in ("--exchange", "--symbols", "--timeframe", "--since", "--until", "--out",
                 "--no-funding"):  # fmt: skip
        assert flag in result.output


def test_fetch_prints_a_summary_and_a_rerun_adds_only_new_bars(
    fake: FakeExchange, tmp_path: Path
) -> None:
    out = tmp_path / "cache"
    args = ["data", "fetch", "--symbols", "BTC,ETH", "--since", SINCE, "--out", str(out)]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert fake.made == ["binanceusdm"]  # type: ignore[attr-defined]
    assert "BTC-USDT" in result.output and "ETH-USDT" in result.output
    assert "600" in result.output and "+600" in result.output
    assert "2025-01-01 00:00" in result.output and "2025-01-25 23:00" in result.output
    assert "76 (+76)" in result.output  # funding prints, every 8 h over 600 h + the first
    assert f"qctl backtest --data {out}" in result.output

    fake.advance(3)
    fake.calls.clear()
    again = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "603" in again.output and "+3" in again.output
    assert len(fake.ohlcv_calls()) == 2  # one short page per symbol
    assert sorted(load_market_data(out).symbols) == ["BTC-USDT", "ETH-USDT"]


def test_until_and_no_funding(fake: FakeExchange, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    result = runner.invoke(app, ["data", "fetch", "-s", "ETHUSDT", "--since", SINCE, "--until",
                                 "2025-01-02", "--no-funding", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    md = load_market_data(out)
    assert len(md.symbols["ETH-USDT"].candles) == 24 and md.symbols["ETH-USDT"].funding is None
    assert not any(c[0] == "funding" for c in fake.calls)


def test_backtest_reads_the_cache(fake: FakeExchange, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    fetched = runner.invoke(
        app, ["data", "fetch", "-s", "BTC,ETH", "--since", SINCE, "-o", str(out)]
    )
    assert fetched.exit_code == 0, fetched.output
    result = runner.invoke(
        app, ["backtest", "--data", str(out), "--db", str(tmp_path / "q.db"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "BTC-USDT" in result.output


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["qctl", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0)


def test_exchange_error_is_one_line_and_keeps_the_partial_cache(
    fake: FakeExchange,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    out = tmp_path / "cache"
    monkeypatch.setenv("COLUMNS", "200")  # keep rich from wrapping the one line
    # BTC: 3 candle pages of 250 + 2 funding pages (the second one empty); call 6 is ETH's first
    fake.fail_on = 6
    fake.error = ccxt.NetworkError
    code = _main(monkeypatch, "data", "fetch", "-s", "BTC,ETH", "--since", SINCE, "-o", str(out))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: ETH/USDT:USDT: NetworkError")
    assert captured.err.count("\n") == 1 and "(kept what was fetched)" in captured.err
    assert "BTC-USDT" in captured.out  # the partial summary is shown
    assert list(load_market_data(out).symbols) == ["BTC-USDT"]


def test_unknown_exchange_and_symbol_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    code = _main(
        monkeypatch, "data", "fetch", "-e", "nosuchexchange", "-s", "BTC", "--since", SINCE
    )
    assert code == 2 and "unknown exchange 'nosuchexchange'" in capsys.readouterr().err

    monkeypatch.setattr(qctl.data_cmd, "make_exchange", lambda _id: FakeExchange())
    code = _main(monkeypatch, "data", "fetch", "-s", "DOGE", "--since", SINCE, "-o", str(tmp_path))
    assert code == 2 and "DOGE: no DOGE/USDT market" in capsys.readouterr().err


def test_bad_date_is_a_usage_error(fake: FakeExchange) -> None:
    result = runner.invoke(app, ["data", "fetch", "-s", "BTC", "--since", "yesterday"])
    assert result.exit_code == 2
    assert fake.calls == []
