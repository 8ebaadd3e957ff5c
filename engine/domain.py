"""Shared domain types of the trading engine, defined once and imported everywhere else.

No IO here. Units, used consistently across the engine, journal and models:
- timestamps are integer milliseconds since the Unix epoch (UTC);
- `Decision.size_pct`, `stop_loss_pct`, `take_profit_pct` and every exposure or margin ratio
  are *fractions* (0.025 = 2.5 %); `size_pct` is the position's notional as a fraction of equity
  (`notional = equity * size_pct`), leverage only sets the initial margin (`notional / leverage`);
- `SafetyLimits.*_pct` are percent numbers as the owner wrote them (10.0 = 10 %); use the
  fraction properties (`max_position_fraction`...) when comparing with the values above.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

import numpy as np

# defined in engine.limits (no numpy there), part of the domain: re-exported
from engine.limits import PERCENT as PERCENT
from engine.limits import LimitsError as LimitsError
from engine.limits import SafetyLimits as SafetyLimits

# ---------------------------------------------------------------------------------------------
# enums


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        """+1 for long, -1 for short: PnL = sign * qty * (exit - entry)."""
        return 1 if self is _LONG else -1

    @property
    def opposite(self) -> Side:
        return _SHORT if self is _LONG else _LONG


# the members as module constants: `Side.LONG` looks the member up on the enum class each time
# (slow in loops that run per bar and position)
_LONG, _SHORT = Side.LONG, Side.SHORT


class TradingState(StrEnum):
    """ACTIVE: everything allowed. REDUCING: only orders that reduce an open position.
    HALTED: the engine sends nothing new (exchange-side stop/take-profit backstops stay resting)."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class SkipReason(StrEnum):
    """Why a decision did not become an order. Every skip is journaled with one of these."""

    POLICY_ERROR = "POLICY_ERROR"  # the policy raised
    POLICY_NAN = "POLICY_NAN"  # a value was NaN or infinite
    OUT_OF_ZONE = "OUT_OF_ZONE"  # a value outside the autonomy zone
    MISSING_VALUE = "MISSING_VALUE"  # an entry lacked a required value (never defaulted)
    BAD_DECISION = "BAD_DECISION"  # not a Decision, wrong symbol, wrong timestamp...
    MODEL_MISSING = "MODEL_MISSING"
    MODEL_STALE = "MODEL_STALE"
    MODEL_CORRUPT = "MODEL_CORRUPT"
    NAN_FEATURES = "NAN_FEATURES"
    OUT_OF_DISTRIBUTION = "OUT_OF_DISTRIBUTION"
    NOT_IN_UNIVERSE = "NOT_IN_UNIVERSE"
    NO_SIGNAL = "NO_SIGNAL"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    EXPOSURE_LIMIT = "EXPOSURE_LIMIT"
    MARGIN_LIMIT = "MARGIN_LIMIT"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"  # initial margin larger than the free margin
    BRACKET_EXCEEDED = "BRACKET_EXCEEDED"  # notional above the exchange's top bracket
    STATE_HALTED = "STATE_HALTED"
    STATE_REDUCING = "STATE_REDUCING"
    ALREADY_IN_POSITION = "ALREADY_IN_POSITION"
    NO_DATA = "NO_DATA"  # the symbol has no market data at all
    WARMUP = "WARMUP"  # not enough history yet for the policy's look-back
    NO_PRICE = "NO_PRICE"  # no usable price to size the order
    NO_EQUITY = "NO_EQUITY"  # equity is zero or negative


class SafetyAction(StrEnum):
    CLIP = "CLIP"
    VETO = "VETO"


class LimitName(StrEnum):
    """Which limit a `SafetyEvent` is about (values in fractions of equity or leverage x)."""

    MAX_LEVERAGE = "max_leverage"
    BRACKET_LEVERAGE = "bracket_max_leverage"
    BRACKET_NOTIONAL = "bracket_max_notional"
    MAX_POSITION_SIZE = "max_position_size"
    MAX_TOTAL_EXPOSURE = "max_total_exposure"
    MIN_MARGIN_RATIO = "min_margin_ratio"
    AVAILABLE_MARGIN = "available_margin"
    TRADING_STATE = "trading_state"
    AUTONOMY_ZONE = "autonomy_zone"
    ONE_POSITION_PER_SYMBOL = "one_position_per_symbol"  # adding or closing is not a decision's job
    INPUTS = "inputs"  # no usable price or equity to size against
    RECONCILE = "reconcile"  # start-up found the exchange and the journal apart (live, paper)


