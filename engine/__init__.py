"""The trading engine: domain types, risk kernel, policies, journal; backtest, paper and live share it.

`engine` imports none of qctl's other parts (audit, migrations, models, tui, qctl). The names
below are loaded on first use, so `import engine.limits` stays free of numpy.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AutonomyZone",
    "Decision",
    "HarvestLadder",
    "LimitsError",
    "MarketSnapshot",
    "Portfolio",
    "Position",
    "SafetyEvent",
    "SafetyLimits",
    "Side",
    "SkipReason",
    "TradingState",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    from engine import domain

    return getattr(domain, name)
