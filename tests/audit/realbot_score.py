"""Score `qctl audit` against a reviewer's list of the decisions in a bot (not a test).

The review list is a text file with one entry per line:

    must   | config/settings.py:20    | DEFAULT_LEVERAGE = 10 (leverage)
    should | strategy/rsi.py:23       | rsi_period grid
    honest | backtest/backtester.py:32 | kline page size
    scope  | config/settings.py:19    | timeframe list (outside qctl's categories; not counted)

`must` and `should` are decisions: one is found when a finding (other than a secret) sits on its
line (or in its `A-B` line range). `honest` lines hold numbers that are not decisions: a finding
there is a false positive. A finding on a line the review does not list is printed as unreviewed,
so the review can be completed; the score counts it as a false positive until it is.

    python -m tests.audit.realbot_score /tmp/realbots/bot /tmp/realbots/bot.review.md
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

KINDS = ("must", "should", "honest", "scope")


@dataclass(frozen=True)
class Entry:
    kind: str
    path: str
    first: int
    last: int
    what: str

    def holds(self, path: str, line: int) -> bool:
        return path == self.path and self.first <= line <= self.last


def parse_review(text: str) -> list[Entry]:
    entries: list[Entry] = []
    for raw in text.splitlines():
        line = raw.strip().lstrip("-* ").strip()
        parts = [part.strip() for part in line.split("|")]
        if len(parts) < 3 or parts[0] not in KINDS:
            continue
        where, _, lines = parts[1].rpartition(":")
        first, _, last = lines.partition("-")
        entries.append(Entry(parts[0], where, int(first), int(last or first), parts[2]))
    return entries


def audit(root: Path) -> list[dict]:
    qctl = Path(sys.executable).with_name("qctl")
    out = subprocess.run(
        [str(qctl), "audit", str(root), "--format", "json", "--no-cache", "--tests", "include"],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(out.stdout)["findings"]
    for finding in findings:
        finding["path"] = str(Path(finding["path"]).resolve().relative_to(root.resolve()))
    return [f for f in findings if f["category"] != "secret"]


def score(root: Path, review: Path) -> int:
    entries = parse_review(review.read_text())
    findings = audit(root)
    counts: dict[str, list[int]] = {"must": [0, 0], "should": [0, 0]}
    for entry in entries:
        if entry.kind not in counts:
            continue
        hit = any(entry.holds(f["path"], f["line"]) for f in findings)
        counts[entry.kind][0] += hit
        counts[entry.kind][1] += 1
        if not hit:
            print(f"missed {entry.kind:6} {entry.path}:{entry.first} {entry.what}")
    false_lines: set[tuple[str, int]] = set()
    for finding in findings:
        owners = [e for e in entries if e.holds(finding["path"], finding["line"])]
        where = f"{finding['path']}:{finding['line']} {finding['rule_id']} {finding['name']} = {finding['value']}"
        if not owners:
            print(f"unreviewed   {where}")
            false_lines.add((finding["path"], finding["line"]))
        elif all(e.kind == "honest" for e in owners):
            print(f"false pos.   {where}")
            false_lines.add((finding["path"], finding["line"]))
    for kind, (found, total) in counts.items():
        share = 100.0 * found / total if total else 100.0
        print(f"{kind}-fix: {found}/{total} = {share:.0f} %")
    print(f"false positives: {len(false_lines)} lines")
    return 0


if __name__ == "__main__":
    sys.exit(score(Path(sys.argv[1]), Path(sys.argv[2])))
