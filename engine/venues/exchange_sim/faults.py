"""Faults on command: the failures a live broker must survive, injected into the next requests.

A fault applies to the next `count` requests that match it (an optional path prefix and method).
Without a path, the order faults (drop_after_accept, reject_margin, reject_min_notional,
duplicate_fill) wait for the next order placement (POST /fapi/v1/order or /fapi/v1/algoOrder)
and the transport faults (http_429, http_418, http_5xx, timeout) hit any exchange request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

KINDS = (
    "http_429",
    "http_418",
    "http_5xx",
    "timeout",
    "drop_after_accept",
    "reject_margin",
    "reject_min_notional",
    "duplicate_fill",
)
ORDER_KINDS = frozenset(
    {"drop_after_accept", "reject_margin", "reject_min_notional", "duplicate_fill"}
)
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder")
DEFAULT_TIMEOUT_SECONDS = 15.0  # longer than ccxt's default client timeout (10 s)


class FaultError(ValueError):
    """A fault request the simulator cannot honour (unknown kind, bad count)."""


@dataclass(slots=True)
class Fault:
    kind: str
    count: int
    path: str | None = None
    method: str | None = None
    seconds: float = DEFAULT_TIMEOUT_SECONDS  # timeout: how long the reply is held back
    status: int = 503  # http_5xx: which status

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.path is not None:
            return path.startswith(self.path)
        if self.kind in ORDER_KINDS:
            return method == "POST" and path in ORDER_PATHS
        return not path.startswith("/qctl-sim/")

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "path": self.path,
            "method": self.method,
            "seconds": self.seconds,
            "status": self.status,
        }


def parse_fault(body: dict[str, Any]) -> Fault:
    """A fault from the JSON of `POST /qctl-sim/fault`."""
    kind = body.get("kind")
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FaultError(f"fault count must be a positive integer, got {count!r}")
    path = body.get("path")
    method = body.get("method")
    seconds = body.get("seconds", DEFAULT_TIMEOUT_SECONDS)
    status = body.get("status", 503)
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise FaultError(f"fault path must start with '/', got {path!r}")
    if method is not None and method not in ("GET", "POST", "PUT", "DELETE"):
        raise FaultError(f"fault method must be GET, POST, PUT or DELETE, got {method!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise FaultError(f"fault seconds must be a non-negative number, got {seconds!r}")
    if not isinstance(status, int) or not 500 <= status <= 599:
        raise FaultError(f"fault status must be a 5xx code, got {status!r}")
    return Fault(kind, count, path, method, float(seconds), status)


class FaultBook:
    """Pending faults; `take` hands out the first match and counts it down (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []
        self.applied: list[dict[str, Any]] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_json() for f in self._pending]

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._pending:
                if f.matches(method, path):
                    f.count -= 1
                    if f.count == 0:
                        self._pending.remove(f)
                    self.applied.append({"kind": f.kind, "method": method, "path": path})
                    return f
        return None
