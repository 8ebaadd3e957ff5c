"""Phase 2: hardcoded scoring weights, filters and core-symbol lists become the policy universe.

The models rank every symbol and publish the universe (and its count). So the function that
*selects* the universe in legacy code (a module-level function named `*universe*` that uses the
flagged lists, thresholds or weights, directly or through helpers) now returns the policy's
universe, or an empty one (trade nothing) when there is no valid policy. The constants and
helpers that only served it are then unused and are removed.
"""

from __future__ import annotations

import libcst as cst

from audit.finding import Category, Finding
from migrations.base import DeadCode, PolicyCodemod, code, defined_name, used_names

_LIST_TYPES = ("list", "List", "Sequence", "tuple", "Iterable")


class UniverseFromPolicy(PolicyCodemod):
    PHASE = "universe"
    DESCRIPTION = "Symbol lists, filters and scoring weights become the policy universe."
    CATEGORIES = frozenset({Category.SYMBOL_SELECTION})
    CANNOT = (
        "symbol lists, filters and weights used outside a module-level function named *universe*",
        "a universe function that returns something other than a list of symbols",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dead = DeadCode(self, functions=True)
        self.roots: set[str] = set()

    def unhandled_reason(self, finding: Finding) -> str:
        if finding.rule_id == "symbol-string":
            return (
                "a symbol written in a literal (a field default, a fallback dict), outside a "
                "`.get()` fallback and a universe function: which symbols trade is the policy "
                "universe's; by hand, make the field required or use qctl_policy.universe()"
            )
        if self.roots:
            return "still used outside the universe selection; replace it with qctl_policy.universe() by hand"
        return (
            "no universe-selecting function (a module-level function named *universe* that uses "
            "it); replace it with qctl_policy.universe() by hand"
        )

    def visit_Module(self, node: cst.Module) -> None:
        super().visit_Module(node)
        self.dead.record(node)
        defs = {defined_name(s): s for s in node.body if defined_name(s)}
        carriers = set(self.dead.carried)

        def reach(name: str, seen: set[str]) -> set[str]:
            for used in used_names(defs[name]) & set(defs):
                if used not in seen:
                    seen.add(used)
                    reach(used, seen)
            return seen

        candidates = {
            n
            for n, s in defs.items()
            if isinstance(s, cst.FunctionDef)
            and "universe" in n.lower()
            and (n in carriers or reach(n, set()) & carriers)
            and _returns_list(s)
        }
        called = (
            set().union(*(used_names(defs[c].body) for c in candidates)) if candidates else set()
        )
        self.roots = {c for c in candidates if c not in called}

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        """`state.get("symbol", "BTCUSDT")` in a function: a missing symbol skips."""
        if original_node.args and _is_lookup(original_node.func):
            last = self.target(original_node.args[-1].value)
            if last is not None and last.rule_id in ("get-default", "symbol-string", "symbols"):
                return self.drop_default(original_node, updated_node, last)
        return super().leave_Call(original_node, updated_node)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel | cst.FlattenSentinel:
        if len(self.scopes) == 2 and original_node.name.value in self.roots:
            updated_node = self._policy_universe(updated_node)
            self.mark_resolved(*self.dead.carried.pop(original_node.name.value, []))
        return super().leave_FunctionDef(original_node, updated_node)

    def _policy_universe(self, func: cst.FunctionDef) -> cst.FunctionDef:
        self.need_import()
        a = self.accessor
        doc = '"""The models\' ranked universe; empty (trade nothing) without a valid policy."""'
        body = [
            cst.parse_statement(doc),
            cst.parse_statement(f"symbols = {a}.universe()"),
            cst.parse_statement(f'if symbols is None:\n    {a}.skip("universe")\n    return []\n'),
            cst.parse_statement("return symbols"),
        ]
        return func.with_changes(body=func.body.with_changes(body=body))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        updated_node = super().leave_Module(original_node, updated_node)
        if not self.roots:
            return updated_node
        return self.dead.sweep(updated_node)


def _returns_list(func: cst.FunctionDef) -> bool:
    if func.returns is None:
        return True
    text = code(func.returns.annotation)
    return text.startswith(_LIST_TYPES)


def _is_lookup(func: cst.BaseExpression) -> bool:
    """`d.get`, `getattr`, `os.getenv`: a look-up whose last argument is a default."""
    name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
    return name in ("get", "getattr", "getenv")
