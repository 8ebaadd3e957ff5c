"""Journal: every record type round-trips; the tables' columns stay aligned with the domain."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from sqlmodel import select

from engine.domain import (
    ControlCommand,
    ControlRequest,
    Decision,
    EquityPoint,
    Fill,
    HarvestLadder,
    LimitName,
    MigrationRecord,
    Order,
    OrderStatus,
    OrderType,
    Position,
    SafetyAction,
    SafetyEvent,
    Side,
    SkipReason,
    TradingState,
)
from engine.journal.store import (
    LATEST_POSITIONS_SQL,
    SCHEMA_VERSION,
    TABLES,
    DecisionRow,
    Journal,
    JournalError,
    columns,
    request_control,
    run_liveness,
)
from tests.engine.conftest import T0, position

HARVEST_COLUMNS = [
    "harvest_t1_r",
    "harvest_t2_r",
    "harvest_t3_r",
    "harvest_lock_r",
    "harvest_t1_close_frac",
    "harvest_t2_close_frac",
]
EXIT_COLUMNS = ["kill_reduce_threshold", "kill_reduce_frac", "max_hold_sec"]


def flattened(cls: type) -> set[str]:
    """A dataclass's field names as journal columns: the harvest ladder becomes six columns."""
    names: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.name == "harvest":
            names.update(HARVEST_COLUMNS)
        else:
            names.add(f.name)
    return names


ALIGNMENT = [
    ("decision", Decision, {"id", "run_id", "action"}),
    ("order", Order, {"id", "run_id"}),
    ("fill", Fill, {"id", "run_id"}),
    ("position", Position, {"id", "run_id", "ts", "event"}),
    ("equity", EquityPoint, {"id", "run_id"}),
    ("safety_event", SafetyEvent, {"id", "run_id"}),
    ("control", ControlRequest, {"run_id"}),
    ("migration", MigrationRecord, {"id"}),
]


@pytest.mark.parametrize(("table", "cls", "extra"), ALIGNMENT)
def test_table_columns_mirror_the_domain(journal: Journal, table, cls, extra) -> None:
    assert set(columns(table)) == flattened(cls) | extra
    on_disk = {r[1] for r in journal.connection.execute(f'PRAGMA table_info("{table}")')}
    assert on_disk == set(columns(table))


def test_every_design_table_exists(journal: Journal) -> None:
    names = {r[0] for r in journal.connection.execute("SELECT name FROM sqlite_master")}
    for table in ("run", "decision", "order", "fill", "position", "equity", "safety_event"):
        assert table in names
    assert {"control", "migration", "schema_version"} <= names
    assert set(TABLES) <= names


def test_decision_round_trip(journal: Journal, make_entry) -> None:
    entry = make_entry(reasons=(("trend", 0.5), ("vol", float("nan"))))
    skip = Decision.skipped(T0, "BNB-USDT", SkipReason.NO_DATA, "no candles", "legacy", "1")
    journal.record_decision(entry)
    journal.record_decision(skip)
    a, b = journal.rows("decision", run_id="run-test")
    assert a["action"] == "long" and a["side"] == "long" and a["leverage"] == 10.0
    assert [a[c] for c in HARVEST_COLUMNS] == [2.0, 4.0, 6.0, 1.5, 0.3, 0.3]
    assert [a[c] for c in EXIT_COLUMNS] == [0.55, 0.5, 86_400.0]
    assert json.loads(a["reasons"]) == [["trend", 0.5], ["vol", None]]
    assert a["skip"] is None and a["kill_threshold"] == 0.6 and a["run_id"] == "run-test"
    assert b["action"] == "skip" and b["skip"] == "NO_DATA" and b["leverage"] is None
    assert b["harvest_t1_r"] is None and b["skip_detail"] == "no candles"
    assert [b[c] for c in EXIT_COLUMNS] == [None, None, None]


