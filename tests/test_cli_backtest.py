"""`qctl backtest` as a user runs it: defaults on the shipped sample, JSON, HTML report, journal,
and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from qctl.cli import app
from tests.engine.journal_checks import assert_journal_within_limits

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
SHORT = ["--symbols", "btc,ETHUSDT", "--start", "2025-05-01", "--end", "2025-06-15"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qctl.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip


def test_help() -> None:
    result = runner.invoke(app, ["backtest", "--help"])
    assert result.exit_code == 0
    for flag in ("--policy", "--data", "--symbols", "--timeframe", "--start", "--end",
                 "--equity", "--db", "--report"):  # fmt: skip
        assert flag in result.output


def test_defaults_run_on_the_shipped_sample(tmp_path: Path) -> None:
    db = tmp_path / "qctl.db"
    html = tmp_path / "out" / "report.html"
    result = runner.invoke(app, ["backtest", *SHORT, "--db", str(db), "--report", str(html)])
    assert result.exit_code == 0, result.output
    assert "total return" in result.output and "max drawdown" in result.output
    assert "<svg" in html.read_text()
    with sqlite3.connect(db) as conn:
        (status,) = conn.execute("SELECT status FROM run").fetchone()
        assert status == "finished"
        assert conn.execute("SELECT COUNT(*) FROM equity").fetchone()[0] > 0
    assert_journal_within_limits(db)


def test_json_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", *SHORT, "--db", ":memory:", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["symbols"] == ["BTC-USDT", "ETH-USDT"] and payload["funding"] is True
    assert payload["metrics"]["start_equity"] == 10_000.0
    assert "NO_SIGNAL" in payload["skips"]


def test_user_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    cases = [
        (["backtest", "--data", str(tmp_path / "none")], "data folder not found"),
        (["backtest", "--symbols", "NOPE"], "no usable 1h candles"),
        (["backtest", "--start", "2025-13-01"], "--start"),
        (["backtest", "--equity", "-5"], "--equity"),
        (["backtest", "--policy", str(tmp_path / "p.toml")], "cannot read policy file"),
    ]
    for args, message in cases:
        proc = _run(*args, "--db", ":memory:", cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
