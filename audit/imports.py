"""Module constants used as decisions in other modules (cross-module flow, one hop).

`STAIRCASE_LOOKBACK = 5` in `config/constants.py` says nothing by its name; `strategy/patterns.py`
imports it and slices the last candles with it (`candles[-STAIRCASE_LOOKBACK:]`). No single-file
scan can tell. Each file's scan therefore returns two lists, cached with its findings:

- *exports*: module constants whose names decide nothing (held back by `Judge._hold`);
- *imports*: `module:NAME` for each upper-case name it imports (`from config.constants import X`,
  `from .constants import X`, `import config.constants as c` then `c.X`) and uses as a decision:
  compared, used in a slice or index, or passed to a call other than display.

`join` reports an exported constant when some other file imports it under that module path and
uses it as a decision; the message names that file. Nothing else of the importer is read again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from audit.finding import Finding

if TYPE_CHECKING:  # the join runs on the warm path, which never loads libcst
    import libcst as cst

CONSTANT_NAME = re.compile(r"^_?[A-Z][A-Z0-9_]*$")
_IMPORTS_CONSTANT = re.compile(r"\bimport\b")
# `alias.UPPER_NAME` reads in the text: the aliases worth resolving
_ATTRIBUTE_READ = re.compile(r"([A-Za-z_][\w.]*)\.(?=_?[A-Z][A-Z0-9_]*\b)")


# How one module refers to another's upper-case names, read off its text (a cheap, generous
# reading: a match inside a string only keeps a finding that might have been dropped).
_FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE
)
_ATTRIBUTE_CONSTANT = re.compile(r"\.(_?[A-Z][A-Z0-9_]*)\b")
_GETATTR_CONSTANT = re.compile(r"getattr\([^,()]+,\s*[\"'](_?[A-Z][A-Z0-9_]*)[\"']")


def references(text: str, rel_path: str) -> list[str]:
    """What a file may read of other modules' upper-case names: `module:NAME` for `from module
    import NAME`, `module:*` for a star import, `*:NAME` for `alias.NAME` and `getattr(m, "NAME")`.

    A module constant whose value only reaches display in its own module (`LEVERAGE = 10` logged by
    a script) is a decision only if another module refers to it; see `keep_referenced`.
    """
    found: set[str] = set()
    package = list(PurePosixPath(rel_path).parent.parts)
    for match in _FROM_IMPORT.finditer(text):
        dots, module, names = match.groups()
        origin = _resolve(len(dots), module, package)
        if origin is None:
            continue
        for line in names.strip("()").splitlines():
            for part in line.split("#", 1)[0].split(","):
                name = part.strip().split(" ", 1)[0]
                if name == "*":
                    found.add(f"{origin}:*")
                elif CONSTANT_NAME.match(name):
                    found.add(f"{origin}:{name}")
    if "." in text:
        found.update(f"*:{name}" for name in _ATTRIBUTE_CONSTANT.findall(text))
    if "getattr" in text:
        found.update(f"*:{name}" for name in _GETATTR_CONSTANT.findall(text))
    return sorted(found)


def _by_name(outcomes: list, field: str) -> dict[str, list[tuple[str, str]]]:
    """The `origin:NAME` entries of each outcome's `field`, by NAME: (origin, the file's rel)."""
    by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for outcome in outcomes:
        for entry in getattr(outcome, field, ()):
            origin, _, name = entry.rpartition(":")
            by_name[name].append((origin, outcome.rel))
    return by_name


def keep_referenced(outcomes: Iterable) -> list[Finding]:  # noqa: ANN001 - runner.FileOutcome items
    """The findings only shown in their own module (`shown`) that another file refers to."""
    outcomes = list(outcomes)
    by_name = _by_name(outcomes, "refers")
    out: list[Finding] = []
    for outcome in outcomes:
        shown = getattr(outcome, "shown", ())
        if not shown:
            continue
        here = _module_of(outcome.rel)
        for finding in shown:
            if any(
                user != outcome.rel and (origin == "*" or _same_module(here, origin))
                for origin, user in by_name.get(finding.name, []) + by_name.get("*", [])
            ):
                out.append(finding)
    return out


def _resolve(level: int, module: str, package: list[str]) -> str | None:
    """The absolute dotted module of `from <dots><module> import`, or None past the top."""
    if not level:
        return module or None
    if level - 1 > len(package):
        return None
    parts = package[: len(package) - (level - 1)] if level > 1 else package
    parts = [p for p in parts if p not in ("", ".", "..", "/")]
    return ".".join([*parts, module] if module else parts)


def imported_names(
    module: cst.Module, source: str, rel_path: str
) -> tuple[dict[str, str], dict[str, str]] | None:
    """(local name -> "module:NAME", local module alias -> module) of the module's imports of
    upper-case names, or None when there are none; the scan records their decision uses. A star
    import appears among the names as `*module -> module`."""
    import libcst as cst

    if not _IMPORTS_CONSTANT.search(source):
        return None
    names: dict[str, str] = {}
    modules: dict[str, str] = {}
    package = list(PurePosixPath(rel_path).parent.parts)
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar):
                origin = _origin(small, package)
                if origin is not None:  # `from config.constants import *`: any upper-case
                    names[f"*{origin}"] = origin  # name read here may be one of its constants
            elif isinstance(small, cst.ImportFrom):
                origin = _origin(small, package)
                if origin is None:
                    continue
                for alias in small.names:
                    name = _dotted(alias.name)
                    local = _dotted(alias.asname.name) if alias.asname else name
                    if CONSTANT_NAME.match(name):
                        names[local] = f"{origin}:{name}"
                    elif name:
                        modules[local] = f"{origin}.{name}" if origin else name
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    name = _dotted(alias.name)
                    local = _dotted(alias.asname.name) if alias.asname else name
                    if name:
                        modules[local] = name
    if modules:
        # a module alias matters only where the text reads an upper-case name off it (`c.GAP_N`)
        read = set(_ATTRIBUTE_READ.findall(source))
        modules = {alias: origin for alias, origin in modules.items() if alias in read}
    if not names and not modules:
        return None
    return names, modules


def join(outcomes: Iterable) -> list[Finding]:  # noqa: ANN001 - runner.FileOutcome items
    """The exported constants some other file uses as a decision, as findings."""
    outcomes = list(outcomes)
    wanted = _by_name(outcomes, "imports")
    if not wanted:
        return []
    # a package's `__init__` that re-exports a module's names (`from .constants import *` or
    # `from .constants import STAIR_N`): importing them from the package imports that module's
    reexports: dict[str, set[str]] = defaultdict(set)  # "module:NAME" or "module:*" -> packages
    for outcome in outcomes:
        if PurePosixPath(outcome.rel).name == "__init__.py":
            for entry in getattr(outcome, "refers", ()):
                if not entry.startswith("*:"):
                    reexports[entry].add(_module_of(outcome.rel))
    out: list[Finding] = []
    for outcome in outcomes:
        exports = getattr(outcome, "exports", ())
        if not exports:
            continue
        here = _module_of(outcome.rel)
        for finding in exports:
            homes = [here]
            for key in (f"{m}:{finding.name}" for m in _suffixes(here)):
                homes += reexports.get(key, ())
            for key in (f"{m}:*" for m in _suffixes(here)):
                homes += reexports.get(key, ())
            users = sorted(
                {
                    user
                    for origin, user in wanted.get(finding.name, ())
                    if user != outcome.rel and any(_same_module(h, origin) for h in homes)
                }
            )
            if not users:
                continue
            more = f" (and {len(users) - 1} more)" if len(users) > 1 else ""
            message = (
                f"{finding.name} = {finding.value} is used as a decision in {users[0]}{more}: "
                "a hardcoded decision kept in another module"
            )
            out.append(replace(finding, message=message))
    return out


def _origin(node: cst.ImportFrom, package: list[str]) -> str | None:
    """The absolute dotted module of a `from ... import`, relative levels resolved."""
    return _resolve(len(node.relative), _dotted(node.module) if node.module else "", package)


def _suffixes(module: str) -> list[str]:
    """`bot.config.constants` -> [bot.config.constants, config.constants, constants]: the ways an
    import resolved against another root may name it."""
    parts = module.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


def _module_of(rel: str) -> str:
    path = PurePosixPath(rel)
    parts = [p for p in path.with_suffix("").parts if p not in ("", ".", "..", "/")]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _same_module(here: str, origin: str) -> bool:
    """Whether a file's module path (`bot.config.constants`) is the imported `config.constants`."""
    if not origin:
        return False
    return here == origin or here.endswith("." + origin) or origin.endswith("." + here)


def _dotted(node: cst.CSTNode | None) -> str:
    import libcst as cst

    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr.value}" if base else ""
    return ""