def test_order_is_upserted_by_client_order_id(journal: Journal) -> None:
    o = Order.create("run-test", T0, "BTC-USDT", Side.LONG, OrderType.STOP_MARKET, 0.01,
                     "stop_loss", stop_price=97_500.0, reduce_only=True)  # fmt: skip
    journal.record_order(o)
    journal.record_order(o.with_status(OrderStatus.FILLED, "stopped out"))
    (row,) = journal.rows("order")
    assert row["client_order_id"] == o.client_order_id and row["status"] == "FILLED"
    assert (
        row["type"] == "STOP_MARKET" and row["reduce_only"] == 1 and row["stop_price"] == 97_500.0
    )


def test_fill_position_equity_event_round_trip(journal: Journal) -> None:
    journal.record_fill(Fill("qc-1", T0, "BTC-USDT", Side.LONG, 0.002, 100_000.0, 0.08))
    p = position("BTC-USDT", Side.LONG, 0.002, 100_000.0)
    p.harvest = HarvestLadder(2.0, 4.0, 6.0, 1.5, t1_close_frac=0.4, t2_close_frac=0.5)
    p.kill_reduce_threshold, p.kill_reduce_frac, p.max_hold_sec = 0.5, 0.25, 86_400.0
    journal.record_position(p, T0, "open")
    p.qty, p.harvest_stage, p.realised_pnl = 0.001, 1, 4.0
    journal.record_position(p, T0 + 1, "harvest_t1")
    p.qty, p.kill_reduced = 0.00075, True
    journal.record_position(p, T0 + 2, "kill_reduce")
    journal.record_equity(EquityPoint(T0, 9_999.92, 9_999.92, 0.0, 0.99, 0.02, 1))
    journal.record_safety_event(
        SafetyEvent(T0, "BTC-USDT", LimitName.MAX_POSITION_SIZE, 0.8, 0.5, 0.5, SafetyAction.CLIP)
    )
    (fill,) = journal.rows("fill")
    assert fill["price"] == 100_000.0 and fill["fee"] == 0.08 and fill["is_maker"] == 0
    opened, harvested, reduced = journal.rows("position")
    assert opened["event"] == "open" and opened["qty"] == 0.002 and opened["harvest_t3_r"] == 6.0
    assert [opened[c] for c in HARVEST_COLUMNS[4:] + EXIT_COLUMNS] == [
        0.4,
        0.5,
        0.5,
        0.25,
        86_400.0,
    ]
    assert harvested["harvest_stage"] == 1 and harvested["initial_qty"] == 0.002
    assert harvested["kill_reduced"] == 0 and reduced["kill_reduced"] == 1
    (eq,) = journal.rows("equity")
    assert eq["margin_ratio"] == 0.99 and eq["state"] == "ACTIVE" and eq["open_positions"] == 1
    (ev,) = journal.rows("safety_event")
    assert (ev["limit"], ev["action"], ev["applied"]) == ("max_position_size", "CLIP", 0.5)


def test_run_lifecycle(journal_path: Path) -> None:
    with Journal(journal_path) as j:
        run = j.start_run("backtest", "legacy", "1", timeframe="1h", symbols=["BTC-USDT"],
                          initial_equity=10_000.0, config={"fee": 0.0004})  # fmt: skip
        assert j.latest_run_id() == run
        j.finish_run(summary={"total_return": 0.1})
        with pytest.raises(JournalError, match="already exists"):
            j.start_run("backtest", "legacy", run_id=run)
        (row,) = j.runs()
    assert row["status"] == "finished" and json.loads(row["summary"]) == {"total_return": 0.1}
    assert json.loads(row["symbols"]) == ["BTC-USDT"] and row["ended_ts"] >= row["started_ts"]


def test_writing_without_a_run_is_an_error(make_entry) -> None:
    with Journal(":memory:") as j, pytest.raises(JournalError, match="start_run"):
        j.record_decision(make_entry())


def test_control_requests(journal_path: Path) -> None:
    with Journal(journal_path) as j:
        j.start_run("paper", "legacy", run_id="run-a")
        first = request_control(journal_path, "pause", source="tui")  # another connection
        j.request_control(ControlCommand.FLATTEN, symbol="BTC-USDT", run_id="run-b")  # not ours
        pending = j.pending_controls()
        assert [(c.id, c.command, c.source) for c in pending] == [
            (first, ControlCommand.PAUSE, "tui")
        ]
        j.mark_control_handled(first, "state REDUCING")
        assert j.pending_controls() == []
    with pytest.raises(ValueError):
        request_control(journal_path, "explode")


