"""The migrations package has no import cycle: every module can be imported on its own.

A cycle (base imported bindings and bindings imported base) makes import order matter and hides
which module owns a helper. The graph counts every import that runs, at module level or inside a
function; only `if TYPE_CHECKING:` imports are left out, since they never run.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "migrations"


def _runtime_imports(tree: ast.AST, package: str) -> set[str]:
    """Modules of `package` that this module imports when it runs."""
    out: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    walk(stmt)
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names if a.name.startswith(package + "."))
            elif isinstance(child, ast.ImportFrom) and child.module:
                if child.module == package:
                    out.update(f"{package}.{a.name}" for a in child.names)
                elif child.module.startswith(package + "."):
                    out.add(child.module)
            walk(child)

    walk(tree)
    return out


def import_graph(folder: Path) -> dict[str, set[str]]:
    package = folder.name
    graph: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        graph[name] = _runtime_imports(ast.parse(path.read_text("utf-8")), package)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checker_sees_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy.b import B\nA = 1\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from loopy.c import C\n"
        "def f():\n    from loopy.a import A\n    return A\nB = 2\n"
    )
    (pkg / "c.py").write_text("from loopy.b import B\n")
    graph = import_graph(pkg)
    assert graph["loopy.b"] == {"loopy.a"}  # the TYPE_CHECKING import never runs
    assert find_cycle(graph) == ["loopy.a", "loopy.b", "loopy.a"]


def test_migrations_has_no_import_cycle() -> None:
    assert find_cycle(import_graph(PACKAGE)) is None


def test_helpers_have_one_home() -> None:
    """base re-uses the syntax helpers; it does not define its own copies."""
    base = importlib.import_module("migrations.base")
    syntax = importlib.import_module("migrations.syntax")
    for name in ("code", "defined_name", "without", "CONSTRUCTORS"):
        assert getattr(base, name) is getattr(syntax, name)
