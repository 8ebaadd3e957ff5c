"""A local Binance USD-M futures exchange for tests and demos (`qctl sim serve`).

It replays recorded candles and speaks the REST subset ccxt's `binanceusdm` uses, so the real ccxt
code path (signing, parsing, error mapping) runs against it; its own truth is `GET /qctl-sim/ledger`.
market.py is the replay clock and prices, ledger.py the account and the order rules, api.py the
endpoints, server.py the HTTP front (signing, errors, faults), faults.py the faults on command.
"""

from engine.venues.exchange_sim.faults import KINDS as FAULT_KINDS
from engine.venues.exchange_sim.faults import FaultError
from engine.venues.exchange_sim.market import ExchangeConfig, ExchangeConfigError
from engine.venues.exchange_sim.server import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    HOST,
    LocalExchange,
    build_exchange,
    serve,
    start_local_exchange,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "FAULT_KINDS",
    "HOST",
    "ExchangeConfig",
    "ExchangeConfigError",
    "FaultError",
    "LocalExchange",
    "build_exchange",
    "serve",
    "start_local_exchange",
]
