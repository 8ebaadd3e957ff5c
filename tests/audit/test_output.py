"""Readable audit output at any width: two lines per finding, the table only when it fits.

The demo bot is rendered by the real CLI at 80, 120 and 200 columns and its lines are counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from audit.finding import AuditResult, Category, Finding, Severity, parse_error
from audit.report import concise_lines, executive_summary, full_table_fits, print_report

REPO = Path(__file__).resolve().parents[2]
DEMO = "examples/legacy_trader"


def _qctl(*args: str, columns: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qctl.cli", "audit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "PYTHONPATH": str(REPO)},
    )


@pytest.fixture(scope="module")
def demo_findings() -> int:
    proc = _qctl(DEMO, "--format", "json", "--fail-on", "never", columns=200)
    findings = json.loads(proc.stdout)["findings"]
    others = [f["message"] for f in findings if f["category"] == "other"]
    assert others and not [m for m in others if "hardcoded other" in m or " a other" in m]
    return len(findings)


def _split(text: str) -> tuple[list[str], list[str]]:
    """(lines before the summary panel, the panel's lines)."""
    lines = text.rstrip("\n").split("\n")
    start = next(i for i, line in enumerate(lines) if "Executive summary" in line)
    return lines[:start], lines[start:]


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_the_demo_takes_two_lines_per_finding_at_any_width(
    columns: int, demo_findings: int
) -> None:
    proc = _qctl(DEMO, "--fail-on", "never", columns=columns)
    assert proc.returncode == 0, proc.stderr
    body, panel = _split(proc.stdout)
    assert all(cell_len(line) <= columns for line in body + panel)
    # a finding is at most two lines; section rules ("Findings in test code", ...) add one each
    sections = sum(1 for line in body if line.startswith("─") or "──" in line)
    assert len(body) <= 2 * demo_findings + sections
    assert len(body) >= demo_findings  # every finding is shown
    assert len(panel) <= 40  # the summary: a sentence or two per category, wrapped


def test_concise_is_exactly_two_lines_each_and_the_summary_is_the_same(
    demo_findings: int,
) -> None:
    concise = _qctl(DEMO, "--fail-on", "never", "--output-format", "concise", columns=200)
    full = _qctl(DEMO, "--fail-on", "never", "--output-format", "full", columns=200)
    body, panel = _split(concise.stdout)
    findings = [line for line in body if "──" not in line and line.strip()]
    assert len(findings) == 2 * demo_findings
    assert all(line.startswith("    ") for line in findings[1::2])  # why, indented under it
    assert all(line.startswith(DEMO + "/") for line in findings[0::2])  # path:line:col first
    assert _split(full.stdout)[1] == panel  # the executive summary does not depend on layout
    assert "Line" in full.stdout and "Conf" in full.stdout  # the full table's header


def _finding(path: str, value: str, scope: str = "f", name: str = "leverage") -> Finding:
    return Finding(
        path=path,
        line=12,
        column=4,
        rule_id="assign-fallback",
        category=Category.LEVERAGE,
        severity=Severity.WARNING,
        confidence=0.9,
        scope=scope,
        name=name,
        value=value,
        message="leverage is set to 10 in f: a hardcoded leverage fallback " * 3,
    )


def test_a_concise_finding_fits_80_columns_with_its_location_and_name() -> None:
    long_list = "[" + ", ".join(f"'SYM{i}USDT'" for i in range(400)) + "]"
    finding = _finding("bot/universe.py", long_list, name="CORE_SYMBOLS")
    first, why = concise_lines(finding, 80)
    assert first.startswith("bot/universe.py:12:5 assign-fallback leverage CORE_SYMBOLS = [")
    assert first.endswith("…") and cell_len(first) <= 80
    assert why.startswith("    warning: leverage is set to 10") and cell_len(why) <= 80
    error_first, error_why = concise_lines(parse_error("x/y.py", "nesting too deep: 9 levels"), 80)
    assert error_first == "x/y.py:1:1 parse-error"
    assert error_why == "    warning: nesting too deep: 9 levels"


def _render(result: AuditResult, width: int, style: str = "auto") -> str:
    console = Console(record=True, width=width, force_terminal=False, color_system=None)
    print_report(result, console, style=style)
    return console.export_text()


def test_the_full_table_is_chosen_only_when_it_fits() -> None:
    small = AuditResult(findings=[_finding("bot.py", "10")], files_scanned=1)
    assert full_table_fits(small.findings, 200)
    assert not full_table_fits(small.findings, 80)
    assert "Name = value" in _render(small, 200)  # the table
    assert "Name = value" not in _render(small, 80)  # two concise lines instead
    assert "bot.py:12:5 assign-fallback leverage leverage = 10" in _render(small, 80)
    with pytest.raises(ValueError, match="unknown report style"):
        _render(small, 80, style="wide")


def test_long_values_are_shortened_in_the_full_table_too() -> None:
    long_list = "[" + ", ".join(f"'SYM{i}USDT'" for i in range(400)) + "]"
    result = AuditResult(findings=[_finding("u.py", long_list, name="CORE")], files_scanned=1)
    text = _render(result, 200, style="full")
    assert "SYM399USDT" not in text and "…" in text
    assert len(text.splitlines()) < 20


def test_a_missing_path_is_a_usage_error_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qctl.cli", "audit", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: no such file or directory: {tmp_path / 'nope'}"
    ]
    assert proc.stdout == ""


@pytest.mark.parametrize("category", list(Category))
def test_each_category_has_its_own_worded_sentence(category: Category) -> None:
    findings = [
        Finding(
            path=f"pkg/m{i}.py",
            line=3,
            column=0,
            rule_id="comparison",
            category=category,
            severity=Severity.WARNING,
            confidence=0.9,
            scope="f",
            name=f"name_{i}",
            value=value,
            message="why",
        )
        for i, value in enumerate(["3", "3", "7"])
    ]
    (sentence, _totals) = executive_summary(AuditResult(findings=findings, files_scanned=3))
    assert sentence[0].isupper() and sentence.endswith(".")
    lowered = sentence.lower()
    raw = str(category) if "_" in str(category) else "hardcoded other"  # `stop_loss_take_profit`
    for clumsy in ("hardcoded other", "a other", "other value", raw):
        assert clumsy not in lowered, sentence


def test_the_readme_example_is_what_the_demo_prints() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    block = readme.split("in the style of ruff's concise output:\n\n", 1)[1].split("\n\n", 1)[0]
    first, why = [line[4:] for line in block.splitlines()]
    proc = subprocess.run(
        [sys.executable, "-m", "qctl.cli", "audit", ".", "--output-format", "concise"],
        cwd=REPO / DEMO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONPATH": str(REPO)},
    )
    lines = proc.stdout.splitlines()
    assert first in lines
    assert lines[lines.index(first) + 1] == why
