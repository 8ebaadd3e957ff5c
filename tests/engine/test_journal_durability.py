"""Journal durability: WAL, batched flushes, crash safety, schema checks, read-only handles."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.domain import EquityPoint
from engine.journal.store import SCHEMA_VERSION, Journal, JournalError
from tests.engine.conftest import T0

REPO = Path(__file__).resolve().parents[2]


def count_from_outside(path: Path, table: str = "decision") -> int:
    """What another process would see: a fresh connection, committed rows only."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
    finally:
        conn.close()


def test_file_journal_is_in_wal_mode(journal: Journal, journal_path: Path) -> None:
    assert journal.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn = sqlite3.connect(journal_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
    conn.close()


def test_memory_journal_works(make_entry) -> None:
    with Journal(":memory:") as j:
        j.start_run("backtest", "legacy")
        j.record_decision(make_entry())
        assert j.count("decision") == 1


def test_rows_are_committed_at_event_boundaries_once_a_batch_waits(
    journal_path: Path, make_entry
) -> None:
    """A full batch waits for the event's end (the equity row) before it is committed."""
    with Journal(journal_path, batch_size=3) as j:
        j.start_run("backtest", "legacy")
        for _ in range(4):
            j.record_decision(make_entry())
        assert j.pending == 4 and count_from_outside(journal_path) == 0  # mid-event: nothing
        j.record_equity(EquityPoint(T0, 1.0, 1.0, 0.0, 1.0, 0.0, 0))  # the bar's last row
        assert j.pending == 0 and count_from_outside(journal_path) == 4
        j.record_decision(make_entry())
        j.record_equity(EquityPoint(T0, 1.0, 1.0, 0.0, 1.0, 0.0, 0))
        assert j.pending == 2  # below the batch: still buffered
        j.flush()
        assert count_from_outside(journal_path) == 5
        j.record_decision(make_entry())
    assert count_from_outside(journal_path) == 6  # close flushes


def test_context_manager_flushes_when_the_body_raises(journal_path: Path, make_entry) -> None:
    with pytest.raises(RuntimeError), Journal(journal_path, batch_size=100) as j:
        j.start_run("backtest", "legacy")
        j.record_decision(make_entry())
        raise RuntimeError("engine bug")
    assert count_from_outside(journal_path) == 1


def _child(path: Path, body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        import os, sys
        from engine.domain import Decision, SkipReason
        from engine.journal.store import Journal
        j = Journal({str(path)!r}, batch_size=1000)
        j.start_run("backtest", "legacy", run_id="run-crash")
        def row(i):
            return Decision.skipped(i, "BTC-USDT", SkipReason.NO_SIGNAL, "row")
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_flushed_rows_survive_a_crash(journal_path: Path) -> None:
    result = _child(
        journal_path,
        """
        for i in range(250):
            j.record_decision(row(i))
        j.flush()
        for i in range(250, 300):
            j.record_decision(row(i))
        os._exit(9)  # hard crash: no atexit, no close, WAL not checkpointed
        """,
    )
    assert result.returncode == 9, result.stderr
    with Journal.open_readonly(journal_path) as j:
        assert j.count("decision", "run-crash") == 250  # every committed row, none of the tail
        assert j.count("run") == 1


def test_buffered_rows_are_flushed_at_exit(journal_path: Path) -> None:
    result = _child(
        journal_path,
        """
        for i in range(40):
            j.record_decision(row(i))
        raise SystemExit(3)  # no flush, no close: the atexit hook commits them
        """,
    )
    assert result.returncode == 3, result.stderr
    assert count_from_outside(journal_path) == 40


def test_newer_schema_is_refused(journal_path: Path) -> None:
    Journal(journal_path).close()
    conn = sqlite3.connect(journal_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    for opener in (Journal, Journal.open_readonly):
        with pytest.raises(JournalError, match="schema version .* upgrade qctl"):
            opener(journal_path)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE trades (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not a qctl journal"):
        Journal(other)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError):
        Journal(garbage)


def test_readonly_handle(journal_path: Path, make_entry) -> None:
    with pytest.raises(JournalError, match="does not exist"):
        Journal.open_readonly(journal_path)
    with Journal(journal_path) as writer:
        writer.start_run("backtest", "legacy", run_id="run-r")
        writer.record_decision(make_entry())
        writer.flush()
        with Journal.open_readonly(journal_path) as reader:  # reads while the writer is open
            assert reader.count("decision") == 1
            assert reader.latest_run_id() == "run-r"
            reader.run_id = "run-r"
            with pytest.raises(JournalError, match="read-only"):
                reader.record_decision(make_entry())
            with pytest.raises(sqlite3.OperationalError):
                reader.connection.execute("DELETE FROM decision")


def test_reopening_keeps_rows_and_schema(journal_path: Path, make_entry) -> None:
    with Journal(journal_path) as j:
        j.start_run("backtest", "legacy", run_id="run-1")
        j.record_decision(make_entry())
    with Journal(journal_path) as j:
        j.start_run("backtest", "legacy", run_id="run-2")
        j.record_decision(make_entry())
        assert j.count("decision") == 2 and j.count("decision", "run-1") == 1
        assert j.count("schema_version") == 1


def test_unknown_table_is_a_clear_error(journal: Journal) -> None:
    with pytest.raises(JournalError, match="no journal table"):
        journal.rows("trades")


def test_closed_journal_refuses_writes(journal_path: Path, make_entry) -> None:
    j = Journal(journal_path)
    j.start_run("backtest", "legacy")
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.record_decision(make_entry())


def test_durable_mode_syncs_every_commit(tmp_path: Path) -> None:
    with Journal(tmp_path / "a.db") as fast, Journal(tmp_path / "b.db", durable=True) as safe:
        assert fast.connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert safe.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_bad_row_is_named_and_does_not_block_the_others(journal_path: Path, make_entry) -> None:
    with Journal(journal_path, batch_size=100) as j:
        j.start_run("backtest", "legacy")
        j.record_decision(make_entry())
        j.record_decision(make_entry(symbol=None))  # breaks NOT NULL
        j.record_decision(make_entry(symbol="ETH-USDT"))
        with pytest.raises(JournalError, match="1 row.* broke the schema"):
            j.flush()
        assert j.pending == 0
        j.record_decision(make_entry(symbol="SOL-USDT"))
    assert count_from_outside(journal_path) == 3  # the good rows, before and after


def test_a_locked_database_keeps_the_rows_buffered(journal_path: Path, make_entry) -> None:
    with Journal(journal_path, batch_size=100) as j:
        j.start_run("backtest", "legacy")
        j.connection.execute("PRAGMA busy_timeout = 0")
        j.record_decision(make_entry())
        other = sqlite3.connect(journal_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        with pytest.raises(JournalError, match="flush failed"):
            j.flush()
        assert j.pending == 1  # nothing dropped
        other.execute("ROLLBACK")
        other.close()
        j.flush()
        assert j.pending == 0
    assert count_from_outside(journal_path) == 1


def _write_bars(j: Journal, make_entry, bars: int) -> None:
    for k in range(bars):
        j.record_decision(make_entry())
        j.record_equity(EquityPoint(T0 + k, 1.0, 1.0, 0.0, 1.0, 0.0, 0))


def test_write_behind_commits_every_batch_in_order(journal_path: Path, make_entry) -> None:
    """Batches committed by the writer process: the same rows, in the same order, as a flush
    here; the run's heartbeat names this process; flush waits for the writer; one writer
    serves every batch and ends with write-behind."""
    import os

    with Journal(journal_path, batch_size=6) as j:
        run_id = j.start_run("backtest", "legacy")
        j.set_write_behind(True)
        _write_bars(j, make_entry, 20)
        assert j._writer is not None  # a batch is with the writer
        writer = j._proc
        assert writer is not None and writer.pid != os.getpid()
        j.flush()
        assert count_from_outside(journal_path, "equity") == 20 and j._writer is None
        j.set_write_behind(False)
        assert j._proc is None and writer.returncode == 0  # ended, cleanly
        rows = j.rows("equity", run_id)
        (run,) = j.rows("run")
    assert [r["ts"] for r in rows] == [T0 + k for k in range(20)]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert run["pid"] == os.getpid()


def test_write_behind_batch_the_writer_could_not_commit_is_flushed_here(
    journal_path: Path, make_entry
) -> None:
    """A batch the writer cannot commit (a row breaks the schema) leaves nothing half-written:
    its rows come back and are flushed by this process, which names the bad row, commits the
    good ones in order and goes on writing behind."""
    with Journal(journal_path, batch_size=6) as j:
        run_id = j.start_run("backtest", "legacy")
        j.set_write_behind(True)
        _write_bars(j, make_entry, 3)  # a batch of 6 rows handed over, committed
        j.record_decision(make_entry(symbol=None))  # breaks NOT NULL
        _write_bars(j, make_entry, 3)  # the batch with the bad row is handed over: it fails
        assert count_from_outside(journal_path, "equity") == 3
        with pytest.raises(JournalError, match="1 row.* broke the schema"):
            _write_bars(j, make_entry, 3)  # the next batch waits: the failed one is flushed here
        assert count_from_outside(journal_path, "equity") == 9 and j.pending == 0
        _write_bars(j, make_entry, 13)
        assert j._proc is not None  # still writing behind
        j.set_write_behind(False)
        ts = [r["ts"] for r in j.rows("equity", run_id)]
        decisions = j.count("decision", run_id)
    assert ts == [T0 + k for k in (*range(3), *range(3), *range(3), *range(13))]
    assert decisions == 22


def test_write_behind_writer_that_dies_hands_its_batch_back(journal_path: Path, make_entry) -> None:
    """A writer process killed while it holds a batch: nothing of the batch is lost, it is
    committed here, and later batches are committed here too."""
    with Journal(journal_path, batch_size=6) as j:
        run_id = j.start_run("backtest", "legacy")
        j.set_write_behind(True)
        _write_bars(j, make_entry, 4)
        assert j._proc is not None
        j._proc.kill()
        j._proc.wait()
        _write_bars(j, make_entry, 16)
        j.set_write_behind(False)
        ts = [r["ts"] for r in j.rows("equity", run_id)]
    assert ts == [T0 + k for k in (*range(4), *range(16))]


def test_write_behind_is_off_for_memory_journals(make_entry) -> None:
    with Journal(":memory:", batch_size=2) as j:
        j.start_run("backtest", "legacy")
        j.set_write_behind(True)
        _write_bars(j, make_entry, 5)
        assert j._writer is None and j.count("equity") == 5


def test_write_behind_without_a_process_to_spare_writes_here(
    journal_path: Path, make_entry, monkeypatch
) -> None:
    import subprocess

    def no_process(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with Journal(journal_path, batch_size=6) as j:
        j.start_run("backtest", "legacy")
        j.set_write_behind(True)
        _write_bars(j, make_entry, 20)
        assert count_from_outside(journal_path, "equity") >= 18  # committed here, by batch
    assert count_from_outside(journal_path, "equity") == 20


def test_a_backtest_hands_its_batches_to_the_writer_and_writes_the_reference_rows(
    tmp_path: Path, monkeypatch
) -> None:
    """The shipped-sample run with small batches: every batch is committed by the writer
    process (none comes back: its rows pickle to plain values the writer needs no engine code
    for), and the journal is row for row the golden reference."""
    import json

    from engine.backtest import run_backtest
    from engine.core.policy import StaticPolicy
    from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
    from engine.venues.candle_files import load_market_data, sample_data_dir
    from engine.venues.simulated import BrokerConfig
    from tests.engine.test_backtest_golden import POLICY, REFERENCE, RUN_ID, TABLES, journal_digest

    answers: list[bool] = []
    await_writer = Journal._await_writer

    def spy(self: Journal) -> bool:
        held = self._writer is not None
        failed = await_writer(self)
        if held:
            answers.append(failed)
        return failed

    monkeypatch.setattr(Journal, "_await_writer", spy)
    db = tmp_path / "run.db"
    with Journal(db, batch_size=2_000) as journal:
        run_backtest(
            load_market_data(sample_data_dir()),
            StaticPolicy.from_toml(POLICY),
            equity=10_000.0,
            tiers=LeverageTiers.load(PACKAGED_TIERS),
            broker_config=BrokerConfig.from_toml(),
            journal=journal,
            run_id=RUN_ID,
        )
    assert len(answers) >= 5 and not any(answers)  # batches handed over, all committed there
    expected = json.loads(REFERENCE.read_text())
    got = journal_digest(db, RUN_ID)
    for table in TABLES:
        assert got[table] == expected[table], f"{table} rows differ from the reference run"
