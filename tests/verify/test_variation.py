"""The variation check: AI decisions must not be one constant value (the owner's "not always
10x, not always 200 USDT, not always T1 = 2.0")."""

from __future__ import annotations

from pathlib import Path

from engine.journal.invariants import CheckStatus, check_variation
from engine.journal.store import Journal
from tests.verify.seed import ENTRIES, Entry, seed_run

CONSTANT = tuple(Entry(e.symbol, e.price, 10.0, e.size_pct, e.stop_pct, e.t1_r) for e in ENTRIES)


def _check(db: Path, policies=("ai",)):
    with Journal.open_readonly(db) as journal:
        return check_variation(journal, list(policies) if policies else None)


def test_varying_ai_decisions_pass_with_ranges(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    with Journal(db) as journal:
        rid = seed_run(journal)
    result = _check(db)
    assert result.status is CheckStatus.PASS
    stats = result.data["runs"][rid]
    assert stats["entries"] == 3
    assert stats["leverage"] == {"distinct": 3, "min": 2.5, "max": 7.5}
    assert stats["harvest_t1_r"]["distinct"] == 3
    assert "leverage 3 values 2.5..7.5" in result.details[0]


def test_constant_leverage_fails_naming_the_field(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    with Journal(db) as journal:
        seed_run(journal, entries=CONSTANT)
    result = _check(db)
    assert result.status is CheckStatus.FAIL
    assert result.details == [
        f"run {result.details[0].split()[1]} (ai): leverage is 10 in all 3 entries"
    ]


def test_only_the_chosen_policies_are_judged(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    with Journal(db) as journal:
        seed_run(journal, policy="legacy", entries=CONSTANT)
    assert _check(db).status is CheckStatus.SKIP  # no AI run: nothing to judge
    assert _check(db, policies=None).status is CheckStatus.FAIL  # every run: legacy is constant


def test_too_few_entries_cannot_show_variation(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    with Journal(db) as journal:
        seed_run(journal, entries=ENTRIES[:1])
    result = _check(db)
    assert result.status is CheckStatus.FAIL
    assert "variation cannot be shown" in result.summary
