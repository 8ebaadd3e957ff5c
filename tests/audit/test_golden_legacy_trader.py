"""Golden findings for examples/legacy_trader: every decision found with the right category,
no non-decision flagged, nothing else reported in production code."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from audit.finding import AuditResult, Category, Finding, Severity
from audit.runner import run_audit
from tests.audit.helpers import CONFIG

ROOT = Path(__file__).resolve().parents[2] / "examples" / "legacy_trader"
EXPECTED = json.loads((Path(__file__).parent / "legacy_trader_expected.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def result() -> AuditResult:
    return run_audit([ROOT], replace(CONFIG, root=str(ROOT)), display_root=ROOT, use_cache=False)


def _matches(expected: dict, finding: Finding) -> bool:
    if finding.path != expected["path"] or finding.name != expected["name"]:
        return False
    if expected["category"] == Category.SECRET:
        return "redacted" in finding.value  # secrets are never echoed back
    return expected["value"] in finding.value


def _production(result: AuditResult) -> list[Finding]:
    return [f for f in result.findings if not f.is_test]


@pytest.mark.parametrize(
    "expected", EXPECTED["decisions"], ids=lambda e: f"{e['path']}:{e['name']}={e['value'][:12]}"
)
def test_every_decision_is_found_with_its_category(result: AuditResult, expected: dict) -> None:
    hits = [f for f in _production(result) if _matches(expected, f)]
    assert hits, f"not found: {expected}"
    assert expected["category"] in {str(f.category) for f in hits}, (
        f"category of {expected}: {[f.category for f in hits]}"
    )


def test_nothing_else_is_reported_in_production_code(result: AuditResult) -> None:
    extra = [
        f for f in _production(result) if not any(_matches(e, f) for e in EXPECTED["decisions"])
    ]
    assert extra == []


@pytest.mark.parametrize(
    "item", EXPECTED["non_decisions"], ids=lambda n: f"{n['path']}:{n['snippet'][:20]}"
)
def test_non_decision_is_not_flagged(result: AuditResult, item: dict) -> None:
    lines = (ROOT / item["path"]).read_text("utf-8").splitlines()
    flagged = [
        f
        for f in result.findings
        if f.path == item["path"] and item["snippet"] in lines[f.line - 1]
    ]
    assert flagged == [], f"{item['why']}: {flagged}"


def test_tests_are_reported_separately(result: AuditResult) -> None:
    for finding in result.findings:
        assert finding.is_test == finding.path.startswith("tests/")


def test_the_looser_declared_limit_is_the_only_safety_error(result: AuditResult) -> None:
    limits = [f for f in _production(result) if f.category is Category.SAFETY_LIMIT]
    assert len(limits) >= 4
    errors = [f for f in limits if f.severity is Severity.ERROR]
    assert [f.name for f in errors] == ["MAX_TOTAL_EXPOSURE_PCT"]
    assert all(f.severity is Severity.INFO for f in limits if f not in errors)


def test_no_parse_errors(result: AuditResult) -> None:
    assert result.parse_errors == []
