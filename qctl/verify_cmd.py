"""`qctl verify`: the CI gate. Parses options, calls the checks of `engine.journal.invariants`,
`engine.journal.verify` and `audit`, and renders them (table, JSON, JUnit XML) with an exit code
for CI. The logic lives in those modules."""

from __future__ import annotations

import json
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.journal.invariants import CheckResult, CheckStatus, timed
from qctl.options import DEFAULT_EQUITY_USDT, DEFAULT_MODEL_DIR, OptionError, split_names

if TYPE_CHECKING:
    from audit.baseline import Baseline
    from audit.config import AuditConfig

CHECK_GROUPS = ("audit", "journal", "variation", "drill", "policy")
# qctl: ignore[symbol_selection] the drill's sample data, not a trading universe
DEFAULT_DRILL_SYMBOLS = "BTC-USDT,ETH-USDT"
DEFAULT_DRILL_BARS = 400
MAX_SHOWN_FINDINGS = 20
MODEL_HEAD_FILE = "direction.txt"  # the model file the AI drill deletes and truncates


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


# ---------------------------------------------------------------------------------------------
# wiring of each check


def audit_setup(
    paths: list[Path], baseline: Path | None, config_file: Path | None
) -> tuple[AuditConfig, Baseline | None]:
    """The audit config and baseline, loaded before any check runs (their errors exit 2)."""
    from audit.baseline import BaselineError, load_baseline
    from audit.config import find_config_file, load_config
    from qctl.audit_cmd import reference_limits

    start = paths[0] if paths[0].exists() else Path(".")
    config = load_config(config_file or find_config_file(start), root=Path.cwd())
    config = replace(config, reference_limits=reference_limits())
    try:
        accepted = load_baseline(baseline) if baseline is not None else None
    except BaselineError as exc:
        raise OptionError(str(exc)) from None
    return config, accepted


def audit_gate(
    paths: list[Path], config: AuditConfig, accepted: Baseline | None, baseline: Path | None
) -> CheckResult:
    """Check 1: no audit finding (warning or above, outside tests) beyond the baseline."""
    from audit.finding import Severity
    from audit.runner import CACHE_DIR_NAME, run_audit

    result = run_audit(
        paths, config, cache_dir=Path(config.root) / CACHE_DIR_NAME, baseline=accepted
    )
    gate = [
        f
        for f in result.findings
        if f.severity.at_least(Severity.WARNING) and not (f.is_test and config.tests != "include")
    ]
    data = {
        "files_scanned": result.files_scanned,
        "findings": len(result.findings),
        "above_baseline": len(gate),
        "baselined": result.baselined,
        "by_category": {},
    }
    for f in gate:
        data["by_category"][str(f.category)] = data["by_category"].get(str(f.category), 0) + 1
    where = ", ".join(str(p) for p in paths)
    against = f"baseline {baseline}" if baseline is not None else "no baseline"
    if gate:
        details = [
            f"{f.path}:{f.line}: [{f.rule_id}] {f.name} = {f.value}: {f.message}"
            for f in gate[:MAX_SHOWN_FINDINGS]
        ]
        return CheckResult(
            "audit",
            CheckStatus.FAIL,
            f"{len(gate)} finding(s) at warning or above in {where} ({against})",
            details,
            data,
        )
    return CheckResult(
        "audit",
        CheckStatus.PASS,
        f"no finding at warning or above in {where} ({result.files_scanned} files, {against}, "
        f"{result.baselined} baselined)",
        [],
        data,
    )


def ai_drill(
    data: Path, symbols: list[str] | None, bars: int, models: Path, workdir: Path
) -> CheckResult:
    """The drill with models: AIPolicy over copies of the model set (wiring of
    `engine.journal.verify.model_dir_drill`, which imports nothing of models/)."""
    from engine.journal.verify import model_dir_drill
    from models.errors import ModelError
    from models.policy import AIPolicy
    from models.registry import load_models, write_card

    try:
        intact = load_models(models)
    except ModelError as exc:
        return CheckResult("drill", CheckStatus.FAIL, f"intact models refused, no drill: {exc}")
    return model_dir_drill(
        data, symbols, bars, models, workdir, intact=intact, policy_for=AIPolicy.from_dir,
        head_file=MODEL_HEAD_FILE, write_card=write_card, equity=DEFAULT_EQUITY_USDT,
    )  # fmt: skip


