"""Static auditor of hardcoded trading decisions in Python source (libcst based).

The auditor knows nothing of the engine: it works on source code only.
"""

from audit.finding import AuditResult, Category, Finding, Severity

__all__ = ["AuditResult", "Category", "Finding", "Severity"]
