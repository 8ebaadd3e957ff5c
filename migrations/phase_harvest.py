"""Phase 3: the harvest ladder comes from the policy, with no literal default anywhere.

A *ladder class* is a dataclass whose fields map to the policy's harvest keys (`HarvestTheta` with
`T1_R`, `T2_R`, `T3_R`, `lock_R`, `kill_threshold`). Then:
- `HarvestTheta()` (relying on field defaults) and `HarvestTheta(T1_R=2.0, ...)`: with a symbol in
  scope, every mapped field becomes `policy_value_or_skip(key, symbol)`; without one, the call
  becomes a skip (`raise PolicySkip` as a statement, `fail(...)` inside an expression) - a
  missing value means skip, never `HarvestTheta()`;
- a module-level ladder constant used in a function is treated like the call it holds, and is
  removed once nothing uses it;
- `params.get("T1_R", 2.0)`, `getattr(cfg, "lock_R", 1.5)`: `given_or_skip(params.get("T1_R"), ...)`;
  a switch that is on when unset (`params.get("use_scale_out", True)`) likewise skips when unset;
- `def check_scale_out(pos, price, scale_r=0.5)`: the default becomes None and the function starts
  with the policy's first rung (`harvest_t1_r`) for the symbol in scope when the caller gave none;
- `close_qty = pos.qty / 2` in a scale-out: `pos.qty * <the policy's close share of that rung>`;
- once every constructor call in the repository passes a mapped field, its dataclass default is
  removed (the field becomes required), so a forgotten bare call fails loudly instead of trading.
- a module constant for a partial-close share (`T1_CLOSE_FRACTION`) or a holding time is read
  from the policy where it is used (`migrations.bindings`), and removed once unused.
Holding times (`max_hold_sec`, `max_age_sec`) are the policy's `max_hold_sec`. Fields with no
policy key keep their defaults and are listed as unhandled.
"""

from __future__ import annotations

import libcst as cst

from audit.finding import Category, Finding
from migrations.base import (
    DeadCode,
    PolicyCodemod,
    code,
    optional_param,
    q,
    with_param_guards,
)
from migrations.keys import close_frac_key, ladder_key, scale_out_close_frac_key
from migrations.repo import LadderClass, RepoIndex, ladder_calls

_LADDER_RULES = ("field-default", "call-arg", "get-default")


