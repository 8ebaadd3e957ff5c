"""The trading engine: domain types, risk kernel, policies, journal; backtest, paper and live share it.

`engine` imports none of qctl's other parts (audit, migrations, models, tui, qctl).
"""

from engine.domain import (
    AutonomyZone,
    Decision,
    HarvestLadder,
    LimitsError,
    MarketSnapshot,
    Portfolio,
    Position,
    SafetyEvent,
    SafetyLimits,
    Side,
    SkipReason,
    TradingState,
)

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