class PolicyKey(StrEnum):
    """The one list of policy value names: models publish them, migrations write look-ups of them."""

    LEVERAGE = "leverage"
    SIZE_PCT = "size_pct"
    STOP_LOSS_PCT = "stop_loss_pct"
    TAKE_PROFIT_PCT = "take_profit_pct"
    HARVEST_T1_R = "harvest_t1_r"
    HARVEST_T2_R = "harvest_t2_r"
    HARVEST_T3_R = "harvest_t3_r"
    HARVEST_LOCK_R = "harvest_lock_r"
    HARVEST_T1_CLOSE_FRAC = "harvest_t1_close_frac"  # share of the open qty closed at T1
    HARVEST_T2_CLOSE_FRAC = "harvest_t2_close_frac"  # share of the open qty closed at T2
    KILL_THRESHOLD = "kill_threshold"
    KILL_REDUCE_THRESHOLD = "kill_reduce_threshold"  # kill score that closes part, once
    KILL_REDUCE_FRAC = "kill_reduce_frac"  # share of the open qty that reduce closes
    MAX_HOLD_SEC = "max_hold_sec"  # a position held this long is closed
    UNIVERSE_SYMBOLS = "universe_symbols"
    UNIVERSE_COUNT = "universe_count"


class OrderType(StrEnum):
    MARKET = "MARKET"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"


class OrderStatus(StrEnum):
    NEW = "NEW"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"


class OrderPurpose(StrEnum):
    """Why an order exists; part of its deterministic client order id."""

    ENTRY = "entry"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    HARVEST_T1 = "harvest_t1"
    HARVEST_T2 = "harvest_t2"
    HARVEST_T3 = "harvest_t3"
    KILL = "kill"
    KILL_REDUCE = "kill_reduce"
    MAX_HOLD = "max_hold"
    FLATTEN = "flatten"
    RISK_REDUCE = "risk_reduce"  # a trim back inside a hard limit at a bar close
    LIQUIDATION = "liquidation"


# ---------------------------------------------------------------------------------------------
# fast construction of the engine's own frozen objects


