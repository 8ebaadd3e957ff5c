"""`qctl migrate`: thin Typer commands over `migrations.api` (init, plan, apply, status, rollback)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.syntax import Syntax

from qctl.options import OptionError

migrate_app = typer.Typer(
    name="migrate",
    help=(
        "Replace hardcoded trading values with fail-closed policy look-ups, in phases: "
        "1 sizing, 2 universe, 3 harvest, 4 kill.\n\n"
        "Start with `qctl migrate init PATH`, then `qctl migrate plan PATH`.\n\n"
        "Examples:\n\n"
        "  qctl migrate init examples/legacy_trader\n\n"
        "  qctl migrate plan examples/legacy_trader\n\n"
        "  qctl migrate apply sizing examples/legacy_trader --write"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

RepoPath = Annotated[
    Path, typer.Argument(help="The repository to migrate (default: the current folder).")
]
Phase = Annotated[
    str, typer.Argument(help="Phase number (1-4) or name (sizing, universe, harvest, kill).")
]


@migrate_app.command("init")
def init_command(
    path: RepoPath = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a module qctl did not write.")
    ] = False,
) -> None:
    """Write the policy accessor module the migrated code imports (standard library only).

    Examples:

      qctl migrate init examples/legacy_trader

      qctl migrate init . --force        # overwrite a module qctl did not write
    """
    from migrations import api

    result = api.init(path, force=force)
    typer.echo(
        f"{result.action} {result.path} (import {result.module}; symbols spelled {result.symbol_format})"
    )


@migrate_app.command("plan")
def plan_command(path: RepoPath = Path(".")) -> None:
    """Per phase: the findings it resolves, the files it touches, what it cannot handle and why.

    Example:

      qctl migrate plan examples/legacy_trader
    """
    from migrations import api

    out = Console(highlight=False)
    for p in api.plan(path):
        out.print(f"[bold]phase {p.number} ({p.name})[/]: {p.description}")
        out.print(
            f"  resolves {len(p.resolves)} finding(s) in {len(p.files)} file(s): {', '.join(p.files) or '-'}"
        )
        for text in p.limits:
            out.print(f"  [dim]never rewrites: {text}[/]")
        if p.removed:
            out.print(f"  removes, once unused: {', '.join(p.removed)}")
        for text in p.notes:
            out.print(f"  [cyan]review[/] {text}")
        for rel, reason in p.failed.items():
            out.print(f"  [red]cannot rewrite[/] {rel}: {reason}")
        for u in p.cannot:
            f = u.finding
            out.print(
                f"  [yellow]cannot handle[/] {f.path}:{f.line} {f.name} = {f.value}: {u.reason}"
            )


@migrate_app.command("apply")
def apply_command(
    phase: Phase,
    path: RepoPath = Path("."),
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite the files (default: print the diff).")
    ] = False,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Write even with uncommitted changes in git.")
    ] = False,
) -> None:
    """Show the phase's unified diff, or apply it with --write (recorded in .qctl/migrations.db).

    Examples:

      qctl migrate apply 1 examples/legacy_trader            # print the diff of phase 1

      qctl migrate apply sizing examples/legacy_trader --write
    """
    from migrations import api
    from migrations.phases import label

    result = api.apply(path, phase, write=write, allow_dirty=allow_dirty)
    out = Console(highlight=False)
    if not write and result.diff:
        if sys.stdout.isatty():
            out.print(Syntax(result.diff, "diff", theme="ansi_dark", background_color="default"))
        else:
            typer.echo(result.diff, nl=False)
    for rel, reason in result.failed.items():
        out.print(f"[red]left untouched[/] {rel}: {reason}")
    if not result.files:
        out.print(f"phase {label(result.number)}: nothing to change")
    elif result.written:
        out.print(f"phase {label(result.number)} applied to {len(result.files)} file(s)")
    else:
        out.print(
            f"phase {label(result.number)}: {len(result.files)} file(s) would change (pass --write)"
        )


@migrate_app.command("status")
def status_command(path: RepoPath = Path(".")) -> None:
    """Applied phases, and the audit findings each phase still owns.

    Example:

      qctl migrate status examples/legacy_trader
    """
    from migrations import api

    out = Console(highlight=False)
    for s in api.status(path):
        state = "applied" if s.applied else "not applied"
        out.print(
            f"[bold]phase {s.number} ({s.name})[/]: {state}, {len(s.open_findings)} open finding(s)"
        )
        for f in s.open_findings:
            out.print(f"  {f.path}:{f.line} {f.category} {f.name} = {f.value}")


@migrate_app.command("rollback")
def rollback_command(
    phase: Annotated[
        str | None,
        typer.Argument(
            help="Phase number (1-4) or name (sizing, universe, harvest, kill); "
            "with --all, the repository.",
            show_default=False,
        ),
    ] = None,
    path: RepoPath = Path("."),
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Roll back every applied phase and remove the module init wrote."
        ),
    ] = False,
) -> None:
    """Restore every file the phase touched, byte for byte (refused if one changed since).

    With --all: every applied phase, newest first, then the policy accessor module that
    `qctl migrate init` wrote (kept, with the reason, while a file still imports it).

    Examples:

      qctl migrate rollback kill examples/legacy_trader

      qctl migrate rollback --all examples/legacy_trader
    """
    from migrations import api

    if every:
        if phase is not None and path != Path("."):
            raise OptionError("--all rolls back every phase: give only the repository")
        result = api.rollback_all(Path(phase) if phase is not None else path)
        done = ", ".join(result.phases) or "none"
        typer.echo(
            f"rolled back phase(s) {done}; restored {len(result.restored)} file(s): "
            f"{', '.join(result.restored) or '-'}"
        )
        if result.removed:
            typer.echo(f"removed {', '.join(result.removed)} (written by init)")
        if result.kept:
            typer.echo(f"kept the accessor: {result.kept}")
        return
    if phase is None:
        raise OptionError("give a phase (1-4 or its name), or --all")
    restored = api.rollback(path, phase)
    typer.echo(f"restored {len(restored)} file(s): {', '.join(restored)}")
