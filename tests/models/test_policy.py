"""AIPolicy: every value from a model or the limits, inside the zone, and fail-closed."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from engine.core.policy import Policy, safe_decide
from engine.domain import (
    AutonomyZone,
    Bars,
    MarketSnapshot,
    Portfolio,
    Position,
    SafetyLimits,
    Side,
    SkipReason,
)
from engine.venues.simulated import BrokerConfig
from models.policy import AIPolicy, UniverseConfig, harvest_close_fracs
from models.registry import write_card
from models.validity import iso_ms

from .conftest import HOUR_MS, snapshot_at

OUT_OF_SAMPLE = range(1300, 1590, 3)
ZONE = AutonomyZone()


VENUE_COST = BrokerConfig.from_toml().break_even_offset()


def _policy(directory, funding, round_trip_cost=0.0, **kwargs) -> AIPolicy:
    """The policy on a cost-free venue by default: the small test models' edge is too thin to
    beat real fees, and these tests are about the mechanics of each decision."""
    return AIPolicy.from_dir(directory, funding=funding, round_trip_cost=round_trip_cost, **kwargs)


def _run(policy, candles, bars=OUT_OF_SAMPLE, portfolio=None):
    portfolio = portfolio or Portfolio(wallet_balance=10_000.0)
    out = []
    for i in bars:
        out.extend(safe_decide(policy, snapshot_at(candles, i), portfolio, ZONE))
    return out


@pytest.fixture(scope="module")
def decisions(trained, market):
    candles, funding = market
    policy = _policy(trained.out_dir, funding, universe=UniverseConfig.from_mapping({"count": 4}))
    return _run(policy, candles)


def test_it_is_a_policy(trained, market):
    policy = _policy(trained.out_dir, market[1])
    assert isinstance(policy, Policy)
    assert policy.version == trained.set_id and policy.error is None


def test_entries_are_complete_inside_the_zone_and_explained(decisions, trained):
    entries = [d for d in decisions if d.skip is None]
    assert len(entries) >= 10, Counter(d.skip for d in decisions)
    feature_names = set(trained.cards["direction"]["features"])
    for d in entries:
        assert ZONE.explain(d) is None
        assert d.side in (Side.LONG, Side.SHORT)
        assert 0 < d.size_pct <= SafetyLimits().max_position_fraction
        assert d.take_profit_pct == pytest.approx(d.harvest.t3_r * d.stop_loss_pct)
        assert d.policy == "ai" and d.model_version == trained.set_id
        assert d.reasons and {name for name, _ in d.reasons} <= feature_names


def test_decisions_vary_with_the_market(decisions):
    entries = [d for d in decisions if d.skip is None]
    for values in (
        [d.leverage for d in entries],
        [d.size_pct for d in entries],
        [d.stop_loss_pct for d in entries],
        [d.harvest.t1_r for d in entries],
        [d.harvest.t3_r for d in entries],
    ):
        assert len(set(np.round(values, 9))) > 1


def test_skips_carry_reason_codes_and_details(decisions):
    skips = [d for d in decisions if d.skip is not None]
    assert skips and all(d.skip_detail for d in skips)


def test_decisions_never_read_the_future(trained, market):
    candles, funding = market
    i = 1400
    t = int(candles["BTC-USDT"].index[i])
    rng = np.random.default_rng(5)
    moved_c, moved_f = {}, {}
    for s, c in candles.items():
        c = c.copy()
        later = c.index > t
        c.loc[later, ["open", "high", "low", "close", "volume"]] *= rng.uniform(
            0.5, 1.5, (later.sum(), 1)
        )
        moved_c[s] = c
        f = funding[s].copy()
        f.loc[f.index > t, "funding_rate"] *= -3
        moved_f[s] = f
    universe = UniverseConfig.from_mapping({"count": 4})
    before = _run(_policy(trained.out_dir, funding, universe=universe), candles, range(1380, i + 1))
    after = _run(_policy(trained.out_dir, moved_f, universe=universe), moved_c, range(1380, i + 1))
    assert before == after


def test_same_models_same_decisions(trained, market, decisions):
    candles, funding = market
    again = _run(
        _policy(trained.out_dir, funding, universe=UniverseConfig.from_mapping({"count": 4})),
        candles,
    )
    assert again == decisions


def test_entries_carry_the_exit_values_of_the_model_set(decisions, trained):
    """Close fractions from the ladder heads' quantile levels, the time exit from their horizon,
    the reduce step from the kill card: the values of the decision's own regime."""
    q = {r: trained.cards[f"favourable_{r}"]["outputs"]["quantile"] for r in ("t1", "t2", "t3")}
    assert (q["t1"], q["t2"], q["t3"]) == (0.5, 0.7, 0.85)  # the defaults the small set used
    bar_ms = trained.cards["direction"]["training_window"]["bar_ms"]
    horizon = trained.cards["direction"]["outputs"]["horizon_bars"]
    kill_card = trained.cards["kill"]["outputs"]
    by_regime = {
        (kill_card["thresholds_by_regime"][k], kill_card["reduce_thresholds_by_regime"][k],
         kill_card["reduce_fracs_by_regime"][k])
        for k in kill_card["thresholds_by_regime"]
    }  # fmt: skip
    entries = [d for d in decisions if d.skip is None]
    assert entries
    for d in entries:
        assert (d.harvest.t1_close_frac, d.harvest.t2_close_frac) == (
            pytest.approx(0.4),
            pytest.approx(0.5),
        )
        assert d.max_hold_sec == horizon * bar_ms / 1000 == 12 * 3600
        assert (d.kill_threshold, d.kill_reduce_threshold, d.kill_reduce_frac) in by_regime
        assert d.kill_reduce_threshold <= d.kill_threshold and 0 < d.kill_reduce_frac < 1


