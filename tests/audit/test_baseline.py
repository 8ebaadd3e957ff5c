"""Baseline round-trips: accepted findings stay accepted across edits; new ones are reported."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from audit.baseline import (
    BASELINE_VERSION,
    Baseline,
    BaselineError,
    load_baseline,
    write_baseline,
)
from audit.finding import Category, Finding, Severity, parse_error


def make(
    path: str = "bot/engine.py",
    line: int = 10,
    name: str = "leverage",
    value: str = "10.0",
    category: Category = Category.LEVERAGE,
    scope: str = "Engine.decide",
    column: int = 8,
) -> Finding:
    return Finding(
        path=path,
        line=line,
        column=column,
        rule_id="assign-fallback",
        category=category,
        severity=Severity.WARNING,
        confidence=0.9,
        scope=scope,
        name=name,
        value=value,
        message=f"{name} is set to {value} in {scope}",
    )


FINDINGS = [
    make(),
    make(
        path="bot/harvest.py",
        line=4,
        name="T1_R",
        value="2.0",
        category=Category.HARVEST,
        scope="HarvestTheta",
    ),
    make(
        path="bot/apply.py",
        line=33,
        name="kill_score",
        value="0.65",
        category=Category.KILL_SCORE,
        scope="apply",
    ),
]


def test_round_trip_accepts_everything(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    assert write_baseline(file, FINDINGS) == 3
    new, matched = load_baseline(file).split(FINDINGS)
    assert new == []
    assert matched == 3


def test_line_shift_stays_baselined(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    write_baseline(file, FINDINGS)
    moved = [replace(f, line=f.line + 25, column=f.column + 4) for f in FINDINGS]
    new, matched = load_baseline(file).split(moved)
    assert (new, matched) == ([], 3)


def test_changed_value_is_new(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    write_baseline(file, FINDINGS)
    changed = replace(FINDINGS[0], value="20.0")
    new, matched = load_baseline(file).split([changed, *FINDINGS[1:]])
    assert new == [changed]
    assert matched == 2


def test_copy_pasted_occurrence_is_new_and_the_later_one_is_reported(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    write_baseline(file, FINDINGS)
    original = FINDINGS[0]
    copy = replace(original, line=original.line + 40)
    new, matched = load_baseline(file).split([copy, *FINDINGS])
    assert new == [copy]
    assert matched == 3


def test_a_fingerprint_counted_twice_absorbs_at_most_two(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    twice = [make(line=10), make(line=20)]
    assert write_baseline(file, twice) == 2
    entries = json.loads(file.read_text())["findings"]
    assert len(entries) == 1 and entries[0]["count"] == 2
    baseline = load_baseline(file)
    assert baseline.split(twice) == ([], 2)
    third = make(line=30)
    assert baseline.split([*twice, third]) == ([third], 2)


def test_parse_errors_are_never_baselined(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    broken = parse_error("bot/py2.py", "SyntaxError: invalid syntax (line 3)")
    assert write_baseline(file, [*FINDINGS, broken]) == 3
    assert "py2.py" not in file.read_text()
    new, matched = load_baseline(file).split([*FINDINGS, broken])
    assert new == [broken]
    assert matched == 3


def test_file_is_versioned_sorted_and_stable(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    write_baseline(one, FINDINGS)
    write_baseline(two, list(reversed(FINDINGS)))
    assert one.read_bytes() == two.read_bytes()
    text = one.read_text()
    assert text.endswith("}\n") and text.count("\n") > 10  # indented, one field per line
    document = json.loads(text)
    assert document["version"] == BASELINE_VERSION
    paths = [e["path"] for e in document["findings"]]
    assert paths == sorted(paths)
    first = document["findings"][0]
    assert set(first) == {"fingerprint", "path", "scope", "name", "category", "value", "count"}
    assert first["path"] == "bot/apply.py" and first["value"] == "0.65"
    assert first["fingerprint"] == FINDINGS[2].fingerprint


def test_from_findings_matches_what_is_written(tmp_path: Path) -> None:
    in_memory = Baseline.from_findings([*FINDINGS, FINDINGS[0]])
    assert len(in_memory) == 4
    assert in_memory.count(FINDINGS[0].fingerprint) == 2


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a qctl audit baseline"),
        ('{"tool": "other", "version": 1, "findings": []}', "not a qctl audit baseline"),
        ('{"tool": "qctl-audit-baseline", "version": 99, "findings": []}', "version 99"),
        ('{"tool": "qctl-audit-baseline", "version": 1}', "no 'findings' list"),
        (
            '{"tool": "qctl-audit-baseline", "version": 1, "findings": [{"count": 1}]}',
            "fingerprint",
        ),
        (
            '{"tool": "qctl-audit-baseline", "version": 1, '
            '"findings": [{"fingerprint": "ab", "count": 0}]}',
            "invalid count",
        ),
    ],
)
def test_unusable_files_raise_a_one_line_error(tmp_path: Path, content: str, fragment: str) -> None:
    file = tmp_path / "baseline.json"
    file.write_text(content)
    with pytest.raises(BaselineError) as caught:
        load_baseline(file)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="not found"):
        load_baseline(tmp_path / "nope.json")


def test_non_utf8_file_raises(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    file.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BaselineError, match="not UTF-8"):
        load_baseline(file)


def test_unwritable_location_raises(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="cannot write baseline"):
        write_baseline(tmp_path / "missing-dir" / "baseline.json", FINDINGS)
