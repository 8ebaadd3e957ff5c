"""`qctl verify`: the CI gate. Parses options, runs `qctl.gate.run_gate` and renders its checks
(table, JSON, JUnit XML) with an exit code for CI. The checks live in `qctl.gate` and below."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.journal.invariants import CheckResult, CheckStatus
from qctl.gate import CHECK_GROUPS, DEFAULT_DRILL_BARS, DEFAULT_DRILL_SYMBOLS, GateRequest
from qctl.options import DEFAULT_MODEL_DIR, OptionError, split_names


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


# ---------------------------------------------------------------------------------------------
# output


_STYLE = {
    CheckStatus.PASS: "[green]pass[/]",
    CheckStatus.FAIL: "[bold red]FAIL[/]",
    CheckStatus.ERROR: "[bold red]ERROR[/]",
    CheckStatus.SKIP: "[yellow]skip[/]",
}


def render_table(results: list[CheckResult], console: Console) -> None:
    table = Table(title="qctl verify", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("result", overflow="fold")
    for r in results:
        table.add_row(r.name, _STYLE[r.status], escape(r.summary))
    console.print(table)
    for r in results:
        if r.failed and r.details:
            console.print(f"[bold]{r.name}[/]")
            for line in r.details:
                console.print(f"  {escape(line)}", highlight=False)


def _parse_only(only: str | None) -> list[str]:
    if not only:
        return list(CHECK_GROUPS)
    chosen = [c.strip() for c in only.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CHECK_GROUPS]
    if unknown or not chosen:
        raise typer.BadParameter(
            f"unknown check {unknown[0] if unknown else only!r} (checks: {', '.join(CHECK_GROUPS)})",
            param_hint="--only",
        )
    return [c for c in CHECK_GROUPS if c in chosen]


# ---------------------------------------------------------------------------------------------
# the command


def verify_command(
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help=f"Comma-separated checks to run (default: all): {', '.join(CHECK_GROUPS)}.",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Journal for the journal and variation checks (default: ./qctl.db if present).",
            show_default=False,
        ),
    ] = None,
    run: Annotated[
        list[str] | None,
        typer.Option("--run", help="Only this run id (repeatable). Default: every run."),
    ] = None,
    audit_path: Annotated[
        list[Path] | None,
        typer.Option("--audit-path", help="What the audit gate scans (repeatable). Default: ."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Audit baseline: only findings beyond it fail the gate."),
    ] = None,
    audit_config: Annotated[
        Path | None,
        typer.Option("--audit-config", help="Audit config file (default: nearest above the path)."),
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy-file",
            help="Policy file to check (default: $QCTL_POLICY_FILE or ./qctl_policy.json if present).",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Model directory: drill AIPolicy (default: ./qctl_models if present, "
            "else the drill uses a policy file).",
            show_default=False,
        ),
    ] = None,
    legacy_policy: Annotated[
        Path | None,
        typer.Option(
            "--legacy-policy",
            help="StaticPolicy TOML giving the signals of the policy-file drill "
            "(default: the packaged legacy policy).",
            show_default=False,
        ),
    ] = None,
    drill_data: Annotated[
        Path | None,
        typer.Option("--drill-data", help="Candles for the drill (default: the shipped sample)."),
    ] = None,
    drill_symbols: Annotated[
        str | None,
        typer.Option(
            "--drill-symbols",
            help=f"Comma-separated symbols of the drill backtest (default: {DEFAULT_DRILL_SYMBOLS}; "
            "with models, the symbols they were trained on).",
            show_default=False,
        ),
    ] = None,
    drill_bars: Annotated[
        int, typer.Option("--drill-bars", min=50, help="Bars of the drill backtest.")
    ] = DEFAULT_DRILL_BARS,
    variation_policy: Annotated[
        list[str] | None,
        typer.Option(
            "--variation-policy",
            help="Run policy names whose decisions must vary (repeatable; 'all' for every run). "
            "Default: ai (AIPolicy).",
            show_default=False,
        ),
    ] = None,
    tiers: Annotated[
        Path | None,
        typer.Option(
            "--tiers", help="Leverage brackets (ccxt JSON). Default: as the engine finds them."
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table or json.")
    ] = OutputFormat.table,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML (one testcase per check).")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="A skipped check (nothing to check) fails too.")
    ] = False,
) -> None:
    """Run the CI safety checks and exit 0 (all pass), 1 (a check failed) or 2 (usage/config).

    Checks: **audit** (no hardcoded-value finding beyond the baseline), **journal** (leverage,
    margin ratio, position size, exposure and protective stops of every run), **variation**
    (AI leverage, size and T1 are not constant), **drill** (missing, stale and corrupt models or
    policy file give zero entries and journaled skip reasons), **policy** (the policy file's
    schema, hash, validity and bounds).

    Examples:

      qctl verify --db qctl.db --baseline .qctl-baseline.json --junit verify.xml

      qctl verify --only journal,variation --db qctl.db --format json
    """
    from engine.policy_file import default_policy_path
    from qctl.gate import exit_code, junit_xml, run_gate

    checks = _parse_only(only)
    db_path = db if db is not None else Path("qctl.db")
    if db is not None and ("journal" in checks or "variation" in checks) and not db.is_file():
        raise OptionError(f"journal {db} does not exist")
    if models is not None and not models.is_dir():
        raise OptionError(f"--models {models} is not a directory")
    if models is None and DEFAULT_MODEL_DIR.is_dir():
        models = DEFAULT_MODEL_DIR  # what `qctl train` writes by default
    policies: list[str] | None
    if variation_policy and "all" in variation_policy:
        policies = None
    elif variation_policy:
        policies = list(variation_policy)
    else:
        from models.policy import POLICY_NAME

        policies = [POLICY_NAME]
    results = run_gate(
        GateRequest(
            checks=checks,
            db=db_path,
            runs=run,
            audit_paths=audit_path,
            baseline=baseline,
            audit_config=audit_config,
            policy_file=policy_file if policy_file is not None else default_policy_path(),
            policy_file_given=policy_file is not None,
            models=models,
            legacy_policy=legacy_policy,
            drill_data=drill_data,
            drill_symbols=split_names(drill_symbols) or None,
            drill_bars=drill_bars,
            variation_policies=policies,
            tiers=tiers,
        )
    )

    code = exit_code(results, strict)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(results), encoding="utf-8")
    if output_format is OutputFormat.json:
        payload = {
            "passed": code == 0,
            "exit_code": code,
            "checks": [r.as_dict() for r in results],
        }
        typer.echo(json.dumps(payload, indent=1, default=str))
    else:
        console = Console()
        render_table(results, console)
        verdict = "[green]passed[/]" if code == 0 else "[bold red]failed[/]"
        console.print(f"verify {verdict}" + (f"; JUnit: {junit}" if junit else ""))
    raise typer.Exit(code)
