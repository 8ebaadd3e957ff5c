"""`qctl train --sweep sweep.toml`: hyper-parameters and decision thresholds chosen by validation.

A sweep file names training parameters and the values to try:

    [sweep]
    method = "grid"          # every combination; "random": `samples` draws from the grid
    samples = 20             # random only
    seed = 7                 # random only: which draws

    [sweep.params]
    num_leaves = [7, 15, 31]
    learning_rate = [0.03, 0.1]
    min_entry_t = [1.0, 2.0]

Every configuration runs the same walk-forward folds (one job per configuration and fold, so a
Dask cluster runs them side by side) and is scored by its validation net Sharpe: the per-trade
Sharpe ratio of the net returns of the trades its chosen entry level takes (0 when it chooses
not to trade: flat). The best configuration is then trained on the whole period as usual.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.domain import AutonomyZone
from models.config import TrainConfig
from models.errors import TrainConfigError
from models.features import FeatureSpec
from models.jobs import InProcess, Runner
from models.train import (
    TrainingSet,
    build_training_set,
    fit_job,
    fold_jobs,
    validation_outputs,
)

METHODS = ("grid", "random")


@dataclass(frozen=True)
class SweepSpec:
    """What to try: parameter name -> candidate values; grid or `samples` random draws."""

    params: dict[str, list[Any]]
    method: str
    samples: int
    seed: int

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepSpec:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise TrainConfigError(f"sweep file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise TrainConfigError(f"sweep file {path} is not valid TOML: {exc}") from None
        return cls.from_mapping(data.get("sweep", {}), str(path))

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], source: str = "sweep") -> SweepSpec:
        unknown = sorted(set(table) - {"method", "samples", "seed", "params"})
        if unknown:
            raise TrainConfigError(f"{source}: unknown [sweep] key {unknown[0]!r}")
        params = table.get("params")
        if not isinstance(params, Mapping) or not params:
            raise TrainConfigError(f"{source}: [sweep.params] must list at least one parameter")
        known = {f.name for f in fields(TrainConfig)}
        for name, values in params.items():
            if name not in known:
                raise TrainConfigError(f"{source}: unknown training parameter {name!r}")
            if not isinstance(values, list) or not values:
                raise TrainConfigError(f"{source}: {name} must be a non-empty list of values")
        method = table.get("method", "grid")
        if method not in METHODS:
            raise TrainConfigError(f"{source}: method must be one of {', '.join(METHODS)}")
        samples, seed = table.get("samples", 20), table.get("seed", 0)
        if not isinstance(samples, int) or samples < 1 or not isinstance(seed, int):
            raise TrainConfigError(f"{source}: samples must be a positive integer, seed an integer")
        return cls({k: list(v) for k, v in params.items()}, method, samples, seed)

    def configs(self, base: TrainConfig) -> list[TrainConfig]:
        """The configurations to try, each `base` with some values replaced (checked)."""
        names = list(self.params)
        grid = list(itertools.product(*(self.params[n] for n in names)))
        if self.method == "random" and self.samples < len(grid):
            rng = np.random.default_rng(self.seed)
            picked = sorted(rng.choice(len(grid), size=self.samples, replace=False))
            grid = [grid[i] for i in picked]
        return [TrainConfig.from_mapping(dict(zip(names, v, strict=True)), base) for v in grid]


@dataclass
class SweepRow:
    """One configuration's validation result."""

    changes: dict[str, Any]
    score: float
    entry: dict[str, Any] | None
    auc: float


def net_sharpe(metrics: Mapping[str, Any]) -> float:
    """The sweep's score: validation net Sharpe per trade of the chosen entry (0: no trades)."""
    entry = metrics["direction"].get("entry")
    return float(entry["net_sharpe_per_trade"]) if entry else 0.0


def run_sweep(
    candles: Mapping[str, pd.DataFrame],
    funding: Mapping[str, pd.DataFrame | None] | None,
    spec: SweepSpec,
    base: TrainConfig,
    cost: float,
    *,
    features: FeatureSpec | None = None,
    holdout_symbols: Sequence[str] = (),
    train_end_ms: int | None = None,
    zone: AutonomyZone | None = None,
    runner: Runner | None = None,
    done: Callable[[int], None] | None = None,
) -> tuple[TrainConfig, list[SweepRow]]:
    """Score every configuration on the walk-forward folds; returns the best and every row
    (ties go to the earlier configuration, so the result does not depend on job order)."""
    runner = runner or InProcess()
    features = features or FeatureSpec()
    zone = zone or AutonomyZone()
    configs = spec.configs(base)
    sets: dict[tuple, TrainingSet] = {}
    jobs: list[tuple] = []
    owner: list[int] = []
    for c, cfg in enumerate(configs):
        key = (cfg.horizon_bars, cfg.holdout_fraction)
        if key not in sets:
            sets[key] = build_training_set(
                candles, funding, features, cfg, train_end_ms, holdout_symbols
            )
        for rows, block in fold_jobs(sets[key], cfg):
            jobs.append((rows, block, sets[key].features, cfg))
            owner.append(c)
    parts = runner.map(fit_job, jobs, done)
    rows_out = []
    for c, cfg in enumerate(configs):
        mine = [p for p, o in zip(parts, owner, strict=True) if o == c]
        val = pd.concat([p.assign(fold=k) for k, p in enumerate(mine)], ignore_index=True)
        ts_set = sets[(cfg.horizon_bars, cfg.holdout_fraction)]
        metrics, _ = validation_outputs(val, ts_set, cfg, zone, cost)
        changes = {k: getattr(cfg, k) for k in spec.params}
        rows_out.append(
            SweepRow(changes, net_sharpe(metrics), metrics["direction"]["entry"],
                     float(metrics["direction"]["auc"]))
        )  # fmt: skip
    best = max(range(len(configs)), key=lambda i: (rows_out[i].score, -i))
    return configs[best], rows_out


def count_jobs(spec: SweepSpec, base: TrainConfig) -> int:
    """Fold jobs a sweep runs (for a progress bar)."""
    return sum(c.folds for c in spec.configs(base))
