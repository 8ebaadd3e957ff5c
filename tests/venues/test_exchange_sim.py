"""Real ccxt (binanceusdm, sync) against the local exchange: the calls a live broker makes."""

from __future__ import annotations

import json
import socket
import urllib.request

import ccxt
import pytest

from engine.venues.exchange_sim import HOST, LocalExchange
from engine.venues.simulated import BrokerConfig
from tests.venues.conftest import BTC, ETH


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback only
        return json.loads(r.read())


def test_binds_loopback_only(sim: LocalExchange) -> None:
    assert sim.host == HOST == "127.0.0.1"
    own_ips = {
        info[4][0]
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        if not info[4][0].startswith("127.")
    }
    for ip in own_ips:  # another interface of this machine is refused
        with pytest.raises(OSError), socket.create_connection((ip, sim.port), timeout=1):
            pass


def test_load_markets_one_request(sim: LocalExchange, client) -> None:
    assert sim.requests == [("GET", "/fapi/v1/exchangeInfo")]
    m = client.market(BTC)
    assert m["swap"] and m["linear"] and m["settle"] == "USDT"
    assert m["precision"]["price"] == 0.1  # BTC prices are recorded with one decimal
    assert m["limits"]["cost"]["min"] == 5.0
    assert set(client.markets) == {BTC, ETH}


def test_klines_never_show_the_future(sim: LocalExchange, client) -> None:
    now = sim.ledger()["sim_time_ms"]
    rows = client.fetch_ohlcv(BTC, "1h", limit=50)
    assert len(rows) == 50
    assert rows[-1][0] == now  # the forming bar, known only by its open
    o, h, lo, c, v = rows[-1][1:]
    assert o == h == lo == c and v == 0
    assert all(r[0] < now for r in rows[:-1])
    since = rows[0][0]
    later = client.fetch_ohlcv(BTC, "1h", since=since, limit=1000)
    assert later[-1][0] == now  # asking for more never reaches past the clock
    sim.advance(3)
    again = client.fetch_ohlcv(BTC, "1h", limit=5)
    assert again[-1][0] == now + 3 * 3_600_000
    assert again[-4][0] == now and again[-4][4] != again[-4][1]  # the bar closed: full OHLC now


def test_klines_aggregate_and_reject_finer_intervals(sim: LocalExchange, client) -> None:
    four = client.fetch_ohlcv(BTC, "4h", limit=10)
    assert all(r[0] % (4 * 3_600_000) == 0 for r in four)
    ones = client.fetch_ohlcv(BTC, "1h", since=four[-3][0], limit=4)
    assert four[-3][2] == max(r[2] for r in ones) and four[-3][3] == min(r[3] for r in ones)
    with pytest.raises(ccxt.BadRequest, match="-1120"):
        client.fetch_ohlcv(BTC, "5m", limit=5)


def test_balance_and_leverage(client) -> None:
    bal = client.fetch_balance()
    assert bal["USDT"]["free"] == bal["USDT"]["total"] == 10_000.0
    reply = client.set_leverage(10, BTC)
    assert reply["leverage"] == 10
    client.set_leverage(125, BTC)  # BTC's first bracket allows 125x


def test_leverage_above_the_bracket_is_rejected() -> None:
    from engine.venues.candle_files import sample_data_dir
    from engine.venues.ccxt_setup import make_exchange
    from engine.venues.exchange_sim import start_local_exchange

    with start_local_exchange(sample_data_dir(), symbols=["DOGE-USDT"], bar_seconds=0) as h:
        ex = make_exchange("binanceusdm", h.url, h.api_key, h.secret, async_=False)
        ex.load_markets()
        top = int(h.exchange.ledger.tiers.tiers("DOGE-USDT")[0].max_leverage)
        assert top < 125  # ccxt itself only refuses values above 125
        ex.set_leverage(top, "DOGE/USDT:USDT")
        with pytest.raises(ccxt.BadRequest, match="-4028"):
            ex.set_leverage(top + 1, "DOGE/USDT:USDT")


def test_leverage_above_the_bracket_of_the_position(sim: LocalExchange, client) -> None:
    client.set_leverage(50, ETH)
    tiers = sim.exchange.ledger.tiers.tiers("ETH-USDT")
    price = sim.exchange.market.price("ETH-USDT")
    cap_at_50 = sim.exchange.ledger.max_notional_at("ETH-USDT", 50)
    assert cap_at_50 < tiers[-1].max_notional
    # a position worth more than the 50x bracket allows is refused (-2027), as on Binance
    too_big = round(cap_at_50 * 1.1 / price, 3)
    with pytest.raises(ccxt.OperationRejected, match="-2027"):
        client.create_order(ETH, "market", "buy", too_big)


