"""One libcst traversal of one file: every literal, the syntactic role it plays, and its verdict.

The visitor keeps the stack of enclosing nodes. For each literal it walks that stack upwards to find
the role the literal plays (assigned constant, keyword argument, `.get` default, comparison
operand, weight, clamp bound, ...) and the names around it; `audit.rules` then turns role + names
into a finding or into nothing (a unit conversion, a port, an index...).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import tokenize
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from audit.config import AuditConfig
from audit.finding import Category, Finding
from audit.imports import CONSTANT_NAME, imported_names
from audit.reachability import FlowIndex
from audit.rules import SYMBOL, Judge, Reported, Site, numeric_value
from audit.vocabulary import DISPLAY_CALL_WORDS, words
from audit.walk import NODE_CLASSES as _NODE_CLASSES
from audit.walk import child_fields, children, descendants, subclasses_of, walk

_SUPPRESS = re.compile(r"#\s*qctl:\s*ignore(?:\[(?P<what>[^\]]*)\])?", re.IGNORECASE)
_QCTL = re.compile("qctl", re.IGNORECASE)
_SUPPRESS_FILE = re.compile(r"#\s*qctl:\s*ignore-file\b", re.IGNORECASE)
_NUMERIC_STRING = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_SYMBOL = SYMBOL
# Command-line option builders whose `default=` decides a run (argparse, click, typer).
_CLI_CALLS = frozenset({"add_argument", "option", "Option", "argument", "Argument"})
# Names of dicts that hold a strategy's parameters (`defaults = {...}` on a Strategy subclass).
_PARAM_DICT_WORDS = frozenset(
    {"params", "parameters", "param", "defaults", "default", "hyperparams", "hyperparameters",
     "hyperparam", "hyperparameter"}
)  # fmt: skip
_STRATEGY_CLASS_WORDS = frozenset(
    {"strategy", "strategies", "signal", "signals", "alpha", "indicator", "bot", "trader", "model"}
)
_SCALE_OPS = (cst.MultiplyAssign, cst.DivideAssign, cst.FloorDivideAssign)
_FRACTION_CATEGORIES = ("position_sizing", "harvest", "leverage")

NUMBER = (cst.Integer, cst.Float)
CONTAINERS = (cst.List, cst.Tuple, cst.Set)


def dotted(node: cst.CSTNode | None) -> str:
    """`a.b.c` for names and attributes, the key for `x["key"]`, the callee for calls; else ''."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else node.attr.value
    if isinstance(node, cst.Subscript):
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            key = string_value(node.slice[0].slice.value)
            if key:
                return key
        return dotted(node.value)
    if isinstance(node, cst.Call):
        return dotted(node.func)
    if isinstance(node, cst.UnaryOperation):
        return dotted(node.expression)
    return ""


def last(name: str) -> str:
    return name.rsplit(".", 1)[-1] if name else ""


def string_value(node: cst.CSTNode | None) -> str | None:
    if type(node) is cst.SimpleString:
        quick = _plain_string(node.value)
        if quick is not None:
            return quick
    if isinstance(node, cst.SimpleString):
        try:
            value = node.evaluated_value
        except Exception:  # noqa: BLE001 - odd prefixes: treat as not a plain string
            return None
        return value if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = string_value(node.left), string_value(node.right)
        return None if left is None or right is None else left + right
    return None


def _plain_string(code: str) -> str | None:
    """The value of a string literal with no escapes, prefix (but r/u) or CR: its text, no eval.

    libcst's `evaluated_value` runs `ast.literal_eval` (a compile) for every string.
    """
    quote = code[-1:]
    if quote not in ("'", '"') or "\\" in code or "\r" in code:
        return None
    start = code.find(quote)
    if code[:start].lower() not in ("", "r", "u"):
        return None
    width = 3 if code.startswith(quote * 3, start) and len(code) - start >= 6 else 1
    return code[start + width : len(code) - width]


def is_literal_expr(node: cst.CSTNode) -> bool:
    """A number, or arithmetic made only of numbers (`60 * 60 * 24`, `-0.5`)."""
    kind = type(node)
    if kind in _NUMBER_TYPES:
        return True
    if kind in _UNARY_TYPES and type(node.operator) in _SIGN_TYPES:
        return is_literal_expr(node.expression)
    if kind in _BINARY_TYPES:
        return is_literal_expr(node.left) and is_literal_expr(node.right)
    return False


def names_in(node: cst.CSTNode) -> list[str]:
    """Names that an expression reads (for comparisons and weights), nearest first."""
    if isinstance(node, cst.Call) and last(dotted(node.func)) in _CLAMPS:
        return [n for a in node.args if not is_literal_expr(a.value) for n in names_in(a.value)]
    name = dotted(node)
    if name:
        return [name]
    if isinstance(node, cst.BinaryOperation):
        return names_in(node.left) + names_in(node.right)
    if isinstance(node, cst.Call) and node.args:
        return names_in(node.args[0].value)
    return []


_CLAMPS = ("min", "max", "clip", "clamp", "clip_value", "bound", "bounded")


def assign_targets(node: cst.CSTNode) -> list[str]:
    if isinstance(node, cst.Assign):
        out: list[str] = []
        for target in node.targets:
            t = target.target
            if isinstance(t, cst.Tuple | cst.List):
                out += [dotted(e.value) for e in t.elements]
            else:
                out.append(dotted(t))
        return [n for n in out if n]
    if isinstance(node, cst.AnnAssign | cst.AugAssign):
        name = dotted(node.target)
        return [name] if name else []
    return []


# Subtrees that hold no literal worth a look: pruning them halves the traversal.
_NO_LITERALS_INSIDE = (
    cst.Name, cst.Import, cst.ImportFrom, cst.Comment, cst.SimpleWhitespace, cst.ParenthesizedWhitespace,
    cst.TrailingWhitespace, cst.EmptyLine, cst.Newline, cst.Comma, cst.Dot, cst.Colon, cst.Semicolon,
    cst.AssignEqual, cst.LeftParen, cst.RightParen, cst.LeftSquareBracket, cst.RightSquareBracket,
    cst.LeftCurlyBrace, cst.RightCurlyBrace, cst.BaseBinaryOp, cst.BaseBooleanOp, cst.BaseCompOp,
    cst.BaseUnaryOp, cst.BaseAugOp, cst.Pass, cst.Break, cst.Continue, cst.Global, cst.Nonlocal,
    cst.AssignTarget, cst.Decorator,
)  # fmt: skip


_PRUNE = subclasses_of(*_NO_LITERALS_INSIDE)
# `type(node) in set` for the classes the visitor asks about on every node (isinstance on
# libcst's abstract classes goes through ABCMeta and was a tenth of a scan).
_NUMBER_TYPES = subclasses_of(*NUMBER)
_UNARY_TYPES = subclasses_of(cst.UnaryOperation)
_SIGN_TYPES = subclasses_of(cst.Minus, cst.Plus)
_BINARY_TYPES = subclasses_of(cst.BinaryOperation)
_IF_TYPES = subclasses_of(cst.If)
_CLASS_TYPES = subclasses_of(cst.ClassDef)
_FUNCTION_TYPES = subclasses_of(cst.FunctionDef)
_LEAF_TEXT = subclasses_of(cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Name)
_STATEMENT_HOLDERS = subclasses_of(cst.SimpleStatementLine, cst.BaseCompoundStatement)
_EXPR = subclasses_of(cst.Expr)
# the parents _site reads, by what they are
_SUBSCRIPTS = subclasses_of(cst.SubscriptElement, cst.Slice, cst.Index)
_INDEX = subclasses_of(cst.Index)
_ARG = subclasses_of(cst.Arg)
_CALL = subclasses_of(cst.Call)
_COMPARISON = subclasses_of(cst.Comparison)
_BOOLEAN = subclasses_of(cst.BooleanOperation)
_IFEXP = subclasses_of(cst.IfExp)
_SUBSCRIPT_NODES = subclasses_of(cst.Subscript)
# What may lie between a bar offset and the row it picks: `candles[max(0, idx - 2)]`, `bars[-3]`.
_BAR_OFFSET_PATH = subclasses_of(
    cst.BinaryOperation, cst.UnaryOperation, cst.Arg, cst.Call, cst.Index, cst.SubscriptElement
)
# Series of market data whose rows hold prices.
_BAR_SERIES = frozenset(
    {"candles", "candle", "bars", "bar", "klines", "kline", "ohlc", "ohlcv", "df", "lows", "highs",
     "low", "high", "close", "closes", "prices", "iloc", "rates", "history"}
)  # fmt: skip
# Market data whose last N bars a window reduces to one value (`highs.tail(52).max()`).
_WINDOW_SERIES = _BAR_SERIES | frozenset(
    {"highs", "lows", "opens", "open", "volume", "volumes", "vol", "price", "returns"}
)
_WINDOW_CALLS = frozenset({"tail", "rolling"})
_WINDOW_KEYS = frozenset({"n", "window"})
_AGGREGATES = frozenset(
    {"max", "min", "mean", "sum", "std", "median", "var", "idxmax", "idxmin", "nanmax", "nanmin",
     "nanmean", "average", "amax", "amin"}
)  # fmt: skip
_MIN_WINDOW = 3  # the last two bars are the bar at hand and the one before, not a lookback
_DICT_ELEMENT = subclasses_of(cst.DictElement)
_PARAM = subclasses_of(cst.Param)
_RETURN = subclasses_of(cst.Return)
_ASSIGNS = subclasses_of(cst.Assign, cst.AnnAssign, cst.AugAssign)
_ENDS_ROLE = subclasses_of(
    cst.BaseSmallStatement, cst.BaseCompoundStatement, cst.Lambda, cst.FormattedString
)
_LOOKED_AT = subclasses_of(
    *NUMBER,
    cst.UnaryOperation,
    cst.BinaryOperation,
    *CONTAINERS,
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.Call,
)
# Where an imported constant is used as a decision (audit.imports): compared, slicing, passed.
_USE_SITES = subclasses_of(cst.Comparison, cst.SubscriptElement, cst.Call)
# What the walk never hands to the visitor: pruned nodes, except decorators (one kind is a look).
_WALK_SKIP = _PRUNE - subclasses_of(cst.Decorator)
_STATEMENTS = subclasses_of(cst.BaseSmallStatement, cst.BaseCompoundStatement)


