"""A tiny TTL cache in front of Redis; falls back to memory when Redis is not installed."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

try:
    import redis
except ImportError:
    redis = None

logger = logging.getLogger(__name__)

CACHE_TTL_SEC = 300
TICKER_TTL_SEC = 5
KEY_PREFIX = "legacy_trader:v2:"


class MemoryStore:
    """Redis-shaped dictionary used in tests, the demo and machines without Redis."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, str]] = {}

    def set(self, key: str, value: str, ex: int | None = None) -> None:
        expires = time.monotonic() + ex if ex else float("inf")
        self._data[key] = (expires, value)

    def get(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if time.monotonic() >= expires:
            del self._data[key]
            return None
        return value

    def publish(self, channel: str, message: str) -> int:
        logger.debug("publish %s (%d bytes)", channel, len(message))
        return 0


def connect(host: str = "localhost", port: int = 6379, db: int = 0) -> Any:
    """Redis when available, else an in-process store with the same three methods."""
    if redis is None:
        logger.info("redis not installed, using in-memory store")
        return MemoryStore()
    return redis.Redis(host=host, port=port, db=db, socket_timeout=2.0, decode_responses=True)


class TTLCache:
    """JSON values with an expiry, keyed under one prefix so services do not collide."""

    def __init__(self, store: Any | None = None, ttl_sec: int = CACHE_TTL_SEC) -> None:
        self.store = store if store is not None else MemoryStore()
        self.ttl_sec = ttl_sec

    def put(self, key: str, value: Any, ttl_sec: int | None = None) -> None:
        payload = json.dumps(value, separators=(",", ":"))
        self.store.set(KEY_PREFIX + key, payload, ex=ttl_sec or self.ttl_sec)

    def fetch(self, key: str) -> Any | None:
        raw = self.store.get(KEY_PREFIX + key)
        return None if raw is None else json.loads(raw)

    def put_ticker(self, symbol: str, ticker: dict) -> None:
        self.put(f"ticker:{symbol}", ticker, ttl_sec=TICKER_TTL_SEC)


if __name__ == "__main__":
    cache = TTLCache()
    cache.put("hello", {"answer": 42}, ttl_sec=1)
    print(cache.fetch("hello"))
    time.sleep(1)
    print(cache.fetch("hello"))
