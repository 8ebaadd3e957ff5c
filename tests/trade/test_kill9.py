"""Crash-only recovery: `qctl trade --live` killed with SIGKILL at random points, restarted each
time, converges to the exchange's true state and never loses a committed journal row."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.venues.candle_files import sample_data_dir
from engine.venues.exchange_sim.server import DEFAULT_API_KEY, DEFAULT_SECRET, start_local_exchange
from tests.trade.conftest import (
    SYMBOLS,
    journal_fills,
    ledger_fills,
    open_positions,
    run_session,
    stops_resting,
)

KILLS = 20
TABLES = ("decision", "order", "fill", "position", "equity", "safety_event")


def _trade(url: str, db: Path, max_bars: int | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "qctl.cli", "trade", "--live", "--symbols", ",".join(SYMBOLS),
           "--api-url", url, "--db", str(db), "--poll-seconds", "0.02", "--history-bars", "300"]  # fmt: skip
    if max_bars is not None:
        cmd += ["--max-bars", str(max_bars)]
    env = {**os.environ, "QCTL_API_KEY": DEFAULT_API_KEY, "QCTL_API_SECRET": DEFAULT_SECRET}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _freeze(sim) -> None:
    """Switch the local exchange to its manual clock where its wall clock has brought it."""
    ex = sim.exchange
    with ex.lock:
        ex.sync()
        ex._manual_bars = ex.market.cursor - ex._start_cursor
        ex.bar_seconds = 0


def _wait_for_an_order(sim, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Until the exchange has an order (the kill points after it are still random)."""
    end = time.monotonic() + timeout
    while not sim.ledger()["orders"] and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.05)


def _committed(db: Path) -> dict[str, list[int]]:
    """The ids of every committed row, per table (read as another process would)."""
    if not db.exists():
        return {t: [] for t in TABLES}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {t: [r[0] for r in conn.execute(f'SELECT id FROM "{t}"')] for t in TABLES}
    finally:
        conn.close()


@pytest.mark.slow
def test_twenty_kill9_restarts_converge_to_the_exchange(tmp_path):
    rng = random.Random(20261203)
    db = tmp_path / "live.db"
    with start_local_exchange(sample_data_dir(), symbols=SYMBOLS, bar_seconds=0.15) as sim:
        before = _committed(db)
        for _ in range(KILLS):
            proc = _trade(sim.url, db)
            # start-up (imports, recovery) takes a while on a loaded machine: kill points are
            # drawn from the moment the session announces itself (recovery lines come before)
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            while line and "trading" not in line:
                line = proc.stdout.readline().decode()
            if not sim.ledger()["orders"]:  # on a loaded machine a session can be killed
                _wait_for_an_order(sim, proc)  # before its first order: let one be sent
            time.sleep(rng.uniform(0.0, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            now = _committed(db)
            for table in TABLES:
                lost = set(before[table]) - set(now[table])
                assert not lost, f"{table}: committed rows {sorted(lost)[:5]} lost"
            before = now
        sim_orders = sim.ledger()["orders"]
        assert sim_orders, "the killed sessions traded"
        # the exchange's clock stops moving on its own; a last clean session (in this process,
        # one bar per wait) recovers and runs a few bars, so nothing happens after its last look
        _freeze(sim)
        summary = run_session(sim, db, bars=3)
        assert summary.status == "stopped" and summary.bars == 3
        # the exchange's truth and the journal agree
        ids = [o["client_order_id"] for o in sim.ledger()["orders"]]
        assert len(ids) == len(set(ids)), "no order was sent twice"
        held = open_positions(sim)
        assert stops_resting(sim) >= set(held), "no position without a stop"
        if journal_fills(db) != ledger_fills(sim):  # say which, with their order ids
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            rows = conn.execute(
                "SELECT client_order_id, symbol, side, qty, price, ts FROM fill"
            ).fetchall()
            conn.close()
            ledger = [(f["client_order_id"], f["symbol"], f["side"], f["qty"], f["price"], f["time_ms"])
                      for f in sim.ledger()["fills"]]  # fmt: skip
            pytest.fail(f"fills differ\njournal: {rows}\nledger: {ledger}")
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        latest = {}
        for sym, event in conn.execute("SELECT symbol, event FROM position ORDER BY id"):
            latest[sym] = event
        runs = conn.execute("SELECT COUNT(*) FROM run").fetchone()[0]
        conn.close()
        assert {s for s, e in latest.items() if e != "close"} == set(held)
        assert runs == 1, "every restart resumed the one run"


@pytest.mark.slow
def test_sigterm_finishes_the_cycle_and_leaves_the_backstops(tmp_path):
    db = tmp_path / "live.db"
    with start_local_exchange(sample_data_dir(), symbols=SYMBOLS, bar_seconds=0.1) as sim:
        proc = _trade(sim.url, db)
        assert proc.stdout is not None
        lines = 0
        while lines < 40 or not open_positions(sim):  # until something is held
            line = proc.stdout.readline().decode()
            assert line, proc.stderr.read().decode()[-2000:] if proc.stderr else "exited"
            lines += "bar" in line
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"stopped: run" in out
        ledger = sim.ledger()  # one snapshot: the exchange's clock keeps running
        held = {p["symbol"] for p in ledger["positions"] if float(p["qty"])}
        stops = {o["symbol"] for o in ledger["open_algo_orders"] if o["type"] == "STOP_MARKET"}
        assert stops >= held, "backstops stay in place after a clean stop"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        status = conn.execute("SELECT status FROM run").fetchone()[0]
        conn.close()
        assert status == "stopped"
