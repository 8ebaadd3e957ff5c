"""The stdlib accessor `qctl migrate init` writes into user repositories and the reference reader
`engine.policy_file` accept and refuse the same files, for the same reason, and read the same
values."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from engine.domain import Decision, HarvestLadder, Side, SkipReason
from engine.policy_file import (
    PolicyFileError,
    build_document,
    load_policy_file,
    now_ms,
    seal,
    write_policy_file,
)
from migrations.accessor import render
from migrations.config import MigrateConfig

HOUR_MS = 3_600_000


def _doc(created_ms: int) -> dict:
    def entry(symbol: str, lev: float, size: float, t1: float) -> Decision:
        return Decision(
            ts=created_ms, symbol=symbol, side=Side.SHORT, leverage=lev, size_pct=size,
            stop_loss_pct=0.02, take_profit_pct=0.05,
            harvest=HarvestLadder(t1, t1 + 1, t1 + 2, 1.0, t1_close_frac=0.4, t2_close_frac=0.5),
            kill_threshold=0.55, kill_reduce_threshold=0.45, kill_reduce_frac=0.5,
            max_hold_sec=86_400.0,
        )  # fmt: skip

    return build_document(
        [entry("BTC-USDT", 7.5, 0.12, 1.8), entry("ETH-USDT", 3.0, 0.05, 2.2)],
        kind="ai", policy="ai", created_ms=created_ms, valid_for_ms=24 * HOUR_MS,
    )  # fmt: skip


def _edit(doc: dict, path: str, value, reseal: bool = True) -> dict:
    out = copy.deepcopy(doc)
    node = out
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return seal(out) if reseal else out


def _cases(now: int) -> dict[str, object]:
    good = _doc(now - HOUR_MS)
    return {
        "good": good,
        "missing": None,
        "not_json": "{ this is not json",
        "nan": json.dumps(good).replace("7.5", "NaN"),
        "stale": _doc(now - 48 * HOUR_MS),
        "tampered": _edit(good, "symbols.BTC-USDT.leverage", 9.0, reseal=False),
        "schema_version": _edit(good, "schema", "qctl.policy/v0"),
        "unknown_key": _edit(good, "symbols.BTC-USDT.T1_R", 2.0),
        "count_mismatch": _edit(good, "universe.count", 3),
        "leverage_high": _edit(good, "symbols.BTC-USDT.leverage", 126.0),
        "size_high": _edit(good, "symbols.ETH-USDT.size_pct", 0.55),
        "ladder_flat": _edit(good, "symbols.ETH-USDT.harvest_t2_r", 2.2),
        "kill_low": _edit(good, "symbols.ETH-USDT.kill_threshold", 0.2),
        "limits_looser": _edit(good, "limits.max_leverage", 150.0),
        "file_limits_narrow": _edit(good, "limits.max_leverage", 5.0),
        "zone_wider": _edit(good, "zone.max_harvest_r", 12.0),
        "close_frac_zero": _edit(good, "symbols.BTC-USDT.harvest_t1_close_frac", 0.0),
        "close_frac_above_one": _edit(good, "symbols.ETH-USDT.harvest_t2_close_frac", 1.5),
        "reduce_frac_one": _edit(good, "symbols.BTC-USDT.kill_reduce_frac", 1.0),
        "reduce_above_kill": _edit(good, "symbols.ETH-USDT.kill_reduce_threshold", 0.6),
        "reduce_below_zone": _edit(good, "symbols.ETH-USDT.kill_reduce_threshold", 0.2),
        "max_hold_zero": _edit(good, "symbols.BTC-USDT.max_hold_sec", 0),
    }


@pytest.fixture
def accessor(tmp_path: Path):
    path = tmp_path / "repo" / "qctl_policy.py"
    path.parent.mkdir()
    path.write_text(render(MigrateConfig(root=path.parent), "BASE-QUOTE"), encoding="utf-8")
    name = f"qctl_policy_agreement_{id(path)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)


def _reference(path: Path, now: int) -> str:
    try:
        load_policy_file(path, now=now)
    except PolicyFileError as exc:
        return str(exc.skip_reason)
    return "OK"


def test_accessor_and_reference_agree(accessor, tmp_path: Path, monkeypatch) -> None:
    now = now_ms()
    outcomes = {}
    for name, content in _cases(now).items():
        path = tmp_path / "files" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        if isinstance(content, dict):
            path.write_text(json.dumps(content), encoding="utf-8")
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        monkeypatch.setenv("QCTL_POLICY_FILE", str(path))
        theirs = accessor.status()[0]
        ours = _reference(path, now)
        outcomes[name] = (ours, theirs)
    disagree = {k: v for k, v in outcomes.items() if v[0] != v[1]}
    assert not disagree, disagree
    assert outcomes["good"][0] == "OK"
    refused = {k for k, v in outcomes.items() if v[0] != "OK"}
    assert refused == set(outcomes) - {"good"}
    assert outcomes["stale"][0] == str(SkipReason.MODEL_STALE)
    assert outcomes["missing"][0] == str(SkipReason.MODEL_MISSING)
    assert outcomes["leverage_high"][0] == str(SkipReason.OUT_OF_ZONE)


def test_same_values_read(accessor, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "qctl_policy.json"
    write_policy_file(_doc(now_ms() - HOUR_MS), path)
    monkeypatch.setenv("QCTL_POLICY_FILE", str(path))
    ours = load_policy_file(path)
    for symbol in ("BTC-USDT", "BTCUSDT", "eth/usdt:USDT", "SOL-USDT"):
        for key in (
            "leverage", "size_pct", "stop_loss_pct", "harvest_t1_r", "kill_threshold",
            "harvest_t1_close_frac", "harvest_t2_close_frac", "kill_reduce_threshold",
            "kill_reduce_frac", "max_hold_sec",
        ):  # fmt: skip
            assert accessor.policy_value(key, symbol) == ours.value(symbol, key), (symbol, key)
    assert accessor.universe() == list(ours.universe)
