"""The generated accessor: stdlib only, fail closed, and agreeing with engine.policy_file."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from audit.config import AuditConfig
from audit.scan import scan_source
from engine.domain import SafetyLimits
from engine.policy_file import PolicyFileError, load_policy_file, seal
from migrations.accessor import init_accessor, render
from migrations.config import MigrateConfig, load_migrate_config
from migrations.errors import MigrateError
from tests.migrations.helpers import load_module, policy_doc, resealed, write

_counter = iter(range(10_000))


@pytest.fixture
def accessor(tmp_path, monkeypatch):
    monkeypatch.delenv("QCTL_POLICY_FILE", raising=False)
    config = MigrateConfig(root=tmp_path)
    init_accessor(config, [])
    return load_module(config.accessor_file, f"qctl_policy_test_{next(_counter)}")


def _touch(path: Path) -> None:
    """Give each rewrite a distinct mtime, so the mtime cache sees it."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000 * (next(_counter) + 1)))


def test_generated_module_imports_only_the_standard_library(tmp_path):
    text = render(MigrateConfig(root=tmp_path), "BASE-QUOTE")
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(ast.parse(text))
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert imported <= {"__future__", "hashlib", "json", "logging", "math", "os", "re",
                        "threading", "datetime", "typing"}  # fmt: skip


def test_generated_module_keeps_to_88_columns(tmp_path):
    """It lands in the user's repository: a linter with the common default must pass it."""
    text = render(MigrateConfig(root=tmp_path), "BASE/QUOTE:QUOTE")
    assert max(len(line) for line in text.splitlines()) <= 88


def test_bounds_are_rendered_from_the_domain_and_not_flagged(tmp_path):
    text = render(MigrateConfig(root=tmp_path), "BASE-QUOTE", SafetyLimits(max_leverage=20))
    assert "'max_leverage': 20.0" in text
    findings = scan_source(text, "qctl_policy.py", AuditConfig()).findings
    assert [f for f in findings if f.category != "other"] == []


def test_valid_policy_values(accessor, tmp_path):
    write(tmp_path / "qctl_policy.json", policy_doc())
    assert accessor.status() == ("OK", "")
    assert accessor.policy_value("leverage", "BTCUSDT") == 7.5
    assert accessor.policy_value("size_pct", "btc/usdt:USDT") == 0.015
    assert accessor.notional_usd("ETH-USDT", 10_000) == pytest.approx(150.0)
    assert accessor.universe() == ["BTC-USDT", "ETH-USDT"]
    assert accessor.harvest("BTCUSDT") == {
        "harvest_t1_r": 1.8, "harvest_t2_r": 3.2, "harvest_t3_r": 5.5, "harvest_lock_r": 1.2,
    }  # fmt: skip
    assert accessor.kill_due(0.7, "BTCUSDT") and not accessor.kill_due(0.5, "BTCUSDT")
    assert accessor.policy_value("leverage", "SOLUSDT") is None
    with pytest.raises(accessor.PolicySkip, match="MISSING_VALUE"):
        accessor.policy_value_or_skip("leverage", "SOLUSDT")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: None, "MODEL_MISSING"),
        (lambda: "{not json", "MODEL_CORRUPT"),
        (lambda: json.dumps(policy_doc()).replace("7.5", "NaN"), "MODEL_CORRUPT"),
        (lambda: {**policy_doc(), "schema": "qctl.policy/v0"}, "MODEL_CORRUPT"),
        (lambda: json.loads(json.dumps(policy_doc()).replace("7.5", "9.5")), "MODEL_CORRUPT"),
        (lambda: policy_doc(age_ms=48 * 3_600_000), "MODEL_STALE"),
        (lambda: resealed(policy_doc(), leverage=200.0), "OUT_OF_ZONE"),
        (lambda: resealed(policy_doc(), size_pct=0.6), "OUT_OF_ZONE"),
        (lambda: resealed(policy_doc(), kill_threshold=0.95), "OUT_OF_ZONE"),
        (lambda: resealed(policy_doc(), harvest_t2_r=9.0), "OUT_OF_ZONE"),
        (lambda: seal({**policy_doc(), "limits": {**policy_doc()["limits"], "max_leverage": 150.0}}),
         "OUT_OF_ZONE"),
    ],
    ids=["missing", "not-json", "nan", "schema", "hash", "stale", "leverage", "size", "kill",
         "ladder", "looser-limit"],
)  # fmt: skip
def test_refused_files_skip_and_agree_with_the_reference_reader(accessor, tmp_path, make, reason):
    doc = make()
    path = tmp_path / "qctl_policy.json"
    if doc is not None:
        write(path, doc)
    assert accessor.status()[0] == reason
    assert accessor.policy_value("leverage", "BTCUSDT") is None
    assert accessor.universe() is None
    assert accessor.kill_due(0.99, "BTCUSDT") is False
    with pytest.raises(accessor.PolicySkip, match=reason):
        accessor.policy_value_or_skip("leverage", "BTCUSDT")
    with pytest.raises(PolicyFileError):
        load_policy_file(path)


