"""Where a literal flows: into an order or a risk call (a trading decision) or only into display.

Names alone cannot tell `leverage = pos.get("leverage", 10)` that only labels a copied position on
a chart from the same line in an order router. This module follows a literal forward through one
module's def-use chains: assignments to local names, `self.` attributes and module globals, calls
to functions of the same module (argument to parameter, `return` to the call site), arithmetic and
wrapping calls, and `if` tests (a comparison gates what its branch does). A path ends at a sink:

- *trading*: a call that places, sizes or protects an order (`create_order`, `set_leverage`,
  `open_position`...) or a keyword that sizes or prices one (`quantity=`, `stop_price=`);
- *display*: logging, printing, f-strings, charts and rendering;
- *plumbing*: HTTP queries and data fetches (`requests.get`, `fetch_ohlcv`, `limit=` of a query);
- *open*: the value leaves what one module can see (no use, an attribute read elsewhere, a
  function with no caller here). Open paths keep a finding: only a literal whose every path ends
  in display or plumbing is dropped.

The pass is cheap (one traversal, only for files that already have candidate findings) and never
raises: any path longer than the budget counts as open.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import libcst as cst

from audit.finding import AuditResult, Category, Finding
from audit.vocabulary import DISPLAY_CALL_WORDS, words
from audit.walk import subclasses_of, walk

TRADING = "trading"
DISPLAY = "display"
PLUMBING = "plumbing"
OPEN = "open"
# open only because other modules may import the name (`LEVERAGE = 10` at module level, read
# here only by a log line): a finding kept when another module refers to it (audit.imports)
EXPORTED = "exported"

# Words of a callee that place, size or protect an order. Display words are checked first, so
# `render_position` or `log_order` are display.
_TRADING_CALL_WORDS = frozenset(
    {
        "order", "orders", "leverage", "position", "positions", "margin", "buy", "sell", "trade",
        "trades", "hedge", "flatten", "liquidate", "kelly", "stoploss", "takeprofit", "bracket",
        "notional", "harvest", "trailing",
    }
)  # fmt: skip
# Words that place or size an order only in trading code (`reduce_state` in a statistics module,
# `stop()` of a server, `get_size()` of a widget are not): they count when the file is trading code.
_TRADING_CALL_WORDS_IN_CONTEXT = frozenset(
    {
        "enter", "execute", "reduce", "stop", "tp", "sl", "trail", "scale", "sizing", "size",
        "risk", "governor", "approve", "review", "allocate", "allocation", "long", "short",
    }
)  # fmt: skip
_TRADING_KEYWORDS = frozenset(
    {
        "qty", "quantity", "amount", "size", "leverage", "stop_price", "stopprice", "stop_loss",
        "take_profit", "price", "notional", "size_usd", "size_usdt", "position_size", "sl", "tp",
        "trigger_price", "activation_price", "callback_rate", "reduce_only",
    }
)  # fmt: skip
# Names of what is made for a reader: a container filled with labels (`summary["trend"] =
# "UPTREND"`) or a function returning one (`get_indicator_summary()`) with no caller here.
_DISPLAY_RESULT_WORDS = frozenset(
    {"summary", "summaries", "report", "reports", "describe", "description", "overview", "digest"}
)
_PLUMBING_CALL_WORDS = frozenset(
    {
        "requests", "httpx", "aiohttp", "session", "urlopen", "urlencode", "request", "fetch",
        "download", "klines", "kline", "ohlcv", "candles", "history", "historical", "sleep",
        "paginate", "page", "cache", "redis", "sql", "query", "read_csv", "read_parquet",
        "to_csv", "get", "post",
    }
)  # fmt: skip
# Words of a keyword that sizes, prices or protects an order (`sl_pct=`, `lever=`, `tp_sz=`).
_TRADING_KEYWORD_WORDS = frozenset(
    {"sl", "tp", "stop", "leverage", "lever", "qty", "sz", "notional", "margin", "stoploss",
     "takeprofit"}
)  # fmt: skip
_PLUMBING_KEYWORDS = frozenset(
    {"limit", "page_size", "per_page", "interval", "timeout", "start_time", "end_time", "params"}
)
# Wrappers the value passes through unchanged in meaning.
_PASS_THROUGH = frozenset(
    {"float", "int", "Decimal", "str", "abs", "round", "min", "max", "clip", "clamp", "bool"}
)
_PURE_BUILTINS = frozenset(
    {
        "len", "sum", "min", "max", "abs", "round", "float", "int", "str", "bool", "list", "dict",
        "tuple", "set", "sorted", "reversed", "enumerate", "zip", "range", "isinstance", "any",
        "all", "map", "filter", "iter", "next", "repr", "hash", "id", "type", "getattr",
        "hasattr", "divmod", "pow",
    }
)  # fmt: skip
_LOOKUPS = frozenset({"get", "getattr", "pop", "setdefault", "getenv"})
_MAX_VISITS = 400  # nodes one flow search may visit before it gives up (not a finding)
_EARLY_EXIT = (cst.Return, cst.Raise, cst.Continue, cst.Break)


@dataclass(frozen=True, slots=True)
class Step:
    """One hop of a path: the node it passes through and what happens there."""

    node: cst.CSTNode
    what: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where a literal ends up: `kind` is trading, display, plumbing or open; `path` shows how."""

    kind: str
    path: tuple[Step, ...] = ()
    ends: tuple[str, ...] = ()  # every distinct end kind met

    @property
    def display_only(self) -> bool:
        """Every path ends in display or plumbing: the literal decides nothing that trades."""
        return bool(self.ends) and set(self.ends) <= {DISPLAY, PLUMBING}

    @property
    def shown_unless_imported(self) -> bool:
        """Display or plumbing here, and open only to the modules that may import the name."""
        return EXPORTED in self.ends and set(self.ends) <= {DISPLAY, PLUMBING, EXPORTED}


