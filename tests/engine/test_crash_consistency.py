"""Crash consistency of the journal (issue 15): whole events only, and crashed runs named.

- a reader never sees half an event: rows reach the database at event boundaries only;
- the run row carries the writer's pid, host and heartbeat; a run whose heartbeat is stale and
  whose process is gone is marked `crashed` on the next writable open, and `qctl verify` says so;
- a seeded `kill -9` loop over `qctl backtest` (a subprocess): every committed state it leaves
  passes `integrity_check` and the event-level links of `engine.journal.consistency`.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.domain import EquityPoint, Fill, Order, OrderPurpose, OrderStatus, OrderType, Side
from engine.journal.consistency import count_event_problems, event_problems
from engine.journal.store import STALE_AFTER_MS, Journal, now_ms, run_liveness
from tests.engine.conftest import position
from tests.verify.cli import run_main

REPO = Path(__file__).resolve().parents[2]
QCTL = Path(sys.executable).parent / "qctl"
KILLS = 4  # seeded kill points per test run
KILL_SEED = 15
ITERATION_TIMEOUT_S = 120  # a bound, never an assertion on speed


def _outside(path: Path) -> sqlite3.Connection:
    """What another process sees: a fresh connection, committed rows only."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _counts(path: Path) -> dict[str, int]:
    conn = _outside(path)
    try:
        return {
            t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
            for t in ("decision", "order", "fill", "position", "equity")
        }
    finally:
        conn.close()


def test_a_reader_never_sees_half_an_event(journal_path: Path, make_entry) -> None:
    """batch_size=1 used to commit an order FILLED before its fill; now the bar is the unit."""
    with Journal(journal_path, batch_size=1) as j:
        rid = j.start_run("backtest", "legacy")
        d = make_entry()
        j.record_decision(d)
        order = Order.create(rid, d.ts, d.symbol, Side.LONG, OrderType.MARKET, 0.1,
                             OrderPurpose.ENTRY)  # fmt: skip
        j.record_order(order.with_status(OrderStatus.FILLED))
        assert _counts(journal_path)["order"] == 0  # the batch is full, the event is not
        j.record_fill(Fill(order.client_order_id, d.ts, d.symbol, Side.LONG, 0.1, 100.0, 0.01))
        j.record_position(position(d.symbol, Side.LONG, 0.1, 100.0), d.ts, "open")
        assert sum(_counts(journal_path).values()) == 0
        j.record_equity(EquityPoint(d.ts, 1e4, 1e4, 0.0, 0.99, 0.001, 1))
        assert _counts(journal_path) == dict.fromkeys(_counts(journal_path), 1)
        conn = _outside(journal_path)
        assert event_problems(conn) == {}
        conn.close()


def test_event_links_catch_half_an_event(journal_path: Path, make_entry) -> None:
    """The consistency check can fail: a FILLED order alone breaks two links."""
    with Journal(journal_path) as j:
        rid = j.start_run("backtest", "legacy")
        d = make_entry()
        order = Order.create(rid, d.ts, d.symbol, Side.LONG, OrderType.MARKET, 0.1,
                             OrderPurpose.ENTRY)  # fmt: skip
        j.record_order(order.with_status(OrderStatus.FILLED))
        j.flush()  # what the old batch rule did mid-event
        problems = event_problems(j.connection)
    assert set(problems) == {"FILLED order without a fill", "entry order without its decision"}
    assert count_event_problems(sqlite3.connect(journal_path)) == 2


def test_the_run_row_holds_pid_host_and_heartbeat(journal_path: Path, make_entry) -> None:
    with Journal(journal_path) as j:
        rid = j.start_run("paper", "legacy")
        (run,) = j.rows("run")
        assert run["pid"] == os.getpid() and run["host"] == socket.gethostname()
        assert abs(run["heartbeat_ts"] - now_ms()) < 60_000
        j.record_decision(make_entry())
        j.heartbeat(run["heartbeat_ts"] + 1234)  # commits the run row only
        assert _counts(journal_path)["decision"] == 0 and j.pending == 1
        conn = _outside(journal_path)
        beat = conn.execute("SELECT heartbeat_ts FROM run WHERE id = ?", (rid,)).fetchone()[0]
        conn.close()
        assert beat == run["heartbeat_ts"] + 1234
        assert run_liveness(j.rows("run")[0]) == "running"  # this very process
        j.finish_run("stopped")
        assert run_liveness(j.rows("run")[0]) == "stopped"