def test_harvest_close_fractions_follow_the_quantile_levels():
    assert harvest_close_fracs(0.5, 0.7, 0.85) == (pytest.approx(0.4), pytest.approx(0.5))
    assert harvest_close_fracs(0.6, 0.8, 0.9) == (pytest.approx(0.5), pytest.approx(0.5))


def test_close_fractions_are_read_from_the_cards_not_the_defaults(model_copy, market):
    candles, funding = market
    for role, q in (("t1", 0.6), ("t2", 0.8), ("t3", 0.9)):
        path = model_copy / f"favourable_{role}.json"
        card = json.loads(path.read_text())
        card["outputs"]["quantile"] = q
        write_card(path, card)
    policy = _policy(model_copy, funding, universe=UniverseConfig.from_mapping({"count": 4}))
    entries = [d for d in _run(policy, candles) if d.skip is None]
    assert entries
    for d in entries:
        assert (d.harvest.t1_close_frac, d.harvest.t2_close_frac) == (
            pytest.approx(0.5),
            pytest.approx(0.5),
        )


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("delete", SkipReason.MODEL_MISSING),
        ("corrupt", SkipReason.MODEL_CORRUPT),
        ("expire", SkipReason.MODEL_STALE),
        ("mismatch", SkipReason.MODEL_CORRUPT),
        ("no reduce step", SkipReason.MODEL_CORRUPT),
        ("format 1", SkipReason.MODEL_CORRUPT),
    ],
)
def test_fail_closed_drills(model_copy, market, damage, reason):
    candles, funding = market
    if damage == "delete":
        (model_copy / "favourable_t1.txt").unlink()
    elif damage == "corrupt":
        path = model_copy / "adverse.txt"
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "no reduce step":  # a kill card without the reduce step: no default one
        path = model_copy / "kill.json"
        card = json.loads(path.read_text())
        del card["outputs"]["reduce_fracs_by_regime"]
        write_card(path, card)
    elif damage == "format 1":  # a set trained before the reduce step existed
        for path in model_copy.glob("*.json"):
            card = json.loads(path.read_text())
            card["format_version"] = 1
            write_card(path, card)
    else:
        for path in model_copy.glob("*.json"):
            card = json.loads(path.read_text())
            if damage == "expire":
                card["valid_until_ms"] = int(candles["BTC-USDT"].index[1300])
                card["valid_until"] = iso_ms(card["valid_until_ms"])
            else:
                card["features"] = card["features"][::-1]
            write_card(path, card)
    policy = _policy(model_copy, funding)
    out = _run(policy, candles, range(1350, 1400, 7))
    assert out and not [d for d in out if d.skip is None]
    assert {d.skip for d in out} == {reason}
    assert all(d.skip_detail for d in out)


def _with_last_bar(snapshot: MarketSnapshot, symbol: str, **changes) -> MarketSnapshot:
    series = {}
    for s in snapshot.symbols:
        b = snapshot.bars(s)
        arrays = {k: getattr(b, k).copy() for k in ("ts", "open", "high", "low", "close", "volume")}
        if s == symbol:
            for k, factor in changes.items():
                arrays[k][-1] = arrays[k][-1] * factor
        series[s] = Bars.from_arrays(**arrays)
    return MarketSnapshot.from_windows(snapshot.ts, snapshot.timeframe_ms, series)


def test_nan_features_skip(trained, market):
    candles, funding = market
    snap = _with_last_bar(snapshot_at(candles, 1400), "ETH-USDT", volume=np.nan)
    out = _policy(trained.out_dir, funding).decide(snap, Portfolio(wallet_balance=1e4))
    eth = [d for d in out if d.symbol == "ETH-USDT"]
    assert eth[0].skip is SkipReason.NAN_FEATURES and "volume_z" in eth[0].skip_detail


def test_out_of_distribution_inputs_skip(trained, market):
    candles, funding = market
    snap = _with_last_bar(snapshot_at(candles, 1400), "SOL-USDT", close=3.0, high=3.0)
    out = _policy(trained.out_dir, funding).decide(snap, Portfolio(wallet_balance=1e4))
    sol = [d for d in out if d.symbol == "SOL-USDT"]
    assert sol[0].skip is SkipReason.OUT_OF_DISTRIBUTION
    assert "training range" in sol[0].skip_detail


