"""Harvest kernel: decides, tick by tick, whether to take profit, lock in, or kill a position.

All distances are in R, the initial risk of the position (entry to stop).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class HarvestAction(StrEnum):
    HOLD = "hold"
    TAKE_T1 = "take_t1"
    TAKE_T2 = "take_t2"
    CLOSE_T3 = "close_t3"
    MOVE_STOP_TO_LOCK = "move_stop_to_lock"
    KILL = "kill"
    EXPIRE = "expire"


@dataclass(frozen=True)
class HarvestTheta:
    """Ladder parameters; the RL tuner publishes new ones, these defaults are the fallback."""

    T1_R: float = 2.0
    T2_R: float = 4.0
    T3_R: float = 6.0
    lock_R: float = 1.5
    kill_threshold: float = 0.6
    max_hold_sec: int = 3600
    max_age_sec: float = 86400.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class PositionView:
    symbol: str
    side: str
    entry: float
    stop: float
    mark: float
    age_sec: float
    taken: frozenset[HarvestAction] = frozenset()
    stop_locked: bool = False


def r_multiple(pos: PositionView) -> float:
    """Unrealised profit in units of initial risk; negative when under water."""
    risk = abs(pos.entry - pos.stop)
    if risk == 0:
        return 0.0
    move = pos.mark - pos.entry if pos.side == "LONG" else pos.entry - pos.mark
    return move / risk


def decide(pos: PositionView, theta: HarvestTheta, kill_score: float) -> HarvestAction:
    """One decision per tick; the apply layer turns it into orders."""
    if kill_score >= theta.kill_threshold:
        return HarvestAction.KILL
    if pos.age_sec >= theta.max_age_sec:
        return HarvestAction.EXPIRE
    r = r_multiple(pos)
    if r >= theta.T3_R:
        return HarvestAction.CLOSE_T3
    if r >= theta.T2_R and HarvestAction.TAKE_T2 not in pos.taken:
        return HarvestAction.TAKE_T2
    if r >= theta.T1_R and HarvestAction.TAKE_T1 not in pos.taken:
        return HarvestAction.TAKE_T1
    if r >= theta.lock_R and not pos.stop_locked:
        return HarvestAction.MOVE_STOP_TO_LOCK
    if pos.age_sec >= theta.max_hold_sec and r <= 0:
        return HarvestAction.EXPIRE
    return HarvestAction.HOLD


def breakeven_stop(pos: PositionView) -> float:
    """Where MOVE_STOP_TO_LOCK puts the stop: the entry, so the trade can no longer lose."""
    return pos.entry
