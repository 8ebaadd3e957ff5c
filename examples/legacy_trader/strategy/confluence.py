"""Confluence signal: a few indicators vote, the tally picks the side, a grade gates the alert.

Ported from the alerting bot the desk ran before the AI engine: it scored each symbol's last
closed bar, graded the setup and sent the good ones to the execution service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from strategy.confluence_params import *  # noqa: F403 - the notebook's parameter sheet

MIN_GRADE = os.getenv("CONFLUENCE_MIN_GRADE", "A")


@dataclass(frozen=True)
class Setup:
    symbol: str
    side: str
    score: int
    grade: str


def _sma(closes: list[float], period: int = 20) -> float:
    window = closes[-period:]
    return sum(window) / len(window)


def _breakout(highs: list[float], close: float) -> bool:
    """Close above the highest high of the bars before the bar at hand."""
    prior_highs = highs[:-1]
    return close > max(prior_highs[-55:])


def score_bar(closes: list[float], highs: list[float]) -> tuple[str, int]:
    """LONG or SHORT and how many points the side scored."""
    close = closes[-1]
    long_points = short_points = 0
    if close > _sma(closes):
        long_points += 2
    else:
        short_points += 2
    if _breakout(highs, close):
        long_points += 3
    if long_points >= short_points:
        return "LONG", long_points
    return "SHORT", short_points


def grade(points: int) -> str:
    """A for a setup at the tally's top, B one notch below, C otherwise."""
    if points >= A_GRADE_POINTS:  # noqa: F405
        return "A"
    return "B" if points >= B_GRADE_POINTS else "C"  # noqa: F405


def setup_for(symbol: str, closes: list[float], highs: list[float], volumes: list[float]):
    """The bar's setup when volume surges and it grades at least MIN_GRADE, else None."""
    if len(closes) < 60:  # warm-up: not enough bars for the breakout and the averages
        return None
    if volumes[-1] <= VOLUME_SURGE * _sma(volumes):  # noqa: F405
        return None
    side, points = score_bar(closes, highs)
    g = grade(points)
    if g > MIN_GRADE:  # "A" < "B": a later letter is a worse grade
        return None
    return Setup(symbol, side, points, g)


def describe(setup: Setup, closes: list[float]) -> str:
    """The alert's text: the setup and the last few closes."""
    recent = ", ".join(f"{c:.2f}" for c in closes[-5:])
    return f"{setup.symbol} {setup.side} grade {setup.grade} ({setup.score} pts); closes {recent}"


if __name__ == "__main__":
    bars = [100.0 + i * 0.5 for i in range(80)]
    found = setup_for("SOLUSDT", bars, [b + 1.0 for b in bars], [1_000.0] * 79 + [5_000.0])
    print(describe(found, bars) if found else "no setup")
