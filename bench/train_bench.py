"""Training time and memory of the five heads, AIPolicy's per-bar decision latency, the
walk-forward table of the trained set, and how a sweep scales with Dask workers.

    .venv/bin/python bench/train_bench.py [--data ../shared/data] [--bars 500]
        [--sweep-configs 20] [--workers 1,2,4] [--sweep-symbols 4] [--sweep-bars 3000]
        [--walk-forward-data ../shared/data/history] [--walk-forward-folds 6]

The walk-forward (`models.walkforward`, what `qctl train --walk-forward` runs) cuts the full
history into test blocks, trains a model set before each and runs the AI, the packaged legacy
policy and flat through the engine on the block; it prints the per-fold table.

The sweep runs `--sweep-configs` configurations (one fold job each per walk-forward fold) on a
slice of the data, first in this process (what a user runs without --dask), then on a Dask
LocalCluster of each worker count; it prints each time and its speed-up over the in-process run.

Targets (issue 5): training < 60 s and a decision < 5 ms per bar for 10 symbols, on 2 cores.
Peak memory is the process's peak resident set (LightGBM allocates outside Python's tracker).
The machine's load average is printed too: LightGBM's threads slow down sharply when other
processes hold the cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.core.tiers import LeverageTiers  # noqa: E402
from engine.domain import Bars, MarketSnapshot, Portfolio  # noqa: E402
from engine.venues.candle_files import load_market_data  # noqa: E402
from engine.venues.simulated import BrokerConfig  # noqa: E402
from models.config import TrainConfig  # noqa: E402
from models.policy import AIPolicy  # noqa: E402
from models.train import train_models  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--bars", type=int, default=500, help="bars timed for decisions")
    parser.add_argument("--symbols", type=int, default=10, help="symbols per decision")
    parser.add_argument("--config", type=Path, help="TOML [train] overrides (e.g. num_threads)")
    parser.add_argument("--sweep-configs", type=int, default=20, help="configurations (0: none)")
    parser.add_argument("--workers", default="1,2,4", help="Dask worker counts to time")
    parser.add_argument("--sweep-symbols", type=int, default=4, help="symbols in the sweep")
    parser.add_argument("--sweep-bars", type=int, default=3000, help="bars per sweep symbol")
    parser.add_argument("--skip-training", action="store_true", help="no training timing")
    parser.add_argument(
        "--walk-forward-data", type=Path, default=REPO.parent / "shared" / "data" / "history"
    )
    parser.add_argument("--walk-forward-folds", type=int, default=6, help="test blocks (0: none)")
    parser.add_argument(
        "--walk-forward-sweep", type=Path, help="sweep TOML each fold chooses from (nested)"
    )
    parser.add_argument(
        "--omp-check",
        action="store_true",
        help="only time one small fit with 1 and 2 LightGBM threads, OpenMP waiting actively "
        "(libgomp's default) and passively (qctl's), with --busy spinning processes beside it",
    )
    parser.add_argument("--busy", type=int, default=0, help="spinning processes (--omp-check)")
    parser.add_argument("--walk-forward-json", type=Path, help="also write the result here")
    parser.add_argument("--fit-once", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--ideas",
        action="store_true",
        help="only judge the candidate trading ideas (models.research) on the validation folds "
        "of --data before --train-end, then once on --holdout-symbols after it",
    )
    parser.add_argument("--train-end", default="2026-03-01", help="with --ideas (UTC date)")
    parser.add_argument("--holdout-symbols", default="AAVE-USDT,NEAR-USDT,SUI-USDT")
    parser.add_argument("--horizons", default="24", help="with --ideas: label horizons, bars")
    parser.add_argument("--tail-share", type=float, default=0.2, help="with --ideas")
    parser.add_argument(
        "--ideas-walk-forward",
        type=int,
        default=0,
        help="with --ideas: instead of the held-out symbols, N walk-forward blocks of --data "
        "(as qctl train --walk-forward cuts them), every symbol, each judged on its own past",
    )
    args = parser.parse_args()
    if args.ideas:
        ideas(args)
        return
    if args.fit_once:
        fit_once(args)
        return
    if args.omp_check:
        omp_check(args)
        return
    if not args.skip_training:
        training(args)
    if args.walk_forward_folds:
        walk_forward_table(args)
    if args.sweep_configs:
        sweep_scaling(args)


def fit_once(args: argparse.Namespace) -> None:
    """One fit of every head (4 symbols x 9,120 h, 40 rounds); prints wall and CPU seconds."""
    from models.features import FeatureSpec
    from models.train import build_training_set, fit_heads

    market = load_market_data(args.data)
    names = sorted(market.symbols)[:4]
    candles = {s: market.symbols[s].candles for s in names}
    funding = {s: market.symbols[s].funding for s in names}
    cfg = TrainConfig.from_mapping({"num_threads": args.fit_once, "rounds": 40})
    ts_set = build_training_set(candles, funding, FeatureSpec(), cfg)
    c0, t0 = cpu_s(), time.perf_counter()
    fit_heads(ts_set.frame.iloc[:: cfg.row_stride], ts_set.features, cfg)
    print(f"{time.perf_counter() - t0:.2f} {cpu_s() - c0:.2f}")


def omp_check(args: argparse.Namespace) -> None:
    """The same small fit in fresh processes: 1 and 2 threads, active and passive waiting."""
    import subprocess

    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
    ]
    try:
        time.sleep(1 if spinners else 0)
        print(f"one fit of the heads, {args.busy} spinning processes beside it, "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        for policy in ("active", "passive"):
            for threads in (1, 2):
                env = {**os.environ, "OMP_WAIT_POLICY": policy}
                out = subprocess.run(
                    [sys.executable, __file__, "--data", str(args.data), "--fit-once",
                     str(threads)], env=env, capture_output=True, text=True, check=True,
                ).stdout.split()  # fmt: skip
                print(f"  OMP_WAIT_POLICY={policy}, {threads} thread(s): {out[0]} s wall, "
                      f"{out[1]} CPU s")  # fmt: skip
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def ideas(args: argparse.Namespace) -> None:
    """Each candidate idea: validation figures (training period only), then held-out once."""
    from datetime import UTC, datetime

    from engine.backtest import default_policy_path
    from engine.core.policy import load_static_config
    from models.research import IdeaParams, evaluate_ideas

    market = load_market_data(args.data)
    candles = {s: d.candles for s, d in market.symbols.items()}
    funding = {s: d.funding for s, d in market.symbols.items()}
    end = datetime.fromisoformat(args.train_end).replace(tzinfo=UTC)
    legacy = load_static_config(default_policy_path())
    cost = BrokerConfig.from_toml().break_even_offset()
    held = [s for s in args.holdout_symbols.split(",") if s]
    base = TrainConfig.from_toml(args.config) if args.config else TrainConfig.defaults()
    params = IdeaParams(tail_share=args.tail_share, min_symbols=3)

    def pct(x: float) -> str:
        return f"{x * 100:+.3f} %"

    if args.ideas_walk_forward:
        ideas_walk_forward(args, candles, funding, legacy, cost, base, params)
        return
    for horizon in (int(h) for h in args.horizons.split(",")):
        cfg = TrainConfig.from_mapping({"horizon_bars": horizon}, base)
        load, c0, t0 = os.getloadavg()[0], cpu_s(), time.perf_counter()
        rows = evaluate_ideas(
            candles, funding, legacy, cost, cfg, params,
            train_end_ms=int(end.timestamp() * 1000), holdout_symbols=held,
        )  # fmt: skip
        print(
            f"ideas on {args.data}, horizon {horizon} bars, trained before {args.train_end}, "
            f"held out {', '.join(held)}: {time.perf_counter() - t0:.1f} s wall, "
            f"{cpu_s() - c0:.1f} CPU s (load {load:.2f})"
        )
        print("  idea | hold | validation: trades, net/trade, t, net/trade per fold | "
              "passes (level) | held-out every signal: trades, net/trade | held-out as "
              "chosen: trades, net/trade")  # fmt: skip
        for r in rows:
            v, h = r.validation, r.held_out
            every = v["every_signal"]
            folds = " / ".join(pct(m) for m in every["net_mean_by_fold"])
            chosen = v["chosen"]
            verdict = "no" if chosen is None else f"yes ({v['level']:.4g})"
            if chosen is not None and v["level"] != float("-inf"):
                verdict += (
                    f": {chosen['trades']}, {pct(chosen['net_mean'])}, t {chosen['t_stat']:.2f}"
                    f", t by entry time {chosen['t_stat_by_time']:.2f}"
                )
            elif chosen is not None:
                verdict += f": t by entry time {chosen['t_stat_by_time']:.2f}"
            elif v["best"] is not None:
                b = v["best"]
                verdict += (
                    f"; best level: {b['trades']}, {pct(b['net_mean'])}, t {b['t_stat']:.2f}"
                    f" (by entry time {b['t_stat_by_time']:.2f})"
                    f", folds {' / '.join(pct(m) for m in b['net_mean_by_fold'])}"
                )
            he, hc = h.get("every_signal"), h.get("chosen")
            print(
                f"  {r.name} | {v['horizon_bars']} | {every['trades']}, {pct(every['net_mean'])}, "
                f"{every['t_stat']:+.2f}, {folds} | {verdict} | "
                + (f"{he['trades']}, {pct(he['net_mean'])}" if he else "-")
                + " | "
                + (f"{hc['trades']}, {pct(hc['net_mean']) if hc['trades'] else '-'}" if hc else "-")
            )


def ideas_walk_forward(args, candles, funding, legacy, cost, base, params) -> None:
    """Per walk-forward block and idea: passes on its own past's validation? its block figures."""
    from models.research import evaluate_ideas
    from models.walkforward import WalkForwardConfig, walk_forward_blocks

    wf = WalkForwardConfig.from_mapping({"folds": args.ideas_walk_forward})
    for horizon in (int(h) for h in args.horizons.split(",")):
        cfg = TrainConfig.from_mapping({"horizon_bars": horizon}, base)
        load, c0, t0 = os.getloadavg()[0], cpu_s(), time.perf_counter()
        totals: dict[str, list] = {}
        print(f"ideas walk-forward on {args.data}, horizon {horizon} bars, {wf.folds} blocks")
        print("  block | idea | passes on its past (t) | block: trades as chosen, net/trade | "
              "block: every signal, net/trade")  # fmt: skip
        for block in walk_forward_blocks(candles, cfg, wf):
            rows = evaluate_ideas(
                candles, funding, legacy, cost, cfg, params,
                train_end_ms=block.train_end_ms, test_symbols=sorted(candles),
                test_start_ms=block.start_ms, test_end_ms=block.end_ms,
            )  # fmt: skip
            for r in rows:
                chosen, v = r.held_out.get("chosen"), r.validation
                every = r.held_out.get("every_signal")
                c = v["chosen"]
                t = (
                    None
                    if c is None
                    else f"{c['t_stat']:.2f}, by entry time {c['t_stat_by_time']:.2f}"
                )
                totals.setdefault(r.name, []).append(chosen)
                print(
                    f"  {block.fold + 1} | {r.name} | "
                    + ("no" if t is None else f"yes ({t})")
                    + f" | {chosen['trades']}, {chosen['net_mean'] * 100:+.3f} % | "
                    f"{every['trades']}, {every['net_mean'] * 100:+.3f} %"
                )
        for name, blocks in totals.items():
            traded = [b for b in blocks if b["trades"]]
            n = sum(b["trades"] for b in traded)
            mean = sum(b["trades"] * b["net_mean"] for b in traded) / n if n else 0.0
            wins = sum(b["net_mean"] > 0 for b in traded)
            print(
                f"  all | {name} | traded in {len(traded)} of {len(blocks)} blocks ({wins} with a "
                f"positive net mean): {n} trades, {mean * 100:+.3f} % net per trade"
            )
        print(
            f"  ({time.perf_counter() - t0:.0f} s wall, {cpu_s() - c0:.0f} CPU s, load {load:.2f})"
        )


