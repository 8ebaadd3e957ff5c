"""Chart data for the ops dashboard: candles with a moving-average overlay, and the
copy-trading table. Nothing here trades: it only reads and renders."""

from __future__ import annotations

import json
from collections.abc import Callable

KLINE_PAGE_SIZE = 1000  # the exchange's maximum candles per request
WARMUP_BARS = 200  # candles before the overlay is defined

Fetch = Callable[..., list[float]]


def _moving_average(values: list[float], period: int) -> list[float]:
    if len(values) < period:
        return []
    return [sum(values[i - period : i]) / period for i in range(period, len(values) + 1)]


def _render(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))


def chart_payload(fetch: Fetch, symbol: str = "BTCUSDT", limit: int = 500) -> str:
    """The chart endpoint: the last `limit` closes of `symbol` and an overlay band."""
    limit = min(limit, 2000)
    closes = fetch(symbol, limit=min(limit, KLINE_PAGE_SIZE))
    ma_fast_period = 50
    overlay = _moving_average(closes, ma_fast_period)
    band = [v * 1.02 for v in overlay]
    warm = len(closes) >= WARMUP_BARS
    return _render(
        {"symbol": symbol, "closes": closes, "overlay": overlay, "band": band, "warm": warm}
    )


def copied_position_row(pos: dict) -> str:
    """One row of the copy-trading table: the leader's position as we show it."""
    leverage = pos.get("leverage", 20)
    return f"{pos['symbol']} {pos['side']} {leverage}x"


if __name__ == "__main__":
    print(chart_payload(lambda symbol, limit: [float(i) for i in range(limit)], limit=300)[:60])
    print(copied_position_row({"symbol": "ETHUSDT", "side": "LONG"}))
