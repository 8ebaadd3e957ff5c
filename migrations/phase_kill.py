"""Phase 4: kill-score levels come from the policy.

`kill_score >= 0.65` and `kill_score >= K_CLOSE_THRESHOLD` (a module constant, plain or behind an
environment default, whose name says kill/close threshold) become `kill_due(kill_score, symbol)`:
true only when the policy has a threshold for the symbol and the score reached it. Without a
threshold there is no kill decision: the skip is logged and the exchange-side stop stays the
backstop. Graded levels map by name (`keys.kill_level_key`): a panic level closes everything, as
the close threshold does, so it is `kill_due` too; a reduce or warn level is the policy's
`kill_reduce_threshold` (`reached(...)`), and a reduce fraction its `kill_reduce_frac`. A function
that compares but has no symbol in scope gets a keyword-only `symbol: str | None = None`
parameter, and calls to it where a symbol is in scope pass it; a caller that does not is logged as
a skip (fail closed). The constants are removed once unused.
"""

from __future__ import annotations

import libcst as cst

from audit.finding import Category, Finding
from migrations.base import DeadCode, PolicyCodemod, code, q
from migrations.keys import kill_level_key, words
from migrations.phase_harvest import HarvestFromPolicy

_REACHED = (cst.GreaterThanEqual, cst.GreaterThan)


class KillFromPolicy(PolicyCodemod):
    PHASE = "kill"
    DESCRIPTION = "Kill-score close thresholds come from the policy."
    CATEGORIES = frozenset({Category.KILL_SCORE})
    CANNOT = (
        "kill constants whose name says neither close/panic, reduce/warn nor a reduce fraction",
        "comparisons of something that is not named as a kill score",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dead = DeadCode(self)

    def binding_key(self, name: str) -> str | None:
        return kill_level_key(name)

    @classmethod
    def selects(cls, finding: Finding) -> bool:
        return super().selects(finding) and not HarvestFromPolicy.selects(finding)

    def unhandled_reason(self, finding: Finding) -> str:
        if finding.rule_id in ("constant", "env-default"):
            return (
                "a kill constant whose name says neither close/panic, reduce/warn nor a reduce "
                "fraction: no policy key to look up"
            )
        return super().unhandled_reason(finding)

    def visit_Module(self, node: cst.Module) -> None:
        super().visit_Module(node)
        self.dead.record(node)

    def _level(self, node: cst.BaseExpression) -> str | None:
        """The policy key of a kill-level binding read here (`KILL_SCORE_PANIC`, `self.X`)."""
        b = self.bindings
        if isinstance(node, cst.Name):
            found = b.module.get(node.value)
        elif isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            base = node.value.value
            owner = b.class_stack[-1] if base in ("self", "cls") and b.class_stack else base
            found = b.classes.get(owner, {}).get(node.attr.value)
        else:
            found = None
        if found is None or found.key not in ("kill_threshold", "kill_reduce_threshold"):
            return None
        found.reads += 1
        return found.key

    def leave_Comparison(
        self, original_node: cst.Comparison, updated_node: cst.Comparison
    ) -> cst.BaseExpression:
        if len(original_node.comparisons) != 1 or self.scope.node is None:
            return updated_node
        comp = original_node.comparisons[0]
        if not isinstance(comp.operator, _REACHED):
            return updated_node
        finding = self.target(comp.comparator)
        key = self._level(comp.comparator)
        if key is None and (finding is None or finding.rule_id != "comparison"):
            return updated_node
        left_words = words(code(original_node.left))
        if key is None and "kill" not in left_words:
            self.refuse(finding, "compares something other than a kill score")
            return updated_node
        sym = self.symbol_here() or self.inject_param("symbol", "str")
        self.mark_resolved(finding)
        if key in (None, "kill_threshold"):
            return self.accessor_call("kill_due", code(updated_node.left), sym)
        return self.accessor_call("reached", q(key), code(updated_node.left), sym)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return self.dead.sweep(super().leave_Module(original_node, updated_node))
