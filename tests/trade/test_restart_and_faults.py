"""Restart safety and injected exchange faults: no duplicate order, no lost fill, no position
without a stop; a missing report never means flat."""

from __future__ import annotations

import pytest

from engine.domain import LimitName
from engine.journal.store import Journal
from engine.venues.ccxt_broker import CcxtBroker
from tests.trade.conftest import (
    journal_fills,
    ledger_fills,
    open_positions,
    run_session,
    stops_resting,
    sync_client,
)


def _client_ids_unique(sim) -> None:
    ids = [o["client_order_id"] for o in sim.ledger()["orders"]]
    assert len(ids) == len(set(ids)), "an order was sent twice"


def _agree(sim, db) -> None:
    assert journal_fills(db) == ledger_fills(sim)
    held = open_positions(sim)
    with Journal.open_readonly(db) as j:
        latest = {}
        for row in j.rows("position"):
            latest[row["symbol"]] = row
    assert {s for s, r in latest.items() if r["event"] != "close"} == set(held)
    assert stops_resting(sim) >= set(held), "every open position has its stop at the exchange"


def _run_until_open(sim, db, max_tries: int = 6) -> None:
    for _ in range(max_tries):
        run_session(sim, db, bars=5)
        if open_positions(sim):
            return
    pytest.fail("no position opened")


@pytest.mark.parametrize("kind", ["drop_after_accept", "http_429", "http_418", "http_5xx"])
def test_an_order_fault_never_doubles_an_order_nor_loses_its_fill(sim, tmp_path, kind):
    sim.fault(kind, count=2, path="/fapi/v1/order", method="POST")
    db = tmp_path / "live.db"
    run_session(sim, db, bars=30)
    assert sim.ledger()["orders"], "orders reached the exchange"
    _client_ids_unique(sim)
    _agree(sim, db)


def test_a_fill_reported_twice_is_booked_once(sim, tmp_path):
    sim.fault("duplicate_fill", count=3)
    db = tmp_path / "live.db"
    run_session(sim, db, bars=30)
    assert sim.ledger()["orders"]
    _client_ids_unique(sim)
    _agree(sim, db)


def test_a_timeout_is_answered_by_a_look_up_not_a_second_order(sim, tmp_path):
    sim.fault("timeout", count=1, path="/fapi/v1/order", method="POST", seconds=1.0)
    db = tmp_path / "live.db"
    logs: list = []
    run_session(sim, db, bars=30, timeout_ms=300, logs=logs)
    _client_ids_unique(sim)
    _agree(sim, db)
    assert any(e == "order_uncertain" for e, _ in logs)


def test_a_rejected_entry_is_journaled_and_opens_nothing(sim, tmp_path):
    sim.fault("reject_margin", count=50, path="/fapi/v1/order", method="POST")
    db = tmp_path / "live.db"
    run_session(sim, db, bars=30)
    assert open_positions(sim) == {}
    with Journal.open_readonly(db) as j:
        rejected = j.rows("order", where="status = 'REJECTED'")
        assert j.count("fill") == 0
    assert rejected and all("InsufficientFunds" in r["detail"] for r in rejected)


def test_restart_rebuilds_positions_and_replaces_a_missing_stop(sim, tmp_path):
    db = tmp_path / "live.db"
    _run_until_open(sim, db)
    held = open_positions(sim)
    # while the engine is down, someone cancels a stop
    client = sync_client(sim)
    victim = sorted(held)[0]
    stop = next(
        o
        for o in sim.ledger()["open_algo_orders"]
        if o["symbol"] == victim and o["type"] == "STOP_MARKET"
    )
    client.cancel_order(
        str(stop["algo_id"]), victim.replace("-USDT", "/USDT:USDT"), {"trigger": True}
    )
    assert victim not in stops_resting(sim)
    logs: list = []
    run_session(sim, db, bars=1, logs=logs)
    notes = [f["note"] for e, f in logs if e == "recovery"]
    assert any("restored" in n for n in notes)
    assert any("re-placed backstops" in n for n in notes)
    _agree(sim, db)
    with Journal.open_readonly(db) as j:
        assert len(j.runs()) == 1, "the restart resumed the run"


def test_a_stop_that_fired_while_down_is_booked_from_the_exchange(sim, tmp_path, monkeypatch):
    db = tmp_path / "live.db"
    _run_until_open(sim, db)
    # down for a long time: the exchange's backstops act alone
    for _ in range(200):
        sim.advance(1)
        if not open_positions(sim):
            break
    assert not open_positions(sim), "the backstops closed everything while the engine was down"
    with Journal.open_readonly(db) as j:
        latest = {row["symbol"]: row["event"] for row in j.rows("position")}
    restored = sum(event != "close" for event in latest.values())
    logs: list = []
    reads: list[str] = []  # during recovery (before its notes are logged)
    fetch = CcxtBroker.fetch_trades

    def counted(self, symbol, since=None):
        if not any(event == "recovery" for event, _ in logs):
            reads.append(symbol)
        return fetch(self, symbol, since)

    monkeypatch.setattr(CcxtBroker, "fetch_trades", counted)
    run_session(sim, db, bars=1, logs=logs)
    notes = [f["note"] for e, f in logs if e == "recovery"]
    assert any("on the exchange while down" in n for n in notes)
    _agree(sim, db)
    # each restored position's trades are read once: matching the journal and booking the
    # closes share one read (the exchange's rate limit is the operator's)
    assert restored >= 1
    assert sorted(reads) == sorted(s for s, e in latest.items() if e != "close")


def test_an_unknown_exchange_position_without_a_stop_is_adopted_and_closed(sim, tmp_path):
    db = tmp_path / "live.db"
    run_session(sim, db, bars=1)
    client = sync_client(sim)
    client.create_order("ETH/USDT:USDT", "market", "sell", 0.05)  # a stray manual short
    assert "ETH-USDT" in open_positions(sim) or open_positions(sim)
    logs: list = []
    run_session(sim, db, bars=1, logs=logs)
    notes = " | ".join(f["note"] for e, f in logs if e == "recovery")
    assert "ETH-USDT: adopted" in notes and "closed at market" in notes
    assert "ETH-USDT" not in open_positions(sim)
    with Journal.open_readonly(db) as j:
        events = j.rows("safety_event", where="symbol = 'ETH-USDT'")
    assert {e["limit"] for e in events} == {str(LimitName.RECONCILE)}


def test_an_unknown_position_with_a_resting_stop_is_adopted_under_it(sim, tmp_path):
    db = tmp_path / "live.db"
    run_session(sim, db, bars=1)
    client = sync_client(sim)
    client.create_order("ETH/USDT:USDT", "market", "buy", 0.05)
    price = float(sim.ledger()["positions"][0]["entry_price"])
    client.create_order("ETH/USDT:USDT", "STOP_MARKET", "sell", None, None,
                        {"triggerPrice": round(price * 0.9, 2), "closePosition": True})  # fmt: skip
    logs: list = []
    run_session(sim, db, bars=1, logs=logs)
    notes = " | ".join(f["note"] for e, f in logs if e == "recovery")
    assert "adopted with the stop resting at the exchange" in notes
    assert "ETH-USDT" in open_positions(sim)
    _agree(sim, db)
