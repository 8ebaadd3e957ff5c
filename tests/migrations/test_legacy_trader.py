"""End to end on a copy of examples/legacy_trader: init, phases 1-4, audit, behaviour, rollback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from audit.runner import run_audit
from migrations import api
from migrations.config import load_audit_config
from migrations.errors import MigrateError
from tests.migrations.helpers import policy_doc, write

FIXTURE = Path(__file__).resolve().parents[2] / "examples" / "legacy_trader"
MIGRATED = {"leverage", "position_sizing", "symbol_selection", "harvest", "kill_score"}

# What stays open after phases 1-4, and why (README, "What the phases leave to you").
REMAINING = {
    # heuristics, not fallbacks: replace ai_engine/leverage.py by the policy by hand
    ("ai_engine/leverage.py", "LEVERAGE_TARGET_VOL"), ("ai_engine/leverage.py", "FULL_SIZE_CONFIDENCE"),
    ("ai_engine/leverage.py", "confidence"), ("ai_engine/leverage.py", "lev"),
    ("ai_engine/leverage.py", "tier_size_multiplier"), ("ai_engine/leverage.py", "size_scale"),
    # start-up settings and governor limits read at import time: no symbol, nowhere to skip to
    ("config/settings.py", "MAX_LEVERAGE"), ("config/settings.py", "DEFAULT_LEVERAGE"),
    ("config/settings.py", "POSITION_SIZE_PCT"), ("config/settings.py", "MAX_OPEN_POSITIONS"),
    ("risk/governor.py", "GOV_MAX_NOTIONAL_PER_TRADE_USDT"),
    ("risk/governor.py", "GOV_MAX_NOTIONAL_PER_SYMBOL_USDT"), ("risk/governor.py", "GOV_MAX_LEVERAGE"),
    # no policy key: partial-close fractions, holding times, graded kill levels
    ("harvest/apply.py", "T1_CLOSE_FRACTION"), ("harvest/apply.py", "T2_CLOSE_FRACTION"),
    ("harvest/kernel.py", "max_hold_sec"), ("harvest/kernel.py", "max_age_sec"),
    ("harvest/apply.py", "KILL_SCORE_WARN"), ("harvest/apply.py", "KILL_SCORE_REDUCE"),
    ("harvest/apply.py", "KILL_SCORE_PANIC"), ("harvest/apply.py", "KILL_REDUCE_FRACTION"),
}  # fmt: skip

SCENARIO = textwrap.dedent(
    """
    import json, logging, sys
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import qctl_policy
    from ai_engine.service import AIEngineService, RLAgentClient, Signal
    from common.cache import TTLCache
    from execution.client import PaperClient
    from execution.orders import OrderRouter
    from harvest.apply import kill_level
    from harvest.publisher import ThetaPublisher
    from risk.governor import Governor
    from risk.safety import AccountState
    from universe.select_universe import select_universe

    client = PaperClient()
    service = AIEngineService(RLAgentClient(TTLCache()), OrderRouter(client), Governor())
    account = AccountState(equity_usdt=10000.0, used_margin_usdt=0.0, open_notional_usdt=0.0)
    orders = service.process_signal(Signal("BTCUSDT", "BUY", 0.7, 60000.0, 0.03), account)
    try:
        ladder = ThetaPublisher(TTLCache()).latest("BTCUSDT").as_dict()
    except qctl_policy.PolicySkip as exc:
        ladder = str(exc)
    print(json.dumps({
        "orders": len(orders or []), "sent": len(client.orders), "leverage": client.leverage,
        "universe": select_universe([]), "ladder": ladder,
        "kill": kill_level(0.7, symbol="BTCUSDT"),
    }))
    """
)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "legacy_trader"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns(".qctl_cache", "__pycache__"))
    return target


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".qctl_cache" not in p.parts
    }


def _open_findings(root: Path) -> set[tuple[str, str]]:
    config = load_audit_config(root)
    result = run_audit([root], config, display_root=root, use_cache=False, jobs=1)
    return {
        (f.path, f.name) for f in result.findings if str(f.category) in MIGRATED and not f.is_test
    }


def _run(root: Path, args: list[str], policy: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QCTL_POLICY_FILE"}
    env["QCTL_POLICY_FILE"] = str(policy) if policy else str(root / "no-such-policy.json")
    env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_phases_1_to_4_on_legacy_trader(tmp_path):
    root = _copy(tmp_path)
    original = _snapshot(root)
    before = _open_findings(root)
    api.init(root)

    for phase in "1234":
        assert api.apply(root, phase, write=True).files, f"phase {phase} changed nothing"
    status = api.status(root)
    assert [s.applied for s in status] == [True, True, True, True]
    assert status[1].open_findings == []  # the universe phase leaves nothing behind
    assert {f.name for f in status[3].open_findings} == {
        "KILL_SCORE_WARN", "KILL_SCORE_REDUCE", "KILL_SCORE_PANIC", "KILL_REDUCE_FRACTION",
    }  # fmt: skip
    assert not any(str(f.category) == "safety_limit" for s in status for f in s.open_findings)
    migrated = _snapshot(root)
    for untouched in ("risk/safety.py", "config/settings.py", "tests/test_governor.py"):
        assert migrated[untouched] == original[untouched]  # declared hard limits, tests
    after = _open_findings(root)
    assert after == REMAINING, sorted(after ^ REMAINING)
    assert len(before) > len(after)
    assert api.init(root, force=True).action == "unchanged"  # spelling kept: BASEQUOTE
    for phase in "1234":  # a second application is a no-op
        again = api.apply(root, phase, write=True)
        assert again.files == [] and again.diff == ""

    policy = write(tmp_path / "policy.json", policy_doc(("BTC-USDT", "ETH-USDT")))
    tests = _run(root, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], policy)
    assert tests.returncode == 0, tests.stdout + tests.stderr

    with_policy = _run(root, ["-c", SCENARIO], policy)
    assert with_policy.returncode == 0, with_policy.stderr
    result = __import__("json").loads(with_policy.stdout)
    assert result["orders"] == 3 and result["sent"] == 3
    assert result["leverage"] == {"BTCUSDT": 7}
    assert result["universe"] == ["BTCUSDT", "ETHUSDT"]
    assert result["ladder"]["T1_R"] == 1.8 and result["kill"] == "close"

    without = _run(root, ["-c", SCENARIO], None)
    assert without.returncode == 0, without.stderr
    skipped = __import__("json").loads(without.stdout)
    assert skipped["orders"] == 0 and skipped["sent"] == 0 and skipped["leverage"] == {}
    assert skipped["universe"] == [] and "MODEL_MISSING" in skipped["ladder"]
    assert skipped["kill"] != "close"
    assert "SKIP MODEL_MISSING: no policy leverage for BTCUSDT" in without.stderr

    for phase in "4321":
        api.rollback(root, phase)
    restored = _snapshot(root)
    for extra in ("qctl_policy.py", ".qctl/migrations.db", ".qctl/.gitignore"):
        restored.pop(extra)
    assert restored == original


@pytest.mark.slow
def test_rollback_refuses_a_file_changed_since(tmp_path):
    root = _copy(tmp_path)
    api.init(root)
    api.apply(root, "2", write=True)
    target = root / "universe" / "select_universe.py"
    target.write_text(target.read_text("utf-8") + "\n# edited by hand\n", "utf-8")
    with pytest.raises(MigrateError, match="changed since phase 2"):
        api.rollback(root, "2")
    with pytest.raises(MigrateError, match="not applied"):
        api.rollback(root, "4")


@pytest.mark.slow
def test_dirty_git_tree_is_refused(tmp_path):
    root = _copy(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "legacy"], cwd=root, check=True)
    api.init(root)  # qctl's own files do not make the tree dirty
    api.apply(root, "2", write=True)
    api.apply(root, "4", write=True)  # nor do phases already applied
    (root / "risk" / "governor.py").write_text("# local edit\n", "utf-8")
    with pytest.raises(MigrateError, match="uncommitted changes in risk/governor.py"):
        api.apply(root, "1", write=True)
    assert api.apply(root, "1", write=True, allow_dirty=True).written
