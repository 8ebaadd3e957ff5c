"""What every phase shares: finding selection, scopes, the symbol in scope, and skip statements.

A phase is a libcst `VisitorBasedCodemodCommand`. It is given the audit findings of its file
(computed from the source when not given, as in unit tests) and keeps only those of its
categories; a literal is rewritten only where a finding points at it. Every finding it selects
ends up either resolved or listed in `cannot` with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import ExpressionContextProvider, ParentNodeProvider, PositionProvider

from audit.config import AuditConfig
from audit.finding import Category, Finding
from audit.scan import scan_source
from migrations.bindings import Bindings
from migrations.repo import RepoIndex
from migrations.syntax import (
    CLI_DEFAULT,
    CONSTRUCTORS,
    cli_names,
    code,
    declares_cli_option,
    defined_name,
    q,
    used_names,
    without,
)

SNIPPET = "snippet.py"
_SYMBOL_PARAMS = ("symbol", "sym", "pair", "ticker")
IMPORT_TIME = "read at import time (module or class level), where a skip has nowhere to go"
START_UP = (
    "read once when the object is built (a constructor, at start-up): no symbol there and a skip "
    "would leave a half-built object; look the value up where it is used"
)
_EQUITY_PARAMS = ("equity", "equity_usdt", "equity_usd", "equity_usdc")


@dataclass
class Scope:
    """One function (or the module) being transformed."""

    node: cst.FunctionDef | None
    params: list[str] = field(default_factory=list)
    symbol: str | None = None
    equity: str | None = None
    flow: str = "raise"  # return-none | return | raise (module: none)
    loops: int = 0
    loop_symbols: list[str] = field(default_factory=list)  # `for symbol in ...` targets
    resolved: bool = False


@dataclass(frozen=True)
class Unhandled:
    finding: Finding
    reason: str


class PolicyCodemod(VisitorBasedCodemodCommand):
    """Base of the four phases."""

    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider, ExpressionContextProvider)
    PHASE = ""
    DESCRIPTION = ""
    CATEGORIES: frozenset[Category] = frozenset()
    CANNOT: tuple[str, ...] = ()  # forms the phase leaves alone, and why (shown by `plan`)
    ATOMIC_BINDINGS = False  # a group's import-time values move together or not at all

    def __init__(
        self,
        context: CodemodContext,
        findings: Sequence[Finding] | None = None,
        repo: RepoIndex | None = None,
        accessor_module: str = "qctl_policy",
        rel_path: str = SNIPPET,
    ) -> None:
        super().__init__(context)
        self._given = findings
        self.repo = repo
        self.rel_path = rel_path
        head, _, name = accessor_module.rpartition(".")
        self.accessor_from = head or None
        self.accessor = name
        self.targets: dict[tuple[int, int], Finding] = {}
        self.resolved: list[Finding] = []
        self.cannot: list[Unhandled] = []
        self.scopes: list[Scope] = []
        self._module_symbols: dict[str, str] = {}
        self.removed: list[str] = []
        self.notes: list[str] = []  # what a reviewer should look at (callers, units)
        self.indents: list[str] = []
        self.default_indent = "    "
        self.lazy_annotations = True
        self.bindings = Bindings(self)
        self.cli_names: frozenset[str] = frozenset()
        self.injected: set[str] = set()  # functions given a `symbol` parameter in this file
        self._inject: dict[int, dict[str, str]] = {}  # FunctionDef id -> {param: annotation}

    # -- selection --------------------------------------------------------------------------
    @classmethod
    def selects(cls, finding: Finding) -> bool:
        """Whether this phase is the one that owns the finding (declared safety limits: never)."""
        return finding.category in cls.CATEGORIES and not finding.is_parse_error

    @classmethod
    def needs_visit(cls, rel: str, findings: Sequence[Finding], repo: RepoIndex) -> bool:
        """Whether a file can change at all: it has a finding of this phase (phases that also
        rewrite code without literals, e.g. bare constructor calls, widen this). Also files that
        call a function which now takes `symbol=` (see `pass_symbol`)."""
        names = repo.names_by_file.get(rel, set())
        return any(cls.selects(f) for f in findings) or bool(names & repo.optional_symbol_funcs)

    def transform_module(self, tree: cst.Module) -> cst.Module:
        findings = self._given
        if findings is None:
            findings = scan_source(tree.code, self.rel_path, AuditConfig()).findings
        self.targets = {(f.line, f.column): f for f in findings if self.selects(f)}
        if self.repo is None:
            self.repo = RepoIndex.from_sources({self.rel_path: tree.code})
        self._module_symbols = self._instances(tree.body, self.repo.symbol_classes)
        self.default_indent = tree.default_indent
        self.scopes = [Scope(node=None, flow="none")]
        if not self.needs_visit(self.rel_path, findings, self.repo):
            return tree
        out = super().transform_module(tree)
        done = {id(f) for f in self.resolved} | {id(u.finding) for u in self.cannot}
        for f in self.targets.values():
            if id(f) not in done:
                self.cannot.append(Unhandled(f, self.unhandled_reason(f)))
        return out

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        return tree.visit(self)

    def unhandled_reason(self, finding: Finding) -> str:
        """Why a selected finding was left alone (phases say more for the forms they know)."""
        return f"{finding.rule_id} form is not one this phase rewrites"

    def binding_key(self, name: str) -> str | None:
        """The policy key a module or class level binding of this phase stands for (see
        `migrations.bindings`); None: the phase leaves such bindings alone."""
        return None

    def target(self, node: cst.CSTNode) -> Finding | None:
        """The selected finding that points at this (original) node, if any."""
        try:
            pos = self.get_metadata(PositionProvider, node)
        except KeyError:
            return None
        return self.targets.get((pos.start.line, pos.start.column))

    def mark_resolved(self, *findings: Finding | None) -> None:
        known = {id(f) for f in self.resolved}
        for f in findings:
            if f is not None and id(f) not in known:
                self.resolved.append(f)
                known.add(id(f))
        if self.cannot:  # refused first, resolved later (e.g. a constant removed once unused)
            self.cannot = [u for u in self.cannot if id(u.finding) not in known]

    def note(self, text: str) -> None:
        where = f"{self.rel_path}: " if self.rel_path != SNIPPET else ""
        if f"{where}{text}" not in self.notes:
            self.notes.append(f"{where}{text}")

    def refuse(self, finding: Finding | None, reason: str) -> None:
        if finding is not None:
            self.cannot.append(Unhandled(finding, reason))

    # -- module, classes, bindings read at import time ---------------------------------------
    def visit_Module(self, node: cst.Module) -> None:
        self.cli_names = cli_names(node)  # `from click import option`: bare declarations
        self.bindings.record(node)
        # without `from __future__ import annotations`, `X | None` runs at definition time and
        # fails before Python 3.10: new annotations are then written as strings
        self.lazy_annotations = any(
            m.matches(
                s,
                m.SimpleStatementLine(
                    body=[
                        m.ImportFrom(
                            module=m.Name("__future__"),
                            names=[m.ZeroOrMore(), m.ImportAlias(name=m.Name("annotations")),
                                   m.ZeroOrMore()],
                        )
                    ]
                ),
            )
            for s in node.body
        )  # fmt: skip

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return self.bindings.sweep(updated_node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.bindings.class_stack.append(node.name.value)

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef | cst.RemovalSentinel | cst.FlattenSentinel:
        self.bindings.class_stack.pop()
        return updated_node

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self.bindings.read_name(original_node) or updated_node

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        return self.bindings.read_attribute(original_node) or updated_node

    # -- scopes -----------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scopes.append(self._scope_for(node))

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel | cst.FlattenSentinel:
        self.scopes.pop()
        extra = self._inject.pop(id(original_node), None)
        if extra:
            updated_node = with_optional_params(updated_node, extra, self.lazy_annotations)
            if "symbol" in extra:
                self.injected.add(original_node.name.value)
                self.note(
                    f"{original_node.name.value}() takes symbol= now: a caller that does not "
                    "pass it gets no policy value (logged skip)"
                )
        return updated_node

    def inject_param(self, name: str, annotation: str) -> str:
        """Give the current function a keyword-only `name: <annotation> | None = None` (the
        symbol or equity a look-up needs); returns the name to use."""
        scope = self._resolve(self.scope)
        if scope.node is None:
            return "None"
        self._inject.setdefault(id(scope.node), {})[name] = annotation
        if name == "symbol":
            scope.symbol = name
        elif name == "equity":
            scope.equity = name
        return name

    def annotated_class(self, var: str) -> str | None:
        """The class a parameter of the current function is annotated with, if any."""
        scope = self._resolve(self.scope)
        node = scope.node
        if node is None:
            return None
        params = node.params
        for p in [*params.posonly_params, *params.params, *params.kwonly_params]:
            if p.name.value == var:
                return _annotation_name(p.annotation)
        return None

    def pass_symbol(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        """Pass the symbol in scope to functions that now take `symbol=`."""
        func = original.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
        repo_funcs = self.repo.optional_symbol_funcs if self.repo else set()
        if name not in repo_funcs | self.injected:
            return updated
        if any(a.keyword is not None and a.keyword.value == "symbol" for a in original.args):
            return updated
        if any(a.star for a in original.args):
            return updated
        scope = self._resolve(self.scope)
        sym = self.symbol_here()
        if (
            sym is None
            or sym == "None"
            or (scope.node is not None and scope.node.name.value == name)
        ):
            return updated
        args = list(updated.args)
        if args:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        args.append(
            cst.Arg(
                keyword=cst.Name("symbol"),
                value=cst.parse_expression(sym),
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                ),
            )
        )
        return updated.with_changes(args=args)

    def visit_Call(self, node: cst.Call) -> None:
        """Findings inside a command-line option's declaration are never rewritten (see
        CLI_DEFAULT); they are listed with the reason before any leave_* can touch them."""
        if not declares_cli_option(node, self.cli_names) or not self.targets:
            return
        pos = self.get_metadata(PositionProvider, node)
        start, end = (pos.start.line, pos.start.column), (pos.end.line, pos.end.column)
        for where in [k for k in self.targets if start <= k <= end]:
            self.refuse(self.targets.pop(where), CLI_DEFAULT)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return self.pass_symbol(original_node, updated_node)

    def visit_For(self, node: cst.For) -> None:
        self.scopes[-1].loops += 1
        target = node.target
        names = [e.value for e in target.elements] if isinstance(target, cst.Tuple) else [target]
        found = next(
            (n.value for n in names if isinstance(n, cst.Name) and n.value in _SYMBOL_PARAMS), ""
        )
        self.scopes[-1].loop_symbols.append(found)

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        self.scopes[-1].loops -= 1
        self.scopes[-1].loop_symbols.pop()
        return updated_node

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.indents.append(node.indent if node.indent is not None else self.default_indent)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        self.indents.pop()
        return updated_node

    def visit_While(self, node: cst.While) -> None:
        self.scopes[-1].loops += 1

    def leave_While(self, original_node: cst.While, updated_node: cst.While) -> cst.While:
        self.scopes[-1].loops -= 1
        return updated_node

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    @property
    def at_start_up(self) -> bool:
        """At module or class level, or in a constructor: no look-up and no skip belongs here."""
        node = self.scope.node
        return node is None or node.name.value in CONSTRUCTORS

    def _scope_for(self, node: cst.FunctionDef) -> Scope:
        """A function's scope; what is in scope is worked out on first use (most functions of a
        file never need it, and it walks the body)."""
        return Scope(node=node)

    def _resolve(self, scope: Scope) -> Scope:
        node = scope.node
        if node is None or scope.resolved:
            return scope
        scope.resolved = True
        params = node.params
        all_params = [
            *params.posonly_params,
            *params.params,
            *params.kwonly_params,
            *([params.star_arg] if isinstance(params.star_arg, cst.Param) else []),
        ]
        names = [p.name.value for p in all_params]
        scope.params = names
        repo = self.repo or RepoIndex()
        used_attrs = {
            (a.value.value, a.attr.value)
            for a in m.findall(node.body, m.Attribute(value=m.Name()))
            if isinstance(a, cst.Attribute) and isinstance(a.value, cst.Name)
        }
        for name in _SYMBOL_PARAMS:
            if name in names:
                scope.symbol = name
                break
        for p in all_params:
            cls = _annotation_name(p.annotation)
            if scope.symbol is None and (
                cls in repo.symbol_classes or (p.name.value, "symbol") in used_attrs
            ):
                scope.symbol = f"{p.name.value}.symbol"
            if scope.equity is None and cls in repo.equity_fields:
                scope.equity = f"{p.name.value}.{repo.equity_fields[cls]}"
        for name in _EQUITY_PARAMS:
            if scope.equity is None and name in names:
                scope.equity = name
        if scope.symbol is None:
            local = self._instances(node.body.body, repo.symbol_classes)
            scope.symbol = next(iter(local.values()), None)
        if scope.symbol is None:
            scope.symbol = self._symbol_by_name(all_params, repo)
        scope.flow = _flow(node)
        return scope

    def _symbol_by_name(self, params: list[cst.Param], repo: RepoIndex) -> str | None:
        """`self` in a class that keeps `self.symbol`; an unannotated `signal` where the repository
        has a class `Signal` (or `TradeSignal`...) with a symbol."""
        stack = self.bindings.class_stack
        names = [p.name.value for p in params]
        if names[:1] == ["self"] and stack and stack[-1] in repo.symbol_classes:
            return "self.symbol"
        lowered = {c.lower() for c in repo.symbol_classes}
        for p in params:
            var = p.name.value
            name = var.replace("_", "").lower()
            if name in ("self", "cls") or len(name) < 3:
                continue
            if var in repo.symbol_readers:  # the code reads `signal.symbol` somewhere
                return f"{var}.symbol"
            if p.annotation is None and (name in lowered or any(c.endswith(name) for c in lowered)):
                return f"{var}.symbol"
        return None

    def equity_here(self) -> str | None:
        """The expression naming the account equity in the current function, if any."""
        return self._resolve(self.scope).equity

    def symbol_here(self) -> str | None:
        """The expression naming the symbol in the current scope (None: no symbol to look up)."""
        scope = self._resolve(self.scope)
        loop_symbol = next((s for s in reversed(scope.loop_symbols) if s), None)
        if loop_symbol:
            return loop_symbol
        if scope.symbol:
            return scope.symbol
        if scope.node is None:
            return next(iter(self._module_symbols.values()), None)
        return None

    @staticmethod
    def _instances(body: Sequence[cst.CSTNode], classes: set[str]) -> dict[str, str]:
        """Variables assigned an instance of a symbol-carrying class: {var: "var.symbol"}."""
        out: dict[str, str] = {}
        for stmt in body:
            for assign in m.findall(stmt, m.Assign(value=m.Call(func=m.Name()))):
                if not isinstance(assign, cst.Assign):
                    continue
                call = assign.value
                target = assign.targets[0].target if len(assign.targets) == 1 else None
                if (
                    isinstance(call, cst.Call)
                    and isinstance(call.func, cst.Name)
                    and call.func.value in classes
                    and isinstance(target, cst.Name)
                ):
                    out.setdefault(target.value, f"{target.value}.symbol")
        return out

    def drop_default(
        self, original: cst.Call, updated: cst.Call, finding: Finding
    ) -> cst.BaseExpression:
        """`d.get("k", lit)` -> `given_or_skip(d.get("k"), "k")`: a missing value skips."""
        if self.at_start_up:
            self.refuse(finding, IMPORT_TIME if self.scope.node is None else START_UP)
            return updated
        first = original.args[0].value if original.args else None
        is_getattr = isinstance(original.func, cst.Name) and original.func.value == "getattr"
        key_node = original.args[1].value if is_getattr and len(original.args) > 1 else first
        what = (
            key_node.evaluated_value
            if isinstance(key_node, cst.SimpleString) and isinstance(key_node.evaluated_value, str)
            else finding.name
        )
        if is_getattr:
            args = [*updated.args[:-1], cst.Arg(cst.Name("None"))]
        else:
            args = list(updated.args[:-1])
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        call = updated.with_changes(args=args)
        sym = self.symbol_here()
        extra = [sym] if sym else []
        self.mark_resolved(finding)
        return self.accessor_call("given_or_skip", code(call), q(what), *extra)

    # -- building code ----------------------------------------------------------------------
    def call_text(self, func: str, args: list[str], width: int = 88) -> cst.BaseExpression:
        """`func(a, b)`, or one argument per line (at the current indentation) when long."""
        indent = "".join(self.indents)
        flat = f"{func}({', '.join(args)})"
        if len(indent) + len(flat) <= width:
            return cst.parse_expression(flat)
        lines = "".join(f"{self.default_indent}{a},\n" for a in args)
        expr = cst.parse_expression(f"{func}(\n{lines})")
        return expr.visit(_IndentContinuations())  # type: ignore[return-value]

    def accessor_call(self, func: str, *args: str) -> cst.Call:
        """`qctl_policy.<func>(args)`, scheduling the accessor import."""
        self.need_import()
        return cst.parse_expression(f"{self.accessor}.{func}({', '.join(args)})")  # type: ignore[return-value]

    def need_import(self) -> None:
        if self.accessor_from:
            AddImportsVisitor.add_needed_import(self.context, self.accessor_from, self.accessor)
        else:
            AddImportsVisitor.add_needed_import(self.context, self.accessor)

    def skip_statements(self, what: str, symbol: str | None) -> list[cst.BaseStatement] | None:
        """Log the skip and leave: `continue` in a loop, `return None` where the function may
        return None, else `raise PolicySkip`. None at module level (nothing to leave)."""
        scope = self._resolve(self.scope)
        args = ", ".join([q(what), *([symbol] if symbol else [])])
        if self.at_start_up:
            return None
        self.need_import()
        if scope.loops > 0:
            tail = "continue"
        elif scope.flow == "return-none":
            tail = "return None"
        elif scope.flow == "return":
            tail = "return"
        else:
            self.note(
                f"{scope.node.name.value}() now raises {self.accessor}.PolicySkip when the policy "
                "has no value: its callers must treat that as a skip"
            )
            return [cst.parse_statement(f"raise {self.accessor}.PolicySkip({args})")]
        return [
            cst.parse_statement(f"{self.accessor}.skip({args})"),
            cst.parse_statement(tail),
        ]

    def guard(self, target_code: str, what: str, symbol: str | None) -> cst.If | None:
        """`if <target> is None: <skip>` for the statement just rewritten (same block)."""
        body = self.skip_statements(what, symbol)
        if body is None:
            return None
        return cst.If(
            test=cst.parse_expression(f"{target_code} is None"),
            body=cst.IndentedBlock(body=body),
        )


class _IndentContinuations(cst.CSTTransformer):
    """Continuation lines of a generated call follow the indentation of the block it lands in."""

    def leave_ParenthesizedWhitespace(
        self, original_node: cst.ParenthesizedWhitespace, updated_node: cst.ParenthesizedWhitespace
    ) -> cst.ParenthesizedWhitespace:
        return updated_node.with_changes(indent=True)


def _annotation_name(annotation: cst.Annotation | None) -> str | None:
    if annotation is None:
        return None
    node = annotation.annotation
    if isinstance(node, cst.SimpleString):
        text = node.evaluated_value
        return text.split("|")[0].strip().rsplit(".", 1)[-1] if isinstance(text, str) else None
    if isinstance(node, cst.BinaryOperation):
        node = node.left
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _flow(node: cst.FunctionDef) -> str:
    """How a skip leaves this function: generators and `-> None` return, functions that may
    return None return None, the rest raise."""
    own_body = [s for s in node.body.body if not isinstance(s, cst.FunctionDef | cst.ClassDef)]
    if any(m.findall(s, m.Yield()) for s in own_body):
        return "return"
    if node.returns is None:
        return "return-none"
    text = cst.Module(body=[]).code_for_node(node.returns.annotation)
    if text == "None":
        return "return"
    if "None" in text or "Optional" in text or text in ("Any", "typing.Any", "object"):
        return "return-none"
    return "raise"


def is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def is_none_test(test: cst.BaseExpression) -> bool:
    """`x is None`, `x == None`, `not x`: the test that guards a fallback branch."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return True
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        comp = test.comparisons[0]
        return isinstance(comp.operator, cst.Is | cst.Equal) and m.matches(
            comp.comparator, m.Name("None")
        )
    return False


