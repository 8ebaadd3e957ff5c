"""Build a ccxt exchange the way qctl uses it, optionally pointed at another base URL.

The recipe of ../shared/ccxt_local_exchange.md: no currency or margin look-ups at load time (they
would call endpoints outside the futures API), no clock-offset call, linear markets only; with
`api_url`, every REST base URL is rewritten to it (the path is kept), and Binance's linear error
codes are merged into the exact table, because ccxt applies them only to its own hostnames
(-2019 InsufficientFunds, -4164 InvalidOrder would otherwise be a plain ExchangeError).
"""

from __future__ import annotations

import re
from typing import Any

import ccxt
import ccxt.async_support

_ORIGIN = re.compile(r"^https?://[^/]+")


def make_exchange(
    exchange_id: str,
    api_url: str | None,
    api_key: str,
    secret: str,
    async_: bool = True,
) -> Any:
    """A configured ccxt exchange (async_support by default); the caller closes an async one."""
    module = ccxt.async_support if async_ else ccxt
    try:
        cls = getattr(module, exchange_id)
    except AttributeError:
        raise ValueError(f"ccxt has no exchange {exchange_id!r}") from None
    ex = cls(
        {
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": api_url is None,
            "options": {
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchMarkets": {"types": ["linear"]},
                "adjustForTimeDifference": False,
            },
        }
    )
    if api_url is not None:
        base = api_url.rstrip("/")
        for key, value in list(ex.urls["api"].items()):
            if isinstance(value, str):
                ex.urls["api"][key] = _ORIGIN.sub(base, value)
        exceptions = ex.exceptions
        for market_type in ("linear",):
            extra = exceptions.get(market_type, {})
            exceptions["exact"] = {**exceptions.get("exact", {}), **extra.get("exact", {})}
            exceptions["broad"] = {**exceptions.get("broad", {}), **extra.get("broad", {})}
    return ex
