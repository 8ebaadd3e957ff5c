"""Shared helpers for audit tests."""

from __future__ import annotations

import textwrap
from dataclasses import replace

from audit.config import AuditConfig
from audit.finding import Finding
from audit.scan import scan_source
from qctl.audit_cmd import reference_limits

CONFIG = AuditConfig(reference_limits=reference_limits())


def scan(code: str, path: str = "pkg/module.py", **overrides: object) -> list[Finding]:
    """Findings for a dedented snippet under the default config (plus overrides)."""
    config = replace(CONFIG, **overrides) if overrides else CONFIG
    return scan_source(textwrap.dedent(code), path, config).findings


def names(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.name, f.value, str(f.category)) for f in findings}
