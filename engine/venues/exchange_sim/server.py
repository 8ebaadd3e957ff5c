"""HTTP front of the local exchange: routing, Binance request signing, error replies, faults.

Standard library only (ThreadingHTTPServer), bound to 127.0.0.1. Two settings matter for
latency on loopback: Nagle is off on every connection (keep-alive requests otherwise wait ~40 ms
for a delayed ACK) and the listen backlog is 256 (the default 5 drops bursts of async requests).

Signed endpoints are checked as Binance checks them: the API key header (-2015), the HMAC-SHA256
of the raw query or body up to `&signature=` (-1022), and the request timestamp against the wall
clock within `recvWindow` (-1021). Simulated time never enters the signature check.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

from engine.core.tiers import LeverageTiers
from engine.venues.candle_files import load_market_data
from engine.venues.exchange_sim.api import SimExchange
from engine.venues.exchange_sim.faults import Fault, FaultBook, FaultError, parse_fault
from engine.venues.exchange_sim.ledger import ApiError, Ledger
from engine.venues.exchange_sim.market import ExchangeConfig, ReplayMarket, fmt
from engine.venues.simulated import BrokerConfig

HOST = "127.0.0.1"  # never another interface: the local exchange holds no real money
DEFAULT_API_KEY = "qctl-sim-key"
DEFAULT_SECRET = "qctl-sim-secret"
DEFAULT_RECV_WINDOW_MS = 5000  # Binance's default when a request sends none
MAX_RECV_WINDOW_MS = 60000
FUTURE_TOLERANCE_MS = 1000  # Binance accepts a timestamp up to 1 s ahead of its clock
LISTEN_BACKLOG = 256
REQUEST_LOG_SIZE = 10_000  # bounded: a long demo run must not grow memory without end
INTERNAL_ERROR_MSG = "An unknown error occurred while processing the request."


@dataclass(slots=True)
class ServerState:
    exchange: SimExchange
    faults: FaultBook
    api_key: str
    secret: bytes
    # the latest requests (method, path), for tests that check what a client sent
    requests: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    allow_reuse_address = True
    state: ServerState

    def server_activate(self) -> None:
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on keep-alive clients: a stopped exchange answers nobody."""
        with self.connections_lock:
            conns = list(self.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the ledger, not the access log, is the record."""

    # -- replies ---------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout fault): nothing to do

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode())

    def _error(self, err: ApiError) -> None:
        self._json(err.http_status, {"code": err.code, "msg": err.msg})

    # -- requests --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode() if length else ""

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        body = self._read_body()
        path = url.path
        if path.startswith("/qctl-sim/"):
            self._control(method, path, body)
            return
        state.requests.append((method, path))
        raw = body if method in ("POST", "PUT") and body else url.query
        fault = state.faults.take(method, path)
        if fault is not None and self._transport_fault(fault):
            return
        try:
            params = dict(parse_qsl(raw, keep_blank_values=True))
            route = state.exchange.routes.get((method, path))
            if route is not None and route.signed:
                self._verify(raw, params)
            if fault is not None and fault.kind == "reject_margin":
                raise ApiError(-2019, "Margin is insufficient.")
            if fault is not None and fault.kind == "reject_min_notional":
                floor = fmt(state.exchange.ledger.config.min_notional)
                raise ApiError(
                    -4164,
                    f"Order's notional must be no smaller than {floor} (unless you choose reduce only).",
                )
            if fault is not None and fault.kind == "duplicate_fill":
                with state.exchange.lock:
                    state.exchange.ledger.duplicate_fills_pending += 1
            result = state.exchange.call(method, path, params)
        except ApiError as err:
            self._after(fault)
            self._error(err)
            return
        except Exception:  # a bug here must not look like a network fault to the client
            traceback.print_exc(file=sys.stderr)
            self._error(ApiError(-1000, INTERNAL_ERROR_MSG, http_status=500))
            return
        if self._after(fault):
            return
        self._json(200, result)

    def _transport_fault(self, fault: Fault) -> bool:
        """Answer for the faults that never reach the exchange; True when the reply is sent."""
        if fault.kind == "http_429":
            self._json(
                429,
                {
                    "code": -1003,
                    "msg": "Too many requests; current limit is 2400 requests per minute.",
                },
            )
        elif fault.kind == "http_418":
            self._json(418, {"code": -1003, "msg": "Way too many requests; IP banned until later."})
        elif fault.kind == "http_5xx":
            self._send(fault.status, b"<html><body>Service Unavailable</body></html>", "text/html")
        else:
            return False
        return True

    def _after(self, fault: Fault | None) -> bool:
        """Faults applied after the exchange did its work; True when the reply must not be sent."""
        if fault is None:
            return False
        if fault.kind == "drop_after_accept":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault.kind == "timeout":
            time.sleep(fault.seconds)
        return False

    def _verify(self, raw: str, params: dict[str, str]) -> None:
        state = self.server.state
        key = self.headers.get("X-MBX-APIKEY")
        if not key or not hmac.compare_digest(key, state.api_key):
            raise ApiError(
                -2015, "Invalid API-key, IP, or permissions for action.", http_status=401
            )
        prefix, sep, signature = raw.rpartition("&signature=")
        if not sep or not signature:
            raise ApiError(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        expected = hmac.new(state.secret, prefix.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(-1022, "Signature for this request is not valid.")
        try:
            ts = int(params.get("timestamp", ""))
            window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
        except ValueError:
            raise ApiError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            ) from None
        if not 0 < window <= MAX_RECV_WINDOW_MS:
            raise ApiError(-1131, "recvWindow must be less than 60000")
        now = int(time.time() * 1000)
        if ts > now + FUTURE_TOLERANCE_MS or now - ts > window:
            raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")

    # -- the simulator's own endpoints (no signing: loopback only) ---------------------------

    def _control(self, method: str, path: str, body: str) -> None:
        state = self.server.state
        try:
            payload = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            self._json(400, {"error": f"bad JSON body: {exc}"})
            return
        if (method, path) == ("GET", "/qctl-sim/ledger"):
            self._json(200, state.exchange.snapshot())
        elif (method, path) == ("POST", "/qctl-sim/fault"):
            try:
                fault = parse_fault(payload)
            except FaultError as exc:
                self._json(400, {"error": str(exc)})
                return
            state.faults.add(fault)
            self._json(200, {"pending": state.faults.pending()})
        elif (method, path) == ("GET", "/qctl-sim/fault"):
            self._json(200, {"pending": state.faults.pending(), "applied": state.faults.applied})
        elif (method, path) == ("DELETE", "/qctl-sim/fault"):
            state.faults.clear()
            self._json(200, {"pending": []})
        elif (method, path) == ("POST", "/qctl-sim/advance"):
            bars = payload.get("bars", 1)
            if isinstance(bars, bool) or not isinstance(bars, int) or bars < 0:
                self._json(400, {"error": f"bars must be a non-negative integer, got {bars!r}"})
                return
            now = state.exchange.advance(bars)
            self._json(200, {"sim_time_ms": now, "finished": state.exchange.market.finished})
        else:
            self._json(404, {"error": f"no such simulator endpoint: {method} {path}"})


class LocalExchange:
    """A running local exchange: its URL, its ledger, and the controls tests drive it with."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"
        self.api_key = server.state.api_key
        self.secret = server.state.secret.decode()

    @property
    def exchange(self) -> SimExchange:
        return self._server.state.exchange

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of the latest exchange requests, oldest first (faulted ones too)."""
        return list(self._server.state.requests)

    def ledger(self) -> dict[str, Any]:
        """The same JSON as `GET /qctl-sim/ledger`."""
        return self.exchange.snapshot()

    def fault(self, kind: str, count: int = 1, path: str | None = None, **options: Any) -> None:
        """Queue a fault (see faults.py); raises FaultError for an unknown kind or bad option."""
        self._server.state.faults.add(
            parse_fault({"kind": kind, "count": count, "path": path, **options})
        )

    def clear_faults(self) -> None:
        self._server.state.faults.clear()

    def advance(self, n: int = 1) -> int:
        """Close `n` bars now; returns the new simulated time (ms)."""
        return self.exchange.advance(n)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalExchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_exchange(
    data_dir: str | Path,
    symbols: Sequence[str] | None = None,
    start: int | str | None = None,
    bar_seconds: float = 1.0,
    timeframe: str = "1h",
    starting_balance: float | None = None,
    config: ExchangeConfig | None = None,
    broker: BrokerConfig | None = None,
    tiers: LeverageTiers | None = None,
) -> SimExchange:
    """Load the candles and set up the replay and the account (no server yet)."""
    cfg = config or ExchangeConfig.from_toml()
    if isinstance(start, str):
        stamp = pd.Timestamp(start)
        start = int((stamp.tz_localize("UTC") if stamp.tz is None else stamp).timestamp() * 1000)
    if starting_balance is not None:
        cfg = ExchangeConfig(
            starting_balance,
            cfg.default_leverage,
            cfg.min_notional,
            cfg.history_bars,
            cfg.step_value,
        )
    data = load_market_data(data_dir, symbols=symbols, timeframe=timeframe)
    market = ReplayMarket(data, cfg, start)
    ledger = Ledger(market, cfg, broker or BrokerConfig.from_toml(), tiers or LeverageTiers.load())
    return SimExchange(market, ledger, bar_seconds)


def serve(
    exchange: SimExchange,
    port: int = 0,
    api_key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_SECRET,
) -> LocalExchange:
    """Start the HTTP server on 127.0.0.1:`port` (0: any free port) in a daemon thread."""
    server = _Server((HOST, port), _Handler)
    server.state = ServerState(exchange, FaultBook(), api_key, secret.encode())
    thread = threading.Thread(target=server.serve_forever, name="qctl-sim", daemon=True)
    thread.start()
    return LocalExchange(server, thread)


def start_local_exchange(
    data_dir: str | Path,
    symbols: Sequence[str] | None = None,
    start: int | str | None = None,
    bar_seconds: float = 1.0,
    port: int = 0,
    api_key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_SECRET,
    **options: Any,
) -> LocalExchange:
    """Load, set up and serve a local exchange in this process; `.stop()` it when done.

    `start` is the simulated start (epoch ms or an ISO date, UTC; default: after `history_bars`);
    `bar_seconds=0` moves the clock only through `advance()` (deterministic tests).
    """
    exchange = build_exchange(data_dir, symbols, start, bar_seconds, **options)
    return serve(exchange, port, api_key, secret)
