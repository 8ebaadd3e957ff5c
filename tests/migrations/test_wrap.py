"""Migrated lines stay inside the repository's line length (migrations.wrap)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from migrations.config import load_migrate_config
from migrations.wrap import line_length_of, wrap_long_lines

OLD = textwrap.dedent(
    """\
    def orders(pos, qty, params):
        close_qty = pos.qty / 2
        if not params.get("use_scale_out", True):
            return [CloseOrder(pos.symbol, round(qty * 0.3, QTY_PRECISION), "T1")]
        note = f"max {10}x for {pos.symbol}"
        keep = some_function_with_a_long_name(pos.symbol, qty, params, "an original long line")
        return close_qty
    """
)
NEW = textwrap.dedent(
    """\
    def orders(pos, qty, params):
        close_qty = pos.qty * qctl_policy.policy_value_or_skip("harvest_t1_close_frac", pos.symbol)
        if not qctl_policy.given_or_skip(params.get("use_scale_out"), "use_scale_out", pos.symbol):
            return [CloseOrder(pos.symbol, round(qty * qctl_policy.policy_value_or_skip("harvest_t1_close_frac", pos.symbol), QTY_PRECISION), "T1")]
        note = f"max {qctl_policy.policy_value('leverage', pos.symbol)}x for {pos.symbol} and then some more"
        keep = some_function_with_a_long_name(pos.symbol, qty, params, "an original long line")
        return close_qty
    """
)


def test_lines_the_rewrite_made_long_are_split_like_a_formatter_would() -> None:
    out = wrap_long_lines(OLD, NEW, 80)
    compile(out, "<test>", "exec")
    assert "    close_qty = pos.qty * qctl_policy.policy_value_or_skip(\n" in out
    assert '        "harvest_t1_close_frac", pos.symbol\n    )\n' in out  # args on one line
    assert "        return [CloseOrder(\n            pos.symbol,\n" in out  # outermost first
    assert '            "T1",\n        )]\n' in out  # one per line: a trailing comma
    long = [line for line in out.splitlines() if len(line) > 80]
    # left long: the original line (not ours) and a look-up inside an f-string's braces
    assert long == [NEW.splitlines()[4], NEW.splitlines()[5]]


def test_nothing_to_split_leaves_the_text_as_it_is() -> None:
    assert wrap_long_lines(OLD, NEW, 200) == NEW
    assert wrap_long_lines(OLD, OLD, 60) == OLD  # long lines of the original stay as they were


def test_a_def_line_given_a_symbol_parameter_is_split() -> None:
    old = (
        "def choose_leverage(volatility: float | None, confidence: float) -> float:\n    return 1\n"
    )
    new = old.replace(") -> float", ", *, symbol: str | None = None) -> float")
    out = wrap_long_lines(old, new, 80)
    assert out.startswith(
        "def choose_leverage(\n    volatility: float | None, confidence: float, *, symbol: str"
    )
    narrow = wrap_long_lines(old, new, 40)
    assert "    *,\n    symbol: str | None = None,\n) -> float:\n" in narrow
    compile(narrow, "<test>", "exec")


@pytest.mark.parametrize(
    ("name", "text", "width"),
    [
        ("pyproject.toml", "[tool.ruff]\nline-length = 100\n", 100),
        ("pyproject.toml", "[tool.black]\nline-length = 79\n", 79),
        ("ruff.toml", "line-length = 120\n", 120),
        (".flake8", "[flake8]\nmax-line-length = 99\n", 99),
        ("setup.cfg", "[flake8]\nmax-line-length = 110\n", 110),
        ("pyproject.toml", "[tool.ruff]\nline-length = 'wide'\n", 88),
    ],
)
def test_the_width_is_the_projects(tmp_path: Path, name: str, text: str, width: int) -> None:
    (tmp_path / name).write_text(text)
    assert line_length_of(tmp_path) == width
    assert load_migrate_config(tmp_path).line_length == width


def test_the_migrate_table_sets_the_width_and_checks_it(tmp_path: Path) -> None:
    from migrations.errors import MigrateError

    (tmp_path / "pyproject.toml").write_text(
        "[tool.ruff]\nline-length = 100\n[tool.qctl.migrate]\nline-length = 72\n"
    )
    assert load_migrate_config(tmp_path).line_length == 72
    (tmp_path / "pyproject.toml").write_text("[tool.qctl.migrate]\nline-length = 0\n")
    with pytest.raises(MigrateError, match="line-length must be a positive whole number"):
        load_migrate_config(tmp_path)


def test_parameters_on_their_own_line_go_one_per_line() -> None:
    old = (
        "def check_scale_out(\n"
        "    pos: ScaleOutPosition, price: float, strategy_params: dict, scale_r: float = 0.5\n"
        ") -> float:\n"
        "    return 1\n"
    )
    new = old.replace("scale_r: float = 0.5", "scale_r: float | None = None")
    out = wrap_long_lines(old, new, 88)
    assert out == (
        "def check_scale_out(\n    pos: ScaleOutPosition,\n    price: float,\n"
        "    strategy_params: dict,\n    scale_r: float | None = None,\n) -> float:\n"
        "    return 1\n"
    )
