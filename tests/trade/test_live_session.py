"""`qctl trade --live` end to end: real ccxt against the local exchange, the journal against its ledger."""

from __future__ import annotations

import math

from engine.journal.invariants import CheckStatus, check_journal
from engine.journal.store import Journal
from tests.trade.conftest import journal_fills, ledger_fills, run_session


def _backstops(sim) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for o in sim.ledger()["open_algo_orders"]:
        out.setdefault(o["symbol"], set()).add(o["type"])
    return out


def test_a_live_session_trades_with_backstops_and_agrees_with_the_exchange(sim, tmp_path):
    db = tmp_path / "live.db"
    summary = run_session(sim, db, bars=40)
    assert summary.status == "stopped" and summary.bars == 40
    assert summary.entries > 0

    # every fill the exchange made is in the journal, and nothing else
    assert journal_fills(db) == ledger_fills(sim)
    ledger = sim.ledger()
    held = {p["symbol"]: p for p in ledger["positions"] if float(p["qty"]) != 0}
    with Journal.open_readonly(db) as j:
        latest = {}
        for row in j.rows("position"):
            latest[row["symbol"]] = row
        closes = [r for r in latest.values() if r["event"] == "close"]
        orders = j.rows("order")
    journal_open = {s for s, r in latest.items() if r["event"] != "close"}
    assert journal_open == set(held)
    assert closes, "some position was closed by a backstop or an exit in 40 bars"
    # every open position has its stop resting at the exchange
    for sym in held:
        assert "STOP_MARKET" in _backstops(sim).get(sym, set())
    # backstops are reduce-only stop-market / take-profit-market orders
    kinds = {o["type"] for o in orders if o["purpose"] in ("stop_loss", "take_profit")}
    assert kinds <= {"STOP_MARKET", "TAKE_PROFIT_MARKET"} and "STOP_MARKET" in kinds
    # wallet as the exchange says
    with Journal.open_readonly(db) as j:
        last = j.rows("equity", order_by="id DESC", limit=1)[0]
    assert math.isclose(last["wallet_balance"], ledger["balance"]["wallet"], rel_tol=1e-9)


def test_every_row_of_a_live_session_is_inside_the_hard_limits(sim, tmp_path):
    db = tmp_path / "live.db"
    run_session(sim, db, bars=30)
    with Journal.open_readonly(db) as j:
        results = check_journal(j)
    failed = [r for r in results if r.status is CheckStatus.FAIL]
    assert failed == []
    assert any(r.status is CheckStatus.PASS for r in results)


def test_leverage_and_margin_mode_are_set_before_the_first_order(sim, tmp_path):
    run_session(sim, tmp_path / "live.db", bars=30)
    paths = [p for _, p in sim.requests]
    first_order = next(i for i, p in enumerate(paths) if p == "/fapi/v1/order")
    assert "/fapi/v1/leverage" in paths[:first_order]
    assert "/fapi/v1/marginType" in paths[:first_order]
