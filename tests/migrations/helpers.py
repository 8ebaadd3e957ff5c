"""Policy files for the migration tests, built with the engine's reference writer."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

from engine.domain import Decision, HarvestLadder, Side
from engine.policy_file import build_document, seal

HOUR_MS = 3_600_000


def entry(symbol: str, **changes: float) -> Decision:
    values = dict(
        leverage=7.5,
        size_pct=0.015,
        stop_loss_pct=0.021,
        take_profit_pct=0.05,
        kill_threshold=0.62,
        kill_reduce_threshold=0.5,
        kill_reduce_frac=0.5,
        max_hold_sec=86_400.0,
        confidence=0.7,
    )
    values.update(changes)
    return Decision(
        ts=0,
        symbol=symbol,
        side=Side.LONG,
        harvest=HarvestLadder(1.8, 3.2, 5.5, 1.2, t1_close_frac=0.4, t2_close_frac=0.5),
        **values,  # type: ignore[arg-type]
    )


def policy_doc(symbols=("BTC-USDT", "ETH-USDT"), *, age_ms: int = 0, valid_ms: int = 24 * HOUR_MS):
    now = int(time.time() * 1000)
    return build_document(
        [entry(s) for s in symbols],
        kind="manual",
        policy="test",
        created_ms=now - age_ms,
        valid_for_ms=valid_ms,
    )


def write(path: Path, doc: dict | str) -> Path:
    text = doc if isinstance(doc, str) else json.dumps(doc, indent=2, sort_keys=True)
    path.write_text(text, "utf-8")
    return path


def resealed(doc: dict, **symbol_values: float) -> dict:
    """A validly hashed document whose first symbol holds other values (e.g. out of bounds)."""
    out = json.loads(json.dumps(doc))
    first = next(iter(out["symbols"]))
    out["symbols"][first].update(symbol_values)
    return seal(out)


def load_module(path: Path, name: str) -> ModuleType:
    """Import a generated accessor from its file, under a fresh module name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