def walk_forward_table(args: argparse.Namespace) -> None:
    """Per fold of the full history: legacy, AI and flat through the engine."""
    from engine.backtest import default_policy_path
    from models.sweep import SweepSpec
    from models.walkforward import WalkForwardConfig, walk_forward

    sweep = SweepSpec.from_toml(args.walk_forward_sweep) if args.walk_forward_sweep else None
    market = load_market_data(args.walk_forward_data)
    cfg = TrainConfig.from_toml(args.config) if args.config else TrainConfig.defaults()
    wf = WalkForwardConfig.from_mapping({"folds": args.walk_forward_folds})
    load, c0, t0 = os.getloadavg()[0], cpu_s(), time.perf_counter()
    result = walk_forward(
        market, default_policy_path(), cfg, wf, equity=10_000.0,
        source=str(args.walk_forward_data), sweep=sweep,
    )  # fmt: skip
    took, cpu = time.perf_counter() - t0, cpu_s() - c0
    if args.walk_forward_json:
        import json

        args.walk_forward_json.write_text(json.dumps(result, indent=1))
    print(
        f"walk-forward on {args.walk_forward_data} ({len(market.symbols)} symbols), "
        f"{wf.folds} test blocks after the first {wf.initial_fraction:.0%} of the timeline, "
        f"10,000 USDT per block{', sweep ' + str(sweep.params) if sweep else ''}: "
        f"{took:.0f} s wall, {cpu:.0f} CPU s (load average {load:.2f} "
        f"before, {os.getloadavg()[0]:.2f} after)"
    )
    print("  fold | test block | policy | return | Sharpe | max DD | trades | fees | funding | "
          "breaches | entry level (validation t)")  # fmt: skip
    for f in result["folds"]:
        block = f"{f['start'][:10]} .. {f['end'][:10]}"
        level = f["min_confidence"]
        note = "none (flat)" if level is None else f"{level:.4f} (t = {f['validation_t']:.2f})"
        note += "".join(f", {k} {v}" for k, v in f.get("chosen", {}).items())
        for label in ("legacy", "ai"):
            r = f["runs"][label]
            sharpe = "-" if r["sharpe"] is None else f"{r['sharpe']:.2f}"
            print(
                f"  {f['fold'] + 1} | {block} | {label} | {r['total_return'] * 100:+.2f} % | "
                f"{sharpe} | {r['max_drawdown'] * 100:.2f} % | {r['trades']} | {r['fees']:.0f} | "
                f"{r['funding']:.0f} | {r['limit_breaches']} | {note if label == 'ai' else ''}"
            )
        print(f"  {f['fold'] + 1} | {block} | flat | +0.00 % | - | 0.00 % | 0 | 0 | 0 | 0 |")
    s = result["summary"]
    print(
        f"  AI Sharpe above legacy's in {s['ai_sharpe_above_legacy']} of {s['folds']} folds (no "
        f"trades = Sharpe 0); compounded legacy {s['legacy']['compounded_return'] * 100:+.2f} %, "
        f"AI {s['ai']['compounded_return'] * 100:+.2f} %; limit breaches legacy "
        f"{s['legacy']['limit_breaches']}, AI {s['ai']['limit_breaches']}"
    )


