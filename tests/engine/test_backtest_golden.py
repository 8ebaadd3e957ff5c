"""Speed work must not change a single decision: a run on the shipped sample is compared, row for
row, with the journal the engine wrote before the loop was optimised (tests/engine/data/).

The digest hashes every journal column except the row id (floats by `repr`, so to the last bit).
The reference was written by this module's `__main__` at commit fe222d9 (before the speed work):

    .venv/bin/python -m tests.engine.test_backtest_golden --write
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path

from engine.backtest import run_backtest
from engine.core.policy import StaticPolicy
from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.journal.store import Journal
from engine.venues.candle_files import load_market_data, sample_data_dir
from engine.venues.simulated import BrokerConfig

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).resolve().parent / "data" / "sample_run_digest.json"
# the legacy values as the legacy system had them (BNB-USDT among the core symbols, so the
# NO_DATA skips of a symbol without data are part of what must stay identical)
POLICY = REPO / "examples" / "legacy_policy.toml"
RUN_ID = "golden-sample"
TABLES = ("decision", "order", "fill", "position", "equity", "safety_event")


def journal_digest(db: Path, run_id: str) -> dict[str, dict[str, object]]:
    """Row count and sha256 of every table's rows of `run_id`, in insertion order."""
    out: dict[str, dict[str, object]] = {}
    conn = sqlite3.connect(db)
    try:
        for table in TABLES:
            cur = conn.execute(f'SELECT * FROM "{table}" WHERE run_id = ? ORDER BY id', (run_id,))
            names = [c[0] for c in cur.description]
            keep = [k for k, n in enumerate(names) if n != "id"]
            h = hashlib.sha256()
            n = 0
            for row in cur:
                h.update(repr(tuple(row[k] for k in keep)).encode())
                h.update(b"\n")
                n += 1
            out[table] = {"rows": n, "sha256": h.hexdigest()}
    finally:
        conn.close()
    return out


def sample_run_digest(db: Path) -> dict[str, dict[str, object]]:
    """The legacy policy over the whole shipped sample, journal on, then its digest."""
    md = load_market_data(sample_data_dir())
    policy = StaticPolicy.from_toml(POLICY)
    with Journal(db) as journal:
        run_backtest(
            md,
            policy,
            equity=10_000.0,
            tiers=LeverageTiers.load(PACKAGED_TIERS),
            broker_config=BrokerConfig.from_toml(),
            journal=journal,
            run_id=RUN_ID,
        )
    return journal_digest(db, RUN_ID)


def test_sample_run_is_row_for_row_the_reference(tmp_path: Path) -> None:
    expected = json.loads(REFERENCE.read_text())
    got = sample_run_digest(tmp_path / "run.db")
    assert got["decision"]["rows"] > 1000 and got["fill"]["rows"] > 10  # a run that trades
    for table in TABLES:
        assert got[table] == expected[table], f"{table} rows differ from the reference run"


if __name__ == "__main__":
    if "--write" not in sys.argv:
        raise SystemExit("usage: python -m tests.engine.test_backtest_golden --write")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        digest = sample_run_digest(Path(tmp) / "run.db")
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(digest, indent=1) + "\n")
    print(json.dumps(digest, indent=1))
