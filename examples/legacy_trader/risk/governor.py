"""Trade governor: per-trade and per-day limits every order passes before it reaches the exchange.

Limits are class attributes so ops can change them with environment variables and a restart.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass

from risk.safety import AccountState, SafetyViolation, check_order

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrderIntent:
    symbol: str
    side: str
    notional_usdt: float
    leverage: float


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reason: str


class Governor:
    """Says yes or no to an order intent, with a reason the service logs."""

    MAX_NOTIONAL_PER_TRADE_USDT = float(os.getenv("GOV_MAX_NOTIONAL_PER_TRADE_USDT", "200"))
    MAX_NOTIONAL_PER_SYMBOL_USDT = float(os.getenv("GOV_MAX_NOTIONAL_PER_SYMBOL_USDT", "600"))
    MAX_LEVERAGE = int(os.environ.get("GOV_MAX_LEVERAGE", "20"))
    MAX_TRADES_PER_DAY = int(os.environ.get("GOV_MAX_TRADES_PER_DAY", "40"))
    REENTRY_COOLDOWN_SEC = 900

    def __init__(self) -> None:
        self._trades_by_day: dict[str, int] = defaultdict(int)
        self._open_by_symbol: dict[str, float] = defaultdict(float)
        self._last_exit: dict[str, float] = {}

    def review(self, intent: OrderIntent, account: AccountState) -> Verdict:
        """Approve or reject one order; the hard safety limits are checked last."""
        if intent.notional_usdt > self.MAX_NOTIONAL_PER_TRADE_USDT:
            return Verdict(False, f"notional {intent.notional_usdt:.2f} above per-trade limit")
        held = self._open_by_symbol[intent.symbol] + intent.notional_usdt
        if held > self.MAX_NOTIONAL_PER_SYMBOL_USDT:
            return Verdict(False, f"{intent.symbol} would hold {held:.2f} USDT")
        if intent.leverage > self.MAX_LEVERAGE:
            return Verdict(False, f"leverage {intent.leverage}x above governor max")
        if self._trades_by_day[_today()] >= self.MAX_TRADES_PER_DAY:
            return Verdict(False, "daily trade budget used up")
        last_exit = self._last_exit.get(intent.symbol)
        if last_exit is not None and time.time() - last_exit < self.REENTRY_COOLDOWN_SEC:
            return Verdict(False, f"{intent.symbol} in re-entry cooldown")
        try:
            check_order(account, intent.notional_usdt, intent.leverage)
        except SafetyViolation as exc:
            return Verdict(False, f"safety: {exc}")
        return Verdict(True, "ok")

    def record_open(self, intent: OrderIntent) -> None:
        self._trades_by_day[_today()] += 1
        self._open_by_symbol[intent.symbol] += intent.notional_usdt

    def record_close(self, symbol: str) -> None:
        self._open_by_symbol.pop(symbol, None)
        self._last_exit[symbol] = time.time()

    def limits(self) -> dict[str, float]:
        """Current limits, for the /status endpoint."""
        return {
            "max_notional_per_trade_usdt": self.MAX_NOTIONAL_PER_TRADE_USDT,
            "max_notional_per_symbol_usdt": self.MAX_NOTIONAL_PER_SYMBOL_USDT,
            "max_leverage": self.MAX_LEVERAGE,
            "max_trades_per_day": self.MAX_TRADES_PER_DAY,
        }


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


if __name__ == "__main__":
    gov = Governor()
    acct = AccountState(equity_usdt=5000.0, used_margin_usdt=0.0, open_notional_usdt=0.0)
    for notional in (150.0, 250.0):
        intent = OrderIntent("ETHUSDT", "BUY", notional_usdt=notional, leverage=5)
        print(notional, gov.review(intent, acct))
