"""The finding: what the auditor reports, in one shape for every output format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from enum import StrEnum


class Category(StrEnum):
    LEVERAGE = "leverage"
    POSITION_SIZING = "position_sizing"
    SYMBOL_SELECTION = "symbol_selection"
    HARVEST = "harvest"
    KILL_SCORE = "kill_score"
    STOP_LOSS_TAKE_PROFIT = "stop_loss_take_profit"
    SAFETY_LIMIT = "safety_limit"
    SECRET = "secret"
    OTHER = "other"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}

PARSE_ERROR_RULE = "parse-error"


@dataclass(frozen=True, slots=True)
class Finding:
    """One hardcoded value (or one file that could not be read), with where and why.

    `path` is POSIX-style and relative to the directory the audit was run from, so baselines and
    SARIF stay portable between machines.
    """

    path: str
    line: int
    column: int
    rule_id: str
    category: Category
    severity: Severity
    confidence: float
    scope: str
    name: str
    value: str
    message: str
    end_line: int = 0
    end_column: int = 0
    is_test: bool = False

    @property
    def fingerprint(self) -> str:
        """Stable identity for baselines: independent of line numbers, so edits above do not matter."""
        key = "\x1f".join((self.path, self.scope, self.name, str(self.category), self.value))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]

    @property
    def is_parse_error(self) -> bool:
        return self.rule_id == PARSE_ERROR_RULE

    def to_dict(self) -> dict:
        # every field is a scalar: a plain read is asdict() without its deep copy (3x faster)
        data = {name: getattr(self, name) for name in _FINDING_FIELDS}
        data["category"] = str(self.category)
        data["severity"] = str(self.severity)
        data["fingerprint"] = self.fingerprint
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["category"] = Category(fields["category"])
        fields["severity"] = Severity(fields["severity"])
        return cls(**fields)


_FINDING_FIELDS = tuple(f.name for f in fields(Finding))


def parse_error(path: str, reason: str, severity: Severity = Severity.WARNING) -> Finding:
    """A file the auditor could not read or parse: reported, never raised."""
    return Finding(
        path=path,
        line=1,
        column=0,
        rule_id=PARSE_ERROR_RULE,
        category=Category.OTHER,
        severity=severity,
        confidence=1.0,
        scope="<module>",
        name="",
        value="",
        message=reason,
    )


@dataclass(slots=True)
class AuditResult:
    """Everything one audit run produced; output formats render this and nothing else."""

    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    files_from_cache: int = 0
    suppressed: int = 0
    baselined: int = 0
    root: str = "."

    @property
    def parse_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_parse_error]

    def at_or_above(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.at_least(severity)]