def slot_builder(cls: type) -> Callable[..., Any]:
    """A positional constructor of a frozen slots dataclass without `__post_init__`, for copies
    of objects that already exist and for the objects the engine builds itself in per-bar paths.

    It sets each field's slot through that slot's own descriptor, where the generated `__init__`
    calls `object.__setattr__` field by field (a lookup of the attribute on the type each time,
    about twice the time). The object is the same: an instance of `cls`, frozen (assignment
    still raises `FrozenInstanceError`), equal to `cls(*values)` (tests/engine/
    test_domain_builders.py). A class that checks its values in `__post_init__` is refused
    (a builder would skip the check), as is one whose fields are not all `__init__` arguments.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} validates in __post_init__: build it with its __init__")
    if cls.__new__ is not object.__new__:
        raise TypeError(f"{cls.__name__} has its own __new__")
    names = [f.name for f in fields(cls)]
    if len(names) != len(cls.__slots__) or any(not f.init for f in fields(cls)):
        raise TypeError(f"{cls.__name__}: every slot must be an __init__ field")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    if any(n in namespace or n.startswith("_set") or n == "obj" for n in names):
        raise TypeError(f"{cls.__name__}: a field name clashes with the builder's own names")
    lines = [f"def build({', '.join(names)}):", "    obj = _new(_cls)"]
    for k, name in enumerate(names):
        namespace[f"_set{k}"] = cls.__dict__[name].__set__  # the slot's member descriptor
        lines.append(f"    _set{k}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # a fixed template over the class's own field names
    build = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__.lower()}"
    build.__doc__ = f"{cls.__name__}({', '.join(names)}), positional (`slot_builder`)."
    return build


# ---------------------------------------------------------------------------------------------
# limits and the autonomy zone


@dataclass(frozen=True, slots=True)
class AutonomyZone:
    """Where the models (and any policy) decide freely; outside it a decision is SKIPPED.

    Leverage and size bounds follow the safety limits in force (so stricter config shrinks the
    zone); the harvest and kill-threshold bounds are the owner's. Stops and take-profits may be
    anything that makes sense: a stop distance in (0, 1) of the entry price, a positive target.
    """

    limits: SafetyLimits = field(default_factory=SafetyLimits)
    min_leverage: float = 1.0  # a futures position cannot use less margin than its notional
    min_harvest_r: float = 0.5
    max_harvest_r: float = 10.0
    min_kill_threshold: float = 0.3
    max_kill_threshold: float = 0.9

    def __post_init__(self) -> None:
        """The zone, like the limits, may be narrowed by config but never widened."""
        for f in fields(self):
            if f.name == "limits":
                continue
            value, owner = getattr(self, f.name), f.default
            wider = value < owner if f.name.startswith("min_") else value > owner
            if not math.isfinite(value) or wider:
                raise LimitsError(
                    f"autonomy zone {f.name} = {value:g} is wider than the owner's {owner:g}"
                )
        for lo, hi in (
            ("min_harvest_r", "max_harvest_r"),
            ("min_kill_threshold", "max_kill_threshold"),
        ):
            if getattr(self, lo) > getattr(self, hi):
                raise LimitsError(f"autonomy zone {lo} is above {hi}")
        if self.min_leverage > self.limits.max_leverage:
            raise LimitsError("autonomy zone min_leverage is above the max_leverage limit")

    @classmethod
    def for_limits(cls, limits: SafetyLimits) -> AutonomyZone:
        return cls(limits=limits)

    @property
    def max_leverage(self) -> float:
        return self.limits.max_leverage

    @property
    def max_size_pct(self) -> float:
        return self.limits.max_position_fraction

    def as_dict(self) -> dict[str, float]:
        """The bounds as a policy file writes them (`zone`) and the accessor checks them."""
        return {
            "min_leverage": float(self.min_leverage),
            "max_leverage": float(self.max_leverage),
            "max_size_pct": float(self.max_size_pct),
            "min_harvest_r": float(self.min_harvest_r),
            "max_harvest_r": float(self.max_harvest_r),
            "min_kill_threshold": float(self.min_kill_threshold),
            "max_kill_threshold": float(self.max_kill_threshold),
        }

    def check(self, decision: Decision) -> SkipReason | None:
        """None if an entry decision is complete, finite and inside the zone; else the reason."""
        problem = self.explain(decision)
        return None if problem is None else problem[0]

    def explain(self, decision: Decision) -> tuple[SkipReason, str] | None:
        """Like `check`, with a one-line detail naming the value and the bound.

        Skip decisions pass unchanged (nothing to check). Order of checks: missing, NaN, zone.
        """
        if decision.skip is not None:
            return None
        if decision.side is None:
            return SkipReason.MISSING_VALUE, "side is missing"
        if self._plainly_inside(decision):
            return None
        values = decision.numeric_values()
        # no ladder at all is allowed; a ladder lacking its close fractions is not
        optional = _NO_LADDER_VALUES if decision.harvest is None else _OPTIONAL_ENTRY_VALUES
        for name, value in values.items():
            if value is None and name not in optional:
                return SkipReason.MISSING_VALUE, f"{name} is missing"
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                return SkipReason.BAD_DECISION, f"{name} is not a number: {value!r}"
            if not math.isfinite(value):
                return SkipReason.POLICY_NAN, f"{name} is {value}"
        return self._zone_violation(values)

    def _plainly_inside(self, d: Decision) -> bool:
        """A sufficient test for `explain` finding nothing, without building any message: every
        value present, a float (not a bool, int or numpy scalar: those take the full path),
        finite and inside its bound, ladder ascending, reduce threshold at most the kill one.
        False means: run the full checks (which name the first problem, if any)."""
        h = d.harvest
        if h is None:
            return False
        lev, size, stop, tp = d.leverage, d.size_pct, d.stop_loss_pct, d.take_profit_pct
        kill, reduce, frac = d.kill_threshold, d.kill_reduce_threshold, d.kill_reduce_frac
        hold, conf = d.max_hold_sec, d.confidence
        t1, t2, t3, lock, f1, f2 = (
            h.t1_r,
            h.t2_r,
            h.t3_r,
            h.lock_r,
            h.t1_close_frac,
            h.t2_close_frac,
        )
        f = float
        if not (
            type(lev) is f
            and type(size) is f
            and type(stop) is f
            and (tp is None or type(tp) is f)
            and type(kill) is f
            and type(reduce) is f
            and type(frac) is f
            and type(hold) is f
            and type(conf) is f
            and type(t1) is f
            and type(t2) is f
            and type(t3) is f
            and type(lock) is f
            and type(f1) is f
            and type(f2) is f
        ):
            return False
        lo_r, hi_r = self.min_harvest_r, self.max_harvest_r
        lo_k, hi_k = self.min_kill_threshold, self.max_kill_threshold
        inf = math.inf
        return (
            self.min_leverage <= lev <= self.max_leverage
            and 0.0 < size <= self.max_size_pct
            and 0.0 < stop < 1.0
            and (tp is None or 0.0 < tp < inf)
            and lo_k <= reduce <= kill <= hi_k
            and 0.0 < frac < 1.0
            and 0.0 < hold < inf
            and 0.0 <= conf <= 1.0
            and lo_r <= t1 <= t2 <= t3 <= hi_r
            and lo_r <= lock <= hi_r
            and 0.0 < f1 <= 1.0
            and 0.0 < f2 <= 1.0
        )

    def _zone_violation(self, v: Mapping[str, float | None]) -> tuple[SkipReason, str] | None:
        def out(
            name: str,
            lo: float | None,
            hi: float | None,
            lo_open: bool = False,
            hi_open: bool = False,
        ) -> tuple[SkipReason, str] | None:
            value = v[name]
            if value is None:
                return None
            below = lo is not None and (value <= lo if lo_open else value < lo)
            above = hi is not None and (value >= hi if hi_open else value > hi)
            if below or above:
                lo_s = "-inf" if lo is None else f"{lo:g}"
                hi_s = "inf" if hi is None else f"{hi:g}"
                bracket = "(" if lo_open else "["
                closing = ")" if hi_open else "]"
                return (
                    SkipReason.OUT_OF_ZONE,
                    f"{name} = {value:g} outside {bracket}{lo_s}, {hi_s}{closing}",
                )
            return None

        checks = [
            out("leverage", self.min_leverage, self.max_leverage),
            out("size_pct", 0.0, self.max_size_pct, lo_open=True),
            out("stop_loss_pct", 0.0, None, lo_open=True),
            out("take_profit_pct", 0.0, None, lo_open=True),
            out("kill_threshold", self.min_kill_threshold, self.max_kill_threshold),
            out("kill_reduce_threshold", self.min_kill_threshold, self.max_kill_threshold),
            out("kill_reduce_frac", 0.0, 1.0, lo_open=True, hi_open=True),
            out("max_hold_sec", 0.0, None, lo_open=True),
            out("confidence", 0.0, 1.0),
        ]
        for name in ("harvest_t1_r", "harvest_t2_r", "harvest_t3_r", "harvest_lock_r"):
            checks.append(out(name, self.min_harvest_r, self.max_harvest_r))
        for name in ("harvest_t1_close_frac", "harvest_t2_close_frac"):
            checks.append(out(name, 0.0, 1.0, lo_open=True))
        for problem in checks:
            if problem is not None:
                return problem
        stop = v["stop_loss_pct"]
        if stop is not None and stop >= 1.0:
            return (
                SkipReason.OUT_OF_ZONE,
                f"stop_loss_pct = {stop:g} would put the stop at or past zero",
            )
        t1, t2, t3 = v["harvest_t1_r"], v["harvest_t2_r"], v["harvest_t3_r"]
        if None not in (t1, t2, t3) and not (t1 <= t2 <= t3):
            return SkipReason.OUT_OF_ZONE, f"harvest ladder not ascending: {t1:g}/{t2:g}/{t3:g} R"
        reduce, kill = v["kill_reduce_threshold"], v["kill_threshold"]
        if reduce is not None and kill is not None and reduce > kill:
            return (
                SkipReason.OUT_OF_ZONE,
                f"kill_reduce_threshold = {reduce:g} above kill_threshold = {kill:g}",
            )
        return None


# values an entry decision may leave out: no take-profit backstop; and without a harvest ladder
# its values, close fractions included (a ladder that is there must be complete)
_OPTIONAL_ENTRY_VALUES = frozenset({"take_profit_pct"})
_NO_LADDER_VALUES = _OPTIONAL_ENTRY_VALUES | {str(k) for k in PolicyKey if k.startswith("harvest_")}


# ---------------------------------------------------------------------------------------------
# decisions


@dataclass(frozen=True, slots=True)
class HarvestLadder:
    """Partial closes at T1/T2/T3 R (R = the initial stop distance); stop to break-even+ at lock R.

    At T1 and T2 the exit controller closes `t1_close_frac` / `t2_close_frac` of the quantity
    still open; T3 closes what is left. A ladder without its close fractions is incomplete: an
    entry carrying one is skipped (MISSING_VALUE), and the controller takes no harvest from it.
    """

    t1_r: float
    t2_r: float
    t3_r: float
    lock_r: float
    t1_close_frac: float | None = None
    t2_close_frac: float | None = None

    @property
    def close_fracs(self) -> tuple[float, float] | None:
        """(T1, T2) shares of the open quantity, or None when the ladder does not say."""
        if self.t1_close_frac is None or self.t2_close_frac is None:
            return None
        return self.t1_close_frac, self.t2_close_frac


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy wants for one symbol at one time: an entry, or a skip with a reason code.

    An entry has `side` and every value; a skip has `skip` set and no trading values. Policies
    never fill in a default for a value they do not have: they skip.
    """

    ts: int
    symbol: str
    side: Side | None = None
    leverage: float | None = None
    size_pct: float | None = None
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    harvest: HarvestLadder | None = None
    kill_threshold: float | None = None
    kill_reduce_threshold: float | None = None
    kill_reduce_frac: float | None = None
    max_hold_sec: float | None = None
    confidence: float | None = None
    policy: str = ""
    model_version: str = ""
    reasons: tuple[tuple[str, float], ...] = ()
    skip: SkipReason | None = None
    skip_detail: str = ""

    @classmethod
    def skipped(
        cls,
        ts: int,
        symbol: str,
        reason: SkipReason,
        detail: str,
        policy: str = "",
        model_version: str = "",
        reasons: tuple[tuple[str, float], ...] = (),
    ) -> Decision:
        if cls is not Decision:
            return cls(
                ts=ts,
                symbol=symbol,
                policy=policy,
                model_version=model_version,
                reasons=reasons,
                skip=reason,
                skip_detail=detail,
            )
        # one per symbol at each policy refresh: the fields in order, the trading values None
        return build_decision(
            ts, symbol, None, None, None, None, None, None, None, None, None, None, None,
            policy, model_version, reasons, reason, detail,
        )  # fmt: skip

    @property
    def is_skip(self) -> bool:
        return self.skip is not None

    @property
    def action(self) -> str:
        """`skip` or the side to open: the journal's `action` column."""
        if self.skip is not None:
            return "skip"
        return str(self.side) if self.side is not None else "none"

    def numeric_values(self) -> dict[str, float | None]:
        """The decision's trading values, flat, with PolicyKey-style names."""
        h = self.harvest
        return {
            "leverage": self.leverage,
            "size_pct": self.size_pct,
            "stop_loss_pct": self.stop_loss_pct,
            "take_profit_pct": self.take_profit_pct,
            "harvest_t1_r": h.t1_r if h is not None else None,
            "harvest_t2_r": h.t2_r if h is not None else None,
            "harvest_t3_r": h.t3_r if h is not None else None,
            "harvest_lock_r": h.lock_r if h is not None else None,
            "harvest_t1_close_frac": h.t1_close_frac if h is not None else None,
            "harvest_t2_close_frac": h.t2_close_frac if h is not None else None,
            "kill_threshold": self.kill_threshold,
            "kill_reduce_threshold": self.kill_reduce_threshold,
            "kill_reduce_frac": self.kill_reduce_frac,
            "max_hold_sec": self.max_hold_sec,
            "confidence": self.confidence,
        }

    def with_changes(self, **changes: Any) -> Decision:
        return replace(self, **changes)

    def as_skip(self, reason: SkipReason, detail: str) -> Decision:
        """The same decision turned into a skip (keeps policy, model version and reasons)."""
        return Decision.skipped(
            self.ts, self.symbol, reason, detail, self.policy, self.model_version, self.reasons
        )