@dataclass
class Scope:
    kind: str  # module | class | function
    name: str
    decorators: tuple[str, ...] = ()
    bases: tuple[str, ...] = ()


@dataclass
class FileScan:
    findings: list[Finding] = field(default_factory=list)
    suppressed: int = 0
    unreachable: int = 0  # candidates dropped because they reach only display or plumbing
    # module constants that are decisions only if another module uses them as one
    exports: list[Finding] = field(default_factory=list)
    # "module:NAME" for each imported constant this file uses as a decision (see audit.imports)
    imports: list[str] = field(default_factory=list)
    # findings whose value only reaches display here, kept if another module refers to the name
    shown: list[Finding] = field(default_factory=list)


class _Visitor(cst.CSTVisitor):
    """Finds and judges literals; positions are resolved afterwards (see scan_source)."""

    def __init__(self, judge: Judge) -> None:
        super().__init__()
        self.judge = judge
        self.stack: list[cst.CSTNode] = []
        self.scopes: list[Scope] = [Scope("module", "<module>")]
        self.main_depth = 0
        self.done: set[int] = set()  # ids of literal nodes already reported as part of a bigger one
        # parameters of the functions and methods this module defines, by name (see _signatures)
        self.signatures: dict[str, list[str]] = {}
        self.definitions: dict[str, cst.FunctionDef] = {}
        self._windows: dict[int, frozenset[str]] = {}  # see _window_params
        self._tested: dict[int, set[str]] = {}  # see _repeated_gate
        # per function (by id; the tree outlives the scan): see _compared_names
        self._compared: dict[int, frozenset[str]] = {}
        # (imported constant names, imported module aliases) and the uses found (audit.imports)
        self.imported: tuple[dict[str, str], dict[str, str]] | None = None
        self.uses: dict[str, None] = {}

    # -- structure -------------------------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.main_depth:
            return False
        kind = type(node)
        if kind in _PRUNE and not (
            kind is cst.Decorator
            and (
                last(dotted(node.decorator)) in ("option", "argument")
                or (
                    type(node.decorator) is cst.Call
                    and any(type(d) is cst.Lambda for d in descendants(node.decorator))
                )
            )
        ):
            # a click `@option(..., default=...)` and a rule's predicates (`@Rule(Fact(name="rsi",
            # value=P(lambda x: x < 30)))`, an expert system's entry rules) are worth a look
            return False
        if kind in _IF_TYPES and len(self.scopes) == 1 and _is_main_guard(node.test):
            self.main_depth += 1
            self.stack.append(node)
            return False
        if kind in _CLASS_TYPES:
            self.scopes.append(
                Scope(
                    "class",
                    node.name.value,
                    tuple(dotted(d.decorator) for d in node.decorators),
                    tuple(dotted(b.value) for b in node.bases),
                )
            )
        elif kind in _FUNCTION_TYPES:
            self.scopes.append(
                Scope(
                    "function", node.name.value, tuple(dotted(d.decorator) for d in node.decorators)
                )
            )
        self.stack.append(node)
        if self.imported and kind in _USE_SITES:
            self._imported_use(node)
        if kind in _LOOKED_AT:  # _look_at does nothing with any other node
            self._look_at(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        kind = type(original_node)
        if kind in _IF_TYPES and self.main_depth and self.stack[-1] is original_node:
            self.main_depth -= 1
        if kind in _CLASS_TYPES or kind in _FUNCTION_TYPES:
            self.scopes.pop()
        if self.stack and self.stack[-1] is original_node:
            self.stack.pop()

    # -- literals --------------------------------------------------------------------------
    def _look_at(self, node: cst.CSTNode) -> None:
        if id(node) in self.done:
            return
        if is_literal_expr(node):
            self._mark_done(node)
            self._number(node)
        elif isinstance(node, CONTAINERS):
            self._symbols(node)
        elif isinstance(node, cst.SimpleString | cst.ConcatenatedString):
            self._string(node)
        elif isinstance(node, cst.Call) and node.args:
            self._boolean_fallback(node)

    def _imported_use(self, node: cst.CSTNode) -> None:
        """Record imported constants this node compares, slices with or passes (audit.imports)."""
        if isinstance(node, cst.Comparison):
            operands = [node.left] + [c.comparator for c in node.comparisons]
        elif isinstance(node, cst.SubscriptElement):
            inner = node.slice
            if isinstance(inner, cst.Index):
                operands = [inner.value]
            else:
                operands = [b for b in (inner.lower, inner.upper, inner.step) if b is not None]
        else:
            if set(words(dotted(node.func))) & DISPLAY_CALL_WORDS:
                return  # only shown
            operands = [a.value for a in node.args]
        names, modules = self.imported
        for operand in operands:
            for name in names_in(operand):
                if name in names:
                    self.uses[names[name]] = None
                elif "." not in name and CONSTANT_NAME.match(name):
                    for key, origin in names.items():  # `from config.constants import *`
                        if key.startswith("*"):
                            self.uses[f"{origin}:{name}"] = None
                else:
                    prefix, _, attr = name.rpartition(".")
                    if prefix in modules and CONSTANT_NAME.match(attr):
                        self.uses[f"{modules[prefix]}:{attr}"] = None

    def _boolean_fallback(self, call: cst.Call) -> None:
        """`params.get("use_scale_out", True)`: booleans are names in the tree, so look here."""
        short = last(dotted(call.func))
        if short not in ("get", "getattr", "pop"):
            return
        at = 2 if short == "getattr" else 1
        for index, arg in enumerate(call.args):
            value = arg.value
            if not (isinstance(value, cst.Name) and value.value in ("True", "False")):
                continue
            keyword = arg.keyword.value if arg.keyword else ""
            if keyword == "default" or (not keyword and index == at):
                site = self._site(value, self.stack)
                if site is not None:
                    self.judge.boolean(site, value.value == "True")

    def _mark_done(self, node: cst.CSTNode) -> None:
        for child in _walk(node):
            self.done.add(id(child))

    def _number(self, node: cst.CSTNode) -> None:
        site = self._site(node, self.stack[:-1])
        if site is not None:
            self.judge.number(site)

    def _string(self, node: cst.CSTNode) -> None:
        if len(self.stack) > 1 and type(self.stack[-2]) in _EXPR:
            return  # a docstring or a bare string statement: _site finds no role for it
        value = string_value(node)
        if value is None:
            return
        parents = self.stack[:-1]
        site = self._site(node, parents)
        if site is None:
            return
        if site.role in ("env-default", "cli-default") and _NUMERIC_STRING.match(value):
            self.judge.number(site)
        else:
            self.judge.string(site, value)

    def _symbols(self, node: cst.List | cst.Tuple | cst.Set) -> None:
        values = [string_value(e.value) for e in node.elements]
        if not values or any(v is None for v in values):
            return
        symbols = [v for v in values if v and _SYMBOL.match(v)]
        if len(symbols) != len(values):
            return
        site = self._site(node, self.stack[:-1])
        if site is None:
            return
        for child in _walk(node):
            self.done.add(id(child))
        self.judge.symbols(site, len(symbols))

    # -- role resolution -------------------------------------------------------------------
    def _site(
        self, literal: cst.CSTNode, parents: Sequence[cst.CSTNode], start: cst.CSTNode | None = None
    ) -> Site | None:
        """Walk up from the literal (or from `start`, a wrapper around it) to the node that gives it meaning."""
        site = Site(
            node=literal,
            statement=self._statement(parents),
            value=_source(literal),
            scope=self._qualname(),
            function=self._innermost("function"),
            klass=self._innermost("class"),
            in_dataclass=self._in_model_class(),
            module_level=len(self.scopes) == 1,
            class_level=self.scopes[-1].kind == "class",
        )
        child: cst.CSTNode = start or literal
        keyword = ""
        fallback = False  # the literal is what a conditional expression gives otherwise
        for parent in reversed(parents):
            kind = type(parent)
            if kind in _SUBSCRIPTS:
                if kind in _INDEX and isinstance(child, cst.SimpleString):
                    return None
                stop = self._bar_offset_stop(literal, parents)
                if stop:
                    site.names, site.role = [stop], "bar-offset"
                    return site
                series = self._window_slice(child, parent, parents)
                if series:  # `df["low"].iloc[-21:-1].min()`: the last 20 bars, a lookback
                    site.names, site.role = [series], "window"
                    return site
                if kind is cst.Slice and child is parent.step:
                    series = self._stepped_series(parent, parents)
                    value = numeric_value(literal)
                    if series and value is not None and _MIN_WINDOW <= value <= 5000:
                        site.names, site.role = [series], "window"  # `closes[::5]`: every 5th bar
                        return site
                return site.with_role("index")
            if kind in _ARG:
                keyword = parent.keyword.value if parent.keyword else ""
            elif kind in _CALL:
                if child is parent.func:
                    return None
                return self._call(site, parent, child, keyword)
            elif kind in _BINARY_TYPES:
                if child is parent.right and isinstance(parent.operator, cst.FloorDivide):
                    series = self._sampling_step(parent, parents)
                    if series:  # `step = max(n // 10, 2)`, then `highs[::step]`: 10 samples
                        site.names, site.role = [series], "window"
                        return site
                other = parent.right if child is parent.left else parent.left
                role = self._arith_role(parent, child, other, parents)
                if role == "fraction":
                    site.names = names_in(other) + self._outer_names(parents, parent)
                    site.role = "fraction"
                    return site
                if role == "conversion":
                    return site.with_role("conversion")
                if role == "weight":
                    compared = self._relative_threshold(parent, parents)
                    if compared is not None:
                        # `total_range > 1.2 * avg_range`: how far one quantity must exceed
                        # another, a threshold written as a ratio
                        site.names = compared + names_in(other)
                        site.role = "comparison"
                        site.ratio = True
                        site.secondary = self._outer_names(parents, parent)
                        return site
                    site.names = names_in(other)
                    site.role = "weight"
                    site.secondary = self._outer_names(parents, parent)
                    return site
                if role == "structural":
                    return site.with_role("index")
            elif kind in _COMPARISON:
                if self._repeated_gate(parents, parent):
                    return None  # `"volume_spike": ratio >= 1.5` after `if ratio >= 1.5:`
                operands = [parent.left] + [c.comparator for c in parent.comparisons]
                site.names = [n for o in operands if o is not child for n in names_in(o)]
                site.vote = any(_is_condition_count(o) for o in operands if o is not child)
                site.role = "comparison"
                site.secondary = self._outer_names(parents, parent)
                subject = _predicate_subject(parents, parent, site.names)
                if subject is not None:
                    # `P(lambda x: x > 25)` under `Indicator(name="adx", ...)`: the predicate's
                    # parameter is anonymous; the name it is declared under says what it tests
                    site.names, site.secondary = subject
                else:
                    site.grade = _graded(parents, parent, self._innermost("function"))
                site.rejects = _rejecting(parents, parent)
                return site
            elif kind in _IFEXP:
                if child is not parent.test and _division_guard(parent, child):
                    return None  # `a / b if b > 0 else 0.5`: what a ratio is when it cannot be
                if child is parent.orelse:
                    fallback = True
            elif kind in _BOOLEAN:
                if isinstance(parent.operator, cst.Or) and child is parent.right:
                    site.names = self._outer_names(parents, parent) + names_in(parent.left)
                    site.role = "or-fallback"
                    return site
            elif kind in _DICT_ELEMENT:
                if child is parent.key:
                    return None
                key = string_value(parent.key) or dotted(parent.key)
                if key and "/" in key:
                    return (
                        None  # an endpoint path (`"margin/leverageBracket": 0.1`), not a decision
                    )
                site.names = [key] if key else []
                site.role = (
                    "strategy-param" if self._in_param_dict(parents, parent) else "dict-value"
                )
                site.secondary = self._outer_names(parents, parent)
                site.enclosing_keys = _enclosing_keys(parents, parent)
                return site
            elif kind in _PARAM:
                site.names = [parent.name.value]
                site.role = "param-default"
                func = next((p for p in reversed(parents) if type(p) in _FUNCTION_TYPES), None)
                if func is not None:
                    site.params = tuple(
                        p.name.value for p in (*func.params.posonly_params, *func.params.params)
                    )
                return site
            elif kind in _RETURN:
                site.names = [site.function] if site.function else []
                site.role = "return"
                return site
            elif kind in _ASSIGNS:
                if isinstance(parent, cst.AugAssign) and numeric_value(literal) in (1, -1):
                    return site.with_role("index")  # a counter: `n += 1`
                site.names = assign_targets(parent)
                if isinstance(parent, cst.AugAssign) and self._tally(parent, parents):
                    site.role = "tally-weight"  # `if uptrend: long += 2`, then `long >= 3`
                    return site
                if fallback and not (site.module_level or site.class_level):
                    # `n = int(arg) if arg else 30`, then `config.top_n = max(5, min(100, n))`:
                    # the name the fallback is stored under later says what it is
                    site.names = self._stored_as(site.names, parent, parents) + site.names
                if isinstance(parent, cst.AugAssign) and isinstance(parent.operator, _SCALE_OPS):
                    value = numeric_value(literal)
                    if value is not None and abs(value) in self.judge.vocabulary.conversions:
                        return site.with_role("conversion")  # `ms /= 1000`
                    site.role = "fraction"  # `f /= 2.0` (half-Kelly), `size *= 0.5`
                    return site
                if site.module_level or site.class_level:
                    site.role = (
                        "field-default"
                        if site.in_dataclass and isinstance(parent, cst.AnnAssign)
                        else "constant"
                    )
                else:
                    site.role = "assign-fallback"
                return site
            elif kind in _ENDS_ROLE:
                return None
            child = parent
        return None

    def _call(self, site: Site, call: cst.Call, child: cst.CSTNode, keyword: str) -> Site | None:
        callee = dotted(call.func)
        short = last(callee)
        args = list(call.args)
        index = next((i for i, a in enumerate(args) if a is child or a.value is child), -1)
        if index >= 0 and args[index].keyword is not None:
            keyword = args[index].keyword.value
        positional = index if index >= 0 and args[index].keyword is None else -1
        if callee in ("os.getenv", "getenv", "os.environ.get", "environ.get") or callee.endswith(
            ".environ.get"
        ):
            if positional >= 1 or keyword == "default":
                env = string_value(args[0].value) if args else None
                site.names = [env] if env else []
                site.role = "env-default"
                site.secondary = self._outer_names(self.stack, call)
                return site
            return None
        if short in _CLI_CALLS:
            if keyword != "default":
                return None
            site.names = _cli_names(call)
            site.role = "cli-default"
            return site
        if short in ("get", "getattr", "pop", "setdefault") and (
            positional >= 1 or keyword == "default"
        ):
            site.receiver = callee.rsplit(".", 1)[0] if "." in callee else ""
            key_node = (
                args[1].value
                if short == "getattr" and len(args) > 1
                else args[0].value
                if args
                else None
            )
            key = string_value(key_node) if key_node is not None else None
            default_at = 2 if short == "getattr" else 1
            if positional == default_at or keyword == "default":
                site.names = [key] if key else []
                site.role = "get-default"
                site.secondary = self._outer_names(self.stack, call)
                return site
            return None
        if short in ("int", "float", "Decimal", "str", "bool", "abs"):
            outer = self._site_from(site, call)
            return outer
        if short in _CLAMPS:
            stop = self._bar_offset_stop(site.node, self.stack)
            if stop:  # `candles[max(0, idx - 2)]["low"]` becomes a stop
                site.names, site.role = [stop], "bar-offset"
                return site
            series = self._window_start(site.node, call)
            if series:  # `highs[max(0, i - 5):i]`, `range(max(0, i - 5), i)`: 5 bars before i
                site.names, site.role = [series], "window"
                return site
            others = [a.value for a in args if a is not child and not is_literal_expr(a.value)]
            site.names = [n for o in others for n in names_in(o)] + self._outer_names(
                self.stack, call
            )
            site.role = "clamp"
            return site
        if short in _WINDOW_CALLS and (positional == 0 or keyword in _WINDOW_KEYS):
            series = self._window_call(call)
            if series:  # `macro["high"].tail(52).max()`, `df["close"].rolling(20).mean()`
                site.names, site.role = [series], "window"
                return site
        if short in ("Field", "field", "Range", "confloat", "conint"):
            target = self._outer_names(self.stack, call)
            site.names = target
            site.role = "field-bound" if keyword in ("ge", "le", "gt", "lt") else "field-default"
            return site
        if (
            short in self.judge.vocabulary.neutral_calls
            or callee in self.judge.vocabulary.neutral_calls
        ):
            return None
        if not keyword and positional >= 0:
            # `self.add_signal("BUY", 40, "uptrend")` with `def add_signal(self, side, strength,
            # reason)` in this module: the parameter names the argument
            keyword = self._parameter_at(call, positional)
        site.names = [keyword] if keyword else []
        site.callee = callee
        site.call = call
        site.helper_window = bool(keyword) and keyword in self._window_params(call)
        site.role = "call-arg"
        site.secondary = self._outer_names(self.stack, call)
        return site

    def _bar_offset_stop(self, literal: cst.CSTNode, parents: Sequence[cst.CSTNode]) -> str:
        """The stop or target that an earlier bar's price becomes, when `literal` says which bar.

        `ref = candles[max(0, idx - 2)]` then `pos.stop = min(ref["low"], floor)`, or
        `stop_price = df["low"].iloc[-3]`: the offset is how far back the stop is placed, a
        decision. The bar's row must be of market data and reach a stop or target name in the
        same statement or, through a local name, in a later one of the same function.
        """
        value = numeric_value(literal)
        if value is None or not math.isfinite(value) or value != int(value) or abs(value) < 2:
            return ""  # `[-1]` is the bar at hand, `idx - 1` the one before: no distance chosen
        at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is literal), None)
        at = len(parents) if at is None else at
        first = parents[at - 1] if at >= 1 else None
        if not (
            (isinstance(first, cst.BinaryOperation) and first.right is literal and value > 0)
            or (isinstance(literal, cst.UnaryOperation) and value < 0)
        ):
            return ""  # `idx - 2`, `[-3]`; not the 0 of `max(0, ...)` nor `[2]` from the start
        child: cst.CSTNode = literal
        subscript = None
        for i in range(at - 1, -1, -1):
            node = parents[i]
            kind = type(node)
            if kind in _SUBSCRIPT_NODES:
                subscript = node
                at = i
                break
            if kind in _BINARY_TYPES and not isinstance(node.operator, cst.Add | cst.Subtract):
                return ""
            if kind in _CALL and (child is node.func or last(dotted(node.func)) not in _CLAMPS):
                return ""
            if kind not in _BAR_OFFSET_PATH:
                return ""
            child = node
        if subscript is None or not set(words(dotted(subscript.value))) & _BAR_SERIES:
            return ""
        names: list[str] = []
        for i in range(at - 1, -1, -1):
            node = parents[i]
            if isinstance(node, cst.Assign | cst.AnnAssign):
                names = assign_targets(node)
                break
            if type(node) in _STATEMENTS or isinstance(node, cst.Lambda | cst.FunctionDef):
                return ""
        match = self.judge.vocabulary.match
        stops = [n for n in names if match(n).category is Category.STOP_LOSS_TAKE_PROFIT]
        if stops:
            return stops[0]
        local = [n for n in names if "." not in n]
        func = next((p for p in reversed(parents) if isinstance(p, cst.FunctionDef)), None)
        if not local or func is None:
            return ""
        for node in descendants(func.body):
            if not isinstance(node, cst.Assign | cst.AnnAssign | cst.AugAssign):
                continue
            targets = assign_targets(node)
            if not any(match(t).category is Category.STOP_LOSS_TAKE_PROFIT for t in targets):
                continue
            value = getattr(node, "value", None)
            if value is not None and any(
                isinstance(n, cst.Name) and n.value in local for n in descendants(value)
            ):
                return next(
                    t for t in targets if match(t).category is Category.STOP_LOSS_TAKE_PROFIT
                )
        return ""

    def _window_slice(
        self, child: cst.CSTNode, holder: cst.CSTNode, parents: Sequence[cst.CSTNode]
    ) -> str:
        """The market series whose last N bars a slice aggregates (`lows.iloc[-21:-1].min()`)."""
        if not isinstance(holder, cst.Slice) or child is not holder.lower:
            return ""
        value = numeric_value(child)
        if value is None or value != int(value) or value > -_MIN_WINDOW:
            return ""  # `[-2:]`: the last two bars are the bar at hand and the one before
        at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is holder), None)
        if at is None:
            return ""
        subscript = next(
            (parents[i] for i in range(at - 1, -1, -1) if type(parents[i]) in _SUBSCRIPT_NODES),
            None,
        )
        if subscript is None:
            return ""
        return self._aggregated(subscript.value, subscript, parents)

    def _window_call(self, call: cst.Call) -> str:
        """The market series `.tail(N)` or `.rolling(N)` takes the last N bars of, aggregated."""
        if not isinstance(call.func, cst.Attribute):
            return ""
        value = next((numeric_value(a.value) for a in call.args), None)
        if value is None or value != int(value) or not _MIN_WINDOW <= value <= 5000:
            return ""
        return self._aggregated(call.func.value, call, self.stack)

    def _aggregated(
        self, series: cst.CSTNode, window: cst.CSTNode, parents: Sequence[cst.CSTNode]
    ) -> str:
        """The series' name when it is market data and `window` of it is reduced to one value."""
        name = dotted(series)
        if name.endswith((".iloc", ".values")):
            name = name.rsplit(".", 1)[0]
        if not name:
            return ""
        if self.judge.vocabulary.match(last(name)).indicator:
            return last(name)  # `df["obv"].tail(5)`: the last bars of an indicator are its signal
        if not set(words(name)) & _WINDOW_SERIES:
            return ""
        at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is window), None)
        if at is None or at < 2:
            return ""
        above, outer = parents[at - 1], parents[at - 2]
        if (
            isinstance(above, cst.Attribute)
            and above.attr.value in _AGGREGATES
            and isinstance(outer, cst.Call)
            and outer.func is above
        ):
            return last(name)  # `closes[-20:].mean()`
        if (
            isinstance(above, cst.Arg)
            and isinstance(outer, cst.Call)
            and last(dotted(outer.func)) in _AGGREGATES
        ):
            return last(name)  # `max(highs[-20:])`
        return ""

    def _window_start(self, literal: cst.CSTNode, clamp: cst.Call) -> str:
        """`max(0, i - 5)` as the start of the bars before `i`: a slice `xs[max(0, i - 5):i]` or
        `range(max(0, i - 5), i)`, directly or through a local name. Returns the market series
        sliced, or the range's target; '' otherwise. A single bar (`candles[max(0, i - 2)]`) is
        a bar offset, not a window."""
        value = numeric_value(literal)
        if value is None or not math.isfinite(value) or value != int(value):
            return ""
        if value < _MIN_WINDOW or last(dotted(clamp.func)) != "max" or len(clamp.args) != 2:
            return ""
        low, high = (a.value for a in clamp.args)
        if numeric_value(low) != 0:
            return ""
        if not (
            isinstance(high, cst.BinaryOperation)
            and isinstance(high.operator, cst.Subtract)
            and high.right is literal
            and not is_literal_expr(high.left)
        ):
            return ""
        end = _bare(_source(high.left))
        at = next((i for i in range(len(self.stack) - 1, -1, -1) if self.stack[i] is clamp), None)
        if at is None or at < 1:
            return ""
        stack = self.stack

        def up_stack(node: cst.CSTNode) -> cst.CSTNode | None:
            i = next((j for j in range(len(stack) - 1, 0, -1) if stack[j] is node), 0)
            return stack[i - 1] if i else None

        found = self._start_of(clamp, up_stack, end)
        if found:
            return found
        holder = self.stack[at - 1]
        if not (
            isinstance(holder, cst.Assign)
            and len(holder.targets) == 1
            and isinstance(holder.targets[0].target, cst.Name)
        ):
            return ""
        start = holder.targets[0].target.value
        func = next((p for p in reversed(self.stack) if type(p) in _FUNCTION_TYPES), None)
        if func is None:
            return ""
        parent_of: dict[int, cst.CSTNode] = {}
        for node in descendants(func.body):
            for child in children(node):
                parent_of[id(child)] = node
        for node in descendants(func.body):
            if isinstance(node, cst.Name) and node.value == start:
                found = self._start_of(node, lambda n: parent_of.get(id(n)), end)
                if found:
                    return found
        return ""

    @staticmethod
    def _start_of(
        start: cst.CSTNode, up: Callable[[cst.CSTNode], cst.CSTNode | None], end: str
    ) -> str:
        """What `start` opens a window of, ending at `end`: the market series of `xs[start:end]`
        (or `xs[start:]`), or `range` for `range(start, end)`; '' otherwise. `up` gives a node's
        parent."""
        holder = up(start)
        outer = up(holder) if holder is not None else None
        if isinstance(holder, cst.Slice) and holder.lower is start:
            upper = holder.upper
            if upper is not None and _bare(_source(upper)) != end:
                return ""
            subscript = up(outer) if isinstance(outer, cst.SubscriptElement) else None
            if not isinstance(subscript, cst.Subscript):
                return ""
            series = last(dotted(subscript.value))
            return series if set(words(series)) & _WINDOW_SERIES else ""
        if (
            isinstance(holder, cst.Arg)
            and isinstance(outer, cst.Call)
            and last(dotted(outer.func)) == "range"
            and len(outer.args) == 2
            and outer.args[0] is holder
            and _bare(_source(outer.args[1].value)) == end
        ):
            return "range"
        return ""

    def _sampling_step(self, division: cst.BinaryOperation, parents: Sequence[cst.CSTNode]) -> str:
        """`step = max(n // 10, 2)` then `highs[::step]`, or `closes[::len(closes) // 10]`: a
        market series sampled in that many steps. Returns the series; '' otherwise."""
        at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is division), None)
        if at is None:
            return ""
        child: cst.CSTNode = division
        for i in range(at - 1, -1, -1):
            node = parents[i]
            if isinstance(node, cst.Arg) or (
                isinstance(node, cst.Call)
                and child is not node.func
                and last(dotted(node.func)) in ("max", "min", "int", "round")
            ):
                child = node
                continue
            if isinstance(node, cst.Slice) and node.step is child:
                return self._stepped_series(node, parents[: i + 1])
            if (
                isinstance(node, cst.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0].target, cst.Name)
            ):
                step = node.targets[0].target.value
                func = next((p for p in reversed(parents) if type(p) in _FUNCTION_TYPES), None)
                if func is None:
                    return ""
                for inner in descendants(func.body):
                    if not isinstance(inner, cst.Subscript):
                        continue
                    for element in inner.slice:
                        part = element.slice
                        if (
                            isinstance(part, cst.Slice)
                            and isinstance(part.step, cst.Name)
                            and part.step.value == step
                        ):
                            series = last(dotted(inner.value))
                            if set(words(series)) & _WINDOW_SERIES:
                                return series
                return ""
            return ""
        return ""

    @staticmethod
    def _stepped_series(holder: cst.Slice, parents: Sequence[cst.CSTNode]) -> str:
        """The market series a slice with this step is taken of (`highs[::5]`), or ''."""
        subscript = next(
            (p for p in reversed(parents) if type(p) in _SUBSCRIPT_NODES),
            None,
        )
        if subscript is None:
            return ""
        series = last(dotted(subscript.value))
        return series if set(words(series)) & _WINDOW_SERIES else ""

    def _repeated_gate(self, parents: Sequence[cst.CSTNode], comparison: cst.CSTNode) -> bool:
        """A comparison stored as a value of a dict (a report's flag) that repeats, text for
        text, one this function already tests in an `if`: the same decision, judged there."""
        holder = parents[-1] if parents and parents[-1] is not comparison else None
        at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is comparison), None)
        if at is not None:
            holder = parents[at - 1] if at >= 1 else None
        if not (isinstance(holder, cst.DictElement) and holder.value is comparison):
            return False
        func = next((p for p in reversed(parents) if type(p) in _FUNCTION_TYPES), None)
        if func is None:
            return False
        tested = self._tested.get(id(func))
        if tested is None:
            tested = set()
            for node in descendants(func.body):
                if isinstance(node, cst.If | cst.IfExp | cst.While):
                    for inner in descendants(node.test):
                        if isinstance(inner, cst.Comparison):
                            tested.add(_bare(_source(inner)))
            self._tested[id(func)] = tested
        return _bare(_source(comparison)) in tested

    def _tally(self, stmt: cst.AugAssign, parents: Sequence[cst.CSTNode]) -> bool:
        """`long += 2` under an `if`, the tally then compared: a vote's weight.

        The increment must be conditional and the local name compared elsewhere in the same
        function with something that is not a length (`while i < len(xs)` steps an index).
        """
        if not isinstance(stmt.operator, cst.AddAssign | cst.SubtractAssign):
            return False
        if not isinstance(stmt.target, cst.Name):
            return False
        name = stmt.target.value
        func = None
        conditional = False
        for parent in reversed(parents):
            if isinstance(parent, cst.If):
                conditional = True
            elif isinstance(parent, cst.For | cst.While):
                return False  # a loop's accumulator or index step
            elif isinstance(parent, cst.FunctionDef | cst.Lambda | cst.ClassDef):
                func = parent
                break
        if not conditional or not isinstance(func, cst.FunctionDef):
            return False
        return name in self._compared_names(func)

    def _compared_names(self, func: cst.FunctionDef) -> frozenset[str]:
        """Local names the function compares with something that is not a length; read once
        per function (a scorecard of thousands of `if ...: s += 2` asks for each increment)."""
        known = self._compared.get(id(func))
        if known is not None:
            return known
        found: set[str] = set()
        for node in descendants(func.body):
            if not isinstance(node, cst.Comparison):
                continue
            operands = [node.left] + [c.comparator for c in node.comparisons]
            for o in operands:
                if not isinstance(o, cst.Name) or o.value in found:
                    continue
                others = [
                    x for x in operands if not (isinstance(x, cst.Name) and x.value == o.value)
                ]
                if others and not any(
                    isinstance(x, cst.Call) and last(dotted(x.func)) == "len" for x in others
                ):
                    found.add(o.value)
        known = self._compared[id(func)] = frozenset(found)
        return known

    @staticmethod
    def _relative_threshold(
        product: cst.BinaryOperation, parents: Sequence[cst.CSTNode]
    ) -> list[str] | None:
        """The names compared with `k * x` when the product is itself a comparison's operand."""
        if not isinstance(product.operator, cst.Multiply):
            return None
        at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is product), None)
        holder = parents[at - 1] if at else None
        if isinstance(holder, cst.ComparisonTarget) and at and at >= 2:
            holder = parents[at - 2]
        if not isinstance(holder, cst.Comparison):
            return None
        operands = [holder.left] + [c.comparator for c in holder.comparisons]
        if not any(o is product for o in operands):
            return None
        return [n for o in operands if o is not product for n in names_in(o)]

    def _stored_as(
        self, names: list[str], stmt: cst.CSTNode, parents: Sequence[cst.CSTNode]
    ) -> list[str]:
        """Targets of the later assignments in this function that read these local names."""
        local = {n for n in names if n and "." not in n}
        func = next((p for p in reversed(parents) if isinstance(p, cst.FunctionDef)), None)
        if not local or func is None:
            return []
        out: list[str] = []
        for node in descendants(func.body):
            if node is stmt or not isinstance(node, cst.Assign | cst.AnnAssign):
                continue
            value = node.value
            if value is None or not any(
                isinstance(n, cst.Name) and n.value in local for n in descendants(value)
            ):
                continue
            out += [t for t in assign_targets(node) if t not in local]
        return out

    @staticmethod
    def _local_name(call: cst.Call) -> str:
        """The name of the function or method of this module a call may bind: `f(...)`,
        `self.f(...)`, `cls.f(...)`; '' otherwise."""
        func = call.func
        if isinstance(func, cst.Name):
            return func.value
        if (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value in ("self", "cls")
        ):
            return func.attr.value
        return ""

    def _window_params(self, call: cst.Call) -> frozenset[str]:
        """Parameters of the module's function a call binds that its body takes a trailing
        window with: `values[-n:]`, `xs[i - n:i]`, `range(len(xs) - n, len(xs))`, `.tail(n)`,
        `.rolling(n)`, `span=n`. `xs[i:i + n]` (a chunk) is none. Read once per function."""
        func = self.definitions.get(self._local_name(call))
        if func is None:
            return frozenset()
        known = self._windows.get(id(func))
        if known is not None:
            return known
        params = {p.name.value for p in (*func.params.posonly_params, *func.params.params)}
        params |= {p.name.value for p in func.params.kwonly_params}
        found: set[str] = set()
        for node in descendants(func.body):
            kind = type(node)
            if kind is cst.Slice:
                bounds = [b for b in (node.lower, node.upper) if b is not None]
                found.update(n for b in bounds for n in _subtracted_names(b))
            elif kind is cst.Call:
                short = last(dotted(node.func))
                for arg in node.args:
                    value = arg.value
                    if not isinstance(value, cst.Name):
                        if short == "range":
                            found.update(_subtracted_names(value))
                        continue
                    if (short in _TRAILING_CALLS and arg.keyword is None) or (
                        arg.keyword is not None and arg.keyword.value in _HELPER_PERIOD_KEYS
                    ):
                        found.add(value.value)
        known = self._windows[id(func)] = frozenset(found & params)
        return known

    def _parameter_at(self, call: cst.Call, index: int) -> str:
        """The parameter of a function of this module that a positional argument binds, or ''."""
        name = self._local_name(call)
        if not name:
            return ""
        params = self.signatures.get(name)
        if params and not isinstance(call.func, cst.Name) and params[0] in ("self", "cls"):
            params = params[1:]
        if not params or any(a.star for a in call.args[: index + 1]):
            return ""
        return params[index] if index < len(params) else ""

    def _site_from(self, site: Site, wrapper: cst.CSTNode) -> Site | None:
        """Re-resolve a literal wrapped by int()/float(): its role is the wrapper's role."""
        idx = next((i for i, n in enumerate(self.stack) if n is wrapper), None)
        if idx is None:
            return None
        return self._site(site.node, self.stack[:idx], start=wrapper)

    def _arith_role(
        self,
        op: cst.BinaryOperation,
        child: cst.CSTNode,
        other: cst.CSTNode,
        parents: Sequence[cst.CSTNode] = (),
    ) -> str:
        """What a number does inside arithmetic: converts units, weighs a term, or nothing yet."""
        kind = type(op.operator)
        if kind is cst.Modulo or (kind is cst.Power and child is op.right):
            return "structural"
        value = numeric_value(child) if is_literal_expr(child) else None
        if kind in (cst.Add, cst.Subtract) and value in (0, 1, -1) and not is_literal_expr(other):
            return "structural"  # `1 - stop_pct`, `i + 1`: the 1 is arithmetic, not a decision
        if (
            kind in (cst.Add, cst.Subtract)
            and value is not None
            and 0 < abs(value) <= 0.001
            and not is_literal_expr(other)
            and any(type(p) in _COMPARISON for p in parents)
        ):
            return "structural"  # `sz <= expected_sz + 0.001`: a rounding tolerance
        if kind not in (cst.Multiply, cst.Divide, cst.FloorDivide) or is_literal_expr(other):
            return ""
        if (
            kind is cst.Multiply
            and value == 0.5
            and isinstance(other, cst.BinaryOperation)
            and isinstance(other.operator, cst.Add)
            and not is_literal_expr(other.left)
            and not is_literal_expr(other.right)
        ):
            return "conversion"  # `0.5 * (low + high)`: a midpoint, as `(high + low) / 2`
        vocab = self.judge.vocabulary
        if value is not None and abs(value) in vocab.conversions:
            return "conversion"
        if (
            value is not None
            and kind is not cst.Multiply
            and child is op.right
            and value in vocab.divisors
        ):
            # `(high + low) / 2` is a midpoint; `qty / 2` in exit code closes half a position
            if isinstance(other, cst.BinaryOperation) or not self._sizes(
                names_in(other) + self._outer_names(parents, op)
            ):
                return "conversion"
            return "fraction"
        return "weight" if value is not None else ""

    def _sizes(self, names: Sequence[str]) -> bool:
        """Whether any of these names is a size, a harvest fraction or a leverage."""
        match = self.judge.vocabulary.match
        return any(str(match(n).category) in _FRACTION_CATEGORIES for n in names if n)

    def _outer_names(self, parents: Sequence[cst.CSTNode], below: cst.CSTNode) -> list[str]:
        """Names given to the expression holding the literal: assignment target, keyword, key."""
        found = False
        for parent in reversed(parents):
            if parent is below:
                found = True
                continue
            if not found:
                continue
            if isinstance(parent, cst.Assign | cst.AnnAssign | cst.AugAssign):
                return assign_targets(parent)
            if isinstance(parent, cst.Arg) and parent.keyword:
                if parent.keyword.value == "default":
                    holder = self._parent_in(parents, parent)
                    if isinstance(holder, cst.Call) and last(dotted(holder.func)) in _CLI_CALLS:
                        return _cli_names(holder)
                return [parent.keyword.value]
            if isinstance(parent, cst.DictElement):
                key = string_value(parent.key) or dotted(parent.key)
                return [key] if key else []
            if isinstance(parent, cst.Return):
                fn = self._innermost("function")
                return [fn] if fn else []
            if isinstance(parent, cst.Call):
                callee = dotted(parent.func)
                if last(callee) not in ("int", "float", "abs", "round", *_CLAMPS):
                    return [callee]
            if type(parent) in _STATEMENTS:
                return []
        return []

    @staticmethod
    def _parent_in(parents: Sequence[cst.CSTNode], node: cst.CSTNode) -> cst.CSTNode | None:
        for i in range(len(parents) - 1, 0, -1):
            if parents[i] is node:
                return parents[i - 1]
        return None

    def _in_param_dict(self, parents: Sequence[cst.CSTNode], element: cst.CSTNode) -> bool:
        """A dict of strategy parameters: `defaults = {...}` in a Strategy class, `STRATEGY_PARAMS`."""
        target = ""
        found = False
        for parent in reversed(parents):
            if parent is element:
                found = True
                continue
            if not found or isinstance(parent, cst.Dict | cst.DictElement):
                continue
            if isinstance(parent, cst.Assign | cst.AnnAssign):
                names = assign_targets(parent)
                target = names[0] if names else ""
            elif isinstance(parent, cst.Return):  # `def default_params(cls): return {...}`
                target = self._innermost("function")
            break
        if not target:
            return False
        seq = set(words(target))
        if not seq & _PARAM_DICT_WORDS:
            return False
        if "strategy" in seq or "strategies" in seq:
            return True
        klass = next((s for s in reversed(self.scopes) if s.kind == "class"), None)
        if klass is None:
            return False
        named = [klass.name, *klass.bases]
        return any(set(words(n)) & _STRATEGY_CLASS_WORDS for n in named)

    # -- context ---------------------------------------------------------------------------
    def _qualname(self) -> str:
        parts = [s.name for s in self.scopes[1:]]
        return ".".join(parts) if parts else "<module>"

    def _innermost(self, kind: str) -> str:
        for scope in reversed(self.scopes):
            if scope.kind == kind:
                return scope.name
        return ""

    def _in_model_class(self) -> bool:
        scope = self.scopes[-1]
        if scope.kind != "class":
            return False
        markers = (
            "dataclass",
            "BaseModel",
            "BaseSettings",
            "NamedTuple",
            "TypedDict",
            "attrs",
            "define",
        )
        return any(last(d.split("(")[0]) in markers for d in scope.decorators + scope.bases)

    @staticmethod
    def _statement(parents: Sequence[cst.CSTNode]) -> cst.CSTNode | None:
        for parent in reversed(parents):
            if type(parent) in _STATEMENT_HOLDERS:
                return parent
        return None


