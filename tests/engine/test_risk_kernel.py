"""The risk kernel: each hard limit clips or vetoes, each with a journaled SafetyEvent;
each trading state; purity. Numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import copy
import math

import pytest

from engine.core.risk import RiskKernel, check_decision, maintenance_margin, margin_ratio
from engine.core.tiers import LeverageTiers
from engine.domain import (
    LimitName,
    Order,
    OrderType,
    SafetyAction,
    SafetyLimits,
    Side,
    SkipReason,
    TradingState,
)
from engine.journal.store import Journal
from tests.engine.conftest import T0, portfolio, position

BTC = 100_000.0
ETH = 3_000.0


@pytest.fixture
def kernel(tiers: LeverageTiers) -> RiskKernel:
    return RiskKernel(SafetyLimits(), tiers)


def test_in_limit_decision_passes_unchanged(kernel: RiskKernel, make_entry) -> None:
    d = make_entry()
    v = kernel.check(d, portfolio(10_000.0), BTC)
    assert v.approved and v.events == () and v.decision == d
    assert v.notional == pytest.approx(200.0)  # 10,000 * 0.02: the legacy 200 USDT
    assert v.qty == pytest.approx(0.002)


def test_size_is_clipped_to_max_position(kernel: RiskKernel, make_entry) -> None:
    v = kernel.check(make_entry(size_pct=0.8), portfolio(10_000.0), BTC)
    assert v.approved and v.decision.size_pct == 0.5 and v.notional == pytest.approx(5_000.0)
    (e,) = v.events
    assert (e.limit, e.action, e.requested, e.applied, e.bound) == (
        LimitName.MAX_POSITION_SIZE, SafetyAction.CLIP, 0.8, 0.5, 0.5,
    )  # fmt: skip


def test_size_clip_follows_stricter_config(tiers: LeverageTiers, make_entry) -> None:
    k = RiskKernel(SafetyLimits(max_position_size_pct=5.0), tiers)
    v = k.check(make_entry(size_pct=0.3), portfolio(10_000.0), BTC)
    assert v.approved and v.decision.size_pct == pytest.approx(0.05)
    assert v.events[0].limit is LimitName.MAX_POSITION_SIZE


def test_leverage_is_clipped_to_the_configured_limit(tiers: LeverageTiers, make_entry) -> None:
    k = RiskKernel(SafetyLimits(max_leverage=20.0), tiers)
    v = k.check(make_entry(leverage=50.0), portfolio(10_000.0), BTC)
    assert v.approved and v.decision.leverage == 20.0
    (e,) = v.events
    assert (e.limit, e.action, e.requested, e.applied) == (
        LimitName.MAX_LEVERAGE, SafetyAction.CLIP, 50.0, 20.0,
    )  # fmt: skip


def test_leverage_is_clipped_to_the_symbols_bracket(kernel: RiskKernel, make_entry) -> None:
    # 1000PEPE's first bracket allows 75x
    v = kernel.check(make_entry(symbol="1000PEPE-USDT", leverage=100.0), portfolio(10_000.0), 0.01)
    assert v.approved and v.decision.leverage == 75.0
    assert v.events[0].limit is LimitName.BRACKET_LEVERAGE and v.events[0].applied == 75.0


def test_leverage_bracket_depends_on_the_notional(kernel: RiskKernel, make_entry) -> None:
    # equity 1,000,000 * 0.1 = 100,000 USDT of BTC: second bracket, 100x
    v = kernel.check(make_entry(leverage=125.0, size_pct=0.1), portfolio(1_000_000.0), BTC)
    assert v.approved and v.decision.leverage == 100.0
    # 40,000 USDT stays in the first bracket: 125x passes
    v = kernel.check(make_entry(leverage=125.0, size_pct=0.04), portfolio(1_000_000.0), BTC)
    assert v.approved and v.decision.leverage == 125.0 and v.events == ()


def test_notional_above_the_top_bracket_is_vetoed(kernel: RiskKernel, make_entry) -> None:
    # 0.5 * 4e9 = 2e9 USDT > BTC's top bracket cap of 1.8e9
    v = kernel.check(make_entry(size_pct=0.5, leverage=1.0), portfolio(4e9), BTC)
    assert not v.approved and v.decision.skip is SkipReason.BRACKET_EXCEEDED
    assert v.events[-1].limit is LimitName.BRACKET_NOTIONAL
    assert v.events[-1].action is SafetyAction.VETO


def test_exposure_over_the_limit_is_vetoed(kernel: RiskKernel, make_entry) -> None:
    # 1.9 of equity already open (19,000 of ETH on 10,000 equity); +0.2 would make 2.1
    held = position("ETH-USDT", Side.LONG, 19_000.0 / ETH, ETH)
    pf = portfolio(10_000.0, held)
    v = kernel.check(make_entry(size_pct=0.2), pf, BTC)
    assert not v.approved and v.decision.skip is SkipReason.EXPOSURE_LIMIT
    (e,) = v.events
    assert e.limit is LimitName.MAX_TOTAL_EXPOSURE and e.action is SafetyAction.VETO
    assert e.requested == pytest.approx(2.1) and e.bound == 2.0 and e.applied is None
    # +0.1 lands exactly on 2.0: allowed
    assert kernel.check(make_entry(size_pct=0.1), pf, BTC).approved


def test_margin_ratio_floor_is_vetoed(tiers: LeverageTiers, make_entry) -> None:
    # stricter floor 99.5 %: BTC 10,000 held -> mm 40; ETH +5,000 -> mm 20; (10,000-60)/10,000
    k = RiskKernel(SafetyLimits(min_margin_ratio_pct=99.5), tiers)
    pf = portfolio(10_000.0, position("BTC-USDT", Side.LONG, 0.1, BTC))
    v = k.check(make_entry(symbol="ETH-USDT", size_pct=0.5), pf, ETH)
    assert not v.approved and v.decision.skip is SkipReason.MARGIN_LIMIT
    (e,) = v.events
    assert e.limit is LimitName.MIN_MARGIN_RATIO and e.action is SafetyAction.VETO
    assert e.requested == pytest.approx(0.994) and e.bound == pytest.approx(0.995)
    # +2,000 of ETH -> mm 8 -> (10,000 - 48) / 10,000 = 0.9952: allowed
    assert k.check(make_entry(symbol="ETH-USDT", size_pct=0.2), pf, ETH).approved


def test_initial_margin_beyond_equity_is_vetoed(kernel: RiskKernel, make_entry) -> None:
    # 9,000 held at 1x uses 9,000 of margin; 2,000 more at 1x needs 11,000 > 10,000 equity
    pf = portfolio(10_000.0, position("ETH-USDT", Side.LONG, 3.0, ETH, leverage=1.0))
    v = kernel.check(make_entry(size_pct=0.2, leverage=1.0), pf, BTC)
    assert not v.approved and v.decision.skip is SkipReason.INSUFFICIENT_MARGIN
    assert v.events[0].limit is LimitName.AVAILABLE_MARGIN
    assert kernel.check(make_entry(size_pct=0.2, leverage=2.0), pf, BTC).approved


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (TradingState.HALTED, SkipReason.STATE_HALTED),
        (TradingState.REDUCING, SkipReason.STATE_REDUCING),
    ],
)
def test_no_new_entries_outside_active(kernel: RiskKernel, make_entry, state, reason) -> None:
    v = kernel.check(make_entry(), portfolio(10_000.0, state=state), BTC)
    assert not v.approved and v.decision.skip is reason
    assert v.events[0].limit is LimitName.TRADING_STATE and v.events[0].action is SafetyAction.VETO


def _exit_order(reduce_only: bool, side: Side = Side.SHORT) -> Order:
    return Order.create(
        "run", T0, "BTC-USDT", side, OrderType.MARKET, 0.1, "kill", reduce_only=reduce_only
    )


def test_exit_orders_by_trading_state(kernel: RiskKernel) -> None:
    held = position("BTC-USDT", Side.LONG, 0.1, BTC)
    active = portfolio(10_000.0, held)
    reducing = portfolio(10_000.0, held, state=TradingState.REDUCING)
    halted = portfolio(10_000.0, held, state=TradingState.HALTED)
    assert kernel.check_order(_exit_order(True), active) is None
    assert kernel.check_order(_exit_order(False), active) is None
    assert kernel.check_order(_exit_order(True), reducing) is None  # reducing passes
    blocked = kernel.check_order(_exit_order(False), reducing)
    assert blocked is not None and blocked.skip is SkipReason.STATE_REDUCING
    for reduce_only in (True, False):
        e = kernel.check_order(_exit_order(reduce_only), halted)
        assert e is not None and e.skip is SkipReason.STATE_HALTED
        assert e.action is SafetyAction.VETO
    # a "reduce-only" order on the position's own side would grow it: vetoed
    wrong = kernel.check_order(_exit_order(True, Side.LONG), reducing)
    assert wrong is not None and wrong.action is SafetyAction.VETO


def test_one_position_per_symbol(kernel: RiskKernel, make_entry) -> None:
    pf = portfolio(10_000.0, position("BTC-USDT", Side.LONG, 0.01, BTC))
    v = kernel.check(make_entry(side=Side.SHORT), pf, BTC)
    assert not v.approved and v.decision.skip is SkipReason.ALREADY_IN_POSITION
    assert v.events[0].limit is LimitName.ONE_POSITION_PER_SYMBOL


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"leverage": math.nan}, SkipReason.POLICY_NAN),
        ({"stop_loss_pct": None}, SkipReason.MISSING_VALUE),
        ({"kill_threshold": 0.95}, SkipReason.OUT_OF_ZONE),
        ({"leverage": 0.5}, SkipReason.OUT_OF_ZONE),
    ],
)
def test_out_of_zone_reaching_the_kernel_is_vetoed(kernel, make_entry, changes, reason) -> None:
    v = kernel.check(make_entry(**changes), portfolio(10_000.0), BTC)
    assert not v.approved and v.decision.skip is reason
    assert v.events[0].limit is LimitName.AUTONOMY_ZONE


@pytest.mark.parametrize(
    ("price", "wallet", "reason"),
    [(math.nan, 10_000.0, SkipReason.NO_PRICE), (0.0, 10_000.0, SkipReason.NO_PRICE),
     (BTC, 0.0, SkipReason.NO_EQUITY)],
)  # fmt: skip
def test_unusable_inputs_are_vetoed(kernel, make_entry, price, wallet, reason) -> None:
    v = kernel.check(make_entry(), portfolio(wallet), price)
    assert not v.approved and v.decision.skip is reason and v.events[0].limit is LimitName.INPUTS


def test_symbol_without_brackets_is_vetoed(kernel: RiskKernel, make_entry) -> None:
    v = kernel.check(make_entry(symbol="BNB-USDT"), portfolio(10_000.0), 600.0)
    assert not v.approved and v.decision.skip is SkipReason.BRACKET_EXCEEDED


def test_skips_pass_through_without_events(kernel: RiskKernel, make_entry) -> None:
    skip = make_entry().as_skip(SkipReason.NO_SIGNAL, "flat")
    v = kernel.check(skip, portfolio(10_000.0), BTC)
    assert not v.approved and v.decision is skip and v.events == ()


def test_kernel_is_pure(kernel: RiskKernel, make_entry, tiers: LeverageTiers) -> None:
    pf = portfolio(10_000.0, position("ETH-USDT", Side.LONG, 1.0, ETH, mark=3_100.0))
    before = copy.deepcopy(pf)
    d = make_entry(size_pct=0.9, leverage=125.0)
    first = kernel.check(d, pf, BTC)
    again = check_decision(d, pf, SafetyLimits(), tiers, BTC)
    assert first == again
    assert pf == before  # nothing mutated


def test_margin_ratio_by_hand(tiers: LeverageTiers) -> None:
    # wallet 10,000; long 0.5 BTC from 100,000 marked at 98,000: upnl -1,000, equity 9,000;
    # notional 49,000 -> mm 49,000 * 0.004 = 196; ratio (9,000 - 196) / 9,000
    pf = portfolio(10_000.0, position("BTC-USDT", Side.LONG, 0.5, BTC, mark=98_000.0))
    assert maintenance_margin(pf, tiers) == pytest.approx(196.0)
    assert margin_ratio(pf, tiers) == pytest.approx(8_804.0 / 9_000.0)
    # at other prices, without touching the marks: 90,000 -> equity 5,000, mm 180
    assert margin_ratio(pf, tiers, {"BTC-USDT": 90_000.0}) == pytest.approx(4_820.0 / 5_000.0)
    assert pf.positions["BTC-USDT"].mark_price == 98_000.0
    assert margin_ratio(portfolio(10_000.0), tiers) == 1.0
    assert margin_ratio(portfolio(-5.0), tiers) == 0.0


JOURNAL_CASES = {
    # name: (limits, decision changes, portfolio factory, price, expected limit, action)
    "size clip": ({}, {"size_pct": 0.8}, lambda: portfolio(1e4), BTC,
                  "max_position_size", "CLIP"),
    "leverage clip": ({"max_leverage": 20.0}, {"leverage": 50.0}, lambda: portfolio(1e4), BTC,
                      "max_leverage", "CLIP"),
    "bracket clip": ({}, {"symbol": "1000PEPE-USDT", "leverage": 100.0}, lambda: portfolio(1e4),
                     0.01, "bracket_max_leverage", "CLIP"),
    "bracket cap veto": ({}, {"size_pct": 0.5, "leverage": 1.0}, lambda: portfolio(4e9), BTC,
                         "bracket_max_notional", "VETO"),
    "exposure veto": ({}, {"size_pct": 0.3},
                      lambda: portfolio(1e4, position("ETH-USDT", Side.LONG, 6.0, ETH)), BTC,
                      "max_total_exposure", "VETO"),
    "margin veto": ({"min_margin_ratio_pct": 99.5}, {"symbol": "ETH-USDT", "size_pct": 0.5},
                    lambda: portfolio(1e4, position("BTC-USDT", Side.LONG, 0.1, BTC)), ETH,
                    "min_margin_ratio", "VETO"),
    "free margin veto": ({}, {"size_pct": 0.2, "leverage": 1.0},
                         lambda: portfolio(1e4, position("ETH-USDT", Side.LONG, 3.0, ETH, 1.0)),
                         BTC, "available_margin", "VETO"),
    "halted veto": ({}, {}, lambda: portfolio(1e4, state=TradingState.HALTED), BTC,
                    "trading_state", "VETO"),
    "reducing veto": ({}, {}, lambda: portfolio(1e4, state=TradingState.REDUCING), BTC,
                      "trading_state", "VETO"),
    "held veto": ({}, {}, lambda: portfolio(1e4, position("BTC-USDT", Side.LONG, 0.01, BTC)),
                  BTC, "one_position_per_symbol", "VETO"),
    "zone veto": ({}, {"kill_threshold": 0.95}, lambda: portfolio(1e4), BTC,
                  "autonomy_zone", "VETO"),
    "price veto": ({}, {}, lambda: portfolio(1e4), math.nan, "inputs", "VETO"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(JOURNAL_CASES))
def test_every_clip_and_veto_is_journaled(tiers: LeverageTiers, make_entry, case: str) -> None:
    limits, changes, make_pf, price, limit, action = JOURNAL_CASES[case]
    v = RiskKernel(SafetyLimits(**limits), tiers).check(make_entry(**changes), make_pf(), price)
    assert v.approved is (action == "CLIP")
    assert v.events and (v.events[-1].limit, v.events[-1].action) == (limit, action)
    if not v.approved:
        assert v.decision.skip is v.events[-1].skip is not None
    with Journal(":memory:") as j:
        j.start_run("backtest", "test")
        j.record_decision(v.decision)
        j.record_safety_events(v.events)
        (row,) = j.rows("safety_event")
        (decision,) = j.rows("decision")
    assert (row["limit"], row["action"], row["symbol"]) == (limit, action, v.decision.symbol)
    assert row["requested"] == v.events[-1].requested and row["bound"] == v.events[-1].bound
    if action == "CLIP":
        assert row["applied"] == v.events[-1].applied and decision["skip"] is None
    else:
        assert row["applied"] is None and decision["skip"] == row["skip"]


# -- the limits after the fill: fee and slippage are the account's too ------------------------

COST = 0.0005 + 0.0002 / (1 - 0.0002)  # BrokerConfig.entry_cost of the packaged venue


def test_an_entry_landing_on_the_exposure_limit_is_vetoed_once_its_fill_is_paid(
    tiers: LeverageTiers, make_entry
) -> None:
    # ETH 15,000 on 10,000: 1.5x; 0.5 more lands on 2.0 exactly at the reference price
    pf = portfolio(10_000.0, position("ETH-USDT", Side.LONG, 5.0, ETH, mark=ETH))
    entry = make_entry(size_pct=0.5 / (1 + 0.5 * COST), leverage=5.0)
    assert RiskKernel(SafetyLimits(), tiers).check(entry, pf, BTC).approved
    v = RiskKernel(SafetyLimits(), tiers, entry_cost=COST).check(entry, pf, BTC)
    assert not v.approved and v.decision.skip is SkipReason.EXPOSURE_LIMIT
    # after the fill: equity less the cost, the new position marked up to (1 + cost) of it
    n = 10_000.0 * entry.size_pct
    assert v.events[-1].requested == pytest.approx(
        (15_000.0 + n * (1 + COST)) / (10_000 - n * COST)
    )


def test_the_size_limit_is_half_of_the_equity_left_after_the_fill(
    tiers: LeverageTiers, make_entry
) -> None:
    v = RiskKernel(SafetyLimits(), tiers, entry_cost=COST).check(
        make_entry(size_pct=0.5), portfolio(10_000.0), BTC
    )
    assert v.approved and v.decision.size_pct < 0.5
    assert v.notional / (10_000.0 - v.notional * COST) == pytest.approx(0.5, rel=1e-12)
    (e,) = v.events
    assert (e.limit, e.action, e.requested, e.bound) == (
        LimitName.MAX_POSITION_SIZE, SafetyAction.CLIP, 0.5, 0.5,
    )  # fmt: skip


@pytest.mark.parametrize("bad", [-0.001, 1.0, math.nan, math.inf])
def test_an_entry_cost_that_is_not_a_fraction_is_refused(tiers: LeverageTiers, bad: float) -> None:
    with pytest.raises(ValueError, match="entry_cost"):
        RiskKernel(SafetyLimits(), tiers, entry_cost=bad)
