"""engine.core.metrics by hand: returns, drawdown, trade statistics, undefined values stay None."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.core.metrics import (
    MS_PER_HOUR,
    MS_PER_YEAR,
    TradeRecord,
    compute_metrics,
    drawdown_curve,
)

H = MS_PER_HOUR


def trade(pnl: float, hours: int = 2) -> TradeRecord:
    return TradeRecord("BTC-USDT", "long", 0, hours * H, 100.0, 101.0, 1.0, pnl, 0.1, 0.0, "x")


def test_drawdown_and_returns_by_hand() -> None:
    step = 91 * 24 * H  # quarterly points: about a year in all
    ts = np.arange(5) * step
    eq = np.array([100.0, 110.0, 99.0, 121.0, 110.0])
    np.testing.assert_allclose(drawdown_curve(eq), [0, 0, -0.1, 0, -11 / 121])
    m = compute_metrics(ts, eq, [], bar_ms=step)
    assert m.total_return == pytest.approx(0.10)
    assert m.max_drawdown == pytest.approx(0.10)
    assert m.max_drawdown_duration_ms == step  # under the 110 peak for one point
    rets = np.diff(eq) / eq[:-1]
    ppy = MS_PER_YEAR / step
    assert m.sharpe == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(ppy))
    downside = math.sqrt(np.mean(np.minimum(rets, 0) ** 2))
    assert m.sortino == pytest.approx(rets.mean() / downside * math.sqrt(ppy))
    years = 4 * step / MS_PER_YEAR
    assert m.cagr == pytest.approx(1.1 ** (1 / years) - 1)
    assert m.calmar == pytest.approx(m.cagr / 0.10)
    short = compute_metrics(np.arange(2) * H, np.array([100.0, 200.0]), [], bar_ms=H)
    assert short.cagr == math.inf  # doubling in an hour does not compound to a number


def test_trade_statistics_by_hand() -> None:
    trades = [trade(30.0, 1), trade(-10.0, 3), trade(20.0, 2), trade(-20.0, 6)]
    m = compute_metrics(np.arange(3) * H, np.array([100.0, 100.0, 120.0]), trades, bar_ms=H,
                        exposure=np.array([0.0, 0.5, 1.5]))  # fmt: skip
    assert m.n_trades == 4 and m.win_rate == 0.5
    assert m.profit_factor == pytest.approx(50 / 30)
    assert m.expectancy == pytest.approx(5.0)
    assert m.avg_holding_ms == pytest.approx(3 * H)
    assert m.exposure_time == pytest.approx(2 / 3)
    assert m.avg_exposure == pytest.approx(2 / 3) and m.max_exposure == 1.5


def test_undefined_metrics_are_none_not_numbers() -> None:
    m = compute_metrics(np.arange(3) * H, np.full(3, 100.0), [], bar_ms=H)
    assert (m.win_rate, m.profit_factor, m.expectancy, m.avg_holding_ms) == (None,) * 4
    assert m.sharpe is None and m.sortino is None and m.calmar is None
    assert m.max_drawdown == 0.0 and m.total_return == 0.0
    only_wins = compute_metrics(np.arange(2) * H, np.array([1.0, 2.0]), [trade(1.0)], bar_ms=H)
    assert only_wins.profit_factor == math.inf
    with pytest.raises(ValueError):
        compute_metrics(np.array([], dtype=np.int64), np.array([]), [], bar_ms=H)
