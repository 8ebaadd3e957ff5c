"""`qctl audit`: find hardcoded trading decisions in a Python codebase."""

from __future__ import annotations

import sys
from dataclasses import fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported when the command runs: `qctl --help` does not pay for them
    from audit.finding import AuditResult


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    github = "github"
    csv = "csv"


class Layout(StrEnum):
    auto = "auto"
    concise = "concise"
    full = "full"


class FailOn(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"
    never = "never"


class TestMode(StrEnum):
    separate = "separate"
    exclude = "exclude"
    include = "include"


def reference_limits() -> dict[str, tuple[float, str, bool]]:
    """The owner's hard limits from the one place they are written (`engine.limits.SafetyLimits`,
    a module without numpy: a warm audit never loads it)."""
    from engine.limits import SafetyLimits

    limits = SafetyLimits()
    return {
        f.name: (
            float(getattr(limits, f.name)),
            "min" if f.name.startswith("min_") else "max",
            f.name.endswith("_pct"),
        )
        for f in fields(limits)
    }


def audit_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files or folders to audit (default: the current folder).", show_default=False
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="table (for people), json, sarif (GitHub code scanning), github (Actions annotations), csv.",
        ),
    ] = OutputFormat.table,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report to FILE instead of the terminal."),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            help="Exit 1 when a finding at or above this severity remains (test files excepted)."
        ),
    ] = FailOn.warning,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file (qctl.toml or pyproject.toml). Default: the nearest one above PATHS.",
        ),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="Report only findings that are not in this baseline file.")
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            help="Record every current finding in FILE (accept them as known) and exit 0."
        ),
    ] = None,
    tests: Annotated[
        TestMode | None,
        typer.Option(
            help="Findings in test files: report them separately (default), exclude them, or include them in the gate."
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Scan every file even if unchanged.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the content-hash cache lives (default: .qctl_cache next to the config)."
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Worker processes (default: one per CPU)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Table format: only the summary.")
    ] = False,
    layout: Annotated[
        Layout,
        typer.Option(
            "--output-format",
            help="Table format layout: concise (a finding in two lines, ruff-style), full (a table "
            "per file), auto (the table only when it fits the width).",
        ),
    ] = Layout.auto,
    explain: Annotated[
        str | None,
        typer.Option(
            "--explain",
            metavar="FINDING",
            help="Print the def-use path that made FINDING (a fingerprint or PATH:LINE) a finding.",
        ),
    ] = None,
) -> None:
    """Find literal values that make a trading decision: leverage, size, symbol lists and weights,
    harvest R-thresholds, kill-score thresholds, SL/TP distances, hidden fallbacks, secrets.

    Each finding has a rule id, a category, a severity, a confidence and a one-line why.
    Silence one with `# qctl: ignore` or `# qctl: ignore[leverage,harvest]` on its line.

    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or config error.

    Examples:

      qctl audit examples/legacy_trader

      qctl audit src --format sarif --output qctl.sarif

      qctl audit . --output-format concise                # two lines per finding, any width

      qctl audit . --write-baseline .qctl-baseline.json   # accept today's findings

      qctl audit . --baseline .qctl-baseline.json         # fail only on new ones

      qctl audit . --explain risk/governor.py:36         # why is this a finding?
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from audit.baseline import BaselineError, load_baseline
    from audit.baseline import write_baseline as save_baseline
    from audit.config import ConfigError, find_config_file, load_config
    from audit.runner import CACHE_DIR_NAME, run_audit

    targets = paths or [Path(".")]
    for target in targets:
        if not target.exists() and not target.is_symlink():
            raise ConfigError(f"no such file or directory: {target}")
    start = targets[0] if targets[0].exists() else Path(".")
    found = config_file or find_config_file(start)
    config = load_config(found, root=Path.cwd())
    config = replace(config, reference_limits=reference_limits())
    if tests is not None:
        config = replace(config, tests=tests.value)
    err = Console(stderr=True)

    loaded = None
    # rewriting a baseline starts from every finding, not from those the old one lets through
    if baseline is not None and write_baseline is None:
        try:
            loaded = load_baseline(baseline)
        except BaselineError as exc:
            raise ConfigError(str(exc)) from None

    cache_folder = cache_dir or Path(config.root) / CACHE_DIR_NAME
    show_progress = (
        err.is_terminal and output_format is OutputFormat.table or (err.is_terminal and output)
    )
    if show_progress:
        with Progress(
            TextColumn("[bold]auditing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("audit", total=None)
            result = run_audit(
                targets, config, cache_dir=cache_folder, use_cache=not no_cache, baseline=loaded, jobs=jobs,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
    else:
        result = run_audit(
            targets,
            config,
            cache_dir=cache_folder,
            use_cache=not no_cache,
            baseline=loaded,
            jobs=jobs,
        )

    if explain is not None:
        from audit.reachability import explain_finding

        try:
            sys.stdout.write("\n".join(explain_finding(result, explain)) + "\n")
        except LookupError as exc:
            raise ConfigError(str(exc)) from None
        raise typer.Exit(0)

    if write_baseline is not None:
        count = save_baseline(write_baseline, result.findings)
        err.print(f"wrote {count} finding(s) to baseline {write_baseline}")
        raise typer.Exit(0)

    _emit(result, output_format, output, quiet, layout)
    raise typer.Exit(exit_code(result, fail_on, config.tests))


def exit_code(result: AuditResult, fail_on: FailOn, tests: str) -> int:
    """1 when a finding at or above `fail_on` remains; test-file findings count only with tests=include."""
    from audit.finding import Severity

    if fail_on is FailOn.never:
        return 0
    threshold = Severity(fail_on.value)
    for finding in result.findings:
        if finding.is_test and tests != "include":
            continue
        if finding.severity.at_least(threshold):
            return 1
    return 0


def _emit(
    result: AuditResult, fmt: OutputFormat, output: Path | None, quiet: bool, layout: Layout
) -> None:
    if fmt is OutputFormat.table:
        from audit.report import print_report, print_summary

        if output is not None:
            with output.open("w", encoding="utf-8") as fh:
                console = Console(file=fh, width=160, force_terminal=False)
                print_report(result, console, style=layout.value)
            return
        console = Console()
        if quiet:
            print_summary(result, console)
        else:
            print_report(result, console, style=layout.value)
        return
    from audit.formats import render

    text = render(result, fmt.value)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
