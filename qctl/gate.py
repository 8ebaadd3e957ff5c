"""The CI safety gate that `qctl verify` runs: each check wired to the part that holds it
(`audit`, `engine.journal.invariants`, `engine.journal.verify`, `models`), run in order, and the
gate's verdict as an exit code and JUnit XML. The command module only parses options and renders."""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.journal.invariants import CheckResult, CheckStatus, timed
from qctl.options import DEFAULT_EQUITY_USDT, OptionError

if TYPE_CHECKING:
    from audit.baseline import Baseline
    from audit.config import AuditConfig

CHECK_GROUPS = ("audit", "journal", "variation", "drill", "policy")
# qctl: ignore[symbol_selection] the drill's sample data, not a trading universe
DEFAULT_DRILL_SYMBOLS = "BTC-USDT,ETH-USDT"
DEFAULT_DRILL_BARS = 400
MAX_SHOWN_FINDINGS = 20
MODEL_HEAD_FILE = "direction.txt"  # the model file the AI drill deletes and truncates


@dataclass(frozen=True)
class GateRequest:
    """What to check, with every default already resolved by the caller."""

    checks: list[str]
    db: Path  # the journal of the journal and variation checks (skipped when absent)
    runs: list[str] | None = None
    audit_paths: list[Path] | None = None  # default: the current folder
    baseline: Path | None = None
    audit_config: Path | None = None
    policy_file: Path | None = None
    policy_file_given: bool = False  # an explicit file must exist; a default may be absent
    models: Path | None = None
    legacy_policy: Path | None = None
    drill_data: Path | None = None
    drill_symbols: list[str] | None = None
    drill_bars: int = DEFAULT_DRILL_BARS
    variation_policies: list[str] | None = None  # None: every policy
    tiers: Path | None = None


def run_gate(request: GateRequest) -> list[CheckResult]:
    """Run the requested checks in `CHECK_GROUPS` order. Everything that is the user's to fix
    (a bad config, baseline or journal) is raised before the first check runs."""
    from engine.core.tiers import LeverageTiers
    from engine.journal.invariants import check_journal, check_variation
    from engine.journal.verify import open_for_checks, policy_file_check

    checks = request.checks
    paths = request.audit_paths or [Path(".")]
    if "audit" in checks:
        audit_config, accepted = audit_setup(paths, request.baseline, request.audit_config)
    journal = None
    if ("journal" in checks or "variation" in checks) and request.db.is_file():
        journal, problem = open_for_checks(request.db, request.runs)  # not a journal: exit 2
        if problem:
            raise OptionError(problem)
    brackets = LeverageTiers.load(request.tiers) if "journal" in checks else None

    results: list[CheckResult] = []
    try:
        for check in checks:
            if check == "audit":
                results += timed(
                    "audit", lambda: audit_gate(paths, audit_config, accepted, request.baseline)
                )
            elif check == "policy":
                results += timed(
                    "policy",
                    lambda: policy_file_check(request.policy_file, request.policy_file_given),
                )
            elif check in ("journal", "variation") and journal is None:
                results.append(
                    CheckResult(check, CheckStatus.SKIP, f"no journal at {request.db} (pass --db)")
                )
            elif check == "journal":
                results += timed(
                    "journal", lambda: check_journal(journal, tiers=brackets, run_ids=request.runs)
                )
            elif check == "variation":
                results += timed(
                    "variation",
                    lambda: check_variation(journal, request.variation_policies, request.runs),
                )
            elif check == "drill":
                results += timed("drill", lambda: drill(request))
    finally:
        if journal is not None:
            journal.close()
    return results


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


def drill(request: GateRequest) -> CheckResult:
    """Check 4: AIPolicy over a models dir when given, else a policy file + StaticPolicy."""
    from engine.backtest import default_policy_path as packaged_legacy
    from engine.journal.verify import static_drill
    from engine.venues.candle_files import sample_data_dir

    r = request
    source = r.drill_data if r.drill_data is not None else sample_data_dir()
    with tempfile.TemporaryDirectory(prefix="qctl-drill-") as tmp:
        if r.models is not None:
            return ai_drill(source, r.drill_symbols, r.drill_bars, r.models, Path(tmp))
        toml = r.legacy_policy if r.legacy_policy is not None else packaged_legacy()
        chosen = r.drill_symbols or DEFAULT_DRILL_SYMBOLS.split(",")
        return static_drill(
            source, chosen, r.drill_bars, toml, Path(tmp), equity=DEFAULT_EQUITY_USDT
        )


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


def exit_code(results: list[CheckResult], strict: bool) -> int:
    """1 when a check failed or errored (or, strict, was skipped), else 0."""
    bad = {CheckStatus.FAIL, CheckStatus.ERROR} | ({CheckStatus.SKIP} if strict else set())
    return 1 if any(r.status in bad for r in results) else 0