def is_not_none_test(test: cst.BaseExpression) -> bool:
    """`x is not None`, `x != None`, `x`: its `else:` is the fallback branch."""
    if isinstance(test, cst.Name | cst.Attribute):
        return True
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        comp = test.comparisons[0]
        return isinstance(comp.operator, cst.IsNot | cst.NotEqual) and m.matches(
            comp.comparator, m.Name("None")
        )
    return False


class DeadCode:
    """Top-level constants and helpers that carried phase findings and that nothing uses any
    more (in this file or any other) are removed, with the findings they carried."""

    def __init__(
        self, codemod: PolicyCodemod, functions: bool = False, literals_only: bool = False
    ) -> None:
        self.codemod = codemod
        self.functions = functions  # also remove helper functions (else constants only)
        # only constants whose value is written out (`X = 0.02`, `X = int(os.getenv(...))`),
        # never an object a module builds (`demo = Settings(...)`)
        self.literals_only = literals_only
        self.carried: dict[str, list[Finding]] = {}

    def record(self, module: cst.Module) -> None:
        """Which top-level definition carries which selected finding (original positions)."""
        for stmt in module.body:
            name = defined_name(stmt)
            if name is None or (self.literals_only and not _written_out(stmt)):
                continue
            pos = self.codemod.get_metadata(PositionProvider, stmt)
            found = [
                f
                for (line, _), f in self.codemod.targets.items()
                if pos.start.line <= line <= pos.end.line
            ]
            if found:
                self.carried[name] = found

    def sweep(self, module: cst.Module, doomed_ok: set[str] | None = None) -> cst.Module:
        """Remove, to a fixpoint, unused definitions that carry findings or reach ones that do."""
        repo = self.codemod.repo or RepoIndex()
        rel = self.codemod.rel_path
        while True:
            body = list(module.body)
            defs = {
                defined_name(s): s
                for s in body
                if defined_name(s) and (self.functions or not isinstance(s, cst.FunctionDef))
            }
            done = {id(f) for f in self.codemod.resolved}
            removable = {n for n, fs in self.carried.items() if any(id(f) not in done for f in fs)}
            removable |= set(doomed_ok or ())
            reaches = {n for n, s in defs.items() if used_names(s) & removable}
            candidates = (removable | reaches) & set(defs)
            gone = None
            for name in sorted(candidates):
                others = set().union(*(used_names(s) for s in body if s is not defs[name]))
                if name not in others and not repo.referenced_elsewhere(name, rel):
                    gone = name
                    break
            if gone is None:
                return module
            module = module.with_changes(body=without(body, {id(defs[gone])}))
            self.codemod.mark_resolved(*self.carried.pop(gone, []))
            self.codemod.removed.append(gone)