def sweep_scaling(args: argparse.Namespace) -> None:
    """The same sweep in process and on 1, 2, 4... local Dask workers; times and speed-ups."""
    from models.jobs import DaskRunner, InProcess
    from models.sweep import SweepSpec, run_sweep

    market = load_market_data(args.data)
    names = sorted(market.symbols)[: args.sweep_symbols]
    candles = {s: market.symbols[s].candles.iloc[: args.sweep_bars] for s in names}
    end = min(int(c.index[-1]) for c in candles.values())
    funding = {
        s: f.loc[f.index <= end] if (f := market.symbols[s].funding) is not None else None
        for s in names
    }
    base = TrainConfig.from_mapping({"num_threads": 1, "rounds": 40})
    leaves = [7, 15, 31, 63, 127]
    rates = [0.03, 0.05, 0.1, 0.2]
    grid = [(n, r) for n in leaves for r in rates][: args.sweep_configs]
    spec = SweepSpec.from_mapping(
        {"params": {"num_leaves": leaves, "learning_rate": rates}, "method": "random",
         "samples": len(grid), "seed": 1}
    )  # fmt: skip
    cost = BrokerConfig.from_toml().break_even_offset()
    print(
        f"sweep: {len(spec.configs(base))} configurations x {base.folds} folds on "
        f"{len(names)} symbols x {args.sweep_bars} bars, LightGBM 1 thread per job"
    )
    timings = {}
    load = os.getloadavg()[0]
    c0, t0 = cpu_s(), time.perf_counter()
    best, rows = run_sweep(candles, funding, spec, base, cost, runner=InProcess())
    timings["in process"] = time.perf_counter() - t0
    print(
        f"  in process: {timings['in process']:.1f} s, {cpu_s() - c0:.1f} CPU s "
        f"(load average {load:.2f})"
    )
    for n in [int(w) for w in args.workers.split(",")]:
        c0 = cpu_s()
        with DaskRunner("local", workers=n) as runner:
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            best_d, rows_d = run_sweep(candles, funding, spec, base, cost, runner=runner)
            took = time.perf_counter() - t0
        same = best_d == best and [r.score for r in rows_d] == [r.score for r in rows]
        print(
            f"  Dask LocalCluster, {n} worker(s): {took:.1f} s, speed-up "
            f"{timings['in process'] / took:.2f}x over in process; {cpu_s() - c0:.1f} CPU s "
            f"with the cluster's start and stop (load average {load:.2f}; same scores and "
            f"choice: {same})"
        )


