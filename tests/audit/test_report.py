"""The human report: tables grouped by file, test code apart, and the executive summary's sentences."""

from __future__ import annotations

from rich.console import Console

from audit.finding import AuditResult, Category, Finding, Severity, parse_error
from audit.report import executive_summary, print_report, print_summary


def make(
    path: str,
    line: int,
    category: Category,
    name: str,
    value: str,
    *,
    rule_id: str = "constant",
    severity: Severity = Severity.WARNING,
    scope: str = "<module>",
    is_test: bool = False,
) -> Finding:
    return Finding(
        path=path,
        line=line,
        column=4,
        rule_id=rule_id,
        category=category,
        severity=severity,
        confidence=0.75,
        scope=scope,
        name=name,
        value=value,
        message=f"why-{name}-{line}",
        is_test=is_test,
    )


def render(result: AuditResult, **options: bool) -> str:
    console = Console(record=True, width=220, force_terminal=False, color_system=None)
    print_report(result, console, **options)
    return console.export_text()


def summary_line(lines: list[str], label: str) -> str:
    found = [line for line in lines if line.startswith(label + ":")]
    assert len(found) == 1, (label, lines)
    return found[0]


LEVERAGE = [
    make(
        "ai_engine/service.py",
        40,
        Category.LEVERAGE,
        "leverage",
        "10.0",
        rule_id="assign-fallback",
        scope="AIEngineService.process_signal",
    ),
    make("execution/router.py", 12, Category.LEVERAGE, "lev", "10", rule_id="assign-fallback"),
    make("execution/router.py", 30, Category.LEVERAGE, "lev", "20", rule_id="comparison"),
]
SECRETS = [
    make(
        "config/keys.py",
        3,
        Category.SECRET,
        "API_KEY",
        "<redacted 16 chars>",
        rule_id="secret",
        severity=Severity.ERROR,
    ),
    make(
        "config/keys.py",
        4,
        Category.SECRET,
        "API_SECRET",
        "<redacted 32 chars>",
        rule_id="secret",
        severity=Severity.ERROR,
    ),
]


# ---------------------------------------------------------------- tables


def test_tables_group_by_file_and_sort_by_line() -> None:
    findings = [
        make("b.py", 30, Category.LEVERAGE, "late_b", "3"),
        make("a.py", 90, Category.LEVERAGE, "late_a", "2"),
        make("b.py", 5, Category.LEVERAGE, "early_b", "4"),
        make("a.py", 7, Category.LEVERAGE, "early_a", "1"),
    ]
    text = render(AuditResult(findings=findings, files_scanned=2))
    a_title, b_title = text.index("a.py  2 findings"), text.index("b.py  2 findings")
    assert text.count("a.py  2 findings") == 1 and text.count("b.py  2 findings") == 1
    assert a_title < text.index("early_a = 1") < text.index("late_a = 2") < b_title
    assert b_title < text.index("early_b = 4") < text.index("late_b = 3")
    assert "7:5" in text  # 1-based column for people
    assert "75%" in text
    assert "why-early_a-7" in text


def test_test_findings_come_after_production_code() -> None:
    findings = [
        make("tests/test_bot.py", 3, Category.LEVERAGE, "in_test", "5", is_test=True),
        make("zeta/bot.py", 8, Category.LEVERAGE, "in_prod", "10"),
    ]
    text = render(AuditResult(findings=findings))
    assert (
        text.index("in_prod = 10") < text.index("Findings in test code") < text.index("in_test = 5")
    )
    hidden = render(AuditResult(findings=findings), show_tests=False)
    assert "in_test" not in hidden
    assert "1 finding in test code not shown" in hidden


def test_parse_errors_have_their_own_section_with_reasons() -> None:
    result = AuditResult(
        findings=[
            make("bot.py", 1, Category.LEVERAGE, "leverage", "10"),
            parse_error("legacy/py2.py", "SyntaxError: Missing parentheses in call to 'print'"),
        ]
    )
    text = render(result)
    section = text.index("Files that could not be audited (1)")
    assert section < text.index("legacy/py2.py") < text.index("Executive summary")
    assert "Missing parentheses in call to 'print'" in text


