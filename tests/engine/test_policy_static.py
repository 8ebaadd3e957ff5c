"""StaticPolicy: the legacy numbers come from the TOML, its signal is what the TOML says,
it is cheap between refreshes and it skips (never crashes) on a core symbol without data.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import numpy as np
import pytest

from engine.core.policy import (
    _SCHEMA,
    Policy,
    PolicyConfigError,
    StaticPolicy,
    load_static_config,
    safe_decide,
)
from engine.domain import AutonomyZone, HarvestLadder, Side, SkipReason
from tests.engine.conftest import (
    HOUR_MS,
    LEGACY_TOML,
    bars_from_closes,
    portfolio,
    position,
    snapshot_of,
)

LOOKBACK = 48


def only(decisions, symbol: str):
    """The one decision for `symbol` (core symbols without data add their own skips)."""
    (d,) = [d for d in decisions if d.symbol == symbol]
    return d


@pytest.fixture(scope="module")
def legacy() -> StaticPolicy:
    return StaticPolicy.from_toml(LEGACY_TOML)


def zigzag(drift: float, swing: float, n_returns: int, start: float = 100.0) -> np.ndarray:
    """Closes whose log returns alternate drift+swing, drift-swing: mean drift, std swing."""
    r = np.where(np.arange(n_returns) % 2 == 0, drift + swing, drift - swing)
    return start * np.exp(np.concatenate([[0.0], np.cumsum(r)]))


def refresh_snapshot(series: dict, legacy: StaticPolicy, n: int | None = None):
    """A snapshot whose close time falls on a refresh (grid starts at a day boundary)."""
    n = n or len(next(iter(series.values())))
    snap = snapshot_of(series, n)
    assert legacy.is_refresh(snap), "test series must end on a refresh bar"
    return snap


def series_of(**closes: np.ndarray) -> dict:
    # start so that the last close time is a multiple of 24 h: refresh bars are daily closes
    n = len(next(iter(closes.values())))
    day = 24 * HOUR_MS
    start = day * 20_000 - n * HOUR_MS
    return {s: bars_from_closes(c, start=start) for s, c in closes.items()}


def test_toml_carries_the_legacy_numbers(legacy: StaticPolicy) -> None:
    c = legacy.config
    assert c.leverage == 10.0
    assert c.notional_usdt == 200.0
    assert c.take_profit_pct == 0.06 and c.stop_loss_pct == 0.025
    # T1_CLOSE_FRACTION / T2_CLOSE_FRACTION of the legacy apply layer
    assert c.harvest == HarvestLadder(2.0, 4.0, 6.0, 1.5, t1_close_frac=0.3, t2_close_frac=0.3)
    assert c.kill_threshold == 0.6 and c.close_threshold == 0.65
    # KILL_SCORE_REDUCE / KILL_REDUCE_FRACTION, and HarvestTheta.max_age_sec
    assert (c.kill_reduce_threshold, c.kill_reduce_frac) == (0.55, 0.5)
    assert c.max_hold_sec == 86_400.0
    assert legacy.kill_threshold == 0.6  # one exit owner: the first legacy closer to fire
    assert c.count == 10
    assert c.core_symbols == ("BTC-USDT", "ETH-USDT", "BNB-USDT")
    assert c.min_sigma == 0.005 and c.min_trend_score == 0.3
    assert (c.weight_volatility, c.weight_trend, c.weight_probability) == (0.3, 0.4, 0.3)
    assert legacy.size_pct(10_000.0) == pytest.approx(0.02)  # 200 USDT of 10,000
    assert legacy.size_pct(2_000.0) == pytest.approx(0.1)
    assert isinstance(legacy, Policy)


def test_entry_signal_matches_the_formulas_in_the_toml(legacy: StaticPolicy) -> None:
    drift, swing = 0.001, 0.01
    series = series_of(**{"SOL-USDT": zigzag(drift, swing, LOOKBACK)})
    d = only(legacy.decide(refresh_snapshot(series, legacy), portfolio(10_000.0)), "SOL-USDT")
    # by hand: sigma = 0.01, trend_z = 48 * 0.001 / (0.01 * sqrt(48)) = sqrt(48) / 10
    z = math.sqrt(48) / 10
    vol, trend = min(0.01 / 0.02, 1.0), math.tanh(z / 2.0)
    prob = 1 / (1 + math.exp(-z))
    assert trend == pytest.approx(0.33319, abs=1e-5)  # above MIN_TS 0.3: an entry
    assert d.skip is None and d.side is Side.LONG
    assert d.leverage == 10.0 and d.size_pct == pytest.approx(0.02)
    assert d.stop_loss_pct == 0.025 and d.take_profit_pct == 0.06
    assert d.harvest == HarvestLadder(2.0, 4.0, 6.0, 1.5, 0.3, 0.3) and d.kill_threshold == 0.6
    assert (d.kill_reduce_threshold, d.kill_reduce_frac, d.max_hold_sec) == (0.55, 0.5, 86_400.0)
    assert d.confidence == pytest.approx(prob)
    reasons = dict(d.reasons)
    assert reasons["sigma"] == pytest.approx(0.01)
    assert reasons["trend_z"] == pytest.approx(z)
    assert reasons["score"] == pytest.approx(0.3 * vol + 0.4 * trend + 0.3 * prob)
    assert d.policy == "legacy" and d.model_version == "1"


def test_downtrend_goes_short_and_weak_trend_is_no_signal(legacy: StaticPolicy) -> None:
    series = series_of(
        **{
            "SOL-USDT": zigzag(-0.001, 0.01, LOOKBACK),
            "XRP-USDT": zigzag(0.0002, 0.01, LOOKBACK),  # z 0.139 -> trend 0.069 < 0.3
        }
    )
    out = {d.symbol: d for d in legacy.decide(refresh_snapshot(series, legacy), portfolio(1e4))}
    assert out["SOL-USDT"].side is Side.SHORT
    assert out["XRP-USDT"].skip is SkipReason.NO_SIGNAL


def test_low_sigma_is_out_of_universe_except_core(legacy: StaticPolicy) -> None:
    calm = zigzag(0.0002, 0.002, LOOKBACK)  # sigma 0.002 < MIN_SIGMA 0.005
    series = series_of(**{"BTC-USDT": calm, "XRP-USDT": calm})
    out = {d.symbol: d for d in legacy.decide(refresh_snapshot(series, legacy), portfolio(1e4))}
    assert out["XRP-USDT"].skip is SkipReason.NOT_IN_UNIVERSE
    assert "min_sigma" in out["XRP-USDT"].skip_detail
    # BTC is core: it stays in the universe and is judged on its signal (z 0.69 -> entry)
    assert out["BTC-USDT"].skip is None


def test_core_symbol_without_data_is_skipped_not_a_crash(legacy: StaticPolicy) -> None:
    series = series_of(**{"BTC-USDT": zigzag(0.001, 0.01, LOOKBACK)})
    out = legacy.decide(refresh_snapshot(series, legacy), portfolio(1e4))
    bnb = [d for d in out if d.symbol == "BNB-USDT"]
    eth = [d for d in out if d.symbol == "ETH-USDT"]
    assert len(bnb) == 1 and bnb[0].skip is SkipReason.NO_DATA
    assert len(eth) == 1 and eth[0].skip is SkipReason.NO_DATA
    assert any(d.symbol == "BTC-USDT" and d.skip is None for d in out)


def test_universe_count_ranks_by_score_with_core_first(tmp_path: Path) -> None:
    text = LEGACY_TOML.read_text().replace("count = 10 ", "count = 2 ")
    path = tmp_path / "two.toml"
    path.write_text(text)
    policy = StaticPolicy.from_toml(path)
    assert policy.config.count == 2
    series = series_of(
        **{
            "ETH-USDT": zigzag(0.0008, 0.006, LOOKBACK),  # core: first whatever its score
            "SOL-USDT": zigzag(0.003, 0.012, LOOKBACK),  # the best score
            "XRP-USDT": zigzag(0.002, 0.012, LOOKBACK),
            "ADA-USDT": zigzag(0.0015, 0.012, LOOKBACK),
        }
    )
    out = {d.symbol: d for d in policy.decide(refresh_snapshot(series, policy), portfolio(1e4))}
    assert out["ETH-USDT"].skip is None and out["SOL-USDT"].skip is None
    assert out["XRP-USDT"].skip is SkipReason.NOT_IN_UNIVERSE
    assert out["ADA-USDT"].skip is SkipReason.NOT_IN_UNIVERSE
    # an open position takes a universe slot and is not scored again
    held = portfolio(1e4, position("ETH-USDT", Side.LONG, 1.0, 100.0))
    out = {d.symbol: d for d in policy.decide(refresh_snapshot(series, policy), held)}
    assert "ETH-USDT" not in out
    assert out["SOL-USDT"].skip is None and out["XRP-USDT"].skip is SkipReason.NOT_IN_UNIVERSE


def test_warmup_and_refresh_gating(legacy: StaticPolicy) -> None:
    closes = zigzag(0.001, 0.01, LOOKBACK)
    series = series_of(**{"SOL-USDT": closes})
    short = snapshot_of(series, LOOKBACK - 23)  # 24 bars earlier: also a refresh
    assert legacy.is_refresh(short)
    d = only(legacy.decide(short, portfolio(1e4)), "SOL-USDT")
    assert d.skip is SkipReason.WARMUP
    off = snapshot_of(series, LOOKBACK)  # one bar before the refresh
    assert not legacy.is_refresh(off) and legacy.decide(off, portfolio(1e4)) == []


def test_fixed_notional_beyond_the_zone_is_skipped(legacy: StaticPolicy, zone) -> None:
    series = series_of(**{"SOL-USDT": zigzag(0.001, 0.01, LOOKBACK)})
    snap = refresh_snapshot(series, legacy)
    d = only(safe_decide(legacy, snap, portfolio(300.0), zone), "SOL-USDT")  # 200/300 > 0.5
    assert d.skip is SkipReason.OUT_OF_ZONE and "size_pct" in d.skip_detail
    d = only(safe_decide(legacy, snap, portfolio(1_000.0), zone), "SOL-USDT")  # 0.2: fine
    assert d.skip is None and d.size_pct == pytest.approx(0.2)


def test_legacy_policy_over_real_data(legacy: StaticPolicy, sample_series, zone) -> None:
    """Every bar of the shipped slice: no crash, entries only at refreshes, all inside the zone."""
    n = min(len(b) for b in sample_series.values())
    pf = portfolio(10_000.0)
    entries, skips = 0, set()
    for i in range(1, n + 1):
        snap = snapshot_of(sample_series, i)
        out = safe_decide(legacy, snap, pf, zone)
        if out:
            assert legacy.is_refresh(snap)
        for d in out:
            assert d.ts == snap.ts
            if d.skip is None:
                entries += 1
                assert zone.check(d) is None and d.leverage == 10.0
            else:
                skips.add(d.skip)
    assert entries > 0
    assert SkipReason.NO_DATA in skips  # BNB-USDT, every refresh
    assert SkipReason.POLICY_ERROR not in skips


def test_decisions_before_t_ignore_bars_after_t(legacy: StaticPolicy, sample_series) -> None:
    """Lookahead guard: scrambling every bar after t changes no decision up to t."""
    n = min(len(b) for b in sample_series.values())
    cut = n // 2
    rng = np.random.default_rng(7)
    scrambled = {}
    for s, b in sample_series.items():
        closes = b.close.copy()
        closes[cut:] *= rng.uniform(0.5, 1.5, size=len(closes) - cut)
        scrambled[s] = type(b).from_arrays(b.ts, b.open, b.high, b.low, closes, b.volume)
    pf = portfolio(10_000.0)
    for i in range(LOOKBACK, cut + 1):
        a = legacy.decide(snapshot_of(sample_series, i), pf)
        b = legacy.decide(snapshot_of(scrambled, i), pf)
        assert a == b


@pytest.mark.parametrize(
    ("table", "key"),
    [(t, k) for t, keys in _SCHEMA.items() for k in keys if k != "weights"],
)
def test_every_key_is_required(tmp_path: Path, table: str, key: str) -> None:
    text = LEGACY_TOML.read_text()
    section = re.search(rf"(?ms)^\[{re.escape(table)}\]\n(.*?)(?=^\[|\Z)", text)
    assert section is not None
    body = section.group(1)
    new_body = re.sub(rf"(?m)^{key} = .*\n(?:^ +\S.*\n|^\]\n)?", "", body, count=1)
    assert new_body != body, f"{key} not found in [{table}]"
    path = tmp_path / "p.toml"
    path.write_text(text.replace(body, new_body))
    with pytest.raises(PolicyConfigError, match=re.escape(f"[{table}].{key}")):
        load_static_config(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("\nleverage = 10.0", '\nleverage = "ten"', "must be a finite number"),
        ("\nleverage = 10.0", "\nleverage = 10.0\nlevrage = 5.0", "unknown key [entry].levrage"),
        ("count = 10 ", "count = 0 ", "count must be at least 1"),
        ("[signal]", "[extra]\nx = 1\n\n[signal]", "unknown table [extra]"),
        ("lookback_bars = 48", "lookback_bars = 48.5", "must be int"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(LEGACY_TOML.read_text().replace(old, new, 1))
    with pytest.raises(PolicyConfigError, match=re.escape(message)):
        load_static_config(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyConfigError, match="cannot read policy file"):
        StaticPolicy.from_toml(tmp_path / "none.toml")


def test_static_policy_code_holds_no_trading_number() -> None:
    """Only 0 and 1 (identities, counting) appear as literals in engine/core/policy.py."""
    source = Path(__file__).resolve().parents[2] / "engine" / "core" / "policy.py"
    numbers = {
        node.value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    }
    assert numbers <= {0, 1}, numbers


def test_zone_passed_to_safe_decide_is_respected(legacy: StaticPolicy) -> None:
    from engine.domain import SafetyLimits

    strict = AutonomyZone.for_limits(SafetyLimits(max_leverage=5.0))
    series = series_of(**{"SOL-USDT": zigzag(0.001, 0.01, LOOKBACK)})
    d = only(
        safe_decide(legacy, refresh_snapshot(series, legacy), portfolio(1e4), strict), "SOL-USDT"
    )
    assert d.skip is SkipReason.OUT_OF_ZONE and "leverage" in d.skip_detail


def _bits(d) -> tuple:
    """A decision's fields, floats as their exact bits (float.hex): equal means bit for bit."""

    def exact(v):
        if isinstance(v, float):
            return v.hex()
        if isinstance(v, tuple):
            return tuple(exact(x) for x in v)
        return v

    return tuple(exact(getattr(d, f)) for f in d.__slots__)


