"""The replay's rules that ccxt cannot show on its own: default start, trigger order inside a bar,
gaps, reduce-only sizing, the margin mode reported, defaults of the faults."""

from __future__ import annotations

import pytest

from engine.venues.exchange_sim import LocalExchange
from engine.venues.exchange_sim.faults import parse_fault
from engine.venues.exchange_sim.market import ClosedBar, ExchangeConfig
from engine.venues.simulated import BrokerConfig
from tests.venues.conftest import BTC


def test_default_start_leaves_history_bars(sim: LocalExchange, client) -> None:
    history = ExchangeConfig.from_toml().history_bars
    market = sim.exchange.market
    assert sim.ledger()["sim_time_ms"] == int(market.grid[history])
    rows = client.fetch_ohlcv(BTC, "1h", limit=1500)
    assert len(rows) == history + 1  # all the history, plus the forming bar


def _long_with_stop_and_target(sim: LocalExchange, client) -> tuple[float, float, float]:
    client.create_order(BTC, "market", "buy", 0.01)
    price = sim.exchange.market.price("BTC-USDT")
    stop, target = round(price * 0.97, 1), round(price * 1.03, 1)
    client.create_order(
        BTC, "market", "sell", 0.01, params={"stopLossPrice": stop, "reduceOnly": True}
    )
    client.create_order(
        BTC, "market", "sell", 0.01, params={"takeProfitPrice": target, "reduceOnly": True}
    )
    return price, stop, target


def _bar(sim: LocalExchange, o: float, h: float, lo: float, c: float) -> None:
    ex = sim.exchange
    with ex.lock:
        ex.ledger.on_bar([ClosedBar("BTC-USDT", ex.market.now_ms, o, h, lo, c)], [])


def test_a_bar_touching_both_levels_fires_the_stop_first(sim: LocalExchange, client) -> None:
    price, stop, target = _long_with_stop_and_target(sim, client)
    _bar(sim, price, price * 1.05, price * 0.95, price)
    algos = {a["type"]: a for a in sim.ledger()["algo_orders"]}
    assert algos["STOP_MARKET"]["status"] == "FINISHED"
    # the take-profit came second, with nothing left to reduce
    assert algos["TAKE_PROFIT_MARKET"]["status"] == "EXPIRED"
    assert "-2022" in algos["TAKE_PROFIT_MARKET"]["reason"]
    slip = BrokerConfig.from_toml().slippage
    assert sim.ledger()["fills"][-1]["price"] == pytest.approx(round(stop * (1 - slip), 1))
    assert sim.ledger()["positions"] == []


def test_a_gap_through_the_stop_fills_at_the_open(sim: LocalExchange, client) -> None:
    price, stop, _ = _long_with_stop_and_target(sim, client)
    gap_open = round(price * 0.9, 1)
    _bar(sim, gap_open, gap_open * 1.01, gap_open * 0.99, gap_open)
    slip = BrokerConfig.from_toml().slippage
    assert sim.ledger()["fills"][-1]["price"] == pytest.approx(round(gap_open * (1 - slip), 1))


def test_a_short_meets_the_high_first(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "sell", 0.01)
    price = sim.exchange.market.price("BTC-USDT")
    client.create_order(
        BTC,
        "market",
        "buy",
        0.01,
        params={"stopLossPrice": round(price * 1.03, 1), "reduceOnly": True},
    )
    client.create_order(
        BTC,
        "market",
        "buy",
        0.01,
        params={"takeProfitPrice": round(price * 0.97, 1), "reduceOnly": True},
    )
    _bar(sim, price, price * 1.05, price * 0.95, price)
    algos = {a["type"]: a["status"] for a in sim.ledger()["algo_orders"]}
    assert algos == {"STOP_MARKET": "FINISHED", "TAKE_PROFIT_MARKET": "EXPIRED"}


