"""Time helpers: the exchange speaks milliseconds, the services think in seconds and hours."""

from __future__ import annotations

import time
from datetime import UTC, datetime

SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400


def now_ms() -> int:
    """Current time in exchange milliseconds."""
    return int(time.time() * 1000)


def ms_to_sec(ms: int) -> float:
    """Exchange timestamps to seconds."""
    return ms / 1000


def sec_to_ms(sec: float) -> int:
    """Seconds to exchange timestamps."""
    return int(sec * 1000)


def age_sec(opened_ms: int, at_ms: int | None = None) -> float:
    """Seconds since a position or signal was opened."""
    at_ms = now_ms() if at_ms is None else at_ms
    return (at_ms - opened_ms) / 1000


def hours_between(start_ms: int, end_ms: int) -> float:
    """Hours between two exchange timestamps, for funding and holding reports."""
    return (end_ms - start_ms) / 1000 / 3600


def minutes_to_sec(minutes: float) -> float:
    """Candle intervals are configured in minutes."""
    return minutes * SECONDS_PER_MINUTE


def days_to_sec(days: float) -> float:
    """Retention periods are configured in days."""
    return days * SECONDS_PER_DAY


def iso(ms: int) -> str:
    """Readable UTC time for logs."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def floor_to_interval(ms: int, interval_sec: int) -> int:
    """Start of the candle that contains `ms`, so cache keys line up with candles."""
    interval_ms = interval_sec * 1000
    return ms - ms % interval_ms


class Stopwatch:
    """Measures how long a signal took from model to order, for the latency log."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self._start) * 1000, 2)

    def restart(self) -> None:
        self._start = time.perf_counter()


if __name__ == "__main__":
    stamp = now_ms()
    print("now:", iso(stamp))
    print("one day ago:", iso(stamp - sec_to_ms(days_to_sec(1))))
    print("hours in a week:", hours_between(stamp - sec_to_ms(7 * SECONDS_PER_DAY), stamp))
    print("15m candle start:", iso(floor_to_interval(stamp, int(minutes_to_sec(15)))))
