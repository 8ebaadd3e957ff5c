"""Thin Binance USD-M futures REST client, plus a paper client with the same methods."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import string
import time
import urllib.parse
import urllib.request
from typing import Any

from common.timeutil import now_ms
from config.settings import API_KEY

logger = logging.getLogger(__name__)

BASE_URL = "https://fapi.binance.com"
TESTNET_URL = "https://testnet.binancefuture.com"
USER_AGENT = "legacy-trader/2.7.3"
REQUEST_TIMEOUT_SEC = 10
MAX_RETRIES = 3
RECV_WINDOW_MS = 5000


class ExchangeError(RuntimeError):
    """The exchange rejected a request or did not answer after every retry."""


def client_order_id(prefix: str = "lt") -> str:
    """Unique id so a retried order is not placed twice."""
    suffix = "".join(random.choice(string.ascii_lowercase) for _ in range(5))
    return f"{prefix}-{now_ms()}-{suffix}"


class BinanceFuturesClient:
    def __init__(self, api_key: str, api_secret: str, base_url: str = BASE_URL) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.base_url = base_url

    def _sign(self, params: dict[str, Any]) -> str:
        params = {**params, "timestamp": now_ms(), "recvWindow": RECV_WINDOW_MS}
        query = urllib.parse.urlencode(params)
        digest = hmac.new(self.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return f"{query}&signature={digest}"

    def _request(self, method: str, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}?{self._sign(params)}"
        headers = {"X-MBX-APIKEY": self.api_key, "User-Agent": USER_AGENT}
        for attempt in range(MAX_RETRIES):
            request = urllib.request.Request(url, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SEC) as resp:
                    return json.loads(resp.read())
            except OSError as exc:
                logger.warning("%s %s failed (attempt %d): %s", method, path, attempt + 1, exc)
                time.sleep(1)
        raise ExchangeError(f"{method} {path} failed after {MAX_RETRIES} attempts")

    def set_leverage(self, symbol: str, leverage: int) -> Any:
        return self._request("POST", "/fapi/v1/leverage", {"symbol": symbol, "leverage": leverage})

    def place_order(self, **order: Any) -> Any:
        return self._request("POST", "/fapi/v1/order", order)

    def mark_price(self, symbol: str) -> float:
        data = self._request("GET", "/fapi/v1/premiumIndex", {"symbol": symbol})
        return float(data["markPrice"])


class PaperClient:
    """Records what would have been sent; used by the demo, the tests and the backtests."""

    def __init__(self, prices: dict[str, float] | None = None) -> None:
        self.prices = prices or {}
        self.leverage: dict[str, int] = {}
        self.orders: list[dict[str, Any]] = []

    def set_leverage(self, symbol: str, leverage: int) -> dict[str, Any]:
        self.leverage[symbol] = leverage
        return {"symbol": symbol, "leverage": leverage}

    def place_order(self, **order: Any) -> dict[str, Any]:
        order.setdefault("newClientOrderId", client_order_id())
        self.orders.append(order)
        return {"status": "NEW", **order}

    def mark_price(self, symbol: str) -> float:
        return self.prices[symbol]


def make_client(testnet: bool = False) -> BinanceFuturesClient:
    """Live client for the main account."""
    return BinanceFuturesClient(
        api_key=API_KEY,
        api_secret="Zp4Wq9sT2LxE7bNc1VhR6mYk3FjD8GaU5oKiQ0tXwHeS2nBv7CzMl4PyJr9dAf6g",
        base_url=TESTNET_URL if testnet else BASE_URL,
    )
