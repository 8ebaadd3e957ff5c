"""`--help` of every command and group exits 0 and teaches (names its options)."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from qctl.cli import app

runner = CliRunner()


def _paths() -> list[list[str]]:
    root = get_command(app)
    out: list[list[str]] = [[]]
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        out.append([name])
        for sub in getattr(cmd, "commands", {}):
            out.append([name, sub])
    return out


@pytest.mark.parametrize("path", _paths(), ids=lambda p: " ".join(p) or "qctl")
def test_help_exits_0(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("qctl ")
