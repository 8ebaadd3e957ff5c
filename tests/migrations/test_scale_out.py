"""Phases 2 and 3 on the shapes a careful reviewer listed on third-party bots (issue 12): a scale-out
R default, a switch that is on when unset, a half close, and a symbol `.get()` fallback."""

from __future__ import annotations

from libcst.codemod import CodemodTest

from migrations.phase_harvest import HarvestFromPolicy
from migrations.phase_universe import UniverseFromPolicy


class TestScaleOut(CodemodTest):
    TRANSFORM = HarvestFromPolicy

    def test_default_switch_and_half_close_come_from_the_policy(self) -> None:
        before = """
            from __future__ import annotations

            from dataclasses import dataclass

            @dataclass
            class Position:
                symbol: str
                entry: float
                stop: float
                qty: float

            def check_scale_out(pos: Position, price, params, scale_r: float = 0.5) -> float:
                \"\"\"Half the position once price is scale_r R in profit.\"\"\"
                if not params.get("use_scale_out", True):
                    return 0.0
                if price - pos.entry < scale_r * (pos.entry - pos.stop):
                    return 0.0
                close_qty = pos.qty / 2
                return close_qty
        """
        after = """
            from __future__ import annotations

            from dataclasses import dataclass
            import qctl_policy

            @dataclass
            class Position:
                symbol: str
                entry: float
                stop: float
                qty: float

            def check_scale_out(pos: Position, price, params, scale_r: float | None = None) -> float:
                \"\"\"Half the position once price is scale_r R in profit.\"\"\"
                if scale_r is None:
                    scale_r = qctl_policy.policy_value_or_skip("harvest_t1_r", pos.symbol)
                if not qctl_policy.given_or_skip(params.get("use_scale_out"), "use_scale_out", pos.symbol):
                    return 0.0
                if price - pos.entry < scale_r * (pos.entry - pos.stop):
                    return 0.0
                close_qty = pos.qty * qctl_policy.policy_value_or_skip("harvest_t1_close_frac", pos.symbol)
                return close_qty
        """
        self.assertCodemod(before, after)

    def test_an_in_place_half_close(self) -> None:
        before = """
            def scale_out(symbol, qty):
                qty /= 2
                return qty
        """
        after = """
            import qctl_policy

            def scale_out(symbol, qty):
                qty *= qctl_policy.policy_value_or_skip("harvest_t1_close_frac", symbol)
                return qty
        """
        self.assertCodemod(before, after)

    def test_no_symbol_in_scope_leaves_them_listed(self) -> None:
        before = """
            def check_scale_out(entry, price, qty, scale_r=0.5):
                if price - entry < scale_r:
                    return 0.0
                close_qty = qty / 2
                return close_qty
        """
        self.assertCodemod(before, before)


class TestSymbolFallback(CodemodTest):
    TRANSFORM = UniverseFromPolicy

    def test_a_missing_symbol_skips(self) -> None:
        before = """
            def last_symbol(state: dict) -> str:
                return state.get("symbol", "BTCUSDT")
        """
        after = """
            import qctl_policy

            def last_symbol(state: dict) -> str:
                return qctl_policy.given_or_skip(state.get("symbol"), "symbol")
        """
        self.assertCodemod(before, after)

    def test_a_symbol_literal_outside_a_lookup_stays(self) -> None:
        before = """
            def load_state(path):
                return {"symbol": "BTCUSDT", "leverage": 5}
        """
        self.assertCodemod(before, before)
