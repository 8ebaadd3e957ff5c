"""Machine-readable renderings of an AuditResult: JSON, SARIF 2.1.0, GitHub annotations and CSV.

Every format renders the same AuditResult and nothing else, so they cannot disagree. The human
table ("table") lives in `audit.report` because it prints to a rich console instead of returning text.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from importlib import metadata
from pathlib import PurePosixPath
from urllib.parse import quote

from audit.finding import PARSE_ERROR_RULE, AuditResult, Category, Finding, Severity

FORMATS = ("table", "json", "sarif", "github", "csv")
TOOL_NAME = "qctl"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SARIF_VERSION = "2.1.0"
SARIF_FINGERPRINT_KEY = "qctlFingerprint/v1"
SRCROOT = "%SRCROOT%"
# GitHub code scanning rejects a run with more results than this; we keep the most severe instead.
SARIF_MAX_RESULTS = 25_000
_FALLBACK_VERSION = "0.0.0"
_FALLBACK_URI = "https://pypi.org/project/qctl/"

CSV_COLUMNS = (
    "path",
    "line",
    "column",
    "end_line",
    "end_column",
    "severity",
    "category",
    "rule_id",
    "confidence",
    "scope",
    "name",
    "value",
    "message",
    "is_test",
    "fingerprint",
)

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}

# What each category means and what to do about it; used for SARIF rule help.
CATEGORY_TEXT: dict[Category, str] = {
    Category.LEVERAGE: "the leverage of a position",
    Category.POSITION_SIZING: "how large a position is",
    Category.SYMBOL_SELECTION: "which symbols are traded or how they are ranked",
    Category.HARVEST: "when profits are taken (harvest ladder, hold times)",
    Category.KILL_SCORE: "when a position is closed by the kill score",
    Category.STOP_LOSS_TAKE_PROFIT: "stop-loss and take-profit distances",
    Category.SAFETY_LIMIT: "a declared hard safety limit",
    Category.SECRET: "a credential",
    Category.OTHER: "a trading decision",
}

_DECISION_HELP = (
    "A trading decision is written as a literal in the code. Publish it from a policy or derive it "
    "from a model, and keep only hard limits in SafetyLimits. If the literal is intended, mark it "
    "with `# qctl: ignore[<category>]` or accept today's findings with "
    "`qctl audit --write-baseline FILE`."
)
_HELP: dict[str, str] = {
    PARSE_ERROR_RULE: (
        "qctl could not read or parse this file, so it was not audited. Fix its syntax or "
        "encoding, or exclude it in [tool.qctl.audit]."
    ),
}
_CATEGORY_HELP: dict[Category, str] = {
    Category.SAFETY_LIMIT: (
        "Declared hard safety limits are expected and reported for review. They are checked "
        "against the owner's hard limits (margin >= 10 %, leverage <= 125, position <= 50 % of "
        "equity, exposure <= 200 %); a limit looser than those is an error: tighten it."
    ),
    Category.SECRET: (
        "A credential is written in the source. Load it from the environment or a secret store, "
        "and rotate it: it is in the repository history."
    ),
}


class FormatError(ValueError):
    """An output format this module does not render."""


def tool_version() -> str:
    """The installed qctl version (audit must not import qctl, so ask the package metadata)."""
    try:
        return metadata.version(TOOL_NAME)
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


def information_uri() -> str:
    """The project's home page from the package metadata, or its package page."""
    try:
        meta = metadata.metadata(TOOL_NAME)
    except metadata.PackageNotFoundError:
        return _FALLBACK_URI
    for entry in meta.get_all("Project-URL") or []:
        _label, _, url = entry.partition(",")
        if url.strip().startswith(("https://", "http://")):
            return url.strip()
    home = meta.get("Home-page") or ""
    return home if home.startswith(("https://", "http://")) else _FALLBACK_URI


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in report order: production code first, then by file, line and column."""
    return sorted(findings, key=lambda f: (f.is_test, f.path, f.line, f.column, f.rule_id))


def describe(finding: Finding) -> str:
    """One line for a finding: the scanner's own why, or a plain statement when it has none."""
    if finding.is_parse_error:
        return f"could not audit this file: {finding.message}"
    if finding.message:
        return finding.message
    what = f"{finding.name} = {finding.value}" if finding.name else finding.value
    return f"{finding.category}: {what} in {finding.scope}"


