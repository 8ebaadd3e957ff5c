"""The shipped CI examples: the workflow runs `qctl audit` to SARIF and `qctl verify --junit`
with options that exist; the pre-commit hook runs `qctl audit` on Python files and fails a
commit that adds a hardcoded trading value."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qctl.cli import app
from tests.verify.cli import run_main

yaml = pytest.importorskip("yaml")
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _steps() -> list[dict]:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "qctl.yml").read_text())
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _flags(command: str) -> list[str]:
    return [word for word in command.split() if word.startswith("--")]


def test_workflow_audits_to_sarif_and_verifies_with_junit() -> None:
    steps = _steps()
    runs = [" ".join(s["run"].split()) for s in steps if "run" in s]
    audit = next(r for r in runs if r.startswith("qctl audit"))
    assert "--format sarif" in audit
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
    verify = next(r for r in runs if r.startswith("qctl verify"))
    assert "--junit" in verify
    for command in runs:
        if command.startswith("qctl "):
            sub = command.split()[1:3] if command.split()[1] == "policy" else command.split()[1:2]
            help_text = runner.invoke(app, [*sub, "--help"], env={"COLUMNS": "250"}).output
            for flag in _flags(command):
                assert flag in help_text, (command, flag)


def test_pre_commit_hook_runs_qctl_audit_on_python_files(tmp_path: Path, monkeypatch) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "qctl-audit")
    assert hook["entry"] == "qctl audit" and hook["types"] == ["python"]
    clean = tmp_path / "clean.py"
    clean.write_text("def add(a, b):\n    return a + b\n")
    legacy = tmp_path / "legacy.py"
    legacy.write_text("leverage = 10.0  # fallback if RL agent fails\n")
    monkeypatch.chdir(tmp_path)
    # pre-commit appends the staged files to entry + args
    assert run_main(monkeypatch, *hook["entry"].split()[1:], *hook["args"], str(clean)) == 0
    assert (
        run_main(monkeypatch, *hook["entry"].split()[1:], *hook["args"], str(clean), str(legacy))
        == 1
    )
