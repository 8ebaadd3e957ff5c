"""`TrainConfig`: every training hyper-parameter, defaults in models/defaults.toml, overridable.

These steer how the models learn (tree sizes, rounds, label horizon, quantile levels, the
Kelly fraction applied to the model's edge). Trading values themselves (leverage, size, stop,
ladder, kill threshold) are never set here: the trained models output them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from models.errors import TrainConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the five heads and of the walk-forward (meanings and defaults:
    models/defaults.toml, the one place they are written)."""

    seed: int
    num_threads: int
    num_leaves: int
    learning_rate: float
    rounds: int
    min_data_in_leaf: int
    feature_fraction: float
    bagging_fraction: float
    lambda_l2: float
    max_bin: int
    horizon_bars: int
    folds: int
    val_fraction: float
    row_stride: int
    holdout_fraction: float
    adverse_quantile: float
    favourable_quantiles: tuple[float, float, float, float]
    rank_grades: int
    ndcg_at: int
    auto_count_bins: int
    kelly_fraction: float
    calibration: str
    edge_bins: int
    min_entry_t: float
    entry_evidence: str
    entry_fold_share: float
    embargo_bars: int
    grid_points: int
    valid_days: int
    ladder_scales: tuple[float, ...]

    def __post_init__(self) -> None:
        checks = {
            "num_threads": self.num_threads >= 1,
            "num_leaves": self.num_leaves >= 2,
            "learning_rate": 0 < self.learning_rate <= 1,
            "rounds": self.rounds >= 1,
            "min_data_in_leaf": self.min_data_in_leaf >= 1,
            "feature_fraction": 0 < self.feature_fraction <= 1,
            "bagging_fraction": 0 < self.bagging_fraction <= 1,
            "lambda_l2": self.lambda_l2 >= 0,
            "max_bin": self.max_bin >= 2,
            "horizon_bars": self.horizon_bars >= 1,
            "folds": self.folds >= 1,
            "val_fraction": self.val_fraction > 0 and self.folds * self.val_fraction < 1,
            "row_stride": self.row_stride >= 1,
            "holdout_fraction": 0 <= self.holdout_fraction < 1,
            "adverse_quantile": 0 < self.adverse_quantile < 1,
            "favourable_quantiles": len(self.favourable_quantiles) == len(LADDER)
            and all(0 < q < 1 for q in self.favourable_quantiles)
            and list(self.favourable_quantiles) == sorted(self.favourable_quantiles),
            "rank_grades": self.rank_grades >= 2,
            "ndcg_at": self.ndcg_at >= 1,
            "auto_count_bins": self.auto_count_bins >= 2,
            "kelly_fraction": 0 < self.kelly_fraction <= 1,
            "calibration": self.calibration in CALIBRATIONS,
            "edge_bins": self.edge_bins >= 1,
            "min_entry_t": self.min_entry_t >= 0,
            "entry_evidence": self.entry_evidence in ENTRY_EVIDENCE,
            "entry_fold_share": 0 <= self.entry_fold_share <= 1,
            "embargo_bars": isinstance(self.embargo_bars, int) and self.embargo_bars >= 0,
            "grid_points": self.grid_points > 1,
            "valid_days": self.valid_days >= 1,
            "ladder_scales": len(self.ladder_scales) >= 1
            and all(isinstance(v, int | float) and v > 0 for v in self.ladder_scales),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            raise TrainConfigError(f"invalid training parameter(s): {shown}")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["favourable_quantiles"] = list(self.favourable_quantiles)
        out["ladder_scales"] = list(self.ladder_scales)
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: TrainConfig | None = None) -> TrainConfig:
        """`base` (default: the defaults) with the given keys replaced; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(
                f"unknown training parameter {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        values = (base or cls.defaults()).as_dict() | dict(data)
        values["favourable_quantiles"] = tuple(values["favourable_quantiles"])
        values["ladder_scales"] = tuple(values["ladder_scales"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise TrainConfigError(f"invalid training parameters: {exc}") from exc

    @classmethod
    def defaults(cls) -> TrainConfig:
        """The packaged defaults (models/defaults.toml, table [train])."""
        values = dict(packaged_defaults()["train"])
        values["favourable_quantiles"] = tuple(values["favourable_quantiles"])
        values["ladder_scales"] = tuple(values["ladder_scales"])
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
        """Read the `[train]` table of a TOML file (or the whole file if it has none)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise TrainConfigError(f"training config not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise TrainConfigError(f"training config {path} is not valid TOML: {exc}") from exc
        return cls.from_mapping(data.get("train", data), base)


def packaged_defaults() -> dict[str, Any]:
    """models/defaults.toml as a dict (read once)."""
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = tomllib.loads(DEFAULTS_PATH.read_text())
    return _DEFAULTS


DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
_DEFAULTS: dict[str, Any] | None = None

# how the direction head's probability is calibrated on the validation folds
CALIBRATIONS = ("platt", "isotonic")

# what the entry level's t-statistic counts: trades (n / horizon) or entry times (the mean trade
# of each entry time, entry times / horizon)
ENTRY_EVIDENCE = ("trades", "entry_times")

# the favourable-excursion heads, in the order of `TrainConfig.favourable_quantiles`
LADDER = ("lock", "t1", "t2", "t3")
