"""make_exchange: the recipe that points ccxt at another base URL, checked on ccxt itself and on
one async round trip against the local exchange."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim import LocalExchange
from tests.venues.conftest import BTC


def test_every_rest_base_is_rewritten() -> None:
    ex = make_exchange("binanceusdm", "http://127.0.0.1:9", "k", "s", async_=False)
    bases = [v for v in ex.urls["api"].values() if isinstance(v, str)]
    assert bases and all(v.startswith("http://127.0.0.1:9/") for v in bases)
    assert ex.urls["api"]["fapiPrivate"] == "http://127.0.0.1:9/fapi/v1"
    assert ex.options["fetchCurrencies"] is False
    assert ex.options["adjustForTimeDifference"] is False
    assert ex.enableRateLimit is False


def test_linear_error_codes_map_on_any_host() -> None:
    ex = make_exchange("binanceusdm", "http://127.0.0.1:9", "k", "s", async_=False)
    assert ex.exceptions["exact"]["-2019"] is ccxt.InsufficientFunds
    assert ex.exceptions["exact"]["-4164"] is ccxt.InvalidOrder
    plain = ccxt.binanceusdm()
    assert plain.exceptions["exact"].get("-2019") is not ccxt.InsufficientFunds  # why we merge


def test_without_api_url_the_real_hosts_stay() -> None:
    ex = make_exchange("binanceusdm", None, "k", "s", async_=False)
    assert ex.urls["api"]["fapiPrivate"].startswith("https://fapi.binance.com/")
    assert ex.enableRateLimit is True


def test_unknown_exchange_id() -> None:
    with pytest.raises(ValueError, match="no exchange"):
        make_exchange("nosuchexchange", None, "k", "s")


def test_async_round_trip(sim: LocalExchange) -> None:
    async def session() -> None:
        ex = make_exchange("binanceusdm", sim.url, sim.api_key, sim.secret)
        try:
            await ex.load_markets()
            rows, balance = await asyncio.gather(
                ex.fetch_ohlcv(BTC, "1h", limit=10), ex.fetch_balance()
            )
            assert len(rows) == 10 and balance["USDT"]["total"] == 10_000.0
            await ex.set_leverage(5, BTC)
            order = await ex.create_order(BTC, "market", "buy", 0.01)
            assert order["status"] == "closed"
            stop = await ex.create_order(
                BTC, "market", "sell", 0.01, params={"stopLossPrice": 1000, "reduceOnly": True}
            )
            (pos,) = await ex.fetch_positions()
            assert pos["contracts"] == 0.01 and pos["leverage"] == 5
            opened = await ex.fetch_open_orders(BTC, params={"trigger": True})
            assert [o["id"] for o in opened] == [stop["id"]]
            await ex.cancel_order(stop["id"], BTC, params={"trigger": True})
            await ex.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
            assert await ex.fetch_positions() == []
            assert len(await ex.fetch_my_trades(BTC)) == 2
            with pytest.raises(ccxt.InsufficientFunds):
                sim.fault("reject_margin")
                await ex.create_order(BTC, "market", "buy", 0.01)
        finally:
            await ex.close()

    asyncio.run(session())
    led = sim.ledger()
    assert len(led["fills"]) == 2 and led["positions"] == []
    assert led["algo_orders"][0]["status"] == "CANCELED"
