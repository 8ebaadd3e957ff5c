"""`qctl audit` as a user runs it: exit codes, formats, baseline, config errors, the project's own rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qctl.cli import app

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "examples" / "legacy_trader"
runner = CliRunner()


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The installed entry point in a subprocess: the exit code a CI job sees."""
    return subprocess.run(
        [sys.executable, "-m", "qctl.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip


def test_help_teaches() -> None:
    result = runner.invoke(app, ["audit", "--help"])
    assert result.exit_code == 0
    for word in (
        "--format",
        "--baseline",
        "--write-baseline",
        "--fail-on",
        "qctl: ignore",
        "Exit codes",
    ):
        assert word in result.output


def test_findings_exit_1_and_clean_exits_0(tmp_path: Path) -> None:
    (tmp_path / "bot.py").write_text("LEVERAGE = 10\n")
    (tmp_path / "clean.py").write_text("PORT = 8080\n")
    assert _run("audit", "bot.py", "--no-cache", cwd=tmp_path).returncode == 1
    assert _run("audit", "clean.py", "--no-cache", cwd=tmp_path).returncode == 0
    assert _run("audit", "bot.py", "--no-cache", "--fail-on", "error", cwd=tmp_path).returncode == 0
    assert _run("audit", "bot.py", "--no-cache", "--fail-on", "never", cwd=tmp_path).returncode == 0


def test_config_error_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "qctl.toml").write_text("[audit]\nseverity = { leverage = 'fatal' }\n")
    (tmp_path / "bot.py").write_text("LEVERAGE = 10\n")
    proc = _run("audit", "bot.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    proc = _run("audit", "--format", "yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_json_output_of_the_fixture() -> None:
    proc = _run("audit", str(FIXTURE), "--format", "json", "--no-cache")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    categories = {f["category"] for f in data["findings"]}
    assert {
        "leverage",
        "position_sizing",
        "symbol_selection",
        "harvest",
        "kill_score",
    } <= categories


def test_baseline_round_trip(tmp_path: Path) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text("LEVERAGE = 10\nT1_R = 2.0\n")
    assert (
        _run("audit", ".", "--write-baseline", "base.json", "--no-cache", cwd=tmp_path).returncode
        == 0
    )
    assert _run("audit", ".", "--baseline", "base.json", "--no-cache", cwd=tmp_path).returncode == 0
    bot.write_text("# a new comment above moves every line\n\nLEVERAGE = 10\nT1_R = 2.0\n")
    assert _run("audit", ".", "--baseline", "base.json", "--no-cache", cwd=tmp_path).returncode == 0
    bot.write_text("LEVERAGE = 10\nT1_R = 2.0\nKILL_THRESHOLD = 0.6\n")
    proc = _run(
        "audit", ".", "--baseline", "base.json", "--format", "json", "--no-cache", cwd=tmp_path
    )
    assert proc.returncode == 1
    assert [f["name"] for f in json.loads(proc.stdout)["findings"]] == ["KILL_THRESHOLD"]


def test_corrupt_baseline_exits_2(tmp_path: Path) -> None:
    (tmp_path / "base.json").write_text("{nope")
    (tmp_path / "bot.py").write_text("LEVERAGE = 10\n")
    proc = _run("audit", ".", "--baseline", "base.json", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_table_report_and_summary_of_the_fixture() -> None:
    proc = _run("audit", str(FIXTURE), "--no-cache")
    assert proc.returncode == 1
    assert "ai_engine/service.py" in proc.stdout
    assert "Leverage" in proc.stdout


@pytest.mark.parametrize("fmt", ["sarif", "github", "csv"])
def test_other_formats_write_to_file(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    proc = _run("audit", str(FIXTURE), "--format", fmt, "--output", str(out), "--no-cache")
    assert proc.returncode == 1
    assert out.read_text().strip()


def test_qctl_follows_its_own_rule() -> None:
    """The repository (pyproject's exclusions: the demo bot, benchmarks) holds no trading
    decision above info: engine/ and models/ none at all, the rest (the auditor's own
    confidences and budgets included) none that it reports as one (the project's own rule)."""
    proc = _run("audit", ".", "--format", "json", "--fail-on", "warning", "--no-cache")
    findings = json.loads(proc.stdout)["findings"] if proc.stdout.strip() else []
    above_info = [f for f in findings if f["severity"] != "info" and not f["is_test"]]
    assert above_info == [], "\n".join(
        f"{f['path']}:{f['line']} {f['name']}={f['value']} {f['message']}" for f in above_info
    )
    assert proc.returncode == 0, proc.stderr


def test_sarif_of_the_fixture_is_valid_sarif(tmp_path: Path) -> None:
    import jsonschema

    out = tmp_path / "qctl.sarif"
    proc = _run("audit", str(FIXTURE), "--format", "sarif", "--output", str(out), "--no-cache")
    assert proc.returncode == 1
    schema = json.loads((REPO / "tests" / "audit" / "data" / "sarif-schema-2.1.0.json").read_text())
    document = json.loads(out.read_text())
    jsonschema.Draft4Validator(schema).validate(document)
    results = document["runs"][0]["results"]
    assert len(results) >= 97
    assert all(
        not r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("/")
        for r in results
    )


def test_a_warm_audit_command_loads_neither_the_parser_nor_numpy(tmp_path: Path) -> None:
    """The warm path as a user runs it (the command, not the library): one cache index read,
    no libcst, and no numpy behind the hard limits it compares literals with."""
    cache = tmp_path / "cache"
    probe = (
        "import sys\n"
        "from qctl.cli import main\n"
        f"sys.argv = ['qctl', 'audit', {str(FIXTURE)!r}, '--format', 'json',"
        f" '--fail-on', 'never', '--cache-dir', {str(cache)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(m for m in ('libcst', 'numpy') if m in sys.modules))\n"
    )

    def loaded() -> str:
        out = subprocess.run(
            [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.rsplit("LOADED=", 1)[1].strip()

    assert "libcst" in loaded()  # cold: the files are parsed
    assert loaded() == ""  # warm: neither is imported