def _dead_run(path: Path) -> str:
    """A run whose writer died by SIGKILL right after committing a bar."""
    code = (
        "import os, signal\n"
        "from engine.domain import EquityPoint\n"
        "from engine.journal.store import Journal\n"
        f"j = Journal({str(path)!r})\n"
        "rid = j.start_run('backtest', 'legacy', run_id='run-dead')\n"
        "j.record_equity(EquityPoint(1, 1.0, 1.0, 0.0, 1.0, 0.0, 0))\n"
        "j.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return "run-dead"


def test_a_killed_run_is_marked_crashed_on_the_next_open(journal_path: Path, monkeypatch) -> None:
    rid = _dead_run(journal_path)
    with Journal.open_readonly(journal_path) as ro:
        (run,) = ro.rows("run")
    assert run["status"] == "running"
    assert run_liveness(run) == "running"  # heartbeat still fresh: not judged yet
    later = run["heartbeat_ts"] + STALE_AFTER_MS + 1
    assert run_liveness(run, now=later) == "crashed"
    assert run_liveness({**run, "pid": os.getpid()}, now=later) == "running"  # process alive
    assert run_liveness({**run, "host": "elsewhere"}, now=later) == "unknown"

    code = run_main(monkeypatch, "verify", "--only", "journal", "--db", str(journal_path))
    assert code == 0  # running, fresh heartbeat: listed as not finished, not failed

    conn = sqlite3.connect(journal_path)  # time passes: the heartbeat goes stale
    conn.execute("UPDATE run SET heartbeat_ts = heartbeat_ts - ?", (STALE_AFTER_MS + 1,))
    conn.commit()
    conn.close()
    with Journal(journal_path) as j:  # the next writer's open is the recovery path
        assert j.crashed_runs == [rid]
        (run,) = j.rows("run")
    assert run["status"] == "crashed" and run["ended_ts"] == run["heartbeat_ts"]
    assert "process gone" in run["summary"]
    code = run_main(monkeypatch, "verify", "--only", "journal", "--db", str(journal_path),
                    "--format", "json")  # fmt: skip
    assert code == 1


def test_a_live_or_foreign_run_is_never_marked(journal_path: Path) -> None:
    with Journal(journal_path) as j:
        j.start_run("paper", "legacy", run_id="run-live")  # this process: alive
        j.start_run("paper", "legacy", run_id="run-far")
        j.connection.execute("UPDATE run SET host = 'another-host' WHERE id = 'run-far'")
        j.run_id = None
        assert j.mark_crashed_runs(stale_after_ms=0, now=now_ms() + 10 * STALE_AFTER_MS) == []
        assert {r["status"] for r in j.rows("run")} == {"running"}


def _committed_equity(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        conn = _outside(path)
        try:
            return conn.execute("SELECT COUNT(*) FROM equity").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # not created yet


@pytest.mark.skipif(not QCTL.exists(), reason="the qctl console script is not installed")
def test_kill_9_loop_over_qctl_backtest_leaves_whole_events(tmp_path: Path, monkeypatch) -> None:
    """Seeded kill points across a full-year backtest: once its first batch is committed, the
    process is killed after a random delay, mid-batch, mid-commit or after the run is done."""
    rng = random.Random(KILL_SEED)
    delays = sorted(rng.uniform(0.0, 0.3) for _ in range(KILLS))
    outcomes = []
    for k, delay in enumerate(delays):
        db = tmp_path / f"kill{k}.db"
        proc = subprocess.Popen(
            [str(QCTL), "backtest", "--db", str(db), "--json"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + ITERATION_TIMEOUT_S
        seen = 0
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                seen = _committed_equity(db)
                if seen > 0:
                    time.sleep(delay)
                    break
                time.sleep(0.01)
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert event_problems(conn) == {}, f"kill {k} after {delay:.3f} s"
            (status, pid, beat) = conn.execute(
                "SELECT status, pid, heartbeat_ts FROM run"
            ).fetchone()
            committed = conn.execute("SELECT COUNT(*) FROM equity").fetchone()[0]
            # whole bars: every committed equity row's bar has its decisions before it
            steps = conn.execute("SELECT COUNT(DISTINCT ts) FROM equity").fetchone()[0]
        finally:
            conn.close()
        assert committed >= seen  # no committed row lost
        assert steps == committed
        if killed and status != "finished":  # killed mid-run (not while exiting after it)
            assert status == "running" and pid == proc.pid
            run = {"status": status, "pid": pid, "host": socket.gethostname(),
                   "heartbeat_ts": beat}  # fmt: skip
            assert run_liveness(run, now=beat + STALE_AFTER_MS + 1) == "crashed"
            outcomes.append("killed")
        else:
            assert status == "finished", proc.stderr.read() if proc.stderr else ""
            outcomes.append("finished")
    assert "killed" in outcomes  # at least one kill landed mid-run
    # the last killed journal: the next open marks it, and verify names it
    last = next(tmp_path / f"kill{k}.db" for k in reversed(range(KILLS)) if outcomes[k] == "killed")
    with Journal(last) as j:
        assert len(j.mark_crashed_runs(stale_after_ms=0)) == 1
    assert run_main(monkeypatch, "verify", "--only", "journal", "--db", str(last)) == 1


def test_a_slow_writer_still_commits_and_beats_every_few_seconds(
    journal_path: Path, make_entry, monkeypatch
) -> None:
    """Below the batch, a boundary reached HEARTBEAT_MS after the last commit commits."""
    import engine.journal.store as store

    with Journal(journal_path, batch_size=1000) as j:
        j.start_run("paper", "legacy")
        t = store.now_ms()
        monkeypatch.setattr(store, "now_ms", lambda: t + 10)
        j.record_decision(make_entry())
        j.record_equity(EquityPoint(1, 1.0, 1.0, 0.0, 1.0, 0.0, 0))
        assert j.pending == 2  # the batch is not full and the last commit is recent
        monkeypatch.setattr(store, "now_ms", lambda: t + store.HEARTBEAT_MS + 20)
        j.record_equity(EquityPoint(2, 1.0, 1.0, 0.0, 1.0, 0.0, 0))
        assert j.pending == 0 and _counts(journal_path)["equity"] == 2
        assert j.rows("run")[0]["heartbeat_ts"] == t + store.HEARTBEAT_MS + 20