# Keywords of a call that name what a predicate or a declared value is about:
# `Indicator(name="rsi", value=P(lambda x: x < 30))`, `Rule(field="adx", test=lambda v: v > 25)`.
_SUBJECT_ARGS = frozenset(
    {"name", "field", "column", "col", "key", "indicator", "metric", "feature", "attr", "series"}
)
# Keywords that carry the predicate itself, not a subject.
_PREDICATE_ARGS = frozenset(
    {"value", "key", "func", "fn", "f", "predicate", "pred", "condition", "cond", "check", "test",
     "where", "filter", "callback", "lambda_", "when"}
)  # fmt: skip


def _predicate_subject(
    parents: Sequence[cst.CSTNode], comparison: cst.CSTNode, names: list[str]
) -> tuple[list[str], list[str]] | None:
    """(names, secondary names) of what a comparison tests when its own operands cannot say: a lambda's parameter or a value
    declared as a named fact. None keeps the operand names.

    - `lambda x: x > 25` passed as `P(...)` inside `Indicator(name="adx", value=...)`: ["adx"];
      as a keyword (`Screen(rsi=lambda v: v < 30)`): ["rsi"]; assigned (`oversold = lambda v:
      v < 30`): ["oversold"]; applied to a column (`df["rsi"].apply(lambda v: v > 70)`): ["rsi"].
      A lambda with no such name (`filter(lambda x: x > 0, xs)`) gives [] (nothing to judge).
    - `Indicator(name="bb_squeeze", value=bb_width < 0.02)`: the declared name decides, the operand
      names come second (a `width` that says "plumbing" elsewhere is a band width here).
    """
    at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is comparison), -1)
    if at < 0:
        return None
    lam = None
    for i in range(at - 1, -1, -1):
        node = parents[i]
        if isinstance(node, cst.Lambda):
            params = {p.name.value for p in node.params.params}
            if names and all(n.split(".")[0] in params for n in names):
                lam, at = node, i
            break
        if type(node) in _STATEMENTS:
            break
    if lam is None:
        # a comparison handed to a call as its value: `Fact(name="bb_squeeze", value=w < 0.02)`
        arg = parents[at - 1] if at >= 1 else None
        call = parents[at - 2] if at >= 2 else None
        if isinstance(arg, cst.Arg) and isinstance(call, cst.Call):
            named = _subject_of_call(call, arg)
            if named:
                return [named], names
        return None
    child: cst.CSTNode = lam
    for i in range(at - 1, -1, -1):
        node = parents[i]
        if type(node) in _STATEMENTS:
            if isinstance(node, cst.Assign | cst.AnnAssign):
                return assign_targets(node)[:1], []
            return [], []
        if isinstance(node, cst.Decorator):
            return [], []
        if isinstance(node, cst.Arg):
            keyword = node.keyword.value if node.keyword else ""
            if keyword and keyword not in _PREDICATE_ARGS and keyword not in _SUBJECT_ARGS:
                return [keyword], []
        elif isinstance(node, cst.Call) and child is not node.func:
            named = _subject_of_call(node, child)
            if named:
                return [named], []
        child = node
    return [], []