build_decision = slot_builder(Decision)


# ---------------------------------------------------------------------------------------------
# market snapshot


@dataclass(frozen=True, slots=True)
class Bars:
    """OHLCV arrays of one symbol (float64, `ts` int64 open times in ms), oldest first, read-only."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_arrays(
        cls,
        ts: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> Bars:
        """Copy-free when dtypes already match; the arrays are marked read-only."""
        arrays = [np.asarray(ts, dtype=np.int64)] + [
            np.asarray(a, dtype=np.float64) for a in (open, high, low, close, volume)
        ]
        n = len(arrays[0])
        for a in arrays:
            if a.ndim != 1 or len(a) != n:
                raise ValueError("Bars arrays must be one-dimensional and of equal length")
            a.flags.writeable = False
        return cls(*arrays)

    def __len__(self) -> int:
        return len(self.ts)

    def head(self, n: int) -> Bars:
        """The first n bars (views, no copy)."""
        return Bars(
            self.ts[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
        )


class MarketSnapshot:
    """What is known at `ts`: the close time of the bar that just closed.

    Per symbol, the history window up to and including that bar; never anything after `ts`.
    Built cheaply each bar from full series plus a per-symbol count of known bars: windows are
    sliced lazily, only for symbols a policy actually looks at.
    """

    __slots__ = ("ts", "timeframe_ms", "_series", "_known")

    def __init__(
        self,
        ts: int,
        timeframe_ms: int,
        series: Mapping[str, Bars],
        known: Mapping[str, int],
    ) -> None:
        self.ts = int(ts)
        self.timeframe_ms = int(timeframe_ms)
        self._series = series
        self._known = known

    @classmethod
    def from_windows(
        cls, ts: int, timeframe_ms: int, windows: Mapping[str, Bars]
    ) -> MarketSnapshot:
        """A snapshot from windows that already end at `ts` (tests, live mode)."""
        return cls(ts, timeframe_ms, windows, {s: len(b) for s, b in windows.items()})

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols with at least one known bar."""
        return tuple(s for s, n in self._known.items() if n > 0)

    def has(self, symbol: str) -> bool:
        return self._known.get(symbol, 0) > 0

    def wraps(self, series: Mapping[str, Bars]) -> bool:
        """Whether this snapshot's windows are views of exactly these series (a policy that
        prepared values from them may read those for the windows it sees)."""
        return self._series is series

    def n_bars(self, symbol: str) -> int:
        return self._known.get(symbol, 0)

    def bars(self, symbol: str) -> Bars:
        """The symbol's window (views ending at the current bar). KeyError if unknown."""
        n = self._known.get(symbol, 0)
        if n <= 0:
            raise KeyError(symbol)
        return self._series[symbol].head(n)

    def close(self, symbol: str, lookback: int) -> np.ndarray:
        """The last `lookback` closes (fewer if history is shorter)."""
        n = self._known.get(symbol, 0)
        return self._series[symbol].close[max(0, n - lookback) : n]

    def last_close(self, symbol: str) -> float:
        n = self._known.get(symbol, 0)
        if n <= 0:
            raise KeyError(symbol)
        return float(self._series[symbol].close[n - 1])

    def __iter__(self) -> Iterator[str]:
        return iter(self.symbols)