class HarvestFromPolicy(PolicyCodemod):
    PHASE = "harvest"
    ATOMIC_BINDINGS = True  # never a ladder half hardcoded, half from the policy
    DESCRIPTION = "Harvest ladders come from the policy; a missing value skips."
    CATEGORIES = frozenset({Category.HARVEST})
    CANNOT = (
        "fields and constants with no policy key (names that say neither a rung, lock, partial-"
        "close share nor a holding time)",
        "ladders built at import time with no symbol in scope, and calls with *args/**kwargs",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dead = DeadCode(self)
        # the skips this pass built, by id and kept alive: a freed node's id can be reused by
        # any later node, which would then be taken for a skip
        self.failed: dict[int, cst.BaseExpression] = {}
        self.constants: dict[str, tuple[LadderClass, cst.Call]] = {}

    @classmethod
    def selects(cls, finding: Finding) -> bool:
        """Harvest findings, and the kill threshold where it sits in a ladder or a `.get`."""
        if finding.is_parse_error:
            return False
        if finding.category is Category.HARVEST:
            return True
        return finding.category is Category.KILL_SCORE and finding.rule_id in _LADDER_RULES

    @classmethod
    def needs_visit(cls, rel: str, findings, repo: RepoIndex) -> bool:
        """Also files that only call a ladder class (a bare `HarvestTheta()` has no literal)."""
        names = repo.names_by_file.get(rel, set())
        return super().needs_visit(rel, findings, repo) or bool(names & set(repo.ladders))

    def unhandled_reason(self, finding: Finding) -> str:
        if finding.rule_id == "field-default":
            return "no policy key for this field, or a constructor call still relies on it"
        if finding.rule_id == "constant":
            return "a module constant with no policy key (not part of the ladder)"
        if finding.rule_id == "call-arg":
            return "a ladder built at import time or with a field that has no policy key"
        if finding.rule_id == "assign-fallback":
            return "a harvest value assigned in a rule (not a fallback): replace it by hand"
        if finding.rule_id == "param-default":
            return "a parameter default with no policy key, or no symbol in scope to look it up"
        if finding.rule_id == "fraction":
            return (
                "a share that is not a partial close of a rung (no `close` share name, not in a "
                "scale-out function), or no symbol in scope"
            )
        return super().unhandled_reason(finding)

    # -- ladder classes and constants ---------------------------------------------------------------
    def ladder(self, func: cst.BaseExpression) -> LadderClass | None:
        repo = self.repo or RepoIndex()
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
        return repo.ladders.get(name) if isinstance(name, str) else None

    def binding_key(self, name: str) -> str | None:
        return close_frac_key(name) or ladder_key(name)

    def visit_Module(self, node: cst.Module) -> None:
        super().visit_Module(node)
        self.dead.record(node)
        for stmt in node.body:
            if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
                small = stmt.body[0]
                if (
                    isinstance(small, cst.Assign)
                    and len(small.targets) == 1
                    and isinstance(small.targets[0].target, cst.Name)
                    and isinstance(small.value, cst.Call)
                    and (ladder := self.ladder(small.value.func)) is not None
                ):
                    self.constants[small.targets[0].target.value] = (ladder, small.value)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        """A ladder constant used inside a function: the policy ladder for the symbol, or skip."""
        found = self.constants.get(original_node.value)
        if found is None or self.scope.node is None:
            return super().leave_Name(original_node, updated_node)
        ladder, call = found
        unmapped = [a for a in call.args if a.keyword and a.keyword.value not in ladder.keys]
        return self._ladder_call(call.with_changes(args=unmapped), ladder, [])

    # -- constructor calls ----------------------------------------------------------------------
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if original_node.args:
            last = self.target(original_node.args[-1].value)
            if last is not None and last.rule_id in ("get-default", "env-default", "bool-switch"):
                return self.drop_default(original_node, updated_node, last)
        ladder = self.ladder(original_node.func)
        if ladder is None:
            return self.pass_symbol(original_node, updated_node)
        if self.scope.node is None and self.symbol_here() is None:
            return updated_node  # a module-level ladder without a symbol: nowhere to skip to
        inside = self._targets_within(original_node)
        return self._ladder_call(updated_node, ladder, inside)

    def _ladder_call(
        self, call: cst.Call, ladder: LadderClass, inside: list[Finding]
    ) -> cst.BaseExpression:
        if any(a.star for a in call.args):
            return call  # `*args` / `**kwargs`: which fields it passes is not known here
        passed = _passed(call, ladder)
        literal = {
            name for name, arg in passed.items() if name in ladder.keys and _is_number(arg.value)
        }
        missing = [f for f in ladder.keys if f not in passed]
        if not literal and not missing:
            return call
        sym = self.symbol_here()
        if sym is None:
            func = self.scope.node.name.value if self.scope.node else "<module>"
            self.note(
                f"{func}(): where it built a harvest ladder from fixed values or dataclass "
                "defaults it now skips (no symbol in scope to look the policy up); pass it the "
                "symbol if it must trade there"
            )
            self.mark_resolved(*inside)
            self.need_import()
            failed = cst.parse_expression(f"{self.accessor}.fail({q('harvest ladder')})")
            self.failed[id(failed)] = failed
            return failed
        by_arg = {id(arg): name for name, arg in passed.items()}
        args = []
        for arg in call.args:
            name = by_arg.get(id(arg))
            if name in literal:
                arg = arg.with_changes(value=self._value(ladder.keys[name], sym))
            args.append(code(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip())
        for field_name in missing:
            value = code(self._value(ladder.keys[field_name], sym))
            args.append(f"{field_name}={value}")
        new_call = self.call_text(code(call.func), args)
        mapped_literals = {id(passed[n].value) for n in literal}
        self.mark_resolved(
            *[f for f in inside if f.name in ladder.keys or id(f) in mapped_literals]
        )
        return new_call

    # -- scale-out defaults and shares ----------------------------------------------------------
    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel | cst.FlattenSentinel:
        updated_node = self._param_defaults(original_node, updated_node)
        return super().leave_FunctionDef(original_node, updated_node)

    def _param_defaults(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        """`scale_r: float = 0.5` -> `scale_r: float | None = None`, looked up when not given."""
        guards: list[cst.BaseStatement] = []
        new_params: dict[str, cst.Param] = {}
        for param in [*original.params.params, *original.params.kwonly_params]:
            finding = self.target(param.default) if param.default is not None else None
            if finding is None or finding.rule_id != "param-default":
                continue
            name = param.name.value
            key = ladder_key(name)
            sym = self.symbol_here()
            if key is None or sym is None or self.at_start_up:
                continue  # listed with the reason at the end of the module
            lookup = code(self._value(key, sym))
            guards.append(cst.parse_statement(f"if {name} is None:\n    {name} = {lookup}\n"))
            new_params[name] = optional_param(param, self.lazy_annotations)
            self.mark_resolved(finding)
        if not guards:
            return updated
        return with_param_guards(updated, new_params, guards)

    def _share(self, literal: cst.BaseExpression) -> tuple[Finding, cst.BaseExpression] | None:
        """The policy's close share for a fraction finding on this literal, if it maps to one."""
        finding = self.target(literal)
        if finding is None or finding.rule_id != "fraction":
            return None
        node = self.scope.node
        key = scale_out_close_frac_key(finding.name, node.name.value if node else "")
        sym = self.symbol_here()
        if key is None or sym is None or self.at_start_up:
            return None
        self.mark_resolved(finding)
        return finding, self._value(key, sym)

    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BaseExpression:
        """`pos.qty / 2` and `pos.qty * 0.5` in a scale-out: `pos.qty * <close share>`."""
        if not isinstance(original_node.operator, cst.Divide | cst.Multiply):
            return updated_node
        found = self._share(original_node.right)
        if found is None:
            return updated_node
        return updated_node.with_changes(
            operator=cst.Multiply(
                whitespace_before=updated_node.operator.whitespace_before,
                whitespace_after=updated_node.operator.whitespace_after,
            ),
            right=found[1],
        )

    def leave_AugAssign(
        self, original_node: cst.AugAssign, updated_node: cst.AugAssign
    ) -> cst.AugAssign:
        """`qty /= 2` and `qty *= 0.5` in a scale-out: `qty *= <close share>`."""
        if not isinstance(original_node.operator, cst.DivideAssign | cst.MultiplyAssign):
            return updated_node
        found = self._share(original_node.value)
        if found is None:
            return updated_node
        return updated_node.with_changes(
            operator=cst.MultiplyAssign(
                whitespace_before=updated_node.operator.whitespace_before,
                whitespace_after=updated_node.operator.whitespace_after,
            ),
            value=found[1],
        )

    def _value(self, key: str, sym: str) -> cst.BaseExpression:
        return self.accessor_call("policy_value_or_skip", q(key), sym)

    def _targets_within(self, node: cst.CSTNode) -> list[Finding]:
        from libcst.metadata import PositionProvider

        pos = self.get_metadata(PositionProvider, node)
        return [
            f
            for (line, col), f in self.targets.items()
            if (pos.start.line, pos.start.column) <= (line, col) <= (pos.end.line, pos.end.column)
        ]

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement:
        """`return fail(...)` / `x = fail(...)` read better as `raise PolicySkip(...)`."""
        if len(updated_node.body) != 1:
            return updated_node
        small = updated_node.body[0]
        value = getattr(small, "value", None)
        if value is None or self.failed.get(id(value)) is not value:
            return updated_node
        if not isinstance(small, cst.Return | cst.Assign | cst.AnnAssign):
            return updated_node
        stmt = cst.parse_statement(f"raise {self.accessor}.PolicySkip({q('harvest ladder')})")
        return stmt.with_changes(leading_lines=updated_node.leading_lines)

    # -- dataclass defaults -------------------------------------------------------------------------
    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        module = self.dead.sweep(super().leave_Module(original_node, updated_node))
        repo = self.repo or RepoIndex()
        body = []
        for stmt in module.body:
            if isinstance(stmt, cst.ClassDef) and stmt.name.value in repo.ladders:
                stmt = self._required_fields(stmt, repo.ladders[stmt.name.value], module, repo)
            body.append(stmt)
        return module.with_changes(body=body)

    def _required_fields(
        self, klass: cst.ClassDef, ladder: LadderClass, module: cst.Module, repo: RepoIndex
    ) -> cst.ClassDef:
        calls = ladder_calls(module, ladder) + repo.calls_elsewhere(ladder, self.rel_path)
        removable = {f for f in ladder.keys if f in ladder.defaults and all(f in c for c in calls)}
        keep_default = False
        for f in ladder.fields:  # required fields may not follow a field with a default
            if f in ladder.defaults and f not in removable:
                keep_default = True
            elif keep_default:
                removable.discard(f)
        if not removable:
            return klass
        body = []
        for stmt in klass.body.body:
            if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
                small = stmt.body[0]
                if (
                    isinstance(small, cst.AnnAssign)
                    and isinstance(small.target, cst.Name)
                    and small.target.value in removable
                    and small.value is not None
                ):
                    self.mark_resolved(*self._field_findings(small.target.value))
                    stmt = stmt.with_changes(
                        body=[small.with_changes(value=None, equal=cst.MaybeSentinel.DEFAULT)]
                    )
            body.append(stmt)
        return klass.with_changes(body=klass.body.with_changes(body=body))

    def _field_findings(self, name: str) -> list[Finding]:
        return [f for f in self.targets.values() if f.rule_id == "field-default" and f.name == name]


def _is_number(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.UnaryOperation):
        node = node.expression
    return isinstance(node, cst.Integer | cst.Float)


def _passed(call: cst.Call, ladder: LadderClass) -> dict[str, cst.Arg]:
    out: dict[str, cst.Arg] = {}
    for i, arg in enumerate(call.args):
        if arg.keyword is not None:
            out[arg.keyword.value] = arg
        elif not arg.star and i < len(ladder.fields):
            out[ladder.fields[i]] = arg
    return out
