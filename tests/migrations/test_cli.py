"""`qctl migrate` through Typer's CliRunner: help, exit codes, and the dry-run diff."""

from __future__ import annotations

import shutil
from pathlib import Path

import libcst as cst
import pytest
from typer.testing import CliRunner

from migrations.base import PolicyCodemod
from migrations.config import MigrateConfig
from migrations.repo import RepoIndex
from migrations.runner import _transform
from qctl.cli import app

FIXTURE = Path(__file__).resolve().parents[2] / "examples" / "legacy_trader"
runner = CliRunner()


@pytest.mark.parametrize("args", [["migrate", "--help"], *[["migrate", c, "--help"] for c in
                                  ("init", "plan", "apply", "status", "rollback")]])  # fmt: skip
def test_help_exits_zero(args):
    assert runner.invoke(app, args).exit_code == 0


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns(".qctl_cache", "__pycache__"))
    return target


def test_apply_before_init_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["migrate", "apply", "1", str(_copy(tmp_path))])
    assert result.exit_code != 0
    assert "run `qctl migrate init" in str(result.exception)


def test_unknown_phase_is_a_user_error(tmp_path):
    root = _copy(tmp_path)
    runner.invoke(app, ["migrate", "init", str(root)])
    result = runner.invoke(app, ["migrate", "apply", "7", str(root)])
    assert "unknown phase" in str(result.exception)


@pytest.mark.slow
def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path):
    root = _copy(tmp_path)
    assert runner.invoke(app, ["migrate", "init", str(root)]).exit_code == 0
    before = (root / "harvest" / "apply.py").read_bytes()
    result = runner.invoke(app, ["migrate", "apply", "kill", str(root)])
    assert result.exit_code == 0, result.output
    assert "+    if qctl_policy.kill_due(kill_score, symbol):" in result.output
    assert "would change (pass --write)" in result.output
    assert (root / "harvest" / "apply.py").read_bytes() == before
    plan = runner.invoke(app, ["migrate", "plan", str(root)])
    assert plan.exit_code == 0
    assert "phase 4 (kill)" in plan.output and "removes, once unused" in plan.output
    status = runner.invoke(app, ["migrate", "status", str(root)])
    assert "phase 1 (sizing): not applied" in status.output


class _Broken(PolicyCodemod):
    """Produces code that parses but does not compile (`return` outside a function)."""

    def transform_module(self, tree: cst.Module) -> cst.Module:
        return cst.parse_module("return 1\n")


class _Crashing(PolicyCodemod):
    def transform_module(self, tree: cst.Module) -> cst.Module:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("phase", "reason"), [(_Broken, "would not compile"), (_Crashing, "codemod failed")]
)
def test_a_bad_rewrite_leaves_the_file_untouched(tmp_path, phase, reason):
    text, command, error = _transform(
        phase, "m.py", "x = 1\n", [], RepoIndex(), MigrateConfig(root=tmp_path)
    )
    assert text == "x = 1\n" and command is None and reason in error


def test_user_errors_exit_2_with_one_line(tmp_path):
    import subprocess
    import sys

    root = _copy(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "qctl.cli", "migrate", "rollback", "1", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "not applied" in proc.stderr
    assert "Traceback" not in proc.stderr
