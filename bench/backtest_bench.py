"""Backtest throughput: symbol-bars per second of `run_backtest` with the legacy policy, journal on.

Two shapes of the same real data (the 16 `binance_usdm_*` 1h files of ../shared/data/ohlcv, with
their funding prints), each grown by a repeat factor:

- `long`: few symbols x long history — the 16 symbols' 9,120 bars repeated back in time (copy k
  ends where copy k-1 begins, prices scaled so that the series stays continuous; same symbols, so
  the real leverage brackets apply). What most users backtest.
- `wide`: many symbols x short history — the 16 symbols copied under new names (BTC2-USDT, ...;
  same bars, same brackets), all side by side.

Every case runs in a child process of its own (so its peak RSS is its own) and, in the same
process, a plain vectorised numpy reference of the same entry rules (legacy universe score, refresh
cadence, count, core symbols, side from the drift) and the same stop-loss / take-profit backstops
with fees, but none of the engine's machinery (no harvest ladder, kill score, risk kernel, funding,
liquidation or journal): the ratio says what the event-driven engine costs over bare numpy.
The load average is printed with every figure: the machine may be shared. The engine's CPU
seconds include the journal's write-behind process (SQLite commits in a child process); its
peak memory is the engine process's.

    .venv/bin/python bench/backtest_bench.py                      # both shapes at 8x (~1.2M bars)
    .venv/bin/python bench/backtest_bench.py --shape long --repeat 1,8,32   # linear in bars?
    .venv/bin/python bench/backtest_bench.py --shape long --repeat 69       # ~10M symbol-bars
    .venv/bin/python bench/backtest_bench.py --shape long --repeat 8 --profile
    .venv/bin/python bench/backtest_bench.py --shape long --repeat 8 --sample
    .venv/bin/python bench/backtest_bench.py --shape long --repeat 1 --instructions

`--profile` runs cProfile (exact call counts, but its cost per Python call inflates small
functions); `--sample` samples the stack every 0.5 ms of CPU time instead (SIGPROF) and prints
each function's share of the loop's samples, and the callers of `__init__`s (object building).
`--instructions` counts the CPU instructions of the engine run under valgrind (cachegrind, no
cache simulation; ~50x slower): the engine process, journal on and committed in that process
(no write-behind writer, whose use depends on timing), less the same process that loads the
data and stops there. Wall-clock and CPU-second rates on a shared machine differ by
up to 1.7x from one run to the next; the instruction count of one code version moves by well
under 1 %, so it tells whether a change of a few percent is one.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TARGET = 250_000  # symbol-bars per second (issue 13)
MAX_RATIO = 4.0  # the engine within 4x of the numpy reference (issue 13)
MAX_RSS_MB_AT_10M = 1024  # peak memory under 1 GB at 10M symbol-bars (issue 13)
sys.path.insert(0, str(REPO))

from engine.backtest import run_backtest  # noqa: E402
from engine.core.bars import MarketData, SymbolData  # noqa: E402
from engine.core.policy import StaticConfig, StaticPolicy  # noqa: E402
from engine.core.tiers import LeverageTiers  # noqa: E402
from engine.journal.store import Journal  # noqa: E402
from engine.venues.candle_files import load_market_data  # noqa: E402
from engine.venues.simulated import BrokerConfig  # noqa: E402


def widen(md: MarketData, tiers: LeverageTiers, copies: int) -> tuple[MarketData, LeverageTiers]:
    """`copies` copies of every symbol under new names, side by side (same bars, same brackets)."""
    symbols: dict[str, SymbolData] = {}
    brackets = {}
    for k in range(copies):
        for sym, sd in md.symbols.items():
            base, quote = sym.split("-", 1)
            name = sym if k == 0 else f"{base}{k + 1}-{quote}"
            symbols[name] = SymbolData(name, sd.timeframe, sd.market, sd.candles, sd.funding,
                                       sd.source, sd.mark, sd.exchange)  # fmt: skip
            brackets[name] = tiers.tiers(sym)
    return MarketData(symbols, md.timeframe, list(md.issues)), LeverageTiers(brackets, tiers.source)


def lengthen(md: MarketData, copies: int) -> MarketData:
    """Each symbol's history repeated `copies` times back in time, prices kept continuous.

    Built in one (5, n) block per symbol, so that the data take what a loaded file would
    (no transient copies that would inflate the peak memory the bench reports)."""
    import pandas as pd

    out: dict[str, SymbolData] = {}
    for sym, sd in md.symbols.items():
        c = sd.candles
        ts = c.index.to_numpy().astype(np.int64)
        n = len(ts)
        step = int(np.median(np.diff(ts)))
        span = int(ts[-1] - ts[0]) + step
        block = np.empty((5, n * copies))
        src = c[["open", "high", "low", "close", "volume"]].to_numpy().T
        index = np.empty(n * copies, dtype=np.int64)
        scale = 1.0
        for k in range(copies):
            if k:  # copy k ends (close) where copy k-1 starts (open): scale its prices
                scale *= float(src[0, 0]) / float(src[3, -1])
            lo = (copies - 1 - k) * n
            block[:4, lo : lo + n] = src[:4] * scale
            block[4, lo : lo + n] = src[4]
            index[lo : lo + n] = ts - k * span
        candles = pd.DataFrame(block.T, index=pd.Index(index, name=c.index.name),
                               columns=["open", "high", "low", "close", "volume"], copy=False)  # fmt: skip
        funding = None
        if sd.funding is not None:
            f_ts = sd.funding.index.to_numpy().astype(np.int64)
            rates = sd.funding["funding_rate"].to_numpy()
            funding = pd.DataFrame(
                {"funding_rate": np.tile(rates, copies)},
                index=pd.Index(np.concatenate([f_ts - k * span for k in range(copies)][::-1]),
                               name=sd.funding.index.name),
            )  # fmt: skip
        out[sym] = SymbolData(sym, sd.timeframe, sd.market, candles, funding, sd.source, None,
                              sd.exchange)  # fmt: skip
    return MarketData(out, md.timeframe, list(md.issues))


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
        # first bar after i that reaches the stop or the take-profit (the stop when both), found
        # in windows that grow 4x: linear in the bars a trade lasts, not in the whole history
        exit_at = np.full(chosen.size, n)  # absolute bar index; n = still open at the end
        stop_first = np.ones(chosen.size, dtype=bool)
        todo = np.arange(chosen.size)
        lo_bar, width = i + 1, 64
        while todo.size and lo_bar < n:
            hi_bar = min(n, lo_bar + width)
            cols, sd_ = chosen[todo], side[todo]
            seg_lo, seg_hi = low[lo_bar:hi_bar, cols], high[lo_bar:hi_bar, cols]
            hit_stop = np.where(sd_ > 0, seg_lo <= stop[todo], seg_hi >= stop[todo])
            hit_tp = np.where(sd_ > 0, seg_hi >= tp[todo], seg_lo <= tp[todo])
            any_stop, any_tp = hit_stop.any(axis=0), hit_tp.any(axis=0)
            width_now = hi_bar - lo_bar
            first_stop = np.where(any_stop, hit_stop.argmax(axis=0), width_now)
            first_tp = np.where(any_tp, hit_tp.argmax(axis=0), width_now)
            found = any_stop | any_tp
            exit_at[todo[found]] = lo_bar + np.minimum(first_stop, first_tp)[found]
            stop_first[todo[found]] = (first_stop <= first_tp)[found]
            todo = todo[~found]
            lo_bar, width = hi_bar, width * 4
        done = exit_at < n
        exit_px = np.where(stop_first, stop, tp) * (1 - side * slip)
        last = close[-1, chosen]
        px = np.where(done, exit_px, last)
        pnl = side * qty * (px - entry) - fee * qty * (entry + px)
        wallet += float(pnl.sum())
        trades += int(chosen.size)
        busy_until[chosen] = np.where(done, exit_at, n)
    return wallet, trades


# the loop's phases: (label, function names whose cumulative time is the phase's)
PHASES = (
    ("entry and skip decisions (risk kernel, fills, journal rows)", ("_handle_decision",)),
    ("exit controller (quiet-bar predictions included)", ("evaluate",)),
    ("policy at universe refreshes (safe_decide)", ("safe_decide",)),
    ("broker bar pass (funding, stops, liquidation)", ("process_bar",)),
    ("equity row", ("_record_equity",)),
    ("exits filled", ("_apply_exit",)),
    ("marking, limits at every bar", ("mark_to_close", "hold_limits")),
)


def print_phases(stats: pstats.Stats) -> None:
    """Each phase's share of the run (cumulative times of the loop's calls, from the profile)."""
    cum: dict[str, float] = {}
    total = 0.0
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        cum[name] = cum.get(name, 0.0) + ct
        if name == "run" and file.endswith("loop.py"):
            total = ct
    if total <= 0:
        return
    print("where the time goes (share of the loop's run, cProfile):")
    for label, names in PHASES:
        print(f"  {sum(cum.get(n, 0.0) for n in names) / total:6.1%}  {label}")


class StackSampler:
    """Samples the Python stack every `interval` s of CPU time (SIGPROF, main thread): shares
    of the loop's run by function, inclusive and own, less biased than cProfile's per-call cost."""

    def __init__(self, interval: float = 0.0005) -> None:
        import collections

        self.interval = interval
        self.inclusive: collections.Counter[str] = collections.Counter()
        self.own: collections.Counter[str] = collections.Counter()
        self.init_callers: collections.Counter[str] = collections.Counter()

    @staticmethod
    def _name(code) -> str:  # type: ignore[no-untyped-def]
        return f"{Path(code.co_filename).name}:{code.co_name}"

    def _sample(self, _signum, frame) -> None:  # type: ignore[no-untyped-def]
        if frame is None:
            return
        leaf = self._name(frame.f_code)
        self.own[leaf] += 1
        if frame.f_code.co_name == "__init__" and frame.f_back is not None:
            caller = frame.f_back
            self.init_callers[f"{self._name(caller.f_code)}:{caller.f_lineno}"] += 1
        seen = set()
        while frame is not None:
            name = self._name(frame.f_code)
            if name not in seen:
                seen.add(name)
                self.inclusive[name] += 1
            frame = frame.f_back

    def start(self) -> None:
        import signal

        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        import signal

        signal.setitimer(signal.ITIMER_PROF, 0, 0)

    def print(self, top: int = 30) -> None:
        total = self.inclusive.get("loop.py:run", 0)
        if total <= 0:
            return
        print(
            f"sampled stacks ({total} samples in the loop's run, every {self.interval * 1e3:g} ms CPU)"
        )
        for title, counter in (("inclusive", self.inclusive), ("own", self.own),
                               ("__init__ by caller", self.init_callers)):  # fmt: skip
            print(f"  {title}:")
            for name, n in counter.most_common(top):
                print(f"    {n / total:6.1%}  {name}")


def _children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for child processes so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def load_case(data: Path, shape: str, repeat: int) -> tuple[MarketData, LeverageTiers]:
    files = sorted((data / "ohlcv").glob("binance_usdm_*_1h.csv"))
    symbols = [f.name.split("_")[2] for f in files]
    md0 = load_market_data(data / "ohlcv", symbols=symbols, timeframe="1h")
    tiers = LeverageTiers.load()
    if shape == "wide":
        return widen(md0, tiers, repeat)
    return lengthen(md0, repeat), tiers


class _InProcessJournal(Journal):
    """The journal committing its batches in this process (no write-behind writer): what
    `--instructions` counts does not depend on when another process gets the CPU."""

    def set_write_behind(self, on: bool) -> None:
        return None


def run_case(args: argparse.Namespace) -> dict[str, object]:
    """One measurement (in this process): the engine with its journal, then the reference."""
    md, tiers = load_case(args.data, args.shape, args.repeat)
    policy = StaticPolicy.from_toml(args.policy)
    broker = BrokerConfig.from_toml()
    if args.setup_only:  # the baseline of --instructions: everything before the engine run
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        with (_InProcessJournal if args.engine_only else Journal)(db) as journal:
            profiler = cProfile.Profile() if args.profile else None
            sampler = StackSampler() if args.sample else None
            t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
            if profiler is not None:
                profiler.enable()
            if sampler is not None:
                sampler.start()
            res = run_backtest(md, policy, equity=args.equity, tiers=tiers, broker_config=broker,
                               journal=journal, data_source=str(args.data))  # fmt: skip
            if profiler is not None:
                profiler.disable()
            if sampler is not None:
                sampler.stop()
            engine_s = time.perf_counter() - t0
            # the engine's CPU time includes its journal writer process (write-behind)
            writer_cpu = _children_cpu() - k0
            engine_cpu = time.process_time() - c0 + writer_cpu
            rows = sum(
                journal.count(t, res.run_id)
                for t in ("decision", "order", "fill", "position", "equity", "safety_event")
            )
    if sampler is not None:
        sampler.print()
    if profiler is not None:
        print(f"profile of the engine run ({args.shape} x{args.repeat}), top 25 by own time:")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)
        print_phases(stats)
    peak_engine_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.engine_only:  # --instructions counts the engine run only
        return {"symbol_bars": res.stats.symbol_bars}
    t0, c0 = time.perf_counter(), time.process_time()
    ref_wallet, ref_trades = numpy_reference(md, policy.config, broker, args.equity)
    ref_s = time.perf_counter() - t0
    ref_cpu = time.process_time() - c0
    return {
        "shape": args.shape,
        "repeat": args.repeat,
        "symbols": len(md.symbols),
        "bars_per_symbol": md.n_bars // len(md.symbols),
        "symbol_bars": res.stats.symbol_bars,
        "engine_s": engine_s,
        "engine_cpu_s": engine_cpu,
        "writer_cpu_s": writer_cpu,
        "reference_s": ref_s,
        "reference_cpu_s": ref_cpu,
        "trades": res.metrics.n_trades,
        "reference_trades": ref_trades,
        "journal_rows": rows,
        "peak_rss_mb": peak_engine_mb,
        "load_avg_1m": os.getloadavg()[0],
    }


def _valgrind_instructions(cmd: list[str]) -> int:
    """Instructions the command's process executed (valgrind cachegrind, no cache simulation;
    child processes such as the journal writer are not counted)."""
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict layouts from run to run
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         *cmd], capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    for line in proc.stderr.splitlines():
        if "I   refs:" in line or "I refs:" in line:
            return int(line.rsplit(":", 1)[1].strip().replace(",", ""))
    raise RuntimeError(f"no instruction count from valgrind:\n{proc.stderr[-2000:]}")


def count_instructions(args: argparse.Namespace) -> int:
    """`--instructions`: per case, the engine run's instructions (module docstring)."""
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind on the PATH", file=sys.stderr)
        return 2
    shapes = ("long", "wide") if args.shape == "both" else (args.shape,)
    for shape in shapes:
        for rep in [int(r) for r in args.repeat.split(",")]:
            base = [sys.executable, __file__, "--child", "--shape", shape, "--repeat", str(rep),
                    "--data", str(args.data), "--equity", str(args.equity),
                    "--policy", str(args.policy)]  # fmt: skip
            total = _valgrind_instructions([*base, "--engine-only"])
            setup = _valgrind_instructions([*base, "--setup-only"])
            run = total - setup
            print(
                f"{shape} x{rep}: engine run {run / 1e9:.3f} G instructions (process "
                f"{total / 1e9:.3f} G, data loading and imports {setup / 1e9:.3f} G)",
                flush=True,
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--shape", choices=("long", "wide", "both"), default="both")
    ap.add_argument("--repeat", default="8", help="comma-separated repeat factors, e.g. 1,8,32")
    ap.add_argument("--equity", type=float, default=10_000.0)
    ap.add_argument("--policy", type=Path, default=REPO / "examples" / "legacy_policy.toml")
    ap.add_argument("--profile", action="store_true", help="cProfile the engine run")
    ap.add_argument("--sample", action="store_true", help="sample the engine run's stacks")
    ap.add_argument(
        "--instructions", action="store_true", help="count the engine run's instructions (valgrind)"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        args.repeat = int(args.repeat)
        print("RESULT " + json.dumps(run_case(args)))
        return 0
    if args.instructions:
        return count_instructions(args)

    shapes = ("long", "wide") if args.shape == "both" else (args.shape,)
    repeats = [int(r) for r in args.repeat.split(",")]
    print(f"machine: {os.cpu_count()} cores; load average (1, 5, 15 min) {os.getloadavg()}")
    print(
        f"{'shape':5} {'x':>3} {'symbols':>7} {'bars/sym':>8} {'symbol-bars':>11} "
        f"{'wall s':>7} {'bars/s':>9} {'cpu s':>7} {'bars/cpu-s':>10} "
        f"{'ref cpu s':>9} {'ref bars/cpu-s':>14} {'ratio':>5} {'peak MB':>7} {'load':>4}"
    )
    results = []
    for shape in shapes:
        for rep in repeats:
            cmd = [sys.executable, __file__, "--child", "--shape", shape, "--repeat", str(rep),
                   "--data", str(args.data), "--equity", str(args.equity),
                   "--policy", str(args.policy)] + (["--profile"] if args.profile else []) + (["--sample"] if args.sample else [])  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = proc.stdout.splitlines()
            for line in lines:
                if not line.startswith("RESULT "):
                    print(line)
            found = [json.loads(x[7:]) for x in lines if x.startswith("RESULT ")]
            if proc.returncode != 0 or not found:
                print(proc.stderr, file=sys.stderr)
                return 1
            r = found[0]
            results.append(r)
            rate = r["symbol_bars"] / r["engine_s"]
            cpu_rate = r["symbol_bars"] / r["engine_cpu_s"]
            ref_cpu_rate = r["symbol_bars"] / r["reference_cpu_s"]
            print(
                f"{shape:5} {rep:>3} {r['symbols']:>7} {r['bars_per_symbol']:>8,} "
                f"{r['symbol_bars']:>11,} {r['engine_s']:>7.1f} {rate:>9,.0f} "
                f"{r['engine_cpu_s']:>7.1f} {cpu_rate:>10,.0f} {r['reference_cpu_s']:>9.2f} "
                f"{ref_cpu_rate:>14,.0f} {ref_cpu_rate / cpu_rate:>5.2f} "
                f"{r['peak_rss_mb']:>7,.0f} {r['load_avg_1m']:>4.1f}",
                flush=True,
            )
    print(
        "ratio = reference speed / engine speed, both in CPU seconds (lower is better; goal <= 4);"
        " the engine's CPU seconds include its journal writer (a child process);"
        " wall-clock rates depend on how many processes share the cores (load column)"
    )
    for r in results:
        rate = r["symbol_bars"] / r["engine_s"]
        cpu_rate = r["symbol_bars"] / r["engine_cpu_s"]
        ratio = (r["symbol_bars"] / r["reference_cpu_s"]) / cpu_rate
        ok = "met" if min(rate, cpu_rate) >= TARGET and ratio <= MAX_RATIO else "NOT met"
        line = (
            f"{r['shape']} x{r['repeat']}: {rate:,.0f} symbol-bars/s wall, {cpu_rate:,.0f} per "
            f"CPU second (journal writer {r['writer_cpu_s']:.1f} of {r['engine_cpu_s']:.1f} CPU s),"
            f" {ratio:.2f}x the reference's CPU time; goal >= {TARGET:,}/s within "
            f"{MAX_RATIO:g}x: {ok}"
        )
        if r["symbol_bars"] >= 10_000_000:
            mem_ok = r["peak_rss_mb"] < MAX_RSS_MB_AT_10M
            line += (
                f"; peak {r['peak_rss_mb']:,.0f} MB < 1 GB: {'met' if mem_ok else 'NOT met'}"
                " (the engine process; the journal writer is a fresh interpreter with its own"
                " pages, whose peak RUSAGE_CHILDREN over-reports: it counts the image it was"
                " started from, the engine's, at its exec)"
            )
        print(line)
    by_shape: dict[str, list[dict]] = {}
    for r in results:
        by_shape.setdefault(r["shape"], []).append(r)
    for shape, rs in by_shape.items():
        if len(rs) < 2:
            continue
        base = rs[0]
        per_bar = base["engine_cpu_s"] / base["symbol_bars"]
        parts = []
        for r in rs[1:]:
            grown = (r["peak_rss_mb"] - base["peak_rss_mb"]) * 2**20  # MiB to bytes
            parts.append(
                f"x{r['repeat']}: CPU time per symbol-bar {r['engine_cpu_s'] / r['symbol_bars'] / per_bar:.2f}"
                f" of x{base['repeat']}'s, memory +{grown / (r['symbol_bars'] - base['symbol_bars']):.0f}"
                " bytes per added symbol-bar"
            )
        print(f"{shape}: " + "; ".join(parts) + " (constant bytes per added bar = linear)")
    print(f"load average now: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
