"""The owner's hard safety limits: the one place their numbers are written.

A module of its own, importing nothing heavy, so that what only needs the limits (the auditor
comparing literals with them, a CLI's help) does not load numpy. `engine.domain` re-exports
everything here; import from either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

PERCENT = 100.0  # unit conversion: percent number <-> fraction


class LimitsError(ValueError):
    """A configured safety limit is looser than the owner's hard limit (or not a number)."""


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    """The owner's hard limits. The defaults below are the only place these numbers are written.

    Configuration may only make them stricter: constructing a looser value raises `LimitsError`.
    Margin ratio is `(equity - maintenance margin) / equity` (see `engine.core.risk.margin_ratio`).
    """

    min_margin_ratio_pct: float = 10.0
    max_leverage: float = 125.0
    max_position_size_pct: float = 50.0
    max_total_exposure_pct: float = 200.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LimitsError(f"safety limit {f.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise LimitsError(f"safety limit {f.name} must be a positive number, got {value}")
            object.__setattr__(self, f.name, float(value))
            hard = f.default
            looser = value < hard if f.name in _HIGHER_IS_STRICTER else value > hard
            if looser:
                raise LimitsError(
                    f"safety limit {f.name} = {value:g} is looser than the hard limit {hard:g}; "
                    "config may only make limits stricter"
                )
        if self.max_leverage < 1:
            raise LimitsError(f"safety limit max_leverage must be >= 1, got {self.max_leverage:g}")
        if self.min_margin_ratio_pct >= PERCENT:
            raise LimitsError(
                f"safety limit min_margin_ratio_pct must be below 100, got {self.min_margin_ratio_pct:g}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> SafetyLimits:
        """Limits from config (e.g. a `[limits]` TOML table); missing keys keep the hard limit."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LimitsError(
                f"unknown safety limit {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        return cls(**data)

    @property
    def max_position_fraction(self) -> float:
        return self.max_position_size_pct / PERCENT

    @property
    def max_exposure_fraction(self) -> float:
        return self.max_total_exposure_pct / PERCENT

    @property
    def min_margin_ratio(self) -> float:
        return self.min_margin_ratio_pct / PERCENT

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


_HIGHER_IS_STRICTER = frozenset({"min_margin_ratio_pct"})
