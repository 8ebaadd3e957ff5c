"""`qctl verify` and `qctl policy` as CI runs them: help, exit codes, JSON, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.journal.invariants import JOURNAL_CHECKS
from engine.policy_file import read_document, seal, write_policy_file
from qctl.cli import app
from tests.verify.cli import run_main
from tests.verify.seed import TIERS, seeded_db

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "policy.example.json"

LEGACY_SNIPPET = (
    "def size():\n    leverage = 10.0  # fallback if RL agent fails\n    return leverage\n"
)


@pytest.mark.parametrize(
    "args",
    [
        ["policy", "--help"],
        ["policy", "publish", "--help"],
        ["policy", "check", "--help"],
        ["policy", "seal", "--help"],
        ["verify", "--help"],
    ],  # fmt: skip
)
def test_help_exits_0(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def test_verify_help_names_every_check_and_option() -> None:
    out = runner.invoke(app, ["verify", "--help"], env={"COLUMNS": "200"}).output
    for word in ("audit", "journal", "variation", "drill", "policy", "--only", "--junit",
                 "--baseline", "--audit-path", "--db", "--format"):  # fmt: skip
        assert word in out


def _fresh_policy(tmp_path: Path) -> Path:
    """The shipped example with fresh times (it is a hand-edited file: re-seal after editing)."""
    from engine.policy_file import iso_utc, now_ms

    doc = read_document(EXAMPLE)
    doc["created_at"] = iso_utc(now_ms())
    doc["valid_until"] = iso_utc(now_ms() + 3_600_000)
    path = tmp_path / "qctl_policy.json"
    write_policy_file(seal(doc), path)
    return path


def test_full_run_passes_and_junit_names_each_check(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./qctl_models, ./qctl.db... of the caller's folder
    code_dir = tmp_path / "src"
    code_dir.mkdir()
    (code_dir / "ok.py").write_text("def add(a, b):\n    return a + b\n")
    db = seeded_db(tmp_path / "qctl.db")
    junit = tmp_path / "reports" / "verify.xml"
    args = ["verify", "--db", str(db), "--audit-path", str(code_dir), "--policy-file",
            str(_fresh_policy(tmp_path)), "--tiers", str(TIERS), "--drill-bars", "300",
            "--junit", str(junit), "--format", "json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    names = [c["name"] for c in payload["checks"]]
    assert names == ["audit", *JOURNAL_CHECKS, "variation", "drill", "policy"]
    assert {c["status"] for c in payload["checks"]} == {"pass"}

    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite.get("tests") == str(len(names)) and suite.get("failures") == "0"
    assert [tc.get("name") for tc in suite.iter("testcase")] == names
    assert all(tc.find("failure") is None for tc in suite.iter("testcase"))


def test_junit_marks_the_failed_check(tmp_path: Path) -> None:
    db = seeded_db(tmp_path / "qctl.db", "exposure")
    junit = tmp_path / "verify.xml"
    result = runner.invoke(app, ["verify", "--only", "journal", "--db", str(db), "--tiers",
                                 str(TIERS), "--junit", str(junit)])  # fmt: skip
    assert result.exit_code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "1"
    failed = [tc for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failed] == ["journal.exposure"]
    assert "exposure 2.5000 (ACTIVE)" in failed[0].find("failure").text


def test_audit_gate_fails_on_a_new_finding_and_a_baseline_accepts_it(tmp_path: Path) -> None:
    code_dir = tmp_path / "legacy"
    code_dir.mkdir()
    (code_dir / "trader.py").write_text(LEGACY_SNIPPET)
    result = runner.invoke(app, ["verify", "--only", "audit", "--audit-path", str(code_dir),
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code == 1
    check = json.loads(result.output)["checks"][0]
    assert check["name"] == "audit" and check["status"] == "fail"
    assert check["data"]["by_category"] == {"leverage": 1}
    assert "trader.py:2" in check["details"][0]

    baseline = tmp_path / "baseline.json"
    assert (
        runner.invoke(app, ["audit", str(code_dir), "--write-baseline", str(baseline)]).exit_code
        == 0
    )
    result = runner.invoke(app, ["verify", "--only", "audit", "--audit-path", str(code_dir),
                                 "--baseline", str(baseline)])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_policy_check_fails_a_stale_file_and_skips_when_absent(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QCTL_POLICY_FILE", raising=False)
    result = runner.invoke(app, ["verify", "--only", "policy", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["checks"][0]["status"] == "skip"
    stale = tmp_path / "stale.json"
    doc = read_document(EXAMPLE)
    doc["valid_until"] = "2020-01-01T00:00:00Z"
    write_policy_file(seal(doc), stale)
    result = runner.invoke(app, ["verify", "--only", "policy", "--policy-file", str(stale),
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code == 1
    assert "in the past" in json.loads(result.output)["checks"][0]["summary"]
    missing = runner.invoke(app, ["verify", "--only", "policy", "--policy-file", "nope.json"])
    assert missing.exit_code == 1


def test_policy_publish_static_check_and_seal(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "p.json"
    result = runner.invoke(app, ["policy", "publish", "--policy", str(REPO / "examples" /
                                 "legacy_policy.toml"), "--symbols", "BTC,ETH", "--end",
                                 "2026-05-14T01:00", "--out", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["source"]["kind"] == "static" and doc == read_document(out)
    assert doc["source"]["as_of"] == "2026-05-14T00:00:00Z"  # the last refresh bar before --end
    assert {s: v["leverage"] for s, v in doc["symbols"].items()} == {
        "BTC-USDT": 10.0,
        "ETH-USDT": 10.0,
    }
    assert runner.invoke(app, ["policy", "check", str(out)]).exit_code == 0

    text = out.read_text().replace('"schema": "qctl.policy/v1"', '"schema": "qctl.policy/v9"')
    out.write_text(text)
    result = runner.invoke(app, ["policy", "check", str(out), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["problems"] == [
        "schema: is 'qctl.policy/v9', this qctl reads 'qctl.policy/v1'"
    ]
    out.write_text(text.replace("qctl.policy/v9", "qctl.policy/v1"))
    assert runner.invoke(app, ["policy", "check", str(out)]).exit_code == 0

    edited = json.loads(out.read_text())
    edited["source"]["policy"] = "legacy, reviewed"
    out.write_text(json.dumps(edited))
    assert runner.invoke(app, ["policy", "check", str(out)]).exit_code == 1  # hash mismatch
    assert runner.invoke(app, ["policy", "seal", str(out)]).exit_code == 0
    assert runner.invoke(app, ["policy", "check", str(out)]).exit_code == 0

    assert run_main(monkeypatch, "policy", "publish", "--out", str(out)) == 2
    assert (
        run_main(monkeypatch, "policy", "publish", "--policy", "nope.toml", "--out", str(out)) == 2
    )
    assert run_main(monkeypatch, "policy", "check", str(out), "--now", "yesterday") == 2
