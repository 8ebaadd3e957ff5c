"""The boundaries of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import audit
import engine

REPO = Path(__file__).resolve().parents[1]
PARTS = ("qctl", "tui", "audit", "migrations", "models", "engine")
# part -> the other parts it may import (DESIGN.md: qctl -> {tui, models, migrations} -> {engine, audit})
ALLOWED = {
    "engine": set(),
    "audit": set(),
    "models": {"engine"},
    "migrations": {"engine", "audit"},
    "tui": {"engine"},
    "qctl": {"tui", "models", "migrations", "engine", "audit"},
}


def _imports(path: Path) -> set[str]:
    """The qctl parts a file imports, at any depth of the file."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PARTS)


@pytest.mark.parametrize("part", PARTS)
def test_dependency_direction(part: str) -> None:
    folder = REPO / part
    bad = {}
    for path in folder.rglob("*.py"):
        wrong = _imports(path) - ALLOWED[part] - {part}
        if wrong:
            bad[str(path.relative_to(REPO))] = sorted(wrong)
    assert bad == {}


def test_migrations_use_only_engine_domain() -> None:
    folder = REPO / "migrations"
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("engine")
            ):
                assert node.module == "engine.domain", f"{path}: imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("engine") or alias.name == "engine.domain"


def test_packages_come_from_this_checkout() -> None:
    """Top-level names like `engine` are generic: make sure the tests exercise ours."""
    for module in (engine, audit):
        assert Path(module.__file__).resolve().is_relative_to(REPO)


def test_the_engine_core_knows_no_venue_and_no_journal() -> None:
    """engine/core (policy, risk, exits, loop, clocks, bars) imports neither ccxt nor the venues,
    the journal or the runtimes: venues plug into it (DESIGN.md, "Live, and past one machine")."""
    bad = {}
    for path in (REPO / "engine" / "core").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")
                if top[0] in ("ccxt", "aiohttp") or (
                    top[0] == "engine"
                    and len(top) > 1
                    and top[1] not in ("core", "domain", "resources")
                ):
                    bad.setdefault(str(path.relative_to(REPO)), []).append(name)
    assert bad == {}


def _loaded_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module is loaded: module level, `try` bodies and
    `if` branches; not `if TYPE_CHECKING:` and not imports inside functions, which run later and
    cannot make a loop at import time."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                yield from _loaded_imports(node.body)
                yield from _loaded_imports(node.orelse)
        elif isinstance(node, ast.Try):
            yield from _loaded_imports(node.body)


def _module_imports(root: Path, parts: tuple[str, ...]) -> dict[str, set[str]]:
    """Each module of `parts` under `root` -> the modules of `parts` it imports when loaded."""
    modules: dict[str, Path] = {}
    for part in parts:
        for path in (root / part).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _loaded_imports(ast.parse(path.read_text("utf-8")).body):
            if isinstance(node, ast.Import):
                deps.update(filter(None, (known(a.name) for a in node.names)))
                continue
            base = node.module or ""
            if node.level:
                prefix = package
                for _ in range(node.level - 1):
                    prefix = prefix.rpartition(".")[0]
                base = f"{prefix}.{base}" if base else prefix
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found = full if full in modules else known(base)
                if found:
                    deps.add(found)
        deps.discard(name)
        graph[name] = deps
    return graph


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops of `graph`: its strongly connected components of more than one module."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []
    for start in sorted(graph):
        if start in order:
            continue
        # iterative Tarjan: (module, iterator over its imports)
        work = [(start, iter(sorted(graph[start])))]
        order[start] = low[start] = len(order)
        stack.append(start)
        while work:
            module, deps = work[-1]
            for dep in deps:
                if dep not in order:
                    order[dep] = low[dep] = len(order)
                    stack.append(dep)
                    work.append((dep, iter(sorted(graph[dep]))))
                    break
                if dep in stack:
                    low[module] = min(low[module], order[dep])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == order[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        loops.append(sorted(component))
    return loops


def test_no_import_loops() -> None:
    """No two modules import each other, directly or through others, when they are loaded
    (DEVELOPERS.md: "no import loops")."""
    graph = _module_imports(REPO, PARTS)
    assert len(graph) > 50  # the walk found the packages
    assert _loops(graph) == []


def test_the_loop_check_finds_a_loop(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\nimport pkg.d\n")
    (pkg / "b.py").write_text("from . import c\nx = 1\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
        "def f():\n    from pkg import a\n"
    )
    # d imports a only for type checkers and inside a function: not a loop
    assert _loops(_module_imports(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.c"]]