def test_values_with_brackets_are_shown_verbatim() -> None:
    result = AuditResult(
        findings=[make("u.py", 2, Category.SYMBOL_SELECTION, "CORE", "['BTCUSDT', 'ETHUSDT']")]
    )
    assert "CORE = ['BTCUSDT', 'ETHUSDT']" in render(result)


def test_clean_run_prints_only_the_summary() -> None:
    text = render(AuditResult(files_scanned=7))
    assert "Executive summary" in text
    assert "No hardcoded trading decisions in production code; 7 files scanned." in text
    assert "Line" not in text


# ---------------------------------------------------------------- executive summary


def test_summary_names_each_category_present_with_counts_and_nothing_else() -> None:
    lines = executive_summary(AuditResult(findings=[*LEVERAGE, *SECRETS], files_scanned=9))
    assert len(lines) == 3  # two categories and the totals
    leverage = summary_line(lines, "Leverage")
    assert (
        "hardcoded 10x fallback in 2 files (ai_engine/service.py, execution/router.py)" in leverage
    )
    assert "3 leverage values in all" in leverage
    assert "20x" in leverage
    secrets = summary_line(lines, "Secrets")
    assert "2 hardcoded credentials (API_KEY, API_SECRET) in 2 places in config/keys.py" in secrets
    assert "redacted" not in secrets
    for absent in ("Harvest", "Kill score", "Safety limits", "Position sizing", "Symbol selection"):
        assert not any(line.startswith(absent) for line in lines)
    assert lines.index(secrets) < lines.index(leverage)  # errors before warnings
    assert lines[-1].startswith(
        "In all: 5 findings (2 errors, 3 warnings) in 3 files; 9 files scanned"
    )


def test_summary_harvest_ladder_kill_score_and_safety_limits() -> None:
    findings = [
        make(
            "harvest/kernel.py",
            10,
            Category.HARVEST,
            "T1_R",
            "2.0",
            rule_id="field-default",
            scope="HarvestTheta",
        ),
        make(
            "harvest/kernel.py",
            11,
            Category.HARVEST,
            "T2_R",
            "4.0",
            rule_id="field-default",
            scope="HarvestTheta",
        ),
        make(
            "harvest/kernel.py",
            12,
            Category.HARVEST,
            "T3_R",
            "6.0",
            rule_id="field-default",
            scope="HarvestTheta",
        ),
        make("harvest/publisher.py", 20, Category.HARVEST, "T1_R", "2.0", rule_id="get-default"),
        make("harvest/kernel.py", 14, Category.HARVEST, "max_hold_sec", "3600"),
        make(
            "apply/layer.py",
            5,
            Category.KILL_SCORE,
            "K_CLOSE_THRESHOLD",
            "0.65",
            rule_id="env-default",
        ),
        make("apply/layer.py", 50, Category.KILL_SCORE, "kill_score", "0.65", rule_id="comparison"),
        make("exits/owner.py", 8, Category.KILL_SCORE, "kill_score", "0.65", rule_id="comparison"),
        make(
            "limits.py",
            1,
            Category.SAFETY_LIMIT,
            "MAX_LEVERAGE_HARD_CAP",
            "125",
            rule_id="safety-limit",
            severity=Severity.INFO,
        ),
        make(
            "limits.py",
            2,
            Category.SAFETY_LIMIT,
            "MAX_TOTAL_EXPOSURE_PCT",
            "300",
            rule_id="safety-limit",
            severity=Severity.ERROR,
        ),
    ]
    lines = executive_summary(AuditResult(findings=findings))
    harvest = summary_line(lines, "Harvest")
    assert "ladder T1/T2/T3 = 2.0/4.0/6.0 R hardcoded in 4 places" in harvest
    assert "3 field defaults, 1 fallback" in harvest
    assert "1 other harvest value" in harvest
    kill = summary_line(lines, "Kill score")
    assert "threshold 0.65 in 3 places (apply/layer.py, exits/owner.py)" in kill
    assert "3 kill-score values in all" in kill
    limits = summary_line(lines, "Safety limits")
    assert "2 declared, 1 looser than the owner's hard limits" in limits
    assert "MAX_TOTAL_EXPOSURE_PCT = 300 in limits.py" in limits
    assert "MAX_LEVERAGE_HARD_CAP" not in limits
    assert lines[0] == limits  # the only error comes first
    assert not any(line.startswith(("Leverage", "Secrets")) for line in lines)


