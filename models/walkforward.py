"""Walk-forward through the engine: per fold, AI versus legacy versus flat on bars never trained on.

The timeline (the union of every symbol's bars) is cut into an initial training stretch
(`initial_fraction` of it) and `folds` equal test blocks after it. For each block a fresh model
set is trained on the bars before it only: its training end sits `embargo_bars` before the block
(the embargo), and no training label reaches past that end (labels need `horizon_bars` of future
bars, so the last `horizon_bars` before the end have none: the purge). Then the legacy
StaticPolicy and the AIPolicy of that set run through the same engine (`run_backtest`: same risk
kernel, exit controller, simulated broker, fees, slippage and funding) on the block's bars, each
from the same starting equity; the bars before the block only warm up the features. Flat is the
account that never trades (return 0, no costs).

Each fold is one job (train + two backtests), so a `Runner` can run the folds side by side
(`--dask`); the same seed gives the same figures either way. Every figure is as measured, losses
included.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.backtest import BacktestResult, run_backtest
from engine.core.bars import MarketData, SymbolData
from engine.core.policy import Policy, StaticPolicy
from engine.core.tiers import LeverageTiers
from engine.domain import SafetyLimits
from engine.venues.simulated import BrokerConfig
from models.compare import OutOfSample
from models.config import TrainConfig, packaged_defaults
from models.errors import TrainConfigError, TrainDataError
from models.features import FeatureSpec
from models.jobs import InProcess, Runner
from models.policy import AIPolicy, UniverseConfig
from models.registry import load_models
from models.sweep import SweepSpec, run_sweep
from models.train import MS_PER_DAY, bar_interval_ms, train_models
from models.validity import iso_ms

RESULT_FILE = "walkforward.json"  # written next to the model set by `qctl train --walk-forward`
CURVE_POINTS = 120  # equity samples kept per run for the report's plot (display only)


@dataclass(frozen=True)
class WalkForwardConfig:
    """How the timeline is cut (defaults: the [walkforward] table of models/defaults.toml)."""

    folds: int
    initial_fraction: float

    def __post_init__(self) -> None:
        if not (isinstance(self.folds, int) and self.folds >= 1):
            raise TrainConfigError(
                f"walk-forward folds must be a positive integer, got {self.folds!r}"
            )
        if not 0 < self.initial_fraction < 1:
            raise TrainConfigError(
                f"walk-forward initial_fraction must be in (0, 1), got {self.initial_fraction!r}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None = None) -> WalkForwardConfig:
        values = dict(packaged_defaults()["walkforward"])
        unknown = sorted(set(data or {}) - set(values))
        if unknown:
            raise TrainConfigError(f"unknown walk-forward setting {unknown[0]!r}")
        values.update(data or {})
        return cls(**values)


@dataclass(frozen=True)
class Block:
    """One fold: models trained on bars before `train_end_ms`, tested on [start_ms, end_ms)."""

    fold: int
    train_end_ms: int
    start_ms: int
    end_ms: int


def walk_forward_blocks(
    candles: Mapping[str, pd.DataFrame], cfg: TrainConfig, wf: WalkForwardConfig
) -> list[Block]:
    """The folds' test blocks over the union timeline, each with its embargoed training end."""
    bar_ms = bar_interval_ms(candles)
    first = min(int(c.index[0]) for c in candles.values() if len(c))
    last = max(int(c.index[-1]) for c in candles.values() if len(c)) + bar_ms
    bars = (last - first) // bar_ms
    start_bar = int(bars * wf.initial_fraction)
    size = (bars - start_bar) // wf.folds
    if size < 1:
        raise TrainDataError("the timeline is too short for that many walk-forward folds")
    out = []
    for k in range(wf.folds):
        lo = first + (start_bar + k * size) * bar_ms
        hi = first + (start_bar + (k + 1) * size) * bar_ms if k < wf.folds - 1 else last
        out.append(Block(k, lo - cfg.embargo_bars * bar_ms, lo, hi))
    return out