def render(result: AuditResult, fmt: str) -> str:
    """Render `result` as text in one of the machine formats (json, sarif, github, csv)."""
    renderers = {
        "json": render_json,
        "sarif": render_sarif,
        "github": render_github,
        "csv": render_csv,
    }
    if fmt == "table":
        raise FormatError("the table format is printed by audit.report.print_report")
    if fmt not in renderers:
        raise FormatError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
    return renderers[fmt](result)


# ---------------------------------------------------------------- json


def summary_counts(result: AuditResult) -> dict:
    """Counts for the JSON summary; parse errors are counted apart from the findings."""
    real = [f for f in result.findings if not f.is_parse_error]
    by_category = Counter(str(f.category) for f in real)
    by_severity = Counter(str(f.severity) for f in real)
    return {
        "findings": len(real),
        "parse_errors": len(result.parse_errors),
        "in_tests": sum(1 for f in real if f.is_test),
        "by_category": {str(c): by_category.get(str(c), 0) for c in Category},
        "by_severity": {str(s): by_severity.get(str(s), 0) for s in Severity},
    }


def dumps_indented(document: object) -> str:
    """The JSON and SARIF documents' text: two-space indent, non-ASCII kept."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def render_json(result: AuditResult) -> str:
    document = {
        "tool": TOOL_NAME,
        "version": tool_version(),
        "root": result.root,
        "summary": summary_counts(result),
        "files_scanned": result.files_scanned,
        "files_from_cache": result.files_from_cache,
        "suppressed": result.suppressed,
        "baselined": result.baselined,
        "findings": [f.to_dict() for f in ordered(result.findings)],
    }
    return dumps_indented(document) + "\n"


# ---------------------------------------------------------------- sarif


def _rule_titles() -> dict[str, str]:
    """rule_id -> title from the scanner's own rules, when they can be loaded."""
    try:
        from audit.rules import all_rules
    except Exception:  # titles only enrich descriptions; the SARIF stays valid without them
        return {}
    return {
        rule.rule_id: getattr(rule, "title", "")
        for rule in all_rules()
        if getattr(rule, "rule_id", "")
    }


def _pascal(rule_id: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", rule_id) if part)


def _sarif_rule(rule_id: str, findings: list[Finding], titles: dict[str, str]) -> dict:
    categories = sorted({f.category for f in findings}, key=lambda c: list(Category).index(c))
    worst = max((f.severity for f in findings), key=lambda s: s.rank)
    if rule_id == PARSE_ERROR_RULE:
        short = "File could not be audited"
        full = (
            "The file could not be read or parsed (syntax error, encoding, binary or unreadable)."
        )
        help_text = _HELP[PARSE_ERROR_RULE]
        tags = ["qctl", "parse-error"]
    else:
        short = titles.get(rule_id) or f"Hardcoded trading value ({rule_id})"
        texts = [CATEGORY_TEXT[c] for c in categories]
        meanings = texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]
        full = f"{short}. A literal in the code decides {meanings}."
        help_text = " ".join(
            dict.fromkeys(_CATEGORY_HELP.get(c, _DECISION_HELP) for c in categories)
        )
        tags = ["qctl", *(str(c) for c in categories)]
    return {
        "id": rule_id,
        "name": _pascal(rule_id) or "QctlRule",
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": _SARIF_LEVEL[worst]},
        "properties": {"tags": tags},
    }


def _artifact_location(path: str) -> dict:
    posix = PurePosixPath(path.replace("\\", "/"))
    if posix.is_absolute():
        return {"uri": "file://" + quote(str(posix), safe="/")}
    return {"uri": quote(str(posix), safe="/"), "uriBaseId": SRCROOT}


def _region(finding: Finding) -> dict:
    line = max(finding.line, 1)
    column = max(finding.column, 0) + 1  # Finding columns are 0-based, SARIF's are 1-based
    region = {"startLine": line, "startColumn": column}
    end_line, end_column = finding.end_line, finding.end_column + 1  # exclusive end, 1-based
    if end_line > line or (end_line == line and end_column > column):
        region["endLine"] = end_line
        region["endColumn"] = end_column
    return region