def _signatures(module: cst.Module) -> tuple[dict[str, list[str]], dict[str, cst.FunctionDef]]:
    """Positional parameters of the module's functions and of its classes' methods, by name, and
    their definitions.

    One level deep (no nested functions), read off the top of the tree without a traversal; a name
    defined twice with different parameters is left out (which one a call binds is unknown).
    """
    found: dict[str, list[str]] = {}
    defs: dict[str, cst.FunctionDef] = {}
    clash: set[str] = set()

    def add(func: cst.FunctionDef) -> None:
        params = [p.name.value for p in (*func.params.posonly_params, *func.params.params)]
        name = func.name.value
        if name in found and found[name] != params:
            clash.add(name)
        found[name] = params
        defs[name] = func

    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef):
            add(stmt)
        elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            for inner in stmt.body.body:
                if isinstance(inner, cst.FunctionDef):
                    add(inner)
    for name in clash:
        del found[name]
        del defs[name]
    return found, defs


# Calls that take the last N of a series (`xs.tail(n)`, `xs.rolling(n)`, `xs.ewm(n)`) and the
# keywords that give a period (`span=n`, `window=n`): a helper's parameter passed there is a window.
_TRAILING_CALLS = frozenset({"tail", "rolling", "ewm", "ewma", "sma", "ema", "wma", "rma"})
_HELPER_PERIOD_KEYS = frozenset(
    {"span", "window", "length", "period", "timeperiod", "lookback", "com", "halflife"}
)


