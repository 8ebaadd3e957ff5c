"""Shapes found by scoring the auditor on three third-party bots (README, "Measured on bots nobody
here wrote"), in variants other than the rule examples: what must be found, and what must stay
quiet."""

from __future__ import annotations

import pytest

from audit.finding import Category
from tests.audit.helpers import scan

FOUND = [
    (
        "search grid returned by a strategy method",
        "class EmaCross(BaseStrategy):\n    @staticmethod\n    def param_grid():\n"
        '        return {"span": [10, 20, 50]}',
        ("strategy-param", "span", "20", Category.OTHER),
    ),
    (
        "defaults returned by a hyperparameter method, a lookback key",
        "class Donchian(Strategy):\n    def default_params(self):\n"
        '        return {"lookback": 55, "exit_lookback": 20}',
        ("strategy-param", "lookback", "55", Category.OTHER),
    ),
    (
        "a take-profit level named by profit",
        "MIN_PROFIT_PCT = 0.8",
        ("constant", "MIN_PROFIT_PCT", "0.8", Category.STOP_LOSS_TAKE_PROFIT),
    ),
    (
        "a 1 % threshold in a constants module",
        "MIN_BODY_PCT = 0.01",
        ("constant", "MIN_BODY_PCT", "0.01", Category.OTHER),
    ),
    (
        "dca order sizes",
        "DCA_STEPS = [0.02, 0.04, 0.08]",
        ("constant", "DCA_STEPS", "0.02", Category.POSITION_SIZING),
    ),
    (
        "indicator period of a stop",
        "def stop_price(self, df, entry):\n    atr = ta.atr(df.high, df.low, df.close, length=7)\n"
        "    return entry - 2 * atr.iloc[-1]",
        ("indicator-period", "atr", "7", Category.OTHER),
    ),
    (
        "positional indicator period in signal code",
        "def generate_signals(close):\n    fast = talib.EMA(close, 9)\n    return fast",
        ("indicator-period", "EMA", "9", Category.OTHER),
    ),
    (
        "a half close in a partial take-profit",
        "def take_partial(self, pos):\n    qty = pos.qty * 0.5\n"
        "    return self.client.create_order(pos.symbol, 'SELL', qty)",
        ("weight", "qty", "0.5", Category.POSITION_SIZING),
    ),
]


@pytest.mark.parametrize(("code", "expected"), [(c, e) for _, c, e in FOUND],
                         ids=[n for n, _, _ in FOUND])  # fmt: skip
def test_form_is_found(code: str, expected: tuple) -> None:
    got = {(f.rule_id, f.name, f.value, f.category) for f in scan(code)}
    assert expected in got, got


QUIET = [
    ("annualised Sortino", "def sortino_ratio(r, down):\n    return r.mean() / down * 365 ** 0.5"),
    ("maker fee", "MAKER_FEE = 0.0002\nTAKER_FEES = 0.0005"),
    (
        "commission in a PnL",
        "def net(pnl, notional):\n    commission = notional * 0.0004\n    return pnl - commission",
    ),
    ("strategy module path", 'STRATEGY_MODULE = "bot.strategies.breakout"'),
    (
        "rounding for a comparison",
        "def hit(price, stop):\n    return price.__round__(6) <= stop.__round__(6)",
    ),
    ("side labels", 'LONG_SIDES = ("TREND_LONG", "GRID_LONG")'),
    (
        "z-score cut in a stats helper",
        "def clean(xs, mu, sd):\n    upper_bound = mu + 3.5 * sd\n    return [x for x in xs if x < upper_bound]",
    ),
    (
        "monitor state",
        "class SpreadMonitor:\n    def __init__(self):\n        self.base_ratio = 42 / 3\n    def show(self):\n        print(self.base_ratio)",
    ),
    ("ema drawn on a chart", "def plot_chart(ax, df):\n    ax.plot(ta.ema(df.close, length=100))"),
    ("a level counter", "def add(state):\n    state.dca_level = 1\n    return state"),
    ("a duration", "MAX_WAIT_SECONDS = 60"),
]


@pytest.mark.parametrize("code", [c for _, c in QUIET], ids=[n for n, _ in QUIET])
def test_stays_quiet(code: str) -> None:
    assert scan(code) == []
