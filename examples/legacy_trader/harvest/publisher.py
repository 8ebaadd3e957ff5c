"""Theta publisher: turns the RL tuner's output into a HarvestTheta and pushes it to Redis.

The apply layer reads the latest theta per symbol; whatever is published here is what trades.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from common.cache import TTLCache, connect
from harvest.kernel import HarvestTheta

logger = logging.getLogger(__name__)

THETA_CHANNEL = "harvest:theta"
THETA_KEY_TEMPLATE = "theta:{symbol}"
PUBLISH_TTL_SEC = 900

CONSERVATIVE_THETA = HarvestTheta(T1_R=1.5, T2_R=3.0, T3_R=5.0, lock_R=1.0, kill_threshold=0.55)


def theta_from_params(params: dict[str, Any] | None) -> HarvestTheta:
    """Tuner output (a plain dict from JSON) to a theta; missing keys keep the old ladder."""
    if not params:
        return HarvestTheta()
    return HarvestTheta(
        T1_R=float(params.get("T1_R", 2.0)),
        T2_R=float(params.get("T2_R", 4.0)),
        T3_R=float(params.get("T3_R", 6.0)),
        lock_R=float(params.get("lock_R", 1.5)),
        kill_threshold=float(params.get("kill_threshold", 0.6)),
    )


def theta_from_config(cfg: Any) -> HarvestTheta:
    """Same, from the tuner's config object used by the offline backtests."""
    try:
        return HarvestTheta(
            T1_R=getattr(cfg, "T1_R", 2.0),
            T2_R=getattr(cfg, "T2_R", 4.0),
            T3_R=getattr(cfg, "T3_R", 6.0),
            lock_R=getattr(cfg, "lock_R", 1.5),
            max_hold_sec=int(getattr(cfg, "max_hold_sec", 3600)),
        )
    except Exception:
        return HarvestTheta()


def regime_theta(regime: str) -> HarvestTheta:
    """Hand-tuned ladders for the three market regimes the tuner does not cover yet."""
    if regime == "trend":
        return HarvestTheta(T1_R=2.0, T2_R=4.0, T3_R=8.0, lock_R=1.5)
    if regime == "chop":
        return CONSERVATIVE_THETA
    return HarvestTheta()


class ThetaPublisher:
    """Publishes one theta per symbol and remembers what it sent, for the dashboard."""

    def __init__(self, cache: TTLCache | None = None) -> None:
        self.cache = cache or TTLCache(connect(host="localhost", port=6379))
        self.sent: dict[str, HarvestTheta] = {}

    def publish(self, symbol: str, params: dict[str, Any] | None) -> HarvestTheta:
        try:
            theta = theta_from_params(params)
        except (TypeError, ValueError):
            logger.exception("bad tuner output for %s, publishing defaults", symbol)
            theta = HarvestTheta()
        self.cache.put(THETA_KEY_TEMPLATE.format(symbol=symbol), theta.as_dict(), PUBLISH_TTL_SEC)
        self.cache.store.publish(THETA_CHANNEL, json.dumps({"symbol": symbol, **theta.as_dict()}))
        self.sent[symbol] = theta
        logger.info(
            "published theta for %s: T1=%sR T2=%sR T3=%sR",
            symbol,
            theta.T1_R,
            theta.T2_R,
            theta.T3_R,
        )
        return theta

    def latest(self, symbol: str) -> HarvestTheta:
        cached = self.cache.fetch(THETA_KEY_TEMPLATE.format(symbol=symbol))
        return HarvestTheta(**cached) if cached else HarvestTheta()


if __name__ == "__main__":
    pub = ThetaPublisher()
    print(pub.publish("BTCUSDT", {"T1_R": 2.5, "T2_R": 5.0}))
    print(pub.publish("ETHUSDT", None))
    print(pub.latest("BTCUSDT"))
