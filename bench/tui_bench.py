"""`qctl tui` refresh time on a large journal: the open-positions query, old scan against new.

Builds a journal of 1M+ rows through the engine's own writer (`Journal.record_*`): one run over
`--symbols` symbols whose positions open, move their stop, harvest and close again and again
(`--position-rows` position events, a few still open at the end), with decisions, equity points
and safety events around them. Then, in the same process and on the same file:

- `old scan`: the query `qctl tui` used before issue 14 (MAX(id) GROUP BY symbol over every
  position event of the run): O(history);
- `new`: `tui.data.open_positions` — a skip-scan over an index on position(run_id, symbol, ...),
  O(symbols x log rows); on a journal without that index it falls back to one scan;
- `refresh`: one whole read of the monitor (`tui.data.load_snapshot`) as it follows a run, i.e.
  given its previous read (safety events are counted from where that one stopped); the goal is
  < 100 ms. The first read of a run also counts its whole safety-event history: printed apart.

If the journal schema does not index positions by (run_id, symbol) yet, the figures are printed
as they are, then the bench adds that index itself (as the schema bump does) and measures again.
Medians of `--repeat` reads; the load average is printed with every figure (shared machine).

    .venv/bin/python bench/tui_bench.py                         # ~1.3M rows
    .venv/bin/python bench/tui_bench.py --position-rows 1000000 # a longer history
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.domain import (  # noqa: E402
    Decision,
    EquityPoint,
    LimitName,
    Position,
    SafetyAction,
    SafetyEvent,
    Side,
    SkipReason,
)
from engine.journal.store import Journal  # noqa: E402
from tui.data import has_symbol_index, load_snapshot, open_positions  # noqa: E402

GOAL_MS = 100.0  # one refresh at 1M+ rows (issue 14)
HOUR_MS = 3_600_000
START_MS = 1_746_057_600_000

# the query `tui.data.open_positions` ran before issue 14, kept verbatim as the baseline
OLD_SCAN = (
    "SELECT * FROM position WHERE run_id = ? AND (id IN (SELECT MAX(id) FROM position "
    "WHERE run_id = ? GROUP BY symbol) AND event != 'close' AND closed_ts IS NULL) ORDER BY symbol"
)


def build_journal(path: Path, symbols: int, position_rows: int, seed: int) -> tuple[str, int]:
    """Write the synthetic run; returns (run id, total rows)."""
    rng = random.Random(seed)
    names = [f"SYM{i:03d}-USDT" for i in range(symbols)]
    decisions = position_rows * 3 // 2
    equity_points = position_rows // 2
    safety = position_rows // 4
    with Journal(path, batch_size=50_000) as journal:
        run_id = journal.start_run("live", "bench", "1", timeframe="1h", symbols=names)
        stage = dict.fromkeys(names, -1)  # -1: flat; 0..3: open, events taken so far
        open_pos: dict[str, Position] = {}
        n_decision = n_equity = n_safety = 0
        ts = START_MS
        for k in range(position_rows):
            ts += 60_000
            sym = names[k % symbols]
            if stage[sym] < 0:
                side = Side.LONG if rng.random() < 0.5 else Side.SHORT
                price = 100.0 * (1 + rng.random())
                pos = Position(sym, side, 1.0 + rng.random(), price, 5.0, ts,
                               stop_price=price * (0.95 if side is Side.LONG else 1.05),
                               policy="bench")  # fmt: skip
                open_pos[sym] = pos
                stage[sym] = 0
                journal.record_position(pos, ts, "open")
            else:
                pos = open_pos[sym]
                pos.mark_price = pos.entry_price * (1 + rng.uniform(-0.02, 0.02))
                if stage[sym] >= 3:
                    pos.closed_ts, pos.close_reason = ts, "take_profit"
                    journal.record_position(pos, ts, "close")
                    stage[sym] = -1
                else:
                    stage[sym] += 1
                    journal.record_position(pos, ts, "stop_moved" if stage[sym] < 3 else "harvest")
            while n_decision < decisions * (k + 1) // position_rows:
                n_decision += 1
                dsym = names[n_decision % symbols]
                if n_decision % 3:
                    journal.record_decision(
                        Decision.skipped(ts, dsym, SkipReason.NO_SIGNAL, "flat trend")
                    )
                else:
                    journal.record_decision(
                        Decision(ts=ts, symbol=dsym, side=Side.LONG, leverage=5.0, size_pct=0.05,
                                 stop_loss_pct=0.05, confidence=0.6, policy="bench",
                                 reasons=(("trend", 0.4), ("vol", -0.1)))
                    )  # fmt: skip
            while n_equity < equity_points * (k + 1) // position_rows:
                n_equity += 1
                journal.record_equity(EquityPoint(ts, 10_000.0, 10_000.0, 0.0, 0.9, 0.5, 6))
            while n_safety < safety * (k + 1) // position_rows:
                n_safety += 1
                journal.record_safety_event(
                    SafetyEvent(ts, names[n_safety % symbols], LimitName.MAX_LEVERAGE, 150.0,
                                125.0, 125.0, SafetyAction.CLIP)
                )  # fmt: skip
        for sym in [s for s in names if stage[s] >= 0][max(1, symbols // 10) :]:
            pos = open_pos[sym]  # all but a tenth of the symbols end flat
            pos.closed_ts, pos.close_reason = ts, "flatten"
            journal.record_position(pos, ts, "close")
        journal.flush()
        total = sum(journal.count(t) for t in ("position", "decision", "equity", "safety_event"))
    return run_id, total


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm the page cache and the statement cache once
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(path: Path, run_id: str, repeat: int) -> None:
    with Journal.open_readonly(path) as journal:
        conn = journal.connection
        indexed = has_symbol_index(conn)
        old_rows = conn.execute(OLD_SCAN, (run_id, run_id)).fetchall()
        new = open_positions(journal, run_id)
        assert [r[4] for r in old_rows] == [p.symbol for p in new], "old and new disagree"
        old_ms = median_ms(lambda: conn.execute(OLD_SCAN, (run_id, run_id)).fetchall(), repeat)
        new_ms = median_ms(lambda: open_positions(journal, run_id), repeat)
    first_ms = median_ms(lambda: load_snapshot(path, run_id), repeat)
    previous = load_snapshot(path, run_id)
    snap_ms = median_ms(lambda: load_snapshot(path, run_id, previous=previous), repeat)
    load = os.getloadavg()
    print(f"  position index (run_id, symbol): {'yes' if indexed else 'no'}; "
          f"open positions: {len(new)}")  # fmt: skip
    print(f"  open positions, old scan : {old_ms:8.2f} ms")
    print(f"  open positions, new query: {new_ms:8.2f} ms   ratio old/new {old_ms / new_ms:7.1f}x")
    verdict = "under" if snap_ms < GOAL_MS else "OVER"
    print(f"  refresh, following a run : {snap_ms:8.2f} ms   ({verdict} the {GOAL_MS:.0f} ms goal)")
    print(f"  first read of the run    : {first_ms:8.2f} ms   (counts every safety event once)")
    print(f"  load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--symbols", type=int, default=60)
    ap.add_argument("--position-rows", type=int, default=400_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--keep", type=Path, help="write the journal here and keep it (reused if there)"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        if path.exists():
            with Journal.open_readonly(path) as journal:
                run_id = journal.latest_run_id() or ""
                total = sum(journal.count(t) for t in ("position", "decision", "equity",
                                                       "safety_event"))  # fmt: skip
            print(f"journal: {total:,} rows, reused from {path}; {os.cpu_count()} cores")
        else:
            t0 = time.perf_counter()
            run_id, total = build_journal(path, args.symbols, args.position_rows, args.seed)
            print(f"journal: {total:,} rows ({args.position_rows:,} position events, "
                  f"{args.symbols} symbols), built in {time.perf_counter() - t0:.1f} s; "
                  f"{os.cpu_count()} cores")  # fmt: skip
        with sqlite3.connect(path) as conn:
            indexed = has_symbol_index(conn)
        print("as the journal schema writes it:")
        measure(path, run_id, args.repeat)
        if not indexed:
            with sqlite3.connect(path) as conn:
                conn.execute("CREATE INDEX bench_position_run_symbol ON position (run_id, symbol)")
            print("with the index the schema bump adds (created by this bench):")
            measure(path, run_id, args.repeat)


if __name__ == "__main__":
    main()
