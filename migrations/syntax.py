"""Small syntax helpers that the phase base and the binding rewriter both use.

They live apart so that `migrations.base` and `migrations.bindings` import this module, not each
other (an import cycle made the package's load order matter).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import libcst as cst
import libcst.matchers as m

# methods that run while an object is built: no symbol in scope and nowhere to skip to
CONSTRUCTORS = frozenset(("__init__", "__post_init__", "__new__", "__init_subclass__"))
# why a value inside a command-line option's declaration is never rewritten
CLI_DEFAULT = (
    "a command-line option's default runs at program start, before the arguments are parsed: a "
    "policy look-up there would stop the program (even --help) with no policy file; left as is "
    "(by hand: default=None, and look the value up where the decision reads the option)"
)
# calls that declare a command-line option: their arguments run when the program starts
_CLI_DECLARATIONS = {
    "add_argument": None,  # argparse, on any parser or group
    "set_defaults": None,
    "option": ("click",),
    "argument": ("click",),
    "Option": ("typer",),
    "Argument": ("typer",),
}


def q(text: str) -> str:
    """A double-quoted Python string literal."""
    return json.dumps(text)


def code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def declares_cli_option(call: cst.Call, bare: frozenset[str] = frozenset()) -> bool:
    """`p.add_argument(...)`, `p.set_defaults(...)`, `click.option(...)`, `typer.Option(...)`
    (or a name in `bare`, see `cli_names`): a command-line option whose default is evaluated at
    start-up, before the arguments are parsed."""
    func = call.func
    if isinstance(func, cst.Attribute):
        owners = _CLI_DECLARATIONS.get(func.attr.value, ())
        if owners is None:
            return True
        return isinstance(func.value, cst.Name) and func.value.value in owners
    return isinstance(func, cst.Name) and func.value in bare


def cli_names(module: cst.Module) -> frozenset[str]:
    """Names bound by `from click import option` / `from typer import Option` (with any alias)."""
    out: set[str] = set()
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if not isinstance(small, cst.ImportFrom) or not isinstance(small.module, cst.Name):
                continue
            owner = small.module.value
            if owner not in ("click", "typer") or isinstance(small.names, cst.ImportStar):
                continue
            for alias in small.names:
                name = alias.name.value if isinstance(alias.name, cst.Name) else ""
                if owner in (_CLI_DECLARATIONS.get(name) or ()):
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    if isinstance(bound, cst.Name):
                        out.add(bound.value)
    return frozenset(out)


def defined_name(stmt: cst.CSTNode) -> str | None:
    """The name a top-level statement defines (`X = ...`, `X: T = ...`, `def x`), if one."""
    if isinstance(stmt, cst.FunctionDef):
        return stmt.name.value
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            target = small.targets[0].target
            return target.value if isinstance(target, cst.Name) else None
        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
            return small.target.value
    return None


def used_names(node: cst.CSTNode) -> set[str]:
    return {n.value for n in m.findall(node, m.Name()) if isinstance(n, cst.Name)}


def without(body: Sequence[cst.BaseStatement], doomed: set[int]) -> list[cst.BaseStatement]:
    """`body` without the statements in `doomed` (by id). A comment above a removed statement that
    heads the lines right after it (no blank line between) moves down to the next one kept."""
    out: list[cst.BaseStatement] = []
    carry: list[cst.EmptyLine] = []
    for stmt in body:
        if id(stmt) in doomed:
            lines = list(getattr(stmt, "leading_lines", ()))
            carry = [*carry, *lines] if any(ln.comment for ln in lines) else carry
            continue
        if carry:
            own = list(getattr(stmt, "leading_lines", ()))
            if not own and hasattr(stmt, "leading_lines"):
                stmt = stmt.with_changes(leading_lines=carry)
            carry = []
        out.append(stmt)
    return out