def test_reduce_only_closes_no_more_than_the_position(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    order = client.create_order(BTC, "market", "sell", 0.05, params={"reduceOnly": True})
    assert order["filled"] == 0.01
    assert client.fetch_positions() == []  # closed, not flipped short


def test_isolated_is_reported_and_margined_as_cross(sim: LocalExchange, client) -> None:
    client.set_margin_mode("isolated", BTC)
    client.create_order(BTC, "market", "buy", 0.01)
    (pos,) = client.fetch_positions()
    assert pos["marginMode"] == "isolated"
    bal = sim.ledger()["balance"]
    assert bal["available"] == pytest.approx(bal["equity"] - bal["initial_margin"])
    assert bal["initial_margin"] == pytest.approx(pos["notional"] / pos["leverage"])


def test_orders_in_the_ledger_carry_client_ids(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "mine-1"})
    (order,) = sim.ledger()["orders"]
    assert order["client_order_id"] == "mine-1" and order["status"] == "FILLED"


def test_timeout_outlasts_ccxts_default_client_timeout() -> None:
    import ccxt

    assert parse_fault({"kind": "timeout"}).seconds * 1000 > ccxt.binanceusdm().timeout


def test_wallet_is_start_plus_pnl_minus_fees_and_funding(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.02)
    sim.advance(12)
    client.create_order(BTC, "market", "sell", 0.03)  # flips short
    sim.advance(12)
    client.create_order(BTC, "market", "buy", 0.01, params={"reduceOnly": True})
    led = sim.ledger()
    t = led["totals"]
    assert t["fees"] > 0 and t["realized_pnl"] != 0 and t["funding_paid"] != 0
    start = ExchangeConfig.from_toml().starting_balance
    assert led["balance"]["wallet"] == pytest.approx(
        start + t["realized_pnl"] - t["fees"] - t["funding_paid"]
    )
    assert led["positions"] == []


def test_liquidation_price_is_where_equity_meets_maintenance(sim: LocalExchange, client) -> None:
    client.set_leverage(100, BTC)
    client.create_order(BTC, "market", "buy", 0.5)
    (pos,) = sim.ledger()["positions"]
    liq = pos["liquidation_price"]
    assert 0 < liq < pos["entry_price"]
    wallet = sim.ledger()["balance"]["wallet"]
    tiers = sim.exchange.ledger.tiers
    equity_at_liq = wallet + pos["qty"] * (liq - pos["entry_price"])
    # Binance's formula: the maintenance rate and amount of the bracket the position is in now
    tier = tiers.tier("BTC-USDT", pos["notional"])
    maintenance = pos["qty"] * liq * tier.maintenance_margin_rate - tier.maintenance_amount
    assert equity_at_liq == pytest.approx(maintenance, rel=1e-9)


def test_same_requests_same_ledger() -> None:
    """Deterministic: two exchanges fed the same calls end in the same ledger, ids included."""
    from engine.venues.candle_files import sample_data_dir
    from engine.venues.ccxt_setup import make_exchange
    from engine.venues.exchange_sim import start_local_exchange

    ledgers = []
    for _ in range(2):
        with start_local_exchange(sample_data_dir(), symbols=["BTC-USDT"], bar_seconds=0) as h:
            ex = make_exchange("binanceusdm", h.url, h.api_key, h.secret, async_=False)
            ex.load_markets()
            ex.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "a"})
            price = h.exchange.market.price("BTC-USDT")
            ex.create_order(
                BTC,
                "market",
                "sell",
                0.01,
                params={
                    "stopLossPrice": round(price * 0.99, 1),
                    "clientOrderId": "b",
                    "reduceOnly": True,
                },
            )
            h.advance(48)
            ledgers.append(h.ledger())
    assert ledgers[0] == ledgers[1]
    assert [f["client_order_id"] for f in ledgers[0]["fills"]][:1] == ["a"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (108547.2, "108547.2"),
        (1e-9, "0.000000001"),
        (1e16, "10000000000000000"),
        (5, "5"),
        (-3.25, "-3.25"),
    ],
)
def test_numbers_are_plain_decimals(value: float, text: str) -> None:
    from engine.venues.exchange_sim.market import fmt

    assert fmt(value) == text
