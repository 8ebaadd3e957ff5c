"""Before/after pairs for heuristics and for decision values bound at import time.

Class attributes, settings fields and module constants are looked up where they are read;
functions that decide leverage or size by rules return the policy value; factor heuristics are
dropped from the products that use them. Findings come from the auditor on each snippet.
"""

from __future__ import annotations

from libcst.codemod import CodemodTest

from migrations.phase_harvest import HarvestFromPolicy
from migrations.phase_kill import KillFromPolicy
from migrations.phase_sizing import SizingFallbacks


class TestImportTimeValues(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_class_limits_are_looked_up_where_they_are_read(self) -> None:
        before = """
            import os


            class Governor:
                MAX_NOTIONAL_PER_TRADE_USDT = float(os.getenv("GOV_MAX_NOTIONAL_USDT", "200"))
                MAX_LEVERAGE = int(os.environ.get("GOV_MAX_LEVERAGE", "20"))
                MAX_TRADES_PER_DAY = 40

                def review(self, intent: Intent, account: Account) -> bool:
                    if intent.notional > self.MAX_NOTIONAL_PER_TRADE_USDT:
                        return False
                    return intent.leverage <= self.MAX_LEVERAGE

                def limits(self) -> dict:
                    return {"max_leverage": self.MAX_LEVERAGE, "trades": self.MAX_TRADES_PER_DAY}


            class Intent:
                symbol: str


            class Account:
                equity_usdt: float
        """
        after = """
            import os
            import qctl_policy


            class Governor:
                MAX_TRADES_PER_DAY = 40

                def review(self, intent: Intent, account: Account) -> bool:
                    if intent.notional > qctl_policy.notional_usd_or_skip(intent.symbol, account.equity_usdt):
                        return False
                    return intent.leverage <= qctl_policy.policy_value_or_skip("leverage", intent.symbol)

                def limits(self, *, symbol: "str | None" = None) -> dict:
                    return {"max_leverage": qctl_policy.policy_value("leverage", symbol), "trades": self.MAX_TRADES_PER_DAY}


            class Intent:
                symbol: str


            class Account:
                equity_usdt: float
        """
        self.assertCodemod(before, after)

    def test_settings_fields_go_with_their_constructor_keywords(self) -> None:
        before = """
            import os

            from pydantic import Field
            from pydantic_settings import BaseSettings


            class Settings(BaseSettings):
                EXCHANGE: str = "binanceusdm"
                DEFAULT_LEVERAGE: float = Field(default=5.0, ge=1.0, le=20.0)
                MAX_OPEN_POSITIONS: int = int(os.environ.get("MAX_OPEN_POSITIONS", "8"))


            def describe(settings: Settings) -> str:
                return f"{settings.EXCHANGE}: {settings.MAX_OPEN_POSITIONS} positions"


            def slots(settings: Settings) -> list[int]:
                return list(range(settings.MAX_OPEN_POSITIONS))


            demo = Settings(DEFAULT_LEVERAGE=3.0, EXCHANGE="bybit")
        """
        after = """
            import os

            from pydantic import Field
            from pydantic_settings import BaseSettings
            import qctl_policy


            class Settings(BaseSettings):
                EXCHANGE: str = "binanceusdm"


            def describe(settings: Settings) -> str:
                return f"{settings.EXCHANGE}: {qctl_policy.policy_value('universe_count')} positions"


            def slots(settings: Settings) -> list[int]:
                return list(range(int(qctl_policy.policy_value_or_skip("universe_count"))))


            demo = Settings(EXCHANGE="bybit")
        """
        self.assertCodemod(before, after)

    def test_a_value_still_read_at_import_time_stays(self) -> None:
        code = """
            import os


            class Governor:
                MAX_LEVERAGE = int(os.environ.get("GOV_MAX_LEVERAGE", "20"))
                CAPS = {"leverage": MAX_LEVERAGE}

                def caps(self) -> dict:
                    return self.CAPS
        """
        self.assertCodemod(code, code)


class TestHeuristics(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_rules_clamps_and_factors_give_way_to_the_policy(self) -> None:
        before = """
            LEVERAGE_TARGET_VOL = 0.02


            def choose_leverage(volatility: float, confidence: float) -> float:
                \"\"\"Target a fixed daily move.\"\"\"
                lev = LEVERAGE_TARGET_VOL / volatility
                if confidence < 0.6:
                    lev = lev * 0.5
                return clamp_leverage(lev)


            def clamp_leverage(lev: float) -> float:
                return min(max(lev, 1.0), 20.0)


            def tier_size_multiplier(lev: float) -> float:
                if lev <= 10:
                    return 1.0
                return 0.5


            def position_size(base_usd: float, lev: float) -> float:
                return base_usd * tier_size_multiplier(lev)


            def entry(signal: Signal) -> tuple[float, float]:
                lev = choose_leverage(signal.vol, signal.confidence)
                return lev, position_size(signal.base, lev)


            class Signal:
                symbol: str
        """
        after = """
            import qctl_policy


            def choose_leverage(volatility: float, confidence: float, *, symbol: "str | None" = None) -> float:
                \"\"\"Target a fixed daily move.\"\"\"
                return qctl_policy.policy_value_or_skip("leverage", symbol)


            def clamp_leverage(lev: float) -> float:
                return qctl_policy.clamp("leverage", lev)


            def position_size(base_usd: float, lev: float) -> float:
                return base_usd


            def entry(signal: Signal) -> tuple[float, float]:
                lev = choose_leverage(signal.vol, signal.confidence, symbol=signal.symbol)
                return lev, position_size(signal.base, lev)


            class Signal:
                symbol: str
        """
        self.assertCodemod(before, after)

    def test_unannotated_rule_returns(self) -> None:
        before = """
            def pick_leverage(symbol, vol):
                if vol > 0.05:
                    return 3
                return 10
        """
        after = """
            import qctl_policy

            def pick_leverage(symbol, vol):
                return qctl_policy.policy_value_or_skip("leverage", symbol)
        """
        self.assertCodemod(before, after)

    def test_a_function_with_a_fallback_keeps_its_logic(self) -> None:
        before = """
            def lev_for(symbol, decision) -> float:
                leverage = decision.get("leverage")
                if leverage is None:
                    leverage = 10
                return leverage * 2
        """
        after = """
            import qctl_policy

            def lev_for(symbol, decision) -> float:
                leverage = decision.get("leverage")
                if leverage is None:
                    leverage = qctl_policy.policy_value("leverage", symbol)
                    if leverage is None:
                        raise qctl_policy.PolicySkip("leverage", symbol)
                return leverage * 2
        """
        self.assertCodemod(before, after)

    def test_a_factor_used_outside_a_product_stays(self) -> None:
        code = """
            def size_multiplier(lev: float) -> float:
                if lev <= 10:
                    return 1.0
                return 0.5


            def report(lev: float) -> str:
                return str(size_multiplier(lev))
        """
        self.assertCodemod(code, code)


class TestHarvestShares(CodemodTest):
    TRANSFORM = HarvestFromPolicy

    def test_close_fractions_and_holding_times(self) -> None:
        before = """
            from dataclasses import dataclass

            T1_CLOSE_FRACTION = 0.3


            @dataclass
            class Theta:
                T1_R: float = 2.0
                T2_R: float = 4.0
                max_hold_sec: int = 3600


            def orders_for(pos, qty: float) -> list:
                return [(pos.symbol, round(qty * T1_CLOSE_FRACTION, 3))]


            def theta_for(symbol: str) -> Theta:
                return Theta()
        """
        after = """
            from dataclasses import dataclass
            import qctl_policy


            @dataclass
            class Theta:
                T1_R: float
                T2_R: float
                max_hold_sec: int


            def orders_for(pos, qty: float) -> list:
                return [(pos.symbol, round(qty * qctl_policy.policy_value_or_skip("harvest_t1_close_frac", pos.symbol), 3))]


            def theta_for(symbol: str) -> Theta:
                return Theta(
                    T1_R=qctl_policy.policy_value_or_skip("harvest_t1_r", symbol),
                    T2_R=qctl_policy.policy_value_or_skip("harvest_t2_r", symbol),
                    max_hold_sec=qctl_policy.policy_value_or_skip("max_hold_sec", symbol),
                )
        """
        self.assertCodemod(before, after)


class TestGradedKillLevels(CodemodTest):
    TRANSFORM = KillFromPolicy

    def test_panic_reduce_and_reduce_fraction(self) -> None:
        before = """
            KILL_SCORE_REDUCE = 0.55
            KILL_SCORE_PANIC = 0.85
            KILL_REDUCE_FRACTION = 0.5


            def orders(symbol: str, qty: float, kill_score: float) -> list:
                if kill_score >= KILL_SCORE_PANIC:
                    return [qty]
                if kill_score >= KILL_SCORE_REDUCE:
                    return [qty * KILL_REDUCE_FRACTION]
                return []


            def level(kill_score: float) -> str:
                return "reduce" if kill_score >= KILL_SCORE_REDUCE else "ok"
        """
        after = """
            import qctl_policy


            def orders(symbol: str, qty: float, kill_score: float) -> list:
                if qctl_policy.kill_due(kill_score, symbol):
                    return [qty]
                if qctl_policy.reached("kill_reduce_threshold", kill_score, symbol):
                    return [qty * qctl_policy.policy_value_or_skip("kill_reduce_frac", symbol)]
                return []


            def level(kill_score: float, *, symbol: "str | None" = None) -> str:
                return "reduce" if qctl_policy.reached("kill_reduce_threshold", kill_score, symbol) else "ok"
        """
        self.assertCodemod(before, after)


class TestWhatMustStayAlone(CodemodTest):
    """Forms met in real trading code that a look-up would break (each was broken once)."""

    TRANSFORM = SizingFallbacks

    def test_constructor_defaults_and_config_reads(self) -> None:
        # a skip there would return from __init__ and leave a half-built object
        code = """
            class MicroTrading:
                def __init__(self, config: dict, idle_short: float = 600, size_short: float = 0.5):
                    self.size_short = size_short
                    self.max_leverage = config.get("max_leverage", 3)
                    self.leverage = config.get("leverage") or 20

                def multiplier(self, idle: float) -> float:
                    return self.size_short if idle > 60 else 1.0
        """
        self.assertCodemod(code, code)

    def test_functions_that_do_not_return_one_leverage(self) -> None:
        code = """
            def run_capital_leverage_simulator(moves: list[float], capital: float) -> dict:
                rows = [sum(moves) * lev for lev in (1, 3, 5, 10) if 5.0 * lev < capital]
                return {"rows": rows}


            def leverage_attempts(leverage: int, floor: int) -> list[int]:
                if leverage > 20:
                    leverage = 20
                return list(range(leverage, floor - 1, -1))
        """
        self.assertCodemod(code, code)

    def test_a_constant_read_in_a_parameter_default_stays(self) -> None:
        code = """
            MAX_LEVERAGE = 20


            def capped(lev: float, cap: float = MAX_LEVERAGE) -> float:
                return lev if lev < cap else cap
        """
        self.assertCodemod(code, code)

    def test_thresholds_named_in_money_are_not_sizes(self) -> None:
        code = """
            LIQUIDATION_STOPOUT_MIN_NOTIONAL_USD = 5_000_000.0


            def stopout(liq: float) -> bool:
                return liq >= LIQUIDATION_STOPOUT_MIN_NOTIONAL_USD
        """
        self.assertCodemod(code, code)


class TestSymbolInScope(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_self_symbol_and_a_signal_parameter(self) -> None:
        before = """
            class Trader:
                MAX_LEVERAGE = 20

                def __init__(self, symbol: str) -> None:
                    self.symbol = symbol

                def ok(self, lev: float) -> bool:
                    return lev <= self.MAX_LEVERAGE


            class Signal:
                symbol: str


            def initial_leverage(signal, floor: int) -> int:
                if signal.confidence < 0.9:
                    return 3
                return max(signal.leverage, floor)
        """
        after = """
            import qctl_policy

            class Trader:

                def __init__(self, symbol: str) -> None:
                    self.symbol = symbol

                def ok(self, lev: float) -> bool:
                    return lev <= qctl_policy.policy_value_or_skip("leverage", self.symbol)


            class Signal:
                symbol: str


            def initial_leverage(signal, floor: int) -> int:
                return int(qctl_policy.policy_value_or_skip("leverage", signal.symbol))
        """
        self.assertCodemod(before, after)


class TestFormattedReads(CodemodTest):
    TRANSFORM = HarvestFromPolicy

    def test_a_formatted_read_raises_a_plain_one_gives_none(self) -> None:
        before = """
            class Sentinel:
                T1_R = 0.80
                T1_LOCK_R = 0.25

                def tick(self, symbol: str, r: float) -> str:
                    if r >= self.T1_R:
                        return "take"
                    return f"T1 {self.T1_R:.1f}R, lock {self.T1_LOCK_R}"

                def locked(self, symbol: str, r: float) -> bool:
                    return r <= self.T1_LOCK_R
        """
        after = """
            import qctl_policy

            class Sentinel:

                def tick(self, symbol: str, r: float) -> str:
                    if r >= qctl_policy.policy_value_or_skip("harvest_t1_r", symbol):
                        return "take"
                    return f"T1 {qctl_policy.policy_value_or_skip('harvest_t1_r', symbol):.1f}R, lock {qctl_policy.policy_value('harvest_lock_r', symbol)}"

                def locked(self, symbol: str, r: float) -> bool:
                    return r <= qctl_policy.policy_value_or_skip("harvest_lock_r", symbol)
        """
        self.assertCodemod(before, after)


class TestComments(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_a_section_comment_moves_to_the_next_line_kept(self) -> None:
        before = """
            import os

            # Limits ops may override with the environment
            MAX_LEVERAGE = int(os.getenv("MAX_LEVERAGE", "20"))
            RETRY_SECONDS = 5


            def ok(symbol: str, lev: float) -> bool:
                return lev <= MAX_LEVERAGE
        """
        after = """
            import os
            import qctl_policy

            # Limits ops may override with the environment
            RETRY_SECONDS = 5


            def ok(symbol: str, lev: float) -> bool:
                return lev <= qctl_policy.policy_value_or_skip("leverage", symbol)
        """
        self.assertCodemod(before, after)


class TestTakeProfitRungs(CodemodTest):
    TRANSFORM = HarvestFromPolicy

    def test_tp1_names_are_harvest_rungs(self) -> None:
        before = """
            def on_tick(symbol, entry, risk, price, qty, scale_cfg: dict):
                tp1_r = scale_cfg.get("tp1_r", 1.0)
                if price >= entry + tp1_r * risk:
                    return qty * scale_cfg.get("tp1_frac", 0.5)
                return 0.0
        """
        after = """
            import qctl_policy

            def on_tick(symbol, entry, risk, price, qty, scale_cfg: dict):
                tp1_r = qctl_policy.given_or_skip(scale_cfg.get("tp1_r"), "tp1_r", symbol)
                if price >= entry + tp1_r * risk:
                    return qty * qctl_policy.given_or_skip(scale_cfg.get("tp1_frac"), "tp1_frac", symbol)
                return 0.0
        """
        self.assertCodemod(before, after)


class TestSecondRealRun(CodemodTest):
    """Cases from a second run on real bots: inherited symbols, data bounds, half migrations."""

    TRANSFORM = HarvestFromPolicy

    def test_symbol_kept_by_a_base_class(self) -> None:
        before = """
            class Base:
                def __init__(self, symbol: str) -> None:
                    self.symbol = symbol


            class Strat(Base):
                T1_LOCK_R = 0.25

                def tick(self, r: float) -> float | None:
                    return self.T1_LOCK_R if r > 1 else None
        """
        after = """
            import qctl_policy

            class Base:
                def __init__(self, symbol: str) -> None:
                    self.symbol = symbol


            class Strat(Base):

                def tick(self, r: float) -> float | None:
                    return qctl_policy.policy_value_or_skip("harvest_lock_r", self.symbol) if r > 1 else None
        """
        self.assertCodemod(before, after)

    def test_a_ladder_moves_whole_or_not_at_all(self) -> None:
        # T2_LOCK_R has no policy key: T1_LOCK_R and T2_R stay with it (no mixed ladder)
        code = """
            class Strat:
                T1_LOCK_R = 0.25
                T2_R = 1.30
                T2_LOCK_R = 0.70

                def tick(self, symbol: str, r: float) -> float | None:
                    if r >= self.T2_R:
                        return self.T2_LOCK_R
                    return self.T1_LOCK_R
        """
        self.assertCodemod(code, code)

    def test_a_constant_also_read_in_the_constructor_keeps_every_read(self) -> None:
        code = """
            class Sentinel:
                T1_R = 0.80

                def __init__(self, symbol: str) -> None:
                    self.symbol = symbol
                    self.tp1_r = self.T1_R

                def tick(self, r: float) -> bool:
                    return r >= self.T1_R
        """
        self.assertCodemod(code, code)


class TestDataBounds(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_a_heuristic_with_exchange_bounds_is_left_to_a_person(self) -> None:
        code = """
            def initial_leverage(signal, rules) -> int:
                requested = 5
                if signal.confidence < 0.9:
                    requested = min(requested, 3)
                return max(min(requested, rules.max_leverage), rules.min_leverage)
        """
        self.assertCodemod(code, code)

    def test_a_parameter_whose_symbol_the_code_reads_elsewhere(self) -> None:
        before = """
            def log_it(signal) -> str:
                return signal.symbol


            def leverage_for(signal: ExternalSignal) -> float:
                if signal.confidence < 0.6:
                    return 2.0
                return 5.0
        """
        after = """
            import qctl_policy

            def log_it(signal) -> str:
                return signal.symbol


            def leverage_for(signal: ExternalSignal) -> float:
                return qctl_policy.policy_value_or_skip("leverage", signal.symbol)
        """
        self.assertCodemod(before, after)


class TestNeverRead(CodemodTest):
    TRANSFORM = SizingFallbacks

    def test_a_plain_class_constant_nobody_reads_stays_a_setting_goes(self) -> None:
        before = """
            from pydantic_settings import BaseSettings


            class RiskManager:
                # Hard-coded safety constants
                MAX_POSITIONS_PER_ASSET: int = 1


            class Settings(BaseSettings):
                DEFAULT_LEVERAGE: float = 5.0
                LOG_LEVEL: str = "INFO"
        """
        after = """
            from pydantic_settings import BaseSettings


            class RiskManager:
                # Hard-coded safety constants
                MAX_POSITIONS_PER_ASSET: int = 1


            class Settings(BaseSettings):
                LOG_LEVEL: str = "INFO"
        """
        self.assertCodemod(before, after)


class TestAnnotations(CodemodTest):
    TRANSFORM = KillFromPolicy

    def test_unquoted_with_lazy_annotations(self) -> None:
        before = """
            from __future__ import annotations


            def label(kill_score: float) -> str:
                return "close" if kill_score >= 0.65 else "ok"
        """
        after = """
            from __future__ import annotations
            import qctl_policy


            def label(kill_score: float, *, symbol: str | None = None) -> str:
                return "close" if qctl_policy.kill_due(kill_score, symbol) else "ok"
        """
        self.assertCodemod(before, after)
