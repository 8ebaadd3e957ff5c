"""Leverage and size heuristics used when the RL agent has no opinion."""

from __future__ import annotations

from dataclasses import dataclass

LEVERAGE_TARGET_VOL = 0.02
FULL_SIZE_CONFIDENCE = 0.75


def choose_leverage(volatility: float | None, confidence: float) -> float:
    """Leverage that targets a fixed daily move of the margin; 5x when volatility is unknown."""
    if volatility is None:
        return 5.0
    lev = LEVERAGE_TARGET_VOL / volatility
    if confidence < 0.6:
        lev = lev * 0.5
    return clamp_leverage(lev)


def clamp_leverage(lev: float) -> float:
    """Never below 1x, never above what the desk trades."""
    return min(max(lev, 1.0), 20.0)


def tier_size_multiplier(lev: float) -> float:
    """Smaller positions at higher leverage, by the exchange's margin tiers."""
    if lev <= 10:
        return 1.0
    elif lev <= 25:
        return 0.6
    return 0.3


def confidence_size_scale(confidence: float) -> float:
    """Scale size with model confidence, within half to one and a half times the base size."""
    size_scale = confidence / FULL_SIZE_CONFIDENCE
    return min(max(size_scale, 0.5), 1.5)


def position_size(base_size_usd: float, lev: float, confidence: float) -> float:
    """Size in USDT margin for one entry."""
    size = base_size_usd * tier_size_multiplier(lev) * confidence_size_scale(confidence)
    return round(size, 2)


def size_for_equity(equity_usdt: float, size_fraction: float = 0.02) -> float:
    """Margin to commit from account equity (two percent unless told otherwise)."""
    return equity_usdt * size_fraction


@dataclass(frozen=True)
class SizingDecision:
    """What the heuristics picked and why, for the decision log."""

    leverage: float
    size_usd: float
    reason: str


def heuristic_decision(
    base_size_usd: float, volatility: float | None, confidence: float
) -> SizingDecision:
    """Leverage and size together: the path the service takes when the RL decision is stale."""
    lev = choose_leverage(volatility, confidence)
    size = position_size(base_size_usd, lev, confidence)
    if volatility is None:
        reason = "volatility unknown, fallback leverage"
    else:
        reason = f"volatility {volatility:.4f}, confidence {confidence:.2f}"
    return SizingDecision(lev, size, reason)
