"""Performance metrics of a run, computed from its equity curve and its closed trades.

Pure numpy over plain arrays so that the same numbers come out of a backtest in memory and out of a
journal read back from SQLite. Ratios are annualised with the bar period (365.25-day years, risk-free
rate zero); a metric that is undefined for the run (no trades, no losses, flat curve) is None, never a
made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MS_PER_HOUR = 3_600_000
MS_PER_YEAR = 365.25 * 24 * MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One round trip: a position from its opening fill to its last closing fill."""

    symbol: str
    side: str
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float  # quantity-weighted average of the closing fills
    qty: float
    pnl: float  # net of fees and funding, in quote currency (USDT)
    fees: float
    funding: float  # paid (-) or received (+) over the trade's life
    exit_reason: str

    @property
    def holding_ms(self) -> int:
        return self.exit_ts - self.entry_ts


@dataclass(frozen=True, slots=True)
class Metrics:
    """Headline numbers of a run; None where a number is undefined for this run."""

    start_ts: int
    end_ts: int
    start_equity: float
    end_equity: float
    total_return: float
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float  # as a positive fraction of the peak, 0 when equity never fell
    max_drawdown_duration_ms: int
    n_trades: int
    win_rate: float | None
    profit_factor: float | None  # math.inf when there were wins and no losses
    expectancy: float | None  # mean net pnl per trade, USDT
    avg_holding_ms: float | None
    exposure_time: float  # share of bars with at least one open position
    avg_exposure: float  # mean gross notional / equity over the bars
    max_exposure: float
    fees_paid: float
    funding_paid: float  # net funding paid (+) or received (-) over the run


def drawdown_curve(equity: np.ndarray) -> np.ndarray:
    """Drawdown at each point as a non-positive fraction of the running peak."""
    if equity.size == 0:
        return equity.astype(float)
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, equity / peak - 1.0, 0.0)
    return dd


def _max_dd_duration(ts: np.ndarray, equity: np.ndarray) -> int:
    """Longest time spent below a previous peak (ms)."""
    if equity.size < 2:
        return 0
    peak = np.maximum.accumulate(equity)
    at_peak = equity >= peak
    last_peak_ts = np.maximum.accumulate(np.where(at_peak, ts, ts[0]))
    return int(np.max(ts - last_peak_ts))


def _annualised_ratio(returns: np.ndarray, denom: float, periods_per_year: float) -> float | None:
    if returns.size < 2 or not math.isfinite(denom) or denom <= 0:
        return None
    return float(np.mean(returns) / denom * math.sqrt(periods_per_year))


def compute_metrics(
    ts: np.ndarray,
    equity: np.ndarray,
    trades: Sequence[TradeRecord],
    *,
    bar_ms: int,
    exposure: np.ndarray | None = None,
    fees_paid: float = 0.0,
    funding_paid: float = 0.0,
) -> Metrics:
    """Metrics from an equity curve sampled once per bar and the run's closed trades.

    `exposure` is gross notional / equity per equity point (same length as `equity`).
    """
    ts = np.asarray(ts, dtype=np.int64)
    equity = np.asarray(equity, dtype=float)
    if equity.size == 0:
        raise ValueError("an empty equity curve has no metrics")
    start, end = float(equity[0]), float(equity[-1])
    total_return = end / start - 1.0 if start > 0 else 0.0
    years = (int(ts[-1]) - int(ts[0])) / MS_PER_YEAR
    cagr = None
    if years > 0 and start > 0:
        try:
            cagr = (end / start) ** (1.0 / years) - 1.0 if end > 0 else -1.0
        except OverflowError:  # a gain compounded over a tiny fraction of a year
            cagr = math.inf

    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.diff(equity) / equity[:-1]
    rets = rets[np.isfinite(rets)]
    periods_per_year = MS_PER_YEAR / bar_ms
    sharpe = _annualised_ratio(
        rets, float(np.std(rets, ddof=1)) if rets.size > 1 else 0.0, periods_per_year
    )
    downside = math.sqrt(float(np.mean(np.minimum(rets, 0.0) ** 2))) if rets.size else 0.0
    sortino = _annualised_ratio(rets, downside, periods_per_year)

    dd = drawdown_curve(equity)
    max_dd = float(-dd.min()) if dd.size else 0.0
    calmar = cagr / max_dd if cagr is not None and max_dd > 0 else None

    pnls = np.array([t.pnl for t in trades], dtype=float)
    n = int(pnls.size)
    win_rate = float(np.mean(pnls > 0)) if n else None
    gross_win = float(pnls[pnls > 0].sum()) if n else 0.0
    gross_loss = float(-pnls[pnls < 0].sum()) if n else 0.0
    if not n:
        profit_factor = None
    elif gross_loss > 0:
        profit_factor = gross_win / gross_loss
    else:
        profit_factor = math.inf if gross_win > 0 else None
    expectancy = float(pnls.mean()) if n else None
    avg_hold = float(np.mean([t.holding_ms for t in trades])) if n else None

    if exposure is None or np.asarray(exposure).size == 0:
        exp = np.zeros(1)
    else:
        exp = np.nan_to_num(np.asarray(exposure, dtype=float))
    return Metrics(
        start_ts=int(ts[0]),
        end_ts=int(ts[-1]),
        start_equity=start,
        end_equity=end,
        total_return=total_return,
        cagr=cagr,
        sharpe=sharpe,
        sortino=sortino,
        calmar=calmar,
        max_drawdown=max_dd,
        max_drawdown_duration_ms=_max_dd_duration(ts, equity),
        n_trades=n,
        win_rate=win_rate,
        profit_factor=profit_factor,
        expectancy=expectancy,
        avg_holding_ms=avg_hold,
        exposure_time=float(np.mean(exp > 0)),
        avg_exposure=float(np.mean(exp)),
        max_exposure=float(np.max(exp)),
        fees_paid=float(fees_paid),
        funding_paid=float(funding_paid),
    )