def test_migration_ledger(journal: Journal) -> None:
    rec = MigrationRecord(T0, "/repo", "phase1", "ReplaceLeverage", "bot/risk.py", "applied",
                          "a" * 64, "b" * 64, "--- a\n+++ b\n")  # fmt: skip
    mid = journal.record_migration(rec)
    journal.set_migration_status(mid, "rolled_back")
    (row,) = journal.rows("migration")
    assert row["status"] == "rolled_back" and row["reverse_patch"] == "--- a\n+++ b\n"


def test_orm_reads_through_sqlmodel(journal: Journal, make_entry) -> None:
    journal.record_decision(make_entry())
    with journal.session() as session:
        (row,) = session.exec(select(DecisionRow).where(DecisionRow.symbol == "BTC-USDT")).all()
    assert row.leverage == 10.0 and row.harvest_lock_r == 1.5


def test_readme_queries_run_with_sqlite_utils(journal_path: Path, make_entry) -> None:
    """The example queries documented in the README stay valid."""
    with Journal(journal_path) as j:
        j.start_run("backtest", "legacy", "1", run_id="run-x")
        j.record_decision(make_entry())
        j.record_decision(make_entry(symbol="ETH-USDT").as_skip(SkipReason.NO_SIGNAL, "weak"))
        j.record_safety_event(SafetyEvent(T0, "BTC-USDT", LimitName.MAX_TOTAL_EXPOSURE, 2.1,
                                          None, 2.0, SafetyAction.VETO, "", SkipReason.EXPOSURE_LIMIT))  # fmt: skip
        j.record_equity(EquityPoint(T0, 10_000.0, 10_000.0, 0.0, 1.0, 0.0, 0, TradingState.ACTIVE))
    db = sqlite_utils.Database(journal_path)
    skips = list(db.query(
        "select skip, count(*) as n from decision where skip is not null group by skip order by n desc"
    ))  # fmt: skip
    assert skips == [{"skip": "NO_SIGNAL", "n": 1}]
    events = list(db.query('select "limit", action, count(*) as n from safety_event group by 1, 2'))
    assert events == [{"limit": "max_total_exposure", "action": "VETO", "n": 1}]
    low = list(db.query("select min(margin_ratio) as m, max(exposure) as x from equity"))
    assert low == [{"m": 1.0, "x": 0.0}]


def test_schema_version_is_recorded(journal: Journal) -> None:
    assert journal.schema_version() == SCHEMA_VERSION
    (row,) = journal.rows("schema_version", order_by="version")
    assert row["version"] == SCHEMA_VERSION


def test_column_types_store_plain_values(journal: Journal, make_entry) -> None:
    import numpy as np

    journal.record_decision(make_entry(leverage=np.float64(7.5), confidence=np.float32(0.5)))
    journal.flush()
    row = journal.connection.execute(
        "SELECT typeof(leverage), typeof(side) FROM decision"
    ).fetchone()
    assert row == ("real", "text")
    assert isinstance(sqlite3.sqlite_version, str)


def test_nan_values_are_stored_as_null_and_never_block_a_flush(journal: Journal) -> None:
    nan = float("nan")
    journal.record_equity(EquityPoint(T0, nan, 10_000.0, nan, nan, float("inf"), 0))
    journal.record_safety_event(
        SafetyEvent(T0, "BTC-USDT", LimitName.INPUTS, nan, None, 0.0, SafetyAction.VETO)
    )
    journal.flush()
    assert journal.pending == 0
    (eq,) = journal.rows("equity")
    assert eq["equity"] is None and eq["wallet_balance"] == 10_000.0
    assert eq["exposure"] == float("inf")
    (ev,) = journal.rows("safety_event")
    assert ev["requested"] is None


SCHEMA_2_COLUMNS = {
    "decision": HARVEST_COLUMNS[4:] + EXIT_COLUMNS,
    "position": HARVEST_COLUMNS[4:] + EXIT_COLUMNS + ["kill_reduced"],
}
SCHEMA_3_COLUMNS = {"run": ["heartbeat_ts", "pid", "host"]}
SCHEMA_3_INDEX = "ix_position_run_symbol_id"