def optional_annotation(text: str, lazy: bool) -> cst.BaseExpression:
    """`text | None`, as a string when annotations are evaluated (no __future__ import)."""
    return cst.parse_expression(f"{text} | None" if lazy else q(f"{text} | None"))


def optional_param(param: cst.Param, lazy: bool) -> cst.Param:
    """`x: float = 0.02` -> `x: float | None = None` (a string without lazy annotations)."""
    annotation = param.annotation
    if annotation is not None and "None" not in code(annotation.annotation):
        annotation = annotation.with_changes(
            annotation=optional_annotation(code(annotation.annotation), lazy)
        )
    return param.with_changes(default=cst.Name("None"), annotation=annotation)


def with_param_guards(
    func: cst.FunctionDef, new_params: dict[str, cst.Param], guards: list[cst.BaseStatement]
) -> cst.FunctionDef:
    """`func` with its parameters replaced by name from `new_params` and `guards` (the look-ups
    of the parameters made optional) at the top of its body, after the docstring."""
    params = func.params.with_changes(
        params=[new_params.get(p.name.value, p) for p in func.params.params],
        kwonly_params=[new_params.get(p.name.value, p) for p in func.params.kwonly_params],
    )
    body = list(func.body.body)  # type: ignore[union-attr]
    at = 1 if body and is_docstring(body[0]) else 0
    body[at:at] = guards
    return func.with_changes(params=params, body=func.body.with_changes(body=body))


