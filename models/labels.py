"""Training targets: what happened over the holding horizon after each bar.

Labels look into the future by definition, so they live apart from the features and training
purges `horizon` bars between every training window and the data it is judged on.
A trade is entered at the close of bar t and judged on bars t+1..t+horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

LABEL_COLUMNS = (
    "fwd_return",
    "excursion_up",
    "excursion_down",
    "collapsed_long",
    "collapsed_short",
)


def _forward_windows(x: np.ndarray, horizon: int) -> np.ndarray:
    """Row t holds x[t+1..t+horizon] (NaN-padded past the end)."""
    padded = np.concatenate([x[1:], np.full(horizon, np.nan)])
    return sliding_window_view(padded, horizon)[: len(x)]


def symbol_labels(candles: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Labels of every bar of one symbol, indexed like `candles`; NaN where the horizon runs out.

    - `fwd_return`: log return from close t to close t+horizon (its sign is the direction target);
    - `excursion_up` / `excursion_down`: the largest move above / below close t within the horizon,
      as a fraction of close t (never negative). A long's favourable excursion is the up move and
      its adverse one the down move; a short's the other way round;
    - `collapsed_long` / `collapsed_short`: 1 if a position on that side would have lost over the
      horizon *and* its adverse excursion exceeded its favourable one (the edge never showed).
    """
    if horizon < 1:
        raise ValueError("the label horizon must be at least one bar")
    close = candles["close"].to_numpy(np.float64)
    high = _forward_windows(candles["high"].to_numpy(np.float64), horizon)
    low = _forward_windows(candles["low"].to_numpy(np.float64), horizon)
    complete = np.zeros(len(close), dtype=bool)
    complete[: max(0, len(close) - horizon)] = True

    fwd = np.full(len(close), np.nan)
    fwd[complete] = np.log(close[horizon:] / close[: len(close) - horizon])
    up = np.full(len(close), np.nan)
    down = np.full(len(close), np.nan)
    up[complete] = np.maximum(high[complete].max(axis=1) / close[complete] - 1.0, 0.0)
    down[complete] = np.maximum(1.0 - low[complete].min(axis=1) / close[complete], 0.0)

    collapsed_long = np.where(complete, ((fwd < 0) & (down > up)).astype(float), np.nan)
    collapsed_short = np.where(complete, ((fwd > 0) & (up > down)).astype(float), np.nan)
    return pd.DataFrame(
        {
            "fwd_return": fwd,
            "excursion_up": up,
            "excursion_down": down,
            "collapsed_long": collapsed_long,
            "collapsed_short": collapsed_short,
        },
        index=candles.index,
    )


def side_excursions(labels: pd.DataFrame, side_sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(adverse, favourable) excursion fractions for positions of the given side signs (+1/-1)."""
    up = labels["excursion_up"].to_numpy(np.float64)
    down = labels["excursion_down"].to_numpy(np.float64)
    long = side_sign > 0
    return np.where(long, down, up), np.where(long, up, down)


def relevance_grades(score: np.ndarray, groups: np.ndarray, grades: int) -> np.ndarray:
    """Integer relevance 0..grades-1 of each row by its percentile of `score` within its group.

    Used as the universe ranker's target: groups are timestamps, the score how tradeable the
    symbol turned out to be.
    """
    pct = pd.Series(score).groupby(groups).rank(pct=True).to_numpy()
    return np.clip(np.ceil(pct * grades) - 1, 0, grades - 1).astype(np.int32)


def funding_over_horizon(
    bar_ts: np.ndarray,
    bar_ms: int,
    horizon: int,
    funding_ts: np.ndarray | None,
    funding_rate: np.ndarray | None,
) -> np.ndarray:
    """Sum of the funding rates a position entered at bar t's close pays until the horizon.

    Settlements counted: those after the entry (close of bar t) up to and including the exit
    (close of bar t + horizon). A long pays this sum of the notional, a short receives it.
    Zero where there is no funding data (a venue without funding).
    """
    bar_ts = np.asarray(bar_ts, dtype=np.int64)
    if funding_ts is None or funding_rate is None or len(funding_ts) == 0:
        return np.zeros(len(bar_ts))
    cum = np.r_[0.0, np.cumsum(funding_rate)]
    entry = bar_ts + bar_ms
    exit_ = bar_ts + (horizon + 1) * bar_ms
    first = np.searchsorted(funding_ts, entry, side="right")
    last = np.searchsorted(funding_ts, exit_, side="right")
    return cum[last] - cum[first]


def net_trade_returns(
    fwd_log_return: np.ndarray,
    funding_sum: np.ndarray,
    side_sign: np.ndarray,
    round_trip_cost: float,
) -> np.ndarray:
    """Return of a trade held over the horizon, net of the round-trip cost and funding.

    Fraction of the entry notional: the side's price return, minus the taker fees and slippage
    of both legs, minus the funding the side pays (positive rates: longs pay shorts).
    """
    side = np.asarray(side_sign, dtype=np.float64)
    gross = side * np.expm1(np.asarray(fwd_log_return, dtype=np.float64))
    return gross - round_trip_cost - side * np.asarray(funding_sum, dtype=np.float64)
