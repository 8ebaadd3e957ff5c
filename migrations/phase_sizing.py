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
in scope. Without a symbol (or equity) a fallback branch becomes a plain skip; other forms are
listed as unhandled with the reason.
"""

from __future__ import annotations

import libcst as cst

from audit.finding import Category, Finding
from migrations.base import PolicyCodemod, code, is_none_test, is_not_none_test, q
from migrations.keys import NOTIONAL, sizing_key

_FALLBACK_HINT = ("fallback", "default")


class SizingFallbacks(PolicyCodemod):
    PHASE = "sizing"
    DESCRIPTION = "Leverage and size fallbacks become fail-closed policy look-ups."
    CATEGORIES = frozenset({Category.LEVERAGE, Category.POSITION_SIZING})
    CANNOT = (
        "module/class constants, settings fields and env defaults read at import time: no symbol "
        "and nowhere to skip to",
        "heuristics (comparisons, weights, clamps, returns outside a fallback branch): rules, not "
        "fallbacks; replace them by the policy by hand",
        "a size in money where no account equity is in scope (outside a fallback branch)",
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

    def unhandled_reason(self, finding: Finding) -> str:
        return self.REASONS.get(finding.rule_id, super().unhandled_reason(finding))

    # -- where fallbacks live -----------------------------------------------------------------
    def visit_If(self, node: cst.If) -> None:
        if is_none_test(node.test):
            self.fallback_stmts.update(id(s) for s in node.body.body)
        if isinstance(node.orelse, cst.Else) and is_not_none_test(node.test):
            self.fallback_stmts.update(id(s) for s in node.orelse.body.body)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self.fallback_stmts.update(id(s) for s in node.body.body)

    # -- look-ups -------------------------------------------------------------------------------
    def lookup(self, key: str) -> cst.Call | None:
        sym = self.symbol_here()
        if sym is None:
            return None
        if key == NOTIONAL:
            equity = self.equity_here()
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
        if self.scope.node is None or len(original_node.body) != 1:
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
        new_value = self.lookup(key)
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
            return updated_node
        last = self.target(original_node.args[-1].value)
        if last is not None and last.rule_id in ("get-default", "env-default"):
            return self.drop_default(original_node, updated_node, last)
        return self._set_leverage(original_node, updated_node)

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
        updated_node = self._param_defaults(original_node, updated_node)
        return super().leave_FunctionDef(original_node, updated_node)

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
            new_params[name] = _optional(param)
            self.mark_resolved(finding)
        if not guards:
            return updated
        params = updated.params.with_changes(
            params=[new_params.get(p.name.value, p) for p in updated.params.params],
            kwonly_params=[new_params.get(p.name.value, p) for p in updated.params.kwonly_params],
        )
        body = list(updated.body.body)  # type: ignore[union-attr]
        at = 1 if body and _is_docstring(body[0]) else 0
        body[at:at] = guards
        return updated.with_changes(params=params, body=updated.body.with_changes(body=body))


def _optional(param: cst.Param) -> cst.Param:
    """`x: float = 0.02` -> `x: float | None = None`."""
    annotation = param.annotation
    if annotation is not None and "None" not in code(annotation.annotation):
        annotation = annotation.with_changes(
            annotation=cst.BinaryOperation(
                left=annotation.annotation, operator=cst.BitOr(), right=cst.Name("None")
            )
        )
    return param.with_changes(default=cst.Name("None"), annotation=annotation)


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _clean(line: cst.SimpleStatementLine) -> cst.TrailingWhitespace:
    """Drop a trailing comment that describes the old fallback number."""
    ws = line.trailing_whitespace
    if ws.comment is not None and any(h in ws.comment.value.lower() for h in _FALLBACK_HINT):
        return ws.with_changes(comment=None, whitespace=cst.SimpleWhitespace(""))
    return ws