def test_without_funding_data_the_funding_features_are_missing(trained, market):
    candles, _ = market
    out = _policy(trained.out_dir, None).decide(
        snapshot_at(candles, 1400), Portfolio(wallet_balance=1e4)
    )
    assert {d.skip for d in out} == {SkipReason.NAN_FEATURES}


def test_warmup(trained, market):
    candles, funding = market
    out = _policy(trained.out_dir, funding).decide(
        snapshot_at(candles, 50), Portfolio(wallet_balance=1e4)
    )
    assert {d.skip for d in out} == {SkipReason.WARMUP}


def test_fixed_universe_count(trained, market):
    candles, funding = market
    policy = _policy(trained.out_dir, funding, universe=UniverseConfig.from_mapping({"count": 2}))
    for i in range(1300, 1400, 10):
        out = policy.decide(snapshot_at(candles, i), Portfolio(wallet_balance=1e4))
        assert sum(d.skip is not SkipReason.NOT_IN_UNIVERSE for d in out) == 2
        assert sum(d.skip is SkipReason.NOT_IN_UNIVERSE for d in out) == 2


def test_auto_universe_count_stays_within_bounds(trained, market):
    candles, funding = market
    policy = _policy(
        trained.out_dir,
        funding,
        universe=UniverseConfig.from_mapping({"count": "auto", "auto_min": 1, "auto_max": 3}),
    )
    for i in range(1300, 1400, 10):
        out = policy.decide(snapshot_at(candles, i), Portfolio(wallet_balance=1e4))
        inside = sum(d.skip is not SkipReason.NOT_IN_UNIVERSE for d in out)
        assert 1 <= inside <= 3


def test_held_symbols_are_left_to_the_exit_controller(trained, market):
    candles, funding = market
    snap = snapshot_at(candles, 1400)
    pos = Position("BTC-USDT", Side.LONG, 0.01, snap.last_close("BTC-USDT"), 5.0, snap.ts - HOUR_MS)
    portfolio = Portfolio(wallet_balance=1e4, positions={"BTC-USDT": pos})
    out = _policy(trained.out_dir, funding).decide(snap, portfolio)
    assert "BTC-USDT" not in {d.symbol for d in out} and len(out) == 3


def test_stricter_limits_shrink_what_the_policy_asks_for(trained, market):
    candles, funding = market
    strict = SafetyLimits(max_leverage=3.0, max_position_size_pct=2.0)
    policy = _policy(
        trained.out_dir, funding, limits=strict, universe=UniverseConfig.from_mapping({"count": 4})
    )
    zone = AutonomyZone.for_limits(strict)
    entries = [
        d
        for i in OUT_OF_SAMPLE
        for d in safe_decide(policy, snapshot_at(candles, i), Portfolio(wallet_balance=1e4), zone)
        if d.skip is None
    ]
    assert entries
    assert all(d.leverage <= 3.0 and d.size_pct <= 0.02 for d in entries)


def test_universe_config_defaults_and_errors():
    from models.errors import UniverseConfigError

    default = UniverseConfig.from_mapping()
    assert default.count == 10 and (default.auto_min, default.auto_max) == (5, 20)
    with pytest.raises(UniverseConfigError):
        UniverseConfig.from_mapping({"count": 0})
    with pytest.raises(UniverseConfigError):
        UniverseConfig.from_mapping({"count": "auto", "auto_min": 9, "auto_max": 3})
    with pytest.raises(UniverseConfigError, match="unknown"):
        UniverseConfig.from_mapping({"size": 3})


def test_kill_scores_for_open_positions(trained, market, model_copy):
    candles, funding = market
    snap = snapshot_at(candles, 1400)
    positions = [
        Position("BTC-USDT", Side.LONG, 0.01, snap.last_close("BTC-USDT"), 5.0, snap.ts - HOUR_MS),
        Position("ETH-USDT", Side.SHORT, 0.1, snap.last_close("ETH-USDT"), 5.0, snap.ts - HOUR_MS),
    ]
    scores = _policy(trained.out_dir, funding).kill_scores(snap, positions)
    assert set(scores) == {"BTC-USDT", "ETH-USDT"}
    assert all(0 <= v <= 1 for v in scores.values())
    # a refused model set gives no score at all, never a made-up one
    (model_copy / "kill.txt").unlink()
    assert _policy(model_copy, funding).kill_scores(snap, positions) == {}


def test_costs_make_the_policy_trade_less_and_never_larger(trained, market, decisions):
    candles, funding = market
    universe = UniverseConfig.from_mapping({"count": 4})
    costly = _run(
        _policy(trained.out_dir, funding, round_trip_cost=VENUE_COST, universe=universe), candles
    )
    free_entries = {(d.ts, d.symbol): d for d in decisions if d.skip is None}
    costly_entries = [d for d in costly if d.skip is None]
    assert len(costly_entries) < len(free_entries)
    pairs = [(d.size_pct, free_entries[(d.ts, d.symbol)].size_pct) for d in costly_entries]
    assert all(costly <= free for costly, free in pairs)
    low = [d for d in costly if d.skip is SkipReason.LOW_CONFIDENCE]
    assert any("round-trip cost" in d.skip_detail for d in low)
