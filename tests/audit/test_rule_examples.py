"""Every example of every rule is a test case: adding a rule adds its tests (Fixit's harness idea)."""

from __future__ import annotations

import textwrap

import pytest

from audit.config import AuditConfig
from audit.rules import Rule, all_rules, iter_examples
from audit.scan import scan_source
from tests.audit.helpers import CONFIG

EXAMPLES = list(iter_examples())


def _id(example: tuple[type[Rule], str, object]) -> str:
    rule, code, expected = example
    kind = "invalid" if expected else "valid"
    return f"{rule.rule_id}-{kind}-{code.splitlines()[0][:30]}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[_id(e) for e in EXAMPLES])
def test_rule_example(example: tuple[type[Rule], str, object]) -> None:
    rule, code, expected = example
    findings = scan_source(textwrap.dedent(code), "pkg/module.py", CONFIG).findings
    mine = [f for f in findings if f.rule_id == rule.rule_id]
    if expected is None:
        assert mine == [], f"{rule.rule_id} must not flag:\n{code}\n got {mine}"
        return
    assert mine, f"{rule.rule_id} should flag:\n{code}\n got {findings}"
    hit = [f for f in mine if f.name == expected.name and f.category is expected.category]
    assert hit, (
        f"expected {expected.name} ({expected.category}) in {[(f.name, f.category) for f in mine]}"
    )
    if expected.value:
        assert any(expected.value in f.value for f in hit)


def test_every_rule_has_examples_and_a_unique_id() -> None:
    rules = all_rules()
    ids = [r.rule_id for r in rules]
    assert len(ids) == len(set(ids))
    for rule in rules:
        assert rule.INVALID, f"{rule.__name__} has no INVALID example"
        assert rule.title and rule.why


def test_default_config_is_the_shared_one() -> None:
    assert isinstance(CONFIG, AuditConfig)
    assert CONFIG.reference_limits, "tests audit with the owner's limits, as the CLI does"
