"""The journal: one SQLite file (WAL) holding every run, decision, order, fill, position snapshot,
equity point, safety event, operator control request and migration.

Tables are sqlmodel models whose columns mirror the domain dataclasses (a test keeps them
aligned). Every REAL column is nullable: SQLite stores NaN as NULL, and a NaN that reaches the
journal is recorded as unknown instead of making the flush fail.

Writes are buffered and committed on event boundaries: the loop's equity row closes a bar (its
decisions, orders, fills, position snapshots and safety events), and the buffer is flushed there,
in one transaction, once `batch_size` rows are waiting or `HEARTBEAT_MS` has passed; also on
`flush()`, `close()` and at interpreter exit. A reader (or a `kill -9`) therefore never sees half
an event: an order FILLED without its fill, a fill without its position row. A crash loses at
most the bars since the last commit and never a committed row. Inserts go through
`executemany` on the connection (the ORM is too slow for thousands of rows per second); sqlmodel
defines the schema and serves ORM reads via `session()`.

Liveness: the run row holds the writer's `pid`, `host` and a wall-clock `heartbeat_ts`, renewed
by every commit and by `heartbeat()`. Opening a journal for writing marks `crashed` each run
still `running` whose heartbeat is older than `STALE_AFTER_MS` and whose process is gone from
this host (`mark_crashed_runs`); read-only users ask `run_liveness(row)`.

This module is the single place that opens the database (`Journal(...)`, `Journal.open_readonly`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Index, text
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable
from sqlmodel import Field, Session, SQLModel, create_engine

from engine.domain import (
    ControlCommand,
    ControlRequest,
    Decision,
    EquityPoint,
    Fill,
    MigrationRecord,
    Order,
    Position,
    SafetyEvent,
    SafetyLimits,
)

# 2: harvest close fractions, kill reduce and time exit columns
# 3: run liveness (heartbeat_ts, pid, host); index position(run_id, symbol, id)
SCHEMA_VERSION = 3
DEFAULT_JOURNAL = Path("qctl.db")
MEMORY = ":memory:"
HEARTBEAT_MS = 5_000  # a writer commits (and beats) at the first event boundary after this long
# rows buffered before a commit: large, because every commit costs a transaction and, every few
# MB of WAL, a checkpoint (fsync); a backtest writes ~4 rows per bar, live mode flushes each cycle
BATCH_ROWS = 20_000
CACHE_KIB = 32_768  # page cache of a writer: the indexes of a growing journal stay in memory
# WAL pages before a checkpoint copies them into the database (with an fsync): 64 MB, so that a
# commit of a backtest's batch does not checkpoint (SQLite's default: 1000 pages, ~4 MB)
WAL_CHECKPOINT_PAGES = 16_384
STALE_AFTER_MS = 60_000  # a heartbeat older than this, process gone: the run crashed

# The write-behind process (`Journal.set_write_behind`), run by `python -I -S -c`: it imports
# only the standard library, reads (length, pickle) messages from stdin (first the settings, then
# one batch each: (run id, [(insert SQL, rows), ...])), commits each batch with the run's heartbeat in one
# transaction and answers one byte on stdout: 0 committed, 1 not (rolled back). A message cut
# short (the engine died while handing it over) is not committed; end of input ends it.
_WRITER_CODE = """
import pickle, signal, sqlite3, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
inp, out = sys.stdin.buffer, sys.stdout.buffer
def message():
    head = inp.read(8)
    if len(head) < 8:
        return None
    n = int.from_bytes(head, 'little')
    data = inp.read(n)
    return pickle.loads(data) if len(data) == n else None
init = message()
if init is None:
    sys.exit(0)
conn = sqlite3.connect(init['path'], isolation_level=None)
conn.execute('PRAGMA busy_timeout=5000')
conn.execute('PRAGMA synchronous=' + init['synchronous'])
conn.execute('PRAGMA cache_size=-%d' % init['cache_kib'])
conn.execute('PRAGMA wal_autocheckpoint=%d' % init['checkpoint_pages'])
while True:
    try:
        batch = message()
    except Exception:
        batch = None
    if batch is None:
        break
    run_id, tables = batch
    try:
        conn.execute('BEGIN IMMEDIATE')
        for sql, rows in tables:
            conn.executemany(sql, rows)
        if run_id is not None:
            conn.execute(
                'UPDATE run SET heartbeat_ts = ?, pid = ?, host = ? '
                "WHERE id = ? AND status = 'running'",
                (int(time.time() * 1000), init['owner_pid'], init['host'], run_id),
            )
        conn.execute('COMMIT')
        answer = b'0'
    except Exception:
        try:
            conn.execute('ROLLBACK')
        except Exception:
            pass
        answer = b'1'
    out.write(answer)
    out.flush()
conn.close()
"""


class JournalError(Exception):
    """The journal cannot be opened or written (missing file, newer schema, not a qctl journal)."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------------------------------------
# tables (column names mirror the domain dataclasses; harvest ladders are flattened)


class RunRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "run"
    id: str = Field(primary_key=True)
    mode: str  # backtest | paper | live
    policy: str
    policy_version: str = ""
    started_ts: int
    ended_ts: int | None = None
    status: str = "running"  # running | finished | failed | stopped | crashed
    timeframe: str = ""
    symbols: str = "[]"  # JSON list
    data_source: str = ""
    initial_equity: float | None = None
    limits: str = "{}"  # JSON of SafetyLimits in force
    config: str = "{}"  # JSON, anything else worth keeping (fees, slippage, policy file...)
    summary: str = "{}"  # JSON, written by finish_run (metrics)
    # schema 3: liveness of the writing process (see the module docstring)
    heartbeat_ts: int | None = None  # wall clock, ms
    pid: int | None = None
    host: str | None = None


class DecisionRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "decision"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    ts: int = Field(index=True)
    symbol: str
    action: str  # long | short | skip
    side: str | None = None
    leverage: float | None = None
    size_pct: float | None = None
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    harvest_t1_r: float | None = None
    harvest_t2_r: float | None = None
    harvest_t3_r: float | None = None
    harvest_lock_r: float | None = None
    harvest_t1_close_frac: float | None = None
    harvest_t2_close_frac: float | None = None
    kill_threshold: float | None = None
    kill_reduce_threshold: float | None = None
    kill_reduce_frac: float | None = None
    max_hold_sec: float | None = None
    confidence: float | None = None
    policy: str = ""
    model_version: str = ""
    reasons: str = "[]"  # JSON list of [name, value] (top feature contributions)
    skip: str | None = None
    skip_detail: str = ""


class OrderRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "order"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    client_order_id: str = Field(unique=True)
    ts: int
    symbol: str
    side: str
    type: str
    qty: float | None
    purpose: str
    stop_price: float | None = None
    reduce_only: bool = False
    status: str = "NEW"
    detail: str = ""


class FillRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "fill"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    client_order_id: str = Field(index=True)
    ts: int
    symbol: str
    side: str
    qty: float | None
    price: float | None
    fee: float | None
    is_maker: bool = False
    realised_pnl: float | None = 0.0


class PositionRow(SQLModel, table=True):
    """A snapshot of a position each time it changes (`event`: open, harvest, stop, close...).

    The (run_id, symbol, id) index finds a run's latest row per symbol without a scan (the TUI's
    open positions: one index seek per symbol)."""

    __tablename__: ClassVar[str] = "position"
    __table_args__ = (Index("ix_position_run_symbol_id", "run_id", "symbol", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    ts: int
    event: str
    symbol: str
    side: str
    qty: float | None
    entry_price: float | None
    leverage: float | None
    opened_ts: int
    stop_price: float | None = None
    take_profit_price: float | None = None
    harvest_t1_r: float | None = None
    harvest_t2_r: float | None = None
    harvest_t3_r: float | None = None
    harvest_lock_r: float | None = None
    harvest_t1_close_frac: float | None = None
    harvest_t2_close_frac: float | None = None
    kill_threshold: float | None = None
    kill_reduce_threshold: float | None = None
    kill_reduce_frac: float | None = None
    max_hold_sec: float | None = None
    initial_qty: float | None = 0.0
    initial_stop_price: float | None = None
    harvest_stage: int = 0
    # a column added by schema 2: existing rows read 0 (not reduced)
    kill_reduced: bool = Field(default=False, sa_column_kwargs={"server_default": text("0")})
    mark_price: float | None = 0.0
    realised_pnl: float | None = 0.0
    fees_paid: float | None = 0.0
    funding_paid: float | None = 0.0
    closed_ts: int | None = None
    close_reason: str = ""
    policy: str = ""
    model_version: str = ""


class EquityRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "equity"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    ts: int
    equity: float | None
    wallet_balance: float | None
    unrealised_pnl: float | None
    margin_ratio: float | None
    exposure: float | None
    open_positions: int
    state: str = "ACTIVE"


class SafetyEventRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "safety_event"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    ts: int
    symbol: str
    limit: str
    requested: float | None
    applied: float | None = None
    bound: float | None
    action: str  # CLIP | VETO
    detail: str = ""
    skip: str | None = None


class ControlRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "control"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str | None = None  # None: whichever run is polling this journal
    ts: int
    command: str
    symbol: str | None = None
    source: str = ""
    handled_ts: int | None = None
    result: str = ""


class MigrationRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "migration"
    id: int | None = Field(default=None, primary_key=True)
    ts: int
    repo: str
    phase: str
    codemod: str
    file: str
    status: str
    before_sha256: str = ""
    after_sha256: str = ""
    reverse_patch: str = ""
    detail: str = ""


class SchemaVersionRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = "schema_version"
    version: int = Field(primary_key=True)
    applied_ts: int


TABLE_MODELS: dict[str, type[SQLModel]] = {
    m.__tablename__: m
    for m in (
        RunRow,
        DecisionRow,
        OrderRow,
        FillRow,
        PositionRow,
        EquityRow,
        SafetyEventRow,
        ControlRow,
        MigrationRow,
        SchemaVersionRow,
    )
}
TABLES = tuple(TABLE_MODELS)
_BUFFERED = ("decision", "order", "fill", "position", "equity", "safety_event")


def columns(table: str) -> list[str]:
    """Column names of a journal table, in schema order."""
    return [c.name for c in TABLE_MODELS[table].__table__.columns]  # type: ignore[attr-defined]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _insert_sql(table: str) -> str:
    cols = [c for c in columns(table) if c != "id"]
    sql = (
        f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in cols)}) "
        f"VALUES ({', '.join('?' for _ in cols)})"
    )
    if table == "order":  # one row per order, holding its latest status
        updates = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in cols if c != "client_order_id")
        sql += f" ON CONFLICT(client_order_id) DO UPDATE SET {updates}"
    return sql


