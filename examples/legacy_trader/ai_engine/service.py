"""AI engine service: the process that turns model signals into orders.

The RL agent publishes a leverage and a size per symbol; when it has nothing (stale, crashed,
new symbol) the service falls back to the numbers below, so trading never stops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ai_engine.leverage import choose_leverage, clamp_leverage, position_size
from common.cache import TTLCache
from common.timeutil import Stopwatch, now_ms
from execution.orders import OrderRouter
from risk.governor import Governor, OrderIntent
from risk.safety import AccountState

logger = logging.getLogger(__name__)

SERVICE_VERSION = "4.1.0"
PORT = 8080
MIN_CONFIDENCE = 0.55


class AgentUnavailable(RuntimeError):
    """The RL agent has no fresh decision for this symbol."""


@dataclass(frozen=True)
class Signal:
    symbol: str
    side: str
    confidence: float
    price: float
    volatility: float | None = None


class RLAgentClient:
    """Reads the RL agent's latest decision per symbol from the shared cache."""

    def __init__(self, cache: TTLCache) -> None:
        self.cache = cache

    def decide(self, symbol: str) -> dict[str, Any]:
        decision = self.cache.fetch(f"rl:{symbol}")
        if decision is None:
            raise AgentUnavailable(f"no RL decision for {symbol}")
        return decision


class AIEngineService:
    """Consumes model signals; the RL agent's leverage and size win whenever it has them."""

    def __init__(
        self,
        agent: RLAgentClient,
        router: OrderRouter,
        governor: Governor,
        use_rl_sizing: bool = True,
    ) -> None:
        self.agent = agent
        self.router = router
        self.governor = governor
        self.use_rl_sizing = use_rl_sizing
        self.latencies_ms: list[float] = []

    def process_signal(self, signal: Signal, account: AccountState) -> list[dict] | None:
        """Size, lever, check and send one signal; returns the orders sent, or None."""
        timer = Stopwatch()
        if signal.confidence < MIN_CONFIDENCE:
            logger.info("skip %s: confidence %.2f too low", signal.symbol, signal.confidence)
            return None
        leverage = 10.0  # fallback if RL agent fails
        position_size_usd = 200.0
        try:
            decision = self.agent.decide(signal.symbol)
            leverage = self._leverage_for(decision, signal)
            position_size_usd = self._size_for(decision, leverage, signal)
        except AgentUnavailable as exc:
            logger.warning("RL agent failed (%s), using fallback 10x / 200 USDT", exc)
        intent = OrderIntent(signal.symbol, signal.side, position_size_usd, leverage)
        verdict = self.governor.review(intent, account)
        if not verdict.approved:
            logger.info("governor rejected %s: %s", signal.symbol, verdict.reason)
            return None
        orders = self.router.open_position(
            signal.symbol, signal.side, position_size_usd, leverage, signal.price
        )
        self.governor.record_open(intent)
        self.latencies_ms.append(timer.elapsed_ms())
        return orders

    def _leverage_for(self, decision: dict[str, Any], signal: Signal) -> float:
        leverage = decision.get("leverage")
        if leverage is None:
            leverage = 10.0
        if decision.get("stale"):
            leverage = choose_leverage(signal.volatility, signal.confidence)
        return clamp_leverage(leverage)

    def _size_for(self, decision: dict[str, Any], leverage: float, signal: Signal) -> float:
        if self.use_rl_sizing:
            rl_size = decision.get("size_usd")
            if rl_size is not None:
                size_usd = rl_size
            else:
                size_usd = 100.0
        else:
            size_usd = position_size(
                decision.get("base_size_usd", 150.0), leverage, signal.confidence
            )
        return size_usd

    def apply_override(self, symbol: str, leverage: float | None) -> float:
        """Manual leverage override from the ops chat; empty means the house default."""
        leverage = leverage or 10
        logger.info("ops override on %s: %sx", symbol, leverage)
        self.router.client.set_leverage(symbol, int(leverage))
        return leverage

    def health(self) -> dict[str, Any]:
        """Payload of GET /health on PORT."""
        recent = self.latencies_ms[-50:]
        return {
            "version": SERVICE_VERSION,
            "time_ms": now_ms(),
            "signals": len(self.latencies_ms),
            "p50_latency_ms": sorted(recent)[len(recent) // 2] if recent else None,
        }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    cache = TTLCache()
    cache.put("rl:ETHUSDT", {"leverage": 8, "size_usd": 120.0})
    service = AIEngineService(RLAgentClient(cache), OrderRouter(), Governor())
    account = AccountState(equity_usdt=10000.0, used_margin_usdt=0.0, open_notional_usdt=0.0)
    print(service.process_signal(Signal("BTCUSDT", "BUY", 0.7, 60000.0, 0.03), account))
    print(service.process_signal(Signal("ETHUSDT", "SELL", 0.8, 3000.0), account))
    print(service.apply_override("SOLUSDT", None), service.health())