# ---------------------------------------------------------------------------------------------
# orders, fills, positions, portfolio


def client_order_id(run_id: str, symbol: str, ts: int, purpose: str, seq: int = 0) -> str:
    """Deterministic id (same run, symbol, time, purpose and sequence → same id), 27 chars.

    Fits Binance's newClientOrderId rule (<= 36 of [A-Za-z0-9._:/-]); replaying a run after a
    crash yields the same ids, so an order is never sent twice.
    """
    key = f"{run_id}|{symbol}|{ts}|{purpose}|{seq}".encode()
    return "qc-" + hashlib.sha256(key).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Order:
    """An order the engine sends (or the broker holds as a resting stop/take-profit)."""

    client_order_id: str
    ts: int
    symbol: str
    side: Side
    type: OrderType
    qty: float
    purpose: str
    stop_price: float | None = None
    reduce_only: bool = False
    status: OrderStatus = OrderStatus.NEW
    detail: str = ""

    @classmethod
    def create(
        cls,
        run_id: str,
        ts: int,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: float,
        purpose: str,
        stop_price: float | None = None,
        reduce_only: bool = False,
        seq: int = 0,
    ) -> Order:
        cid = client_order_id(run_id, symbol, ts, purpose, seq)
        if cls is not Order:
            return cls(cid, ts, symbol, side, type, qty, purpose, stop_price, reduce_only)
        return build_order(
            cid, ts, symbol, side, type, qty, purpose, stop_price, reduce_only, _NEW, ""
        )

    def with_status(self, status: OrderStatus, detail: str = "") -> Order:
        """The same order with another status (and detail, when one is given)."""
        return build_order(
            self.client_order_id,
            self.ts,
            self.symbol,
            self.side,
            self.type,
            self.qty,
            self.purpose,
            self.stop_price,
            self.reduce_only,
            status,
            detail or self.detail,
        )

    def resized(self, qty: float, ts: int) -> Order:
        """The same order (same client order id, status and detail) for another quantity and
        time: a resting backstop that follows its position, or fills at a bar."""
        return build_order(
            self.client_order_id,
            ts,
            self.symbol,
            self.side,
            self.type,
            qty,
            self.purpose,
            self.stop_price,
            self.reduce_only,
            self.status,
            self.detail,
        )


