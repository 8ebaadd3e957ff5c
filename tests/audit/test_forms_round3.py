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
    # -- 3. shapes left on yihuy87/smc-futures-bot ------------------------------------------
    (
        "a relative tolerance given to a helper that reads candles",
        "from binance.ohlc_buffer import Candle\n\n"
        "def detect_liquidity_zones(candles, lookback=40, tolerance_pct=0.001):\n"
        "    return [c for c in candles if abs(c.high - candles[-1].high) <= tolerance_pct]",
        ("param-default", "tolerance_pct", "0.001", Category.OTHER),
    ),
    (
        "an equal-levels ratio in a signal module",
        "def equal_highs(highs, gap_ratio=0.002):\n"
        "    return abs(highs[-1] - highs[-2]) <= gap_ratio * highs[-1]",
        ("param-default", "gap_ratio", "0.002", Category.OTHER),
    ),
    (
        "the bars before an index, the start through a local name",
        "from binance.ohlc_buffer import Candle\n\ndef avg_stats(candles, before_index):\n"
        "    j_start = max(0, before_index - 5)\n    prev = candles[j_start:before_index]\n"
        "    return sum(c.high - c.low for c in prev) / len(prev)",
        ("window", "candles", "5", Category.OTHER),
    ),
    (
        "the bars before an index, as a range",
        "from binance.ohlc_buffer import Candle\n\ndef detect_displacement(candles, i):\n"
        "    prev_range = range(max(0, i - 5), i)\n"
        "    bodies = [abs(candles[j].close - candles[j].open) for j in prev_range]\n"
        "    return sum(bodies) / len(bodies)",
        ("window", "range", "5", Category.OTHER),
    ),
    (
        "the bars before an index, sliced in place",
        "import ccxt\n\ndef swept(highs, i):\n    return highs[i] > max(highs[max(0, i - 8):i])",
        ("window", "highs", "8", Category.OTHER),
    ),
    (
        "a series sampled in a tenth of its length",
        "import ccxt\n\ndef bias(highs):\n    n = len(highs)\n    step = max(n // 10, 2)\n"
        "    swing = highs[::step]\n    return swing[-1] > swing[0]",
        ("window", "highs", "10", Category.OTHER),
    ),
    (
        "every fifth close",
        "import ccxt\n\ndef bias(closes):\n    return closes[::5][-1] > closes[0]",
        ("window", "closes", "5", Category.OTHER),
    ),
    # -- 4. what stays a decision next to the false positives removed -----------------------
    (
        "a leverage cap tighter than any venue's in a validation",
        "class Config:\n    def validate(self):\n        if self.leverage > 20:\n"
        "            raise ValueError('too much leverage')\n        return True",
        ("comparison", "leverage", "20", Category.LEVERAGE),
    ),
    (
        "a report's flag whose threshold no gate tests",
        "import ccxt\n\ndef evaluate(ratio):\n    if ratio >= 1.5:\n"
        "        return {'volume_spike': ratio >= 2.0}",
        ("comparison", "volume_spike", "2.0", Category.SYMBOL_SELECTION),
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
    ("a letter by an unnamed number", 'def f(p):\n    return "A" if p >= 5 else "B"'),
    # -- 3. near misses of the yihuy87 shapes -----------------------------------------------
    (
        "lines of context before an error, not market data",
        "import ccxt\n\ndef context(lines, i):\n    return lines[max(0, i - 5):i]",
    ),
    (
        "a single earlier bar",
        "import ccxt\n\ndef bar(candles, i):\n    return candles[max(0, i - 5)]",
    ),
    (
        "a fit's tolerance outside trading code",
        "def fit(prices, tol_pct=0.001):\n    return prices",
    ),
    ("a backoff ratio", "import ccxt\n\ndef retry(fn, backoff_ratio=0.5):\n    return fn"),
    ("a float epsilon", "import ccxt\n\ndef detect(candles, eps=1e-9):\n    return candles"),
    (
        "pairs of a flattened array",
        "import ccxt\n\ndef book(flat):\n    return list(zip(flat[::2], flat[1::2]))",
    ),
    (
        "a chart thinned for drawing",
        "import ccxt\n\ndef draw_chart(ax, closes):\n    ax.plot(closes[::5])",
    ),
    # -- 4. the false positives removed -----------------------------------------------------
    (
        "the bounds of what can be set, in a config validation",
        "class Config:\n    def validate(self):\n"
        "        if self.leverage < 1 or self.leverage > 125:\n"
        "            print('Leverage must be between 1-125')\n            return False\n"
        "        if self.max_position_pct <= 0 or self.max_position_pct > 100:\n"
        "            raise ValueError('Position size must be 0-100%')\n        return True",
    ),
]


@pytest.mark.parametrize("code", [c for _, c in QUIET], ids=[n for n, _ in QUIET])
def test_stays_quiet(code: str) -> None:
    assert scan(code) == []


def test_a_threshold_repeated_into_the_report_is_reported_once_at_its_gate() -> None:
    code = (
        "import ccxt\n\ndef evaluate(ratio, price):\n    long = 0\n    if ratio >= 1.5:\n"
        "        long += 1\n    return {'long': long, 'volume_spike': ratio >= 1.5}"
    )
    assert [(f.line, f.value) for f in scan(code)] == [(5, "1.5")]
