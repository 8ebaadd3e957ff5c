"""Clocks: the backtest clock replays every step at once; the wall clock waits for bar closes."""

from __future__ import annotations

import numpy as np

from engine.core.clock import BacktestClock, WallClock

H = 3_600_000


def test_backtest_clock_yields_every_step() -> None:
    assert list(BacktestClock(4)) == [0, 1, 2, 3]
    assert list(BacktestClock(4, start=2)) == [2, 3] and len(BacktestClock(4, start=2)) == 2


def test_wall_clock_waits_for_each_close() -> None:
    now = [10 * H + H // 2]  # half-way through the bar that opened at 10 h
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += int(seconds * 1000)

    clock = WallClock(np.array([9 * H, 10 * H, 11 * H]), H, sleep=sleep, now_ms=lambda: now[0])
    assert list(clock) == [0, 1, 2]
    # bar 9 h closed already; bar 10 h closes in half an hour; bar 11 h one hour later
    assert slept == [H / 2 / 1000, H / 1000]