def test_summary_counts_equal_values_written_differently_as_one() -> None:
    findings = [
        make("a.py", 1, Category.POSITION_SIZING, "position_size_usd", "200.0"),
        make("b.py", 1, Category.POSITION_SIZING, "MAX_NOTIONAL", '"200"', rule_id="env-default"),
        make("c.py", 1, Category.POSITION_SIZING, "size", "50"),
    ]
    line = summary_line(executive_summary(AuditResult(findings=findings)), "Position sizing")
    assert "hardcoded 200" in line and "in 2 files (a.py, b.py)" in line
    assert "3 sizing values in all (also 50)" in line


def test_totals_mention_tests_suppressed_baselined_and_unparsed_files() -> None:
    result = AuditResult(
        findings=[
            LEVERAGE[0],
            make("tests/test_x.py", 1, Category.LEVERAGE, "leverage", "2", is_test=True),
            parse_error("bad/one.py", "not UTF-8"),
            parse_error("bad/two.py", "binary file"),
        ],
        files_scanned=20,
        files_from_cache=15,
        suppressed=3,
        baselined=4,
    )
    lines = executive_summary(result)
    assert len(lines) == 2
    assert summary_line(lines, "Leverage").count("10x") == 1  # the test finding is not counted
    totals = lines[-1]
    assert totals.startswith(
        "In all: 1 finding (1 warning) in 1 file; 20 files scanned (15 from cache)"
    )
    assert "1 in test code, 3 suppressed, 4 baselined" in totals
    assert totals.endswith("Could not parse 2 files: bad/one.py, bad/two.py.")


def test_print_summary_shows_the_panel_verbatim() -> None:
    findings = [make("u.py", 2, Category.SYMBOL_SELECTION, "CORE", "['BTCUSDT', 'ETHUSDT']")]
    console = Console(record=True, width=200, force_terminal=False, color_system=None)
    print_summary(AuditResult(findings=findings, files_scanned=1), console)
    text = console.export_text()
    assert "Executive summary" in text
    assert "Symbol selection: 1 hardcoded symbol-selection value (['BTCUSDT', 'ETHUSDT'])" in text
    assert "Line" not in text  # no tables


def test_summary_names_files_relative_to_the_folder_they_share() -> None:
    findings = [
        make("examples/bot/ai_engine/service.py", 4, Category.LEVERAGE, "leverage", "10.0"),
        make("examples/bot/execution/router.py", 9, Category.LEVERAGE, "lev", "10"),
        parse_error("examples/bot/legacy/old.py", "binary file"),
    ]
    lines = executive_summary(AuditResult(findings=findings, files_scanned=3))
    leverage = summary_line(lines, "Leverage")
    assert "in 2 files (ai_engine/service.py, execution/router.py)" in leverage
    assert "in 2 files under examples/bot/; 3 files scanned" in lines[-1]
    assert lines[-1].endswith("Could not parse 1 file: legacy/old.py.")
    table = render(AuditResult(findings=findings))
    assert "examples/bot/ai_engine/service.py  1 finding" in table  # tables keep full paths


def test_fully_baselined_run_says_nothing_new() -> None:
    lines = executive_summary(AuditResult(files_scanned=5, baselined=12))
    assert lines == [
        "No new hardcoded trading decisions in production code; 5 files scanned, 12 baselined."
    ]


def test_leverage_unit_only_on_numbers_and_all_distinct_values_are_listed() -> None:
    findings = [
        make("a.py", 1, Category.LEVERAGE, "mode", "max"),
        make("b.py", 1, Category.LEVERAGE, "lev", "5"),
        make("c.py", 1, Category.LEVERAGE, "lev", "20.0"),
    ]
    line = summary_line(executive_summary(AuditResult(findings=findings)), "Leverage")
    assert (
        line
        == "Leverage: 3 hardcoded leverage values (max, 5x, 20x) in 3 files (a.py, b.py, c.py)."
    )
