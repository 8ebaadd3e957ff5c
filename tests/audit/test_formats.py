"""Output formats: SARIF validated against the official schema, JSON counts, CSV and GitHub escaping."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest

from audit.finding import AuditResult, Category, Finding, Severity, parse_error
from audit.formats import (
    CSV_COLUMNS,
    FORMATS,
    SARIF_FINGERPRINT_KEY,
    FormatError,
    escape_data,
    escape_property,
    github_line,
    render,
    sarif_document,
    tool_version,
)

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


def make(
    path: str,
    line: int,
    category: Category,
    name: str,
    value: str,
    *,
    rule_id: str = "constant",
    severity: Severity = Severity.WARNING,
    column: int = 0,
    message: str = "",
    is_test: bool = False,
) -> Finding:
    return Finding(
        path=path,
        line=line,
        column=column,
        rule_id=rule_id,
        category=category,
        severity=severity,
        confidence=0.8,
        scope="Service.run",
        name=name,
        value=value,
        message=message or f"{name} = {value} is a {category} decision",
        end_line=line,
        end_column=column + len(value),
        is_test=is_test,
    )


def sample_result() -> AuditResult:
    findings = [
        make(
            "ai_engine/service.py",
            40,
            Category.LEVERAGE,
            "leverage",
            "10.0",
            rule_id="assign-fallback",
            column=8,
        ),
        make("execution/router.py", 12, Category.LEVERAGE, "lev", "10", rule_id="assign-fallback"),
        make("apply/layer.py", 50, Category.KILL_SCORE, "kill_score", "0.65", rule_id="comparison"),
        make(
            "config/keys.py",
            3,
            Category.SECRET,
            "API_KEY",
            "<redacted 16 chars>",
            rule_id="secret",
            severity=Severity.ERROR,
        ),
        make(
            "limits.py",
            9,
            Category.SAFETY_LIMIT,
            "MAX_LEVERAGE_HARD_CAP",
            "125",
            rule_id="safety-limit",
            severity=Severity.INFO,
        ),
        make("tests/test_engine.py", 5, Category.LEVERAGE, "leverage", "3", is_test=True),
        parse_error("legacy/py2_only.py", "SyntaxError: Missing parentheses in call to 'print'"),
    ]
    return AuditResult(
        findings=findings, files_scanned=12, files_from_cache=4, suppressed=2, baselined=1
    )


# ---------------------------------------------------------------- sarif


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_sarif_is_valid_against_the_official_schema(sarif_validator) -> None:
    document = json.loads(render(sample_result(), "sarif"))
    errors = sorted(sarif_validator.iter_errors(document), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]


def test_empty_result_is_valid_sarif(sarif_validator) -> None:
    document = json.loads(render(AuditResult(), "sarif"))
    sarif_validator.validate(document)
    assert document["runs"][0]["results"] == []
    assert document["runs"][0]["tool"]["driver"]["rules"] == []


def test_schema_rejects_a_broken_log(sarif_validator) -> None:
    """The validation above can fail: a 0-based column is not a SARIF column."""
    document = sarif_document(sample_result())
    broken = copy.deepcopy(document)
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startColumn"] = 0
    assert not sarif_validator.is_valid(broken)
    wrong_version = dict(document, version="2.0.0")
    assert not sarif_validator.is_valid(wrong_version)


def test_sarif_driver_rules_and_results() -> None:
    result = sample_result()
    document = sarif_document(result)
    assert document["version"] == "2.1.0"
    assert document["$schema"].endswith("sarif-schema-2.1.0.json")
    assert len(document["runs"]) == 1
    run = document["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "qctl"
    assert driver["informationUri"].startswith("https://")
    assert driver["semanticVersion"] == tool_version()
    rules = driver["rules"]
    used = {f.rule_id for f in result.findings}
    assert [r["id"] for r in rules] == sorted(used - {"parse-error"}) + ["parse-error"]
    for rule in rules:
        assert rule["name"] and rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
        assert "qctl" in rule["properties"]["tags"]
    by_id = {r["id"]: r for r in rules}
    assert "leverage" in by_id["assign-fallback"]["properties"]["tags"]
    assert by_id["secret"]["defaultConfiguration"]["level"] == "error"
    assert by_id["safety-limit"]["defaultConfiguration"]["level"] == "note"

    results = run["results"]
    assert len(results) == len(result.findings)
    for item in results:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
        location = item["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert not location["artifactLocation"]["uri"].startswith("/")
        assert item["message"]["text"]


def test_sarif_result_fields_for_one_finding() -> None:
    result = sample_result()
    finding = result.findings[0]
    item = next(
        r
        for r in sarif_document(result)["runs"][0]["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "ai_engine/service.py"
    )
    region = item["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 40
    assert region["startColumn"] == finding.column + 1 == 9
    assert region["endColumn"] == finding.end_column + 1
    assert item["level"] == "warning"
    assert item["partialFingerprints"] == {SARIF_FINGERPRINT_KEY: finding.fingerprint}
    props = item["properties"]
    assert props["category"] == "leverage"
    assert props["confidence"] == 0.8
    assert props["scope"] == "Service.run"
    assert (props["name"], props["value"]) == ("leverage", "10.0")


def test_sarif_levels_and_parse_errors() -> None:
    results = sarif_document(sample_result())["runs"][0]["results"]
    levels = {r["ruleId"]: r["level"] for r in results}
    assert levels["secret"] == "error"
    assert levels["safety-limit"] == "note"
    broken = next(r for r in results if r["ruleId"] == "parse-error")
    assert "Missing parentheses" in broken["message"]["text"]
    region = broken["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (1, 1)


def test_sarif_keeps_the_most_severe_results_within_the_limit(sarif_validator) -> None:
    result = sample_result()
    document = sarif_document(result, max_results=3)
    sarif_validator.validate(document)
    run = document["runs"][0]
    levels = sorted(r["level"] for r in run["results"])
    assert levels == ["error", "warning", "warning"]
    assert run["properties"]["resultsOmitted"] == len(result.findings) - 3
    note = run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    assert note.startswith(f"{len(result.findings) - 3} less severe results left out")
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {
        r["ruleId"] for r in run["results"]
    }


def test_sarif_uri_is_percent_encoded() -> None:
    odd = make("my dir/ümlaut file.py", 1, Category.LEVERAGE, "leverage", "5")
    item = sarif_document(AuditResult(findings=[odd]))["runs"][0]["results"][0]
    uri = item["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "my%20dir/%C3%BCmlaut%20file.py"


# ---------------------------------------------------------------- json


def test_json_carries_counts_and_findings() -> None:
    result = sample_result()
    document = json.loads(render(result, "json"))
    assert document["tool"] == "qctl"
    assert document["version"] == tool_version()
    summary = document["summary"]
    assert summary["findings"] == 6
    assert summary["parse_errors"] == 1
    assert summary["in_tests"] == 1
    assert summary["by_category"]["leverage"] == 3
    assert summary["by_category"]["kill_score"] == 1
    assert summary["by_category"]["harvest"] == 0
    assert set(summary["by_category"]) == {str(c) for c in Category}
    assert summary["by_severity"] == {"info": 1, "warning": 4, "error": 1}
    assert (document["files_scanned"], document["files_from_cache"]) == (12, 4)
    assert (document["suppressed"], document["baselined"]) == (2, 1)
    assert len(document["findings"]) == 7
    first = document["findings"][0]
    assert first["path"] == "ai_engine/service.py"
    assert first["fingerprint"] == result.findings[0].fingerprint
    assert document["findings"][-1]["is_test"] is True  # production first, tests last
    assert Finding.from_dict(first) == result.findings[0]


# ---------------------------------------------------------------- csv


def test_csv_parses_with_header_and_one_row_per_finding() -> None:
    tricky = make(
        "a.py",
        7,
        Category.SYMBOL_SELECTION,
        "CORE",
        "['BTC', \"ETH\"]",
        message='list, with "quotes"\nand a newline',
    )
    result = AuditResult(findings=[*sample_result().findings, tricky])
    rows = list(csv.reader(io.StringIO(render(result, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(result.findings) + 1
    records = list(csv.DictReader(io.StringIO(render(result, "csv"))))
    back = next(r for r in records if r["path"] == "a.py")
    assert back["value"] == "['BTC', \"ETH\"]"
    assert back["message"] == 'list, with "quotes"\nand a newline'
    assert back["line"] == "7" and back["column"] == "0"
    assert back["is_test"] == "false"
    assert back["fingerprint"] == tricky.fingerprint


# ---------------------------------------------------------------- github


def test_github_lines_use_workflow_commands_per_severity() -> None:
    lines = render(sample_result(), "github").splitlines()
    assert len(lines) == 7
    assert any(line.startswith("::error file=config/keys.py,line=3,col=1,") for line in lines)
    assert any(line.startswith("::notice file=limits.py,") for line in lines)
    service = next(line for line in lines if "ai_engine/service.py" in line)
    assert service.startswith("::warning file=ai_engine/service.py,line=40,col=9,title=")
    assert service.endswith("::leverage = 10.0 is a leverage decision")


def test_github_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"
    odd = make(
        "dir,with:colon.py",
        2,
        Category.HARVEST,
        "T1_R",
        "2.0",
        message="ratio 100%\nsecond line: here, too",
    )
    line = github_line(odd)
    assert line.startswith("::warning file=dir%2Cwith%3Acolon.py,line=2,col=1,title=")
    properties, message = line[len("::warning ") :].split("::", 1)
    assert message == "ratio 100%25%0Asecond line: here, too"
    assert "\n" not in line and "\r" not in line
    keys = [part.split("=", 1)[0] for part in properties.split(",")]
    assert keys == ["file", "line", "col", "title"]


# ---------------------------------------------------------------- dispatch


def test_formats_and_dispatch() -> None:
    assert FORMATS == ("table", "json", "sarif", "github", "csv")
    for fmt in FORMATS[1:]:
        assert render(sample_result(), fmt)
    with pytest.raises(FormatError, match="print_report"):
        render(sample_result(), "table")
    with pytest.raises(FormatError, match="unknown output format"):
        render(sample_result(), "xml")
