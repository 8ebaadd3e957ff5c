"""AI versus legacy: both policies through the same backtest, out of sample only.

The models never saw the compared bars: trading starts at the model set's training end (the
bars before it only warm up the features), and with `holdout_symbols` only symbols the models
were not trained on are traded. Both policies get exactly the same bars, gate and engine. The
result is reported as found, losses included, with the spread of the AI's decisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table

from engine.backtest import BacktestResult, run_backtest
from engine.core.bars import resolve_symbol
from engine.core.loop import JournalSink
from engine.core.policy import Policy, StaticPolicy
from engine.core.tiers import LeverageTiers
from engine.domain import Decision, MarketSnapshot, PolicyKey, Portfolio, SafetyLimits
from engine.venues.candle_files import load_market_data
from engine.venues.simulated import BrokerConfig
from models.errors import CompareError
from models.policy import AIPolicy, UniverseConfig
from models.registry import load_models

HOUR_MS = 3_600_000


class OutOfSample:
    """Wraps a policy: no decisions for bars opening before `start_ms`; records the rest."""

    def __init__(self, policy: Policy, start_ms: int) -> None:
        self.policy = policy
        self.name = policy.name
        self.version = policy.version
        self.start_ms = start_ms
        self.decisions: list[Decision] = []
        if hasattr(policy, "kill_scores"):  # exits compare the policy's thresholds with its score
            self.kill_scores = policy.kill_scores

    def decide(self, snapshot: MarketSnapshot, portfolio: Portfolio) -> list[Decision]:
        if snapshot.ts - snapshot.timeframe_ms < self.start_ms:
            return []
        out = self.policy.decide(snapshot, portfolio)
        self.decisions.extend(out)
        return out


@dataclass
class PolicyRun:
    label: str
    result: BacktestResult
    decisions: list[Decision]

    def distribution(self) -> dict[str, dict[str, float]]:
        """Min / median / max / distinct count of each trading value over the entries."""
        entries = [d.numeric_values() for d in self.decisions if d.skip is None]
        values = {
            str(key): [e[str(key)] for e in entries]
            for key in PolicyKey
            if key not in (PolicyKey.UNIVERSE_SYMBOLS, PolicyKey.UNIVERSE_COUNT)
        }
        out = {}
        for name, vals in values.items():
            arr = np.array([v for v in vals if v is not None], dtype=float)
            if arr.size:
                out[name] = {
                    "min": float(arr.min()),
                    "median": float(np.median(arr)),
                    "max": float(arr.max()),
                    "distinct": float(len(np.unique(np.round(arr, 9)))),
                }
        return out

    def skips(self) -> Counter:
        """Skips by reason: the policy's own and the risk kernel's vetoes."""
        return Counter(self.result.stats.skips)


@dataclass
class Comparison:
    start_ms: int
    end_ms: int
    symbols: list[str]
    model_set: str
    runs: list[PolicyRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def compare(
    data_dir: str | Path,
    model_dir: str | Path,
    legacy_policy: str | Path,
    *,
    symbols: Sequence[str] | None = None,
    holdout_symbols: Sequence[str] = (),
    timeframe: str = "1h",
    equity: float,
    limits: SafetyLimits | None = None,
    universe: UniverseConfig | None = None,
    broker_config: BrokerConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    journal: JournalSink | None = None,
) -> Comparison:
    """Backtest the legacy StaticPolicy and the AIPolicy on the same out-of-sample bars
    (each run journaled as a run of its own when a journal is given)."""
    models = load_models(model_dir)
    card = models.card
    start = int(card["training_window"]["end_ms"])
    bar_ms = int(card["training_window"]["bar_ms"])
    trained_on = set(card["symbols"])
    if holdout_symbols:
        wanted = [resolve_symbol(s) for s in holdout_symbols]
        seen = sorted(set(wanted) & trained_on)
        if seen:
            raise CompareError(
                f"the models were trained on {', '.join(seen)}: not a held-out symbol"
            )
    else:
        wanted = [resolve_symbol(s) for s in symbols] if symbols else None
    warmup = (models.spec.lookback_bars + 1) * bar_ms
    md = load_market_data(data_dir, symbols=wanted, timeframe=timeframe, start_ms=start - warmup)
    last = max(int(sd.candles.index[-1]) for sd in md.symbols.values())
    if last < start:
        raise CompareError(
            f"no bars after the models' training end {_iso(start)}: nothing out of sample"
        )
    limits = limits or SafetyLimits()
    broker_config = broker_config or BrokerConfig.from_toml()
    tiers = LeverageTiers.load()
    funding = {s: sd.funding for s, sd in md.symbols.items()}
    policies: list[tuple[str, Policy]] = [
        ("legacy", StaticPolicy.from_toml(legacy_policy)),
        (
            "ai",
            AIPolicy(
                models,
                limits,
                universe=universe,
                tiers=tiers,
                funding=funding,
                round_trip_cost=broker_config.break_even_offset(),
            ),
        ),
    ]
    result = Comparison(
        start_ms=start,
        end_ms=last + bar_ms,
        symbols=sorted(md.symbols),
        model_set=models.set_id,
    )
    if not holdout_symbols:
        result.notes.append(
            "out of sample in time only: the models were trained on "
            f"{', '.join(sorted(trained_on & set(md.symbols))) or 'none'} of these symbols "
            "(use --holdout-symbols for symbols they never saw)"
        )
    result.notes.append(
        f"the {models.spec.lookback_bars} bars before {_iso(start)} only warm up the features"
    )
    for label, policy in policies:
        gated = OutOfSample(policy, start)
        callback = None if progress is None else (lambda d, t, lab=label: progress(lab, d, t))
        run = run_backtest(
            md,
            gated,
            equity=equity,
            limits=limits,
            tiers=tiers,
            broker_config=broker_config,
            progress=callback,
            journal=journal,
        )
        result.runs.append(PolicyRun(label, run, gated.decisions))
    return result


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f} %"


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _hours(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / HOUR_MS:.1f} h"


def metric_rows(run: PolicyRun) -> dict[str, str]:
    m = run.result.metrics
    realised = sum(t.pnl for t in run.result.trades)
    traded = len({t.symbol for t in run.result.trades})
    return {
        "total return": _pct(m.total_return),
        "Sharpe": _num(m.sharpe),
        "max drawdown": _pct(abs(m.max_drawdown)),  # never "-0.00 %"
        "win rate": _pct(m.win_rate),
        "realised PnL (USDT)": f"{realised:,.2f}",
        "trades": str(m.n_trades),
        "avg holding time": _hours(m.avg_holding_ms),
        "symbols traded": str(traded),
        "fees (USDT)": f"{m.fees_paid:,.2f}",
        "safety events": str(sum(run.result.stats.safety_events.values())),
        "skips": str(sum(run.skips().values())),
    }


def render(comparison: Comparison) -> Group:
    """Side-by-side metrics, the AI's decision spread, skips and safety events."""
    head = Table(
        title=(
            f"out of sample {_iso(comparison.start_ms)} .. {_iso(comparison.end_ms)} UTC, "
            f"{len(comparison.symbols)} symbols, model set {comparison.model_set}"
        )
    )
    head.add_column("")
    for run in comparison.runs:
        head.add_column(f"{run.label} ({run.result.policy} {run.result.policy_version})")
    rows = [metric_rows(r) for r in comparison.runs]
    for key in rows[0]:
        head.add_row(key, *(r[key] for r in rows))

    spread = Table(title="distribution of the entry decisions (min / median / max, distinct)")
    spread.add_column("value")
    for run in comparison.runs:
        spread.add_column(run.label)
    dists = [r.distribution() for r in comparison.runs]
    for key in dict.fromkeys(k for d in dists for k in d):
        cells = []
        for d in dists:
            v = d.get(key)
            cells.append(
                "-"
                if v is None
                else f"{v['min']:.4g} / {v['median']:.4g} / {v['max']:.4g} ({int(v['distinct'])})"
            )
        spread.add_row(key, *cells)

    reasons = Table(title="skips and safety events")
    reasons.add_column("")
    for run in comparison.runs:
        reasons.add_column(run.label)
    keys: dict[str, None] = {}
    for run in comparison.runs:
        keys.update(dict.fromkeys(f"skip {k}" for k in run.skips()))
        keys.update(dict.fromkeys(f"safety {k}" for k in run.result.stats.safety_events))
    for key in keys:
        kind, name = key.split(" ", 1)
        cells = []
        for run in comparison.runs:
            counter = run.skips() if kind == "skip" else run.result.stats.safety_events
            cells.append(str(counter.get(name, 0)))
        reasons.add_row(key, *cells)
    notes = Table.grid()
    for note in comparison.notes:
        notes.add_row(f"note: {note}")
    return Group(head, spread, reasons, notes)
