"""The forms a careful reviewer listed on real bots (issue 12), in shapes other than the rule
examples, and the display or plumbing values that must stay quiet."""

from __future__ import annotations

import pytest

from audit.finding import Category
from tests.audit.helpers import scan

FOUND = [
    (
        "argparse env default inside",
        'import os\ndef parse(p):\n    p.add_argument("--max-notional", default=os.environ.get("MAX_NOTIONAL", "250"))',
        ("env-default", "MAX_NOTIONAL", '"250"', Category.POSITION_SIZING),
    ),
    (
        "argparse slash symbols",
        'def parse(p):\n    p.add_argument("--pairs", default="BTC/USDT,ETH/USDT")',
        ("symbol-string", "pairs", '"BTC/USDT,ETH/USDT"', Category.SYMBOL_SELECTION),
    ),
    (
        "argparse circuit breaker",
        'def parse(p):\n    p.add_argument("--circuit-breaker-hours", type=int, default=12)',
        ("cli-default", "circuit_breaker_hours", "12", Category.OTHER),
    ),
    (
        "argparse strategy with dest",
        'def parse(p):\n    p.add_argument("-s", dest="strategy", default="rsi_revert")',
        ("strategy-choice", "strategy", '"rsi_revert"', Category.OTHER),
    ),
    (
        "self.params dict in a strategy __init__",
        "class MeanRevert(BaseStrategy):\n    def __init__(self):\n"
        '        self.params = {"z_entry": 2.0, "z_exit": 0.5}',
        ("strategy-param", "z_entry", "2.0", Category.OTHER),
    ),
    (
        "get fallback contradicting the declared default",
        "class Div(Strategy):\n"
        '    defaults = {"atr_period": 14}\n'
        "    def setup(self, params):\n"
        '        self.atr_period = params.get("atr_period", 21)',
        ("get-default", "atr_period", "21", Category.OTHER),
    ),
    (
        "bool switch on a settings object in trading code",
        'def manage_position(cfg):\n    if cfg.get("enable_trailing", True):\n        return 1',
        ("bool-switch", "enable_trailing", "True", Category.HARVEST),
    ),
    (
        "half a position in exit code",
        "def take_partial(pos):\n    reduce_qty = pos.amount / 2\n    return reduce_qty",
        ("fraction", "amount", "2", Category.POSITION_SIZING),
    ),
    (
        "half-Kelly as an augmented division",
        "def kelly_size(edge, odds):\n    f = edge / odds\n    f /= 2\n    return f",
        ("fraction", "f", "2", Category.POSITION_SIZING),
    ),
    (
        "exit function parameter default",
        "def should_exit(pos, price, max_drawdown_r=1.2):\n    return pos.r(price) < -max_drawdown_r",
        ("param-default", "max_drawdown_r", "1.2", Category.OTHER),
    ),
    (
        "dataclass symbol (ccxt form)",
        '@dataclass\nclass Config:\n    symbol: str = "SOL/USDT:USDT"',
        ("symbol-string", "symbol", '"SOL/USDT:USDT"', Category.SYMBOL_SELECTION),
    ),
    (
        "state fallback dict when the file is missing",
        "def load_state(path):\n    if not path.exists():\n"
        '        return {"symbol": "BTCUSDT", "size_usdt": 100.0}\n'
        "    return json.loads(path.read_text())",
        ("dict-value", "size_usdt", "100.0", Category.POSITION_SIZING),
    ),
    (
        "indicator threshold in an entry check",
        "def check_entry(row):\n    return row.adx > 25 and row.macd_hist > 0.0005",
        ("signal-threshold", "adx", "25", Category.OTHER),
    ),
    (
        "majority vote over a filtered list",
        "def entry_signal(conds):\n    if len([c for c in conds if c]) >= 3:\n        return 'LONG'",
        ("vote-gate", "len", "3", Category.OTHER),
    ),
    (
        "vote count by name",
        "def decide(signals):\n    bullish = sum(s > 0 for s in signals)\n"
        "    return 'LONG' if bullish >= 2 else None",
        ("vote-gate", "bullish", "2", Category.OTHER),
    ),
]


@pytest.mark.parametrize(("code", "expected"), [(c, e) for _, c, e in FOUND],
                         ids=[n for n, _, _ in FOUND])  # fmt: skip
def test_form_is_found(code: str, expected: tuple) -> None:
    got = {(f.rule_id, f.name, f.value, f.category) for f in scan(code)}
    assert expected in got, got


def test_contradiction_is_named_in_the_message() -> None:
    code = (
        "class Div(Strategy):\n"
        '    defaults = {"require_fvg": False, "atr_period": 14}\n'
        "    def entry(self, params):\n"
        '        return params.get("require_fvg", True), params.get("atr_period", 21)\n'
    )
    messages = {f.name: f.message for f in scan(code) if f.scope == "Div.entry"}
    assert "contradicts the declared default require_fvg = False" in messages["require_fvg"]
    assert "contradicts the declared default atr_period = 14" in messages["atr_period"]


QUIET = [
    (
        "chart endpoint",
        '@app.get("/chart")\ndef chart(symbol: str = "BTCUSDT", interval: str = "15m", limit: int = 500):\n'
        "    limit = min(limit, 2000)\n"
        "    rows = client.get_klines(symbol=symbol, interval=interval, limit=limit)\n"
        '    return JSONResponse({"symbol": symbol, "rows": rows})',
    ),
    (
        "copied position rendered",
        "def _render_copy(pos):\n"
        '    lev = pos.get("leverage", 20)\n'
        "    return f\"{pos['symbol']} {lev}x {pos['side']}\"",
    ),
    (
        "overlay on a chart",
        "def _overlay(fig, close):\n    fig.add_trace(close.rolling(200).mean() * 1.0)\n"
        "    fig.add_hline(y=70, line_dash='dot')",
    ),
    ("kline page size", "KLINES_PER_PAGE = 1000\nMAX_KLINE_LIMIT = 1500"),
    ("warm-up bars", "WARMUP_BARS = 300\nMIN_CANDLES = 100"),
    (
        "warm-up check in a strategy",
        "def generate_signal(df):\n    if len(df) < 200:\n        return None",
    ),
    ("debug switch", 'def run(cfg):\n    return cfg.get("debug", False), cfg.get("dry_run", True)'),
    ("plain boolean lookup", 'def f(row):\n    return row.get("is_open", False)'),
    ("strategy folder", 'STRATEGY_PATH = "strategies/momentum.py"'),
    ("quote asset", 'QUOTE_ASSET = "USDT"'),
    ("midpoint", "def mid(bid, ask):\n    return (bid + ask) / 2"),
    ("unit scaling in place", "def f(ts):\n    ts /= 1000\n    return ts"),
]


@pytest.mark.parametrize("code", [c for _, c in QUIET], ids=[n for n, _ in QUIET])
def test_display_and_plumbing_stay_quiet(code: str) -> None:
    assert scan(code) == []