@pytest.mark.parametrize("gaps", [False, True])
def test_scores_prepared_up_front_are_the_refresh_scores_bit_for_bit(gaps: bool) -> None:
    """`prepare_history` scores every refresh window of the whole history at once; at every
    refresh `decide` then returns what it computes without it, bit for bit (gaps in the data
    included: a refresh whose window was not prepared is scored at the refresh). The prepared
    value at a refresh equals the one from the bars known then: nothing later leaks in."""
    from engine.core.bars import MarketData, SymbolData, align
    from engine.core.loop import KnownRow
    from engine.domain import Bars, MarketSnapshot, Portfolio
    from engine.venues.candle_files import load_market_data
    from tests.engine.conftest import SAMPLE_OHLCV

    md = load_market_data(SAMPLE_OHLCV, timeframe="1h")
    if gaps:  # drop a few bars of some symbols, refresh bars among them
        rng = np.random.default_rng(7)
        symbols = {}
        for k, (sym, sd) in enumerate(md.symbols.items()):
            c = sd.candles
            if k % 2 == 0:
                drop = rng.choice(len(c), size=len(c) // 40, replace=False)
                drop = np.union1d(drop, np.arange(200, len(c), 24 * 7))  # refresh bars too
                c = c.drop(c.index[drop])
            symbols[sym] = SymbolData(sym, sd.timeframe, sd.market, c, sd.funding, sd.source,
                                      sd.mark, sd.exchange)  # fmt: skip
        md = MarketData(symbols, md.timeframe, list(md.issues))
    bars = align(md)
    series = {s: Bars.from_arrays(*bars.series[s]) for s in bars.symbols}
    col = {s: j for j, s in enumerate(bars.symbols)}
    plain = StaticPolicy.from_toml(LEGACY_TOML)
    prepared = StaticPolicy.from_toml(LEGACY_TOML)
    prepared.prepare_history(series, bars.step_ms)
    book = Portfolio(wallet_balance=10_000.0)
    refreshes = looked_up = missed = 0
    for i in range(bars.n_steps):
        snap = MarketSnapshot(int(bars.ts[i]) + bars.step_ms, bars.step_ms, series,
                              KnownRow(bars.known[i], col))  # fmt: skip
        if not plain.is_refresh(snap):
            continue
        refreshes += 1
        found = [
            prepared._prepared(s, snap.n_bars(s)) is not False
            for s in snap.symbols
            if snap.n_bars(s) > LOOKBACK  # past the warm-up: scored
        ]
        looked_up += sum(found)
        missed += len(found) - sum(found)
        want = [_bits(d) for d in plain.decide(snap, book)]
        assert [_bits(d) for d in prepared.decide(snap, book)] == want, i
    assert refreshes > 100 and looked_up > 100
    assert (missed > 0) is gaps  # gapped refresh bars take the scored-at-the-refresh path
    # another series (or none prepared): the policy scores at the refresh, as before
    other = {s: Bars.from_arrays(*bars.series[s]) for s in bars.symbols}
    i = next(i for i in range(bars.n_steps - 1, 0, -1)
             if plain.acts_at(int(bars.ts[i]) + bars.step_ms, bars.step_ms))  # fmt: skip
    snap = MarketSnapshot(int(bars.ts[i]) + bars.step_ms, bars.step_ms, other,
                          KnownRow(bars.known[i], col))  # fmt: skip
    assert not snap.wraps(series)
    assert [_bits(d) for d in prepared.decide(snap, book)] == [
        _bits(d) for d in plain.decide(snap, book)
    ]
    prepared.prepare_history(None)
    assert prepared._history is None and not prepared._scored
