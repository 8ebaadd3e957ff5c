"""Phase 4: the kill-score close threshold comes from the policy.

`kill_score >= 0.65` and `kill_score >= K_CLOSE_THRESHOLD` (a module constant, plain or behind an
environment default, whose name says kill/close threshold) become `kill_due(kill_score, symbol)`:
true only when the policy has a threshold for the symbol and the score reached it. Without a
threshold there is no kill decision: the skip is logged and the exchange-side stop stays the
backstop. A function that compares but has no symbol in scope gets a keyword-only
`symbol: str | None = None` parameter, and calls to it where a symbol is in scope pass it; a caller
that does not is logged as a skip (fail closed). The constant is removed once unused.
Graded levels (warn, reduce, panic) and reduce fractions have no policy key and stay listed.
"""

from __future__ import annotations

import libcst as cst

from audit.finding import Category, Finding
from migrations.base import DeadCode, PolicyCodemod, code
from migrations.keys import kill_key, words
from migrations.phase_harvest import HarvestFromPolicy
from migrations.repo import RepoIndex

_REACHED = (cst.GreaterThanEqual, cst.GreaterThan)


class KillFromPolicy(PolicyCodemod):
    PHASE = "kill"
    DESCRIPTION = "Kill-score close thresholds come from the policy."
    CATEGORIES = frozenset({Category.KILL_SCORE})
    CANNOT = (
        "graded kill levels (warn, reduce, panic) and reduce fractions: the policy has one close "
        "threshold",
        "comparisons of something that is not named as a kill score",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dead = DeadCode(self)
        self.close_constants: set[str] = set()
        self.needs_symbol: set[int] = set()
        self.injected: set[str] = set()

    @classmethod
    def selects(cls, finding: Finding) -> bool:
        return super().selects(finding) and not HarvestFromPolicy.selects(finding)

    @classmethod
    def needs_visit(cls, rel: str, findings, repo: RepoIndex) -> bool:
        """Also files that call a function which now takes `symbol=`."""
        names = repo.names_by_file.get(rel, set())
        return super().needs_visit(rel, findings, repo) or bool(names & repo.optional_symbol_funcs)

    def unhandled_reason(self, finding: Finding) -> str:
        if finding.rule_id in ("constant", "env-default"):
            return (
                "a graded kill level or a reduce fraction: the policy decides one close "
                "threshold (kill_threshold), so there is no policy key for it"
            )
        return super().unhandled_reason(finding)

    def visit_Module(self, node: cst.Module) -> None:
        self.dead.record(node)
        for name, found in self.dead.carried.items():
            if kill_key(name) and all(f.rule_id in ("constant", "env-default") for f in found):
                self.close_constants.add(name)

    def leave_Comparison(
        self, original_node: cst.Comparison, updated_node: cst.Comparison
    ) -> cst.BaseExpression:
        if len(original_node.comparisons) != 1 or self.scope.node is None:
            return updated_node
        comp = original_node.comparisons[0]
        if not isinstance(comp.operator, _REACHED):
            return updated_node
        finding = self.target(comp.comparator)
        by_constant = (
            isinstance(comp.comparator, cst.Name) and comp.comparator.value in self.close_constants
        )
        if not by_constant and (finding is None or finding.rule_id != "comparison"):
            return updated_node
        left_words = words(code(original_node.left))
        if not by_constant and "kill" not in left_words:
            self.refuse(finding, "compares something other than a kill score")
            return updated_node
        sym = self.symbol_here()
        if sym is None:
            self.needs_symbol.add(id(self.scope.node))
            sym = "symbol"
        self.mark_resolved(finding)
        return self.accessor_call("kill_due", code(updated_node.left), sym)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel | cst.FlattenSentinel:
        if id(original_node) in self.needs_symbol:
            updated_node = _with_symbol_param(updated_node)
            self.injected.add(original_node.name.value)
            self.note(
                f"{original_node.name.value}() takes symbol= now: a caller that does not pass it "
                "gets no kill decision (logged skip)"
            )
        return super().leave_FunctionDef(original_node, updated_node)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        """Pass the symbol in scope to functions that now take `symbol=`."""
        func = original_node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
        repo_funcs = self.repo.optional_symbol_funcs if self.repo else set()
        if name not in repo_funcs | self.injected:
            return updated_node
        if any(a.keyword is not None and a.keyword.value == "symbol" for a in original_node.args):
            return updated_node
        if any(a.star for a in original_node.args):
            return updated_node
        sym = self.symbol_here()
        if sym is None or (self.scope.node is not None and self.scope.node.name.value == name):
            return updated_node
        args = list(updated_node.args)
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
        return updated_node.with_changes(args=args)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return self.dead.sweep(updated_node)


def _with_symbol_param(func: cst.FunctionDef) -> cst.FunctionDef:
    """Add `*, symbol: str | None = None` (or append it to the keyword-only parameters)."""
    names = {p.name.value for p in [*func.params.params, *func.params.kwonly_params]}
    if "symbol" in names:
        return func
    param = cst.Param(
        name=cst.Name("symbol"),
        annotation=cst.Annotation(cst.parse_expression("str | None")),
        default=cst.Name("None"),
        equal=cst.AssignEqual(),
    )
    params = func.params
    star = params.star_arg
    if isinstance(star, cst.MaybeSentinel):
        star = cst.ParamStar()
    return func.with_changes(
        params=params.with_changes(star_arg=star, kwonly_params=[*params.kwonly_params, param])
    )
