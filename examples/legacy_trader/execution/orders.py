"""Order router: opens a position with its exchange-side stop and take-profit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from execution.client import PaperClient, client_order_id

logger = logging.getLogger(__name__)

DEFAULT_TP_SL = {"tp_pct": 6.0, "sl_pct": 2.5}
MAX_SLIPPAGE_BPS = 15
PRICE_DECIMALS = 2


@dataclass(frozen=True)
class Fill:
    symbol: str
    side: str
    qty: float
    price: float
    expected_price: float

    @property
    def slippage_bps(self) -> float:
        return abs(self.price - self.expected_price) / self.expected_price * 10000


class OrderRouter:
    """Places entries with a protective STOP_MARKET and TAKE_PROFIT_MARKET attached."""

    take_profit_pct = 0.06
    stop_loss_pct = 0.025

    def __init__(self, client: Any | None = None) -> None:
        self.client = client or PaperClient()
        self._prepared: set[str] = set()

    def prepare_symbol(self, symbol: str) -> None:
        """First order of the day on a symbol: put it on the house leverage."""
        if symbol not in self._prepared:
            self.client.set_leverage(symbol, 10)
            self._prepared.add(symbol)

    def bracket_prices(self, side: str, price: float, tp_sl: dict | None = None) -> tuple:
        """Exchange-side stop and take-profit prices around the entry."""
        if tp_sl:
            tp = tp_sl["tp_pct"] / 100
            sl = tp_sl["sl_pct"] / 100
        else:
            tp, sl = self.take_profit_pct, self.stop_loss_pct
        if side == "BUY":
            return round(price * (1 + tp), PRICE_DECIMALS), round(price * (1 - sl), PRICE_DECIMALS)
        return round(price * (1 - tp), PRICE_DECIMALS), round(price * (1 + sl), PRICE_DECIMALS)

    def open_position(
        self, symbol: str, side: str, size_usd: float, leverage: float, price: float
    ) -> list[dict]:
        self.prepare_symbol(symbol)
        self.client.set_leverage(symbol=symbol, leverage=int(leverage))
        qty = round(size_usd * leverage / price, 3)
        tp_price, sl_price = self.bracket_prices(side, price, DEFAULT_TP_SL)
        exit_side = "SELL" if side == "BUY" else "BUY"
        sent = [
            self.client.place_order(symbol=symbol, side=side, type="MARKET", quantity=qty),
            self.client.place_order(
                symbol=symbol,
                side=exit_side,
                type="STOP_MARKET",
                stopPrice=sl_price,
                closePosition=True,
            ),
            self.client.place_order(
                symbol=symbol,
                side=exit_side,
                type="TAKE_PROFIT_MARKET",
                stopPrice=tp_price,
                closePosition=True,
            ),
        ]
        logger.info(
            "opened %s %s %.3f @ %.2f (tp %.2f, sl %.2f, id %s)",
            side,
            symbol,
            qty,
            price,
            tp_price,
            sl_price,
            client_order_id(),
        )
        return sent

    def flatten(self, symbol: str, side: str, qty: float) -> dict:
        """Emergency close; also drops the symbol back to 5x so a re-entry starts small."""
        self.client.set_leverage(symbol=symbol, leverage=5)
        exit_side = "SELL" if side == "BUY" else "BUY"
        return self.client.place_order(
            symbol=symbol, side=exit_side, type="MARKET", quantity=qty, reduceOnly=True
        )

    def check_fill(self, fill: Fill) -> bool:
        """Alert when a market order slipped more than the desk tolerates."""
        if fill.slippage_bps > MAX_SLIPPAGE_BPS:
            logger.warning("%s slipped %.1f bps", fill.symbol, fill.slippage_bps)
            return False
        return True


if __name__ == "__main__":
    router = OrderRouter(PaperClient({"BTCUSDT": 60000.0}))
    for order in router.open_position("BTCUSDT", "BUY", size_usd=200.0, leverage=10, price=60000.0):
        print(order)
    print(router.flatten("BTCUSDT", "BUY", 0.033))
