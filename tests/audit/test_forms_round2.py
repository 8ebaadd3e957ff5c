"""Shapes found by scoring the auditor on a second round of third-party futures bots (README,
"Measured on bots nobody here wrote"), in variants other than the rule examples: what must be
found, and what must stay quiet."""

from __future__ import annotations

import pytest

from audit.finding import Category
from tests.audit.helpers import scan

STAGE_RULE = (
    "class RiskManager:\n    def check_stage(self):\n"
    "        if self.equity >= self.base_equity * 2:\n"
    "            self.withdraw(self.base_equity)\n            self.stage_wins += 1\n"
    "            if self.stage_wins >= 2:\n                self.base_equity *= 2"
)

FOUND = [
    (
        "a lambda predicate keyed by a field name in a rule decorator",
        "class Expert(KnowledgeEngine):\n"
        "    @Rule(Reading(field='rsi', test=P(lambda v: 45 < v < 70)))\n"
        "    def momentum_long(self):\n        self.add_signal('BUY')",
        ("signal-threshold", "rsi", "70", Category.OTHER),
    ),
    (
        "a lambda predicate passed under the indicator's keyword",
        "def entry_signals(screen):\n    return screen.where(mfi=lambda v: v < 30)",
        ("signal-threshold", "mfi", "30", Category.OTHER),
    ),
    (
        "a lambda predicate assigned to a name",
        "def generate_signal(df):\n    oversold_rsi = lambda v: v < 25\n"
        "    return oversold_rsi(df.rsi.iloc[-1])",
        ("comparison", "oversold_rsi", "25", Category.OTHER),
    ),
    (
        "a lambda applied to an indicator column",
        "def entry_signal(df):\n    return df['willr'].apply(lambda v: v < -80)",
        ("signal-threshold", "willr", "-80", Category.OTHER),
    ),
    (
        "a comparison declared as a named fact",
        "def decide(engine, width):\n"
        "    engine.declare(Reading(name='squeeze', value=width < 0.015))",
        ("signal-threshold", "squeeze", "0.015", Category.OTHER),
    ),
    (
        "a minimum balance that refuses entries",
        "class RiskManager:\n    def validate_trade(self, balance):\n        if balance < 10:\n"
        "            return False\n        return True",
        ("comparison", "balance", "10", Category.POSITION_SIZING),
    ),
    (
        "withdraw when the capital doubles",
        STAGE_RULE,
        ("comparison", "equity", "2", Category.POSITION_SIZING),  # a multiple compared
    ),
    (
        "a fallback that is not a division guard",
        "def entry_signal(close, lower, upper, ready):\n"
        "    stop_pct = (close - lower) / (upper - lower) if ready else 0.35\n    return stop_pct",
        ("assign-fallback", "stop_pct", "0.35", Category.STOP_LOSS_TAKE_PROFIT),
    ),
    (
        "indicator labels that reach the signal",
        "def entry_signal(df):\n    signals = {}\n    if df.rsi > 70:\n"
        "        signals['momentum'] = 'SELL'\n    return signals",
        ("signal-threshold", "rsi", "70", Category.OTHER),
    ),
    (
        "a position size passed positionally to a function defined later",
        "def on_signal(side):\n    open_position(side, 0.25)\n\n"
        "def open_position(side, size_pct):\n    pass",
        ("call-arg", "size_pct", "0.25", Category.POSITION_SIZING),
    ),
    (
        "a take-profit at the high three bars back, through a local name",
        "def on_entry(pos, bars, i):\n    swing = bars[i - 3]\n    pos.take_profit = swing.high",
        ("bar-offset", "take_profit", "3", Category.STOP_LOSS_TAKE_PROFIT),
    ),
    (
        "a stop at the lowest low of an earlier bar, in one statement",
        "def place(pos, lows):\n    pos.stop_loss = lows[-4] * 0.999",
        ("bar-offset", "stop_loss", "-4", Category.STOP_LOSS_TAKE_PROFIT),
    ),
    (
        "an OKX leverage field",
        'CONFIG = {"inst_id": "BTC-USDT-SWAP", "lever": 5}',
        ("dict-value", "lever", "5", Category.LEVERAGE),
    ),
    (
        "an OKX instrument id",
        'CONFIG = {"inst_id": "BTC-USDT-SWAP", "lever": 5}',
        ("symbol-string", "inst_id", '"BTC-USDT-SWAP"', Category.SYMBOL_SELECTION),
    ),
    (
        "a size fallback passed to an open_long order",
        "def run_hourly(client, cfg):\n    sz = cfg.get('fixed_open_sz', 0.02)\n"
        "    client.open_long(sz=sz)",
        ("get-default", "fixed_open_sz", "0.02", Category.POSITION_SIZING),
    ),
    (
        "a stop fallback passed straight to an order keyword",
        "def run_hourly(client, cfg):\n    client.open_short(sl_pct=cfg.get('sl_pct', 0.05))",
        ("get-default", "sl_pct", "0.05", Category.STOP_LOSS_TAKE_PROFIT),
    ),
    (
        "a limit order offset",
        "def enter(client, cfg, px):\n    client.open_long(offset=cfg.get('limit_offset', 0.001), price=px)",
        ("get-default", "limit_offset", "0.001", Category.OTHER),
    ),
    ("stage up after two doublings", STAGE_RULE, ("comparison", "stage_wins", "2", Category.OTHER)),
    (
        "the compounding base doubles",
        STAGE_RULE,
        ("fraction", "base_equity", "2", Category.POSITION_SIZING),
    ),
]