def _subtracted_names(node: cst.CSTNode) -> list[str]:
    """Names taken away in an expression: `-n`, `len(xs) - n`, `max(0, i - n)` give n."""
    out: list[str] = []
    for inner in descendants(node):
        if (
            isinstance(inner, cst.UnaryOperation)
            and isinstance(inner.operator, cst.Minus)
            and isinstance(inner.expression, cst.Name)
        ):
            out.append(inner.expression.value)
        elif (
            isinstance(inner, cst.BinaryOperation)
            and isinstance(inner.operator, cst.Subtract)
            and isinstance(inner.right, cst.Name)
        ):
            out.append(inner.right.value)
    return out


def _graded(parents: Sequence[cst.CSTNode], comparison: cst.CSTNode, function: str) -> str:
    """The name a grade is given under when `comparison` decides which grade: `grade = "A" if
    points >= 5 else "B"`, `if score >= 80: return "A"` (a ladder, `elif` included), `tier = 1 if
    s > 90 else 2`. The grade is a letter (`"A"`, `"B+"`) or any literal under a grade word
    (`tier`, `grade`, `rating`); '' when the comparison gives no grade."""
    at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is comparison), 0)
    child = comparison
    for i in range(at - 1, -1, -1):
        node = parents[i]
        if isinstance(node, cst.BooleanOperation | cst.UnaryOperation):
            child = node
            continue
        if isinstance(node, cst.IfExp) and node.test is child:
            outcome: cst.CSTNode | None = node.body
            # the name the conditional's value is given: an assignment's target, a returning
            # function (an IfExp nested in another's branch takes the outer one's)
            holder = ""
            for outer in reversed(parents[:i]):
                if isinstance(outer, cst.Assign | cst.AnnAssign):
                    names = assign_targets(outer)
                    holder = names[0] if names else ""
                    break
                if isinstance(outer, cst.Return):
                    holder = function
                    break
                if not isinstance(outer, cst.IfExp):
                    break
            return _grade_name(outcome, holder)
        if isinstance(node, cst.If) and node.test is child:
            body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
            first = body[0] if body else None
            if isinstance(node.body, cst.SimpleStatementSuite):
                first = node.body
            if not isinstance(first, cst.SimpleStatementLine | cst.SimpleStatementSuite):
                return ""
            small = first.body[0] if first.body else None
            if isinstance(small, cst.Return) and small.value is not None:
                return _grade_name(small.value, function)
            if isinstance(small, cst.Assign | cst.AnnAssign) and small.value is not None:
                names = assign_targets(small)
                return _grade_name(small.value, names[0] if names else "")
            return ""
        return ""
    return ""