def test_margin_mode(client) -> None:
    client.set_margin_mode("isolated", BTC)
    with pytest.raises(ccxt.MarginModeAlreadySet):
        client.set_margin_mode("isolated", BTC)
    client.set_margin_mode("cross", BTC)


def test_market_order_fills_at_the_open_with_fee(sim: LocalExchange, client) -> None:
    price = sim.exchange.market.price("BTC-USDT")
    cfg = BrokerConfig.from_toml()
    order = client.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert order["average"] == pytest.approx(round(price * (1 + cfg.slippage), 1))
    trades = client.fetch_my_trades(BTC)
    assert len(trades) == 1
    assert trades[0]["fee"]["cost"] == pytest.approx(0.01 * order["average"] * cfg.taker_fee)
    assert trades[0]["order"] == order["id"]
    led = sim.ledger()
    assert led["balance"]["wallet"] == pytest.approx(10_000 - trades[0]["fee"]["cost"])
    assert led["fills"][0]["client_order_id"] == order["clientOrderId"]


def test_positions_open_and_close(sim: LocalExchange, client) -> None:
    assert client.fetch_positions() == []
    client.create_order(BTC, "market", "sell", 0.02)
    (pos,) = client.fetch_positions()
    assert pos["symbol"] == BTC and pos["side"] == "short" and pos["contracts"] == 0.02
    assert pos["leverage"] == 20 and pos["entryPrice"] > 0
    sim.advance(2)
    client.create_order(BTC, "market", "buy", 0.02, params={"reduceOnly": True})
    assert client.fetch_positions() == []
    led = sim.ledger()
    assert led["positions"] == []
    assert led["fills"][1]["realized_pnl"] != 0


def test_reduce_only_without_position_is_rejected(client) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        client.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})


def test_min_notional(client) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        client.create_order(ETH, "market", "buy", 0.001)  # a few USDT


def test_margin_insufficient(client) -> None:
    client.set_leverage(1, BTC)
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):
        client.create_order(BTC, "market", "buy", 0.2)  # ~20k USDT at 1x on a 10k account


def test_duplicate_client_order_id(sim: LocalExchange, client) -> None:
    params = {"clientOrderId": "entry-BTC-0001"}
    client.create_order(BTC, "market", "buy", 0.01, params=params)
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        client.create_order(BTC, "market", "buy", 0.01, params=params)
    assert len(sim.ledger()["fills"]) == 1
    got = client.fetch_order(None, BTC, params={"clientOrderId": "entry-BTC-0001"})
    assert got["status"] == "closed" and got["clientOrderId"] == "entry-BTC-0001"


def _first_bar_crossing(sim: LocalExchange, symbol: str, level: float, below: bool) -> int:
    """How many bars until the replay trades through `level` (read from the data, not the sim)."""
    s = sim.exchange.market.series[symbol]
    i = int((s.ts < sim.exchange.market.now_ms).sum())
    for k in range(i, len(s.ts)):
        if (s.lo[k] <= level) if below else (s.h[k] >= level):
            return k - i + 1
    raise AssertionError("the data never crosses the level")


