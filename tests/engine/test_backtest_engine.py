"""End-to-end backtests: journal rows within the hard limits, lookahead guard, bad policies skip,
data gaps stay gaps, funding reported, and the report renders."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from engine.backtest import BacktestError, default_policy_path, run_backtest
from engine.core.bars import MarketData, SymbolData
from engine.core.policy import StaticPolicy
from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.domain import Decision, HarvestLadder, SafetyLimits, Side, SkipReason
from engine.journal.store import Journal
from engine.report import braille_chart, render_html, render_terminal
from engine.venues.candle_files import load_market_data, sample_data_dir
from engine.venues.simulated import BrokerConfig
from tests.engine.journal_checks import assert_journal_within_limits, journal_violations

H = 3_600_000
T_START = 1_746_057_600_000  # 2025-05-01
WINDOW_END = T_START + 60 * 24 * H  # 60 days: enough for refreshes, entries and exits
TIERS = LeverageTiers.load(PACKAGED_TIERS)
CFG = BrokerConfig.from_toml()


@pytest.fixture(scope="module")
def sample() -> MarketData:
    return load_market_data(sample_data_dir(), end_ms=WINDOW_END)


@pytest.fixture(scope="module")
def legacy() -> StaticPolicy:
    return StaticPolicy.from_toml(default_policy_path())


def test_packaged_policy_is_the_example_without_symbols_the_sample_lacks() -> None:
    """The packaged default differs from examples/legacy_policy.toml only in its core symbols:
    those of the example that the shipped sample has data for."""
    example = Path(__file__).resolve().parents[2] / "examples" / "legacy_policy.toml"
    packaged = StaticPolicy.from_toml(default_policy_path()).config
    legacy_config = StaticPolicy.from_toml(example).config
    have = set(load_market_data(sample_data_dir()).symbols)
    kept = tuple(s for s in legacy_config.core_symbols if s in have)
    assert packaged.core_symbols == kept and kept != legacy_config.core_symbols
    assert packaged == dataclasses.replace(legacy_config, core_symbols=kept)


def test_default_run_has_no_skip_caused_by_its_own_sample() -> None:
    """The packaged policy on the whole shipped sample: no NO_DATA skip (a symbol it names
    without data), as a newcomer's first `qctl backtest` shows."""
    res = run_backtest(load_market_data(sample_data_dir()), StaticPolicy.from_toml(
        default_policy_path()), equity=10_000.0, tiers=TIERS, broker_config=CFG)  # fmt: skip
    assert res.stats.decisions > 1000 and res.stats.entries > 0
    assert SkipReason.NO_DATA not in res.stats.skips


def test_legacy_backtest_journal_within_limits(sample, legacy, tmp_path: Path) -> None:
    db = tmp_path / "bt.db"
    with Journal(db) as j:
        res = run_backtest(sample, legacy, equity=10_000.0, tiers=TIERS, broker_config=CFG,
                           journal=j)  # fmt: skip
        counts = {t: j.count(t, res.run_id) for t in ("decision", "order", "fill", "equity")}
        run = j.rows("run", where="id = ?", params=(res.run_id,))[0]
    assert run["status"] == "finished" and run["mode"] == "backtest"
    assert counts["equity"] == res.stats.steps == len(res.equity)
    assert counts["decision"] == res.stats.decisions and counts["fill"] > 0
    assert res.stats.entries > 0 and res.metrics.n_trades > 0
    assert res.has_funding and res.stats.funding_events > 0
    assert res.metrics.funding_paid != 0.0
    assert_journal_within_limits(db, tiers=TIERS)
    # the equity curve is the wallet plus open positions, ending where the trades say
    assert math.isfinite(res.metrics.end_equity)
    closed_pnl = sum(t.pnl for t in res.trades)
    open_upnl = sum(p.unrealised_pnl - p.fees_paid - p.funding_paid for p in res.open_positions)
    assert res.metrics.end_equity == pytest.approx(10_000.0 + closed_pnl + open_upnl, rel=1e-9)


