"""Shapes found by scoring the auditor on a second round of third-party futures bots (README,
"Measured on bots nobody here wrote"), in variants other than the rule examples: what must be
found, and what must stay quiet."""

from __future__ import annotations

import pytest

from audit.finding import Category
from tests.audit.helpers import scan

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
]


@pytest.mark.parametrize("code", [c for _, c in QUIET], ids=[n for n, _ in QUIET])
def test_stays_quiet(code: str) -> None:
    assert scan(code) == []
