"""`qctl migrate rollback --all`: every applied phase undone and the accessor `init` wrote removed,
so the repository is byte for byte what it was before qctl (the ledger stays, as history)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.runner import CACHE_DIR_NAME
from migrations import api
from migrations.errors import MigrateError
from migrations.ledger import LEDGER_DIR, ROLLED_BACK, Ledger
from qctl.cli import app
from qctl.options import OptionError

runner = CliRunner()

TRADE = (
    "def open_trade(symbol, account_equity):\n"
    "    leverage = 10.0  # fallback\n"
    "    kill_score = 0.0\n"
    "    if kill_score >= 0.65:\n"
    "        return None\n"
    "    return leverage\n"
)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file but the ledger (history, kept on purpose) and the audit's cache (it ignores
    itself in git with its own .gitignore, and any audit writes it, not only init)."""
    own = (f"{LEDGER_DIR}/", f"{CACHE_DIR_NAME}/")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(own)
    }


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "trade.py").write_text(TRADE, "utf-8")
    (tmp_path / "README.txt").write_text("not python\n", "utf-8")
    return tmp_path


def test_all_phases_and_the_accessor_go(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    before = _snapshot(root)
    api.init(root)
    api.apply(root, "sizing", write=True)
    api.apply(root, "kill", write=True)
    assert "qctl_policy" in (root / "bot" / "trade.py").read_text("utf-8")
    result = api.rollback_all(root)
    assert result.phases == ["4", "1"]  # newest first
    assert result.restored == ["bot/trade.py"]
    assert result.removed == ["qctl_policy.py"] and not result.kept
    assert _snapshot(root) == before
    ledger = Ledger(root)
    try:
        assert {r["status"] for r in ledger.rows()} == {ROLLED_BACK}
    finally:
        ledger.close()
    with pytest.raises(MigrateError, match="nothing to roll back"):
        api.rollback_all(root)


def test_init_alone_is_undone(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    before = _snapshot(root)
    api.init(root)
    result = api.rollback_all(root)
    assert result.phases == [] and result.removed == ["qctl_policy.py"]
    assert _snapshot(root) == before


def test_a_file_changed_since_restores_nothing(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    api.init(root)
    api.apply(root, "sizing", write=True)
    api.apply(root, "kill", write=True)
    trade = root / "bot" / "trade.py"
    trade.write_text(trade.read_text("utf-8") + "# edited by hand\n", "utf-8")
    edited = _snapshot(root)
    with pytest.raises(MigrateError, match="changed since"):
        api.rollback_all(root)
    assert _snapshot(root) == edited  # the accessor too: nothing happened


def test_the_accessor_stays_while_a_file_imports_it(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    api.init(root)
    (root / "bot" / "mine.py").write_text("import qctl_policy\n\nqctl_policy.skip('x')\n", "utf-8")
    result = api.rollback_all(root)
    assert (root / "qctl_policy.py").is_file()
    assert result.removed == [] and "bot/mine.py" in result.kept


def test_a_module_qctl_did_not_write_stays(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    (root / "qctl_policy.py").write_text("# the user's own module\n", "utf-8")
    with pytest.raises(MigrateError, match="not written by qctl"):
        api.init(root)
    result = api.rollback_all(root)
    assert (root / "qctl_policy.py").read_text("utf-8") == "# the user's own module\n"
    assert "not written by qctl" in result.kept


def test_cli_rollback_all(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    before = _snapshot(root)
    assert runner.invoke(app, ["migrate", "init", str(root)]).exit_code == 0
    assert runner.invoke(app, ["migrate", "apply", "1", str(root), "--write"]).exit_code == 0
    result = runner.invoke(app, ["migrate", "rollback", "--all", str(root)])
    assert result.exit_code == 0, result.output
    assert "rolled back phase(s) 1; restored 1 file(s): bot/trade.py" in result.output
    assert "removed qctl_policy.py (written by init)" in result.output
    assert _snapshot(root) == before


def test_cli_rollback_needs_a_phase_or_all(tmp_path: Path) -> None:
    result = runner.invoke(app, ["migrate", "rollback"])
    assert isinstance(result.exception, OptionError)
    assert "give a phase" in str(result.exception)