_INSERT = {t: _insert_sql(t) for t in _BUFFERED}


# ---------------------------------------------------------------------------------------------
# domain object -> row tuple (column order of the table, without id)


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def _s(x: Any) -> str | None:
    return None if x is None else str(x)


def _harvest(h: Any) -> tuple[float | None, ...]:
    """The ladder's six columns: T1/T2/T3/lock R, then the T1/T2 close fractions."""
    if h is None:
        return (None, None, None, None, None, None)
    return (
        float(h.t1_r),
        float(h.t2_r),
        float(h.t3_r),
        float(h.lock_r),
        _num(h.t1_close_frac),
        _num(h.t2_close_frac),
    )


def _exits(x: Decision | Position) -> tuple[float | None, ...]:
    """The kill and time-exit columns decisions and positions share, in table order."""
    return (
        _num(x.kill_threshold),
        _num(x.kill_reduce_threshold),
        _num(x.kill_reduce_frac),
        _num(x.max_hold_sec),
    )


def _reasons_json(reasons: Iterable[tuple[str, float]]) -> str:
    """JSON list of [name, value] pairs (non-finite values as null), as `json.dumps` writes it.

    Names that are plain ASCII identifiers (every name the engine and the models use) need no
    escaping, so the common case is formatted directly (floats by `repr`, like `json`), with one
    `%`-template per list of names (a policy gives the same names at every decision)."""
    pairs = reasons if isinstance(reasons, tuple | list) else tuple(reasons)
    if not pairs:
        return "[]"
    names, values = zip(*pairs, strict=True)
    template = _REASON_TEMPLATES.get(names)
    if template is None:
        if not all(type(n) is str and n.isascii() and n.isidentifier() for n in names):
            return _reasons_json_slow(pairs)
        template = "[" + ", ".join(f'["{n}", %r]' for n in names) + "]"
        if len(_REASON_TEMPLATES) < 1024:
            _REASON_TEMPLATES[names] = template
    floats = tuple(map(float, values))
    if not all(map(math.isfinite, floats)):
        return _reasons_json_slow(pairs)
    return template % floats


_REASON_TEMPLATES: dict[tuple[str, ...], str] = {}


def _reasons_json_slow(reasons: Sequence[tuple[str, float]]) -> str:
    """`_reasons_json` name by name (non-finite values, names that need escaping)."""
    parts = []
    for name, value in reasons:
        v = float(value)
        name = str(name)
        if not (name.isascii() and name.isidentifier()):
            return json.dumps([[str(n), _finite_or_none(x)] for n, x in reasons])
        parts.append(f'["{name}", {v!r}]' if math.isfinite(v) else f'["{name}", null]')
    return "[" + ", ".join(parts) + "]"


def _finite_or_none(value: float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def decision_row(run_id: str, d: Decision) -> tuple:
    # `_num` / `_s` written inline: a backtest journals a decision per symbol at each refresh
    h = d.harvest
    return (
        run_id,
        int(d.ts),
        d.symbol,
        d.action,
        None if (side := d.side) is None else str(side),
        None if (lev := d.leverage) is None else float(lev),
        None if (size := d.size_pct) is None else float(size),
        None if (sl := d.stop_loss_pct) is None else float(sl),
        None if (tp := d.take_profit_pct) is None else float(tp),
        *(_NO_HARVEST if h is None else _harvest(h)),
        None if (kill := d.kill_threshold) is None else float(kill),
        None if (reduce := d.kill_reduce_threshold) is None else float(reduce),
        None if (frac := d.kill_reduce_frac) is None else float(frac),
        None if (hold := d.max_hold_sec) is None else float(hold),
        None if (conf := d.confidence) is None else float(conf),
        d.policy,
        d.model_version,
        _reasons_json(d.reasons),
        None if (skip := d.skip) is None else str(skip),
        d.skip_detail,
    )


_NO_HARVEST = (None, None, None, None, None, None)


def order_row(run_id: str, o: Order) -> tuple:
    return (
        run_id,
        o.client_order_id,
        int(o.ts),
        o.symbol,
        str(o.side),
        str(o.type),
        float(o.qty),
        str(o.purpose),
        _num(o.stop_price),
        bool(o.reduce_only),
        str(o.status),
        o.detail,
    )


def fill_row(run_id: str, f: Fill) -> tuple:
    return (
        run_id,
        f.client_order_id,
        int(f.ts),
        f.symbol,
        str(f.side),
        float(f.qty),
        float(f.price),
        float(f.fee),
        bool(f.is_maker),
        float(f.realised_pnl),
    )


def position_row(run_id: str, p: Position, ts: int, event: str) -> tuple:
    return (
        run_id,
        int(ts),
        event,
        p.symbol,
        str(p.side),
        float(p.qty),
        float(p.entry_price),
        float(p.leverage),
        int(p.opened_ts),
        _num(p.stop_price),
        _num(p.take_profit_price),
        *_harvest(p.harvest),
        *_exits(p),
        float(p.initial_qty),
        _num(p.initial_stop_price),
        int(p.harvest_stage),
        bool(p.kill_reduced),
        float(p.mark_price),
        float(p.realised_pnl),
        float(p.fees_paid),
        float(p.funding_paid),
        None if p.closed_ts is None else int(p.closed_ts),
        p.close_reason,
        p.policy,
        p.model_version,
    )


def equity_row(run_id: str, e: EquityPoint) -> tuple:
    return (
        run_id,
        int(e.ts),
        float(e.equity),
        float(e.wallet_balance),
        float(e.unrealised_pnl),
        float(e.margin_ratio),
        float(e.exposure),
        int(e.open_positions),
        str(e.state),
    )


def safety_event_row(run_id: str, e: SafetyEvent) -> tuple:
    return (
        run_id,
        int(e.ts),
        e.symbol,
        str(e.limit),
        float(e.requested),
        _num(e.applied),
        float(e.bound),
        str(e.action),
        e.detail,
        _s(e.skip),
    )


# the latest row per symbol of a run: a skip-scan over ix_position_run_symbol_id (one seek to
# the next symbol, one to its highest id), never a scan of the run's rows
LATEST_POSITIONS_SQL = """
WITH RECURSIVE sym(s) AS (
    SELECT (SELECT MIN(symbol) FROM position WHERE run_id = :run)
    UNION ALL
    SELECT (SELECT MIN(symbol) FROM position WHERE run_id = :run AND symbol > sym.s)
    FROM sym WHERE sym.s IS NOT NULL
)
SELECT p.* FROM sym JOIN position p
    ON p.id = (SELECT MAX(id) FROM position WHERE run_id = :run AND symbol = sym.s)
ORDER BY p.symbol
"""


# ---------------------------------------------------------------------------------------------
# liveness of a run's writer


def process_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): kill(0) said it exists


