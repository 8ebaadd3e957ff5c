"""Detection rate per issue-12 form on variants written in other shapes than the rule examples.

Run `.venv/bin/pytest tests/audit/test_forms_variants.py -q -s` to print the rates. Each form must
find at least 80 % of its variants; the quiet set must stay at no finding above info.
"""

from __future__ import annotations

import pytest

from audit.finding import Severity
from tests.audit.helpers import scan

# form -> snippets that each hold exactly one decision of that form (a path in a bot folder)
VARIANTS: dict[str, list[str]] = {
    "argparse defaults": [
        'def cli(ap):\n    ap.add_argument("--max-leverage", type=int, default=8)',
        'def cli(ap):\n    ap.add_argument("--universe", default="BTCUSDT,ETHUSDT")',
        'def cli(ap):\n    ap.add_argument("--strategy", "-s", default="grid_v2")',
        'def cli(ap):\n    ap.add_argument("--breaker-cooldown-hours", type=float, default=4)',
        'def cli(ap):\n    ap.add_argument("--stop-loss", type=float, default=0.02)',
        'import os\ndef cli(ap):\n    ap.add_argument("--budget", default=os.environ.get("BUDGET_USDT", "1000"))',
        '@click.option("--risk-pct", default=1.5)\ndef main(risk_pct):\n    pass',
    ],
    "strategy parameter dicts": [
        'class Breakout(Strategy):\n    params = {"channel_len": 55, "atr_mult_exit": 3.0}',
        'class Grid(BaseStrategy):\n    default_params = {"grid_step_pct": 0.4}',
        'STRATEGY_DEFAULTS = {"rsi_low": 28}',
        'class MomentumBot:\n    defaults = {"mom_threshold": 0.015}',
        'class Pairs(Strategy):\n    def __init__(self):\n        self.params = {"entry_z": 2.2}',
    ],
    "bool switch fallbacks": [
        'def manage(strategy_params):\n    return strategy_params.get("use_break_even", True)',
        'def on_bar(self, params):\n    if params.get("allow_shorts", True):\n        return 1',
        'def entry(cfg):\n    return cfg.get("require_volume_confirm", False)',
        'def trailing(settings):\n    return settings.get("enable_trailing_stop", True)',
        'class S(Strategy):\n    defaults = {"use_filter": False}\n'
        '    def go(self, p):\n        return p.get("use_filter", True)',
    ],
    "fractions in exit and sizing code": [
        "def partial_exit(position):\n    qty_to_close = position.qty / 2\n    return qty_to_close",
        "def kelly_position(p, b):\n    f = p - (1 - p) / b\n    f *= 0.5\n    return f",
        "def scale_out(pos):\n    pos.size *= 0.5\n    return pos",
        "def reduce_exposure(amount):\n    amount /= 3\n    return amount",
        "def take_profit_half(client, pos):\n    client.create_order(qty=pos.contracts / 2)",
    ],
    "exit and risk function defaults": [
        "def check_trailing(pos, price, trail_pct=0.8):\n    return price < pos.peak * (1 - trail_pct)",
        "def risk_size(equity, risk=0.01):\n    return equity * risk",
        "def exit_after(pos, now, max_bars=48):\n    return now - pos.opened > max_bars",
        "def stop_from_atr(entry, atr, k=2.0):\n    return entry - k * atr",
        "def should_exit(pnl_r, giveback=0.35):\n    return pnl_r < giveback",
    ],
    "dataclass symbol and margin defaults": [
        '@dataclass\nclass Cfg:\n    trading_pair: str = "ETH/USDT"',
        "@dataclass\nclass Market:\n    maintenance_margin_rate: float = 0.004",
        '@dataclass\nclass BotSettings:\n    symbol: str = "SOLUSDT"',
        'class Cfg(BaseModel):\n    ticker: str = "BTC-USDT"',
        "@dataclass\nclass Risk:\n    mmr: float = 0.005",
    ],
    "inline signal thresholds and votes": [
        "def generate_signals(df):\n    return df.rsi < 30",
        "def check_long(row):\n    if row.macd_hist > 0.0 and row.adx > 22:\n        return True",
        "def entry_ok(zscore):\n    return zscore < -2.0",
        "def signal(bb_pos, stoch):\n    if bb_pos < 0.1 and stoch < 20:\n        return 'LONG'",
        "def should_enter(a, b, c):\n    confirmations = int(a) + int(b) + int(c)\n"
        "    return confirmations >= 2",
        "def vote(signals):\n    if sum(1 for s in signals if s == 'LONG') >= 3:\n        return 'LONG'",
    ],
    "fallback dicts and symbol lookups": [
        'def load(path):\n    if not path.exists():\n        return {"symbol": "BTCUSDT"}\n'
        "    return json.loads(path.read_text())",
        'def load(state):\n    return state.get("pair", "ETH/USDT")',
        'def settings(d):\n    return d.get("symbol", "XRPUSDT")',
        'def defaults():\n    return {"stop_loss_pct": 1.5}',
    ],
}

QUIET = [
    '@app.get("/candles")\ndef candles(symbol: str = "ETHUSDT", limit: int = 1000):\n'
    "    limit = min(limit, 1500)\n    return jsonify(fetch_ohlcv(symbol, limit=limit))",
    'def _label(p):\n    lev = p.get("leverage", 5)\n    return f"{lev}x"',
    "def _plot(ax, close):\n    ax.plot(close.rolling(20).mean())\n    ax.axhline(70)",
    "OHLCV_PAGE = 1000\nWARMUP_CANDLES = 250",
    'def run(cfg):\n    return cfg.get("verbose", False)',
    "def mid(a, b):\n    return (a + b) / 2",
    "def mb(n):\n    n /= 1024 * 1024\n    return n",
    'LOG_FORMAT = "%(asctime)s %(message)s"',
]


def _rate(snippets: list[str]) -> float:
    hits = [bool(scan(code, path="bot/strategy_module.py")) for code in snippets]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("form", sorted(VARIANTS))
def test_each_form_finds_most_of_its_variants(form: str) -> None:
    rate = _rate(VARIANTS[form])
    print(f"{form}: {rate:.0%} of {len(VARIANTS[form])}")
    assert rate >= 0.8, [c for c in VARIANTS[form] if not scan(c, path="bot/strategy_module.py")]


@pytest.mark.parametrize("code", QUIET)
def test_quiet_set_has_nothing_above_info(code: str) -> None:
    above = [
        f for f in scan(code, path="bot/strategy_module.py") if f.severity is not Severity.INFO
    ]
    assert above == []
