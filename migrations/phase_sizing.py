"""Phase 1: leverage and size fallbacks become policy look-ups guarded by a fail-closed skip.

Rewrites, where an audit finding points:
- `leverage = 10.0`, `size_usd = 200.0`, `if lev is None: lev = 10`: a look-up of the policy value
  for the symbol in scope, followed, in the same block, by `if x is None: <skip>`;
- `x = x or 10`: `x = x or <look-up>` and the same guard;
- `d.get("k", 150.0)`, `getattr(o, "k", 1.5)`, `os.getenv("K", "10")` inside a function:
  `given_or_skip(d.get("k"), "k")` (a missing value skips instead of defaulting);
- `def f(size_fraction=0.02)`: the default becomes None and the function starts with the
  look-up (or the skip) when the caller gave nothing;
- `return 5.0` in a fallback branch (`if x is None:`, the `else:` of `is not None`, `except:`);
- `client.set_leverage(symbol, 10)`: the policy leverage for that symbol.
A size in money (`*_usd`) becomes equity x the policy's size_pct, so it needs the account equity
in scope. Without a symbol (or equity) a fallback branch becomes a plain skip.

Heuristics (rules rather than fallbacks) are replaced as a whole:
- a function that decides leverage or size by rules (`choose_leverage(vol, confidence)`) returns
  the policy value for the symbol instead (given a `symbol` parameter when it has none);
- a clamp function (`return min(max(lev, 1.0), 20.0)`) clamps to the hard limits and autonomy
  zone instead of the hand-written bounds;
- a factor applied to a decided size (`tier_size_multiplier(lev)`, `confidence_size_scale(c)`)
  is dropped from the products that use it in its file, and removed once unused: the policy's
  size is the decision.
Decision values bound at import time (class attributes, settings fields, module constants, with or
without an environment default) are looked up where they are read (`migrations.bindings`); a
maximum number of open positions is the policy's universe count. Other forms are listed as
unhandled with the reason.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.metadata import PositionProvider

from audit.finding import Category, Finding
from migrations.base import (
    START_UP,
    DeadCode,
    PolicyCodemod,
    code,
    is_docstring,
    is_none_test,
    is_not_none_test,
    optional_param,
    q,
    with_param_guards,
)
from migrations.keys import NOTIONAL, is_scale_name, positions_key, sizing_key, words

_FALLBACK_HINT = ("fallback", "default")
_RULE_FORMS = ("comparison", "weight", "clamp", "return")
# words of a heuristic's parameter, not of the decision itself (LEVERAGE_TARGET_VOL)
_INPUT_WORDS = {
    *("vol", "volatility", "target", "confidence", "conf", "threshold", "weight", "score"),
    *("min", "minimum", "floor", "liquidation", "liq", "fee", "fees", "volume", "slippage"),
}
# a heuristic function's name ends with the value it decides (`choose_leverage`, `leverage_for`)
_NAME_TAIL = {"for", "from", "of", "pct", "percent", "fraction", "frac", "usd", "usdt", "x"}
_DECISION_WORDS = {"leverage", "lev", "size", "sizing"}
_BOUND_WORDS = {"min", "max", "limit", "cap", "floor", "ceiling", "bound", "lo", "hi"}
_NUMBERS = {"float", "int", "Decimal", "float | None", "int | None", "Optional[float]"}
_CLAMPS = ("min", "max")


class SizingFallbacks(PolicyCodemod):
    PHASE = "sizing"
    DESCRIPTION = "Leverage and size fallbacks become fail-closed policy look-ups."
    CATEGORIES = frozenset({Category.LEVERAGE, Category.POSITION_SIZING})
    CANNOT = (
        "import-time values still read at import time, or in other files through objects whose "
        "class is not known",
        "heuristic rules inside functions that do not themselves return leverage or size, and "
        "factors used outside a product or from other files",
        "a size in money with no symbol in scope; with a symbol but no equity, the function "
        "is given `equity=` (its callers must pass it, else it skips)",
        "values in a command-line option's declaration (they run at program start)",
    )

    REASONS = {
        "constant": "a module or class constant is read at import time, where a skip has nowhere "
        "to go; replace its uses with policy look-ups by hand or declare it a safety limit",
        "comparison": "a rule of a heuristic (not a fallback); replace the heuristic by the "
        "policy value by hand",
        "weight": "a weight of a heuristic; the models decide leverage and size now",
        "clamp": "a clamp of a heuristic; the risk kernel and the autonomy zone bound values now",
        "return": "a return in a rule (not a fallback branch); replace the heuristic by hand",
        "field-default": "a settings field read at start-up has no symbol to look up; remove the "
        "setting or declare it a safety limit",
        "field-bound": "a validation bound of a settings field; the autonomy zone bounds values",
        "env-default": "read at import time (module or class level): a skip has nowhere to go",
        "call-arg": "a literal passed to a call that is not set_leverage, or no symbol in scope",
        "dict-value": "a value in a dict literal; no single policy key to look up",
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fallback_stmts: set[int] = set()
        self.dead = DeadCode(self, literals_only=True)
        self.scales: dict[str, list[Finding]] = {}  # factor heuristics whose uses are dropped

    def unhandled_reason(self, finding: Finding) -> str:
        return self.REASONS.get(finding.rule_id, super().unhandled_reason(finding))

    def binding_key(self, name: str) -> str | None:
        if _INPUT_WORDS & set(words(name)):
            return None
        return sizing_key(name) or positions_key(name)

    # -- heuristics -------------------------------------------------------------------------------
    def visit_Module(self, node: cst.Module) -> None:
        super().visit_Module(node)
        self.dead.record(node)
        repo, rel = self.repo, self.rel_path
        for stmt in node.body:
            if not isinstance(stmt, cst.FunctionDef) or not is_scale_name(stmt.name.value):
                continue
            found = self._rules_in(stmt)
            if not found:
                continue
            if repo is not None and repo.referenced_elsewhere(stmt.name.value, rel):
                for f in found:
                    self.refuse(
                        f,
                        f"{stmt.name.value}() scales a decided size and is called from other "
                        "files; drop it there and the policy's size is the decision",
                    )
                continue
            self.scales[stmt.name.value] = found

    def _rules_in(self, func: cst.FunctionDef, with_returns: bool = False) -> list[Finding]:
        """Selected findings inside `func` if they are rules: a comparison, weight or clamp, and
        no fallback assignment (a function with a fallback keeps its logic; only the fallback
        changes)."""
        pos = self.get_metadata(PositionProvider, func)
        found = [
            f for (line, _), f in self.targets.items() if pos.start.line <= line <= pos.end.line
        ]
        if any(f.rule_id not in _RULE_FORMS for f in found):
            return []
        # a return is a rule unless it sat in a fallback branch (those are resolved on the way)
        done = {id(f) for f in self.resolved}
        rules = [f for f in found if f.rule_id != "return" or id(f) not in done]
        return (
            found if any(f.rule_id != "return" for f in rules) or (with_returns and rules) else []
        )

    def _is_scale_call(self, node: cst.BaseExpression) -> bool:
        return (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Name)
            and node.func.value in self.scales
        )

    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BaseExpression:
        """`size * tier_size_multiplier(lev)` -> `size`: the policy's size is the decision."""
        if not isinstance(original_node.operator, cst.Multiply):
            return updated_node
        if self._is_scale_call(original_node.right):
            return updated_node.left
        if self._is_scale_call(original_node.left):
            return updated_node.right
        return updated_node

    def _heuristic(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef | None:
        """A function deciding leverage or size by rules, or clamping it by hand-written bounds:
        its body becomes the policy look-up (or the clamp to the hard limits)."""
        name = original.name.value
        if name in self.scales or not _returns_a_number(original) or not _decides(name):
            return None
        key = sizing_key(name)
        if key not in ("leverage", "size_pct"):
            return None
        found = self._rules_in(original, with_returns=True)
        if not found:
            return None
        limits = _data_limits(original)
        if limits:
            for f in found:
                self.refuse(
                    f,
                    f"{name}() also bounds the value by data ({', '.join(limits)}): replace its "
                    "rules by the policy value by hand and keep those bounds",
                )
            return None
        body = list(original.body.body)  # type: ignore[union-attr]
        doc = body[:1] if body and is_docstring(body[0]) else []
        rest = body[len(doc) :]
        clamped = _clamped_param(rest, self._resolve(self.scope).params)
        if clamped is not None:
            value = self.accessor_call("clamp", q(key), clamped)
            what = f"clamps to the hard limits and autonomy zone for {key}"
        else:
            sym = self.symbol_here() or self.inject_param("symbol", "str")
            value = self.accessor_call("policy_value_or_skip", q(key), sym)
            if original.returns is not None and code(original.returns.annotation) == "int":
                value = cst.Call(func=cst.Name("int"), args=[cst.Arg(value)])
            what = f"returns the policy's {key} for the symbol (its rules are gone)"
        self.mark_resolved(*found)
        self.note(f"{name}() {what}; its docstring and unused parameters may need a look")
        ret = cst.SimpleStatementLine([cst.Return(value=value)])
        return updated.with_changes(body=updated.body.with_changes(body=[*doc, ret]))

    # -- where fallbacks live -----------------------------------------------------------------
    def visit_If(self, node: cst.If) -> None:
        if is_none_test(node.test):
            self.fallback_stmts.update(id(s) for s in node.body.body)
        if isinstance(node.orelse, cst.Else) and is_not_none_test(node.test):
            self.fallback_stmts.update(id(s) for s in node.orelse.body.body)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self.fallback_stmts.update(id(s) for s in node.body.body)

    # -- look-ups -------------------------------------------------------------------------------
    def lookup(self, key: str, inject_equity: bool = False) -> cst.Call | None:
        sym = self.symbol_here()
        if sym is None:
            return None
        if key == NOTIONAL:
            equity = self.equity_here()
            if not equity and inject_equity and self.scope.node is not None:
                equity = self.inject_param("equity", "float")
                self.note(
                    f"{self.scope.node.name.value}() takes equity= now (the account equity, in "
                    "the quote currency): until its callers pass it, it sizes nothing (logged skip)"
                )
            if equity:
                self.note(
                    "a size in money is now a notional (equity x the policy's size_pct): check "
                    "the code that uses it does not treat it as margin"
                )
            return self.accessor_call("notional_usd", sym, equity) if equity else None
        return self.accessor_call("policy_value", q(key), sym)

    def _missing(self, key: str) -> str:
        if self.symbol_here() is None:
            return "no symbol in scope to look the policy value up, and not a fallback branch"
        return "a size in money needs the account equity in scope (equity x size_pct)"

    # -- statements -----------------------------------------------------------------------------
    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if len(original_node.body) != 1 or self.scope.node is None:
            return updated_node
        if self.at_start_up:  # a constructor: refuse what would be rewritten, with the reason
            small = original_node.body[0]
            value = getattr(small, "value", None)
            if isinstance(value, cst.BooleanOperation):
                value = value.right
            found = self.target(value) if value is not None else None
            if found is not None and found.rule_id in ("assign-fallback", "or-fallback"):
                self.refuse(found, START_UP)
            return updated_node
        small = original_node.body[0]
        if isinstance(small, cst.Return) and small.value is not None:
            return self._return(original_node, updated_node, small)
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            target, value = small.targets[0].target, small.value
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            target, value = small.target, small.value
        else:
            return updated_node
        or_form = isinstance(value, cst.BooleanOperation) and isinstance(value.operator, cst.Or)
        finding = self.target(value.right if or_form else value)  # type: ignore[union-attr]
        if finding is None or finding.rule_id not in ("assign-fallback", "or-fallback"):
            return updated_node
        name = target.attr.value if isinstance(target, cst.Attribute) else code(target)
        key = sizing_key(name) or sizing_key(finding.name)
        if key is None:
            self.refuse(finding, f"{name} maps to no policy key")
            return updated_node
        what = "size_pct" if key == NOTIONAL else key
        fallback = id(original_node) in self.fallback_stmts
        # a size in money written out in a decision (`position_size_usd = 200.0`) becomes
        # equity x size_pct even with no equity in scope: the function is given `equity=`
        new_value = self.lookup(key, inject_equity=not (fallback or or_form))
        line = updated_node.with_changes(trailing_whitespace=_clean(updated_node))
        if new_value is not None:
            guard = self.guard(code(target), what, self.symbol_here())
            if or_form:
                new_value = updated_node.body[0].value.with_changes(right=new_value)  # type: ignore[attr-defined]
            small_new = updated_node.body[0].with_changes(value=new_value)
            self.mark_resolved(finding)
            return cst.FlattenSentinel([line.with_changes(body=[small_new]), guard])  # type: ignore[list-item]
        if fallback or or_form:
            stmts = self.skip_statements(name, self.symbol_here())
            if stmts is None:
                return updated_node
            self.mark_resolved(finding)
            if or_form:  # keep `x = <given>`, skip when it is empty
                given = updated_node.body[0].value.left  # type: ignore[attr-defined]
                small_new = updated_node.body[0].with_changes(value=given)
                test = cst.parse_expression(f"not {code(target)}")
                block = cst.If(test=test, body=cst.IndentedBlock(body=stmts))
                if code(given) == code(target):  # `x = x or 10`: nothing left to assign
                    return block.with_changes(leading_lines=updated_node.leading_lines)
                return cst.FlattenSentinel([line.with_changes(body=[small_new]), block])
            first = stmts[0].with_changes(leading_lines=updated_node.leading_lines)
            return cst.FlattenSentinel([first, *stmts[1:]])
        self.refuse(finding, self._missing(key))
        return updated_node

    def _return(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine, ret: cst.Return
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        finding = self.target(ret.value)  # type: ignore[arg-type]
        if finding is None or finding.rule_id != "return":
            return updated
        if id(original) not in self.fallback_stmts:
            return updated  # listed with the generic reason for returns
        func = self.scope.node.name.value if self.scope.node else ""
        key = sizing_key(func) or sizing_key(finding.name)
        sym = self.symbol_here()
        if key is not None and key != NOTIONAL and sym is not None:
            value = self.accessor_call("policy_value_or_skip", q(key), sym)
            self.mark_resolved(finding)
            return updated.with_changes(body=[updated.body[0].with_changes(value=value)])
        stmts = self.skip_statements(key if key and key != NOTIONAL else func, sym)
        if stmts is None:
            return updated
        self.mark_resolved(finding)
        first = stmts[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel([first, *stmts[1:]])

    # -- calls ----------------------------------------------------------------------------------
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not original_node.args:
            return self.pass_symbol(original_node, updated_node)
        last = self.target(original_node.args[-1].value)
        if last is not None and last.rule_id in ("get-default", "env-default"):
            return self.drop_default(original_node, updated_node, last)
        return self.pass_symbol(original_node, self._set_leverage(original_node, updated_node))

    def _set_leverage(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        callee = original.func
        name = callee.attr.value if isinstance(callee, cst.Attribute) else code(callee)
        if "leverage" not in name.lower():
            return updated
        args = list(updated.args)
        for i, arg in enumerate(original.args):
            finding = self.target(arg.value)
            if finding is None or finding.rule_id != "call-arg":
                continue
            sym = self.symbol_here()
            if sym is None:
                self.refuse(finding, "no symbol in scope to look the leverage up")
                continue
            value: cst.BaseExpression = self.accessor_call(
                "policy_value_or_skip", q("leverage"), sym
            )
            if isinstance(arg.value, cst.Integer):
                value = cst.Call(func=cst.Name("int"), args=[cst.Arg(value)])
            args[i] = args[i].with_changes(value=value)
            self.mark_resolved(finding)
        return updated.with_changes(args=args)

    # -- parameter defaults ---------------------------------------------------------------------
    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel | cst.FlattenSentinel:
        replaced = self._heuristic(original_node, updated_node)
        if replaced is not None:
            updated_node = replaced
        else:
            updated_node = self._param_defaults(original_node, updated_node)
        return super().leave_FunctionDef(original_node, updated_node)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        module = super().leave_Module(original_node, updated_node)
        if self.scales:
            module = self._drop_scales(module)
        return self.dead.sweep(module)

    def _drop_scales(self, module: cst.Module) -> cst.Module:
        """Remove factor heuristics that nothing calls any more (their products were dropped)."""
        from migrations.bindings import _loads

        reads = _loads(module)
        body = []
        for stmt in module.body:
            name = stmt.name.value if isinstance(stmt, cst.FunctionDef) else None
            if name in self.scales and name not in reads:
                self.mark_resolved(*self.scales[name])
                self.removed.append(name)
                continue
            if name in self.scales:
                for f in self.scales[name]:
                    self.refuse(f, f"{name}() is still used outside a product; drop it by hand")
            body.append(stmt)
        return module.with_changes(body=body)

    def _param_defaults(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        guards: list[cst.BaseStatement] = []
        new_params = {}
        for param in [*original.params.params, *original.params.kwonly_params]:
            if param.default is None:
                continue
            finding = self.target(param.default)
            if finding is None or finding.rule_id != "param-default":
                continue
            name = param.name.value
            key = sizing_key(name) or sizing_key(finding.name)
            if key is None:
                self.refuse(finding, f"{name} maps to no policy key")
                continue
            what = "size_pct" if key == NOTIONAL else key
            skip = self.skip_statements(what, self.symbol_here())
            if skip is None:
                self.refuse(finding, START_UP)
                continue
            lookup = self.lookup(key)
            if lookup is not None:
                body: list[cst.BaseStatement] = [
                    cst.SimpleStatementLine(
                        [cst.Assign([cst.AssignTarget(cst.Name(name))], lookup)]
                    ),
                    cst.If(
                        test=cst.parse_expression(f"{name} is None"), body=cst.IndentedBlock(skip)
                    ),
                ]
            else:
                body = skip
            guards.append(
                cst.If(test=cst.parse_expression(f"{name} is None"), body=cst.IndentedBlock(body))
            )
            new_params[name] = optional_param(param, self.lazy_annotations)
            self.mark_resolved(finding)
        if not guards:
            return updated
        return with_param_guards(updated, new_params, guards)


def _decides(name: str) -> bool:
    """`choose_leverage`, `leverage_for`, `position_size_pct`: the name ends with the decision
    (not `run_leverage_simulator`, `_leverage_attempts`)."""
    ws = words(name)
    last = max((i for i, w in enumerate(ws) if w in _DECISION_WORDS), default=None)
    return last is not None and all(w in _NAME_TAIL for w in ws[last + 1 :])


def _data_limits(func: cst.FunctionDef) -> list[str]:
    """Bounds a heuristic takes from data rather than literals (`min(x, rules.max_leverage)`):
    exchange or account limits that must outlive the heuristic."""
    out: list[str] = []
    for call in m.findall(func.body, m.Call(func=m.Name("min") | m.Name("max"))):
        assert isinstance(call, cst.Call)
        for arg in call.args:
            value = arg.value
            if (
                isinstance(value, cst.Attribute)
                and _BOUND_WORDS & set(words(value.attr.value))
                and code(value) not in out
            ):
                out.append(code(value))
    return out


def _returns_a_number(func: cst.FunctionDef) -> bool:
    """Annotated as a number, or (unannotated) returns values none of which is a container."""
    if func.returns is not None:
        return code(func.returns.annotation) in _NUMBERS
    returns = [r for r in m.findall(func.body, m.Return()) if isinstance(r, cst.Return) and r.value]
    containers = (cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)
    return bool(returns) and not any(isinstance(r.value, containers) for r in returns)


def _clamped_param(stmts: list[cst.BaseStatement], params: list[str]) -> str | None:
    """`return min(max(lev, 1.0), 20.0)` (in any nesting of min/max with numbers): `lev`."""
    if len(stmts) != 1 or not isinstance(stmts[0], cst.SimpleStatementLine):
        return None
    ret = stmts[0].body[0] if len(stmts[0].body) == 1 else None
    if not isinstance(ret, cst.Return) or not isinstance(ret.value, cst.Call):
        return None
    inner: list[str] = []

    def walk(node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name):
            return node.func.value in _CLAMPS and all(walk(a.value) for a in node.args)
        if isinstance(node, cst.Name) and node.value in params:
            inner.append(node.value)
            return True
        if isinstance(node, cst.UnaryOperation):
            node = node.expression
        return isinstance(node, cst.Integer | cst.Float)

    return inner[0] if walk(ret.value) and len(inner) == 1 else None


def _clean(line: cst.SimpleStatementLine) -> cst.TrailingWhitespace:
    """Drop a trailing comment that describes the old fallback number."""
    ws = line.trailing_whitespace
    if ws.comment is not None and any(h in ws.comment.value.lower() for h in _FALLBACK_HINT):
        return ws.with_changes(comment=None, whitespace=cst.SimpleWhitespace(""))
    return ws