@dataclass(frozen=True, slots=True)
class _Hop:
    """What consumes one node's value, summarised for the search (built once per node).

    `ends`: the first end of each kind, in order (a trading end, if any, is the last: the search
    stops there). `flows`: what the value flows into next, in order: chunks `(nodes, skip, step)`
    (every node of a shared list but `skip`, each reached by `step`) and nested hops (parts
    shared by many nodes, such as the calls of a function that an early exit gates).
    `count`: how many consumers the hop summarises (0: nothing consumes the value).
    """

    ends: tuple[tuple[str, Step], ...] = ()
    flows: tuple = ()
    count: int = 0


_NO_HOP = _Hop()


def _summarise(entries: Iterable[tuple[str, object, Step | None]]) -> _Hop:
    """One hop from consumer entries: ('flow', node, step), ('flows', (nodes, skip), step),
    ('hop', a _Hop, None) or (end kind, None, step)."""
    ends: list[tuple[str, Step]] = []
    kinds: set[str] = set()
    flows: list = []
    count = 0
    for kind, nxt, step in entries:
        if kind == "flow":
            flows.append(((nxt,), None, step))
            count += 1
        elif kind == "flows":
            nodes, skip = nxt  # type: ignore[misc]
            flows.append((nodes, skip, step))
            count += 1
        elif kind == "hop":
            count += nxt.count  # type: ignore[union-attr]
            for end_kind, end_step in nxt.ends:  # type: ignore[union-attr]
                if end_kind == TRADING:
                    return _Hop((*ends, (TRADING, end_step)), (), count)
                if end_kind not in kinds:
                    kinds.add(end_kind)
                    ends.append((end_kind, end_step))
            if nxt.flows:  # type: ignore[union-attr]
                flows.append(nxt)
        else:
            count += 1
            if kind == TRADING:
                return _Hop((*ends, (TRADING, step)), (), count)  # type: ignore[arg-type]
            if kind not in kinds:
                kinds.add(kind)
                ends.append((kind, step))  # type: ignore[arg-type]
    return _Hop(tuple(ends), tuple(flows), count)


def _unlink(link: tuple | None) -> tuple[Step, ...]:
    """A path kept as a linked list `(step, previous)` (sharing its prefix), as a tuple."""
    steps: list[Step] = []
    while link is not None:
        steps.append(link[0])
        link = link[1]
    return tuple(reversed(steps))


@dataclass
class _Func:
    node: cst.FunctionDef
    params: list[str]
    bound: set[str] = field(default_factory=set)
    returns: list[cst.Return] = field(default_factory=list)


# Syntax that carries no value flow: whitespace, punctuation, operators, imports, decorators.
_SKIP = subclasses_of(
    cst.Comment, cst.SimpleWhitespace, cst.ParenthesizedWhitespace, cst.TrailingWhitespace,
    cst.EmptyLine, cst.Newline, cst.Comma, cst.Dot, cst.Colon, cst.Semicolon, cst.AssignEqual,
    cst.LeftParen, cst.RightParen, cst.LeftSquareBracket, cst.RightSquareBracket,
    cst.LeftCurlyBrace, cst.RightCurlyBrace, cst.BaseBinaryOp, cst.BaseBooleanOp,
    cst.BaseCompOp, cst.BaseUnaryOp, cst.BaseAugOp, cst.Import, cst.ImportFrom, cst.Decorator,
    cst.Annotation, cst.FormattedStringText, cst.Pass,
)  # fmt: skip


# `type(node) in set` instead of isinstance on libcst's abstract classes (ABCMeta is slow).
_IF = subclasses_of(cst.If)
_SMALL_STATEMENT = subclasses_of(cst.BaseSmallStatement)
_CALL = subclasses_of(cst.Call)
_SCOPES = subclasses_of(cst.FunctionDef, cst.ClassDef, cst.Lambda)
_FUNCTION = subclasses_of(cst.FunctionDef)
_NAME = subclasses_of(cst.Name)
_ATTRIBUTE = subclasses_of(cst.Attribute)
_RETURN = subclasses_of(cst.Return)
_BINDS = subclasses_of(cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor)
_WITH_ITEM = subclasses_of(cst.WithItem)


