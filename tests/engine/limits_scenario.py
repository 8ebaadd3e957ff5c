"""A market that pushes a full book past the exposure limit between entries, and an AI-like
policy (varying leverage and size, one name) that fills the book up to it.

Four perpetuals stay flat while the policy enters long at 48.75 % of equity each (195 % in
total, inside the 200 % limit), then fall 8 % over 20 bars: the longs' notional shrinks less
than equity does, so exposure climbs to about 2.1 x equity with no new entry."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.core.bars import MarketData, SymbolData
from engine.domain import Decision, HarvestLadder, Side

H = 3_600_000
T0 = 1_750_000_000_000 // H * H
# qctl: ignore[symbol_selection] test data, not a trading universe
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT")
BASE = {"BTC-USDT": 60_000.0, "ETH-USDT": 3_000.0, "SOL-USDT": 150.0, "XRP-USDT": 0.6}
FLAT_BARS, FALL_BARS, TAIL_BARS = 10, 20, 10
FALL = 0.08


def falling_market(fall: float = FALL) -> MarketData:
    n = FLAT_BARS + FALL_BARS + TAIL_BARS
    path = np.concatenate(
        [
            np.ones(FLAT_BARS),
            np.linspace(1.0, 1.0 - fall, FALL_BARS + 1)[1:],
            np.full(TAIL_BARS, 1.0 - fall),
        ]
    )
    ts = T0 + H * np.arange(n, dtype=np.int64)
    out = {}
    for k, sym in enumerate(SYMBOLS):
        close = BASE[sym] * path * (1 + 0.001 * k)
        df = pd.DataFrame(
            {"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
            index=pd.Index(ts, name="timestamp"),
        )
        out[sym] = SymbolData(sym, "1h", "perpetual", df, None, "synthetic")
    return MarketData(out, "1h")


class FullBookPolicy:
    """Enters every free symbol long at 48.75 % of equity, leverage varying 3-6x."""

    name = "ai"
    version = "ai-like-test"

    def decide(self, snapshot, portfolio):
        out = []
        for k, s in enumerate(snapshot.symbols):
            if s in portfolio.positions:
                continue
            out.append(
                Decision(ts=snapshot.ts, symbol=s, side=Side.LONG, leverage=3.0 + k,
                         size_pct=0.4875 - 0.0001 * k, stop_loss_pct=0.3, take_profit_pct=0.5,
                         harvest=HarvestLadder(5, 8, 10, 4, t1_close_frac=0.3, t2_close_frac=0.3),
                         kill_threshold=0.9, kill_reduce_threshold=0.9, kill_reduce_frac=0.5,
                         max_hold_sec=1e9, confidence=0.6 + 0.01 * k, policy=self.name,
                         model_version=self.version)
            )  # fmt: skip
        return out