def _downgrade(path: Path, version: int) -> None:
    """Turn a journal into what schema `version` wrote (columns and index of later ones gone)."""
    conn = sqlite3.connect(path)
    conn.execute(f"DROP INDEX {SCHEMA_3_INDEX}")
    drops = dict(SCHEMA_3_COLUMNS)
    if version < 2:
        drops.update(SCHEMA_2_COLUMNS)
    for table, cols in drops.items():
        for col in cols:
            conn.execute(f'ALTER TABLE "{table}" DROP COLUMN {col}')
    conn.execute("DELETE FROM schema_version")
    for v in range(1, version + 1):
        conn.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, 0)", (v,))
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def test_a_schema_1_journal_is_upgraded_in_place(journal_path: Path, make_entry) -> None:
    """Opening a journal written before the exit columns adds them; old rows stay readable."""
    with Journal(journal_path) as j:
        j.start_run("backtest", "legacy", "1", run_id="run-old")
        j.record_decision(make_entry())
        j.record_position(position("BTC-USDT", Side.LONG, 0.002, 100_000.0), T0, "open")
    _downgrade(journal_path, 1)
    with Journal.open_readonly(journal_path) as ro:  # a reader does not change it
        assert ro.schema_version() == 1 and "max_hold_sec" not in ro.rows("decision")[0]

    with Journal(journal_path) as j:
        assert j.schema_version() == SCHEMA_VERSION == 3
        j.resume_run("run-old")
        j.record_decision(make_entry(symbol="ETH-USDT"))
        old, new = j.rows("decision", order_by="id")
        (pos,) = j.rows("position")
        versions = [r["version"] for r in j.rows("schema_version", order_by="version")]
    assert versions == [1, 3]
    assert old["max_hold_sec"] is None and old["leverage"] == 10.0
    assert new["max_hold_sec"] == 86_400.0 and new["harvest_t2_close_frac"] == 0.3
    assert pos["kill_reduced"] == 0  # the column's default for rows written before it existed


def test_a_schema_2_journal_gets_the_liveness_columns_and_the_position_index(
    journal_path: Path,
) -> None:
    """v2 -> v3 in place: run liveness columns and the (run_id, symbol, id) index appear; the
    latest row per symbol is then found by index seeks, not by scanning the run's rows."""
    with Journal(journal_path) as j:
        j.start_run("backtest", "legacy", "1", run_id="run-2")
        for k in range(50):
            p = position("BTC-USDT" if k % 2 else "ETH-USDT", Side.LONG, 0.002 + k, 100.0)
            if k == 48:
                p.closed_ts = T0 + k  # ETH's last row closes it
            j.record_position(p, T0 + k, "close" if k == 48 else "open")
    _downgrade(journal_path, 2)
    with Journal.open_readonly(journal_path) as ro:
        assert ro.schema_version() == 2 and "heartbeat_ts" not in ro.rows("run")[0]
    with Journal(journal_path) as j:
        assert j.schema_version() == 3
        (run,) = j.rows("run")
        assert run["status"] == "running" and run["pid"] is None  # pre-3 row: liveness unknown
        assert run_liveness(run) == "unknown"
        indexes = {r[1] for r in j.connection.execute("PRAGMA index_list(position)")}
        assert SCHEMA_3_INDEX in indexes
        plan = [str(r[-1]) for r in j.connection.execute(
            "EXPLAIN QUERY PLAN " + LATEST_POSITIONS_SQL, {"run": "run-2"})]  # fmt: skip
        latest = j.latest_positions("run-2", open_only=False)
        open_now = j.latest_positions("run-2")
    assert not any(step.startswith("SCAN p") for step in plan), plan  # no scan of position
    assert sum(SCHEMA_3_INDEX in step for step in plan) == 3, plan  # three kinds of seek
    assert [(r["symbol"], r["qty"]) for r in latest] == [("BTC-USDT", 49.002), ("ETH-USDT", 48.002)]
    assert [r["symbol"] for r in open_now] == ["BTC-USDT"]
