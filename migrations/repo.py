"""What one file's codemod needs to know about the rest of the repository.

Built once per run from every Python file: which classes carry a `symbol` or an equity field (so a
parameter annotated with them gives the symbol in scope), which dataclasses are harvest ladders,
every call of a class (so a dataclass default is only removed when no call relies on it), and
the names each file uses (so dead constants and helpers are only removed when nothing else refers
to them). It reads files with `ast`, which is many times faster than a concrete syntax tree and
is all an index needs; the rewrites themselves use libcst.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

from migrations.keys import ladder_key

EQUITY_PREFIX = "equity"


@dataclass
class LadderClass:
    """A dataclass whose fields map to harvest/kill policy keys (e.g. `HarvestTheta`)."""

    name: str
    fields: list[str]  # every field, in declaration order
    keys: dict[str, str]  # field -> policy key, for the mapped ones
    defaults: set[str]  # fields declared with a default


@dataclass(frozen=True)
class CallShape:
    """A call `Name(...)`: its keywords, how many positional arguments, any `*`/`**`."""

    keywords: frozenset[str]
    positional: int
    starred: bool


@dataclass
class _FileIndex:
    names: set[str] = field(default_factory=set)
    bases: dict[str, set[str]] = field(default_factory=dict)  # class -> base class names
    symbol_readers: set[str] = field(default_factory=set)  # `x` in `x.symbol`
    classes: list[tuple[str, list[str], set[str], set[str], bool]] = field(default_factory=list)
    calls: dict[str, list[CallShape]] = field(default_factory=dict)
    optional_symbol_funcs: set[str] = field(default_factory=set)


@dataclass
class RepoIndex:
    symbol_classes: set[str] = field(default_factory=set)
    equity_fields: dict[str, str] = field(default_factory=dict)
    ladders: dict[str, LadderClass] = field(default_factory=dict)
    names_by_file: dict[str, set[str]] = field(default_factory=dict)
    optional_symbol_funcs: set[str] = field(default_factory=set)
    # variable names whose `.symbol` the repository reads somewhere (`signal.symbol`)
    symbol_readers: set[str] = field(default_factory=set)
    _files: dict[str, _FileIndex] = field(default_factory=dict, repr=False)

    @classmethod
    def from_sources(cls, sources: Mapping[str, str]) -> RepoIndex:
        """Index files given as {relative path: source}; files that do not parse are left out."""
        index = cls()
        for rel, source in sources.items():
            index._parse(rel, source)
        index._rebuild()
        return index

    def replace(self, rel: str, source: str) -> None:
        """Re-index one file after a rewrite (the others are not parsed again)."""
        self._files.pop(rel, None)
        self.names_by_file.pop(rel, None)
        self._parse(rel, source)
        self._rebuild()

    def _parse(self, rel: str, source: str) -> None:
        info = _index_source(source)
        if info is None:
            return
        self._files[rel] = info
        self.names_by_file[rel] = info.names

    def _rebuild(self) -> None:
        self.symbol_classes, self.equity_fields, self.ladders = set(), {}, {}
        self.optional_symbol_funcs, self.symbol_readers = set(), set()
        bases: dict[str, set[str]] = {}
        for info in self._files.values():
            self.optional_symbol_funcs |= info.optional_symbol_funcs
            self.symbol_readers |= info.symbol_readers
            for cls, names in info.bases.items():
                bases.setdefault(cls, set()).update(names)
            for name, fields_, defaults, self_attrs, is_dataclass in info.classes:
                if "symbol" in fields_ or "symbol" in self_attrs:
                    self.symbol_classes.add(name)
                equity = next((f for f in fields_ if f.lower().startswith(EQUITY_PREFIX)), None)
                if equity:
                    self.equity_fields[name] = equity
                keys = {f: k for f in fields_ if (k := ladder_key(f)) is not None}
                if is_dataclass and sum(k.startswith("harvest_") for k in keys.values()) >= 2:
                    self.ladders[name] = LadderClass(name, fields_, keys, defaults)
        grown = True
        while grown:  # a subclass of a class that keeps `self.symbol` keeps it too
            inherit = {c for c, b in bases.items() if b & self.symbol_classes}
            grown = bool(inherit - self.symbol_classes)
            self.symbol_classes |= inherit

    def referenced_elsewhere(self, name: str, rel: str) -> bool:
        """Whether any other file uses `name` (by name, import or attribute)."""
        return any(name in names for path, names in self.names_by_file.items() if path != rel)

    def keyword_elsewhere(self, callee: str, keyword: str, rel: str) -> bool:
        """Whether a call `callee(..., keyword=...)` (or one with `**`) exists in another file."""
        return any(
            keyword in shape.keywords or shape.starred
            for path, info in self._files.items()
            if path != rel
            for shape in info.calls.get(callee, [])
        )

    def calls_elsewhere(self, ladder: LadderClass, rel: str) -> list[set[str]]:
        """Fields passed by each call of the ladder class in files other than `rel`."""
        out: list[set[str]] = []
        for path, info in self._files.items():
            if path == rel:
                continue
            for shape in info.calls.get(ladder.name, []):
                if shape.starred:
                    out.append(_AllFields())
                else:
                    out.append(set(shape.keywords) | set(ladder.fields[: shape.positional]))
        return out


@functools.lru_cache(maxsize=4096)
def _index_source(source: str) -> _FileIndex | None:
    """Index of one file's text (cached: `plan` indexes the same tree for every phase)."""
    try:
        return _index_file(ast.parse(source))
    except (SyntaxError, ValueError, RecursionError):
        return None