def test_stop_and_take_profit_via_algo_orders(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    price = sim.exchange.market.price("BTC-USDT")
    sl_level = round(price * 0.97, 1)
    tp_level = round(price * 1.5, 1)
    sl = client.create_order(
        BTC, "market", "sell", 0.01, params={"stopLossPrice": sl_level, "reduceOnly": True}
    )
    tp = client.create_order(
        BTC, "market", "sell", 0.01, params={"takeProfitPrice": tp_level, "reduceOnly": True}
    )
    assert sim.requests[-1] == ("POST", "/fapi/v1/algoOrder")
    assert sl["info"]["orderType"] == "STOP_MARKET" and sl["triggerPrice"] == sl_level
    assert tp["info"]["orderType"] == "TAKE_PROFIT_MARKET" and tp["takeProfitPrice"] == tp_level
    assert client.fetch_open_orders(BTC) == []
    assert len(client.fetch_open_orders(BTC, params={"trigger": True})) == 2
    bars = _first_bar_crossing(sim, "BTC-USDT", sl_level, below=True)
    sim.advance(bars - 1)
    assert client.fetch_positions() != []  # not yet: the level is crossed in the next bar
    sim.advance(1)
    assert client.fetch_positions() == []
    fired = client.fetch_order(sl["id"], BTC, params={"trigger": True})
    assert fired["status"] == "closed" and fired["info"]["algoStatus"] == "FINISHED"
    slip = BrokerConfig.from_toml().slippage
    exit_fill = sim.ledger()["fills"][-1]
    assert exit_fill["client_algo_id"] == sl["clientOrderId"]
    assert exit_fill["price"] <= sl_level * (1 - slip) + 0.1  # at the level, or worse on a gap
    # the take-profit is still waiting; it is cancelled with the trigger flag
    assert client.fetch_order(tp["id"], BTC, params={"trigger": True})["status"] == "open"
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order(tp["id"], BTC)  # without the flag it is looked up as a plain order
    client.cancel_order(tp["id"], BTC, params={"trigger": True})
    got = client.fetch_order(
        None, BTC, params={"trigger": True, "clientOrderId": tp["clientOrderId"]}
    )
    assert got["status"] == "canceled"
    assert client.fetch_open_orders(BTC, params={"trigger": True}) == []


def test_take_profit_close_position(sim: LocalExchange, client) -> None:
    client.create_order(ETH, "market", "sell", 0.5)
    price = sim.exchange.market.price("ETH-USDT")
    level = round(price * 0.98, 2)
    tp = client.create_order(
        ETH,
        "TAKE_PROFIT_MARKET",
        "buy",
        None,
        params={"triggerPrice": level, "closePosition": True},
    )
    assert tp["info"]["closePosition"] is True
    sim.advance(_first_bar_crossing(sim, "ETH-USDT", level, below=True))
    assert client.fetch_positions() == []
    trades = client.fetch_my_trades(ETH)
    assert [t["side"] for t in trades] == ["sell", "buy"] and trades[1]["amount"] == 0.5


def test_algo_that_would_trigger_at_once_is_rejected(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    price = sim.exchange.market.price("BTC-USDT")
    with pytest.raises(ccxt.OrderImmediatelyFillable, match="-2021"):
        client.create_order(
            BTC, "market", "sell", 0.01, params={"stopLossPrice": price * 1.01, "reduceOnly": True}
        )


def test_duplicate_client_algo_id(client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    params = {"stopLossPrice": 1000, "reduceOnly": True, "clientOrderId": "stop-BTC-0001"}
    client.create_order(BTC, "market", "sell", 0.01, params=params)
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        client.create_order(BTC, "market", "sell", 0.01, params=params)
    assert len(client.fetch_open_orders(BTC, params={"trigger": True})) == 1


def test_unknown_orders(client) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("123", BTC)
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("123", BTC, params={"trigger": True})
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order("123", BTC, params={"trigger": True})


def test_funding_is_settled_on_open_positions(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    wallet = sim.ledger()["balance"]["wallet"]
    sim.advance(9)  # at least one 8h settlement
    led = sim.ledger()
    paid = [e for e in led["funding"] if e["symbol"] == "BTC-USDT"]
    assert paid and all(e["position_qty"] == 0.01 for e in paid)
    assert led["balance"]["wallet"] == pytest.approx(wallet - sum(e["paid"] for e in paid))
    rate = paid[0]["rate"]
    assert paid[0]["paid"] == pytest.approx(0.01 * paid[0]["mark_price"] * rate)


def test_ledger_json_over_http(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "c-1"})
    led = _get(sim.url + "/qctl-sim/ledger")
    assert set(led) >= {
        "sim_time_ms",
        "balance",
        "positions",
        "open_orders",
        "open_algo_orders",
        "fills",
    }
    assert led["positions"][0]["symbol"] == "BTC-USDT" and led["positions"][0]["qty"] == 0.01
    assert led["fills"][0]["client_order_id"] == "c-1"
    assert led == sim.ledger()


def test_advance_over_http(sim: LocalExchange) -> None:
    before = sim.ledger()["sim_time_ms"]
    req = urllib.request.Request(sim.url + "/qctl-sim/advance", data=b'{"bars": 2}', method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - loopback only
        reply = json.loads(r.read())
    assert reply["sim_time_ms"] == before + 2 * 3_600_000


def test_wall_clock_moves_the_replay() -> None:
    import time

    from engine.venues.candle_files import sample_data_dir
    from engine.venues.exchange_sim import start_local_exchange

    with start_local_exchange(sample_data_dir(), symbols=["BTC-USDT"], bar_seconds=0.05) as h:
        first = h.ledger()["sim_time_ms"]
        deadline = time.monotonic() + 10
        while h.ledger()["sim_time_ms"] < first + 3 * 3_600_000:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_an_internal_error_is_a_500_with_a_binance_body(sim: LocalExchange, client, capsys) -> None:
    from engine.venues.exchange_sim.api import Route

    def broken(params: object) -> object:
        raise RuntimeError("a bug in the simulator")

    sim.exchange.routes[("GET", "/fapi/v3/account")] = Route(broken, True)
    with pytest.raises(ccxt.OperationFailed, match="-1000"):
        client.fetch_balance()
    assert "a bug in the simulator" in capsys.readouterr().err  # the traceback is not swallowed
    assert client.fetch_positions() == []  # and the server keeps serving


def test_a_stopped_exchange_answers_nobody(sim: LocalExchange, client) -> None:
    client.fetch_balance()  # a keep-alive connection is open now
    sim.stop()
    with pytest.raises(ccxt.NetworkError):
        client.fetch_balance()