def test_legacy_exit_values_drive_the_exits(sample, legacy, tmp_path: Path) -> None:
    """The legacy TOML's time exit, graded kill and partial-close fractions are what close its
    positions in a backtest: no position outlives max_hold_sec, reduce happens once at most."""
    db = tmp_path / "bt.db"
    with Journal(db) as j:
        res = run_backtest(sample, legacy, equity=10_000.0, tiers=TIERS, broker_config=CFG,
                           journal=j)  # fmt: skip
        rows = j.rows("position", res.run_id, order_by="id")
    assert res.stats.exits["max_hold"] > 0
    max_hold_ms = legacy.config.max_hold_sec * 1000
    closes = [r for r in rows if r["closed_ts"] is not None]
    assert closes and all(r["closed_ts"] - r["opened_ts"] <= max_hold_ms for r in closes)
    opened = [r for r in rows if r["event"] == "open"]
    assert {(r["harvest_t1_close_frac"], r["kill_reduce_threshold"], r["max_hold_sec"])
            for r in opened} == {(0.3, 0.55, 86_400.0)}  # fmt: skip
    t1 = [r for r in rows if r["event"] == "harvest_t1"]
    assert t1
    for r in t1:  # T1 closed 0.3 of the quantity open (all of it, unless a reduce came first)
        assert r["qty"] == pytest.approx(r["initial_qty"] * 0.7) or r["kill_reduced"]


def test_the_kill_reduce_step_closes_its_fraction_once_per_position(sample, tmp_path: Path):
    """The legacy TOML with the reduce level moved down (so it fires in this window)."""
    text = default_policy_path().read_text()
    assert "kill_reduce_threshold = 0.55" in text
    toml = tmp_path / "p.toml"
    toml.write_text(text.replace("kill_reduce_threshold = 0.55", "kill_reduce_threshold = 0.3"))
    with Journal(tmp_path / "bt.db") as j:
        res = run_backtest(sample, StaticPolicy.from_toml(toml), equity=10_000.0, tiers=TIERS,
                           broker_config=CFG, journal=j)  # fmt: skip
        rows = j.rows("position", res.run_id, order_by="id")
    reduces = [r for r in rows if r["event"] == "kill_reduce"]
    assert reduces and res.stats.exits["kill_reduce"] == len(reduces)
    assert len({(r["symbol"], r["opened_ts"]) for r in reduces}) == len(reduces)  # once each
    assert all(r["kill_reduced"] == 1 for r in reduces)
    for r in reduces:  # it closed kill_reduce_frac (0.5) of what was open
        before = [p for p in rows if (p["symbol"], p["opened_ts"]) == (r["symbol"], r["opened_ts"])
                  and p["id"] < r["id"]][-1]  # fmt: skip
        assert r["qty"] == pytest.approx(before["qty"] * 0.5)


def test_journal_check_catches_a_row_over_a_limit(sample, legacy, tmp_path: Path) -> None:
    db = tmp_path / "bt.db"
    with Journal(db) as j:
        run_backtest(sample, legacy, equity=10_000.0, tiers=TIERS, broker_config=CFG, journal=j)
        j.connection.execute("UPDATE decision SET leverage = 200 WHERE action = 'long'")
    assert any("leverage 200" in v for v in journal_violations(db, tiers=TIERS))


class BigPolicy:
    """Asks for more than the limits allow: the risk kernel must clip or veto, and journal it."""

    name = "big"
    version = "1"

    def decide(self, snapshot, portfolio):
        return [
            Decision(ts=snapshot.ts, symbol=s, side=Side.LONG, leverage=125.0, size_pct=0.5,
                     stop_loss_pct=0.2, take_profit_pct=0.5,
                     harvest=HarvestLadder(2, 4, 6, 1.5, t1_close_frac=0.3, t2_close_frac=0.3),
                     kill_threshold=0.9, kill_reduce_threshold=0.9, kill_reduce_frac=0.5,
                     max_hold_sec=86_400.0, confidence=0.5)
            for s in snapshot.symbols if s not in portfolio.positions
        ]  # fmt: skip