def _drill(
    models: Path | None,
    legacy: Path | None,
    data: Path | None,
    symbols: list[str] | None,
    bars: int,
) -> CheckResult:
    """Check 4: AIPolicy over a models dir when given, else a policy file + StaticPolicy."""
    from engine.backtest import default_policy_path as packaged_legacy
    from engine.journal.verify import static_drill
    from engine.venues.candle_files import sample_data_dir

    source = data if data is not None else sample_data_dir()
    with tempfile.TemporaryDirectory(prefix="qctl-drill-") as tmp:
        if models is not None:
            return ai_drill(source, symbols, bars, models, Path(tmp))
        toml = legacy if legacy is not None else packaged_legacy()
        chosen = symbols or DEFAULT_DRILL_SYMBOLS.split(",")
        return static_drill(source, chosen, bars, toml, Path(tmp), equity=DEFAULT_EQUITY_USDT)


# ---------------------------------------------------------------------------------------------
# output


def junit_xml(results: list[CheckResult]) -> str:
    """JUnit XML: one testcase per check, named by the check (CI shows failures per check)."""
    counts = {s: sum(r.status is s for r in results) for s in CheckStatus}
    total_time = f"{sum(r.elapsed_s for r in results):.3f}"
    attrs = {
        "name": "qctl verify",
        "tests": str(len(results)),
        "failures": str(counts[CheckStatus.FAIL]),
        "errors": str(counts[CheckStatus.ERROR]),
        "skipped": str(counts[CheckStatus.SKIP]),
        "time": total_time,
    }
    suites = ET.Element("testsuites", attrs)
    suite = ET.SubElement(suites, "testsuite", attrs)
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"qctl.verify.{r.name.split('.')[0]}", "name": r.name,
             "time": f"{r.elapsed_s:.3f}"},
        )  # fmt: skip
        body = "\n".join([r.summary, *r.details])
        if r.status is CheckStatus.FAIL:
            ET.SubElement(
                case, "failure", {"message": r.summary, "type": "CheckFailed"}
            ).text = body
        elif r.status is CheckStatus.ERROR:
            ET.SubElement(case, "error", {"message": r.summary, "type": "CheckError"}).text = body
        elif r.status is CheckStatus.SKIP:
            ET.SubElement(case, "skipped", {"message": r.summary})
        ET.SubElement(case, "system-out").text = body
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


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


def exit_code(results: list[CheckResult], strict: bool) -> int:
    bad = {CheckStatus.FAIL, CheckStatus.ERROR} | ({CheckStatus.SKIP} if strict else set())
    return 1 if any(r.status in bad for r in results) else 0


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
    from engine.core.tiers import LeverageTiers
    from engine.journal.invariants import check_journal, check_variation
    from engine.journal.verify import open_for_checks, policy_file_check
    from engine.policy_file import default_policy_path

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
    symbols = split_names(drill_symbols) or None

    paths = audit_path or [Path(".")]
    if "audit" in checks:
        audit_config_loaded, accepted = audit_setup(paths, baseline, audit_config)
    journal = None
    if ("journal" in checks or "variation" in checks) and db_path.is_file():
        journal, problem = open_for_checks(db_path, run)  # not a journal: JournalError, exit 2
        if problem:
            raise OptionError(problem)
    brackets = LeverageTiers.load(tiers) if "journal" in checks else None

    results: list[CheckResult] = []
    try:
        for check in checks:
            if check == "audit":
                results += timed(
                    "audit", lambda: audit_gate(paths, audit_config_loaded, accepted, baseline)
                )
            elif check == "policy":
                path = policy_file if policy_file is not None else default_policy_path()
                results += timed(
                    "policy", lambda p=path: policy_file_check(p, policy_file is not None)
                )
            elif check in ("journal", "variation") and journal is None:
                results.append(
                    CheckResult(check, CheckStatus.SKIP, f"no journal at {db_path} (pass --db)")
                )
            elif check == "journal":
                results += timed(
                    "journal", lambda: check_journal(journal, tiers=brackets, run_ids=run)
                )
            elif check == "variation":
                results += timed("variation", lambda: check_variation(journal, policies, run))
            elif check == "drill":
                results += timed("drill", lambda: _drill(models, legacy_policy, drill_data,
                                                         symbols, drill_bars))  # fmt: skip
    finally:
        if journal is not None:
            journal.close()

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
