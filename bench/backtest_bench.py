"""Backtest throughput: symbol-bars per second of `run_backtest` with the legacy policy, journal on.

Data: the 16 `binance_usdm_*` 1h files of ../shared/data/ohlcv (+ funding), each replicated under
new names (BTC-USDT, BTC2-USDT, ...; same bars, same leverage brackets) until the run holds at
least 1,000,000 symbol-bars. In the same process a plain vectorised numpy reference runs the same
entry rules (legacy universe score, refresh cadence, count, core symbols, side from the drift) and
the same stop-loss / take-profit backstops with fees, but none of the engine's machinery (no
harvest ladder, kill score, risk kernel, funding, liquidation or journal): the ratio says what the
event-driven engine costs over bare numpy. Peak memory (RSS high-water mark) is printed too.

    .venv/bin/python bench/backtest_bench.py [--data ../shared/data] [--min-bars 1000000]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TARGET = 250_000  # symbol-bars per second (issue 4)
sys.path.insert(0, str(REPO))

from engine.backtest import run_backtest  # noqa: E402
from engine.core.bars import MarketData, SymbolData  # noqa: E402
from engine.core.policy import StaticConfig, StaticPolicy  # noqa: E402
from engine.core.tiers import LeverageTiers  # noqa: E402
from engine.journal.store import Journal  # noqa: E402
from engine.venues.candle_files import load_market_data  # noqa: E402
from engine.venues.simulated import BrokerConfig  # noqa: E402


def replicate(
    md: MarketData, tiers: LeverageTiers, min_bars: int
) -> tuple[MarketData, LeverageTiers]:
    """Copies of every symbol under new names until `min_bars` symbol-bars (same brackets)."""
    copies = max(1, math.ceil(min_bars / md.n_bars))
    symbols: dict[str, SymbolData] = {}
    brackets = {}
    for k in range(copies):
        for sym, sd in md.symbols.items():
            base, quote = sym.split("-", 1)
            name = sym if k == 0 else f"{base}{k + 1}-{quote}"
            symbols[name] = SymbolData(
                name,
                sd.timeframe,
                sd.market,
                sd.candles,
                sd.funding,
                sd.source,
                sd.mark,
                sd.exchange,
            )
            brackets[name] = tiers.tiers(sym)
    return MarketData(symbols, md.timeframe, list(md.issues)), LeverageTiers(brackets, tiers.source)


def numpy_reference(
    md: MarketData, cfg: StaticConfig, broker: BrokerConfig, equity: float
) -> tuple[float, int]:
    """Legacy entries + stop/take-profit exits, vectorised; returns (final equity, trades)."""
    names = list(md.symbols)
    close = np.stack([md.symbols[s].candles["close"].to_numpy() for s in names], axis=1)
    high = np.stack([md.symbols[s].candles["high"].to_numpy() for s in names], axis=1)
    low = np.stack([md.symbols[s].candles["low"].to_numpy() for s in names], axis=1)
    ts = md.symbols[names[0]].candles.index.to_numpy()
    n, m = close.shape
    step = int(ts[1] - ts[0])
    lb = cfg.lookback_bars
    r = np.diff(np.log(close), axis=0)  # r[i-1] is the return into bar i
    c1 = np.vstack([np.zeros((1, m)), np.cumsum(r, axis=0)])
    c2 = np.vstack([np.zeros((1, m)), np.cumsum(r * r, axis=0)])
    i_idx = np.arange(lb, n)
    s1 = c1[i_idx] - c1[i_idx - lb]
    s2 = c2[i_idx] - c2[i_idx - lb]
    mean = s1 / lb
    sigma = np.sqrt(np.maximum(s2 / lb - mean * mean, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        trend_z = s1 / (sigma * math.sqrt(lb))
    vol = np.minimum(sigma / cfg.volatility_ref, 1.0)
    trend = np.tanh(np.abs(trend_z) / cfg.trend_z_scale)
    prob = 1.0 / (1.0 + np.exp(-cfg.probability_slope * np.abs(trend_z)))
    score = cfg.weight_volatility * vol + cfg.weight_trend * trend + cfg.weight_probability * prob
    core = np.array([s in cfg.core_symbols for s in names])
    refresh = ((ts[i_idx] + step) // step) % cfg.refresh_bars == 0
    busy_until = np.full(m, -1)
    wallet = equity
    trades = 0
    fee, slip = broker.taker_fee, broker.slippage
    for k in np.flatnonzero(refresh):
        i = int(i_idx[k])
        free = busy_until < i
        held = int(m - free.sum())
        ok = free & np.isfinite(score[k]) & ((sigma[k] >= cfg.min_sigma) | core)
        cand = np.flatnonzero(ok)
        order = np.lexsort((cand, -score[k, cand], ~core[cand]))
        chosen = cand[order][: max(0, cfg.count - held)]
        chosen = chosen[(trend[k, chosen] >= cfg.min_trend_score) & (trend_z[k, chosen] != 0)]
        if chosen.size == 0 or i + 1 >= n:
            continue
        side = np.sign(trend_z[k, chosen])
        entry = close[i, chosen] * (1 + side * slip)
        qty = cfg.notional_usdt / entry
        stop = entry * (1 - side * cfg.stop_loss_pct)
        tp = entry * (1 + side * cfg.take_profit_pct)
        fwd_lo, fwd_hi = low[i + 1 :, chosen], high[i + 1 :, chosen]
        hit_stop = np.where(side > 0, fwd_lo <= stop, fwd_hi >= stop)
        hit_tp = np.where(side > 0, fwd_hi >= tp, fwd_lo <= tp)
        any_stop, any_tp = hit_stop.any(axis=0), hit_tp.any(axis=0)
        first_stop = np.where(any_stop, hit_stop.argmax(axis=0), n)
        first_tp = np.where(any_tp, hit_tp.argmax(axis=0), n)
        stop_first = first_stop <= first_tp
        exit_at = np.minimum(first_stop, first_tp)
        done = exit_at < n
        exit_px = np.where(stop_first, stop, tp) * (1 - side * slip)
        last = close[-1, chosen]
        px = np.where(done, exit_px, last)
        pnl = side * qty * (px - entry) - fee * qty * (entry + px)
        wallet += float(pnl.sum())
        trades += int(chosen.size)
        busy_until[chosen] = np.where(done, i + 1 + exit_at, n)
    return wallet, trades


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--min-bars", type=int, default=1_000_000)
    ap.add_argument("--equity", type=float, default=10_000.0)
    ap.add_argument("--policy", type=Path, default=REPO / "examples" / "legacy_policy.toml")
    ap.add_argument(
        "--without-journal",
        action="store_true",
        help="also time the same run with no journal (shows the journal's share)",
    )
    args = ap.parse_args(argv)

    files = sorted((args.data / "ohlcv").glob("binance_usdm_*_1h.csv"))
    symbols = [f.name.split("_")[2] for f in files]
    md0 = load_market_data(args.data / "ohlcv", symbols=symbols, timeframe="1h")
    tiers0 = LeverageTiers.load()
    md, tiers = replicate(md0, tiers0, args.min_bars)
    policy = StaticPolicy.from_toml(args.policy)
    broker = BrokerConfig.from_toml()
    print(
        f"data: {len(md0.symbols)} symbols x {md0.n_bars // len(md0.symbols)} bars, replicated "
        f"to {len(md.symbols)} symbols = {md.n_bars:,} symbol-bars (1h, with funding)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        with Journal(db) as journal:
            t0, c0 = time.perf_counter(), time.process_time()
            res = run_backtest(
                md,
                policy,
                equity=args.equity,
                tiers=tiers,
                broker_config=broker,
                journal=journal,
                data_source=str(args.data),
            )
            engine_s = time.perf_counter() - t0
            engine_cpu = time.process_time() - c0
            rows = {
                t: journal.count(t, res.run_id)
                for t in ("decision", "order", "fill", "position", "equity", "safety_event")
            }
        db_mb = db.stat().st_size / 1e6

    bare = None
    if args.without_journal:
        t0, c0 = time.perf_counter(), time.process_time()
        run_backtest(md, policy, equity=args.equity, tiers=tiers, broker_config=broker)
        bare = (time.perf_counter() - t0, time.process_time() - c0)

    t0, c0 = time.perf_counter(), time.process_time()
    ref_wallet, ref_trades = numpy_reference(md, policy.config, broker, args.equity)
    ref_s = time.perf_counter() - t0
    ref_cpu = time.process_time() - c0

    bars = res.stats.symbol_bars
    eng_rate, ref_rate = bars / engine_s, bars / ref_s
    eng_cpu_rate, ref_cpu_rate = bars / engine_cpu, bars / ref_cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row_list = ", ".join(f"{k} {v:,}" for k, v in rows.items())
    print(
        f"engine   : wall {engine_s:6.2f} s = {eng_rate:10,.0f} symbol-bars/s; "
        f"cpu {engine_cpu:6.2f} s = {eng_cpu_rate:10,.0f}/s "
        f"({res.metrics.n_trades} trades, final equity {res.metrics.end_equity:,.2f})"
    )
    print(f"  journal: {sum(rows.values()):,} rows ({row_list}), {db_mb:.1f} MB")
    if bare is not None:
        print(
            f"  without journal: wall {bare[0]:6.2f} s = {bars / bare[0]:10,.0f} symbol-bars/s; "
            f"cpu {bare[1]:6.2f} s = {bars / bare[1]:10,.0f}/s"
        )
    print(
        f"reference: wall {ref_s:6.2f} s = {ref_rate:10,.0f} symbol-bars/s; "
        f"cpu {ref_cpu:6.2f} s = {ref_cpu_rate:10,.0f}/s "
        f"({ref_trades} trades, final equity {ref_wallet:,.2f}; numpy, stops/TP only)"
    )
    print(
        f"ratio engine/reference: {eng_rate / ref_rate:.3f} wall, "
        f"{eng_cpu_rate / ref_cpu_rate:.3f} cpu (reference {ref_rate / eng_rate:.1f}x faster)"
    )
    print(f"peak memory (max RSS): {peak_mb:,.0f} MB")
    print(
        f"target >= {TARGET:,} symbol-bars/s: wall {'met' if eng_rate >= TARGET else 'NOT met'}, "
        f"cpu {'met' if eng_cpu_rate >= TARGET else 'NOT met'} "
        "(cpu time excludes waiting for cores that other processes hold)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
