"""`qctl backtest` as a user runs it: defaults on the shipped sample, JSON, HTML report, journal,
and one-line errors with exit code 2."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
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
                 "--equity", "--db", "--report", "--json", "--compare", "--models"):  # fmt: skip
        assert flag in result.output
    assert "Examples" in result.output and "qctl backtest --compare legacy,ai" in result.output


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


def readme_json_keys() -> tuple[list[str], list[str]]:
    """The keys of the two tables of README's "JSON output" section: (run object, metrics)."""
    text = (REPO / "README.md").read_text()
    section = text.split("### JSON output (`--json`)", 1)[1].split("\n## ", 1)[0]
    tables: list[list[str]] = []
    for line in section.splitlines():
        if line.startswith("| key |"):
            tables.append([])
        m = re.match(r"\| `([a-z_]+)` \|", line)
        if m:
            tables[-1].append(m.group(1))
    run_keys, metric_keys = tables
    return run_keys, metric_keys


def check_run_object(run: dict, journal: str | None) -> None:
    """A run object as README documents it: exactly its keys, numbers where numbers are meant."""
    run_keys, metric_keys = readme_json_keys()
    assert list(run) == run_keys
    assert list(run["metrics"]) == metric_keys
    for key, value in run["metrics"].items():
        assert value is None or (type(value) in (int, float) and math.isfinite(value)), key
    for key in ("start_equity_usdt", "end_equity_usdt", "total_return_pct", "max_drawdown_pct",
                "fees_usdt", "trades"):  # fmt: skip
        assert type(run["metrics"][key]) in (int, float), key
    assert run["metrics"]["total_return_pct"] == pytest.approx(
        (run["metrics"]["end_equity_usdt"] / run["metrics"]["start_equity_usdt"] - 1) * 100
    )
    assert all(type(v) is int for v in run["counts"].values())
    assert all(type(v) is int for k in ("skips", "exits", "safety_events") for v in run[k].values())
    assert run["schema_version"] == 1 and run["journal"] == journal


def test_json_output_follows_the_readme_schema(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", *SHORT, "--db", ":memory:", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    check_run_object(payload, None)
    assert payload["symbols"] == ["BTC-USDT", "ETH-USDT"] and payload["funding_modelled"] is True
    assert payload["metrics"]["start_equity_usdt"] == 10_000.0
    assert payload["metrics"]["trades"] > 0 and payload["metrics"]["avg_holding_hours"] > 0
    assert "NO_SIGNAL" in payload["skips"]


def test_models_dir_that_is_not_a_model_set_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder, message in ((tmp_path / "missing", "no such folder"),
                            (tmp_path / "empty", "not a usable model set")):  # fmt: skip
        proc = _run("backtest", "--models", str(folder), "--db", ":memory:", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(folder) in lines[0] and message in lines[0]


@pytest.fixture(scope="module")
def compare_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2,000 hours of four shipped symbols, and a small model set trained on the
    first 1,600 (the bars after that are out of sample)."""
    from engine.venues.candle_files import load_market_data, sample_data_dir
    from models.train import train_models
    from tests.models.conftest import BARS, SMALL, SYMBOLS

    root = tmp_path_factory.mktemp("compare")
    md = load_market_data(sample_data_dir(), symbols=list(SYMBOLS))
    (root / "data" / "ohlcv").mkdir(parents=True)
    (root / "data" / "funding").mkdir()
    train_candles, train_funding = {}, {}
    for sym, sd in md.symbols.items():
        sd.candles.iloc[:2000].to_csv(root / "data" / "ohlcv" / f"binance_usdm_{sym}_1h.csv")
        assert sd.funding is not None
        sd.funding.to_csv(root / "data" / "funding" / f"binance_usdm_{sym}_8h_funding.csv")
        train_candles[sym] = sd.candles.iloc[:BARS].copy()
        end = int(train_candles[sym].index[-1])
        train_funding[sym] = sd.funding.loc[sd.funding.index <= end].copy()
    train_models(train_candles, train_funding, root / "models", SMALL)
    return root


def test_compare_writes_both_runs_to_the_db_and_prints_numbers(compare_workspace: Path) -> None:
    db = compare_workspace / "cmp.db"
    args = ["backtest", "--compare", "legacy,ai", "--models", str(compare_workspace / "models"),
            "--data", str(compare_workspace / "data"), "--db", str(db)]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload["runs"]) == {"legacy", "ai"} and payload["journal"] == str(db)
    for label, run in payload["runs"].items():
        decisions = run.pop("decisions")
        assert isinstance(decisions, dict), label
        check_run_object(run, str(db))
    with sqlite3.connect(db) as conn:
        runs = dict(conn.execute("SELECT id, status FROM run").fetchall())
        per_run = dict(conn.execute("SELECT run_id, COUNT(*) FROM equity GROUP BY run_id"))
    ids = {payload["runs"][k]["run_id"] for k in ("legacy", "ai")}
    assert set(runs) == ids and set(runs.values()) == {"finished"}
    assert set(per_run) == ids and all(n > 0 for n in per_run.values())
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert f"journal: {db}" in shown.output


def test_progress_bar_shows_rate_and_time_left_after_a_second(monkeypatch) -> None:
    import io

    from rich.console import Console

    from qctl import backtest_cmd

    clock = iter([0.0, 0.5, 1.5, 2.0, 3.0])
    monkeypatch.setattr(backtest_cmd.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    bar = backtest_cmd.RunProgress(console, symbol_bars=1_000_000, enabled=True)
    bar(10, 100)  # 0.5 s: nothing shown yet
    assert bar._bar is None
    bar(40, 100)  # 1.5 s: shown, 400,000 symbol-bars in 1.5 s
    assert bar._bar is not None
    task = bar._bar.tasks[0]
    assert task.fields["rate"] == "266,667 symbol-bars/s" and task.completed == 40
    bar.close()
    assert "symbol-bars/s" in out.getvalue()


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


def test_a_policy_that_can_never_trade_says_so_and_fails_under_strict(capsys, monkeypatch):
    from tests.verify.cli import run_main

    args = ("backtest", "--equity", "100", "--db", ":memory:", "--json")
    assert run_main(monkeypatch, *args) == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "can never trade at 100 USDT" in err
    assert run_main(monkeypatch, *args, "--strict") == 1
    capsys.readouterr()
    assert run_main(monkeypatch, "backtest", "--db", ":memory:", "--json", "--strict") == 0
    assert "never trade" not in capsys.readouterr().err
