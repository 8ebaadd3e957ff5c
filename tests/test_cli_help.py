"""`--help` of every command and group, at any depth: exits 0, shows at least one example that
starts with the screen's own command, and shows flags as flags (no `<bool>` after them).

The screens come from walking the Typer command tree, so a command added later is covered
without touching this file.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import click
import pytest
import typer
from typer.core import TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from qctl.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}  # an example line is never wrapped


def command_paths(command: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the tree, the root first, depth first."""
    out = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            out.extend(command_paths(sub, (*prefix, name)))
    return out


def command_at(path: tuple[str, ...]) -> click.Command:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


PATHS = command_paths(get_command(app))
_BOX = "│╭╮╰╯─"


def has_example(help_text: str, path: tuple[str, ...]) -> bool:
    """An "Example:" or "Examples:" heading, then a line that runs this very command
    (`qctl migrate apply ...` on the screen of `qctl migrate apply`)."""
    lines = [ln.strip(_BOX + " ") for ln in help_text.splitlines()]
    start = next(
        (i for i, ln in enumerate(lines) if re.match(r"Examples?:", ln)),
        None,
    )
    if start is None:
        return False
    call = re.compile(r"^(?:Examples?:\s*)?" + re.escape(" ".join(("qctl", *path))) + r"(\s|$)")
    return any(call.match(ln) for ln in lines[start:])


def flag_with_type(help_text: str, command: click.Command) -> list[str]:
    """Flags of `command` (and --help) that the screen shows as taking a value."""
    ctx = click.Context(command, info_name="qctl")
    flags = [
        opt
        for p in command.get_params(ctx)
        if isinstance(p, TyperOption) and p.is_flag and not p.count
        for opt in [*p.opts, *p.secondary_opts]
    ]
    return [f for f in flags if re.search(rf"(?<![\w-]){re.escape(f)}\s+<\w+>", help_text)]


def _help(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_walk_reaches_every_level() -> None:
    assert () in PATHS and ("audit",) in PATHS
    assert ("migrate", "apply") in PATHS and ("migrate",) in PATHS
    nested = [p for p in PATHS if len(p) == 2]
    assert len(nested) >= 8, nested


def test_the_example_check_can_fail() -> None:
    good = " Examples:\n\n qctl migrate apply 1 .\n"
    assert has_example(good, ("migrate", "apply"))
    assert has_example(" Example: qctl models list --dir x\n", ("models", "list"))
    assert not has_example(good, ("migrate", "plan"))  # another command's example
    assert not has_example(" Usage: qctl migrate apply [OPTIONS]\n", ("migrate", "apply"))
    assert not has_example(" Examples:\n qctl migrate applyx\n", ("migrate", "apply"))


def test_the_flag_check_can_fail() -> None:
    demo = typer.Typer()

    @demo.command()
    def run(write: bool = typer.Option(False, "--write", help="Write it.")) -> None:
        """A demo."""

    command = get_command(demo)
    assert flag_with_type("│ --write  <bool>  Write it. │", command) == ["--write"]
    assert flag_with_type("│ --write          Write it. │", command) == []


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "qctl")
def test_help_exits_0(path: tuple[str, ...]) -> None:
    assert "Usage" in _help(path)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "qctl")
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert has_example(text, path), f"`qctl {' '.join(path)} --help` shows no example:\n{text}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "qctl")
def test_flags_show_as_flags(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "<bool>" not in text
    assert flag_with_type(text, command_at(path)) == []


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("qctl ")


def _eager_root() -> typer.Typer:
    """The root as it would be with every command imported and registered up front."""
    from qctl import cli

    eager = typer.Typer(
        name="qctl",
        help=app.info.help,
        no_args_is_help=True,
        rich_markup_mode=cli.MARKUP,
        add_completion=False,
    )
    eager.callback()(app.registered_callback.callback)  # type: ignore[union-attr]
    for name, entry in cli.COMMANDS.items():
        target = getattr(importlib.import_module(entry.module), entry.attr)
        if isinstance(target, typer.Typer):
            eager.add_typer(target, name=name)
        else:
            eager.command(name)(target)
    return eager


def test_the_root_help_lists_what_the_commands_themselves_say() -> None:
    """The root lists commands from short summaries, without importing them; each summary
    must be the command's own first help line, so the lazy screen equals the eager one."""
    lazy = runner.invoke(app, ["--help"], env=WIDE)
    eager = runner.invoke(_eager_root(), ["--help"], env=WIDE)
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output


def _modules_after(args: list[str], wanted: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run `qctl ARGS` in a fresh interpreter: its output, and which of `wanted` it imported."""
    probe = (
        "import sys\n"
        "from qctl.cli import main\n"
        f"sys.argv = ['qctl', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(m for m in {wanted!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    text, loaded = out.stdout.rsplit("LOADED=", 1)
    return text, [m for m in loaded.strip().split(",") if m]


def test_the_root_help_imports_no_heavy_library() -> None:
    """`qctl --help` starts fast because it imports none of the libraries behind the
    commands (checked as imports, not as time: tests never time)."""
    heavy = ("numpy", "libcst", "lightgbm", "ccxt", "textual", "sqlmodel", "sqlite3", "asyncio",
             "pandas", "pyarrow", "engine", "audit", "models", "tui", "migrations",
             "importlib.metadata")  # fmt: skip
    text, loaded = _modules_after(["--help"], heavy)
    assert "Commands" in text
    assert loaded == [], f"`qctl --help` imported {loaded}"


def test_a_command_is_imported_only_when_it_runs() -> None:
    text, loaded = _modules_after(["ctl", "--help"], ("qctl.ctl_cmd", "qctl.train_cmd"))
    assert "qctl ctl pause" in text
    assert loaded == ["qctl.ctl_cmd"]


def test_an_unknown_command_is_a_usage_error_with_a_suggestion() -> None:
    result = runner.invoke(app, ["audti"])
    assert result.exit_code == 2
    assert "Did you mean 'audit'" in result.output