def slice_market(md: MarketData, start_ms: int, end_ms: int, warmup_bars: int) -> MarketData:
    """The bars of [start_ms, end_ms) plus `warmup_bars` before start (features only), for the
    symbols that have bars inside the block; funding and mark prices cut the same way."""
    out: dict[str, SymbolData] = {}
    for symbol, sd in md.symbols.items():
        c = sd.candles
        inside = (c.index >= start_ms) & (c.index < end_ms)
        if not inside.any():
            continue
        first = max(0, int(np.argmax(inside)) - warmup_bars)
        lo = int(c.index[first])

        def cut(frame: pd.DataFrame | None, lo: int = lo) -> pd.DataFrame | None:
            if frame is None:
                return None
            return frame.loc[(frame.index >= lo) & (frame.index < end_ms)]

        out[symbol] = replace(sd, candles=cut(c), funding=cut(sd.funding), mark=cut(sd.mark))
    return MarketData(symbols=out, timeframe=md.timeframe, issues=[])


def run_figures(result: BacktestResult, limits: SafetyLimits, decisions: int) -> dict[str, Any]:
    """What the walk-forward table shows of one backtest, plus a thinned equity curve."""
    m = result.metrics
    eq = np.asarray(result.equity, dtype=float)
    step = max(1, len(eq) // CURVE_POINTS)
    curve = (eq[::step] / m.start_equity - 1).tolist() if len(eq) else [0.0]
    exposure = np.asarray(result.exposure, dtype=float)
    margin = np.asarray(result.margin_ratio, dtype=float)
    breaches = int(
        np.sum(exposure > limits.max_exposure_fraction + 1e-9)
        + np.sum(np.isfinite(margin) & (margin < limits.min_margin_ratio - 1e-9) & (exposure > 0))
    )
    return {
        "total_return": float(m.total_return),
        "sharpe": None if m.sharpe is None or not math.isfinite(m.sharpe) else float(m.sharpe),
        "max_drawdown": abs(float(m.max_drawdown)),  # never "-0.00 %"
        "trades": int(m.n_trades),
        "win_rate": m.win_rate,
        "fees": float(m.fees_paid),
        "funding": float(m.funding_paid),
        "max_exposure": float(m.max_exposure),
        "safety_events": int(sum(result.stats.safety_events.values())),
        "limit_breaches": breaches,
        "entries": decisions,
        "skips": dict(Counter(result.stats.skips).most_common(6)),
        "curve": curve,
    }


def _backtest(
    md: MarketData,
    policy: Policy,
    start_ms: int,
    equity: float,
    limits: SafetyLimits,
    tiers: LeverageTiers,
    broker: BrokerConfig,
) -> dict[str, Any]:
    gated = OutOfSample(policy, start_ms)
    result = run_backtest(
        md, gated, equity=equity, limits=limits, tiers=tiers, broker_config=broker
    )
    entries = sum(1 for d in gated.decisions if d.skip is None)
    return run_figures(result, limits, entries)


def fold_job(
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None],
    md: MarketData,
    block: Block,
    cfg: TrainConfig,
    spec: FeatureSpec,
    legacy: Path,
    equity: float,
    limits: SafetyLimits,
    broker: BrokerConfig,
    universe: UniverseConfig | None,
    sweep: SweepSpec | None = None,
) -> dict[str, Any]:
    """One fold: train on the bars before the block, then legacy and AI through the engine.

    With a `sweep`, the fold first scores the sweep's configurations on validation folds inside
    its own training period (nothing of the block or after it) and trains the best one.
    """
    bar_ms = bar_interval_ms(candles)
    chosen: dict[str, Any] = {}
    if sweep is not None:
        cfg, _ = run_sweep(
            candles,
            funding,
            sweep,
            cfg,
            broker.break_even_offset(),
            features=spec,
            train_end_ms=block.train_end_ms,
        )
        chosen = {k: getattr(cfg, k) for k in sweep.params}
    # the set must stay valid over its whole test block (it is used there and nowhere else)
    days = math.ceil((block.end_ms - block.train_end_ms) / MS_PER_DAY) + 1
    cfg = TrainConfig.from_mapping({"valid_days": max(cfg.valid_days, days)}, base=cfg)
    tiers = LeverageTiers.load()
    part = slice_market(md, block.start_ms, block.end_ms, spec.lookback_bars + 1)
    with tempfile.TemporaryDirectory() as out:
        trained = train_models(
            candles, funding, out, cfg, spec, train_end_ms=block.train_end_ms, broker=broker
        )
        models = load_models(out)
    card = trained.cards["direction"]
    ai = AIPolicy(
        models,
        limits,
        universe=universe,
        tiers=tiers,
        funding={s: sd.funding for s, sd in part.symbols.items()},
        round_trip_cost=broker.break_even_offset(),
    )
    runs = {
        "legacy": _backtest(part, StaticPolicy.from_toml(legacy), block.start_ms, equity,
                            limits, tiers, broker),
        "ai": _backtest(part, ai, block.start_ms, equity, limits, tiers, broker),
    }  # fmt: skip
    entry = card["metrics"].get("entry") or {}
    return {
        "fold": block.fold,
        "train_start": card["training_window"]["start"],
        "train_end": iso_ms(block.train_end_ms),
        "start": iso_ms(block.start_ms),
        "end": iso_ms(block.end_ms),
        "bars": int((block.end_ms - block.start_ms) // bar_ms),
        "symbols": sorted(part.symbols),
        "trained_on": card["symbols"],
        "model_set": trained.set_id,
        "min_confidence": card["outputs"]["min_confidence"],
        "validation_t": entry.get("t_stat"),
        "validation_net_mean": entry.get("net_mean"),
        "validation_auc": card["metrics"]["auc"],
        "ladder": trained.cards["favourable_t1"]["outputs"].get("ladder_scale"),
        "chosen": chosen,
        "runs": runs,
    }


def summarise(folds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over the folds. A run without trades has no Sharpe; it counts as 0 (flat)."""

    def sharpe(run: Mapping[str, Any]) -> float:
        return 0.0 if run["sharpe"] is None else float(run["sharpe"])

    out: dict[str, Any] = {"folds": len(folds)}
    for label in ("legacy", "ai"):
        runs = [f["runs"][label] for f in folds]
        growth = float(np.prod([1 + r["total_return"] for r in runs]) - 1)
        out[label] = {
            "compounded_return": growth,
            "mean_sharpe": float(np.mean([sharpe(r) for r in runs])),
            "worst_drawdown": float(max(r["max_drawdown"] for r in runs)),
            "trades": int(sum(r["trades"] for r in runs)),
            "fees": float(sum(r["fees"] for r in runs)),
            "funding": float(sum(r["funding"] for r in runs)),
            "limit_breaches": int(sum(r["limit_breaches"] for r in runs)),
        }
    out["ai_sharpe_above_legacy"] = int(
        sum(sharpe(f["runs"]["ai"]) > sharpe(f["runs"]["legacy"]) for f in folds)
    )
    out["ai_traded_folds"] = int(sum(f["runs"]["ai"]["trades"] > 0 for f in folds))
    return out


def walk_forward(
    md: MarketData,
    legacy: str | Path,
    cfg: TrainConfig,
    wf: WalkForwardConfig,
    *,
    equity: float,
    spec: FeatureSpec | None = None,
    limits: SafetyLimits | None = None,
    broker: BrokerConfig | None = None,
    universe: UniverseConfig | None = None,
    runner: Runner | None = None,
    done: Callable[[int], None] | None = None,
    source: str = "",
    sweep: SweepSpec | None = None,
) -> dict[str, Any]:
    """Every fold of the walk-forward (see the module docstring); a JSON-ready dict.

    `sweep`: each fold chooses its configuration on its own validation folds (nested)."""
    spec = spec or FeatureSpec()
    limits = limits or SafetyLimits()
    broker = broker or BrokerConfig.from_toml()
    candles = {s: sd.candles for s, sd in md.symbols.items()}
    funding = {s: sd.funding for s, sd in md.symbols.items()}
    blocks = walk_forward_blocks(candles, cfg, wf)
    jobs = [
        (candles, funding, md, b, cfg, spec, Path(legacy), equity, limits, broker, universe, sweep)
        for b in blocks
    ]
    folds = (runner or InProcess()).map(fold_job, jobs, done)
    return {
        "data": source,
        "symbols": sorted(md.symbols),
        "equity": equity,
        "walkforward": {"folds": wf.folds, "initial_fraction": wf.initial_fraction},
        "sweep": None if sweep is None else sweep.params,
        "train_config": cfg.as_dict(),
        "costs": {
            "round_trip": broker.break_even_offset(),
            "taker_fee": broker.taker_fee,
            "slippage": broker.slippage,
        },
        "legacy_policy": Path(legacy).name,
        "folds": list(folds),
        "summary": summarise(folds),
    }