def test_reloads_when_the_file_changes(accessor, tmp_path):
    path = write(tmp_path / "qctl_policy.json", policy_doc())
    assert accessor.policy_value("leverage", "BTCUSDT") == 7.5
    write(path, resealed(policy_doc(), leverage=3.0))
    _touch(path)
    assert accessor.policy_value("leverage", "BTCUSDT") == 3.0


def test_env_var_and_repo_relative_path(accessor, tmp_path, monkeypatch):
    other = write(tmp_path / "elsewhere.json", resealed(policy_doc(), leverage=4.0))
    monkeypatch.setenv("QCTL_POLICY_FILE", str(other))
    assert accessor.policy_value("leverage", "BTCUSDT") == 4.0
    monkeypatch.delenv("QCTL_POLICY_FILE")
    monkeypatch.chdir(tmp_path.parent)  # not the repository: the path is repo-relative
    write(tmp_path / "qctl_policy.json", policy_doc())
    assert accessor.policy_value("leverage", "BTCUSDT") == 7.5


def test_config_places_the_module_and_spells_symbols(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.qctl.migrate]\naccessor-path = "src/bot/policy_access.py"\n'
        'accessor-module = "bot.policy_access"\nsymbol-format = "BASE/QUOTE:QUOTE"\n'
        'policy-file = "run/policy.json"\n',
        "utf-8",
    )
    config = load_migrate_config(tmp_path)
    result = init_accessor(config, [])
    assert (
        result.path == tmp_path / "src/bot/policy_access.py"
        and result.module == "bot.policy_access"
    )
    (tmp_path / "run").mkdir()
    write(tmp_path / "run/policy.json", policy_doc())
    module = load_module(result.path, f"policy_access_{next(_counter)}")
    assert module.universe() == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert init_accessor(config, []).action == "unchanged"


def test_init_keeps_a_foreign_module(tmp_path):
    (tmp_path / "qctl_policy.py").write_text("VALUE = 1\n", "utf-8")
    with pytest.raises(MigrateError, match="not written by qctl"):
        init_accessor(MigrateConfig(root=tmp_path), [])
    assert init_accessor(MigrateConfig(root=tmp_path), [], force=True).action == "updated"


def test_bad_config_is_one_line_error(tmp_path):
    (tmp_path / "qctl.toml").write_text('[migrate]\naccessor-path = "../x.py"\n', "utf-8")
    with pytest.raises(MigrateError, match="inside the repository"):
        load_migrate_config(tmp_path)


def test_levels_clamps_and_notional_fail_closed(accessor, tmp_path, monkeypatch):
    # no policy file: no level is reached, no notional, a clamp still clips to the hard limits
    assert accessor.reached("kill_reduce_threshold", 0.99, "BTCUSDT") is False
    assert accessor.notional_usd("BTCUSDT", 10_000.0) is None
    with pytest.raises(accessor.PolicySkip):
        accessor.notional_usd_or_skip("BTCUSDT", 10_000.0)
    assert accessor.clamp("leverage", 500.0) == SafetyLimits().max_leverage
    assert accessor.clamp("leverage", 0.2) == 1.0
    assert accessor.clamp("size_pct", 0.9) == SafetyLimits().max_position_size_pct / 100
    with pytest.raises(accessor.PolicySkip):
        accessor.clamp("leverage", float("nan"))
    with pytest.raises(KeyError):
        accessor.clamp("kill_threshold", 0.5)

    write(tmp_path / "qctl_policy.json", policy_doc())
    assert accessor.reached("kill_reduce_threshold", 0.5, "BTCUSDT") is True
    assert accessor.reached("kill_reduce_threshold", 0.49, "BTCUSDT") is False
    assert accessor.reached("kill_reduce_threshold", 0.99, "DOGEUSDT") is False  # not in policy
    assert accessor.notional_usd("BTCUSDT", None) is None
    assert accessor.notional_usd_or_skip("BTCUSDT", 10_000.0) == pytest.approx(150.0)
    assert accessor.policy_value("harvest_t1_close_frac", "BTCUSDT") == 0.4
    assert accessor.policy_value("max_hold_sec", "ETHUSDT") == 86_400.0


@pytest.mark.parametrize(
    "values",
    [
        {"harvest_t1_close_frac": 0.0},
        {"harvest_t2_close_frac": 1.5},
        {"kill_reduce_frac": 1.0},
        {"max_hold_sec": 0.0},
        {"kill_reduce_threshold": 0.7},  # above the kill threshold 0.62
    ],
)
def test_new_values_out_of_bounds_are_refused(accessor, tmp_path, values):
    path = write(tmp_path / "qctl_policy.json", resealed(policy_doc(), **values))
    _touch(path)
    assert accessor.status()[0] == "OUT_OF_ZONE"
    with pytest.raises(PolicyFileError):
        load_policy_file(path)