def _sarif_result(finding: Finding, rule_index: int) -> dict:
    properties: dict = {
        "category": str(finding.category),
        "severity": str(finding.severity),
        "confidence": finding.confidence,
        "scope": finding.scope,
        "name": finding.name,
        "value": finding.value,
        "isTest": finding.is_test,
    }
    if not finding.is_parse_error:
        properties["tags"] = [str(finding.category)]
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVEL[finding.severity],
        "message": {"text": describe(finding)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact_location(finding.path),
                    "region": _region(finding),
                }
            }
        ],
        "partialFingerprints": {SARIF_FINGERPRINT_KEY: finding.fingerprint},
        "properties": properties,
    }


def _keep_most_severe(findings: list[Finding], limit: int) -> list[Finding]:
    if len(findings) <= limit:
        return findings
    ranked = sorted(range(len(findings)), key=lambda i: (-findings[i].severity.rank, i))
    kept = sorted(ranked[:limit])
    return [findings[i] for i in kept]


def sarif_document(result: AuditResult, *, max_results: int = SARIF_MAX_RESULTS) -> dict:
    """The SARIF 2.1.0 log as a dict (one run, one rule per rule id used).

    Past `max_results` the least severe findings are left out (GitHub rejects larger runs), and a
    tool notification says how many.
    """
    all_findings = ordered(result.findings)
    findings = _keep_most_severe(all_findings, max_results)
    omitted = len(all_findings) - len(findings)
    invocation: dict = {"executionSuccessful": True}
    if omitted:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "warning",
                "message": {
                    "text": f"{omitted} less severe results left out: a SARIF run uploaded to "
                    f"GitHub code scanning may hold at most {max_results} results. Use "
                    "--format json for the full list."
                },
            }
        ]
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    rule_ids = sorted(by_rule, key=lambda r: (r == PARSE_ERROR_RULE, r))
    titles = _rule_titles() if rule_ids else {}
    rules = [_sarif_rule(r, by_rule[r], titles) for r in rule_ids]
    index = {r: i for i, r in enumerate(rule_ids)}
    version = tool_version()
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "informationUri": information_uri(),
                        "version": version,
                        "semanticVersion": version,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_sarif_result(f, index[f.rule_id]) for f in findings],
                "invocations": [invocation],
                "properties": {
                    "resultsOmitted": omitted,
                    "filesScanned": result.files_scanned,
                    "filesFromCache": result.files_from_cache,
                    "suppressed": result.suppressed,
                    "baselined": result.baselined,
                },
            }
        ],
    }


def render_sarif(result: AuditResult) -> str:
    return dumps_indented(sarif_document(result)) + "\n"


# ---------------------------------------------------------------- github


def escape_data(text: str) -> str:
    """Escape a workflow-command message, as @actions/core does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value (also ':' and ',', which delimit properties)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(finding: Finding) -> str:
    """One GitHub Actions annotation (`::error file=...,line=...,col=...,title=...::message`)."""
    command = _GITHUB_COMMAND[finding.severity]
    if finding.is_parse_error:
        title = f"{TOOL_NAME} {PARSE_ERROR_RULE}"
    else:
        title = f"{TOOL_NAME} {finding.category} [{finding.rule_id}]"
    props = {
        "file": finding.path,
        "line": str(max(finding.line, 1)),
        "col": str(max(finding.column, 0) + 1),
        "title": title,
    }
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in props.items())
    return f"::{command} {joined}::{escape_data(describe(finding))}"


def render_github(result: AuditResult) -> str:
    return "".join(github_line(f) + "\n" for f in ordered(result.findings))


# ---------------------------------------------------------------- csv


def render_csv(result: AuditResult) -> str:
    """Header plus one row per finding; columns as in `CSV_COLUMNS` (column is 0-based, as in JSON)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for finding in ordered(result.findings):
        data = finding.to_dict()
        writer.writerow([_csv_cell(data[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _csv_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
