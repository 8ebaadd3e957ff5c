"""`# qctl: ignore` comments and per-path ignores round-trip: silenced findings are counted, not lost."""

from __future__ import annotations

import textwrap

from audit.scan import scan_source
from tests.audit.helpers import CONFIG, scan


def test_trailing_ignore_silences_that_line_only() -> None:
    code = "LEVERAGE = 10  # qctl: ignore\nMAX_SYMBOLS = 10\n"
    assert [f.name for f in scan(code)] == ["MAX_SYMBOLS"]


def test_ignore_with_categories_is_selective() -> None:
    code = "def f(lev, kill_score):\n    if lev > 5 and kill_score > 0.6:  # qctl: ignore[leverage]\n        pass\n"
    assert [f.category.value for f in scan(code)] == ["kill_score"]


def test_ignore_accepts_rule_ids_and_several_items() -> None:
    code = 'X = {"tp_pct": 6.0, "leverage": 5}  # qctl: ignore[dict-value]\n'
    assert scan(code) == []
    code = 'X = {"tp_pct": 6.0, "leverage": 5}  # qctl: ignore[leverage, stop_loss_take_profit]\n'
    assert scan(code) == []


def test_comment_on_the_line_above_covers_the_next_line() -> None:
    code = "# qctl: ignore[harvest] -- reviewed, the exchange requires it\nT1_R = 2.0\nT2_R = 4.0\n"
    assert [f.name for f in scan(code)] == ["T2_R"]


def test_ignore_on_statement_start_covers_multiline_call() -> None:
    code = "theta = HarvestTheta(  # qctl: ignore\n    T1_R=2.0,\n)\n"
    assert scan(code) == []


def test_ignore_file() -> None:
    assert scan("# qctl: ignore-file\nLEVERAGE = 10\nT1_R = 2.0\n") == []


def test_suppressed_are_counted() -> None:
    result = scan_source(textwrap.dedent("LEVERAGE = 10  # qctl: ignore\n"), "a.py", CONFIG)
    assert result.findings == [] and result.suppressed == 1


def test_hash_inside_string_is_not_a_directive() -> None:
    code = 'LEVERAGE = 10\nNOTE = "# qctl: ignore"\n'
    assert [f.name for f in scan(code)] == ["LEVERAGE"]


def test_per_path_ignores_from_config() -> None:
    code = "LEVERAGE = 10\nT1_R = 2.0\n"
    found = scan(code, path="legacy/old.py", per_path_ignores={"legacy/**": ("leverage",)})
    assert [f.name for f in found] == ["T1_R"]
    assert scan(code, path="legacy/old.py", per_path_ignores={"legacy/*.py": ("*",)}) == []
