"""`qctl verify` journal checks: a clean journal passes; one violation of each invariant fails
exactly the check that names it, through the library and through the CLI (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.core.tiers import LeverageTiers
from engine.domain import SafetyLimits
from engine.journal.invariants import JOURNAL_CHECKS, CheckStatus, check_journal
from engine.journal.store import Journal
from qctl.cli import app
from tests.verify.cli import run_main
from tests.verify.seed import TIERS, VIOLATIONS, seed_run, seeded_db

runner = CliRunner()


def _results(db: Path, **kwargs):
    with Journal.open_readonly(db) as journal:
        return {
            r.name: r for r in check_journal(journal, tiers=LeverageTiers.load(TIERS), **kwargs)
        }


def test_clean_journal_passes_every_invariant(tmp_path: Path) -> None:
    results = _results(seeded_db(tmp_path / "clean.db"))
    assert set(results) == set(JOURNAL_CHECKS)
    for r in results.values():
        assert r.status is CheckStatus.PASS, (r.name, r.summary, r.details)
        assert r.data["checked"] > 0


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_one_violation_fails_exactly_its_check(tmp_path: Path, violation: str) -> None:
    equity = 10_000_000.0 if violation == "bracket" else 10_000.0
    results = _results(seeded_db(tmp_path / f"{violation}.db", violation, equity=equity))
    failed = {name for name, r in results.items() if r.status is CheckStatus.FAIL}
    assert failed == {VIOLATIONS[violation]}
    bad = results[VIOLATIONS[violation]]
    # a leverage above the limit shows in the decision and in the position row
    assert bad.data["violations"] == (2 if violation == "leverage" else 1)
    assert "run-" in bad.details[0]


def test_bracket_violation_names_the_bracket(tmp_path: Path) -> None:
    db = seeded_db(tmp_path / "b.db", "bracket", equity=10_000_000.0)
    detail = _results(db)["journal.leverage"].details[0]
    assert "80x" in detail and "bracket 50x" in detail


def test_recorded_stricter_limits_apply(tmp_path: Path) -> None:
    """A run that recorded max_leverage 5 is held to it (the BTC entry used 7.5x)."""
    db = seeded_db(tmp_path / "strict.db", limits=SafetyLimits(max_leverage=5.0))
    results = _results(db)
    assert results["journal.leverage"].status is CheckStatus.FAIL
    assert "limit 5x" in results["journal.leverage"].details[0]


def test_every_run_is_checked_and_runs_can_be_selected(tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    with Journal(db) as journal:
        clean = seed_run(journal)
        journal.run_id = None
        seed_run(journal, "margin_ratio")
    assert _results(db)["journal.margin_ratio"].status is CheckStatus.FAIL
    assert _results(db, run_ids=[clean])["journal.margin_ratio"].status is CheckStatus.PASS


def _verify(*args: str):
    return runner.invoke(app, ["verify", "--tiers", str(TIERS), *args])


def test_cli_passes_on_a_clean_journal(tmp_path: Path) -> None:
    db = seeded_db(tmp_path / "clean.db")
    result = _verify("--only", "journal,variation", "--db", str(db), "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["passed"] is True
    assert [c["name"] for c in payload["checks"]] == [*JOURNAL_CHECKS, "variation"]


@pytest.mark.parametrize("violation", ["leverage", "margin_ratio", "position_size", "exposure",
                                       "protective_stop"])  # fmt: skip
def test_cli_fails_naming_the_check(tmp_path: Path, violation: str) -> None:
    db = seeded_db(tmp_path / f"{violation}.db", violation)
    result = _verify("--only", "journal", "--db", str(db), "--format", "json")
    assert result.exit_code == 1, result.output
    checks = {c["name"]: c["status"] for c in json.loads(result.output)["checks"]}
    assert [n for n, s in checks.items() if s == "fail"] == [VIOLATIONS[violation]]


def test_cli_table_shows_the_offending_row(tmp_path: Path) -> None:
    db = seeded_db(tmp_path / "m.db", "margin_ratio")
    result = _verify("--only", "journal", "--db", str(db))
    assert result.exit_code == 1
    assert "journal.margin_ratio" in result.output and "0.0500" in result.output


def test_cli_usage_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def code(*args: str) -> int:
        return run_main(monkeypatch, "verify", "--tiers", str(TIERS), *args)

    assert code("--only", "journal", "--db", str(tmp_path / "none.db")) == 2
    assert code("--only", "bogus") == 2
    db = seeded_db(tmp_path / "clean.db")
    assert code("--only", "journal", "--db", str(db), "--run", "run-nope") == 2
    not_journal = tmp_path / "x.db"
    not_journal.write_text("hello")
    assert code("--only", "journal", "--db", str(not_journal)) == 2
    assert code("--only", "journal", "--db", str(db)) == 0


def test_without_a_journal_the_checks_skip_and_strict_fails(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _verify("--only", "journal,variation", "--format", "json")
    assert result.exit_code == 0
    assert {c["status"] for c in json.loads(result.output)["checks"]} == {"skip"}
    assert _verify("--only", "journal", "--strict").exit_code == 1


def test_a_real_backtest_journal_passes(tmp_path: Path) -> None:
    """No false alarm on what the engine writes (orders are upserted with their latest time)."""
    from engine.backtest import default_policy_path, run_backtest
    from engine.core.policy import StaticPolicy
    from engine.venues.candle_files import load_market_data, sample_data_dir

    md = load_market_data(sample_data_dir(), symbols=["BTC-USDT", "ETH-USDT", "SOL-USDT"],
                          start_ms=1_746_000_000_000, end_ms=1_752_000_000_000)  # fmt: skip
    db = tmp_path / "bt.db"
    with Journal(db) as journal:
        run_backtest(md, StaticPolicy.from_toml(default_policy_path()), equity=10_000.0,
                     journal=journal, tiers=LeverageTiers.load(TIERS))  # fmt: skip
    results = _results(db)
    assert results["journal.protective_stop"].data["checked"] > 0
    for r in results.values():
        assert r.status is CheckStatus.PASS, (r.name, r.details)


def test_a_journal_without_runs_has_nothing_to_check(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    Journal(db).close()
    assert {r.status for r in _results(db).values()} == {CheckStatus.SKIP}
