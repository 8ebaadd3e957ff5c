"""StaticPolicy TOML files (issue 15): every value is validated, not only the effective one; a
policy that can never trade says so in one line (a failure under `--strict`); wording of
non-finite values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.backtest import default_policy_path
from engine.core.policy import PolicyConfigError, StaticPolicy
from engine.policy_file import never_trades
from qctl.cli import app
from tests.verify.cli import run_main

runner = CliRunner()


def _edited(tmp_path: Path, pattern: str, replacement: str) -> Path:
    text = default_policy_path().read_text()
    new, n = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert n == 1, pattern
    out = tmp_path / "policy.toml"
    out.write_text(new)
    return out


@pytest.mark.parametrize(
    ("pattern", "replacement", "named"),
    [
        # the decision carries min(kill, close): 0.65 used to hide 5
        (r"^kill_threshold = 0\.6", "kill_threshold = 5", "[harvest].kill_threshold = 5"),
        (r"^close_threshold = 0\.65", "close_threshold = 5", "[harvest].close_threshold = 5"),
        (r"^close_threshold = 0\.65", "close_threshold = 0.1", "[harvest].close_threshold = 0.1"),
        (r"^leverage = 10\.0", "leverage = 500.0", "leverage = 500"),
        (r"^t3_r = 6\.0", "t3_r = 60.0", "harvest_t3_r = 60"),
    ],
)
def test_every_value_of_the_file_is_checked(tmp_path: Path, pattern, replacement, named) -> None:
    path = _edited(tmp_path, pattern, replacement)
    with pytest.raises(PolicyConfigError, match=re.escape(named)):
        StaticPolicy.from_toml(path)
    result = runner.invoke(app, ["policy", "check", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 1 and named in result.output
    assert len(result.output.strip().splitlines()) == 1 and "refused" in result.output


def test_a_non_finite_value_must_be_a_finite_number(tmp_path: Path) -> None:
    path = _edited(tmp_path, r"^leverage = 10\.0", "leverage = nan")
    with pytest.raises(PolicyConfigError, match=r"\[entry\]\.leverage must be a finite number"):
        StaticPolicy.from_toml(path)


def test_the_packaged_policy_is_valid_and_trades() -> None:
    result = runner.invoke(app, ["policy", "check", str(default_policy_path()), "--strict"])
    assert result.exit_code == 0 and "valid" in result.output


def test_a_policy_that_can_never_trade_says_so(monkeypatch) -> None:
    """200 USDT per trade on 300 USDT of equity is 67 %: every entry would be OUT_OF_ZONE."""
    policy = StaticPolicy.from_toml(default_policy_path())
    assert never_trades(policy, 10_000.0) is None
    line = never_trades(policy, 300.0)
    assert line is not None and "can never trade" in line and "OUT_OF_ZONE" in line
    args = ["policy", "check", str(default_policy_path()), "--equity", "300"]
    relaxed = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert relaxed.exit_code == 0 and len(relaxed.output.strip().splitlines()) == 1
    assert "never trades" in relaxed.output
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1 and "can never trade" in strict.output
    assert run_main(monkeypatch, *args[:3], "--equity", "0") == 2  # a user error, one line
