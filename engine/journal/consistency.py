"""Event-level consistency of a journal: what a reader may rely on in any committed state.

The journal commits whole events (see `engine.journal.store`), so whatever a reader sees, and
whatever a `kill -9` leaves, holds these links:

- an order FILLED has at least one fill with its client order id;
- a fill has its order row, and a position row of its symbol at its time (the position as the
  fill left it: open, harvest, close...);
- an entry order has its entry decision (long / short, same symbol and time);
- a position row `open` has the entry fill that opened it.

`event_problems` lists every broken link of one run (or all runs), one line each. Pure SQL
over a connection: `qctl verify`, the crash tests and the TUI can all call it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from engine.domain import OrderPurpose, OrderStatus

MAX_PROBLEMS = 50  # lines returned per link; all are counted by `count_event_problems`

# (description, SQL selecting one text column describing each offending row; ? = run_id)
_LINKS: tuple[tuple[str, str], ...] = (
    (
        "FILLED order without a fill",
        f"""SELECT 'order ' || o.client_order_id || ' ' || o.symbol || ' ' || o.purpose
        FROM "order" o WHERE o.run_id = ? AND o.status = '{OrderStatus.FILLED}'
        AND NOT EXISTS (SELECT 1 FROM fill f WHERE f.run_id = o.run_id
                        AND f.client_order_id = o.client_order_id)""",
    ),
    (
        "fill without its order",
        """SELECT 'fill ' || f.id || ' ' || f.client_order_id FROM fill f WHERE f.run_id = ?
        AND NOT EXISTS (SELECT 1 FROM "order" o WHERE o.run_id = f.run_id
                        AND o.client_order_id = f.client_order_id)""",
    ),
    (
        "fill without a position row",
        """SELECT 'fill ' || f.id || ' ' || f.symbol || ' at ' || f.ts FROM fill f
        WHERE f.run_id = ? AND NOT EXISTS (SELECT 1 FROM position p WHERE p.run_id = f.run_id
                                           AND p.symbol = f.symbol AND p.ts = f.ts)""",
    ),
    (
        "entry order without its decision",
        f"""SELECT 'order ' || o.client_order_id || ' ' || o.symbol FROM "order" o
        WHERE o.run_id = ? AND o.purpose = '{OrderPurpose.ENTRY}'
        AND NOT EXISTS (SELECT 1 FROM decision d WHERE d.run_id = o.run_id
                        AND d.symbol = o.symbol AND d.ts = o.ts AND d.action IN ('long', 'short'))""",
    ),
    (
        "open position row without its entry fill",
        f"""SELECT 'position ' || p.id || ' ' || p.symbol || ' at ' || p.ts FROM position p
        WHERE p.run_id = ? AND p.event = 'open'
        AND NOT EXISTS (SELECT 1 FROM fill f JOIN "order" o ON o.run_id = f.run_id
                        AND o.client_order_id = f.client_order_id
                        WHERE f.run_id = p.run_id AND f.symbol = p.symbol AND f.ts = p.ts
                        AND o.purpose = '{OrderPurpose.ENTRY}')""",
    ),
)
LINKS = tuple(name for name, _ in _LINKS)


def _run_ids(conn: sqlite3.Connection, run_ids: Sequence[str] | None) -> list[str]:
    if run_ids is not None:
        return list(run_ids)
    return [r[0] for r in conn.execute("SELECT id FROM run ORDER BY started_ts, id")]


def event_problems(
    conn: sqlite3.Connection, run_ids: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Broken links (module docstring) per link name, for the given runs (default: all).

    Each list holds up to `MAX_PROBLEMS` lines "run <id>: <row>"; an empty dict: consistent."""
    out: dict[str, list[str]] = {}
    for rid in _run_ids(conn, run_ids):
        for name, sql in _LINKS:
            for (what,) in conn.execute(sql + f" LIMIT {MAX_PROBLEMS}", (rid,)):
                lines = out.setdefault(name, [])
                if len(lines) < MAX_PROBLEMS:
                    lines.append(f"run {rid}: {what}")
    return out


def count_event_problems(conn: sqlite3.Connection, run_ids: Sequence[str] | None = None) -> int:
    """How many rows break a link, over the given runs (default: all)."""
    total = 0
    for rid in _run_ids(conn, run_ids):
        for _, sql in _LINKS:
            total += conn.execute(f"SELECT COUNT(*) FROM ({sql})", (rid,)).fetchone()[0]
    return total
