"""Forms of issue 12's third round (README, "Measured on bots nobody here wrote", "Left:"): the
period given to a helper's window, grade cut-offs written inline, and the shapes left on the last
real bots. Each form in variants other than the rule examples, with near misses that must stay
quiet."""

from __future__ import annotations

import pytest

from audit.finding import Category
from tests.audit.helpers import scan

# the module's own average helper, its period given positionally
SMA_HELPER = "def _sma(values, n):\n    return sum(values[-n:]) / n\n\n"

FOUND = [
    # -- 1. the period of a helper's window -------------------------------------------------
    (
        "a positional period of the module's own average helper",
        SMA_HELPER + "def setup_for(volumes):\n    return volumes[-1] > 1.8 * _sma(volumes, 10)",
        ("indicator-period", "_sma", "10", Category.OTHER),
    ),
    (
        "a positional period whose parameter has a default",
        "def _sma(closes, period=20):\n    window = closes[-period:]\n"
        "    return sum(window) / len(window)\n\n"
        "def setup_for(volumes):\n    if volumes[-1] <= _sma(volumes, 10):\n        return None\n"
        "    return volumes[-1]",
        ("indicator-period", "_sma", "10", Category.OTHER),
    ),
    (
        "a helper named for what it returns, its lookback taken through range()",
        "def highest(values, lookback):\n"
        "    return max(values[i] for i in range(len(values) - lookback, len(values)))\n\n"
        "def entry_signal(closes, highs):\n    return closes[-1] > highest(highs, 55)",
        ("indicator-period", "highest", "55", Category.OTHER),
    ),
    (
        "a method's window given by keyword",
        "class SignalScanner:\n    def _avg_body(self, candles, bars=5):\n"
        "        return sum(c.body for c in candles[-bars:]) / bars\n"
        "    def scan(self, candles):\n"
        "        return candles[-1].body > 2 * self._avg_body(candles, bars=8)",
        ("indicator-period", "_avg_body", "8", Category.OTHER),
    ),
    (
        "a helper whose window is a pandas rolling span",
        "def smooth(series, span):\n    return series.ewm(span=span).mean()\n\n"
        "def entry_signal(df):\n    return df.close.iloc[-1] > smooth(df.close, 34).iloc[-1]",
        ("indicator-period", "smooth", "34", Category.OTHER),
    ),
    (
        "a lookback keyword to a helper imported from the bot's own package",
        "from .indicators import highest\n\n"
        "def should_enter(closes, highs):\n    return closes[-1] > highest(highs, lookback=55)",
        ("indicator-period", "highest", "55", Category.OTHER),
    ),
    (
        "an average's keyword period in code that reads an exchange, outside a signal function",
        "import ccxt\n\ndef _sma(x, period=20):\n    return sum(x[-period:]) / period\n\n"
        "def process(closes):\n    avg = _sma(closes, period=10)\n    return closes[-1] > avg",
        ("indicator-period", "_sma", "10", Category.OTHER),
    ),
    # -- 2. grade cut-offs written inline ---------------------------------------------------
    (
        "nested conditional grades, top cut-off",
        'def grade(points):\n    return "A" if points >= 5 else ("B" if points >= 3 else "C")',
        ("grade-cutoff", "grade", "5", Category.OTHER),
    ),
    (
        "nested conditional grades, the inner cut-off",
        'def grade(points):\n    return "A" if points >= 5 else ("B" if points >= 3 else "C")',
        ("grade-cutoff", "grade", "3", Category.OTHER),
    ),
    (
        "a grade assigned by a conditional",
        'def evaluate(points):\n    grade = "A" if points >= 5 else "B"\n    return grade',
        ("grade-cutoff", "grade", "5", Category.OTHER),
    ),
    (
        "an if/elif ladder returning letters",
        'def rate(score):\n    if score >= 90:\n        return "A+"\n'
        '    elif score >= 75:\n        return "B"\n    return "C"',
        ("grade-cutoff", "rate", "75", Category.OTHER),
    ),
    (
        "an if/elif ladder assigning tiers by number",
        "def classify(setup):\n    if setup.points >= 8:\n        setup.tier = 1\n"
        "    elif setup.points >= 5:\n        setup.tier = 2\n    return setup",
        ("grade-cutoff", "tier", "8", Category.OTHER),
    ),
]


@pytest.mark.parametrize(("code", "expected"), [(c, e) for _, c, e in FOUND],
                         ids=[n for n, _, _ in FOUND])  # fmt: skip
def test_form_is_found(code: str, expected: tuple) -> None:
    got = {(f.rule_id, f.name, f.value, f.category) for f in scan(code)}
    assert expected in got, got


QUIET = [
    # -- 1. numbers passed to calls that are no lookback ------------------------------------
    ("rounding", "def entry_signal(x):\n    return round(x, 2) > 0"),
    (
        "a percentile",
        "import numpy as np\n\ndef entry_signal(a):\n    x = np.percentile(a, 95)\n    return x",
    ),
    ("a range step", "def entry_signal(n):\n    return [i for i in range(0, n, 2)]"),
    ("a pause", "import time\n\ndef run_bot():\n    time.sleep(5)"),
    (
        "an HTTP page size",
        "def entry_signal(client):\n    return client.get_klines(symbol='BTCUSDT', limit=500)",
    ),
    (
        "a warm-up bar count",
        "def setup_for(closes):\n    if len(closes) < 60:\n        return None\n    return closes[-1]",
    ),
    (
        "a chunk size given to a helper that slices forward",
        "def chunks(xs, n):\n    return [xs[i:i + n] for i in range(0, len(xs), n)]\n\n"
        "def run_bot(client, symbols):\n    for batch in chunks(symbols, 100):\n"
        "        client.create_order(batch)",
    ),
    (
        "a helper's period whose result is only printed",
        SMA_HELPER + "def report(volumes):\n    print('avg volume', _sma(volumes, 10))",
    ),
    (
        "a length keyword that takes no market data",
        "from .ids import make_id\n\ndef entry_signal(prefix):\n    return make_id(prefix, length=16)",
    ),
    (
        "a helper's lookback in a module that is not trading code",
        "def highest(values, lookback):\n    return max(values[-lookback:])\n\n"
        "def stats(xs):\n    return highest(xs, 10)",
    ),
    # -- 2. conditionals that give no grade -------------------------------------------------
    ("a status mapped to a letter", 'def level(status):\n    return "E" if status >= 500 else "A"'),
    ("a side, not a grade", 'def side(points):\n    return "LONG" if points >= 5 else "SHORT"'),
    (
        "a grade drawn on a chart",
        'def draw_grade(ax, points):\n    ax.text(0, 0, "A" if points >= 5 else "B")',
    ),
    (
        "a report's grade that is only printed",
        'def performance_report(sharpe):\n    g = "A" if sharpe > 2.0 else "B"\n    print("grade", g)',
    ),
    ("a cut-off at one point", 'def grade(points):\n    return "A" if points >= 1 else "B"'),
]


@pytest.mark.parametrize("code", [c for _, c in QUIET], ids=[n for n, _ in QUIET])
def test_stays_quiet(code: str) -> None:
    assert scan(code) == []