class _Indexer(cst.CSTVisitor):
    """One walk: parents, name uses by scope, functions by name, calls by callee name."""

    def __init__(self) -> None:
        super().__init__()
        self.parent: dict[int, cst.CSTNode] = {}
        self.stack: list[cst.CSTNode] = []
        self.funcs: list[_Func] = []
        self.func_of: dict[int, _Func | None] = {}
        self.by_name: dict[str, list[_Func]] = defaultdict(list)
        self.calls: dict[str, list[cst.Call]] = defaultdict(list)
        self.name_uses: list[tuple[_Func | None, cst.Name]] = []
        self.attr_uses: dict[str, list[cst.Attribute]] = defaultdict(list)
        self.module_bound: set[str] = set()
        # preorder numbers: the calls and statements inside a subtree are a range, found by
        # bisection instead of a walk (libcst's `children` is costly on large files)
        self.count = 0
        self.pre: dict[int, int] = {}
        self.post: dict[int, int] = {}
        self.boundary: dict[int, int] = {}  # innermost def, class or lambda around a node
        self.defs: list[int] = [0]
        self.call_seq: list[tuple[int, cst.Call]] = []
        self.stmt_seq: list[tuple[int, cst.CSTNode]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        kind = type(node)
        if kind in _SKIP:
            return False
        if kind in _IF and len(self.stack) <= 1 and _is_main_guard(node.test):
            return False  # a `__main__` demo is not the program's flow (the scanner skips it too)
        key = id(node)
        if self.stack:
            self.parent[key] = self.stack[-1]
        self.count += 1
        self.pre[key] = self.count
        self.boundary[key] = self.defs[-1]
        if kind in _SMALL_STATEMENT:
            self.stmt_seq.append((self.count, node))
        elif kind in _CALL:
            self.call_seq.append((self.count, node))
        if kind in _SCOPES:
            self.defs.append(key)
        current = self.funcs[-1] if self.funcs else None
        if kind in _FUNCTION:
            params = [
                p.name.value
                for p in (
                    *node.params.posonly_params,
                    *node.params.params,
                    *node.params.kwonly_params,
                )
            ]
            func = _Func(node, params, set(params))
            self.by_name[node.name.value].append(func)
            self.funcs.append(func)
            current = func
        elif kind in _NAME:
            self.name_uses.append((current, node))
        elif kind in _ATTRIBUTE:
            self.attr_uses[node.attr.value].append(node)
        elif kind in _CALL:
            callee = _dotted(node.func)
            if callee:
                self.calls[callee.rsplit(".", 1)[-1]].append(node)
        elif kind in _RETURN:
            if current is not None:
                current.returns.append(node)
        elif kind in _BINDS:
            for name in _target_names(node.target):
                (current.bound if current else self.module_bound).add(name)
        elif kind in _WITH_ITEM and node.asname is not None:
            for name in _target_names(node.asname.name):
                (current.bound if current else self.module_bound).add(name)
        self.func_of[key] = current
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if not self.stack or self.stack[-1] is not original_node:
            return  # a skipped `__main__` block
        self.stack.pop()
        self.post[id(original_node)] = self.count
        kind = type(original_node)
        if kind in _SCOPES:
            self.defs.pop()
        if kind in _FUNCTION:
            self.funcs.pop()


class FlowIndex:
    """Def-use facts of one parsed module, and the forward search over them."""

    def __init__(self, module: cst.Module, *, trading_file: bool = True) -> None:
        """`trading_file`: whether the file is trading code (then `stop()`, `size()` count too)."""
        self._trading_words = (
            _TRADING_CALL_WORDS | _TRADING_CALL_WORDS_IN_CONTEXT
            if trading_file
            else _TRADING_CALL_WORDS
        )
        indexer = _Indexer()
        walk(module, indexer.on_visit, indexer.on_leave, _SKIP)
        self._parent = indexer.parent
        self._func_of = indexer.func_of
        self._by_name = indexer.by_name
        self._calls = indexer.calls
        self._attr_uses = indexer.attr_uses
        self._module_bound = indexer.module_bound
        self._pre, self._post, self._boundary = indexer.pre, indexer.post, indexer.boundary
        self._call_seq, self._stmt_seq = indexer.call_seq, indexer.stmt_seq
        self._call_keys = [k for k, _ in indexer.call_seq]
        self._stmt_keys = [k for k, _ in indexer.stmt_seq]
        self._gates: dict[int, list] = {}
        self._trading_funcs: dict[str, str] = {}
        self._name_uses = indexer.name_uses
        self._uses_by_scope: dict[tuple[int, str], list[cst.Name]] | None = None
        self._hops: dict[int, _Hop] = {}
        self._loads: dict[str, tuple[list[cst.Attribute], set[int]]] = {}
        self._param_hops: dict[tuple, _Hop] = {}
        self._body_gates: dict[int, tuple[_Hop, _Hop]] = {}

    @property
    def _uses(self) -> dict[tuple[int, str], list[cst.Name]]:
        """Reads of each name by its defining scope, built on the first search that needs it."""
        if self._uses_by_scope is None:
            uses: dict[tuple[int, str], list[cst.Name]] = defaultdict(list)
            for func, name in self._name_uses:
                if not self._is_load(name):
                    continue
                owner = func
                while owner is not None and name.value not in owner.bound:
                    parent = self._enclosing_func(owner.node)
                    owner = parent
                uses[(id(owner.node) if owner else 0, name.value)].append(name)
            self._uses_by_scope = uses
        return self._uses_by_scope

    # -- public -------------------------------------------------------------------------------
    def verdict(self, literal: cst.CSTNode) -> Verdict:
        """Follow `literal` forward; a trading end wins, else display-only, else open.

        A breadth-first search over at most _MAX_VISITS nodes. What consumes each node is worked
        out once per index (`_hop`), and a hop hands the search its uses as shared lists that are
        read lazily, so one search costs its visits, not the number of uses of each name it meets.
        """
        start = Step(literal, "the literal")
        queue: deque[tuple[Iterator[tuple[cst.CSTNode, Step]], tuple | None]] = deque(
            [(iter(((literal, start),)), None)]
        )
        seen: set[int] = set()
        started: set = set()
        kinds: set[str] = set()
        first_end: tuple | None = None
        first_open: tuple | None = None
        budget = _MAX_VISITS
        hops = self._hops
        while queue:
            # the front of the queue is read to its end before the next: breadth first
            items, previous = queue.popleft()
            for node, step in items:
                key = id(node)
                if key in seen:
                    continue
                seen.add(key)
                budget -= 1
                if budget <= 0:
                    spent = (Step(node, "search budget spent"), (step, previous))
                    kinds.add(OPEN)
                    first_end = first_end or spent
                    first_open = first_open or spent
                    queue.clear()
                    break
                hop = hops.get(key) or self._hop(node)
                for kind, end_step in hop.ends:
                    end = (end_step, (step, previous))
                    kinds.add(kind)
                    if kind == TRADING:
                        return Verdict(TRADING, _unlink(end), tuple(sorted(kinds)))
                    first_end = first_end or end
                    if first_open is None and kind in (OPEN, EXPORTED):
                        first_open = end
                if hop.flows:
                    queue.append((self._flow_items(hop, started), (step, previous)))
        if first_end is None:
            return Verdict(OPEN, (start, Step(literal, "no use of it in this module")), (OPEN,))
        opened = OPEN in kinds or EXPORTED in kinds
        kind = OPEN if opened else (DISPLAY if DISPLAY in kinds else PLUMBING)
        return Verdict(kind, _unlink(first_open or first_end), tuple(sorted(kinds)))

    def _hop(self, node: cst.CSTNode) -> _Hop:
        hop = self._hops.get(id(node))
        if hop is None:
            hop = self._hops[id(node)] = _summarise(self._consumers(node))
        return hop

    def _flow_items(self, hop: _Hop, started: set) -> Iterator[tuple[cst.CSTNode, Step]]:
        """The nodes `hop` flows into, in order. A shared list (or nested hop) that this search
        already began is skipped: the search reads its queue in order, so every node of it was
        met already, and a node is visited once."""
        for part in hop.flows:
            if type(part) is _Hop:
                if id(part) not in started:
                    started.add(id(part))
                    yield from self._flow_items(part, started)
                continue
            nodes, skip, step = part
            if len(nodes) > 1:
                key = (id(nodes), id(skip))
                if key in started:
                    continue
                started.add(key)
            for node in nodes:
                if node is not skip:
                    yield node, step

    # -- one hop --------------------------------------------------------------------------------
    def _consumers(self, node: cst.CSTNode) -> Iterable[tuple[str, cst.CSTNode | None, Step]]:
        """What consumes the value of `node`: ('flow', next node, step) or (end kind, None, step)."""
        child = node
        keyword = ""
        parent = self._parent.get(id(child))
        while parent is not None:
            if isinstance(parent, cst.Arg):
                keyword = parent.keyword.value if parent.keyword else ""
            elif isinstance(parent, cst.Call):
                if child is parent.func:
                    return []
                return self._into_call(parent, child, keyword)
            elif isinstance(parent, cst.FormattedStringExpression):
                return [(DISPLAY, None, Step(parent, "formatted into text"))]
            elif isinstance(parent, cst.Assign | cst.AnnAssign | cst.AugAssign):
                if child is getattr(parent, "target", None):
                    return []
                return self._into_targets(parent)
            elif isinstance(parent, cst.Param):
                return self._into_param(parent)
            elif isinstance(parent, cst.Return):
                return self._into_callers(parent)
            elif isinstance(parent, cst.If | cst.While) and child is parent.test:
                return self._gate(parent)
            elif isinstance(parent, cst.IfExp) and child is parent.test:
                child = parent
                parent = self._parent.get(id(child))
                continue
            elif isinstance(parent, cst.Subscript) and child is not parent.value:
                return [(PLUMBING, None, Step(parent, "used as an index"))]
            elif isinstance(parent, cst.DictElement) and child is parent.key:
                return []
            elif isinstance(parent, cst.For | cst.CompFor) and child is parent.iter:
                return self._into_names(_target_names(parent.target), parent)
            elif isinstance(parent, cst.Expr | cst.Assert | cst.Raise | cst.Del):
                return [(OPEN, None, Step(parent, "a statement that uses no result"))]
            elif isinstance(parent, cst.BaseSmallStatement | cst.BaseCompoundStatement):
                return [(OPEN, None, Step(parent, "leaves the expression"))]
            child = parent
            parent = self._parent.get(id(child))
        return []

    def _into_call(self, call: cst.Call, child: cst.CSTNode, keyword: str) -> list:
        callee = _dotted(call.func)
        short = callee.rsplit(".", 1)[-1]
        seq = set(words(callee))
        here = f"passed to {callee or 'a call'}()" + (f" as {keyword}=" if keyword else "")
        if short in _LOOKUPS and _is_fallback_arg(call, child, short):
            return [("flow", call, Step(call, f"the fallback of {callee}()"))]
        if seq & DISPLAY_CALL_WORDS:
            return [(DISPLAY, None, Step(call, here))]
        if seq & self._trading_words and short not in _PASS_THROUGH:
            return [(TRADING, None, Step(call, here))]
        if keyword and (
            keyword.lower() in _TRADING_KEYWORDS or set(words(keyword)) & _TRADING_KEYWORD_WORDS
        ):
            return [(TRADING, None, Step(call, here))]
        if keyword and keyword.lower() in _PLUMBING_KEYWORDS:
            return [(PLUMBING, None, Step(call, here))]
        # the builtins by their own name only (`true_range.ewm()` is not `range()`)
        if (
            seq & _PLUMBING_CALL_WORDS or short in ("open", "range")
        ) and short not in _PASS_THROUGH:
            return [(PLUMBING, None, Step(call, here))]
        index = -1
        if not keyword:
            index = next((i for i, a in enumerate(call.args) if a is child or a.value is child), -1)
        into = self._into_params(callee, keyword, index, isinstance(call.func, cst.Attribute))
        if into.count:
            return [("hop", into, None)]
        return [("flow", call, Step(call, here))]

    def _into_params(self, callee: str, keyword: str, index: int, method_call: bool) -> _Hop:
        """The parameters of this module's functions named like `callee` that an argument at
        `keyword` (or position `index`) binds, once per such call shape: a module with thousands
        of methods of one name and thousands of calls to them pays for the pairs only once."""
        key = (callee, keyword, index, method_call)
        hop = self._param_hops.get(key)
        if hop is None:
            here = f"passed to {callee or 'a call'}()" + (f" as {keyword}=" if keyword else "")
            out: list = []
            for func in self._by_name.get(callee.rsplit(".", 1)[-1], []):
                param = _param_for(func, keyword, index, method_call)
                if param:
                    out += self._into_names([param], func.node, func, f"{here}, parameter {param}")
            hop = self._param_hops[key] = _summarise(out)
        return hop

    def _into_targets(self, stmt: cst.Assign | cst.AnnAssign | cst.AugAssign) -> list:
        if isinstance(stmt, cst.Assign):
            targets = [t.target for t in stmt.targets]
        else:
            targets = [stmt.target]
        out: list = []
        for target in targets:
            if isinstance(target, cst.Attribute):
                out += self._into_attribute(target, stmt)
            elif isinstance(target, cst.Subscript):
                holder = _dotted(target.value)
                if set(words(holder)) & _DISPLAY_RESULT_WORDS:
                    out.append((DISPLAY, None, Step(stmt, f"stored in {holder}, a report")))
                else:
                    out.append(
                        (OPEN, None, Step(stmt, f"stored in {_dotted(target) or 'a container'}"))
                    )
            else:
                out += self._into_names(_target_names(target), stmt)
        return out

    def _attribute_loads(self, name: str) -> tuple[list[cst.Attribute], set[int]]:
        """The reads of `.name` anywhere in the module (and their ids), listed once per name."""
        found = self._loads.get(name)
        if found is None:
            loads = [a for a in self._attr_uses.get(name, []) if self._is_load(a)]
            found = self._loads[name] = (loads, {id(a) for a in loads})
        return found

    def _into_attribute(self, target: cst.Attribute, stmt: cst.CSTNode) -> list:
        name = target.attr.value
        here = Step(stmt, f"stored in .{name}")
        loads, load_ids = self._attribute_loads(name)
        out: list = []
        if len(loads) > (id(target) in load_ids):  # `self.n += 1` reads its own target
            out.append(("flows", (loads, target), here))
        if not name.startswith("_"):
            out.append((OPEN, None, Step(stmt, f"stored in .{name}, readable outside this module")))
        return out

    def _into_names(
        self,
        names: Iterable[str],
        where: cst.CSTNode,
        func: _Func | None = None,
        what: str = "",
    ) -> list:
        owner = func if func is not None else self._func_of.get(id(where))
        out: list = []
        for name in names:
            scope = owner
            while scope is not None and name not in scope.bound:
                scope = self._enclosing_func(scope.node)
            key = (id(scope.node) if scope else 0, name)
            uses = self._uses.get(key, [])
            step = Step(where, what or f"bound to {name}")
            flows: list = []
            if uses and (len(uses) > 1 or uses[0] is not where):
                flows.append(("flows", (uses, where), step))
            if scope is None:  # a module or class attribute: `self.name`, `cls.name` reads too
                loads = self._attribute_loads(name)[0]
                if loads:
                    flows.append(("flows", (loads, None), step))
            if not flows:
                out.append((OPEN, None, Step(where, f"bound to {name}, not read in this module")))
            elif scope is None and not name.startswith("_"):
                public = f"bound to {name}, which other modules can import"
                out.append((EXPORTED, None, Step(where, public)))
            out += flows
        return out

    def _into_param(self, param: cst.Param) -> list:
        func_node = self._parent_of_type(param, cst.FunctionDef | cst.Lambda)
        if not isinstance(func_node, cst.FunctionDef):
            return []
        func = self._func_of.get(id(func_node))
        if func is None or func.node is not func_node:
            return []
        return self._into_names([param.name.value], param, func, f"default of {param.name.value}")

    def _into_callers(self, ret: cst.Return) -> list:
        func_node = self._parent_of_type(ret, cst.FunctionDef)
        if func_node is None:
            return []
        name = func_node.name.value
        calls = self._calls.get(name, [])
        out: list = [("flows", (calls, None), Step(ret, f"returned by {name}()"))] if calls else []
        if not calls and set(words(name)) & _DISPLAY_RESULT_WORDS:
            out.append((DISPLAY, None, Step(ret, f"returned by {name}(), a report")))
        elif not name.startswith("_"):
            out.append(
                (OPEN, None, Step(ret, f"returned by {name}(), callable from other modules"))
            )
        return out

    def _gate(self, stmt: cst.If | cst.While) -> list:
        """A comparison in an `if` decides what its branches do: follow that."""
        done = self._gates.get(id(stmt))
        if done is None:
            done = self._gates[id(stmt)] = self._gate_uncached(stmt)
        return done

    def _gate_uncached(self, stmt: cst.If | cst.While) -> list:
        branches = [stmt.body]
        if isinstance(stmt, cst.If) and stmt.orelse is not None:
            branches.append(stmt.orelse)
        body: tuple[_Hop, _Hop] | None = None
        if any(isinstance(s, _EARLY_EXIT) for b in branches for s in self._statements_in(b)):
            # an early return or raise gates everything after the `if` as well
            func = self._parent_of_type(stmt, cst.FunctionDef)
            if func is not None:
                body = self._body_gate(func)
        out: list = []
        for branch in branches:
            for call in self._calls_in(branch):
                out += self._into_call_as_gate(call)
        if body is not None:
            out.append(("hop", body[0], None))
        trading = self._first_trading(out)
        if trading is not None:
            return [(TRADING, None, Step(trading.node, f"gates {trading.what}"))]
        for branch in branches:
            out += self._gated_statements(branch)
        if body is not None:
            out.append(("hop", body[1], None))
        if not sum(e[1].count if e[0] == "hop" else 1 for e in out):
            return [(OPEN, None, Step(stmt, "gates a branch with no call"))]
        return out

    def _body_gate(self, func: cst.FunctionDef) -> tuple[_Hop, _Hop]:
        """What an early exit in `func` gates: its calls and its statements, once per function."""
        found = self._body_gates.get(id(func))
        if found is None:
            calls = [e for call in self._calls_in(func.body) for e in self._into_call_as_gate(call)]
            statements = self._gated_statements(func.body)
            found = self._body_gates[id(func)] = (_summarise(calls), _summarise(statements))
        return found

    @staticmethod
    def _first_trading(entries: list) -> Step | None:
        """The step of the first trading end among gate entries (a call's name: `passed to ...`)."""
        for kind, nxt, step in entries:
            if kind == TRADING:
                return Step(step.node, step.what.removeprefix("passed to "))
            if kind == "hop" and nxt.ends and nxt.ends[-1][0] == TRADING:
                last = nxt.ends[-1][1]
                return Step(last.node, last.what.removeprefix("passed to "))
        return None

    def _gated_statements(self, branch: cst.CSTNode) -> list:
        out: list = []
        for small in self._statements_in(branch):
            if isinstance(small, cst.Return):
                out += self._into_callers(small)
            elif isinstance(small, cst.Assign | cst.AnnAssign | cst.AugAssign):
                out += [
                    (kind, nxt, Step(step.node, f"gates {step.what}"))
                    for kind, nxt, step in self._into_targets(small)
                ]
        return out

    def _into_call_as_gate(self, call: cst.Call) -> list:
        callee = _dotted(call.func)
        if callee in _PURE_BUILTINS:
            return []  # `len(values)` in a branch does nothing a gate could decide
        seq = set(words(callee))
        here = f"passed to {callee}()"
        if seq & DISPLAY_CALL_WORDS:
            return [(DISPLAY, None, Step(call, here))]
        if seq & self._trading_words:
            return [(TRADING, None, Step(call, here))]
        if seq & _PLUMBING_CALL_WORDS:
            return [(PLUMBING, None, Step(call, here))]
        inner = self._trading_call_in(callee.rsplit(".", 1)[-1])
        if inner:
            return [(TRADING, None, Step(call, f"passed to {callee}(), which calls {inner}()"))]
        return [(OPEN, None, Step(call, here))]

    def _trading_call_in(self, name: str) -> str:
        """The first order or risk call made by a function of this module named `name`, or ''."""
        found = self._trading_funcs.get(name)
        if found is None:
            found = ""
            for func in self._by_name.get(name, []):
                for inner in self._calls_in(func.node.body):
                    if set(words(_dotted(inner.func))) & self._trading_words:
                        found = _dotted(inner.func)
                        break
                if found:
                    break
            self._trading_funcs[name] = found
        return found

    def _inside(self, node: cst.CSTNode, keys: list[int], seq: list) -> list:
        """The items of `seq` inside `node`'s subtree, not inside a nested def, class or lambda."""
        start, end = self._pre.get(id(node)), self._post.get(id(node))
        if start is None or end is None:
            return []
        owner = self._boundary.get(id(node), 0)
        if isinstance(node, cst.FunctionDef | cst.ClassDef | cst.Lambda):
            owner = id(node)
        lo, hi = bisect_right(keys, start), bisect_right(keys, end)
        return [item for key, item in seq[lo:hi] if self._boundary[id(item)] == owner]

    def _calls_in(self, node: cst.CSTNode) -> list[cst.Call]:
        return self._inside(node, self._call_keys, self._call_seq)

    def _statements_in(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        return self._inside(node, self._stmt_keys, self._stmt_seq)

    # -- helpers ---------------------------------------------------------------------------------
    def _is_load(self, node: cst.CSTNode) -> bool:
        parent = self._parent.get(id(node))
        if isinstance(parent, cst.AssignTarget | cst.Param | cst.FunctionDef | cst.ClassDef):
            return False
        if isinstance(parent, cst.AnnAssign | cst.AugAssign) and parent.target is node:
            return isinstance(parent, cst.AugAssign)
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return False
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            return False
        if isinstance(parent, cst.ImportAlias | cst.For | cst.CompFor) and (
            getattr(parent, "target", None) is node or isinstance(parent, cst.ImportAlias)
        ):
            return False
        if isinstance(parent, cst.Tuple | cst.List | cst.Element):
            return not self._inside_target(node)
        if isinstance(node, cst.Attribute):
            return not self._inside_target(node)
        return True

    def _inside_target(self, node: cst.CSTNode) -> bool:
        child, parent = node, self._parent.get(id(node))
        while isinstance(parent, cst.Tuple | cst.List | cst.Element | cst.StarredElement):
            child, parent = parent, self._parent.get(id(parent))
        if isinstance(parent, cst.AssignTarget):
            return True
        if isinstance(parent, cst.AnnAssign | cst.For | cst.CompFor):
            return parent.target is child
        return False

    def _enclosing_func(self, node: cst.CSTNode) -> _Func | None:
        parent = self._parent.get(id(node))
        return self._func_of.get(id(parent)) if parent is not None else None

    def _parent_of_type(self, node: cst.CSTNode, kind: type) -> cst.CSTNode | None:
        parent = self._parent.get(id(node))
        while parent is not None and not isinstance(parent, kind):
            parent = self._parent.get(id(parent))
        return parent


def _dotted(node: cst.CSTNode | None) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr.value}" if base else node.attr.value
    if isinstance(node, cst.Call):
        return _dotted(node.func)
    if isinstance(node, cst.Subscript):
        return _dotted(node.value)
    return ""


def _param_for(func: _Func, keyword: str, index: int, method_call: bool) -> str:
    """The parameter of `func` an argument binds: by keyword, else by position `index`."""
    if keyword:
        return keyword if keyword in func.params else ""
    if index < 0:
        return ""
    params = func.params
    if params and params[0] in ("self", "cls") and method_call:
        params = params[1:]
    return params[index] if index < len(params) else ""


def _is_main_guard(test: cst.BaseExpression) -> bool:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    sides = (test.left, test.comparisons[0].comparator)
    return any(isinstance(x, cst.Name) and x.value == "__name__" for x in sides)


def _is_fallback_arg(call: cst.Call, child: cst.CSTNode, short: str) -> bool:
    """`d.get(k, DEFAULT)`, `getattr(o, n, DEFAULT)`: the value becomes the call's result."""
    at = 2 if short == "getattr" else 1
    for index, arg in enumerate(call.args):
        if arg is child or arg.value is child:
            name = arg.keyword.value if arg.keyword else ""
            return name == "default" or (not name and index == at)
    return False


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, cst.Tuple | cst.List):
        return [n for e in target.elements for n in _target_names(e.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def render_path(verdict: Verdict, positions: dict, source_lines: list[str], path: str) -> list[str]:
    """The path as lines a person reads: `file:line  code  <- what happens there`."""
    out = [f"{path}: the value is {_VERDICT_WORDS[verdict.kind]}"]
    for step in verdict.path:
        pos = positions.get(step.node)
        line = pos.start.line if pos is not None else 0
        code = source_lines[line - 1].strip() if 0 < line <= len(source_lines) else ""
        out.append(f"  {path}:{line}: {code}    <- {step.what}")
    return out


_VERDICT_WORDS = {
    TRADING: "a trading decision: it reaches an order, leverage, size or stop",
    DISPLAY: "display only: every path ends in logging, text or a chart",
    PLUMBING: "plumbing only: every path ends in a query limit or data fetch",
    OPEN: "flagged by its name: its path leaves this module",
}


def explain(
    source: str, line: int, column: int, path: str = "<source>", *, trading_file: bool = True
) -> list[str]:
    """The def-use path of the literal at (line, column) of `source`, as lines for `--explain`.

    Raises ValueError when no literal starts there (the finding no longer matches the file).
    """
    from audit.scan import all_positions  # the scanner imports this module

    module = cst.parse_module(source)
    # libcst's PositionProvider without MetadataWrapper's extra visit of every node
    positions = all_positions(module)
    literal = _literal_at(positions, line, column)
    if literal is None:
        raise ValueError(f"no value at {path}:{line}:{column + 1}; is the file changed since?")
    verdict = FlowIndex(module, trading_file=trading_file).verdict(literal)
    return render_path(verdict, positions, source.splitlines(), path)


_LITERALS = (
    cst.Integer,
    cst.Float,
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.UnaryOperation,
    cst.BinaryOperation,
    cst.List,
    cst.Tuple,
    cst.Set,
    cst.Name,
)


def _literal_at(positions: dict, line: int, column: int) -> cst.CSTNode | None:
    best: cst.CSTNode | None = None
    best_size = None
    for node, pos in positions.items():
        if not isinstance(node, _LITERALS):
            continue
        if pos.start.line != line or pos.start.column != column:
            continue
        size = (pos.end.line - pos.start.line, pos.end.column)
        if best_size is None or size > best_size:
            best, best_size = node, size
    return best


def select_finding(findings: Iterable[Finding], query: str) -> Finding:
    """The finding named by `query`: a fingerprint (or its first 6+ characters) or PATH:LINE[:COL].

    Raises LookupError with a one-line reason when none or several match.
    """
    query = query.strip()
    items = [f for f in findings if not f.is_parse_error]
    hits = [f for f in items if len(query) >= 6 and f.fingerprint.startswith(query)]
    if not hits:
        path, _, rest = query.rpartition(":")
        line_text, column_text = rest, ""
        if path.count(":") and path.rsplit(":", 1)[1].isdigit():
            path, line_text, column_text = *path.rsplit(":", 1), rest
        if not line_text.isdigit() or (column_text and not column_text.isdigit()):
            raise LookupError(f"--explain {query}: give a fingerprint or PATH:LINE[:COLUMN]")
        line = int(line_text)
        hits = [f for f in items if f.path == path.removeprefix("./") and f.line == line]
        if column_text:
            hits = [f for f in hits if f.column + 1 == int(column_text)]
    if not hits:
        raise LookupError(f"--explain {query}: no finding there (run the audit to list them)")
    if len({(f.path, f.line, f.column) for f in hits}) > 1:
        raise LookupError(f"--explain {query}: {len(hits)} findings match; add :COLUMN")
    return hits[0]


def explain_finding(result: AuditResult, query: str) -> list[str]:
    """`qctl audit --explain`: the finding named by `query` and the def-use path behind it."""
    finding = select_finding(result.findings, query)
    source_path = Path(result.root) / finding.path
    try:
        source = source_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LookupError(f"--explain {query}: cannot read {finding.path}: {exc}") from None
    head = (
        f"{finding.path}:{finding.line}:{finding.column + 1}: [{finding.rule_id}] {finding.message}"
    )
    if finding.category is Category.SECRET or finding.rule_id == "safety-limit":
        return [head, "  decided by the name and the value alone (no flow is followed)"]
    try:
        lines = explain(
            source,
            finding.line,
            finding.column,
            finding.path,
            trading_file=_trading_path(finding.path),
        )
    except ValueError as exc:
        raise LookupError(f"--explain {query}: {exc}") from None
    return [head, *lines]


def _trading_path(path: str) -> bool:
    """The same test the scanner makes: do the file's name or folders speak of trading?"""
    from audit.vocabulary import Vocabulary

    parts = PurePosixPath(path)
    return Vocabulary.load().is_trading_context([parts.stem, *parts.parent.parts[-3:]])
