"""CcxtBroker against the local exchange, call by call (what the README promises of live orders)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from engine.core.tiers import LeverageTiers
from engine.domain import OrderStatus, Portfolio, Side
from engine.venues.ccxt_broker import CcxtBroker
from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim.server import DEFAULT_API_KEY, DEFAULT_SECRET
from engine.venues.simulated import BrokerConfig


@pytest.fixture
def broker(sim) -> Iterator[CcxtBroker]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    ex = make_exchange("binanceusdm", sim.url, DEFAULT_API_KEY, DEFAULT_SECRET)
    call(ex.load_markets())
    b = CcxtBroker(
        BrokerConfig.from_toml(), LeverageTiers.load(), Portfolio(wallet_balance=10_000.0),
        run_id="t", exchange=ex, call=call,
        markets={"BTC-USDT": "BTC/USDT:USDT", "ETH-USDT": "ETH/USDT:USDT"},
    )  # fmt: skip
    yield b
    call(ex.close())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def test_an_entry_below_the_minimum_notional_is_rejected_before_sending(sim, broker):
    sim.advance(1)
    price = float(broker.call(broker.exchange.fetch_ticker("ETH/USDT:USDT"))["last"])
    order = broker.market_order(1, "ETH-USDT", Side.LONG, 4.0 / price, "entry")  # ~4 USDT
    sent_before = len(sim.requests)
    events = broker.open_position(order, price, 5.0, 0.02, 0.04)
    assert [e.order.status for e in events] == [OrderStatus.REJECTED]
    assert "minimum" in events[0].order.detail
    assert not [p for _, p in sim.requests[sent_before:] if p == "/fapi/v1/order"]
    assert sim.ledger()["orders"] == []


def test_an_entry_rests_both_backstops_and_a_moved_stop_is_placed_before_the_old_is_cancelled(
    sim, broker
):
    sim.advance(1)
    price = float(broker.call(broker.exchange.fetch_ticker("BTC/USDT:USDT"))["last"])
    order = broker.market_order(1, "BTC-USDT", Side.LONG, 200 / price, "entry")
    broker.open_position(order, price, 5.0, 0.02, 0.04)
    pos = broker.portfolio.positions["BTC-USDT"]
    resting = {o["type"]: o for o in sim.ledger()["open_algo_orders"]}
    assert set(resting) == {"STOP_MARKET", "TAKE_PROFIT_MARKET"}
    assert float(resting["STOP_MARKET"]["trigger_price"]) == pytest.approx(pos.stop_price)
    mark = len(sim.requests)
    level = (pos.stop_price + price) / 2  # tighter, still below the market
    broker.move_stop(2, "BTC-USDT", level)
    calls = [(m, p) for m, p in sim.requests[mark:] if p == "/fapi/v1/algoOrder"]
    assert calls[0] == ("POST", "/fapi/v1/algoOrder") and ("DELETE", "/fapi/v1/algoOrder") in calls
    stops = [o for o in sim.ledger()["open_algo_orders"] if o["type"] == "STOP_MARKET"]
    assert len(stops) == 1 and float(stops[0]["trigger_price"]) == pytest.approx(pos.stop_price)
    assert pos.stop_price == pytest.approx(level, rel=1e-4)


def test_a_stop_the_exchange_refuses_leaves_the_old_one_in_force(sim, broker):
    sim.advance(1)
    price = float(broker.call(broker.exchange.fetch_ticker("BTC/USDT:USDT"))["last"])
    broker.open_position(broker.market_order(1, "BTC-USDT", Side.LONG, 200 / price, "entry"),
                         price, 5.0, 0.02, None)  # fmt: skip
    pos = broker.portfolio.positions["BTC-USDT"]
    before = pos.stop_price
    events = broker.move_stop(2, "BTC-USDT", price * 1.01)  # above the market: would trigger
    assert [e.order.status for e in events] == [OrderStatus.REJECTED]
    assert pos.stop_price == before
    stops = [o for o in sim.ledger()["open_algo_orders"] if o["type"] == "STOP_MARKET"]
    assert len(stops) == 1 and float(stops[0]["trigger_price"]) == pytest.approx(before)


def test_leverage_is_set_in_whole_x_rounded_down(sim, broker):
    sim.advance(1)
    price = float(broker.call(broker.exchange.fetch_ticker("ETH/USDT:USDT"))["last"])
    broker.open_position(broker.market_order(1, "ETH-USDT", Side.SHORT, 100 / price, "entry"),
                         price, 7.9, 0.02, None)  # fmt: skip
    assert sim.ledger()["leverage"]["ETH-USDT"] == 7


def _fills(events) -> list[tuple]:
    return [
        (e.fill.side, e.fill.qty, e.fill.price, e.fill.ts) for e in events if e.fill is not None
    ]


@pytest.mark.parametrize("journaled", [True, False])
def test_after_a_restart_a_backstop_fill_is_not_taken_from_an_earlier_close(sim, broker, journaled):
    """A long closed and a new one opened in the same bar, then a restart (the broker forgets
    the trades it saw), then the new long's backstop fires: the fill booked is the backstop's
    own trade, not the earlier close (same side, same bar) that the journal already holds.
    Without the journal's fills (`journaled=False`) the earlier close is what gets booked: the
    kill -9 test caught that as a journal fill the exchange never made."""
    sim.advance(1)
    price = float(broker.call(broker.exchange.fetch_ticker("ETH/USDT:USDT"))["last"])
    known = _fills(broker.open_position(
        broker.market_order(1, "ETH-USDT", Side.LONG, 300 / price, "entry"), price, 5.0, 0.2, None
    ))  # fmt: skip
    pos = broker.portfolio.positions["ETH-USDT"]
    close = broker.market_order(2, "ETH-USDT", Side.SHORT, pos.qty, "exit", reduce_only=True)
    known += _fills(broker.execute(close, price))
    # a tight stop and take-profit: the next bars fire one of them
    events = broker.open_position(
        broker.market_order(3, "ETH-USDT", Side.LONG, 200 / price, "entry"), price, 5.0, 0.0005,
        0.0005,
    )  # fmt: skip
    known += _fills(events)
    pos = broker.portfolio.positions["ETH-USDT"]
    broker._seen_trades.clear()  # what a restart forgets
    broker._own_orders.clear()
    if journaled:
        assert broker.mark_journaled(broker.position_trades(pos), known) == 3
    for _ in range(48):
        sim.advance(1)
        if not broker.fetch_positions():
            break
    booked = _fills(broker.sync(sim.exchange.market.now_ms))
    ours = {(f[1], f[2]) for f in known}
    fired = [
        (float(t["qty"]), float(t["price"]))
        for t in sim.ledger()["fills"]
        if (float(t["qty"]), float(t["price"])) not in ours
    ]
    assert len(fired) == 1 and "ETH-USDT" not in broker.portfolio.positions
    if journaled:
        assert [(q, p) for _, q, p, _ in booked] == fired
    else:  # the earlier close, booked again as the backstop's fill
        assert [(q, p) for _, q, p, _ in booked] != fired