build_order = slot_builder(Order)
_NEW = OrderStatus.NEW


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order. `fee` is in USDT, positive = paid."""

    client_order_id: str
    ts: int
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    is_maker: bool = False
    realised_pnl: float = 0.0

    @property
    def notional(self) -> float:
        return self.qty * self.price


build_fill = slot_builder(Fill)


@dataclass(slots=True)
class Position:
    """An open (or just closed) position on a USDT-margined linear perpetual, cross margin.

    `mark_price` is the latest price the broker marked it at; `initial_stop_price` fixes 1 R
    (= |entry - initial stop|) for the harvest ladder even after the stop moves. The exit values
    (ladder, kill and reduce thresholds, `max_hold_sec`) are the entry decision's.
    """

    symbol: str
    side: Side
    qty: float
    entry_price: float
    leverage: float
    opened_ts: int
    stop_price: float | None = None
    take_profit_price: float | None = None
    harvest: HarvestLadder | None = None
    kill_threshold: float | None = None
    kill_reduce_threshold: float | None = None
    kill_reduce_frac: float | None = None
    max_hold_sec: float | None = None
    initial_qty: float = 0.0
    initial_stop_price: float | None = None
    harvest_stage: int = 0  # how many of T1/T2/T3 were taken
    kill_reduced: bool = False  # the once-per-position kill-reduce step was taken
    mark_price: float = 0.0
    realised_pnl: float = 0.0
    fees_paid: float = 0.0
    funding_paid: float = 0.0
    closed_ts: int | None = None
    close_reason: str = ""
    policy: str = ""
    model_version: str = ""

    def __post_init__(self) -> None:
        if self.initial_qty == 0.0:
            self.initial_qty = self.qty
        if self.mark_price == 0.0:
            self.mark_price = self.entry_price

    @property
    def is_open(self) -> bool:
        return self.closed_ts is None and self.qty > 0

    @property
    def notional(self) -> float:
        """Absolute notional at the mark price (USDT)."""
        return self.qty * self.mark_price

    @property
    def unrealised_pnl(self) -> float:
        return self.side.sign * self.qty * (self.mark_price - self.entry_price)

    @property
    def initial_margin(self) -> float:
        return self.notional / self.leverage

    @property
    def r_distance(self) -> float | None:
        """Price distance of 1 R, from the initial stop; None without a stop."""
        if self.initial_stop_price is None:
            return None
        return abs(self.entry_price - self.initial_stop_price)

    def r_multiple(self, price: float) -> float | None:
        """How many R the price is in the position's favour (negative: against)."""
        r = self.r_distance
        if not r:
            return None
        return self.side.sign * (price - self.entry_price) / r