def _rejecting(parents: Sequence[cst.CSTNode], comparison: cst.CSTNode) -> bool:
    """Whether `comparison` tests an `if` that only refuses: its body reports (a call, an
    error appended) and raises or returns False/None (`if lev > 125: print(...); return False`)."""
    at = next((i for i in range(len(parents) - 1, -1, -1) if parents[i] is comparison), 0)
    child = comparison
    for i in range(at - 1, -1, -1):
        node = parents[i]
        if isinstance(node, cst.BooleanOperation | cst.UnaryOperation):
            child = node
            continue
        if not (isinstance(node, cst.If) and node.test is child):
            return False
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else (node.body,)
        smalls = [
            small
            for stmt in body
            if isinstance(stmt, cst.SimpleStatementLine | cst.SimpleStatementSuite)
            for small in stmt.body
        ]
        if len(smalls) != sum(
            len(stmt.body)
            if isinstance(stmt, cst.SimpleStatementLine | cst.SimpleStatementSuite)
            else 1
            for stmt in body
        ):
            return False  # a compound statement inside: more than a refusal
        refuses = False
        for small in smalls:
            if isinstance(small, cst.Raise):
                refuses = True
            elif isinstance(small, cst.Return):
                value = small.value
                if value is not None and not (
                    isinstance(value, cst.Name) and value.value in ("False", "None")
                ):
                    return False
                refuses = True
            elif not (isinstance(small, cst.Expr) and isinstance(small.value, cst.Call)):
                return False
        return refuses
    return False


