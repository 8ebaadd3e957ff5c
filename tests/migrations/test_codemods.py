"""Before/after pairs for every transform (libcst's CodemodTest style), plus no-op cases.

Findings come from the auditor on each snippet, as in a real run: only literals it flags move.
"""

from __future__ import annotations

from libcst.codemod import CodemodTest

from migrations.phase_harvest import HarvestFromPolicy
from migrations.phase_kill import KillFromPolicy
from migrations.phase_sizing import SizingFallbacks
from migrations.phase_universe import UniverseFromPolicy


class TestSizingFallbacks(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_assignment_becomes_guarded_lookup(self) -> None:
        before = """
            def open_trade(symbol, price) -> list | None:
                leverage = 10.0  # fallback if RL agent fails
                return [symbol, leverage, price]
        """
        after = """
            import qctl_policy

            def open_trade(symbol, price) -> list | None:
                leverage = qctl_policy.policy_value("leverage", symbol)
                if leverage is None:
                    qctl_policy.skip("leverage", symbol)
                    return None
                return [symbol, leverage, price]
        """
        self.assertCodemod(before, after)

    def test_fallback_inside_nested_if_keeps_its_own_block(self) -> None:
        before = """
            def lev(symbol, decision, stale) -> float:
                leverage = decision.get("leverage")
                if stale:
                    if leverage is None:
                        leverage = 10
                else:
                    leverage = leverage * 2
                return leverage
        """
        after = """
            import qctl_policy

            def lev(symbol, decision, stale) -> float:
                leverage = decision.get("leverage")
                if stale:
                    if leverage is None:
                        leverage = qctl_policy.policy_value("leverage", symbol)
                        if leverage is None:
                            raise qctl_policy.PolicySkip("leverage", symbol)
                else:
                    leverage = leverage * 2
                return leverage
        """
        self.assertCodemod(before, after)

    def test_else_attachment_trap(self) -> None:
        """The skip goes into the inner `else:`; the outer `else:` stays with the outer `if`."""
        before = """
            def size(use_rl, decision):
                if use_rl:
                    rl_size = decision.get("size_usd")
                    if rl_size is not None:
                        size_usd = rl_size
                    else:
                        size_usd = 100.0
                else:
                    size_usd = decision["base"]
                return size_usd
        """
        after = """
            import qctl_policy

            def size(use_rl, decision):
                if use_rl:
                    rl_size = decision.get("size_usd")
                    if rl_size is not None:
                        size_usd = rl_size
                    else:
                        qctl_policy.skip("size_usd")
                        return None
                else:
                    size_usd = decision["base"]
                return size_usd
        """
        self.assertCodemod(before, after)

    def test_or_fallback_and_loop_continue(self) -> None:
        before = """
            def run(symbol, overrides):
                for attempt in range(3):
                    leverage = overrides.get(symbol) or 10
                    exchange.set_leverage(leverage, symbol)  # a decision, not a log line
        """
        after = """
            import qctl_policy

            def run(symbol, overrides):
                for attempt in range(3):
                    leverage = overrides.get(symbol) or qctl_policy.policy_value("leverage", symbol)
                    if leverage is None:
                        qctl_policy.skip("leverage", symbol)
                        continue
                    exchange.set_leverage(leverage, symbol)  # a decision, not a log line
        """
        self.assertCodemod(before, after)

    def test_or_fallback_without_symbol_keeps_the_given_value(self) -> None:
        before = """
            def override(lev):
                lev = lev or 10
                return lev
        """
        after = """
            import qctl_policy

            def override(lev):
                if not lev:
                    qctl_policy.skip("lev")
                    return None
                return lev
        """
        self.assertCodemod(before, after)

    def test_get_default_and_env_default_string(self) -> None:
        before = """
            import os

            def sizes(decision):
                base = decision.get("base_size_usd", 150.0)
                cap = float(os.getenv("MAX_LEVERAGE", "10"))
                return base, cap
        """
        after = """
            import os
            import qctl_policy

            def sizes(decision):
                base = qctl_policy.given_or_skip(decision.get("base_size_usd"), "base_size_usd")
                cap = float(qctl_policy.given_or_skip(os.getenv("MAX_LEVERAGE"), "MAX_LEVERAGE"))
                return base, cap
        """
        self.assertCodemod(before, after)

    def test_parameter_default(self) -> None:
        before = """
            def size_for_equity(equity_usdt: float, size_fraction: float = 0.02) -> float:
                \"\"\"Doc.\"\"\"
                return equity_usdt * size_fraction
        """
        after = """
            import qctl_policy

            def size_for_equity(equity_usdt: float, size_fraction: "float | None" = None) -> float:
                \"\"\"Doc.\"\"\"
                if size_fraction is None:
                    raise qctl_policy.PolicySkip("size_pct")
                return equity_usdt * size_fraction
        """
        self.assertCodemod(before, after)

    def test_or_fallback_from_another_value(self) -> None:
        before = """
            def override(requested):
                lev = requested or 10
                return lev
        """
        after = """
            import qctl_policy

            def override(requested):
                lev = requested
                if not lev:
                    qctl_policy.skip("lev")
                    return None
                return lev
        """
        self.assertCodemod(before, after)

    def test_configured_accessor_module(self) -> None:
        before = """
            def f(symbol):
                leverage = 10.0
                return leverage
        """
        after = """
            from bot import policy_access

            def f(symbol):
                leverage = policy_access.policy_value("leverage", symbol)
                if leverage is None:
                    policy_access.skip("leverage", symbol)
                    return None
                return leverage
        """
        self.assertCodemod(before, after, accessor_module="bot.policy_access")

    def test_no_op_on_honest_numbers_and_values_read_at_import_time(self) -> None:
        code = """
            import os

            PORT = 8080
            MAX_LEVERAGE = int(os.getenv("MAX_LEVERAGE", "10"))
            LIMITS = {"leverage": MAX_LEVERAGE}

            def limits():
                return LIMITS

            def connect(host, timeout=5.0):
                retries = 3
                return host, timeout, retries
        """
        self.assertCodemod(code, code)


class TestUniverseFromPolicy(CodemodTest):
    TRANSFORM = UniverseFromPolicy

    def test_selection_function_returns_policy_universe(self) -> None:
        before = """
            CORE_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
            MIN_SIGMA = 0.005

            def score(sigma: float, trend_score: float) -> float:
                return 0.4 * trend_score + sigma

            def select_universe(stats) -> list[str]:
                \"\"\"Core first.\"\"\"
                return CORE_SYMBOLS + [s for s in stats if score(s, 1) > MIN_SIGMA]
        """
        after = """
            import qctl_policy

            def select_universe(stats) -> list[str]:
                \"\"\"The models' ranked universe; empty (trade nothing) without a valid policy.\"\"\"
                symbols = qctl_policy.universe()
                if symbols is None:
                    qctl_policy.skip("universe")
                    return []
                return symbols
        """
        self.assertCodemod(before, after)

    def test_no_op_without_a_universe_function(self) -> None:
        code = """
            WATCH = ["BTCUSDT", "ETHUSDT"]

            def show():
                return WATCH
        """
        self.assertCodemod(code, code)


_THETA = """
            from dataclasses import dataclass

            @dataclass(frozen=True)
            class HarvestTheta:
                T1_R: float = 2.0
                T2_R: float = 4.0
                T3_R: float = 6.0
                lock_R: float = 1.5
"""


class TestHarvestFromPolicy(CodemodTest):
    TRANSFORM = HarvestFromPolicy

    def test_bare_constructor_and_dataclass_defaults(self) -> None:
        before = (
            _THETA
            + """
            def latest(symbol: str) -> HarvestTheta:
                return HarvestTheta()
        """
        )
        after = """
            from dataclasses import dataclass
            import qctl_policy

            @dataclass(frozen=True)
            class HarvestTheta:
                T1_R: float
                T2_R: float
                T3_R: float
                lock_R: float

            def latest(symbol: str) -> HarvestTheta:
                return HarvestTheta(
                    T1_R=qctl_policy.policy_value_or_skip("harvest_t1_r", symbol),
                    T2_R=qctl_policy.policy_value_or_skip("harvest_t2_r", symbol),
                    T3_R=qctl_policy.policy_value_or_skip("harvest_t3_r", symbol),
                    lock_R=qctl_policy.policy_value_or_skip("harvest_lock_r", symbol),
                )
        """
        self.assertCodemod(before, after)

    def test_except_fallback_and_get_defaults_without_symbol(self) -> None:
        before = (
            _THETA
            + """
            def theta_from_params(params) -> HarvestTheta:
                try:
                    return HarvestTheta(
                        T1_R=params.get("T1_R", 2.0),
                        T2_R=params.get("T2_R", 4.0),
                        T3_R=params.get("T3_R", 6.0),
                        lock_R=getattr(params, "lock_R", 1.5),
                    )
                except Exception:
                    return HarvestTheta()
        """
        )
        after = """
            from dataclasses import dataclass
            import qctl_policy

            @dataclass(frozen=True)
            class HarvestTheta:
                T1_R: float
                T2_R: float
                T3_R: float
                lock_R: float

            def theta_from_params(params) -> HarvestTheta:
                try:
                    return HarvestTheta(
                        T1_R=qctl_policy.given_or_skip(params.get("T1_R"), "T1_R"),
                        T2_R=qctl_policy.given_or_skip(params.get("T2_R"), "T2_R"),
                        T3_R=qctl_policy.given_or_skip(params.get("T3_R"), "T3_R"),
                        lock_R=qctl_policy.given_or_skip(getattr(params, "lock_R", None), "lock_R"),
                    )
                except Exception:
                    raise qctl_policy.PolicySkip("harvest ladder")
        """
        self.assertCodemod(before, after)

    def test_literal_ladder_with_symbol_in_a_loop(self) -> None:
        before = (
            _THETA
            + """
            def ladders(symbols):
                return {symbol: HarvestTheta(T1_R=1.5, T2_R=3.0, T3_R=5.0, lock_R=1.0) for symbol in symbols}

            def publish(symbols, publish):
                for symbol in symbols:
                    publish(symbol, HarvestTheta(1.5, 3.0, 5.0, lock_R=1.0))
        """
        )
        after = """
            from dataclasses import dataclass
            import qctl_policy

            @dataclass(frozen=True)
            class HarvestTheta:
                T1_R: float
                T2_R: float
                T3_R: float
                lock_R: float

            def ladders(symbols):
                return {symbol: qctl_policy.fail("harvest ladder") for symbol in symbols}

            def publish(symbols, publish):
                for symbol in symbols:
                    publish(symbol, HarvestTheta(
                        qctl_policy.policy_value_or_skip("harvest_t1_r", symbol),
                        qctl_policy.policy_value_or_skip("harvest_t2_r", symbol),
                        qctl_policy.policy_value_or_skip("harvest_t3_r", symbol),
                        lock_R=qctl_policy.policy_value_or_skip("harvest_lock_r", symbol),
                    ))
        """
        self.assertCodemod(before, after)

    def test_defaults_stay_while_a_module_level_call_relies_on_them(self) -> None:
        code = (
            _THETA
            + """
            DEFAULT = HarvestTheta()
        """
        )
        self.assertCodemod(code, code)


class TestKillFromPolicy(CodemodTest):
    TRANSFORM = KillFromPolicy

    def test_constant_and_literal_thresholds(self) -> None:
        before = """
            import os

            K_CLOSE_THRESHOLD = float(os.getenv("K_CLOSE_THRESHOLD", 0.65))

            def kill_level(kill_score: float) -> str:
                if kill_score >= K_CLOSE_THRESHOLD:
                    return "close"
                return "ok"

            def should_close(pos, kill_score: float) -> bool:
                return kill_level(kill_score) == "close" or kill_score >= 0.9 and pos.symbol != ""
        """
        after = """
            import os
            import qctl_policy

            def kill_level(kill_score: float, *, symbol: "str | None" = None) -> str:
                if qctl_policy.kill_due(kill_score, symbol):
                    return "close"
                return "ok"

            def should_close(pos, kill_score: float) -> bool:
                return kill_level(kill_score, symbol=pos.symbol) == "close" or qctl_policy.kill_due(kill_score, pos.symbol) and pos.symbol != ""
        """
        self.assertCodemod(before, after)

    def test_graded_levels_map_to_the_policy_reduce_level(self) -> None:
        before = """
            KILL_SCORE_WARN = 0.45

            def label(kill_score):
                return "warn" if kill_score >= KILL_SCORE_WARN else "ok"
        """
        after = """
            import qctl_policy

            def label(kill_score, *, symbol: "str | None" = None):
                return "warn" if qctl_policy.reached("kill_reduce_threshold", kill_score, symbol) else "ok"
        """
        self.assertCodemod(before, after)

    def test_unknown_kill_constant_is_left_alone(self) -> None:
        code = """
            KILL_SCORE_EMA_SPAN = 0.45

            def label(kill_score):
                return "high" if kill_score >= KILL_SCORE_EMA_SPAN else "ok"
        """
        self.assertCodemod(code, code)
