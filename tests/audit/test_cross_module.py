"""Module constants that say nothing by their names, decided with in another module (audit.imports)."""

from __future__ import annotations

from pathlib import Path

from audit.runner import run_audit
from tests.audit.helpers import CONFIG

CONSTANTS = """\
STAIR_N = 5
GAP_N = 7
EXHAUST_N = 4
PRINTED_N = 9
UNUSED_N = 11
"""
PATTERNS = """\
from config.constants import STAIR_N, PRINTED_N
from config.constants import EXHAUST_N as EXHAUST


def is_staircase(candles):
    recent = candles[-STAIR_N:]
    print("window", PRINTED_N)
    return len(candles) > EXHAUST + 5 and recent
"""
TRADER = """\
import config.constants as c


def should_add(gap):
    return gap > c.GAP_N
"""


def _tree(root: Path) -> Path:
    (root / "config").mkdir(parents=True)
    (root / "strategy").mkdir()
    (root / "config" / "constants.py").write_text(CONSTANTS)
    (root / "strategy" / "patterns.py").write_text(PATTERNS)
    (root / "trader.py").write_text(TRADER)
    return root


def _found(root: Path, **kw: object) -> dict[str, str]:
    result = run_audit([root], CONFIG, display_root=root, jobs=1, **kw)
    return {f.name: f.message for f in result.findings if f.path == "config/constants.py"}


def test_a_constant_used_as_a_decision_elsewhere_is_found(tmp_path: Path) -> None:
    found = _found(_tree(tmp_path / "bot"), use_cache=False)
    assert set(found) == {"STAIR_N", "GAP_N", "EXHAUST_N"}, found
    assert "strategy/patterns.py" in found["STAIR_N"]
    assert "trader.py" in found["GAP_N"]


def test_only_printed_or_unused_constants_stay_quiet(tmp_path: Path) -> None:
    found = _found(_tree(tmp_path / "bot"), use_cache=False)
    assert "PRINTED_N" not in found and "UNUSED_N" not in found


def test_relative_imports_resolve(tmp_path: Path) -> None:
    root = tmp_path / "bot"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "settings.py").write_text("BODY_N = 6\n")
    (root / "pkg" / "signals.py").write_text(
        "from .settings import BODY_N\n\n\ndef signal(bodies):\n    return sum(bodies[-BODY_N:])\n"
    )
    result = run_audit([root], CONFIG, display_root=root, jobs=1, use_cache=False)
    assert [(f.path, f.name) for f in result.findings] == [("pkg/settings.py", "BODY_N")]


def test_the_warm_cache_gives_the_same_findings(tmp_path: Path) -> None:
    root = _tree(tmp_path / "bot")
    cold = _found(root, cache_dir=tmp_path / "cache")
    warm = _found(root, cache_dir=tmp_path / "cache")
    assert cold == warm and cold


def test_a_constant_imported_by_nothing_is_not_reported(tmp_path: Path) -> None:
    root = tmp_path / "bot"
    root.mkdir()
    (root / "constants.py").write_text(CONSTANTS)
    result = run_audit([root], CONFIG, display_root=root, jobs=1, use_cache=False)
    assert result.findings == []


# -- constants a script only shows ----------------------------------------------------------------
SCRIPT = """\
import logging

from trading_client import FuturesClient

LEVERAGE = 10
RISK_PER_TRADE = 0.015
MAX_POSITIONS = 3


def run(client: FuturesClient) -> None:
    logging.info("leverage %sx, risk %s", LEVERAGE, RISK_PER_TRADE)
    client.set_leverage("BTCUSDT", MAX_POSITIONS)
"""


def _script_findings(root: Path) -> set[str]:
    result = run_audit([root], CONFIG, display_root=root, jobs=1, use_cache=False)
    return {f.name for f in result.findings if f.path == "main.py"}


def test_constants_a_script_only_logs_are_not_decisions(tmp_path: Path) -> None:
    root = tmp_path / "bot"
    root.mkdir()
    (root / "main.py").write_text(SCRIPT)
    # MAX_POSITIONS reaches an exchange call; the other two reach only a log line
    assert _script_findings(root) == {"MAX_POSITIONS"}


def test_a_logged_constant_another_module_imports_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "bot"
    root.mkdir()
    (root / "main.py").write_text(SCRIPT)
    (root / "executor.py").write_text(
        "from main import LEVERAGE\n\n\ndef open_position(client):\n"
        "    lev = LEVERAGE\n    client.set_leverage('BTCUSDT', lev)\n"
    )
    (root / "report.py").write_text(
        "import main\n\n\ndef risk():\n    x = main.RISK_PER_TRADE\n    return x\n"
    )
    assert _script_findings(root) == {"MAX_POSITIONS", "LEVERAGE", "RISK_PER_TRADE"}


def test_the_warm_cache_keeps_what_another_module_refers_to(tmp_path: Path) -> None:
    root = tmp_path / "bot"
    root.mkdir()
    (root / "main.py").write_text(SCRIPT)
    (root / "other.py").write_text("from main import *\n\n\ndef f():\n    return 1\n")
    runs = [
        run_audit([root], CONFIG, display_root=root, jobs=1, cache_dir=tmp_path / "cache")
        for _ in range(2)
    ]
    names = [{f.name for f in r.findings if f.path == "main.py"} for r in runs]
    assert names[0] == names[1] == {"MAX_POSITIONS", "LEVERAGE", "RISK_PER_TRADE"}


def test_constants_reached_through_a_star_import_or_a_package_reexport(tmp_path: Path) -> None:
    root = tmp_path / "bot"
    (root / "config").mkdir(parents=True)
    (root / "strategy").mkdir()
    (root / "config" / "constants.py").write_text("STAIR_N = 5\nGAP_N = 7\nSHOWN_N = 9\n")
    (root / "config" / "__init__.py").write_text("from .constants import *\n")
    (root / "strategy" / "stairs.py").write_text(
        "from config.constants import *\n\n\ndef is_staircase(candles):\n"
        "    return candles[-STAIR_N:]\n"
    )
    (root / "strategy" / "gaps.py").write_text(
        "from config import GAP_N, SHOWN_N\n\n\ndef should_add(gap):\n"
        "    print(SHOWN_N)\n    return gap > GAP_N\n"
    )
    result = run_audit([root], CONFIG, display_root=root, jobs=1, use_cache=False)
    found = {f.name for f in result.findings if f.path == "config/constants.py"}
    assert found == {"STAIR_N", "GAP_N"}, found
