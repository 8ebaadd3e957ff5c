"""Live-mode speed: decision-to-order latency through ccxt and the cycle time per bar.

Runs the local exchange (engine/venues/exchange_sim, 127.0.0.1, manual clock) and, in one run:

1. the floor a user would otherwise have: bare ccxt (async) placing the same three orders an
   entry needs (market entry, STOP_MARKET and TAKE_PROFIT_MARKET backstops), repeated;
2. qctl's decision-to-order latency: `CcxtBroker.open_position` from the risk kernel's approval to
   the entry filled with both backstops resting (it also reads the fill's trades for the fee);
3. qctl's cycle on N symbols: one `qctl trade --live` step per closed bar, split into the time
   spent awaiting ccxt (network and the local exchange), in the policy, in the journal, and the
   rest (the engine itself). The goal is a cycle under 50 ms apart from network time.

    .venv/bin/python bench/trade_bench.py [--bars 60] [--orders 40] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.backtest import default_policy_path  # noqa: E402
from engine.core.policy import StaticPolicy  # noqa: E402
from engine.journal.store import Journal  # noqa: E402
from engine.trade import TradeSession, TradeSettings  # noqa: E402
from engine.venues.candle_files import load_market_data, sample_data_dir  # noqa: E402
from engine.venues.ccxt_broker import CcxtBroker  # noqa: E402
from engine.venues.ccxt_setup import make_exchange  # noqa: E402
from engine.venues.exchange_sim.server import (  # noqa: E402
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    start_local_exchange,
)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def bare_ccxt(url: str, symbol: str, n: int) -> list[float]:
    """Entry + two backstops + closing, with ccxt alone; latency of the three entry orders."""
    ex = make_exchange("binanceusdm", url, DEFAULT_API_KEY, DEFAULT_SECRET)
    out = []
    try:
        await ex.load_markets()
        price = float((await ex.fetch_ticker(symbol))["last"])
        qty = float(ex.amount_to_precision(symbol, 50 / price))
        for _ in range(n):
            t0 = time.perf_counter()
            await ex.create_order(symbol, "market", "buy", qty)
            for kind, trig in (("STOP_MARKET", 0.95), ("TAKE_PROFIT_MARKET", 1.05)):
                await ex.create_order(symbol, kind, "sell", None, None,
                                      {"triggerPrice": float(ex.price_to_precision(symbol, price * trig)),
                                       "closePosition": True})  # fmt: skip
            out.append(time.perf_counter() - t0)
            await ex.create_order(symbol, "market", "sell", qty, None, {"reduceOnly": True})
            for o in await ex.fetch_open_orders(symbol, None, None, {"trigger": True}):
                await ex.cancel_order(o["id"], symbol, {"trigger": True})
    finally:
        await ex.close()
    return out


async def qctl_cycles(url: str, symbols: list[str], bars: int, sim, db: str) -> tuple[list, list]:
    latencies: list[float] = []
    rejected: list[str] = []
    original = CcxtBroker.open_position

    def timed(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        t0 = time.perf_counter()
        events = original(self, *a, **k)
        if any(e.fill is not None for e in events):  # entries the exchange filled
            latencies.append(time.perf_counter() - t0)
        else:
            rejected.extend(e.order.detail for e in events if e.order is not None)
        return events

    CcxtBroker.open_position = timed  # type: ignore[method-assign]
    ex = make_exchange("binanceusdm", url, DEFAULT_API_KEY, DEFAULT_SECRET)
    journal = Journal(db)
    try:
        settings = TradeSettings(mode="live", symbols=symbols, max_bars=bars, poll_seconds=0.001,
                                 history_bars=300, equity=None)  # fmt: skip
        session = TradeSession(settings, StaticPolicy.from_toml(default_policy_path()), journal, ex,
                               out=lambda s: None, on_wait=lambda: sim.advance(1))  # fmt: skip
        summary = await session.run()
    finally:
        CcxtBroker.open_position = original  # type: ignore[method-assign]
        await ex.close()
        journal.close()
    if rejected:
        print(
            f"  ({len(rejected)} entries refused before or by the exchange, e.g. {rejected[0]!r})"
        )
    return latencies, summary.timings


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bars", type=int, default=60)
    ap.add_argument("--orders", type=int, default=40)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    data = Path(args.data) if Path(args.data, "ohlcv").is_dir() else sample_data_dir()
    symbols = sorted(
        s for s, sd in load_market_data(data, timeframe="1h").symbols.items() if not sd.is_spot
    )
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {len(symbols)} symbols from {data}"
    )
    with start_local_exchange(data, symbols=symbols, bar_seconds=0) as sim:
        bare = asyncio.run(bare_ccxt(sim.url, "BTC/USDT:USDT", args.orders))
        with tempfile.TemporaryDirectory() as tmp:
            lat, timings = asyncio.run(
                qctl_cycles(sim.url, symbols, args.bars, sim, f"{tmp}/bench.db")
            )
    ms = 1000.0
    print(f"\nentry with its two backstops ({args.orders} bare, {len(lat)} by qctl):")
    print(
        f"  bare ccxt, 3 orders      p50 {pct(bare, 0.5) * ms:7.2f} ms   p99 {pct(bare, 0.99) * ms:7.2f} ms"
    )
    if lat:
        print(f"  qctl open_position       p50 {pct(lat, .5) * ms:7.2f} ms   p99 {pct(lat, .99) * ms:7.2f} ms"
              f"   ratio p50 {pct(lat, .5) / pct(bare, .5):.2f}x")  # fmt: skip
    cycles = timings[1:]  # the first cycle pays connection set-up
    total = [c.total for c in cycles]
    rest = [c.total - c.exchange for c in cycles]
    share = {
        k: sum(getattr(c, k) for c in cycles) / sum(total)
        for k in ("exchange", "policy", "journal")
    }
    print(f"\ncycle, {len(symbols)} symbols, {len(cycles)} bars:")
    print(
        f"  whole cycle              p50 {pct(total, 0.5) * ms:7.2f} ms   p99 {pct(total, 0.99) * ms:7.2f} ms"
    )
    print(f"  apart from ccxt time     p50 {pct(rest, .5) * ms:7.2f} ms   p99 {pct(rest, .99) * ms:7.2f} ms"
          f"   (goal < 50 ms: {'met' if pct(rest, .5) < 0.05 else 'NOT met'} at p50)")  # fmt: skip
    cpu = [c.cpu for c in cycles]
    print(f"  qctl CPU time            p50 {pct(cpu, .5) * ms:7.2f} ms   p99 {pct(cpu, .99) * ms:7.2f} ms"
          "   (its own work; on a quiet machine the line above comes close to it)")  # fmt: skip
    print(f"  share: ccxt {share['exchange']:.0%}, policy {share['policy']:.0%}, journal {share['journal']:.0%}, "
          f"engine {1 - sum(share.values()):.0%}   mean {statistics.mean(total) * ms:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
