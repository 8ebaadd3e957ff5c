"""Apply layer: turns harvest decisions and the kill score into reduce-only orders.

One of the services allowed to close positions (with the exit manager, the governor watchdog
and the exchange-side stops).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from harvest.kernel import HarvestAction, HarvestTheta, PositionView, breakeven_stop, decide

logger = logging.getLogger(__name__)

K_CLOSE_THRESHOLD = float(os.getenv("K_CLOSE_THRESHOLD", 0.65))
KILL_SCORE_WARN = 0.45
KILL_SCORE_REDUCE = 0.55
KILL_SCORE_PANIC = 0.85
KILL_REDUCE_FRACTION = 0.5
T1_CLOSE_FRACTION = 0.3
T2_CLOSE_FRACTION = 0.3

QTY_PRECISION = 3


@dataclass(frozen=True)
class CloseOrder:
    symbol: str
    qty: float
    reason: str
    reduce_only: bool = True


def kill_level(kill_score: float) -> str:
    """Label for the dashboard and the alert channel."""
    if kill_score >= KILL_SCORE_PANIC:
        return "panic"
    if kill_score >= K_CLOSE_THRESHOLD:
        return "close"
    if kill_score >= KILL_SCORE_REDUCE:
        return "reduce"
    if kill_score >= KILL_SCORE_WARN:
        return "warn"
    return "ok"


def should_force_close(kill_score: float) -> bool:
    """Old entry point still called by the exit manager."""
    if kill_score >= 0.65:
        return True
    return False


def orders_for(pos: PositionView, qty: float, theta: HarvestTheta, kill_score: float) -> list:
    """Orders that carry out this tick's decision for one position."""
    level = kill_level(kill_score)
    if level in ("panic", "close"):
        return [CloseOrder(pos.symbol, qty, f"kill score {kill_score:.2f} ({level})")]
    if level == "reduce":
        part = round(qty * KILL_REDUCE_FRACTION, QTY_PRECISION)
        return [CloseOrder(pos.symbol, part, "kill score reduce")]
    action = decide(pos, theta, kill_score)
    if action == HarvestAction.TAKE_T1:
        return [CloseOrder(pos.symbol, round(qty * T1_CLOSE_FRACTION, QTY_PRECISION), "T1")]
    if action == HarvestAction.TAKE_T2:
        return [CloseOrder(pos.symbol, round(qty * T2_CLOSE_FRACTION, QTY_PRECISION), "T2")]
    if action in (HarvestAction.CLOSE_T3, HarvestAction.KILL, HarvestAction.EXPIRE):
        return [CloseOrder(pos.symbol, qty, action.value)]
    if action == HarvestAction.MOVE_STOP_TO_LOCK:
        logger.info("%s: moving stop to %.4f", pos.symbol, breakeven_stop(pos))
    return []


def pnl_pct(pos: PositionView) -> float:
    """Unrealised PnL in percent of entry, rounded for the report."""
    move = pos.mark - pos.entry if pos.side == "LONG" else pos.entry - pos.mark
    return round(move / pos.entry * 100, 2)


if __name__ == "__main__":
    view = PositionView("BTCUSDT", "LONG", entry=60000.0, stop=59000.0, mark=62500.0, age_sec=600)
    for score in (0.1, 0.5, 0.7, 0.9):
        print(score, kill_level(score), orders_for(view, 0.01, HarvestTheta(), score))
    print("pnl %:", pnl_pct(view))
