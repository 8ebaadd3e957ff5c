"""Policies turn a market snapshot and the portfolio into decisions; `safe_decide` fences them in.

The engine never knows which policy it runs (`AIPolicy` from models/, or `StaticPolicy` here,
which replays the legacy system's hardcoded values from a TOML file as the baseline to beat).
Whatever the policy does, `safe_decide` returns decisions that are complete, finite and inside
the autonomy zone, or skips with a reason code: a failing policy never yields a default.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from engine.domain import (
    AutonomyZone,
    Bars,
    Decision,
    HarvestLadder,
    MarketSnapshot,
    Portfolio,
    Side,
    SkipReason,
)

ALL_SYMBOLS = "*"  # the symbol of a skip that concerns the whole call (the policy raised)


class PolicyConfigError(ValueError):
    """A policy file is missing, unreadable, or has a missing, unknown or mistyped key."""


@runtime_checkable
class Policy(Protocol):
    """(snapshot, portfolio) -> decisions. Implementations may keep caches, never future data."""

    name: str
    version: str

    def decide(self, snapshot: MarketSnapshot, portfolio: Portfolio) -> list[Decision]: ...


def safe_decide(
    policy: Policy, snapshot: MarketSnapshot, portfolio: Portfolio, zone: AutonomyZone
) -> list[Decision]:
    """Run the policy; turn every failure into a skip with a reason code, never into a default.

    - the policy raises or returns something that is not a list of decisions → one POLICY_ERROR
      skip for symbol "*";
    - an item that is not a `Decision`, is stamped with another time, names a symbol without
      data, or repeats a symbol → BAD_DECISION skip;
    - NaN/inf → POLICY_NAN, missing value → MISSING_VALUE, outside the zone → OUT_OF_ZONE.
    """
    ts = snapshot.ts
    name = getattr(policy, "name", type(policy).__name__)
    version = getattr(policy, "version", "")
    try:
        raw = policy.decide(snapshot, portfolio)
        items = list(raw) if not isinstance(raw, Decision | str | bytes | Mapping) else None
    except Exception as exc:  # the policy's failure is a skip, not a crash and not a default
        detail = f"{type(exc).__name__}: {exc}".strip()
        return [Decision.skipped(ts, ALL_SYMBOLS, SkipReason.POLICY_ERROR, detail, name, version)]
    if items is None:
        detail = f"decide() returned {type(raw).__name__}, not a list of decisions"
        return [Decision.skipped(ts, ALL_SYMBOLS, SkipReason.POLICY_ERROR, detail, name, version)]

    out: list[Decision] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, Decision):
            detail = f"decide() returned a {type(item).__name__}, not a Decision"
            out.append(
                Decision.skipped(ts, ALL_SYMBOLS, SkipReason.BAD_DECISION, detail, name, version)
            )
            continue
        d = item if item.policy else item.with_changes(policy=name, model_version=version)
        if d.ts != ts:
            out.append(
                Decision.skipped(
                    ts,
                    d.symbol,
                    SkipReason.BAD_DECISION,
                    f"decision stamped {d.ts}, snapshot is {ts}",
                    d.policy,
                    d.model_version,
                )
            )
            continue
        if d.skip is None:
            if d.symbol in seen:
                out.append(d.as_skip(SkipReason.BAD_DECISION, "second entry for the same symbol"))
                continue
            seen.add(d.symbol)
            if not snapshot.has(d.symbol):
                out.append(d.as_skip(SkipReason.NO_DATA, f"{d.symbol} has no data at {ts}"))
                continue
            problem = zone.explain(d)
            if problem is not None:
                d = d.as_skip(*problem)
        out.append(d)
    return out


# ---------------------------------------------------------------------------------------------
# StaticPolicy: the legacy values from TOML


@dataclass(frozen=True, slots=True)
class StaticConfig:
    """Everything StaticPolicy needs, read from TOML (see examples/legacy_policy.toml)."""

    name: str
    version: str
    leverage: float
    notional_usdt: float
    stop_loss_pct: float
    take_profit_pct: float
    harvest: HarvestLadder
    kill_threshold: float
    close_threshold: float
    kill_reduce_threshold: float
    kill_reduce_frac: float
    max_hold_sec: float
    count: int
    core_symbols: tuple[str, ...]
    refresh_bars: int
    lookback_bars: int
    min_sigma: float
    min_trend_score: float
    weight_volatility: float
    weight_trend: float
    weight_probability: float
    volatility_ref: float
    trend_z_scale: float
    probability_slope: float


_SCHEMA: dict[str, dict[str, type]] = {
    "policy": {"name": str, "version": str},
    "entry": {
        "leverage": float,
        "notional_usdt": float,
        "stop_loss_pct": float,
        "take_profit_pct": float,
    },
    "harvest": {
        "t1_r": float,
        "t2_r": float,
        "t3_r": float,
        "lock_r": float,
        "kill_threshold": float,
        "close_threshold": float,
        "t1_close_frac": float,
        "t2_close_frac": float,
        "kill_reduce_threshold": float,
        "kill_reduce_frac": float,
        "max_hold_sec": float,
    },
    "universe": {
        "count": int,
        "core_symbols": list,
        "refresh_bars": int,
        "lookback_bars": int,
        "min_sigma": float,
        "min_trend_score": float,
        "weights": dict,
    },
    "universe.weights": {"volatility": float, "trend": float, "probability": float},
    "signal": {"volatility_ref": float, "trend_z_scale": float, "probability_slope": float},
}


def _table(doc: Mapping[str, Any], dotted: str, source: str) -> Mapping[str, Any]:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise PolicyConfigError(f"{source}: missing table [{dotted}]")
        node = node[part]
    if not isinstance(node, Mapping):
        raise PolicyConfigError(f"{source}: [{dotted}] must be a table")
    expected = _SCHEMA[dotted]
    unknown = sorted(set(node) - set(expected))
    if unknown:
        raise PolicyConfigError(f"{source}: unknown key [{dotted}].{unknown[0]}")
    for key, kind in expected.items():
        if key not in node:
            raise PolicyConfigError(f"{source}: missing key [{dotted}].{key}")
        value = node[key]
        ok = (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if kind is float
            else isinstance(value, kind) and not isinstance(value, bool)
        )
        if not ok:
            what = "a finite number" if kind is float else kind.__name__
            raise PolicyConfigError(f"{source}: [{dotted}].{key} must be {what}, got {value!r}")
    return node


def load_static_config(path: str | Path) -> StaticConfig:
    """Parse and check a StaticPolicy TOML file; every key is required."""
    p = Path(path)
    source = str(p)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyConfigError(f"cannot read policy file {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyConfigError(f"{source}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - {t.split(".")[0] for t in _SCHEMA})
    if unknown:
        raise PolicyConfigError(f"{source}: unknown table [{unknown[0]}]")
    pol, entry, harvest, universe, weights, signal = (
        _table(doc, t, source)
        for t in ("policy", "entry", "harvest", "universe", "universe.weights", "signal")
    )
    core = universe["core_symbols"]
    if not all(isinstance(s, str) and s for s in core):
        raise PolicyConfigError(f"{source}: [universe].core_symbols must be a list of names")
    for key in ("count", "refresh_bars", "lookback_bars"):
        if universe[key] < 1:
            raise PolicyConfigError(f"{source}: [universe].{key} must be at least 1")
    for key in ("notional_usdt", "leverage"):
        if entry[key] <= 0:
            raise PolicyConfigError(f"{source}: [entry].{key} must be positive")
    for key in ("volatility_ref", "trend_z_scale", "probability_slope"):
        if signal[key] <= 0:
            raise PolicyConfigError(f"{source}: [signal].{key} must be positive")
    config = StaticConfig(
        name=pol["name"],
        version=pol["version"],
        leverage=float(entry["leverage"]),
        notional_usdt=float(entry["notional_usdt"]),
        stop_loss_pct=float(entry["stop_loss_pct"]),
        take_profit_pct=float(entry["take_profit_pct"]),
        harvest=HarvestLadder(
            t1_r=float(harvest["t1_r"]),
            t2_r=float(harvest["t2_r"]),
            t3_r=float(harvest["t3_r"]),
            lock_r=float(harvest["lock_r"]),
            t1_close_frac=float(harvest["t1_close_frac"]),
            t2_close_frac=float(harvest["t2_close_frac"]),
        ),
        kill_threshold=float(harvest["kill_threshold"]),
        close_threshold=float(harvest["close_threshold"]),
        kill_reduce_threshold=float(harvest["kill_reduce_threshold"]),
        kill_reduce_frac=float(harvest["kill_reduce_frac"]),
        max_hold_sec=float(harvest["max_hold_sec"]),
        count=int(universe["count"]),
        core_symbols=tuple(core),
        refresh_bars=int(universe["refresh_bars"]),
        lookback_bars=int(universe["lookback_bars"]),
        min_sigma=float(universe["min_sigma"]),
        min_trend_score=float(universe["min_trend_score"]),
        weight_volatility=float(weights["volatility"]),
        weight_trend=float(weights["trend"]),
        weight_probability=float(weights["probability"]),
        volatility_ref=float(signal["volatility_ref"]),
        trend_z_scale=float(signal["trend_z_scale"]),
        probability_slope=float(signal["probability_slope"]),
    )
    problem = static_zone_problem(config)
    if problem is not None:
        raise PolicyConfigError(f"{source}: {problem}")
    return config


def static_zone_problem(config: StaticConfig, zone: AutonomyZone | None = None) -> str | None:
    """The first value of the file outside the autonomy zone, or None.

    Every value is checked, not only the effective one: the decision carries the lower of
    kill_threshold and close_threshold, and a higher one out of the zone must not hide behind it.
    Size is not checked here (it depends on the equity; see `engine.policy_file.never_trades`).
    """
    zone = zone or AutonomyZone()
    for name in ("kill_threshold", "close_threshold"):
        probe = Decision(
            ts=0,
            symbol=config.name,
            side=Side.LONG,
            leverage=config.leverage,
            size_pct=zone.max_size_pct,
            stop_loss_pct=config.stop_loss_pct,
            take_profit_pct=config.take_profit_pct,
            harvest=config.harvest,
            kill_threshold=getattr(config, name),
            kill_reduce_threshold=config.kill_reduce_threshold,
            kill_reduce_frac=config.kill_reduce_frac,
            max_hold_sec=config.max_hold_sec,
            confidence=1.0,  # not in the file: the top of its [0, 1] scale
        )
        problem = zone.explain(probe)
        if problem is not None:
            detail = problem[1].replace("kill_threshold", f"[harvest].{name}", 1)
            return f"{detail} (the autonomy zone; every value of the file must lie inside it)"
    return None


class SymbolScores(NamedTuple):
    """The legacy signal of one symbol at one refresh (see the TOML's [signal] comment).

    Immutable; a named tuple because one is built per symbol at every refresh (a frozen
    dataclass sets each field through `object.__setattr__`)."""

    sigma: float
    trend_z: float
    volatility: float
    trend: float
    probability: float
    score: float


class StaticPolicy:
    """The legacy system's rules with its numbers read from TOML: the baseline the models must beat.

    Cheap on purpose (the backtest targets >= 250k symbol-bars/s): between universe refreshes
    `decide` returns at once; at a refresh it scores, with numpy, only symbols without an open
    position. Stateless: the refresh times are a function of the bar time alone.
    """

    def __init__(self, config: StaticConfig) -> None:
        self.config = config
        self.name = config.name
        self.version = config.version
        # legacy had two closers; with one exit owner the first to fire is the lower threshold
        self.kill_threshold = min(config.kill_threshold, config.close_threshold)
        # the whole history's refresh windows, scored up front (`prepare_history`): the series
        # they were scored on, and per symbol (window ends n, their (n, 6) score rows, finite)
        self._history: Mapping[str, Bars] | None = None
        self._scored: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @classmethod
    def from_toml(cls, path: str | Path) -> StaticPolicy:
        return cls(load_static_config(path))

    def is_refresh(self, snapshot: MarketSnapshot) -> bool:
        return self.acts_at(snapshot.ts, snapshot.timeframe_ms)

    def acts_at(self, ts: int, timeframe_ms: int) -> bool:
        """Whether `decide` can return anything at a bar closing at `ts` (a universe refresh):
        the loop does not call the policy at other bars."""
        if timeframe_ms <= 0:
            return False
        return (ts // timeframe_ms) % self.config.refresh_bars == 0

    def size_pct(self, equity: float) -> float:
        """The legacy fixed notional as a fraction of equity (inf when equity <= 0)."""
        return self.config.notional_usdt / equity if equity > 0 else math.inf

    def score(self, closes: np.ndarray) -> list[SymbolScores | None]:
        """Scores for a (symbols x lookback+1) array of closes; None where the data are unusable."""
        columns, finite = self._score_columns(closes)
        rows = zip(*(a.tolist() for a in columns), strict=True)  # Python floats, same values
        return [
            SymbolScores(*values) if ok else None
            for values, ok in zip(rows, finite.tolist(), strict=True)
        ]

    def _score_columns(self, closes: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """`score`'s six columns (SymbolScores order) and where all six are finite, one row per
        row of `closes`: every operation works row by row (elementwise, or a reduction along
        the row), so a row's values do not depend on the other rows."""
        c = self.config
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.diff(np.log(closes), axis=1)
            sigma = r.std(axis=1)
            trend_z = r.sum(axis=1) / (sigma * math.sqrt(c.lookback_bars))
            volatility = np.minimum(sigma / c.volatility_ref, 1.0)
            trend = np.tanh(np.abs(trend_z) / c.trend_z_scale)
            probability = logistic(c.probability_slope * np.abs(trend_z))
            score = (
                c.weight_volatility * volatility
                + c.weight_trend * trend
                + c.weight_probability * probability
            )
        columns = (sigma, trend_z, volatility, trend, probability, score)
        finite = np.isfinite(columns[0])
        for a in columns[1:]:
            finite &= np.isfinite(a)
        return columns, finite

    def prepare_history(self, series: Mapping[str, Bars] | None, timeframe_ms: int = 0) -> None:
        """Score the refresh windows of the whole history at once (a backtest has it up front;
        `run_backtest` calls this with the series its snapshots wrap, and None after the run).

        A window is keyed by the symbol's count of known bars `n` (the closes `n - lookback -
        1 .. n - 1`, nothing after): those that end on a refresh bar close are scored here, in
        one pass per symbol, with `score`'s own row-by-row operations, so `decide` reads the same floats it
        would compute (tests/engine/test_policy_static.py compares them bit for bit, gaps included). A
        refresh that finds another count (a gap at the refresh bar) is scored at that bar, as
        without this; so is any snapshot of other series."""
        self._history, self._scored = None, {}
        if series is None or timeframe_ms <= 0:
            return
        c = self.config
        need = c.lookback_bars + 1
        offsets = np.arange(need)
        for symbol, bars in series.items():
            ts = np.asarray(bars.ts)
            # bar k closes at ts[k] + timeframe: a refresh then knows n = k + 1 bars
            ends = np.flatnonzero((ts // timeframe_ms + 1) % c.refresh_bars == 0) + 1
            ends = ends[ends >= need]
            if len(ends) == 0:
                continue
            # (windows, need), C order: ~1/refresh_bars of the series' closes, lookback times
            closes = bars.close[(ends - need)[:, None] + offsets]
            columns, finite = self._score_columns(closes)
            self._scored[symbol] = (ends, np.stack(columns, axis=1), finite)
        self._history = series

    def _prepared(self, symbol: str, n: int) -> SymbolScores | None | bool:
        """The prepared score of `symbol`'s window ending at `n` known bars (None: unusable
        data); False when that window was not prepared."""
        entry = self._scored.get(symbol)
        if entry is None:
            return False
        ends, values, finite = entry
        k = int(ends.searchsorted(n))
        if k >= len(ends) or ends.item(k) != n:
            return False
        return SymbolScores(*values[k].tolist()) if finite.item(k) else None

    def decide(self, snapshot: MarketSnapshot, portfolio: Portfolio) -> list[Decision]:
        if not self.is_refresh(snapshot):
            return []
        c = self.config
        ts = snapshot.ts
        out: list[Decision] = []

        def skip(symbol: str, reason: SkipReason, detail: str, reasons=()) -> None:
            out.append(
                Decision.skipped(ts, symbol, reason, detail, self.name, self.version, reasons)
            )

        held = {s for s, p in portfolio.positions.items() if p.is_open}
        for symbol in c.core_symbols:
            if not snapshot.has(symbol):
                skip(symbol, SkipReason.NO_DATA, f"core symbol {symbol} has no market data")

        need = c.lookback_bars + 1
        candidates: list[str] = []
        for symbol in snapshot.symbols:
            if symbol in held:
                continue
            if snapshot.n_bars(symbol) < need:
                skip(
                    symbol,
                    SkipReason.WARMUP,
                    f"{snapshot.n_bars(symbol)} bars of history, the signal needs {need}",
                )
            else:
                candidates.append(symbol)
        if not candidates:
            return out

        if self._history is not None and snapshot.wraps(self._history):
            looked = [self._prepared(s, snapshot.n_bars(s)) for s in candidates]
            missed = [s for s, v in zip(candidates, looked, strict=True) if v is False]
            if missed:
                fresh = iter(self.score(np.stack([snapshot.close(s, need) for s in missed])))
                looked = [next(fresh) if v is False else v for v in looked]
            scored: list[SymbolScores | None] = looked  # type: ignore[assignment]
        else:
            scored = self.score(np.stack([snapshot.close(s, need) for s in candidates]))

        core = set(c.core_symbols)
        ranked: list[tuple[str, SymbolScores]] = []
        for symbol, s in zip(candidates, scored, strict=True):
            if s is None:
                skip(symbol, SkipReason.NAN_FEATURES, "closes not positive and finite, or flat")
            elif s.sigma < c.min_sigma and symbol not in core:
                skip(
                    symbol,
                    SkipReason.NOT_IN_UNIVERSE,
                    f"sigma {s.sigma:.5f} below min_sigma {c.min_sigma:g}",
                    _reasons(s),
                )
            else:
                ranked.append((symbol, s))
        # core symbols first, then by score (ties by name, for determinism)
        ranked.sort(key=lambda item: (item[0] not in core, -item[1].score, item[0]))
        slots = max(0, c.count - len(held))
        equity = portfolio.equity
        for i, (symbol, s) in enumerate(ranked):
            if i >= slots:
                skip(
                    symbol,
                    SkipReason.NOT_IN_UNIVERSE,
                    f"rank {i + 1 + len(held)} of a {c.count}-symbol universe "
                    f"(score {s.score:.4f})",
                    _reasons(s),
                )
            elif s.trend < c.min_trend_score or s.trend_z == 0:
                skip(
                    symbol,
                    SkipReason.NO_SIGNAL,
                    f"trend score {s.trend:.4f} below min_trend_score {c.min_trend_score:g}",
                    _reasons(s),
                )
            elif equity <= 0:
                skip(symbol, SkipReason.NO_EQUITY, f"equity is {equity:g}", _reasons(s))
            else:
                out.append(
                    Decision(
                        ts=ts,
                        symbol=symbol,
                        side=Side.LONG if s.trend_z > 0 else Side.SHORT,
                        leverage=c.leverage,
                        size_pct=self.size_pct(equity),
                        stop_loss_pct=c.stop_loss_pct,
                        take_profit_pct=c.take_profit_pct,
                        harvest=c.harvest,
                        kill_threshold=self.kill_threshold,
                        kill_reduce_threshold=c.kill_reduce_threshold,
                        kill_reduce_frac=c.kill_reduce_frac,
                        max_hold_sec=c.max_hold_sec,
                        confidence=s.probability,
                        policy=self.name,
                        model_version=self.version,
                        reasons=_reasons(s),
                    )
                )
        return out


def logistic(x: np.ndarray) -> np.ndarray:
    """The standard logistic function 1 / (1 + e^-x)."""
    return 1.0 / (1.0 + np.exp(-x))


def _reasons(s: SymbolScores) -> tuple[tuple[str, float], ...]:
    return (
        ("score", s.score),
        ("volatility", s.volatility),
        ("trend", s.trend),
        ("probability", s.probability),
        ("trend_z", s.trend_z),
        ("sigma", s.sigma),
    )