_GRADE_LETTER = re.compile(r"^[A-F][+-]?$")
_GRADE_HOLDER_NAMES = frozenset({"grade", "grades", "tier", "tiers", "rating", "ratings", "rank"})


def _grade_name(value: cst.CSTNode, holder: str) -> str:
    """`holder` when `value` is a grade: a letter, or a literal under a grade word."""
    text = string_value(value)
    if text is not None and _GRADE_LETTER.match(text):
        return holder or "grade"
    if (
        holder
        and set(words(holder)) & _GRADE_HOLDER_NAMES
        and (text is not None or is_literal_expr(value))
    ):
        return holder
    return ""


def _division_guard(ifexp: cst.IfExp, branch: cst.CSTNode) -> bool:
    """`x / d if d > 0 else 0.5`, `0.5 if d == 0 else x / d`: `branch` is what the other branch's
    ratio is taken to be when its divisor, the thing the test checks, is zero."""
    other = ifexp.orelse if branch is ifexp.body else ifexp.body
    divisors = {
        _bare(_source(node.right))
        for node in descendants(other)
        if isinstance(node, cst.BinaryOperation)
        and isinstance(node.operator, cst.Divide | cst.FloorDivide | cst.Modulo)
    }
    if not divisors:
        return False
    test = ifexp.test
    tested = [test]
    if isinstance(test, cst.Comparison):
        tested = [test.left] + [c.comparator for c in test.comparisons]
    elif isinstance(test, cst.UnaryOperation):
        tested = [test.expression]
    return any(_bare(_source(t)) in divisors for t in tested)


def _bare(code: str) -> str:
    """Code without spaces and outer parentheses, to compare two spellings of one expression."""
    text = "".join(code.split())
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return text


def _subject_of_call(call: cst.Call, holder: cst.CSTNode) -> str:
    """The name a call gives its subject: a `name=`-like string argument, or the column or
    attribute it is a method of (`df["rsi"].apply`, `df.rsi.map`)."""
    for arg in call.args:
        if arg is holder or arg.value is holder or arg.keyword is None:
            continue
        if arg.keyword.value in _SUBJECT_ARGS:
            text = string_value(arg.value)
            if text and text.isidentifier():
                return text
    func = call.func
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Subscript | cst.Attribute):
        return last(dotted(func.value))
    return ""


def _enclosing_keys(parents: Sequence[cst.CSTNode], below: cst.CSTNode) -> list[str]:
    """Keys of the dicts around a nested dict value (`{"api": {"get": {"k": 1}}}` -> api, get)."""
    keys: list[str] = []
    found = False
    for parent in reversed(parents):
        if parent is below:
            found = True
        elif found and isinstance(parent, cst.DictElement):
            key = string_value(parent.key) or dotted(parent.key)
            if key:
                keys.append(key)
        elif found and type(parent) in _STATEMENTS:
            break
    return keys


def _cli_names(call: cst.Call) -> list[str]:
    """The option's names: the long flag (`--cb-pause-hours` -> cb_pause_hours) and `dest=`."""
    flags: list[str] = []
    dest: list[str] = []
    for arg in call.args:
        text = string_value(arg.value)
        if text is None:
            continue
        if arg.keyword is None:
            flags.append(text)
        elif arg.keyword.value == "dest":
            dest.append(text.replace("-", "_"))
    longest = max(flags, key=lambda f: (f.startswith("--"), len(f)), default="")
    name = longest.lstrip("-").replace("-", "_")
    if not longest.startswith("--") and dest:  # `-s` with dest="strategy": the dest says more
        return [*dest, name] if name else dest
    return [n for n in (name, *dest) if n]


def _is_condition_count(node: cst.CSTNode) -> bool:
    """`sum([a, b, c])`, `sum(c.ok for c in checks)`, `len([x for x in xs if x])`: agreeing votes."""
    if not isinstance(node, cst.Call) or last(dotted(node.func)) not in ("sum", "len", "count"):
        return False
    if not node.args:
        return False
    inner = node.args[0].value
    if isinstance(inner, cst.ListComp | cst.GeneratorExp | cst.SetComp):
        return last(dotted(node.func)) == "sum" or inner.for_in.ifs != ()
    if isinstance(inner, cst.List | cst.Tuple | cst.Set):
        return last(dotted(node.func)) == "sum"
    return False


def _is_main_guard(test: cst.BaseExpression) -> bool:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    left, right = test.left, test.comparisons[0].comparator
    names = {dotted(left), dotted(right)}
    strings = {string_value(left), string_value(right)}
    return "__name__" in names and "__main__" in strings


_walk = descendants


def _source(node: cst.CSTNode) -> str:
    if type(node) in _LEAF_TEXT and not node.lpar:  # a bare number, string or name is its text
        return node.value
    return cst.Module(body=[]).code_for_node(node)


def _trading_imports(module: cst.Module, judge: Judge) -> list[str]:
    """Names the module imports that speak of trading (`from api_client import
    BinanceFuturesClient`, `import ccxt.pro`): a file that uses an exchange client is trading code
    whatever its own name (`scanner.py`)."""
    found: list[str] = []
    statements: list[cst.CSTNode] = []
    for stmt in module.body:  # `try: from config import X` / `except ImportError: ...` too
        if isinstance(stmt, cst.Try):
            statements += stmt.body.body
            statements += [s for h in stmt.handlers for s in h.body.body]
        else:
            statements.append(stmt)
    for stmt in statements:
        if type(stmt) is not cst.SimpleStatementLine:
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom):
                names = [] if isinstance(small.names, cst.ImportStar) else small.names
                held = [dotted(small.module) if small.module else ""]
                held += [dotted(a.name) for a in names]
            elif isinstance(small, cst.Import):
                held = [dotted(a.name) for a in small.names]
            else:
                continue
            found += [
                n
                for n in held
                if n
                and (
                    judge.vocabulary.is_trading_context((n,))
                    or set(words(n)) & _EXCHANGE_IMPORT_WORDS
                )
            ]
    return found


# Imported names that say the module reads an exchange or its candles (`binance.ohlc_buffer`,
# `Candle`, `ccxt`): trading code, whatever the module is called.
_EXCHANGE_IMPORT_WORDS = frozenset(
    {"candle", "candles", "ohlc", "ohlcv", "kline", "klines", "binance", "bybit", "okx", "ccxt",
     "bitget", "kucoin", "mexc", "gateio", "hyperliquid", "exchange", "futures"}
)  # fmt: skip


def _declared_params(module: cst.Module) -> dict[str, str]:
    """Keys of strategy parameter dicts at module or class level, with their declared values.

    `params.get("require_fvg", True)` elsewhere in the file is then checked against them.
    """
    out: dict[str, str] = {}
    bodies: list[tuple[bool, Sequence[cst.CSTNode]]] = [(False, module.body)]
    for stmt in module.body:
        if isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            named = [stmt.name.value, *(dotted(b.value) for b in stmt.bases)]
            strategy = any(set(words(n)) & _STRATEGY_CLASS_WORDS for n in named)
            bodies.append((strategy, stmt.body.body))
    for strategy, body in bodies:
        for stmt in body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if not isinstance(small, cst.Assign | cst.AnnAssign):
                    continue
                if not isinstance(small.value, cst.Dict):
                    continue
                names = assign_targets(small)
                seq = set(words(names[0])) if names else set()
                if not seq & _PARAM_DICT_WORDS or not (strategy or "strategy" in seq):
                    continue  # `_defaults` of a dataframe expression is no strategy
                for element in small.value.elements:
                    if not isinstance(element, cst.DictElement):
                        continue
                    key = string_value(element.key)
                    if key:
                        out[key] = _source(element.value)
    return out


def suppressions(source: str) -> tuple[bool, dict[int, set[str]]]:
    """Comment directives by line: `# qctl: ignore`, `# qctl: ignore[leverage,harvest]`.

    Returns (whole file ignored, {line: set of categories/rule ids, or {"*"}}).
    """
    by_line: dict[int, set[str]] = {}
    whole = False
    if not _QCTL.search(source):  # both directives spell `qctl`: no need to tokenize
        return whole, by_line
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        if _SUPPRESS_FILE.search(tok.string):
            whole = True
            continue
        m = _SUPPRESS.search(tok.string)
        if not m:
            continue
        what = m.group("what")
        items = {w.strip() for w in what.split(",") if w.strip()} if what else {"*"}
        line = tok.start[0]
        by_line.setdefault(line, set()).update(items)
        if tok.line.strip().startswith("#"):  # a comment on its own line covers the next line
            by_line.setdefault(line + 1, set()).update(items)
    return whole, by_line


