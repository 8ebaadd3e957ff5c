"""Decision values bound at import time become look-ups where they are read.

`MAX_NOTIONAL_PER_TRADE_USDT = float(os.getenv("GOV_...", "200"))` in a class body,
`DEFAULT_LEVERAGE: float = Field(default=5.0, ge=1.0, le=20.0)` in a settings class,
`KILL_SCORE_REDUCE = 0.55` at module level: there is no symbol there and nowhere to skip to, so
the value cannot be looked up where it is written. It can where it is *read*: inside functions,
with a symbol (and, for sizes in money, the account equity) in scope. So every read of such a
binding in its own file (`NAME`, `self.NAME`, `cls.NAME`, `Owner.NAME`, or `x.NAME` with `x`
annotated as the owner class) becomes a policy look-up, and the binding is removed once nothing
reads it any more, here or in any other file. Keyword arguments that set a removed settings field
in a constructor call of the same file are dropped with it (the policy decides it now).

A read inside an f-string or as a dict value gets the look-up that gives None (a status line, a
report); any other read raises `PolicySkip` when the policy has no value. A function with no
symbol in scope gets a keyword-only `symbol: str | None = None` (and `equity` for sizes in money);
callers with a symbol in scope pass it (see `PolicyCodemod.pass_symbol`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst
import libcst.matchers as m
from libcst.metadata import (
    ExpressionContext,
    ExpressionContextProvider,
    ParentNodeProvider,
    PositionProvider,
)

from audit.finding import Finding
from migrations.keys import NOTIONAL
from migrations.syntax import (
    CLI_DEFAULT,
    CONSTRUCTORS,
    code,
    declares_cli_option,
    defined_name,
    without,
)

if TYPE_CHECKING:
    from migrations.base import PolicyCodemod

# rules that put a decision value on a module or class level binding
BINDING_RULES = frozenset(("constant", "env-default", "field-default", "field-bound"))
GLOBAL_KEYS = frozenset(("universe_count",))  # policy values that are not per symbol
_SELF_NAMES = ("self", "cls")
_DATACLASS = ("dataclass", "dataclasses.dataclass")
_SETTINGS_BASES = ("Settings", "BaseModel", "Config")


@dataclass
class Binding:
    name: str
    key: str
    owner: str | None  # the class it is an attribute of; None at module level
    findings: list[Finding]
    is_int: bool = False
    reads: int = 0  # reads rewritten in this file
    kept: bool = False  # also read where no look-up can go: every read stays
    why: str = ""  # why it was kept, when not for the reason above
    # a settings field (`Field(...)`, an environment read, a *Settings/BaseModel class): its job
    # was to configure the decision, so it goes once the policy decides, even if nothing read it
    setting: bool = False


@dataclass
class Bindings:
    """The import-time decision values of one file, and what became of them."""

    codemod: PolicyCodemod
    module: dict[str, Binding] = field(default_factory=dict)
    classes: dict[str, dict[str, Binding]] = field(default_factory=dict)
    class_stack: list[str] = field(default_factory=list)
    settings_classes: set[str] = field(default_factory=set)

    # -- finding them -------------------------------------------------------------------------
    def record(self, module: cst.Module) -> None:
        for stmt in module.body:
            binding = self._binding(stmt, None)
            if binding is not None:
                self.module[binding.name] = binding
            if isinstance(stmt, cst.ClassDef) and not _is_dataclass(stmt):
                bases = {code(b.value).rsplit(".", 1)[-1] for b in stmt.bases}
                if any(b.endswith(_SETTINGS_BASES) for b in bases):
                    self.settings_classes.add(stmt.name.value)
                repo = self.codemod.repo
                if repo is not None and stmt.name.value in repo.ladders:
                    continue
                found = {}
                for inner in stmt.body.body:
                    b = self._binding(inner, stmt.name.value)
                    if b is not None:
                        found[b.name] = b
                if found:
                    self.classes[stmt.name.value] = found
        self._keep_read_at_start_up(module)
        if self.codemod.ATOMIC_BINDINGS:
            self._keep_sets_whole(module)

    def _keep_sets_whole(self, module: cst.Module) -> None:
        """A ladder moves to the policy as a whole or not at all: when one value of a class (or
        of the module) must stay (no policy key, or read at start-up), all of them stay, so the
        code never mixes hardcoded rungs with the policy's."""

        def stuck(body: list, found: dict[str, Binding]) -> list[str]:
            out = []
            for stmt in body:
                name = defined_name(stmt)
                if name is None or not isinstance(stmt, cst.SimpleStatementLine):
                    continue
                b = found.get(name)
                if (b is not None and b.kept) or (b is None and self._carries_finding(stmt)):
                    out.append(name)
            return out

        groups: list[tuple[list, dict[str, Binding], str]] = [
            (list(module.body), self.module, "the module")
        ]
        for stmt in module.body:
            if isinstance(stmt, cst.ClassDef) and stmt.name.value in self.classes:
                groups.append(
                    (list(stmt.body.body), self.classes[stmt.name.value], stmt.name.value)
                )
        for body, found, where in groups:
            blockers = stuck(body, found)
            if not blockers or not found:
                continue
            for b in found.values():
                if not b.kept:
                    b.kept = True
                    b.why = (
                        f"kept with the rest of {where}'s values ({', '.join(blockers)} must stay: "
                        "no policy key, or read at start-up); they move to the policy together "
                        "or not at all"
                    )

    def _carries_finding(self, stmt: cst.CSTNode) -> bool:
        pos = self.codemod.get_metadata(PositionProvider, stmt)
        return any(pos.start.line <= line <= pos.end.line for line, _ in self.codemod.targets)

    def _keep_read_at_start_up(self, module: cst.Module) -> None:
        """A binding also read at import time, in a constructor or in a parameter default keeps
        every read as it is: replacing only some would give one object two values."""
        if not self.module and not self.classes:
            return
        class_names = {n for found in self.classes.values() for n in found}
        reads = m.findall(module, m.Name() | m.Attribute(value=m.Name()))
        for node in reads:
            if isinstance(node, cst.Name) and node.value in self.module:
                binding = self.module[node.value]
            elif isinstance(node, cst.Attribute) and node.attr.value in class_names:
                binding = next(
                    (f[node.attr.value] for f in self.classes.values() if node.attr.value in f),
                    None,
                )
            else:
                continue
            if binding is None or not self._is_load(node):
                continue
            func = self._enclosing_function(node)
            if func is None or func.name.value in CONSTRUCTORS or self._in_default(node):
                binding.kept = True
            elif self._in_cli_declaration(node):
                binding.kept = True
                binding.why = f"{binding.name} is read in {CLI_DEFAULT}"

    def _in_cli_declaration(self, node: cst.CSTNode) -> bool:
        """Inside `p.add_argument(...)` (or click/typer): evaluated at program start."""
        for parent, _ in self._ancestors(node):
            if isinstance(parent, cst.Call) and declares_cli_option(parent, self.codemod.cli_names):
                return True
            if isinstance(parent, cst.FunctionDef | cst.ClassDef | cst.Module):
                return False
        return False

    def _ancestors(self, node: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
        """(parent, child) pairs from `node` up to the module (original nodes only)."""
        child = node
        while True:
            try:
                parent = self.codemod.get_metadata(ParentNodeProvider, child)
            except KeyError:
                return
            yield parent, child
            child = parent

    def _enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        for parent, _ in self._ancestors(node):
            if isinstance(parent, cst.FunctionDef):
                return parent
            if isinstance(parent, cst.ClassDef | cst.Module):
                return None
        return None

    def _binding(self, stmt: cst.CSTNode, owner: str | None) -> Binding | None:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return None
        name = defined_name(stmt)
        if name is None:
            return None
        pos = self.codemod.get_metadata(PositionProvider, stmt)
        found = [
            f
            for (line, _), f in self.codemod.targets.items()
            if pos.start.line <= line <= pos.end.line
        ]
        if not found or any(f.rule_id not in BINDING_RULES for f in found):
            return None
        key = self.codemod.binding_key(name)
        if key is None:
            key = next((k for f in found if (k := self.codemod.binding_key(f.name))), None)
        if key is None:
            return None
        small = stmt.body[0]
        annotation = getattr(small, "annotation", None)
        value = getattr(small, "value", None)
        is_int = (annotation is not None and m.matches(annotation.annotation, m.Name("int"))) or (
            isinstance(value, cst.Call) and m.matches(value.func, m.Name("int"))
        )
        return Binding(name, key, owner, found, is_int, setting=self._is_setting(value, owner))

    def _is_setting(self, value: cst.BaseExpression | None, owner: str | None) -> bool:
        if owner is not None and owner in self.settings_classes:
            return True
        text = code(value) if value is not None else ""
        return text.startswith("Field(") or "getenv(" in text or "environ" in text

    # -- reads ----------------------------------------------------------------------------------
    def read_name(self, original: cst.Name) -> cst.BaseExpression | None:
        binding = self.module.get(original.value)
        if binding is None or not self._is_load(original) or self.codemod.at_start_up:
            return None
        scope = self.codemod._resolve(self.codemod.scope)
        if binding.kept or original.value in scope.params or self._in_default(original):
            return None
        return self._lookup(binding, original)

    def read_attribute(self, original: cst.Attribute) -> cst.BaseExpression | None:
        if not isinstance(original.value, cst.Name) or not self._is_load(original):
            return None
        if self.codemod.at_start_up or self._in_default(original):
            return None
        base = original.value.value
        owner: str | None = None
        if base in _SELF_NAMES and self.class_stack:
            owner = self.class_stack[-1]
        elif base in self.classes:
            owner = base
        else:
            owner = self.codemod.annotated_class(base)
        binding = self.classes.get(owner or "", {}).get(original.attr.value)
        if binding is None or binding.kept:
            return None
        return self._lookup(binding, original)

    def _in_default(self, node: cst.CSTNode) -> bool:
        """Inside a parameter default or a decorator: evaluated when the function is defined
        (at import time), not when it is called."""
        for parent, _ in self._ancestors(node):
            if isinstance(parent, cst.Param | cst.Decorator):
                return True
            if isinstance(parent, cst.FunctionDef | cst.Module | cst.ClassDef):
                return False
        return False

    def _is_load(self, node: cst.CSTNode) -> bool:
        try:
            ctx = self.codemod.get_metadata(ExpressionContextProvider, node)
        except KeyError:
            return False
        return ctx is ExpressionContext.LOAD

    def _lookup(self, binding: Binding, node: cst.CSTNode) -> cst.BaseExpression:
        c = self.codemod
        raising, quote = self._context(node)
        key = binding.key
        quoted = f"{quote}{'size_pct' if key == NOTIONAL else key}{quote}"
        binding.reads += 1
        if key in GLOBAL_KEYS:
            call = c.accessor_call("policy_value_or_skip" if raising else "policy_value", quoted)
        else:
            sym = c.symbol_here() or c.inject_param("symbol", "str")
            if key == NOTIONAL:
                equity = c.equity_here() or c.inject_param("equity", "float")
                func = "notional_usd_or_skip" if raising else "notional_usd"
                call = c.accessor_call(func, sym, equity)
            else:
                func = "policy_value_or_skip" if raising else "policy_value"
                call = c.accessor_call(func, quoted, sym)
        if binding.is_int and raising and key in GLOBAL_KEYS:  # a count stays an int
            return cst.Call(func=cst.Name("int"), args=[cst.Arg(call)])
        return call

    def _context(self, node: cst.CSTNode) -> tuple[bool, str]:
        """(whether a missing value must raise, the quote for string literals here)."""
        for parent, child in self._ancestors(node):
            if isinstance(parent, cst.FormattedStringExpression):
                formatted = parent.format_spec is not None  # `{x:.2f}` of None raises
                outer = next(
                    p for p, _ in self._ancestors(parent) if isinstance(p, cst.FormattedString)
                )
                return formatted, "'" if '"' in outer.start else '"'
            if isinstance(parent, cst.DictElement) and parent.value is child:
                return False, '"'
            if isinstance(parent, cst.BaseStatement | cst.BaseSmallStatement):
                return True, '"'
        return True, '"'

    # -- removal --------------------------------------------------------------------------------
    def sweep(self, module: cst.Module) -> cst.Module:
        """Remove the bindings nothing reads any more (here or elsewhere); drop constructor
        keywords that set removed class fields in this file."""
        repo = self.codemod.repo
        rel = self.codemod.rel_path
        if not self.module and not self.classes:
            return module
        loads = _loads(module)
        gone_module: set[str] = set()
        for name, b in self.module.items():
            if name in loads or (repo is not None and repo.referenced_elsewhere(name, rel)):
                self._left(b)
                continue
            gone_module.add(name)
        gone_class: dict[str, set[str]] = {}
        for owner, found in self.classes.items():
            for name, b in found.items():
                elsewhere = repo is not None and (
                    repo.referenced_elsewhere(name, rel) or repo.keyword_elsewhere(owner, name, rel)
                )
                if name in loads or elsewhere:
                    self._left(b)
                    continue
                if not (b.reads or b.setting or name in self._keywords(module, owner)):
                    b.why = (
                        f"{owner}.{name} is never read here: nothing to look up (remove it by hand "
                        "if it is dead, or declare it a safety limit)"
                    )
                    self._left(b)
                    continue
                gone_class.setdefault(owner, set()).add(name)
        self._same_key_note()
        if not gone_module and not gone_class:
            return module
        body, doomed = [], set()
        for stmt in module.body:
            if defined_name(stmt) in gone_module and isinstance(stmt, cst.SimpleStatementLine):
                self._resolve(self.module[defined_name(stmt) or ""])
                doomed.add(id(stmt))
            elif isinstance(stmt, cst.ClassDef) and stmt.name.value in gone_class:
                stmt = self._strip_class(stmt, gone_class[stmt.name.value])
            body.append(stmt)
        module = module.with_changes(body=without(body, doomed))
        if gone_class:
            dropper = _DropKeywords(gone_class)
            module = module.visit(dropper)
            if dropper.dropped:  # the values those keywords passed went with them
                self.codemod.note(
                    f"constructor calls no longer pass {', '.join(sorted(dropper.dropped))}: "
                    "the policy decides them now"
                )
                self.codemod.mark_resolved(
                    *[
                        f
                        for f in self.codemod.targets.values()
                        if f.rule_id == "call-arg" and f.name in dropper.dropped
                    ]
                )
        return module

    @staticmethod
    def _keywords(module: cst.Module, owner: str) -> set[str]:
        """Keywords that constructor calls of `owner` in this module pass."""
        out: set[str] = set()
        for call in m.findall(module, m.Call(func=m.Name(owner) | m.Attribute(attr=m.Name(owner)))):
            if isinstance(call, cst.Call):
                out |= {a.keyword.value for a in call.args if a.keyword is not None}
        return out

    def _same_key_note(self) -> None:
        """Two levels that now read the same policy value (a panic level and the close threshold)
        make branches that told them apart test the same thing: say so."""
        by_key: dict[str, list[str]] = {}
        for b in [*self.module.values(), *(b for f in self.classes.values() for b in f.values())]:
            if b.reads:
                key = "size_pct (x equity)" if b.key == NOTIONAL else b.key
                by_key.setdefault(key, []).append(f"{b.owner}.{b.name}" if b.owner else b.name)
        for key, names in by_key.items():
            if len(names) > 1:
                self.codemod.note(
                    f"{' and '.join(sorted(names))} all read the policy's {key} now: branches "
                    "that told them apart test the same value (the first one decides)"
                )

    def _strip_class(self, klass: cst.ClassDef, names: set[str]) -> cst.ClassDef:
        doomed = set()
        for stmt in klass.body.body:
            name = defined_name(stmt)
            if name in names and isinstance(stmt, cst.SimpleStatementLine):
                self._resolve(self.classes[klass.name.value][name])
                doomed.add(id(stmt))
        kept = without(klass.body.body, doomed)
        if not kept:
            kept = [cst.SimpleStatementLine([cst.Pass()])]
        return klass.with_changes(body=klass.body.with_changes(body=kept))

    def _resolve(self, b: Binding) -> None:
        c = self.codemod
        where = f"{b.owner}.{b.name}" if b.owner else b.name
        c.removed.append(where)
        ids = {id(f) for f in b.findings}
        c.cannot = [u for u in c.cannot if id(u.finding) not in ids]
        c.mark_resolved(*b.findings)
        if b.reads:
            c.note(
                f"{where} was read at import time; its {b.reads} read(s) now look the policy's "
                f"{'size_pct (x equity)' if b.key == NOTIONAL else b.key} up per call"
            )

    def _left(self, b: Binding) -> None:
        where = f"{b.owner}.{b.name}" if b.owner else b.name
        reason = b.why or (
            f"{where} is still read where no look-up can replace it (at import time, in a "
            "constructor, or in another file through an object whose class is not known here)"
        )
        for f in b.findings:
            self.codemod.refuse(f, reason)


class _DropKeywords(cst.CSTTransformer):
    """`Settings(MAX_LEVERAGE=3, X=1)` -> `Settings(X=1)` for removed fields."""

    def __init__(self, gone: dict[str, set[str]]) -> None:
        super().__init__()
        self.gone = gone
        self.dropped: set[str] = set()

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = updated_node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
        names = self.gone.get(name) if isinstance(name, str) else None
        if not names:
            return updated_node
        args = [a for a in updated_node.args if not (a.keyword and a.keyword.value in names)]
        if len(args) == len(updated_node.args):
            return updated_node
        self.dropped |= {a.keyword.value for a in updated_node.args if a.keyword} & names
        if args:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(args=args)


def _loads(module: cst.Module) -> set[str]:
    """Names read anywhere in the module: plain names and attribute names, not the names that
    assignments, parameters, keyword arguments and definitions introduce."""
    collector = _Reads()
    module.visit(collector)
    return collector.reads


class _Reads(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.reads: set[str] = set()
        self.skip: set[int] = set()

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        if isinstance(node.target, cst.Name):
            self.skip.add(id(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if isinstance(node.target, cst.Name):
            self.skip.add(id(node.target))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.skip.add(id(node.keyword))

    def visit_Param(self, node: cst.Param) -> None:
        self.skip.add(id(node.name))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.skip.add(id(node.name))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.skip.add(id(node.name))

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) not in self.skip:
            self.reads.add(node.value)


def _is_dataclass(klass: cst.ClassDef) -> bool:
    for dec in klass.decorators:
        node = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
        text = cst.Module(body=[]).code_for_node(node)
        if text in _DATACLASS:
            return True
    return False
