"""Baselines: accept today's findings so CI fails only on new ones.

A baseline is a JSON file of fingerprints (path, scope, name, category and value; not the line), each
with a count. Matching is a multiset: moving code down a file keeps a finding baselined, but a
copy-pasted second occurrence of the same value in the same place is new.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from audit.finding import Finding

BASELINE_VERSION = 1
_TOOL = "qctl-audit-baseline"


class BaselineError(Exception):
    """A baseline file that cannot be used (missing, unreadable, corrupt or of another version)."""


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One accepted finding identity; the descriptive fields are there for humans reading diffs."""

    fingerprint: str
    path: str
    scope: str
    name: str
    category: str
    value: str
    count: int

    def to_dict(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "path": self.path,
            "scope": self.scope,
            "name": self.name,
            "category": self.category,
            "value": self.value,
            "count": self.count,
        }


class Baseline:
    """The accepted findings of an earlier run, as a multiset of fingerprints."""

    def __init__(self, entries: Iterable[BaselineEntry] = ()) -> None:
        self.entries: list[BaselineEntry] = list(entries)
        self._counts: Counter[str] = Counter()
        for entry in self.entries:
            self._counts[entry.fingerprint] += entry.count

    @classmethod
    def from_findings(cls, findings: Iterable[Finding]) -> Baseline:
        """Build a baseline in memory (what `write_baseline` would store)."""
        return cls(_entries(findings))

    def __len__(self) -> int:
        """How many findings the baseline accepts (counts summed)."""
        return sum(self._counts.values())

    def count(self, fingerprint: str) -> int:
        return self._counts.get(fingerprint, 0)

    def split(self, findings: Iterable[Finding]) -> tuple[list[Finding], int]:
        """Return (the findings not accepted by the baseline, in input order; how many were matched).

        Each fingerprint absorbs at most as many findings as its count. When there are more, the
        earliest in the file are taken as the old ones, so the extra (later) copies are reported.
        Parse errors are never baselined: a file that stopped parsing is always news.
        """
        items = list(findings)
        order = sorted(
            range(len(items)),
            key=lambda i: (items[i].path, items[i].line, items[i].column, items[i].rule_id),
        )
        remaining = Counter(self._counts)
        matched_idx: set[int] = set()
        for i in order:
            finding = items[i]
            if finding.is_parse_error:
                continue
            fp = finding.fingerprint
            if remaining[fp] > 0:
                remaining[fp] -= 1
                matched_idx.add(i)
        new = [f for i, f in enumerate(items) if i not in matched_idx]
        return new, len(matched_idx)


def _entries(findings: Iterable[Finding]) -> list[BaselineEntry]:
    counts: Counter[str] = Counter()
    first: dict[str, Finding] = {}
    for finding in findings:
        if finding.is_parse_error:
            continue
        fp = finding.fingerprint
        counts[fp] += 1
        first.setdefault(fp, finding)
    entries = [
        BaselineEntry(
            fingerprint=fp,
            path=f.path,
            scope=f.scope,
            name=f.name,
            category=str(f.category),
            value=f.value,
            count=counts[fp],
        )
        for fp, f in first.items()
    ]
    entries.sort(key=lambda e: (e.path, e.scope, e.name, e.category, e.value, e.fingerprint))
    return entries


def write_baseline(path: Path, findings: Iterable[Finding]) -> int:
    """Write the baseline for `findings` to `path` (atomically); return how many findings it accepts.

    The file is sorted and indented so that a baseline update reads as a small, reviewable diff.
    Parse errors are left out: they are never accepted.
    """
    entries = _entries(findings)
    document = {
        "tool": _TOOL,
        "version": BASELINE_VERSION,
        "findings": [e.to_dict() for e in entries],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BaselineError(f"cannot write baseline {path}: {exc.strerror or exc}") from exc
    return sum(e.count for e in entries)


def load_baseline(path: Path) -> Baseline:
    """Read a baseline written by `write_baseline`; raise BaselineError with a one-line reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BaselineError(
            f"baseline file not found: {path} (create it with --write-baseline)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise BaselineError(f"baseline file {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"baseline file {path} is not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from exc
    if not isinstance(document, Mapping) or document.get("tool") != _TOOL:
        raise BaselineError(f"{path} is not a qctl audit baseline")
    version = document.get("version")
    if version != BASELINE_VERSION:
        raise BaselineError(
            f"baseline file {path} has version {version!r}, this qctl reads version "
            f"{BASELINE_VERSION}; re-create it with --write-baseline"
        )
    raw = document.get("findings")
    if not isinstance(raw, list):
        raise BaselineError(f"baseline file {path} has no 'findings' list")
    return Baseline(_entry(path, i, item) for i, item in enumerate(raw))


def _entry(path: Path, index: int, item: object) -> BaselineEntry:
    where = f"baseline file {path}, entry {index + 1}"
    if not isinstance(item, Mapping):
        raise BaselineError(f"{where} is not an object")
    fingerprint = item.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise BaselineError(f"{where} has no fingerprint")
    count = item.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise BaselineError(f"{where} has an invalid count {count!r}")
    fields = {}
    for key in ("path", "scope", "name", "category", "value"):
        value = item.get(key, "")
        if not isinstance(value, str):
            raise BaselineError(f"{where} has a non-text {key!r}")
        fields[key] = value
    return BaselineEntry(fingerprint=fingerprint, count=count, **fields)
