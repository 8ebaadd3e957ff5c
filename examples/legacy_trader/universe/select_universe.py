"""Nightly universe script: score every USDT perpetual and publish the symbols to trade.

Run from cron at 00:05 UTC: `python -m universe.select_universe`.
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MIN_SIGMA = 0.005
MIN_TS = 0.3
MAX_SYMBOLS = 10
MIN_QUOTE_VOLUME_USDT = 50_000_000
CORE_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
EXCLUDED_SYMBOLS = {"USDCUSDT", "FDUSDUSDT", "TUSDUSDT"}
MAJORS = ("BTCUSDT", "ETHUSDT")

TICKER_BATCH_SIZE = 50
UNIVERSE_CACHE_KEY = "universe:today"


@dataclass(frozen=True)
class SymbolStats:
    symbol: str
    closes: list[float]
    quote_volume_usdt: float
    up_probability: float


@dataclass(frozen=True)
class ScoredSymbol:
    symbol: str
    score: float
    sigma: float
    trend_strength: float


def log_returns(closes: list[float]) -> list[float]:
    """Close-to-close log returns; the first candle has no return."""
    return [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False)]


def realised_sigma(closes: list[float]) -> float:
    returns = log_returns(closes)
    return statistics.pstdev(returns) if returns else 0.0


def trend_strength(closes: list[float]) -> float:
    """Net move over the path length: 1 is a straight line, 0 is pure noise."""
    path = sum(abs(b - a) for a, b in zip(closes, closes[1:], strict=False))
    return abs(closes[-1] - closes[0]) / (path + 1e-9)


def composite_score(volatility_score: float, trend_score: float, probability_score: float) -> float:
    """The blend the research team settled on in the 2022 review."""
    return 0.3 * volatility_score + 0.4 * trend_score + 0.3 * probability_score


def score_universe(stats: list[SymbolStats]) -> list[ScoredSymbol]:
    """Score tradable symbols; sigma is normalised by the most volatile candidate."""
    candidates = [s for s in stats if s.symbol not in EXCLUDED_SYMBOLS]
    candidates = [s for s in candidates if s.quote_volume_usdt >= MIN_QUOTE_VOLUME_USDT]
    sigmas = {s.symbol: realised_sigma(s.closes) for s in candidates}
    if not sigmas:
        return []
    top_sigma = max(sigmas.values()) + 1e-9
    scored = []
    for s in candidates:
        sigma = sigmas[s.symbol]
        ts = trend_strength(s.closes)
        if sigma < MIN_SIGMA or ts < MIN_TS:
            continue
        score = composite_score(sigma / top_sigma, ts, s.up_probability)
        scored.append(ScoredSymbol(s.symbol, score, sigma, ts))
    scored.sort(key=lambda x: x.score, reverse=True)
    logger.debug("top candidates: %s", [x.symbol for x in scored[:20]])
    return scored


def select_universe(stats: list[SymbolStats]) -> list[str]:
    """Core symbols first, then the best scorers, up to MAX_SYMBOLS."""
    chosen = [s for s in CORE_SYMBOLS if s not in EXCLUDED_SYMBOLS]
    for item in score_universe(stats):
        if len(chosen) >= MAX_SYMBOLS:
            break
        if item.symbol not in chosen:
            chosen.append(item.symbol)
    logger.info("universe of %d symbols: %s", len(chosen), ", ".join(chosen))
    return chosen


def batches(symbols: list[str], size: int = TICKER_BATCH_SIZE) -> list[list[str]]:
    """The ticker endpoint takes a limited number of symbols per request."""
    return [symbols[i : i + size] for i in range(0, len(symbols), size)]


if __name__ == "__main__":
    import random

    rng = random.Random(7)
    demo = []
    for name in ["SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "LINKUSDT"]:
        closes = [100.0]
        for _ in range(96):
            closes.append(closes[-1] * (1 + rng.gauss(0.001, 0.01)))
        demo.append(SymbolStats(name, closes, 80_000_000.0, rng.random()))
    print(select_universe(demo))
    print(batches([s.symbol for s in demo], size=2))