@pytest.mark.parametrize(("code", "expected"), [(c, e) for _, c, e in FOUND],
                         ids=[n for n, _, _ in FOUND])  # fmt: skip
def test_form_is_found(code: str, expected: tuple) -> None:
    got = {(f.rule_id, f.name, f.value, f.category) for f in scan(code)}
    assert expected in got, got


QUIET = [
    ("a sort key", "def latest(rows):\n    return sorted(rows, key=lambda r: r.age > 30)"),
    (
        "a filter with no subject",
        "def positive(xs):\n    return list(filter(lambda x: x > 0.5, xs))",
    ),
    (
        "a retry predicate in a decorator",
        "class Client:\n    @retry(when=lambda e: e.status > 499)\n    def get(self):\n        pass",
    ),
    (
        "a ratio's value when its divisor is zero",
        "def entry_signal(close, lower, upper):\n"
        "    pos = (close - lower) / (upper - lower) if (upper - lower) > 0 else 0.5\n"
        "    return pos",
    ),
    (
        "the same guard written the other way round",
        "def entry_signal(fast, slow):\n    ratio_pct = 0.5 if slow == 0 else fast / slow\n"
        "    return ratio_pct",
    ),
    (
        "labels of a market summary nobody trades on",
        "def get_indicator_summary(df):\n    summary = {}\n    if df.rsi > 70:\n"
        "        summary['momentum'] = 'OVERBOUGHT'\n    elif df.rsi < 30:\n"
        "        summary['momentum'] = 'OVERSOLD'\n    return summary",
    ),
    (
        "a positional argument to a method defined twice with other parameters",
        "class A:\n    def go(self, weight):\n        pass\n\nclass B:\n"
        "    def go(self, retries):\n        pass\n    def run(self):\n        self.go(3)",
    ),
    (
        "the previous bar in a signal",
        "def entry_signal(candles):\n    prev = candles[-2]\n    return prev",
    ),
    (
        "an earlier bar that reaches no stop",
        "def on_entry(pos, bars, i):\n    ref = bars[i - 2]\n    pos.note = ref.close",
    ),
    (
        "state flags that default to not yet",
        "def manage(entry, client):\n    if not entry.get('tp1_placed', False):\n"
        "        client.close_long(1)\n    if entry.get('tp2_active', False):\n        client.close_long(2)",
    ),
    (
        "a never-checked sentinel",
        "def loop(state):\n    last_entry_check_hour = state.get('last_entry_check_hour', -1)\n"
        "    return last_entry_check_hour",
    ),
    (
        "a rounding tolerance in a size comparison",
        "def done(sz, expected_sz):\n    return sz <= expected_sz + 0.001",
    ),
    ("a starting balance", "INITIAL_BALANCE = 1000\nSTARTING_CAPITAL = 10_000.0"),
    (
        "a simulation's starting equity",
        "class Backtest:\n    def __init__(self, initial_equity=5000):\n        self.equity = initial_equity",
    ),
]


@pytest.mark.parametrize("code", [c for _, c in QUIET], ids=[n for n, _ in QUIET])
def test_stays_quiet(code: str) -> None:
    assert scan(code) == []