def training(args: argparse.Namespace) -> None:
    """Training time and memory, decision latency, and the walk-forward table."""

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    market = load_market_data(args.data)
    load_s = time.perf_counter() - t0
    candles = {s: d.candles for s, d in market.symbols.items()}
    funding = {s: d.funding for s, d in market.symbols.items()}
    bars = sum(len(c) for c in candles.values())
    rss_before = peak_rss_mb()
    cfg = TrainConfig.from_toml(args.config) if args.config else TrainConfig.defaults()

    with tempfile.TemporaryDirectory() as out:
        c0, t0 = cpu_s(), time.perf_counter()
        result = train_models(candles, funding, out, cfg)
        train_s = time.perf_counter() - t0
        train_cpu = cpu_s() - c0
        rss_train = peak_rss_mb()

        policy = AIPolicy.from_dir(
            out,
            funding=funding,
            tiers=LeverageTiers.load(),
            round_trip_cost=BrokerConfig.from_toml().break_even_offset(),
        )
        if policy.error is not None:
            raise SystemExit(f"trained models refused: {policy.error}")
        forced = policy._outputs.min_confidence is None
        if forced:
            # a set without an entry level skips before computing features: time the full
            # path (features, universe, every head) as if validation had chosen the lowest level
            from dataclasses import replace

            policy._outputs = replace(policy._outputs, min_confidence=0.5)
        symbols = sorted(candles)[: args.symbols]
        series = {
            s: Bars.from_arrays(
                candles[s].index.to_numpy(),
                *(candles[s][k].to_numpy() for k in ("open", "high", "low", "close", "volume")),
            )
            for s in symbols
        }
        step = result.cards["direction"]["training_window"]["bar_ms"]
        n = min(len(series[s]) for s in symbols)
        first = n - args.bars
        timings = []
        entries = 0
        for i in range(first, n):
            ts = int(series[symbols[0]].ts[i]) + step
            snap = MarketSnapshot(ts, step, series, {s: i + 1 for s in symbols})
            t0 = time.perf_counter()
            decisions = policy.decide(snap, Portfolio(wallet_balance=10_000.0))
            timings.append((time.perf_counter() - t0) * 1000)
            entries += sum(d.skip is None for d in decisions)

        # The reasons: our per-split path contributions against LightGBM's own pred_contrib
        # (TreeSHAP), on the same 10-row feature matrices, in the same run.
        booster = policy.models.booster("direction")
        ours, lgbm = [], []
        for i in range(first, n):
            ts = int(series[symbols[0]].ts[i]) + step
            x = policy._feature_rows(
                MarketSnapshot(ts, step, series, {s: i + 1 for s in symbols}), symbols
            )
            t0 = time.perf_counter()
            policy._direction_contrib(x)
            ours.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            booster.predict(x, pred_contrib=True)
            lgbm.append((time.perf_counter() - t0) * 1000)

    timings.sort()
    print(f"machine: {os.cpu_count()} cores, load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"data: {len(candles)} symbols, {bars:,} bars, loaded in {load_s:.2f} s")
    print(
        f"training (5 heads, {cfg.folds} walk-forward folds + final fit, "
        f"{cfg.num_threads} threads): {train_s:.1f} s, {train_cpu:.1f} CPU s"
    )
    print(f"peak memory: {rss_train:.0f} MB resident ({rss_before:.0f} MB before training)")
    print(
        f"decision latency, {len(symbols)} symbols per bar over {len(timings)} bars: "
        f"median {statistics.median(timings):.2f} ms, p95 {timings[int(0.95 * len(timings))]:.2f} ms, "
        f"max {timings[-1]:.2f} ms ({entries} entries"
        + (", entry level forced to 0.5 for the timing: the card has none)" if forced else ")")
    )
    print(
        f"decision reasons for {len(symbols)} symbols: path contributions median "
        f"{statistics.median(ours):.3f} ms, LightGBM pred_contrib median {statistics.median(lgbm):.3f} ms "
        f"(ratio {statistics.median(lgbm) / statistics.median(ours):.1f}x)"
    )
    print("validation:", {k: v for k, v in result.metrics["direction"].items() if k == "auc"},
          {k: v for k, v in result.metrics["universe"].items()})  # fmt: skip
    direction = result.cards["direction"]
    level = direction["outputs"]["min_confidence"]
    print(f"entry level chosen on validation: {level if level is not None else 'none (flat)'}")
    print("walk-forward (out of fold, net of costs): fold | policy | trades | net sum | "
          "net/trade | Sharpe/trade | AUC")  # fmt: skip
    aucs = direction["metrics"]["auc_by_fold"]
    for f in direction["metrics"]["by_fold"]:
        for label in ("ai", "every_signal"):
            fig = f[label]
            print(
                f"  {f['fold'] + 1} | {label} | {fig['trades']} | {fig['net_sum']:.2f} x notional | "
                f"{fig['net_mean'] * 100:.3f} % | {fig['net_sharpe']:.3f} | {aucs[f['fold']]:.3f}"
            )
        print(f"  {f['fold'] + 1} | flat | 0 | 0 | - | - | {aucs[f['fold']]:.3f}")


if __name__ == "__main__":
    main()
