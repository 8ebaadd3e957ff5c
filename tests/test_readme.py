"""The README's quick start stays true: two set-up commands, and CI runs the test one."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text("utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)


def test_quick_start_has_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "pip install" in commands[0] and "qctl" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text("utf-8")
    assert _quick_start_commands()[1] in ci


def test_every_command_in_the_table_exists() -> None:
    from typer.main import get_command

    from qctl.cli import app

    names = set(get_command(app).commands)  # type: ignore[attr-defined]
    text = (REPO / "README.md").read_text("utf-8")
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for command in re.findall(r"`qctl (\w+)", table):
        assert command in names, f"README names `qctl {command}` but the CLI has {sorted(names)}"
