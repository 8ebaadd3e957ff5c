"""The auditor survives any file: hostile nesting, huge files, slow files and dying workers.

Each hostile input is generated here. The CLI runs in a subprocess with a timeout, so a regression
(a crash, a hang) fails fast instead of hanging the suite; no test asserts a wall-clock speed.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from audit import runner
from audit.config import ConfigError, config_from_table
from audit.finding import PARSE_ERROR_RULE
from audit.runner import SourceFile, run_audit
from tests.audit.helpers import CONFIG

REPO = Path(__file__).resolve().parents[2]
QCTL = [sys.executable, "-m", "qctl.cli"]
# Generous: the point is "finishes", not "finishes fast"; a hang or a crash fails the test.
LIMIT_SECONDS = 240


def _hostile_tree(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "good.py").write_text("LEVERAGE = 10\n", "utf-8")
    (root / "parens.py").write_text("LEVERAGE = " + "(" * 3000 + "1" + ")" * 3000 + "\n", "utf-8")
    (root / "lists.py").write_text("X = " + "[" * 50_000 + "]" * 50_000 + "\n", "utf-8")
    (root / "terms.py").write_text("LEVERAGE = " + "+".join(["1"] * 50_000) + "\n", "utf-8")
    # a generated data module just under the 5 MB default byte limit
    rows = [f"LEVERAGE_{i} = {i % 50 + 1}.5  # generated" for i in range(140_000)]
    text = "\n".join(rows) + "\n"
    assert 4_500_000 < len(text) < 5_000_000
    (root / "generated.py").write_text(text, "utf-8")


def _audit_json(args: list[str], cwd: Path) -> tuple[int, dict]:
    proc = subprocess.run(
        [*QCTL, "audit", *args, "--format", "json", "--no-cache", "--fail-on", "never"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=LIMIT_SECONDS,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def _errors(findings: list[dict]) -> dict[str, str]:
    return {f["path"]: f["message"] for f in findings if f["rule_id"] == PARSE_ERROR_RULE}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_hostile_files_become_entries_and_the_tree_is_audited(tmp_path: Path, jobs: str) -> None:
    tree = tmp_path / "tree"
    _hostile_tree(tree)
    if jobs == "2":  # enough files that the audit fans out to worker processes
        for i in range(runner.PARALLEL_THRESHOLD):
            (tree / f"plain_{i}.py").write_text(f"LEVERAGE_{i} = {i + 2}\n", "utf-8")
    _code, data = _audit_json([str(tree), "--jobs", jobs], tmp_path)
    errors = _errors(data["findings"])
    assert (
        errors["tree/parens.py"] == "nesting too deep: 3,000 nested brackets (Python accepts 200)"
    )
    assert (
        errors["tree/lists.py"] == "nesting too deep: 50,000 nested brackets (Python accepts 200)"
    )
    assert errors["tree/terms.py"].startswith("nesting too deep")
    assert errors["tree/generated.py"].startswith("too large/slow to audit: ")
    assert "tokens, over the budget of 200,000 per file" in errors["tree/generated.py"]
    assert "tree/good.py" not in errors
    found = {(f["path"], f["name"]) for f in data["findings"] if f["rule_id"] != PARSE_ERROR_RULE}
    assert ("tree/good.py", "LEVERAGE") in found
    if jobs == "2":
        assert ("tree/plain_7.py", "LEVERAGE_7") in found


def _sources(root: Path, names: list[str]) -> list[tuple[SourceFile, str]]:
    out = []
    for name in names:
        path = root / name
        path.write_text(f"LEVERAGE = {len(name)}\n", "utf-8")
        out.append((SourceFile(str(path), name, name), ""))
    return out


def _by_file(outcomes) -> dict[str, list]:
    return {o.rel: o.findings for o in outcomes}


def test_a_worker_that_dies_is_reported_and_the_rest_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = runner.audit_file

    def crashing(source, config, key="", prefilter=None):  # noqa: ANN001, ANN202
        if source.shown == "crash.py":
            faulthandler.disable()  # the test runner's crash dump would only add noise
            os.kill(os.getpid(), signal.SIGSEGV)  # what libcst's native parser did on deep nesting
        return real(source, config, key, prefilter)

    monkeypatch.setattr(runner, "audit_file", crashing)  # forked workers inherit the patch
    names = ["a.py", "crash.py", "b.py", "c.py", "d.py"]
    pool = runner._WorkerPool(2, replace(CONFIG, root=str(tmp_path)), None)
    outcomes = _by_file(pool.run(_sources(tmp_path, names)))
    assert sorted(outcomes) == sorted(names)
    (crash,) = outcomes["crash.py"]
    assert crash.rule_id == PARSE_ERROR_RULE
    assert "audit worker process died (SIGSEGV)" in crash.message
    for name in ("a.py", "b.py", "c.py", "d.py"):
        assert [f.name for f in outcomes[name]] == ["LEVERAGE"]


def _slow_scan(*_args: object, **_kw: object) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # Python bytecode: the per-file alarm can interrupt it
        pass
    raise AssertionError("the per-file time budget did not stop the scan")


def test_a_slow_file_is_stopped_by_its_budget_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audit.scan

    (tmp_path / "slow.py").write_text("LEVERAGE = 10\n", "utf-8")
    monkeypatch.setattr(audit.scan, "scan_source", _slow_scan)
    config = replace(CONFIG, root=str(tmp_path), max_file_seconds=0.5)
    cache = tmp_path / ".cache"
    result = run_audit([tmp_path], config, cache_dir=cache, display_root=tmp_path, jobs=1)
    (error,) = result.findings
    assert error.message == (
        "too large/slow to audit: still scanning after 0.5 s (the max-file-seconds budget)"
    )
    # the verdict is cached like any other; a new budget is a new config, so the file is re-audited
    monkeypatch.undo()
    again = run_audit(
        [tmp_path], replace(config, max_file_seconds=60), cache_dir=cache, display_root=tmp_path
    )
    assert [f.name for f in again.findings] == ["LEVERAGE"]


def test_a_worker_stuck_past_its_budget_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = runner.audit_file

    def stuck(source, config, key="", prefilter=None):  # noqa: ANN001, ANN202
        if source.shown == "stuck.py":
            signal.signal(signal.SIGALRM, signal.SIG_IGN)  # as if stuck in native code
            time.sleep(120)
        return real(source, config, key, prefilter)

    monkeypatch.setattr(runner, "audit_file", stuck)
    monkeypatch.setattr(runner, "STUCK_WORKER_GRACE_SECONDS", 0.5)
    config = replace(CONFIG, root=str(tmp_path), max_file_seconds=0.5)
    names = ["a.py", "stuck.py", "b.py"]
    outcomes = _by_file(runner._WorkerPool(2, config, None).run(_sources(tmp_path, names)))
    (error,) = outcomes["stuck.py"]
    assert error.message.startswith("too large/slow to audit: still scanning after ")
    assert error.message.endswith("(max-file-seconds is 0.5)")
    assert [f.name for f in outcomes["b.py"]] == ["LEVERAGE"]


def test_a_file_over_the_memory_budget_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audit.scan

    def hungry(*_args: object, **_kw: object) -> None:
        hoard = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GB, over a 256 MB budget
        raise AssertionError(f"the memory budget did not stop the scan ({len(hoard)})")

    monkeypatch.setattr(audit.scan, "scan_source", hungry)
    config = replace(CONFIG, root=str(tmp_path), max_file_mb=256)
    outcomes = _by_file(runner._WorkerPool(1, config, None).run(_sources(tmp_path, ["big.py"])))
    (error,) = outcomes["big.py"]
    assert error.message == "too large/slow to audit: ran out of memory while scanning"


def test_budgets_are_read_from_config_and_checked(tmp_path: Path) -> None:
    config = config_from_table(
        {"max-file-tokens": 1000, "max-file-seconds": 2.5, "max-file-mb": 512}, root=tmp_path
    )
    assert (config.max_file_tokens, config.max_file_seconds, config.max_file_mb) == (
        1000,
        2.5,
        512,
    )
    with pytest.raises(ConfigError, match="max-file-tokens"):
        config_from_table({"max-file-tokens": 0}, root=tmp_path)
    with pytest.raises(ConfigError, match="max-file-mb"):
        config_from_table({"max-file-mb": 1.5}, root=tmp_path)
    (tmp_path / "long.py").write_text("X = [" + "1, " * 600 + "]\n", "utf-8")
    result = run_audit(
        [tmp_path], replace(config, root=str(tmp_path)), use_cache=False, display_root=tmp_path
    )
    (error,) = result.findings
    assert error.message.startswith(
        "too large/slow to audit: 1,204 tokens, over the budget of 1,000 per file"
    )


_DEEP_SHAPES = {
    "not": lambda n: "X = " + "not " * n + "y",
    "minus": lambda n: "X = " + "-" * n + "1",
    "attributes": lambda n: "X = a" + ".b" * n,
    "calls": lambda n: "X = f" + "()" * n,
    "subscripts": lambda n: "X = a" + "[0]" * n,
    "power": lambda n: "X = " + "**".join(["2"] * n),
    "conditional": lambda n: "X = " + "1 if y else " * n + "2",
    "lambdas": lambda n: "X = " + "lambda: " * n + "1",
    "dicts": lambda n: "X = " + "{1: " * n + "1" + "}" * n,
}


def test_every_deep_shape_is_an_entry_not_a_crash(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, make in _DEEP_SHAPES.items():
        for depth in (5_000, 50_000):
            (tree / f"{name}_{depth}.py").write_text(make(depth) + "\n", "utf-8")
    (tree / "good.py").write_text("LEVERAGE = 10\n", "utf-8")
    _code, data = _audit_json([str(tree), "--jobs", "1"], tmp_path)
    errors = _errors(data["findings"])
    assert len(errors) == 2 * len(_DEEP_SHAPES)
    for path, message in errors.items():
        assert message.startswith(("nesting too deep", "too large/slow to audit")), (path, message)
    assert any(f["path"] == "tree/good.py" for f in data["findings"])