def run_liveness(
    run: Mapping[str, Any], now: int | None = None, stale_after_ms: int = STALE_AFTER_MS
) -> str:
    """What a run row says of its writer: its status, or for a `running` row one of
    `running` (heartbeat fresh or process alive), `crashed` (heartbeat stale and the process
    gone from this host) or `unknown` (stale, written on another host or before schema 3)."""
    status = str(run.get("status") or "")
    if status != "running":
        return status
    now = now_ms() if now is None else now
    beat = run.get("heartbeat_ts")
    if beat is not None and now - int(beat) <= stale_after_ms:
        return "running"
    pid, host = run.get("pid"), run.get("host")
    if pid is None or host != socket.gethostname():
        return "unknown"
    return "running" if process_alive(int(pid)) else "crashed"


# ---------------------------------------------------------------------------------------------
# the journal

_OPEN_JOURNALS: weakref.WeakSet[Journal] = weakref.WeakSet()


def _flush_open_journals() -> None:
    """At interpreter exit, commit what is still buffered (an exception exit included)."""
    for journal in list(_OPEN_JOURNALS):
        try:
            journal.close()
        except Exception as exc:  # reported, never silently dropped; exit goes on
            import sys

            print(f"qctl journal: could not flush {journal.path} at exit: {exc}", file=sys.stderr)


atexit.register(_flush_open_journals)


