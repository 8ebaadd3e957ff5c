"""RSI divergence strategy with a Fibonacci filter, ported from the research notebook.

Parameters live on the class, the way the backtesting library it came from keeps them; a run
overrides them from the command line or from an operator's JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    """One closed bar with the indicators the notebook computed for it."""

    close: float
    ma_fast: float
    rsi: float
    rsi_divergence: float
    fib_pos: float
    volume_spike: bool
    fvg: bool


class Strategy:
    """Minimal base: the class defaults, overridden by a dict of parameters."""

    defaults: dict = {}

    def __init__(self, params: dict | None = None) -> None:
        self.params = {**self.defaults, **(params or {})}


class DivergenceStrategy(Strategy):
    defaults = {
        "atr_period": 14,
        "divergence_thresh": 0.03,
        "ma_fast": 20,
        "stop_atr_mult": 1.5,
        "require_fvg": False,
    }

    def signal(self, bar: Bar) -> str | None:
        """LONG, SHORT or None for one closed bar."""
        p = self.params
        if p.get("require_fvg", True) and not bar.fvg:
            return None
        votes = sum(
            [bar.rsi_divergence > p["divergence_thresh"], bar.close > bar.ma_fast, bar.volume_spike]
        )
        confirmed = votes >= 2
        if confirmed and bar.fib_pos > 0.55 and bar.rsi < 55:
            return "LONG"
        if confirmed and bar.fib_pos < 0.45 and bar.rsi > 45:
            return "SHORT"
        return None

    def stop_price(self, entry: float, atr: float, side: str) -> float:
        """Stop beyond a multiple of ATR, wider when the FVG filter is off."""
        stop_buffer = atr * self.params["stop_atr_mult"]
        if not self.params["require_fvg"]:
            stop_buffer *= 1.25
        return entry - stop_buffer if side == "LONG" else entry + stop_buffer


def check_exit(entry: float, peak: float, price: float, giveback_r: float = 0.4) -> bool:
    """Exit a long once price gives back `giveback_r` of the move from entry to the peak."""
    move = peak - entry
    return move > 0 and peak - price > giveback_r * move


def load_overrides(path: str) -> dict:
    """Operator overrides from a JSON file; the notebook's values when there is none."""
    if not os.path.exists(path):
        return {"stop_atr_mult": 2.0, "divergence_thresh": 0.05, "strategy": "divergence"}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of `python -m strategy.divergence`."""
    parser = argparse.ArgumentParser(description="Run the divergence strategy on the paper client.")
    parser.add_argument("--strategy", default="rsi_divergence")
    parser.add_argument("--cb-pause-hours", type=float, default=6.0)
    parser.add_argument("--tp-pct", type=float, default=float(os.getenv("BOT_TP_PCT", "4.5")))
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args([])
    strategy = DivergenceStrategy(load_overrides("no-such-file.json"))
    bar = Bar(close=101.0, ma_fast=100.0, rsi=48.0, rsi_divergence=0.07, fib_pos=0.6,
              volume_spike=True, fvg=False)  # fmt: skip
    print(args.strategy, strategy.signal(bar), strategy.stop_price(100.0, 2.0, "LONG"))
    print("exit:", check_exit(100.0, 110.0, 105.0))