def test_oversized_policy_is_clipped_and_vetoed_within_limits(sample, tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    with Journal(db) as j:
        # half of 1M USDT is 500k notional: Binance's bracket allows 100x there, not 125x
        res = run_backtest(sample, BigPolicy(), equity=1_000_000.0, tiers=TIERS,
                           broker_config=CFG, journal=j)  # fmt: skip
        clips = j.rows("safety_event", res.run_id, where="action = 'CLIP'")
    assert res.stats.safety_events["bracket_max_leverage"] > 0
    bracket_clips = [c for c in clips if c["limit"] == "bracket_max_leverage"]
    assert all(c["requested"] == 125.0 and c["applied"] < 125.0 for c in bracket_clips)
    assert res.stats.safety_events["max_total_exposure"] > 0  # a 5th half-equity position vetoed
    assert res.stats.skips[SkipReason.EXPOSURE_LIMIT] > 0
    assert_journal_within_limits(db, tiers=TIERS)


def test_stricter_limits_shrink_the_zone(sample, tmp_path: Path) -> None:
    db = tmp_path / "strict.db"
    limits = SafetyLimits(max_leverage=20.0)
    with Journal(db) as j:
        res = run_backtest(sample, BigPolicy(), equity=10_000.0, tiers=TIERS, broker_config=CFG,
                           journal=j, limits=limits)  # fmt: skip
    assert res.stats.entries == 0 and res.stats.skips[SkipReason.OUT_OF_ZONE] > 0
    assert_journal_within_limits(db, limits=limits, tiers=TIERS)


class RaisingPolicy:
    name = "broken"
    version = "0"

    def decide(self, snapshot, portfolio):
        raise RuntimeError("model server down")


class NanPolicy:
    name = "nan"
    version = "0"

    def decide(self, snapshot, portfolio):
        return [Decision(ts=snapshot.ts, symbol=snapshot.symbols[0], side=Side.LONG,
                         leverage=float("nan"), size_pct=0.1, stop_loss_pct=0.02,
                         take_profit_pct=0.05, kill_threshold=0.5, kill_reduce_threshold=0.5,
                         kill_reduce_frac=0.5, max_hold_sec=86_400.0,
                         confidence=0.5)]  # fmt: skip


@pytest.mark.parametrize(("policy", "reason"), [(RaisingPolicy(), SkipReason.POLICY_ERROR),
                                                (NanPolicy(), SkipReason.POLICY_NAN)])  # fmt: skip
def test_bad_policy_skips_and_never_trades(sample, policy, reason, tmp_path: Path) -> None:
    with Journal(tmp_path / "bad.db") as j:
        res = run_backtest(sample, policy, equity=10_000.0, tiers=TIERS, broker_config=CFG,
                           journal=j)  # fmt: skip
        skips = {r["skip"] for r in j.rows("decision", res.run_id)}
        assert j.count("order", res.run_id) == 0
        assert_journal_within_limits(j, tiers=TIERS)
    assert skips == {reason}
    assert res.stats.entries == 0 and res.metrics.end_equity == 10_000.0


def _decisions(md: MarketData, policy, tmp_path: Path, name: str) -> list[tuple]:
    with Journal(tmp_path / f"{name}.db") as j:
        res = run_backtest(md, policy, equity=10_000.0, tiers=TIERS, broker_config=CFG, journal=j)
        rows = j.rows("decision", res.run_id)
        assert_journal_within_limits(j, tiers=TIERS)
    return [(r["ts"], r["symbol"], r["action"], r["leverage"], r["size_pct"], r["skip"],
             r["reasons"]) for r in rows]  # fmt: skip


def test_lookahead_guard(sample, legacy, tmp_path: Path) -> None:
    """Changing every bar after time t never changes a decision made at or before t."""
    t_cut = T_START + 30 * 24 * H
    rng = np.random.default_rng(1)
    changed = {}
    for sym, sd in sample.symbols.items():
        c = sd.candles.copy()
        after = c.index >= t_cut
        factor = np.exp(rng.normal(0, 0.05, after.sum()))
        for col in ("open", "high", "low", "close"):
            c.loc[after, col] = c.loc[after, col] * factor
        changed[sym] = SymbolData(sym, sd.timeframe, sd.market, c, sd.funding, sd.source)
    md2 = MarketData(changed, sample.timeframe, [])
    a = _decisions(sample, legacy, tmp_path, "a")
    b = _decisions(md2, legacy, tmp_path, "b")
    before_a = [d for d in a if d[0] <= t_cut]
    before_b = [d for d in b if d[0] <= t_cut]
    assert before_a and before_a == before_b
    assert a != b  # the change after t did change later decisions: the guard can fail


def test_gaps_are_traded_around_not_filled(tmp_path: Path, legacy) -> None:
    src = sample_data_dir() / "ohlcv" / "binance_usdm_BTC-USDT_1h.csv.gz"
    df = pd.read_csv(src).iloc[: 24 * 40]
    holed = df.drop(index=range(300, 310))
    (tmp_path / "ohlcv").mkdir()
    holed.to_csv(tmp_path / "ohlcv" / "binance_usdm_BTC-USDT_1h.csv", index=False)
    md = load_market_data(tmp_path)
    res = run_backtest(md, legacy, equity=10_000.0, tiers=TIERS, broker_config=CFG)
    assert any(i.kind == "gap" and i.count == 10 for i in res.issues)
    assert res.stats.symbol_bars == len(holed)  # the 10 missing hours were never invented
    assert any("no funding" in n for n in res.notes)  # and the run says funding was not modelled
    assert not res.has_funding


def test_bad_equity_is_a_user_error(sample, legacy) -> None:
    with pytest.raises(BacktestError, match="positive"):
        run_backtest(sample, legacy, equity=0.0, tiers=TIERS, broker_config=CFG)


def test_reports_render(sample, legacy) -> None:
    res = run_backtest(sample, legacy, equity=10_000.0, tiers=TIERS, broker_config=CFG)
    console = Console(record=True, width=120)
    render_terminal(res, console)
    text = console.export_text()
    for label in ("total return", "CAGR", "Sharpe", "Sortino", "Calmar", "max drawdown",
                  "win rate", "profit factor", "expectancy", "avg holding time", "exposure",
                  "safety events by limit", "skips by reason", "funding"):  # fmt: skip
        assert label in text
    page = render_html(res)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    chart = braille_chart(res.equity, 40, 5)
    assert len(chart) == 5 and all(len(line) == 40 for line in chart)


@pytest.mark.slow
def test_full_sample_year_within_limits(legacy, tmp_path: Path) -> None:
    md = load_market_data(sample_data_dir())
    db = tmp_path / "year.db"
    with Journal(db) as j:
        res = run_backtest(md, legacy, equity=10_000.0, tiers=TIERS, broker_config=CFG, journal=j)
    assert res.stats.symbol_bars == 6 * 9120
    assert res.metrics.n_trades > 100 and res.stats.exits["harvest_t1"] > 0
    assert_journal_within_limits(db, tiers=TIERS)


def test_spot_data_is_traded_as_perpetual_and_labelled(tmp_path: Path, legacy) -> None:
    src = sample_data_dir() / "ohlcv" / "binance_usdm_ETH-USDT_1h.csv.gz"
    (tmp_path / "ohlcv").mkdir()
    pd.read_csv(src).iloc[: 24 * 30].to_csv(
        tmp_path / "ohlcv" / "binance_spot_ETH-USDT_1h.csv", index=False
    )
    res = run_backtest(load_market_data(tmp_path), legacy, equity=10_000.0, tiers=TIERS,
                       broker_config=CFG)  # fmt: skip
    assert res.spot_symbols == ["ETH-USDT"]
    assert any(n.startswith("SPOT data traded as if perpetual") for n in res.notes)
    console = Console(record=True, width=160)
    render_terminal(res, console)
    assert "SPOT data traded as if perpetual" in console.export_text()