class Journal:
    """Write handle on a journal file (or `":memory:"`); use as a context manager.

    One writer per run. `batch_size` rows are buffered before a flush; `durable=True` makes each
    commit survive power loss too (synchronous=FULL) at some speed cost; the default
    (synchronous=NORMAL in WAL mode) survives any process crash.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_JOURNAL,
        batch_size: int = BATCH_ROWS,
        durable: bool = False,
        *,
        _readonly: bool = False,
    ) -> None:
        self.path = str(path)
        self.readonly = _readonly
        self.batch_size = max(1, int(batch_size))
        self.run_id: str | None = None
        self._lock = threading.RLock()
        self._buffers: dict[str, list[tuple]] = {t: [] for t in _BUFFERED}
        self._pending = 0
        # client order id -> its row in the order buffer: a later status of a buffered order
        # takes that row's place (what the upsert would leave: the first row's id, the last values)
        self._order_slot: dict[str, int] = {}
        self._closed = False
        self._durable = durable
        self._write_behind = False  # see set_write_behind
        # the write-behind process, and the batch it holds (process, rows, row count)
        self._proc: subprocess.Popen | None = None
        self._writer: tuple[subprocess.Popen, dict[str, list[tuple]], int] | None = None
        self._conn = self._connect(durable)
        try:
            self._check_schema()
        except BaseException:
            self._conn.close()
            raise
        self._engine = create_engine("sqlite://", creator=lambda: self._conn, poolclass=StaticPool)
        self._last_commit_ms = now_ms()
        if not _readonly:
            self._create_schema()
            _OPEN_JOURNALS.add(self)
            self.crashed_runs = self.mark_crashed_runs()

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open_readonly(cls, path: str | Path = DEFAULT_JOURNAL) -> Journal:
        """A read-only handle (TUI, verify, reports): never writes, fails if the file is missing."""
        return cls(path, _readonly=True)

    def _connect(self, durable: bool) -> sqlite3.Connection:
        memory = self.path == MEMORY
        try:
            if self.readonly:
                if memory or not Path(self.path).is_file():
                    raise JournalError(f"journal {self.path} does not exist")
                uri = Path(self.path).resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                if not memory:
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                if not memory:
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise JournalError(f"journal {self.path}: WAL mode refused ({mode})")
                conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from None
        return conn

    def _check_schema(self) -> None:
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            names = {
                r[0]
                for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path} is not an SQLite database ({exc})") from None
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has schema version {version}; this qctl reads up to "
                f"{SCHEMA_VERSION}: upgrade qctl"
            )
        if version == 0 and (names or self.readonly):
            raise JournalError(f"{self.path} is not a qctl journal (no schema version)")

    def _create_schema(self) -> None:
        """Tables, indexes and the version in one transaction: a crash leaves all or nothing.

        A journal of an older schema is upgraded in the same transaction: the columns added
        since are appended (nullable, or with their default), existing rows are kept as they are.
        """
        dialect = self._engine.dialect
        ddl: list[str] = []
        for name in TABLES:
            table = TABLE_MODELS[name].__table__  # type: ignore[attr-defined]
            ddl.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
            for index in sorted(table.indexes, key=lambda i: i.name or ""):
                ddl.append(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            for statement in ddl:
                self._conn.execute(statement)
            for statement in self._added_columns():
                self._conn.execute(statement)
            self._conn.execute(
                "INSERT OR IGNORE INTO schema_version (version, applied_ts) VALUES (?, ?)",
                (SCHEMA_VERSION, now_ms()),
            )
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._conn.execute("COMMIT")

    def _added_columns(self) -> list[str]:
        """ALTER TABLE statements for the model columns an existing table lacks (older schema)."""
        dialect = self._engine.dialect
        out = []
        for name in TABLES:
            table = TABLE_MODELS[name].__table__  # type: ignore[attr-defined]
            have = {r[1] for r in self._conn.execute(f"PRAGMA table_info({_q(name)})")}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable and column.server_default is None:
                    raise JournalError(
                        f"journal {self.path}: cannot add the NOT NULL column {name}.{column.name} "
                        "without a default to an older schema"
                    )
                spec = str(CreateColumn(column).compile(dialect=dialect))
                out.append(f"ALTER TABLE {_q(name)} ADD COLUMN {spec}")
        return out

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for ad-hoc SQL (flush first if you wrote through this handle)."""
        return self._conn

    def session(self) -> Session:
        """A sqlmodel session on this journal (ORM reads: `select(DecisionRow).where(...)`)."""
        self.flush()
        return Session(self._engine)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if not self.readonly:
                try:
                    self.flush()
                finally:
                    self._stop_writer()
            self._closed = True
            _OPEN_JOURNALS.discard(self)
            self._engine.dispose()
            self._conn.close()

    # -- writing -----------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.readonly:
            raise JournalError(f"journal {self.path} was opened read-only")
        if self._closed:
            raise JournalError(f"journal {self.path} is closed")

    def _run(self) -> str:
        if self.run_id is None:
            raise JournalError("no run started on this journal: call start_run() first")
        return self.run_id

    def _commit(self, sql: str, params: Sequence[Any]) -> int:
        """Write one row now, in its own transaction (after the buffered rows)."""
        self._writable()
        with self._lock:
            self.flush()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"journal {self.path}: {exc}") from None
            return int(cur.lastrowid or 0)

    def start_run(
        self,
        mode: str,
        policy: str,
        policy_version: str = "",
        *,
        limits: SafetyLimits | None = None,
        timeframe: str = "",
        symbols: Iterable[str] = (),
        data_source: str = "",
        initial_equity: float | None = None,
        config: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        started_ts: int | None = None,
    ) -> str:
        """Record a new run (committed at once) and make it the run later rows belong to."""
        run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
        exists = self._conn.execute("SELECT 1 FROM run WHERE id = ?", (run_id,)).fetchone()
        if exists:
            raise JournalError(f"run {run_id} already exists in {self.path}")
        self._commit(
            "INSERT INTO run (id, mode, policy, policy_version, started_ts, status, timeframe, "
            "symbols, data_source, initial_equity, limits, config, summary, heartbeat_ts, pid, "
            "host) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?)",
            (
                run_id,
                mode,
                policy,
                policy_version,
                started_ts if started_ts is not None else now_ms(),
                timeframe,
                json.dumps(list(symbols)),
                data_source,
                _num(initial_equity),
                json.dumps(limits.as_dict() if limits is not None else {}),
                json.dumps(dict(config or {}), default=str),
                now_ms(),
                os.getpid(),
                socket.gethostname(),
            ),
        )
        self.run_id = run_id
        return run_id

    def resume_run(self, run_id: str) -> None:
        """Attach to an existing run (crash-only restart of paper/live: start-up is recovery).

        The run is `running` again, owned by this process (a `crashed` mark is lifted)."""
        if not self._conn.execute("SELECT 1 FROM run WHERE id = ?", (run_id,)).fetchone():
            raise JournalError(f"no run {run_id} in {self.path}")
        self.run_id = run_id
        if not self.readonly:
            self._commit(
                "UPDATE run SET status = 'running', ended_ts = NULL, heartbeat_ts = ?, pid = ?, "
                "host = ? WHERE id = ?",
                (now_ms(), os.getpid(), socket.gethostname(), run_id),
            )

    def heartbeat(self, ts_ms: int | None = None) -> None:
        """Say the current run's writer is alive at wall-clock `ts_ms` (default now).

        Commits only the run row, never buffered rows (call it anywhere, even mid-event); the
        live runtime calls it while it waits for the next bar. A no-op without a current run."""
        self._writable()
        if self.run_id is None:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._beat(ts_ms)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"journal {self.path}: heartbeat failed: {exc}") from None

    def _beat(self, ts_ms: int | None = None) -> None:
        """Inside a write transaction: renew the current run's heartbeat (and owner)."""
        ts = now_ms() if ts_ms is None else int(ts_ms)
        self._conn.execute(
            "UPDATE run SET heartbeat_ts = ?, pid = ?, host = ? WHERE id = ? AND status = 'running'",
            (ts, os.getpid(), socket.gethostname(), self.run_id),
        )
        self._last_commit_ms = ts

    def mark_crashed_runs(
        self, stale_after_ms: int = STALE_AFTER_MS, now: int | None = None
    ) -> list[str]:
        """Mark `crashed` every run still `running` whose heartbeat is stale and whose process
        is gone from this host (`run_liveness`); returns their ids. Runs on by itself on every
        writable open; runs of other hosts or of pre-3 journals are left as they are."""
        self._writable()
        now = now_ms() if now is None else now
        rows = self._conn.execute(
            "SELECT id, status, heartbeat_ts, pid, host FROM run WHERE status = 'running'"
        ).fetchall()
        crashed = []
        for rid, status, beat, pid, host in rows:
            row = {"status": status, "heartbeat_ts": beat, "pid": pid, "host": host}
            if rid != self.run_id and run_liveness(row, now, stale_after_ms) == "crashed":
                crashed.append(rid)
        for rid in crashed:
            self._commit(
                "UPDATE run SET status = 'crashed', ended_ts = COALESCE(heartbeat_ts, started_ts), "
                "summary = ? WHERE id = ? AND status = 'running'",
                (
                    json.dumps(
                        {
                            "status": "crashed",
                            "detail": "process gone, heartbeat stale; "
                            f"marked by pid {os.getpid()} at {now}",
                        }  # fmt: skip
                    ),
                    rid,
                ),
            )
        return crashed

    def finish_run(
        self,
        status: str = "finished",
        summary: Mapping[str, Any] | None = None,
        ended_ts: int | None = None,
    ) -> None:
        """Flush everything and close the current run's record with its status and summary."""
        run_id = self._run()
        self._commit(
            "UPDATE run SET status = ?, ended_ts = ?, summary = ? WHERE id = ?",
            (
                status,
                ended_ts if ended_ts is not None else now_ms(),
                json.dumps(dict(summary or {}), default=str),
                run_id,
            ),
        )

    def _add(self, table: str, row: tuple) -> None:
        with self._lock:
            self._buffers[table].append(row)
            self._pending += 1

    def end_event(self) -> None:
        """An event boundary: everything buffered so far forms whole events (the loop's equity
        row ends a bar). Commits when `batch_size` rows wait or `HEARTBEAT_MS` has passed;
        rows are never committed between two boundaries by the batch rule."""
        pending = self._pending
        if pending >= self.batch_size or now_ms() - self._last_commit_ms >= HEARTBEAT_MS:
            if self._write_behind:
                self._flush_behind()
            else:
                self.flush()
        elif (
            self._write_behind
            and self._proc is None
            and pending >= self.batch_size // 2
            and self._start_writer() is None
        ):
            # half a batch waits: the writer is started now, so that its start-up is over (on
            # the other core) by the time the batch is full; no process to spare: write here
            self._write_behind = False

    def set_write_behind(self, on: bool) -> None:
        """Write behind (a backtest): full batches are committed by a writer process, each in
        one transaction as `flush` would, while this process goes on computing the next bars.

        The writer is a plain Python started on the first batch (`_WRITER_CODE`: sqlite3 and
        pickle only, none of this process's state) that keeps one connection, and so a warm page
        cache, for the whole run; each batch reaches it pickled through a pipe. One batch at a
        time, in order: the next batch, `flush()`, `close()` and every read first wait for the
        writer's answer. A batch the writer could not commit (locked, disk full, a row that
        breaks the schema) goes back to the front of the buffer and is flushed here, with
        `flush`'s errors. A crash of this process leaves the batches handed over committed whole
        (the writer commits what it has read in full, then sees the pipe close and exits). A
        no-op for `:memory:` and read-only handles; when no process can be started, batches are
        committed here. Turning it off waits for the writer and ends it."""
        if not on:
            with self._lock:
                self._await_writer()
                self._stop_writer()
            self._write_behind = False
            return
        if self.readonly or self.path == MEMORY:
            return
        self._write_behind = True

    def _flush_behind(self) -> None:
        with self._lock:
            if self._pending == 0 or self._closed:
                return
            self._writable()
            if self._await_writer():  # the last batch failed: flush here, with the errors
                self.flush()
                return
            proc = self._proc if self._proc is not None else self._start_writer()
            if proc is None:  # no process to spare: write here, as without write-behind
                self._write_behind = False
                self.flush()
                return
            batch, pending = self._buffers, self._pending
            rows = [(_INSERT[t], batch[t]) for t in _BUFFERED if batch[t]]
            payload = pickle.dumps((self.run_id, rows), pickle.HIGHEST_PROTOCOL)
            try:
                proc.stdin.write(len(payload).to_bytes(8, "little"))  # type: ignore[union-attr]
                proc.stdin.write(payload)  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            except OSError:  # the writer is gone: this batch (still ours) is flushed here
                self._stop_writer()
                self._write_behind = False
                self.flush()
                return
            self._writer = (proc, batch, pending)
            self._buffers = {t: [] for t in _BUFFERED}
            self._order_slot = {}
            self._pending = 0
            self._last_commit_ms = now_ms()

    def _start_writer(self) -> subprocess.Popen | None:
        """Start the write-behind process and tell it the file, settings and run; None when it
        cannot be started."""
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WRITER_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return None
        init = {
            "path": self.path,
            "synchronous": "FULL" if self._durable else "NORMAL",
            "cache_kib": CACHE_KIB,
            "checkpoint_pages": WAL_CHECKPOINT_PAGES,
            "owner_pid": os.getpid(),
            "host": socket.gethostname(),
        }
        try:
            payload = pickle.dumps(init, pickle.HIGHEST_PROTOCOL)
            proc.stdin.write(len(payload).to_bytes(8, "little"))  # type: ignore[union-attr]
            proc.stdin.write(payload)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            proc.kill()
            proc.wait()
            return None
        self._proc = proc
        return proc

    def _stop_writer(self) -> None:
        """End the write-behind process (after `_await_writer`): its input closes, it exits."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        proc.wait()

    def _await_writer(self) -> bool:
        """Wait for the writer's answer on the batch it holds; True when that batch was not
        committed (its rows are then back at the front of the buffer)."""
        writer = self._writer
        if writer is None:
            return False
        self._writer = None
        proc, batch, pending = writer
        try:
            answer = proc.stdout.read(1)  # type: ignore[union-attr]
        except OSError:
            answer = b""
        if answer == b"0":
            return False
        if answer != b"1":  # no answer: the writer died; batches go through this process now
            self._stop_writer()
            self._write_behind = False
        for table in _BUFFERED:
            self._buffers[table][:0] = batch[table]
        self._order_slot = {}  # later statuses are upserts again (same rows in the end)
        self._pending += pending
        return True

    def _run_for_rows(self) -> str:
        """The current run id, for a buffered row (`_writable` and `_run`, one test when fine)."""
        run_id = self.run_id
        if run_id is None or self._closed or self.readonly:
            self._writable()
            return self._run()
        return run_id

    def record_decision(self, decision: Decision) -> None:
        row = decision_row(self._run_for_rows(), decision)
        with self._lock:
            self._buffers["decision"].append(row)
            self._pending += 1

    def record_order(self, order: Order) -> None:
        """Insert the order, or update it (status...) if its client order id is already there."""
        row = order_row(self._run_for_rows(), order)
        with self._lock:
            buffer = self._buffers["order"]
            k = self._order_slot.get(order.client_order_id)
            if k is None:
                self._order_slot[order.client_order_id] = len(buffer)
                buffer.append(row)
            else:
                buffer[k] = row
            self._pending += 1

    def record_fill(self, fill: Fill) -> None:
        self._add("fill", fill_row(self._run_for_rows(), fill))

    def record_position(self, position: Position, ts: int, event: str) -> None:
        """A snapshot of the position as it is now (`event`: open, harvest_t1, stop_moved, close...)."""
        self._add("position", position_row(self._run_for_rows(), position, ts, event))

    def record_equity(self, point: EquityPoint) -> None:
        """The bar's last row: an event boundary (`end_event`)."""
        self._writable()
        self._add("equity", equity_row(self._run(), point))
        self.end_event()

    def record_equity_values(
        self,
        ts: int,
        equity: float,
        wallet_balance: float,
        unrealised_pnl: float,
        margin_ratio: float,
        exposure: float,
        open_positions: int,
        state: str,
    ) -> None:
        """`record_equity` from the values (the same row), without an `EquityPoint` per bar."""
        row = (
            self._run_for_rows(),
            int(ts),
            float(equity),
            float(wallet_balance),
            float(unrealised_pnl),
            float(margin_ratio),
            float(exposure),
            int(open_positions),
            str(state),
        )
        with self._lock:
            self._buffers["equity"].append(row)
            self._pending += 1
        self.end_event()

    def record_safety_event(self, event: SafetyEvent) -> None:
        self._writable()
        self._add("safety_event", safety_event_row(self._run(), event))

    def record_safety_events(self, events: Iterable[SafetyEvent]) -> None:
        for event in events:
            self.record_safety_event(event)

    @property
    def pending(self) -> int:
        """Rows buffered and not yet committed."""
        return self._pending

    def flush(self) -> None:
        """Commit every buffered row in one transaction (with the run's heartbeat).

        Call it at an event boundary: what it commits is what a reader, or a crash, leaves.

        If the database is unavailable (locked, disk full) nothing is dropped: the rows stay
        buffered and the error is raised. A row that breaks the schema (e.g. a missing symbol)
        must not block every later row: the good rows are committed, the bad ones are dropped
        and named in the raised `JournalError`.
        """
        with self._lock:
            self._await_writer()
            if self._pending == 0 or self._closed:
                return
            self._writable()
            conn = self._conn
            rejected: list[str] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("SAVEPOINT batch")
                    for table in _BUFFERED:
                        if self._buffers[table]:
                            conn.executemany(_INSERT[table], self._buffers[table])
                    conn.execute("RELEASE batch")
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK TO batch")
                    conn.execute("RELEASE batch")
                    rejected = self._insert_one_by_one()
                if self.run_id is not None:
                    self._beat()
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise JournalError(f"journal {self.path}: flush failed: {exc}") from None
            for rows in self._buffers.values():
                rows.clear()
            self._order_slot.clear()
            self._pending = 0
            if rejected:
                raise JournalError(
                    f"journal {self.path}: {len(rejected)} row(s) broke the schema and were "
                    f"not written; first: {rejected[0]}"
                )

    def _insert_one_by_one(self) -> list[str]:
        """Inside the flush transaction: insert row by row, return the rejected ones."""
        rejected = []
        for table in _BUFFERED:
            for row in self._buffers[table]:
                try:
                    self._conn.execute(_INSERT[table], row)
                except sqlite3.IntegrityError as exc:
                    rejected.append(f"{table} {row!r} ({exc})")
        return rejected

    # -- control requests --------------------------------------------------------------------

    def request_control(
        self,
        command: ControlCommand | str,
        symbol: str | None = None,
        source: str = "",
        run_id: str | None = None,
    ) -> int:
        """Queue an operator request (committed at once); returns its id."""
        cmd = ControlCommand(command)
        return self._commit(
            "INSERT INTO control (run_id, ts, command, symbol, source, result) "
            "VALUES (?, ?, ?, ?, ?, '')",
            (run_id, now_ms(), str(cmd), symbol, source),
        )

    def pending_controls(self) -> list[ControlRequest]:
        """Unhandled requests for this run (or for any run), oldest first."""
        rows = self._conn.execute(
            "SELECT id, ts, command, symbol, source, handled_ts, result FROM control "
            "WHERE handled_ts IS NULL AND (run_id IS NULL OR run_id = ?) ORDER BY id",
            (self.run_id,),
        ).fetchall()
        return [
            ControlRequest(r[0], r[1], ControlCommand(r[2]), r[3], r[4], r[5], r[6]) for r in rows
        ]

    def mark_control_handled(self, request_id: int, result: str, ts: int | None = None) -> None:
        self._commit(
            "UPDATE control SET handled_ts = ?, result = ? WHERE id = ?",
            (ts if ts is not None else now_ms(), result, request_id),
        )

    # -- migrations ledger -------------------------------------------------------------------

    def record_migration(self, record: MigrationRecord) -> int:
        """Append a ledger row (committed at once: the ledger is what rollback relies on)."""
        cols = [c for c in columns("migration") if c != "id"]
        return self._commit(
            f"INSERT INTO migration ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            tuple(getattr(record, c) for c in cols),
        )

    def set_migration_status(self, migration_id: int, status: str, detail: str = "") -> None:
        self._commit(
            "UPDATE migration SET status = ?, detail = ? WHERE id = ?",
            (status, detail, migration_id),
        )

    # -- reading -----------------------------------------------------------------------------

    def rows(
        self,
        table: str,
        run_id: str | None = None,
        where: str = "",
        params: Sequence[Any] = (),
        order_by: str = "id",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of one table as dicts (optionally for one run, with an extra SQL condition)."""
        if table not in TABLE_MODELS:
            raise JournalError(f"no journal table {table!r} (tables: {', '.join(TABLES)})")
        if not self.readonly:
            self.flush()
        clauses, args = [], list(params)
        if run_id is not None:
            clauses.append("run_id = ?")
            args.insert(0, run_id)
        if where:
            clauses.append(f"({where})")
        sql = f"SELECT * FROM {_q(table)}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if order_by:
            sql += f" ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            cur = self._conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def latest_positions(self, run_id: str, open_only: bool = True) -> list[dict[str, Any]]:
        """The latest position row of each symbol of a run (only open ones by default).

        Index seeks only (`LATEST_POSITIONS_SQL` walks the (run_id, symbol, id) index from one
        symbol to the next): the cost grows with the symbols the run traded, not its rows."""
        if not self.readonly:
            self.flush()
        with self._lock:
            cur = self._conn.execute(LATEST_POSITIONS_SQL, {"run": run_id})
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        if open_only:
            rows = [r for r in rows if r["closed_ts"] is None and (r["qty"] or 0) > 0]
        return rows

    def count(self, table: str, run_id: str | None = None) -> int:
        if table not in TABLE_MODELS:
            raise JournalError(f"no journal table {table!r} (tables: {', '.join(TABLES)})")
        if not self.readonly:
            self.flush()
        sql = f"SELECT COUNT(*) FROM {_q(table)}"
        args: tuple[str, ...] = ()
        if run_id is not None:
            sql, args = sql + " WHERE run_id = ?", (run_id,)
        with self._lock:
            return int(self._conn.execute(sql, args).fetchone()[0])

    def runs(self) -> list[dict[str, Any]]:
        return self.rows("run", order_by="started_ts, id")

    def latest_run_id(self) -> str | None:
        row = self._conn.execute(
            "SELECT id FROM run ORDER BY started_ts DESC, rowid DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])


def request_control(
    path: str | Path,
    command: ControlCommand | str,
    symbol: str | None = None,
    source: str = "",
    run_id: str | None = None,
) -> int:
    """Queue a control request in an existing journal (for the TUI, whose handle is read-only)."""
    if not Path(path).is_file():
        raise JournalError(f"journal {path} does not exist")
    with Journal(path) as journal:
        return journal.request_control(command, symbol, source, run_id)