@dataclass(slots=True)
class Portfolio:
    """The account: wallet balance (realised), open positions at their mark, trading state.

    equity = wallet balance + unrealised PnL (Binance's margin balance, cross margin).
    """

    wallet_balance: float
    positions: dict[str, Position] = field(default_factory=dict)
    state: TradingState = TradingState.ACTIVE
    ts: int = 0

    @property
    def equity(self) -> float:
        return self.wallet_balance + sum(p.unrealised_pnl for p in self.positions.values())

    def position(self, symbol: str) -> Position | None:
        return self.positions.get(symbol)

    def gross_notional(self) -> float:
        return sum(p.notional for p in self.positions.values())

    def exposure(self) -> float:
        """Gross notional as a fraction of equity (inf when equity <= 0 with positions open)."""
        notional = self.gross_notional()
        eq = self.equity
        if eq <= 0:
            return math.inf if notional > 0 else 0.0
        return notional / eq

    def initial_margin(self) -> float:
        return sum(p.initial_margin for p in self.positions.values())

    def mark(self, prices: Mapping[str, float]) -> None:
        """Set mark prices (symbols missing from `prices` keep their previous mark)."""
        for symbol, p in self.positions.items():
            price = prices.get(symbol)
            if price is not None:
                p.mark_price = price


