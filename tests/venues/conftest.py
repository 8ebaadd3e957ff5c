"""A local exchange on the packaged sample data, driven bar by bar, and real ccxt clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.venues.candle_files import sample_data_dir
from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim import LocalExchange, start_local_exchange

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest.fixture
def sim() -> Iterator[LocalExchange]:
    """Manual clock (bar_seconds=0): time moves only through advance()."""
    handle = start_local_exchange(sample_data_dir(), symbols=SYMBOLS, bar_seconds=0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def client(sim: LocalExchange):  # type: ignore[no-untyped-def]
    ex = make_exchange("binanceusdm", sim.url, sim.api_key, sim.secret, async_=False)
    ex.load_markets()
    return ex
