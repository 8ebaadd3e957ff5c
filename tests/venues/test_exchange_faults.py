"""Each fault of the local exchange, as a ccxt client meets it: the exception ccxt raises and
what the exchange booked (an accepted order stays booked once; a retry never doubles it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import ccxt
import pytest

from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim import FAULT_KINDS, FaultError, LocalExchange
from tests.venues.conftest import BTC


def _post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - loopback only
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("http_429", ccxt.DDoSProtection),
        ("http_418", ccxt.DDoSProtection),
        ("http_5xx", ccxt.ExchangeNotAvailable),
    ],
)
def test_transport_faults(sim: LocalExchange, client, kind: str, error: type) -> None:
    sim.fault(kind)
    with pytest.raises(error):
        client.fetch_balance()
    assert client.fetch_balance()["USDT"]["total"] == 10_000.0  # count=1: the next one passes


def test_fault_count_and_path(sim: LocalExchange, client) -> None:
    sim.fault("http_429", count=2, path="/fapi/v1/klines")
    client.fetch_balance()  # another path: untouched
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection):
            client.fetch_ohlcv(BTC, "1h", limit=5)
    assert len(client.fetch_ohlcv(BTC, "1h", limit=5)) == 5


def test_timeout_books_the_order_and_the_retry_is_refused(sim: LocalExchange, client) -> None:
    client.timeout = 300  # ms
    sim.fault("timeout", seconds=1.0)
    params = {"clientOrderId": "entry-timeout-1"}
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order(BTC, "market", "buy", 0.01, params=params)
    assert len(sim.ledger()["fills"]) == 1  # booked although the client never heard back
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        client.create_order(BTC, "market", "buy", 0.01, params=params)
    assert len(sim.ledger()["fills"]) == 1
    got = client.fetch_order(None, BTC, params={"clientOrderId": "entry-timeout-1"})
    assert got["status"] == "closed"


def test_drop_after_accept(sim: LocalExchange, client) -> None:
    client.create_order(BTC, "market", "buy", 0.01)
    sim.fault("drop_after_accept")
    client.fetch_positions()  # not a placement: the fault waits for the next order
    params = {"stopLossPrice": 1000, "reduceOnly": True, "clientOrderId": "stop-drop-1"}
    with pytest.raises(ccxt.NetworkError):
        client.create_order(BTC, "market", "sell", 0.01, params=params)
    assert [a["client_algo_id"] for a in sim.ledger()["open_algo_orders"]] == ["stop-drop-1"]
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        client.create_order(BTC, "market", "sell", 0.01, params=params)
    fetched = client.fetch_order(
        None, BTC, params={"trigger": True, "clientOrderId": "stop-drop-1"}
    )
    assert fetched["status"] == "open"


def test_drop_after_accept_of_a_market_order(sim: LocalExchange, client) -> None:
    sim.fault("drop_after_accept")
    with pytest.raises(ccxt.NetworkError):
        client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "e-1"})
    assert [f["client_order_id"] for f in sim.ledger()["fills"]] == ["e-1"]
    assert client.fetch_positions()[0]["contracts"] == 0.01


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [
        ("reject_margin", ccxt.InsufficientFunds, "-2019"),
        ("reject_min_notional", ccxt.InvalidOrder, "-4164"),
    ],
)
def test_rejections_book_nothing(sim: LocalExchange, client, kind, error, code) -> None:
    sim.fault(kind)
    client.fetch_balance()  # not an order: the rejection waits for one
    with pytest.raises(error, match=code):
        client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "r-1"})
    assert sim.ledger()["fills"] == []
    client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "r-1"})
    assert len(sim.ledger()["fills"]) == 1  # a rejected id may be used again, as on Binance


def test_duplicate_fill_reported_twice(sim: LocalExchange, client) -> None:
    sim.fault("duplicate_fill")
    order = client.create_order(BTC, "market", "buy", 0.01)
    trades = client.fetch_my_trades(BTC)
    assert len(trades) == 2 and trades[0]["id"] == trades[1]["id"]
    assert trades[0]["order"] == order["id"]
    led = sim.ledger()
    assert len(led["fills"]) == 1 and led["fills"][0]["reported_twice"]
    assert led["positions"][0]["qty"] == 0.01  # booked once


def test_every_kind_is_tested_here() -> None:
    tested = {
        "http_429",
        "http_418",
        "http_5xx",
        "timeout",
        "drop_after_accept",
        "reject_margin",
        "reject_min_notional",
        "duplicate_fill",
    }
    assert set(FAULT_KINDS) == tested


def test_fault_over_http_and_bad_requests(sim: LocalExchange, client) -> None:
    status, reply = _post(sim.url + "/qctl-sim/fault", {"kind": "http_429", "count": 1})
    assert status == 200 and reply["pending"][0]["kind"] == "http_429"
    with pytest.raises(ccxt.DDoSProtection):
        client.fetch_balance()
    status, reply = _post(sim.url + "/qctl-sim/fault", {"kind": "meteor"})
    assert status == 400 and "unknown fault kind" in reply["error"]
    status, reply = _post(sim.url + "/qctl-sim/fault", {"kind": "http_429", "count": 0})
    assert status == 400
    with pytest.raises(FaultError):
        sim.fault("http_5xx", status=200)


def test_wrong_secret(sim: LocalExchange) -> None:
    ex = make_exchange("binanceusdm", sim.url, sim.api_key, "not-the-secret", async_=False)
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        ex.fetch_balance()


def test_wrong_key(sim: LocalExchange) -> None:
    ex = make_exchange("binanceusdm", sim.url, "not-the-key", sim.secret, async_=False)
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        ex.fetch_balance()


def test_stale_timestamp(sim: LocalExchange) -> None:
    ex = make_exchange("binanceusdm", sim.url, sim.api_key, sim.secret, async_=False)
    ex.options["timeDifference"] = 60_000  # requests stamped a minute late
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        ex.fetch_balance()
    ex.options["timeDifference"] = 0
    assert ex.fetch_balance()["USDT"]["total"] == 10_000.0


def test_async_client_meets_the_same_faults(sim: LocalExchange) -> None:
    """The live loop is async (aiohttp): the faults surface as the same ccxt exceptions."""
    import asyncio

    async def session() -> list[type]:
        ex = make_exchange("binanceusdm", sim.url, sim.api_key, sim.secret)
        ex.timeout = 300
        seen = []
        try:
            await ex.load_markets()
            for kind, options in (
                ("drop_after_accept", {}),
                ("timeout", {"seconds": 1.0}),
                ("http_429", {}),
                ("http_5xx", {}),
            ):
                sim.fault(kind, **options)
                try:
                    await ex.create_order(BTC, "market", "buy", 0.01)
                except ccxt.BaseError as exc:
                    seen.append(type(exc))
            await ex.fetch_balance()  # the client still works afterwards
        finally:
            await ex.close()
        return seen

    seen = asyncio.run(session())
    assert len(seen) == 4 and issubclass(
        seen[0], ccxt.NetworkError
    )  # aiohttp: ExchangeNotAvailable
    assert issubclass(seen[1], ccxt.RequestTimeout)
    assert issubclass(seen[2], ccxt.DDoSProtection)
    assert issubclass(seen[3], ccxt.ExchangeNotAvailable)
    # drop_after_accept and timeout booked their orders; 429 and 503 did not reach the exchange
    assert len(sim.ledger()["fills"]) == 2


def test_faults_listed_and_cleared_over_http(sim: LocalExchange, client) -> None:
    sim.fault("http_5xx", count=3)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.fetch_balance()
    with urllib.request.urlopen(sim.url + "/qctl-sim/fault", timeout=5) as r:  # noqa: S310
        listed = json.loads(r.read())
    assert listed["pending"][0]["count"] == 2
    assert listed["applied"] == [{"kind": "http_5xx", "method": "GET", "path": "/fapi/v3/account"}]
    req = urllib.request.Request(sim.url + "/qctl-sim/fault", method="DELETE")
    with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310
        assert json.loads(r.read()) == {"pending": []}
    assert client.fetch_balance()["USDT"]["total"] == 10_000.0