def scan_source(
    source: str,
    rel_path: str,
    config: AuditConfig,
    *,
    is_test: bool = False,
    match_path: str | None = None,
) -> FileScan:
    """Audit one file's text. Raises libcst.ParserSyntaxError on invalid syntax (the runner reports it).

    `rel_path` names the file in findings; `match_path` (default: the same) is what per-path
    ignores in config are matched against.
    """
    module = cst.parse_module(source)
    judge = Judge(config, rel_path, is_test=is_test)
    judge.trading_imports = _trading_imports(module, judge)
    judge.param_defaults = _declared_params(module)
    visitor = _Visitor(judge)
    visitor.signatures, visitor.definitions = _signatures(module)
    visitor.imported = imported_names(module, source, rel_path)
    walk(module, visitor.on_visit, visitor.on_leave, _WALK_SKIP)
    result = FileScan()
    result.imports = list(visitor.uses)
    if not judge.findings and not judge.held:
        return result
    whole, directives = suppressions(source)
    ignored_here = config.ignored_here(match_path or rel_path)
    flow: FlowIndex | None = None
    kept = []
    shown_here: list[Reported] = []
    for reported in judge.findings:
        if reported.check_flow:
            # reachability: drop a value that only reaches display or plumbing; keep a tentative
            # one only when it reaches an order, leverage, size or stop
            flow = flow or FlowIndex(module, trading_file=judge.trading_file())
            verdict = flow.verdict(reported.flow_from or reported.node)
            if verdict.display_only or (reported.tentative and verdict.kind != "trading"):
                result.unreachable += 1
                continue
            if verdict.shown_unless_imported and reported.finding.rule_id == "constant":
                shown_here.append(reported)
                continue
        kept.append(reported)
    if whole:
        result.suppressed += len(kept)
        return result
    held = judge.held
    # Statement lines matter only to `# qctl: ignore` comments; without any, the positions of
    # the findings' own nodes are read off the source text (see _literal_positions).
    nodes = [r.node for r in kept + held + shown_here]
    positions = None if directives else _literal_positions(module, source, nodes)
    if positions is None:
        positions = all_positions(module)

    def placed(reported: Reported) -> tuple[Finding, bool]:
        """The finding at its node's position, and whether a comment suppresses it."""
        pos = positions[reported.node]
        finding = replace(
            reported.finding,
            line=pos.start.line,
            column=pos.start.column,
            end_line=pos.end.line,
            end_column=pos.end.column,
        )
        stmt_line = (
            positions[reported.statement].start.line if directives and reported.statement else 0
        )
        return finding, _suppressed(finding, stmt_line, directives, ignored_here)

    for reported in held:  # module constants that another module may use as decisions
        finding, suppressed = placed(reported)
        if not suppressed:
            result.exports.append(finding)
    for reported in shown_here:  # only shown here: a decision if another module refers to it
        finding, suppressed = placed(reported)
        if suppressed:
            result.suppressed += 1
        else:
            result.shown.append(finding)
    for reported in kept:
        finding, suppressed = placed(reported)
        if suppressed:
            result.suppressed += 1
        else:
            result.findings.append(finding)
    result.findings.sort(key=lambda f: (f.line, f.column, f.rule_id))
    return result


def all_positions(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    """libcst's PositionProvider for every node: one code-generation pass, no extra visit."""
    try:
        provider = PositionProvider()
        provider._gen_impl(module)  # noqa: SLF001 - what MetadataWrapper.resolve runs, minus a visit
        return provider._computed  # noqa: SLF001
    except (AttributeError, TypeError):  # a libcst whose internals moved
        return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)


# Nodes whose position _literal_positions computes; anything else takes all_positions.
_POSITIONED = subclasses_of(
    cst.BaseNumber, cst.BaseString, cst.Name, cst.UnaryOperation, cst.BinaryOperation,
    cst.BooleanOperation, cst.Comparison, cst.List, cst.Tuple, cst.Set, cst.Dict, cst.Call,
    cst.Attribute, cst.Subscript,
)  # fmt: skip
_NUMBERS = subclasses_of(cst.BaseNumber)
_KEYWORD_NAMES = frozenset({"True", "False", "None"})
_NO_TEXT = subclasses_of(cst.SimpleWhitespace, cst.Newline)
_NEWLINE = re.compile(r"\r\n?|\n")


class _Lost(Exception):
    """The text walk lost its place (never expected): fall back to libcst's positions."""


class _Found(Exception):
    """Every wanted leaf has its offset."""


class _TextCursor:
    """Offsets of a tree's text leaves in its source text, found left to right.

    Leaves are numbers, strings, f-string pieces, comments and the names True, False and None.
    Between two leaves the source holds only whitespace, punctuation, keywords and other names,
    none of which can contain a quote, a `#`, or a digit that does not follow a letter: so a
    leaf's first occurrence after the previous leaf is the leaf itself (names are matched as whole
    words, numbers only where no identifier character precedes them). The walk also notes the
    indentation libcst's code generation would be at when it reaches each of `holders`.
    """

    def __init__(
        self,
        text: str,
        wanted: set[int] | None,
        holders: set[int] = frozenset(),  # type: ignore[assignment]
        default_indent: str = "    ",
    ) -> None:
        self.text = text
        self.at = 0
        self.wanted = wanted  # None: stop at the first leaf
        self.offsets: dict[int, int] = {}
        self.holders = holders
        self.default_indent = default_indent
        self.indents: list[str] = []
        self.indents_at: dict[int, tuple[str, ...]] = {}

    def run(self, node: cst.CSTNode) -> dict[int, int]:
        with contextlib.suppress(_Found):
            self._go(node)
        return self.offsets

    def _go(self, node: cst.CSTNode) -> None:
        kind = type(node)
        if kind in _NO_TEXT:
            return
        if id(node) in self.holders:
            self.indents_at[id(node)] = tuple(self.indents)
        if kind is cst.Name:
            for paren in node.lpar:
                self._go(paren)
            if node.value in _KEYWORD_NAMES:
                self._seek(node, node.value, word=True)
            for paren in node.rpar:
                self._go(paren)
        elif kind in _NUMBERS or kind is cst.SimpleString:
            for paren in node.lpar:
                self._go(paren)
            self._seek(node, node.value, number=kind in _NUMBERS)
            for paren in node.rpar:
                self._go(paren)
        elif kind is cst.Comment or kind is cst.FormattedStringText:
            self._seek(node, node.value)
        elif kind is cst.FormattedString:
            for paren in node.lpar:
                self._go(paren)
            self._seek(node, node.start)
            for part in node.parts:
                self._go(part)
            self._seek(None, node.end)
            for paren in node.rpar:
                self._go(paren)
        elif kind is cst.IndentedBlock or kind is cst.Match:
            # the indentation a block's statements (a match's cases) are written at
            indent = self.default_indent if node.indent is None else node.indent
            pushed = False
            for name in child_fields(node):
                if not pushed and (kind is cst.IndentedBlock or name == "cases"):
                    self.indents.append(indent)
                    pushed = True
                value = getattr(node, name)
                for child in value if isinstance(value, tuple | list) else (value,):
                    if type(child) in _NODE_CLASSES:
                        self._go(child)
            if pushed:
                self.indents.pop()
        else:
            for child in children(node):
                self._go(child)

    def _seek(
        self, node: cst.CSTNode | None, token: str, *, number: bool = False, word: bool = False
    ) -> None:
        if not token:
            return
        text = self.text
        size = len(token)
        at = text.find(token, self.at)
        while at >= 0 and (
            ((number or word) and at > 0 and _identifier_char(text[at - 1]))
            or (word and _identifier_char(text[at + size : at + size + 1]))
        ):
            at = text.find(token, at + 1)
        if at < 0:
            raise _Lost
        self.at = at + size
        if node is None:
            return
        if self.wanted is None:
            self.offsets[id(node)] = at
            raise _Found
        if id(node) in self.wanted:
            self.offsets[id(node)] = at
            self.wanted.discard(id(node))
            if not self.wanted:
                raise _Found


def _identifier_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_")


def _code_in_place(
    module: cst.Module, node: cst.CSTNode, indents: tuple[str, ...]
) -> tuple[str, CodeRange]:
    """The code of `node` as it stands in the module (at that indentation), and its range in it."""
    provider = PositionProvider()
    state = PositionProvidingCodegenState(
        default_indent=module.default_indent,
        default_newline=module.default_newline,
        provider=provider,
    )
    state.indent_tokens = list(indents)
    node._codegen(state)  # noqa: SLF001 - what code_for_node runs, with the indentation set
    return "".join(state.tokens), provider._computed[node]  # noqa: SLF001


def _literal_positions(
    module: cst.Module, source: str, nodes: Sequence[cst.CSTNode]
) -> dict[cst.CSTNode, CodeRange] | None:
    """PositionProvider's ranges of `nodes` (expressions), without generating the module's code.

    A node's code is a slice of the source. Its first leaf (a number, a string...) is found in
    the source by one left-to-right search over the module, and in the node's own code by the
    same search; the difference places the code, which is then checked against the source, and
    libcst's range of the node inside its own code is shifted there. None when a node cannot be
    placed so (the caller then asks libcst for every position).
    """
    first: dict[int, tuple[cst.CSTNode, int]] = {}  # id(node) -> (node, id(its first leaf))
    for node in nodes:
        if type(node) not in _POSITIONED:
            return None
        if id(node) not in first:
            try:
                leaf = _TextCursor(_source(node), None).run(node)
            except _Lost:
                return None
            if not leaf:
                return None
            first[id(node)] = (node, next(iter(leaf)))
    cursor = _TextCursor(
        source, {leaf for _node, leaf in first.values()}, set(first), module.default_indent
    )
    try:
        found = cursor.run(module)
    except (_Lost, RecursionError):
        return None
    starts = [0] + [m.end() for m in _NEWLINE.finditer(source)]
    out: dict[cst.CSTNode, CodeRange] = {}
    for key, (node, leaf) in first.items():
        indents = cursor.indents_at.get(key)
        if indents is None or leaf not in found:
            return None
        try:
            code, inner = _code_in_place(module, node, indents)
            at = _TextCursor(code, None).run(node).get(leaf)
        except (_Lost, AttributeError, TypeError, KeyError):
            return None
        if at is None:
            return None
        begin = found[leaf] - at
        if begin < 0 or not source.startswith(code, begin):
            return None
        line = bisect_right(starts, begin)
        column = begin - starts[line - 1]
        out[node] = CodeRange(_shift(inner.start, line, column), _shift(inner.end, line, column))
    return out


def _shift(position: CodePosition, line: int, column: int) -> CodePosition:
    """A position inside a node's own code, moved to where that code starts (line, column)."""
    if position.line == 1:
        return CodePosition(line, column + position.column)
    return CodePosition(line + position.line - 1, position.column)


def _suppressed(
    finding: Finding, stmt_line: int, directives: dict[int, set[str]], path_ignores: set[str]
) -> bool:
    keys = {"*", str(finding.category), finding.rule_id}
    if path_ignores & keys:
        return True
    return any(directives.get(line, set()) & keys for line in {finding.line, stmt_line})
