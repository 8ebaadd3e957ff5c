"""The README's `qctl trade` section: every command it shows is one the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
from typer.main import get_command

from qctl.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
SECTION = README.split("## `qctl trade`", 1)[1].split("\n## ", 1)[0]


def _qctl_lines() -> list[list[str]]:
    lines = []
    for block in re.findall(r"```(?:bash|ini)\n(.*?)\n```", SECTION, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"'|&&|\|", line):
                words = shlex.split(part.split("#")[0]) if "qctl " in part else []
                if words:
                    at = next(
                        (i for i, w in enumerate(words) if w == "qctl" or w.endswith("/qctl")), None
                    )
                    if at is None:
                        continue
                    if words[at + 1 :]:  # "tmux -s qctl" names a session, not a command
                        lines.append(words[at + 1 :])
    return lines


def test_every_qctl_command_in_the_trade_section_parses():
    root = get_command(app)
    found = _qctl_lines()
    assert len(found) >= 6
    for args in found:
        with click.Context(root) as ctx:
            name, cmd, rest = root.resolve_command(ctx, args)
            if isinstance(cmd, click.Group):
                with click.Context(cmd, parent=ctx) as sub:
                    _, cmd, rest = cmd.resolve_command(sub, rest)
            cmd.make_context(name, list(rest), parent=ctx, resilient_parsing=False)


def test_the_systemd_unit_stops_with_sigterm_and_restarts():
    unit = re.search(r"```ini\n(.*?)\n```", SECTION, re.DOTALL).group(1)
    assert "KillSignal=SIGTERM" in unit and "Restart=on-failure" in unit
    assert "qctl trade --live" in unit and "EnvironmentFile=" in unit
