"""Unified diffs that round-trip byte for byte: the ledger's reverse patches and the dry run.

`difflib` writes the diff; applying one needs more care than `patch(1)` gives: line endings
(`\\r\\n`) and a last line without a newline must come back exactly, and a hunk that does not
match is an error, never a fuzzy guess.
"""

from __future__ import annotations

import difflib
import re

from migrations.errors import MigrateError

NO_NEWLINE = "\\ No newline at end of file"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def make_patch(before: str, after: str, path: str, context: int = 3) -> str:
    """A unified diff from `before` to `after` ("" when they are equal)."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    if a == b:
        return ""
    out = [f"--- a/{path}\n", f"+++ b/{path}\n"]
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out.extend(_lines(" ", a[a1:a2]))
                continue
            if tag in ("replace", "delete"):
                out.extend(_lines("-", a[a1:a2]))
            if tag in ("replace", "insert"):
                out.extend(_lines("+", b[b1:b2]))
    return "".join(out)


def _range(start: int, end: int) -> str:
    length = end - start
    first = start + 1 if length else start
    return f"{first},{length}"


def _lines(tag: str, lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(tag + line)
        else:
            out.append(f"{tag}{line}\n{NO_NEWLINE}\n")
    return out


def apply_patch(text: str, patch: str) -> str:
    """Apply a diff made by `make_patch`; MigrateError if any hunk does not match exactly."""
    if not patch:
        return text
    source = text.splitlines(keepends=True)
    rows = patch.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(rows) and not rows[i].startswith("@@"):
        i += 1
    while i < len(rows):
        head = _HUNK.match(rows[i])
        if head is None:
            raise MigrateError(f"malformed patch near line {i + 1}: {rows[i][:40]!r}")
        start = int(head.group(1)) - (1 if head.group(2) != "0" else 0)
        i += 1
        old: list[str] = []
        new: list[str] = []
        while i < len(rows) and not rows[i].startswith("@@"):
            row = rows[i]
            line = row[1:] + "\n"
            if i + 1 < len(rows) and rows[i + 1] == NO_NEWLINE:
                line = row[1:]
                i += 1
            if row[:1] in (" ", "-"):
                old.append(line)
            if row[:1] in (" ", "+"):
                new.append(line)
            if row[:1] not in (" ", "-", "+"):
                raise MigrateError(f"malformed patch line: {row[:40]!r}")
            i += 1
        if start < pos or source[start : start + len(old)] != old:
            raise MigrateError(f"patch does not apply at line {start + 1}")
        out.extend(source[pos:start])
        out.extend(new)
        pos = start + len(old)
    out.extend(source[pos:])
    return "".join(out)