def with_optional_params(
    func: cst.FunctionDef, names: dict[str, str], lazy: bool = True
) -> cst.FunctionDef:
    """Add `*, name: <annotation> | None = None` for each name the function does not take."""
    params = func.params
    have = {p.name.value for p in [*params.posonly_params, *params.params, *params.kwonly_params]}
    new = [
        cst.Param(
            name=cst.Name(name),
            annotation=cst.Annotation(optional_annotation(annotation, lazy)),
            default=cst.Name("None"),
            equal=cst.AssignEqual(),
        )
        for name, annotation in names.items()
        if name not in have
    ]
    if not new:
        return func
    star = params.star_arg
    if isinstance(star, cst.MaybeSentinel):
        star = cst.ParamStar()
    kwonly = list(params.kwonly_params)
    if kwonly and kwonly[-1].comma is not cst.MaybeSentinel.DEFAULT:
        kwonly[-1] = kwonly[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return func.with_changes(
        params=params.with_changes(star_arg=star, kwonly_params=[*kwonly, *new])
    )


_ENV_READS = ("getenv", "get", "int", "float", "str", "bool")


def _written_out(stmt: cst.CSTNode) -> bool:
    """A constant whose value is literals (possibly read through an environment default)."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    value = getattr(stmt.body[0], "value", None)

    def literal(node: cst.CSTNode | None) -> bool:
        if isinstance(node, cst.UnaryOperation):
            node = node.expression
        if isinstance(node, cst.Integer | cst.Float | cst.SimpleString | cst.Name):
            return True
        if isinstance(node, cst.List | cst.Tuple | cst.Set):
            return all(literal(e.value) for e in node.elements)
        if isinstance(node, cst.Call):
            func = node.func
            name = (
                func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
            )
            return name in _ENV_READS and all(literal(a.value) for a in node.args)
        if isinstance(node, cst.Attribute):
            return literal(node.value)
        return False

    return literal(value)
