"""Scale-out exits, ported from the single-file bot the harvest service replaced.

The old bot kept its last symbol and switches in a JSON state file next to it, took half the
position off once price had run a fixed R multiple, and was started from the command line with
its own symbol list. The harvest service still calls `check_scale_out` for positions opened by
that bot.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass


@dataclass
class ScaleOutPosition:
    symbol: str
    side: str
    entry: float
    stop: float
    qty: float


@dataclass
class BotState:
    """What the old bot remembered between runs."""

    symbol: str = "BTCUSDT"
    maint_margin_rate: float = 0.005
    use_scale_out: bool = True


def load_state(path: str) -> dict:
    """The state file as a dict; the old bot's start-up values when there is none."""
    if not os.path.exists(path):
        return {"symbol": "BTCUSDT", "leverage": 5}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def last_symbol(state: dict) -> str:
    """The symbol the old bot traded last."""
    return state.get("symbol", "BTCUSDT")


def check_scale_out(
    pos: ScaleOutPosition, price: float, strategy_params: dict, scale_r: float = 0.5
) -> float:
    """Quantity to close now: half the position once price is `scale_r` R in profit."""
    if not strategy_params.get("use_scale_out", True):
        return 0.0
    risk = abs(pos.entry - pos.stop)
    moved = price - pos.entry if pos.side == "LONG" else pos.entry - price
    if risk <= 0 or moved < scale_r * risk:
        return 0.0
    close_qty = pos.qty / 2
    return close_qty


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the old bot (`python -m harvest.scale_out`)."""
    parser = argparse.ArgumentParser(description="Scale out of the old bot's open positions.")
    parser.add_argument("--symbols", default="SOLUSDT,ETHUSDT,BNBUSDT")
    parser.add_argument("--state", default="state.json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args([])
    pos = ScaleOutPosition(last_symbol(load_state(args.state)), "LONG", 100.0, 98.0, 3.0)
    print(args.symbols, check_scale_out(pos, 101.5, {"use_scale_out": True}))