@dataclass(frozen=True, slots=True)
class SafetyEvent:
    """A hard limit clipped or vetoed something.

    `requested`: the value asked for (or the value the trade would have produced);
    `applied`: the value after a CLIP, None for a VETO; `bound`: the limit's value.
    Leverage in x, everything else in fractions of equity.
    """

    ts: int
    symbol: str
    limit: LimitName
    requested: float
    applied: float | None
    bound: float
    action: SafetyAction
    detail: str = ""
    skip: SkipReason | None = None


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """One row of the equity curve, with the risk gauges at that time."""

    ts: int
    equity: float
    wallet_balance: float
    unrealised_pnl: float
    margin_ratio: float
    exposure: float
    open_positions: int
    state: TradingState = TradingState.ACTIVE


class ControlCommand(StrEnum):
    """Operator requests (TUI, CLI) that the engine polls from the journal's control table.

    pause: no new entries (REDUCING); resume: back to ACTIVE; flatten: close every position
    through the exit controller, then REDUCING; halt: HALTED, nothing new is sent.
    """

    PAUSE = "pause"
    RESUME = "resume"
    FLATTEN = "flatten"
    HALT = "halt"


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One operator request; `handled_ts` and `result` are set once the engine acted on it."""

    id: int
    ts: int
    command: ControlCommand
    symbol: str | None = None
    source: str = ""
    handled_ts: int | None = None
    result: str = ""


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    """One applied (or rolled back) codemod in a target repository: the migration ledger row."""

    ts: int
    repo: str
    phase: str
    codemod: str
    file: str
    status: str  # applied | rolled_back | failed
    before_sha256: str = ""
    after_sha256: str = ""
    reverse_patch: str = ""
    detail: str = ""
