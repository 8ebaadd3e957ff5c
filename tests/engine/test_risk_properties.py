"""Property test: whatever comes in, an approved verdict never breaks a hard limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.risk import RiskKernel, maintenance_margin, ratio_of
from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.domain import Decision, HarvestLadder, SafetyLimits, Side
from tests.engine.conftest import T0, portfolio, position

TIERS = LeverageTiers.load(PACKAGED_TIERS)
SYMBOLS = ["BTC-USDT", "ETH-USDT", "1000PEPE-USDT", "SOL-USDT"]

limits_st = st.builds(
    SafetyLimits,
    min_margin_ratio_pct=st.floats(10.0, 99.9),
    max_leverage=st.floats(1.0, 125.0),
    max_position_size_pct=st.floats(0.1, 50.0),
    max_total_exposure_pct=st.floats(1.0, 200.0),
)


@settings(max_examples=300, deadline=None)
@given(
    limits=limits_st,
    symbol=st.sampled_from(SYMBOLS),
    leverage=st.floats(1.0, 125.0),
    size=st.floats(1e-4, 0.5),
    wallet=st.floats(100.0, 1e9),
    held_notional=st.floats(0.0, 3.0),
    held_leverage=st.floats(1.0, 20.0),
    price=st.floats(0.001, 200_000.0),
)
def test_approved_verdicts_respect_every_limit(
    limits, symbol, leverage, size, wallet, held_notional, held_leverage, price
) -> None:
    held = []
    if held_notional > 0:
        held.append(
            position("XRP-USDT", Side.LONG, held_notional * wallet / 2.0, 2.0, held_leverage)
        )
    pf = portfolio(wallet, *held)
    d = Decision(
        ts=T0, symbol=symbol, side=Side.SHORT, leverage=leverage, size_pct=size,
        stop_loss_pct=0.02, take_profit_pct=0.05, harvest=HarvestLadder(1.0, 2.0, 3.0, 0.5),
        kill_threshold=0.5, confidence=0.5,
    )  # fmt: skip
    v = RiskKernel(limits, TIERS).check(d, pf, price)
    if not v.approved:
        assert v.decision.skip is not None and v.events and v.events[-1].action == "VETO"
        return
    eq = pf.equity
    notional = v.notional
    assert v.decision.size_pct <= limits.max_position_fraction
    assert v.decision.leverage <= min(limits.max_leverage, TIERS.max_leverage(symbol, notional))
    assert (pf.gross_notional() + notional) / eq <= limits.max_exposure_fraction * (1 + 1e-9)
    maint = maintenance_margin(pf, TIERS) + TIERS.maintenance_margin(symbol, notional)
    assert ratio_of(eq, maint) >= limits.min_margin_ratio * (1 - 1e-9)
    assert pf.initial_margin() + notional / v.decision.leverage <= eq * (1 + 1e-9)
    clipped = v.decision.size_pct != size or v.decision.leverage != leverage
    assert clipped == bool(v.events)
