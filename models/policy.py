"""`AIPolicy`: the trained heads turned into `Decision`s, with no trading number of its own.

Per bar, for every symbol of the snapshot: features of the bar that just closed (the same numpy
code as training, on the last `lookback_bars` bars), cross-sectional ranks, then one batched
predict per head. Where each value comes from:

- universe: the ranker's top N (N from `UniverseConfig`, or "auto": the symbols scoring above
  the cut-off learnt on validation, within the configured bounds);
- side and confidence: the direction head, calibrated on validation (Platt or isotonic, as the
  card says); its per-feature contributions (read along
  each tree's path, see `heads.PathContributions`) are the decision's reasons;
- stop: the adverse-excursion quantile head (volatility units × the bar's sigma);
- leverage: the highest at which that adverse move still leaves, above maintenance margin, at
  least `SafetyLimits.min_margin_ratio` of the position's initial margin — clipped to the zone
  and the exchange bracket; the risk kernel still checks the account;
- harvest ladder and take-profit: the favourable-excursion quantile heads, in R = stop units,
  times the ladder scale validation chose (by net return per trade through the exit rules),
  clipped into the autonomy zone;
- entry: only at a calibrated confidence at or above the level validation chose by net returns
  (none chosen: no entry at all, `NO_SIGNAL`), and only if the expected net return μ is positive:
  μ = edge(confidence) · v − the venue's round-trip cost (`round_trip_cost`, from the broker
  config) − the funding the side would pay at the latest rate over the horizon, where edge() is
  the validation edge map on the card (volatility units) and v the predicted volatility over the
  horizon;
- size (notional / equity): fractional Kelly, μ / v² scaled by the card's Kelly fraction and
  shared across the positions the universe may hold (its count, or `auto_max`: the perpetuals
  move together, so N positions are close to one bet), capped by
  `SafetyLimits.max_position_fraction`;
- kill threshold, and the graded reduce step below it (level and fraction): what the kill
  head's validation chose for the bar's regime;
- harvest close fractions: the share of the open quantity the ladder heads expect *not* to
  reach the next rung once a rung is reached, from the quantile levels they were trained at:
  (q_next - q_rung) / (1 - q_rung) at T1 and T2 (T3 closes the rest);
- time exit (`max_hold_sec`): the horizon the heads were trained for, horizon_bars × bar length.

Anything missing, stale, NaN or outside the training ranges is a SKIP with a reason code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from engine.core.tiers import LeverageTiers
from engine.domain import (
    AutonomyZone,
    Decision,
    HarvestLadder,
    MarketSnapshot,
    Portfolio,
    Position,
    SafetyLimits,
    Side,
    SkipReason,
)
from models.config import CALIBRATIONS, LADDER, packaged_defaults
from models.errors import (
    ModelCorruptError,
    ModelError,
    ModelMismatchError,
    ModelMissingError,
    ModelStaleError,
    UniverseConfigError,
)
from models.features import RANKED, Funding, cross_sectional_rank, feature_matrix, funding_arrays
from models.heads import PathContributions, isotonic_apply, platt_apply
from models.registry import ModelSet, load_models

POLICY_NAME = "ai"
NO_ENTRY_LEVEL = "validation found no confidence level with a positive return after costs"

_ERROR_REASONS: dict[type[ModelError], SkipReason] = {
    ModelMissingError: SkipReason.MODEL_MISSING,
    ModelStaleError: SkipReason.MODEL_STALE,
    ModelCorruptError: SkipReason.MODEL_CORRUPT,
    ModelMismatchError: SkipReason.MODEL_CORRUPT,
}


def skip_reason_for(error: ModelError) -> SkipReason:
    for kind, reason in _ERROR_REASONS.items():
        if isinstance(error, kind):
            return reason
    return SkipReason.MODEL_CORRUPT


@dataclass(frozen=True)
class UniverseConfig:
    """How many symbols the policy trades: a fixed count, or "auto" within [auto_min, auto_max].

    Configuration, not a model output (DESIGN.md: "the count is fixed by config (default 10)
    or, with universe.count = "auto", decided by the models within 5–20"); the defaults are
    the [universe] table of models/defaults.toml.
    """

    count: int | Literal["auto"]
    auto_min: int
    auto_max: int

    def __post_init__(self) -> None:
        if self.count != "auto" and (
            isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1
        ):
            raise UniverseConfigError(
                f"universe count must be a positive integer or 'auto', got {self.count!r}"
            )
        if not 1 <= self.auto_min <= self.auto_max:
            raise UniverseConfigError(
                "universe auto bounds must satisfy 1 <= auto_min <= auto_max, got "
                f"{self.auto_min}..{self.auto_max}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None = None) -> UniverseConfig:
        """The packaged defaults with the given keys replaced (unknown keys are errors)."""
        values = dict(packaged_defaults()["universe"])
        unknown = sorted(set(data or {}) - set(values))
        if unknown:
            raise UniverseConfigError(f"unknown universe setting {unknown[0]!r}")
        values.update(data or {})
        return cls(**values)  # type: ignore[arg-type]


MS_PER_S = 1000  # unit conversion: bar lengths are in ms, max_hold_sec in seconds


def harvest_close_fracs(q_t1: float, q_t2: float, q_t3: float) -> tuple[float, float]:
    """(T1, T2) close fractions from the favourable-excursion quantile levels of the rungs.

    A rung at quantile q is reached with probability 1 - q; of the positions that reach T1, the
    share (q_t2 - q_t1) / (1 - q_t1) is expected to stop short of T2, and is closed there (the
    same from T2 to T3). With levels 0.5 / 0.7 / 0.85: 0.4 and 0.5.
    """
    return (q_t2 - q_t1) / (1 - q_t1), (q_t3 - q_t2) / (1 - q_t2)


@dataclass(frozen=True)
class _Outputs:
    """Decision values the training run stored on the cards."""

    horizon_bars: int
    calibration: str
    platt_a: float
    platt_b: float
    isotonic: tuple[list[float], list[float]]
    min_confidence: float | None
    edge_knots: tuple[list[float], list[float]]
    settlements: float
    kelly_fraction: float
    auto_score_cutoff: float
    kill_thresholds: dict[str, float]
    reduce_thresholds: dict[str, float]
    reduce_fracs: dict[str, float]
    close_fracs: tuple[float, float]
    ladder_scale: float
    max_hold_sec: float


def _by_regime(outputs: Mapping[str, object], key: str) -> dict[str, float]:
    table = outputs[key]
    if not isinstance(table, Mapping):
        raise TypeError(f"{key} is not a table")
    return {str(k): float(v) for k, v in table.items()}


def _knots(xs: object, ys: object) -> tuple[list[float], list[float]]:
    """Interpolation knots from a card: two equally long, non-empty lists of finite numbers."""
    if not isinstance(xs, list) or not isinstance(ys, list) or not xs or len(xs) != len(ys):
        raise ValueError("knots must be two equally long non-empty lists")
    x, y = [float(v) for v in xs], [float(v) for v in ys]
    if not np.all(np.isfinite(x + y)) or np.any(np.diff(x) < 0):
        raise ValueError("knots must be finite with ascending x")
    return x, y


def _positive(value: object) -> float:
    """A finite number above zero from a card, else ValueError."""
    number = float(value)  # type: ignore[arg-type]
    if not (np.isfinite(number) and number > 0):
        raise ValueError(f"expected a positive number, got {value!r}")
    return number


def _outputs(models: ModelSet) -> _Outputs:
    direction = models.models["direction"].outputs()
    try:
        kill = models.models["kill"].outputs()
        q = [float(models.models[f"favourable_{role}"].outputs()["quantile"]) for role in LADDER]
        quantiles = dict(zip(LADDER, q, strict=True))
        horizon_bars = int(direction["horizon_bars"])
        bar_ms = int(models.card["training_window"]["bar_ms"])
        calibration = str(direction["calibration"])
        if calibration not in CALIBRATIONS:
            raise ValueError(f"unknown calibration {calibration!r}")
        min_conf = direction["min_confidence"]
        edge = direction["edge_knots"]
        return _Outputs(
            horizon_bars=horizon_bars,
            calibration=calibration,
            platt_a=float(direction["platt_a"]),
            platt_b=float(direction["platt_b"]),
            isotonic=_knots(direction["isotonic_x"], direction["isotonic_y"]),
            min_confidence=None if min_conf is None else float(min_conf),
            edge_knots=_knots(edge["confidence"], edge["edge"]),
            settlements=float(direction["funding_settlements_per_horizon"]),
            kelly_fraction=float(direction["kelly_fraction"]),
            auto_score_cutoff=float(models.models["universe"].outputs()["auto_score_cutoff"]),
            kill_thresholds=_by_regime(kill, "thresholds_by_regime"),
            reduce_thresholds=_by_regime(kill, "reduce_thresholds_by_regime"),
            reduce_fracs=_by_regime(kill, "reduce_fracs_by_regime"),
            close_fracs=harvest_close_fracs(quantiles["t1"], quantiles["t2"], quantiles["t3"]),
            ladder_scale=_positive(models.models["favourable_t1"].outputs()["ladder_scale"]),
            max_hold_sec=horizon_bars * bar_ms / MS_PER_S,
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ModelCorruptError(f"model card outputs incomplete: {exc!r}") from exc


@dataclass(frozen=True)
class _Choice:
    """The universe at one bar: who is in (`mask`), everyone's rank (0 = best), the size."""

    mask: np.ndarray
    rank: np.ndarray
    count: int


class AIPolicy:
    """The `Policy` the models drive. Built from a model directory; never raises on bad models:
    a set that failed to load makes every decision a skip with the matching reason."""

    name = POLICY_NAME

    def __init__(
        self,
        models: ModelSet | ModelError,
        limits: SafetyLimits | None = None,
        *,
        universe: UniverseConfig | None = None,
        tiers: LeverageTiers | None = None,
        funding: Mapping[str, pd.DataFrame | None] | None = None,
        round_trip_cost: float,
        reasons_top: int = 5,
    ) -> None:
        if not (np.isfinite(round_trip_cost) and round_trip_cost >= 0):
            raise ValueError(f"round_trip_cost must be a fraction >= 0, got {round_trip_cost}")
        self.round_trip_cost = float(round_trip_cost)
        self.limits = limits or SafetyLimits()
        self.zone = AutonomyZone.for_limits(self.limits)
        self.universe = universe or UniverseConfig.from_mapping()
        count = self.universe.count
        self._bets = self.universe.auto_max if count == "auto" else int(count)
        self.tiers = tiers
        self.reasons_top = reasons_top
        self._funding: dict[str, Funding] = {
            s: funding_arrays(f) for s, f in (funding or {}).items()
        }
        self.error: ModelError | None = None
        self.models: ModelSet | None = None
        if isinstance(models, ModelError):
            self.error = models
        else:
            try:
                self._outputs = _outputs(models)
                self.models = models
            except ModelError as exc:
                self.error = exc
        if self.models is not None:
            spec = self.models.spec
            self.spec = spec
            self.features = spec.names()
            self._lo, self._hi = self.models.ranges()
            self._sigma_col = self.features.index("sigma")
            self._regime_col = self.features.index("regime")
            names = self.features
            self._funding_col = names.index("funding_rate") if "funding_rate" in names else None
            self._ranked_cols = [self.features.index(name) for name in RANKED]
            n_symbol = len(spec.symbol_names())
            self._n_symbol = n_symbol
            self._direction_contrib = PathContributions(self.models.booster("direction"))
        self.version = self.models.set_id if self.models is not None else "unavailable"

    @classmethod
    def from_dir(
        cls,
        directory: str | Path,
        limits: SafetyLimits | None = None,
        *,
        round_trip_cost: float,
        **kwargs,
    ) -> AIPolicy:
        """Load the model set in `directory`; a refused set gives a policy that only skips.

        `round_trip_cost`: price fraction a round trip costs on the venue (fees and slippage,
        `engine.venues.simulated.BrokerConfig.break_even_offset()`).
        """
        try:
            models: ModelSet | ModelError = load_models(directory)
        except ModelError as exc:
            models = exc
        return cls(models, limits, round_trip_cost=round_trip_cost, **kwargs)

    # -----------------------------------------------------------------------------------------

    def _skip(self, ts: int, symbol: str, reason: SkipReason, detail: str, reasons=()) -> Decision:
        return Decision.skipped(ts, symbol, reason, detail, self.name, self.version, reasons)

    def _window_problem(
        self, snapshot: MarketSnapshot, symbol: str
    ) -> tuple[SkipReason, str] | None:
        """Why the symbol has no complete feature window at the snapshot's bar (None: it has)."""
        n = snapshot.n_bars(symbol)
        need = self.spec.lookback_bars
        if n < need:
            return SkipReason.WARMUP, f"{n} bars of history, the features need {need}"
        last_close_time = int(snapshot.bars(symbol).ts[-1]) + snapshot.timeframe_ms
        if last_close_time != snapshot.ts:
            return (
                SkipReason.NO_DATA,
                f"no bar closing at {snapshot.ts} (its last bar closed at {last_close_time})",
            )
        return None

    def _symbol_features(self, snapshot: MarketSnapshot, symbols: list[str]) -> np.ndarray:
        """Per-symbol features of the current bar, one row per symbol, in one batched pass."""
        need = self.spec.lookback_bars
        tails = [snapshot.bars(s) for s in symbols]
        cut = [slice(len(b) - need, len(b)) for b in tails]

        def stack(field: str) -> np.ndarray:
            return np.stack([getattr(b, field)[c] for b, c in zip(tails, cut, strict=True)])

        matrix = feature_matrix(
            stack("ts"),
            stack("high"),
            stack("low"),
            stack("close"),
            stack("volume"),
            [self._funding.get(s) for s in symbols],
            self.spec,
            last_only=True,
        )
        return matrix[:, -1, :]

    def _feature_rows(self, snapshot: MarketSnapshot, symbols: list[str]) -> np.ndarray:
        """All model inputs (per-symbol features, then cross-sectional ranks) of `symbols`."""
        x = np.empty((len(symbols), len(self.features)))
        x[:, : self._n_symbol] = self._symbol_features(snapshot, symbols)
        for j, col in enumerate(self._ranked_cols):
            x[:, self._n_symbol + j] = cross_sectional_rank(x[:, col])
        return x

    def kill_scores(
        self, snapshot: MarketSnapshot, positions: Iterable[Position]
    ) -> dict[str, float]:
        """The kill head's probability that each open position's edge has collapsed, at this bar.

        On the same scale as the kill thresholds this policy's decisions carry (chosen on that
        probability in validation), so an exit controller can compare the two. Positions whose
        inputs are unusable (models refused or stale, warm-up, NaN, out of distribution) are
        left out of the result rather than given a made-up score.
        """
        if self.models is None:
            return {}
        try:
            self.models.check_fresh(snapshot.ts)
        except ModelStaleError:
            return {}
        sides = {p.symbol: p.side.sign for p in positions if p.is_open}
        symbols = [s for s in snapshot.symbols if self._window_problem(snapshot, s) is None]
        if not sides or not symbols:
            return {}
        x = self._feature_rows(snapshot, symbols)
        rows = [
            i for i, s in enumerate(symbols) if s in sides and self._input_problem(x[i]) is None
        ]
        if not rows:
            return {}
        signs = np.array([sides[symbols[i]] for i in rows], dtype=np.float64)
        p = self.models.booster("kill").predict(np.column_stack([x[rows], signs]), num_threads=1)
        return {symbols[i]: float(v) for i, v in zip(rows, p, strict=True)}

    def decide(self, snapshot: MarketSnapshot, portfolio: Portfolio) -> list[Decision]:
        ts = snapshot.ts
        held = {s for s, p in portfolio.positions.items() if p.is_open}
        symbols = [s for s in snapshot.symbols if s not in held]
        if self.models is None:
            assert self.error is not None
            reason = skip_reason_for(self.error)
            return [self._skip(ts, s, reason, str(self.error)) for s in symbols]
        try:
            self.models.check_fresh(ts)
        except ModelStaleError as exc:
            return [self._skip(ts, s, SkipReason.MODEL_STALE, str(exc)) for s in symbols]

        out: list[Decision] = []
        names: list[str] = []
        for symbol in symbols:
            problem = self._window_problem(snapshot, symbol)
            if problem is not None:
                out.append(self._skip(ts, symbol, *problem))
            else:
                names.append(symbol)
        if not names:
            return out
        if self._outputs.min_confidence is None:
            # Validation chose no entry level: nothing the features could say changes that,
            # so they are not computed (the same skip `_entry` would give, at a fraction of
            # the cost per bar).
            out.extend(self._skip(ts, s, SkipReason.NO_SIGNAL, NO_ENTRY_LEVEL) for s in names)
            return out
        x = self._feature_rows(snapshot, names)

        usable = np.ones(len(names), dtype=bool)
        for i, symbol in enumerate(names):
            problem = self._input_problem(x[i])
            if problem is not None:
                usable[i] = False
                out.append(self._skip(ts, symbol, *problem))
        if not usable.any():
            return out
        names = [s for s, ok in zip(names, usable, strict=True) if ok]
        x = x[usable]
        chosen = self._universe(x)
        for i in np.flatnonzero(~chosen.mask):
            out.append(
                self._skip(
                    ts,
                    names[i],
                    SkipReason.NOT_IN_UNIVERSE,
                    f"rank {chosen.rank[i] + 1} of {len(names)} (universe of {chosen.count})",
                )
            )
        picked = np.flatnonzero(chosen.mask)
        if len(picked):
            out.extend(self._entries(ts, [names[i] for i in picked], x[picked], portfolio))
        return out

    def _input_problem(self, row: np.ndarray) -> tuple[SkipReason, str] | None:
        bad = ~np.isfinite(row)
        if bad.any():
            missing = [self.features[j] for j in np.flatnonzero(bad)]
            return SkipReason.NAN_FEATURES, f"not finite: {', '.join(missing)}"
        outside = (row < self._lo) | (row > self._hi)
        if outside.any():
            j = int(np.flatnonzero(outside)[0])
            return (
                SkipReason.OUT_OF_DISTRIBUTION,
                f"{self.features[j]} = {row[j]:.6g} outside its training range "
                f"[{self._lo[j]:.6g}, {self._hi[j]:.6g}]",
            )
        return None

    def _universe(self, x: np.ndarray) -> _Choice:
        assert self.models is not None
        score = self.models.booster("universe").predict(x, num_threads=1)
        n = len(score)
        if self.universe.count == "auto":
            above = int(np.sum(score >= self._outputs.auto_score_cutoff))
            count = min(max(above, self.universe.auto_min), self.universe.auto_max)
        else:
            count = int(self.universe.count)
        order = np.argsort(-score, kind="stable")
        rank = np.empty(n, dtype=int)
        rank[order] = np.arange(n)
        return _Choice(mask=rank < count, rank=rank, count=min(count, n))

    def _entries(
        self, ts: int, symbols: list[str], x: np.ndarray, portfolio: Portfolio
    ) -> list[Decision]:
        assert self.models is not None
        o = self._outputs
        zone = self.zone
        contrib = self._direction_contrib(x)
        raw = contrib.sum(axis=1)
        if o.calibration == "isotonic":
            p_up = isotonic_apply(raw, *o.isotonic)
        else:
            p_up = platt_apply(raw, o.platt_a, o.platt_b)
        long = p_up > 1 - p_up
        sign = np.where(long, 1.0, -1.0)
        confidence = np.where(long, p_up, 1 - p_up)
        xs = np.column_stack([x, sign])
        unit = x[:, self._sigma_col] * np.sqrt(o.horizon_bars)
        stop = self.models.booster("adverse").predict(xs, num_threads=1) * unit
        favourable = {
            role: self.models.booster(f"favourable_{role}").predict(xs, num_threads=1) * unit
            for role in LADDER
        }
        equity = portfolio.equity
        out = [
            self._entry(
                ts, symbol, sign[i], confidence[i], unit[i], stop[i], favourable, i, x[i], equity
            )
            for i, symbol in enumerate(symbols)
        ]
        for i, d in enumerate(out):
            if d.skip is None:
                d = d.with_changes(reasons=self._reasons(contrib[i, :-1] * sign[i]))
                problem = zone.explain(d)
                out[i] = d.as_skip(*problem) if problem is not None else d
        return out

    def _reasons(self, contrib: np.ndarray) -> tuple[tuple[str, float], ...]:
        """Top feature contributions to the chosen side (positive: in favour of it)."""
        top = np.argsort(-np.abs(contrib), kind="stable")[: self.reasons_top]
        return tuple((self.features[j], round(float(contrib[j]), 6)) for j in top)

    def _entry(
        self,
        ts: int,
        symbol: str,
        sign: float,
        confidence: float,
        volatility: float,
        stop: float,
        favourable: dict[str, np.ndarray],
        i: int,
        row: np.ndarray,
        equity: float,
    ) -> Decision:
        zone, o = self.zone, self._outputs
        if not (np.isfinite(stop) and 0 < stop < 1):
            return self._skip(
                ts, symbol, SkipReason.OUT_OF_ZONE, f"predicted stop distance {stop:.6g}"
            )
        in_r = o.ladder_scale * np.array([favourable[role][i] for role in LADDER]) / stop
        lo, hi = zone.min_harvest_r, zone.max_harvest_r
        lock_r, t1_r, t2_r, t3_r = (min(max(float(r), lo), hi) for r in in_r)
        t2_r = max(t2_r, t1_r)  # quantile heads may cross: keep the ladder ascending
        t3_r = max(t3_r, t2_r)
        if o.min_confidence is None:
            return self._skip(ts, symbol, SkipReason.NO_SIGNAL, NO_ENTRY_LEVEL)
        if confidence < o.min_confidence:
            return self._skip(
                ts,
                symbol,
                SkipReason.LOW_CONFIDENCE,
                f"confidence {confidence:.4f} below the level chosen on validation "
                f"{o.min_confidence:.4f}",
            )
        # Expected net return: the edge validation realised at this confidence (volatility
        # units) times the predicted volatility, minus the venue's round trip and the funding
        # the side would pay at the latest rate; no trade unless it is positive.
        gross = float(isotonic_apply(confidence, *o.edge_knots)) * volatility
        rate = 0.0 if self._funding_col is None else float(row[self._funding_col])
        funding = sign * rate * o.settlements
        expected = gross - self.round_trip_cost - funding
        if expected <= 0:
            return self._skip(
                ts,
                symbol,
                SkipReason.LOW_CONFIDENCE,
                f"expected move {gross:.5f} at confidence {confidence:.4f} does not beat the "
                f"round-trip cost {self.round_trip_cost:.5f} and funding {funding:.5f}",
            )
        if equity <= 0:
            return self._skip(ts, symbol, SkipReason.NO_EQUITY, f"equity is {equity:g}")
        # The universe's perpetuals move together: N positions are close to one bet, so the
        # Kelly bet is shared across the N the universe may hold, not taken N times over.
        size = min(o.kelly_fraction * expected / volatility**2 / self._bets, zone.max_size_pct)
        notional = equity * size
        maintenance_rate = 0.0
        max_leverage = zone.max_leverage
        if self.tiers is not None and self.tiers.has(symbol):
            maintenance_rate = self.tiers.maintenance_margin(symbol, notional) / notional
            bracket = self.tiers.max_leverage(symbol, notional)
            if bracket < zone.min_leverage:
                return self._skip(
                    ts,
                    symbol,
                    SkipReason.BRACKET_EXCEEDED,
                    f"notional {notional:.2f} above the exchange's top bracket",
                )
            max_leverage = min(max_leverage, bracket)
        leverage = (1 - self.limits.min_margin_ratio) / (stop + maintenance_rate)
        leverage = min(max(float(leverage), zone.min_leverage), max_leverage)
        regime = str(int(row[self._regime_col]))
        kill = o.kill_thresholds.get(regime, o.kill_thresholds.get("all"))
        reduce_at = o.reduce_thresholds.get(regime, o.reduce_thresholds.get("all"))
        reduce_frac = o.reduce_fracs.get(regime, o.reduce_fracs.get("all"))
        if kill is None or reduce_at is None or reduce_frac is None:
            return self._skip(
                ts,
                symbol,
                SkipReason.MISSING_VALUE,
                f"no kill threshold or reduce step for regime {regime}",
            )
        t1_close, t2_close = o.close_fracs
        return Decision(
            ts=ts,
            symbol=symbol,
            side=Side.LONG if sign > 0 else Side.SHORT,
            leverage=leverage,
            size_pct=float(size),
            stop_loss_pct=float(stop),
            take_profit_pct=float(t3_r * stop),
            harvest=HarvestLadder(
                t1_r=float(t1_r),
                t2_r=float(t2_r),
                t3_r=float(t3_r),
                lock_r=float(lock_r),
                t1_close_frac=t1_close,
                t2_close_frac=t2_close,
            ),
            kill_threshold=float(kill),
            kill_reduce_threshold=float(reduce_at),
            kill_reduce_frac=float(reduce_frac),
            max_hold_sec=o.max_hold_sec,
            confidence=float(confidence),
            policy=self.name,
            model_version=self.version,
        )
