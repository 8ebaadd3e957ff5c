"""The pre-filter is sound: it skips only files the full scan reports nothing for.

Checked against every example of every rule (a new rule whose form the filter does not see fails
here by construction), the demo bot, this repository's own code, and generated files; and the
whole audit with the filter equals a scan of every file without it.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from audit.prefilter import Prefilter
from audit.rules import iter_examples
from audit.runner import precheck, run_audit
from audit.scan import scan_source
from tests.audit.helpers import CONFIG

REPO = Path(__file__).resolve().parents[2]
FILTER = Prefilter(CONFIG)
EXAMPLES = list(iter_examples())


def _skipped(text: str, path: str, prefilter: Prefilter = FILTER) -> bool:
    _problem, parses = precheck(text, CONFIG)
    return parses and not prefilter.may_hold_findings(text, path)


def _reports_something(text: str, path: str, config=CONFIG) -> bool:  # noqa: ANN001
    result = scan_source(text, path, config)
    return bool(result.findings or result.suppressed)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_every_rule_example_that_reports_is_kept(index: int) -> None:
    _rule, code, _expected = EXAMPLES[index]
    text = textwrap.dedent(code)
    if _reports_something(text, "pkg/module.py"):
        assert not _skipped(text, "pkg/module.py"), f"the pre-filter would skip:\n{text}"


def _corpus() -> list[Path]:
    roots = ["examples", "audit", "engine", "models", "migrations", "qctl", "tui", "bench", "tests"]
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py"))


def test_demo_bot_and_own_code_skipped_files_have_no_findings() -> None:
    skipped = kept = 0
    for path in _corpus():
        text = path.read_text("utf-8")
        rel = path.relative_to(REPO).as_posix()
        if _skipped(text, rel):
            skipped += 1
            assert not _reports_something(text, rel), f"{rel} was skipped but has findings"
        else:
            kept += 1
    assert skipped and kept  # the check is not vacuous: both branches are exercised


_PLUMBING = [
    "import json\n\n\ndef load(path):\n    with open(path) as fh:\n        return json.load(fh)\n",
    'class Greeter:\n    """Says hello."""\n\n    def greet(self, who):\n        return f"hello {who}"\n',
    "from pathlib import Path\n\nROOT = Path(__file__).parent\nNAMES = ['a', 'b']\n",
]
_DECISIONS = [
    "LEVERAGE = {v}\n",
    "def f(params):\n    return params.get('T1_R', {v})\n",
    "if kill_score >= {v}:\n    close()\n",
    "CORE = ['BTCUSDT', 'ETHUSDT']\n",
    "x = {{'sl_pct': {v}}}\n",
    "API_KEY = 'AKIA4Q2ZR7XK9PLM3VBN'\n",
    "client.set_leverage({v})\n",
    "def check(pos, price, scale_r={v}):\n    return price > scale_r\n",
    'p.add_argument("--budget", default="{v}")\n',
    'LEV = {{"lever" "age": {v}}}\n',
]


def test_generated_files_skipped_only_when_they_report_nothing() -> None:
    rng = random.Random(7)
    skipped = 0
    for i in range(300):
        parts = rng.sample(_PLUMBING, rng.randint(1, 3))
        if rng.random() < 0.5:
            parts.append(rng.choice(_DECISIONS).format(v=rng.choice(["2", "0.65", "10.0", "200"])))
        text = "\n".join(parts)
        path = f"gen/module_{i}.py"
        if _skipped(text, path):
            skipped += 1
            assert not _reports_something(text, path), text
    assert skipped > 50


def test_config_vocabulary_and_safety_limits_feed_the_filter() -> None:
    # lower case: an upper-case constant set to a number is always parsed (another module may
    # decide with it, see audit.imports)
    text = "zorblax = 7\n"
    config = replace(CONFIG, vocabulary={"leverage": {"strong": ["zorblax"]}})
    assert _skipped(text, "pkg/m.py")  # an unknown word: nothing to report, nothing parsed
    assert _reports_something(text, "pkg/m.py", config)
    assert not _skipped(text, "pkg/m.py", Prefilter(config))
    assert not _skipped("ZORBLAX = 7\n", "pkg/m.py")
    text = "ZORBLAX = 7\n"
    limits = replace(CONFIG, safety_limit_names=("*ZORBLAX*",))
    assert Prefilter(limits).may_hold_findings(text)
    assert Prefilter(replace(CONFIG, safety_limit_names=("*",))).may_hold_findings("x = 1\n")


def test_hidden_spellings_are_always_parsed() -> None:
    assert FILTER.may_hold_findings('X = {"\\x6cev": 10}\n')  # an escape could spell a word
    assert FILTER.may_hold_findings('X = ["SOL" "USDT", "ETH" "USDT"]\n')  # glued symbols
    assert FILTER.may_hold_findings('X = {"ki" "ll": 0.6}\n')  # glued words


def test_an_audit_with_the_filter_equals_a_scan_of_every_file(monkeypatch) -> None:  # noqa: ANN001
    """The same audit with the pre-filter passing every file: the same findings, the ones
    joined across modules (a constant used as a decision in another module) included."""
    root = REPO / "examples" / "legacy_trader"
    config = replace(CONFIG, root=str(REPO))
    with_filter = run_audit([root], config, use_cache=False, display_root=REPO, jobs=1)
    monkeypatch.setattr(Prefilter, "may_hold_findings", lambda self, text, path="": True)
    every_file = run_audit([root], config, use_cache=False, display_root=REPO, jobs=1)

    def key(f):  # noqa: ANN001, ANN202
        return (f.path, f.line, f.column, f.rule_id, f.name, f.value)

    assert sorted(map(key, with_filter.findings)) == sorted(map(key, every_file.findings))
    # the tree holds findings only the join across modules makes (the star-imported sheet)
    assert any(f.path.endswith("confluence_params.py") for f in with_filter.findings)