def _index_file(tree: ast.Module) -> _FileIndex:
    info = _FileIndex()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Store):  # a definition is not a use
                info.names.add(node.id)
        elif isinstance(node, ast.Attribute):
            info.names.add(node.attr)
            if node.attr == "symbol" and isinstance(node.value, ast.Name):
                info.symbol_readers.add(node.value.id)
        elif isinstance(node, ast.alias):
            info.names.add((node.asname or node.name).rsplit(".", 1)[-1])
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if isinstance(name, str):
                info.calls.setdefault(name, []).append(
                    CallShape(
                        frozenset(k.arg for k in node.keywords if k.arg),
                        sum(not isinstance(a, ast.Starred) for a in node.args),
                        any(isinstance(a, ast.Starred) for a in node.args)
                        or any(k.arg is None for k in node.keywords),
                    )
                )
        elif isinstance(node, ast.ClassDef):
            info.classes.append(_class_info(node))
            info.bases[node.name] = {n for b in node.bases if (n := _decorator_name(b)) is not None}
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and _takes_optional_symbol(node)
            and _calls_accessor(node)
        ):
            info.optional_symbol_funcs.add(node.name)
    return info


def _class_info(node: ast.ClassDef) -> tuple[str, list[str], set[str], set[str], bool]:
    fields_: list[str] = []
    defaults: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            fields_.append(stmt.target.id)
            if stmt.value is not None:
                defaults.add(stmt.target.id)
    self_attrs = {
        n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
    }
    is_dataclass = any(_decorator_name(d) == "dataclass" for d in node.decorator_list)
    return node.name, fields_, defaults, self_attrs, is_dataclass


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _takes_optional_symbol(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = node.args
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.arg == "symbol" and isinstance(default, ast.Constant) and default.value is None:
            return True
    return False


# accessor functions that take a symbol: a function with an optional `symbol` that calls one
# was given that parameter by a phase, and callers with a symbol in scope should pass it
SYMBOL_LOOKUPS = frozenset(
    ("kill_due", "reached", "policy_value", "policy_value_or_skip", "notional_usd",
     "notional_usd_or_skip")
)  # fmt: skip


def _calls_accessor(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in SYMBOL_LOOKUPS
        and any(isinstance(a, ast.Name) and a.id == "symbol" for a in n.args)
        for n in ast.walk(node)
    )


class _AllFields(set):
    """Stands for a call with `*args` or `**kwargs`: every field may be passed."""

    def __contains__(self, item: object) -> bool:
        return True


def ladder_calls(module: cst.Module, ladder: LadderClass) -> list[set[str]]:
    """For each call of the ladder class in `module`: the fields it passes (all, for `*`/`**`)."""
    name = ladder.name
    out: list[set[str]] = []
    for call in m.findall(module, m.Call(func=m.Name(name) | m.Attribute(attr=m.Name(name)))):
        assert isinstance(call, cst.Call)
        if any(a.star for a in call.args):
            out.append(_AllFields())
            continue
        names = set()
        for i, arg in enumerate(call.args):
            if arg.keyword is not None:
                names.add(arg.keyword.value)
            elif i < len(ladder.fields):
                names.add(ladder.fields[i])
        out.append(names)
    return out
