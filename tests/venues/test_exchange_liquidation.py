"""Cross-margin liquidation: when the equity at the bar's adverse extreme meets the maintenance
margin, every position closes at its liquidation price and the account ends at zero."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.venues.candle_files import sample_data_dir
from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim import LocalExchange, start_local_exchange
from engine.venues.exchange_sim.market import ClosedBar
from tests.venues.conftest import BTC


@pytest.fixture
def small() -> Iterator[LocalExchange]:
    with start_local_exchange(
        sample_data_dir(), symbols=["BTC-USDT"], bar_seconds=0, starting_balance=200.0
    ) as h:
        yield h


def _client(h: LocalExchange):  # type: ignore[no-untyped-def]
    ex = make_exchange("binanceusdm", h.url, h.api_key, h.secret, async_=False)
    ex.load_markets()
    return ex


def _bar(h: LocalExchange, o: float, hi: float, lo: float, c: float) -> None:
    ex = h.exchange
    with ex.lock:
        ex.ledger.on_bar([ClosedBar("BTC-USDT", ex.market.now_ms, o, hi, lo, c)], [])


def _open_long(h: LocalExchange) -> tuple[float, float]:
    ex = _client(h)
    ex.set_leverage(100, BTC)
    ex.create_order(BTC, "market", "buy", 0.01)
    (pos,) = h.ledger()["positions"]
    return pos["entry_price"], pos["liquidation_price"]


def test_a_bar_through_the_liquidation_price_closes_at_it(small: LocalExchange) -> None:
    entry, liq = _open_long(small)
    assert 0 < liq < entry
    _bar(small, entry, entry, liq * 0.95, liq * 0.97)
    led = small.ledger()
    assert led["positions"] == []
    last = led["fills"][-1]
    assert last["client_order_id"].startswith("autoclose-") and last["fee"] == 0
    assert last["price"] == pytest.approx(liq)
    assert led["balance"]["wallet"] == 0
    (event,) = led["liquidations"]
    assert event["symbols"] == ["BTC-USDT"] and event["clearance_fee"] >= 0
    ex = _client(small)
    assert ex.fetch_positions() == [] and ex.fetch_balance()["USDT"]["total"] == 0
    assert [t["side"] for t in ex.fetch_my_trades(BTC)] == ["buy", "sell"]


def test_a_gap_below_the_liquidation_price_closes_at_the_open(small: LocalExchange) -> None:
    _, liq = _open_long(small)
    gap = round(liq * 0.9, 1)
    _bar(small, gap, gap, gap * 0.99, gap)
    assert small.ledger()["fills"][-1]["price"] == pytest.approx(gap)


def test_a_bar_above_the_liquidation_price_leaves_the_position(small: LocalExchange) -> None:
    entry, liq = _open_long(small)
    _bar(small, entry, entry, liq * 1.01, entry)
    assert small.ledger()["positions"][0]["qty"] == 0.01
    assert small.ledger()["liquidations"] == []
