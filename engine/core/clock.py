"""Clocks: what tells the engine loop that a bar has closed.

The loop (engine/core/loop.py) is the same in every mode; a backtest walks the recorded grid as fast
as it can, paper and live modes wait for the wall clock to pass each bar's close time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Clock(Protocol):
    """Yields the grid index of each bar as soon as that bar is closed."""

    def __iter__(self) -> Iterator[int]: ...


@dataclass(slots=True)
class BacktestClock:
    """Replays recorded bars: step i is 'now' right after bar i closed, no waiting."""

    n_steps: int
    start: int = 0

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.n_steps))

    def __len__(self) -> int:
        return max(0, self.n_steps - self.start)


@dataclass(slots=True)
class WallClock:
    """Waits until each bar's close time (open + step) has passed on the wall clock."""

    open_times_ms: np.ndarray
    step_ms: int
    sleep: Callable[[float], None] = time.sleep
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000)

    def __iter__(self) -> Iterator[int]:
        for i, t_open in enumerate(self.open_times_ms):
            wait_ms = int(t_open) + self.step_ms - self.now_ms()
            if wait_ms > 0:
                self.sleep(wait_ms / 1000)
            yield i
