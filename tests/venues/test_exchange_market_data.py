"""Market-data and account-history calls a live loop makes besides orders, through real ccxt."""

from __future__ import annotations

import asyncio

import pytest

from engine.venues.candle_files import sample_data_dir
from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim import LocalExchange, start_local_exchange
from tests.venues.conftest import BTC, ETH


def test_ticker_mark_and_funding_rate(sim: LocalExchange, client) -> None:
    price = sim.exchange.market.price("BTC-USDT")
    assert client.fetch_ticker(BTC)["last"] == price
    assert set(client.fetch_tickers()) == {BTC, ETH}
    assert client.fetch_mark_price(BTC)["markPrice"] == price
    rate = client.fetch_funding_rate(BTC)
    now = sim.ledger()["sim_time_ms"]
    history = client.fetch_funding_rate_history(BTC, limit=3)
    assert len(history) == 3 and all(h["timestamp"] <= now for h in history)
    assert rate["fundingRate"] == history[-1]["fundingRate"]  # the latest print, not a future one
    assert rate["fundingTimestamp"] > now


def test_funding_history_matches_the_ledger(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    sim.advance(17)  # two 8h settlements at least
    paid = [e for e in sim.ledger()["funding"] if e["symbol"] == "BTC-USDT"]
    got = client.fetch_funding_history(BTC)
    assert len(got) == len(paid) >= 2
    assert [g["amount"] for g in got] == pytest.approx([-e["paid"] for e in paid])


def test_start_as_a_date() -> None:
    with start_local_exchange(
        sample_data_dir(), symbols=["BTC-USDT"], start="2025-09-01", bar_seconds=0
    ) as h:
        assert h.ledger()["sim_time_ms"] == 1756684800000  # 2025-09-01 00:00 UTC


def test_fifty_concurrent_async_requests(sim: LocalExchange) -> None:
    async def burst() -> list:
        ex = make_exchange("binanceusdm", sim.url, sim.api_key, sim.secret)
        try:
            await ex.load_markets()
            return await asyncio.gather(*(ex.fetch_ticker(BTC) for _ in range(50)))
        finally:
            await ex.close()

    tickers = asyncio.run(burst())
    assert len(tickers) == 50 and len({t["last"] for t in tickers}) == 1


def test_leverage_margin_mode_and_fees_read_back(client) -> None:
    client.set_leverage(7, BTC)
    client.set_margin_mode("isolated", BTC)
    lev = client.fetch_leverage(BTC)
    assert lev["longLeverage"] == lev["shortLeverage"] == 7
    assert client.fetch_margin_mode(BTC)["marginMode"] == "isolated"
    assert client.fetch_margin_mode(ETH)["marginMode"] == "cross"
    from engine.venues.simulated import BrokerConfig

    fee = client.fetch_trading_fee(BTC)
    assert fee["taker"] == BrokerConfig.from_toml().taker_fee


def test_cancel_all_trigger_orders(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    for level in (1000, 2000):
        client.create_order(
            BTC, "market", "sell", 0.01, params={"stopLossPrice": level, "reduceOnly": True}
        )
    client.cancel_all_orders(BTC)  # plain orders: none rest, the stops stay
    assert len(client.fetch_open_orders(BTC, params={"trigger": True})) == 2
    client.cancel_all_orders(BTC, params={"trigger": True})
    assert client.fetch_open_orders(BTC, params={"trigger": True}) == []
    assert {a["status"] for a in sim.ledger()["algo_orders"]} == {"CANCELED"}
