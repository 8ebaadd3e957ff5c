"""The boundaries of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
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
