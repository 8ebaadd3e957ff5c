"""The exit controller: the ONE place that decides to close (part of) a position.

At each bar close it applies, per open position and in this order, the values the position's
entry decision carried (no number of its own):

1. **kill score** (components below, each in [0, 1], equal weights) against the position's own
   `kill_threshold` → close everything;
2. **time exit**: held for at least `max_hold_sec` (bar close time - entry time) → close
   everything;
3. **kill reduce**: once per position, a kill score at or above `kill_reduce_threshold` (and
   below the kill threshold, or step 1 took it) closes `kill_reduce_frac` of the open quantity;
4. **harvest ladder**: once the close is T1 / T2 R in the position's favour (R = the initial
   stop distance) close the ladder's `t1_close_frac` / `t2_close_frac` of the quantity still
   open; T3 closes what is left. A ladder without close fractions takes no harvest;
5. **lock**: once the close is `lock_r` R in favour, move the stop to break-even-plus: the entry
   moved by the venue's round-trip cost (fees and slippage, `BrokerConfig.break_even_offset`),
   so a stop there closes the trade without a loss.

Kill-score components, all computed from the bars since entry in the snapshot (no look-back
constant; the scales are the position's own R and ladder):

- `regime_flip`: how straight the price has moved *against* the position since entry
  (signed efficiency ratio: net move / path length, against = positive part);
- `volatility_spike`: the last bar's true range against the mean true range since entry,
  mapped as 1 - mean/last (0 when the last bar is no wider than usual);
- `trend_drop`: profit given back from the best close since entry, in units of the T1 distance
  (of R without a ladder);
- `age`: bars held against the bars a random walk with the realised per-bar volatility needs to
  travel to T1 (to 1 R without a ladder): (held * sigma^2) / distance^2.

A policy whose kill thresholds are chosen on a score of its own (AIPolicy: the kill head's
probability that the edge has collapsed) provides `kill_scores(snapshot, positions)`; the
controller then compares the threshold with that score, on the scale it was chosen on. A position
the policy cannot score at a bar (stale model, NaN inputs) gets no kill at that bar: its
exchange-side stop still protects it, and no score of another scale stands in.

The broker's stop-market / take-profit-market orders remain as the exchange-side backstop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.domain import (
    Bars,
    MarketSnapshot,
    OrderPurpose,
    Portfolio,
    Position,
    Side,
)

KILL_COMPONENTS = ("regime_flip", "volatility_spike", "trend_drop", "age")
MS_PER_S = 1000  # unit conversion: max_hold_sec is in seconds, bar times in milliseconds
_RUNG_PURPOSES = (OrderPurpose.HARVEST_T1, OrderPurpose.HARVEST_T2, OrderPurpose.HARVEST_T3)


@dataclass(frozen=True, slots=True)
class ExitAction:
    """One thing the exit controller wants done: close `qty` (0 = none) and/or move the stop."""

    symbol: str
    # OrderPurpose value: harvest_t1/2/3, kill, kill_reduce, max_hold, stop_loss (stop move),
    # flatten
    purpose: str
    close_qty: float = 0.0
    new_stop: float | None = None
    detail: str = ""
    components: tuple[tuple[str, float], ...] = ()
    harvest_stage: int | None = None  # the position's harvest stage once this rung has filled
    kill_reduced: bool = False  # once this fills, the position's reduce step is spent

    @property
    def closes_all(self) -> bool:
        return self.purpose in _CLOSES_ALL


_CLOSES_ALL = frozenset(
    (OrderPurpose.KILL, OrderPurpose.MAX_HOLD, OrderPurpose.HARVEST_T3, OrderPurpose.FLATTEN)
)


@dataclass(slots=True)
class _Track:
    """Running sums over the bars since entry (updated one bar at a time: O(1) per bar)."""

    opened_ts: int
    start_n: int  # bars known when the position opened
    seen_n: int
    entry_close: float
    prev_close: float
    path: float = 0.0  # sum of |close change|
    sq: float = 0.0  # sum of squared close changes
    tr_sum: float = 0.0
    last_tr: float = 0.0
    best_close: float = math.nan
    held: int = 0
    sign: int = 1  # +1 long, -1 short
    unit: float = 0.0  # the kill score's price scale: T1 distance (1 R without a ladder)
    # bars known (snapshot.n_bars) below which nothing can fire: see ExitController._quiet_until
    quiet_until: int = 0
    # the same as a time: a snapshot closing before it knows fewer than `quiet_until` bars
    # (`ExitController._set_quiet`); None: count the bars
    quiet_ts: float | None = None


class KillScorer(Protocol):
    """A policy's own kill score per open position (AIPolicy.kill_scores); absent = not scored."""

    def __call__(
        self, snapshot: MarketSnapshot, positions: Iterable[Position]
    ) -> Mapping[str, float]: ...


def _named(comps: tuple[float, ...], score: float) -> tuple[tuple[str, float], ...]:
    return (*zip(KILL_COMPONENTS, comps, strict=True), ("kill_score", score))


_PREDICT_BARS = 64  # bars the quiet-bar prediction looks at, at most, per evaluation
_PREDICT_MARGIN = 1e-6  # score / R margin: near a threshold a bar is always checked exactly


def _predict_bars(pos: Position, snapshot: MarketSnapshot) -> int:
    """How many bars ahead to predict: `_PREDICT_BARS`, or fewer when the time exit comes first
    (the bars until `max_hold_sec` has passed, one bar per timeframe, plus one; a gap only
    brings the time exit sooner). Past that bar the position is closed, or evaluated exactly."""
    hold = pos.max_hold_sec
    tf = snapshot.timeframe_ms
    if hold is None or tf <= 0:
        return _PREDICT_BARS
    left = (pos.opened_ts + hold * MS_PER_S - snapshot.ts) / tf
    if not left < _PREDICT_BARS:  # far off, or not a number
        return _PREDICT_BARS
    return max(1, math.ceil(left) + 1)


def _unit(x: np.ndarray) -> np.ndarray:
    """Clipped to [0, 1], NaN -> 0 (in place)."""
    np.fmax(x, 0.0, out=x)
    return np.fmin(x, 1.0, out=x)


def _clip01(x: float) -> float:
    if not math.isfinite(x):
        return 0.0
    return 0.0 if x < 0 else 1.0 if x > 1 else x


@dataclass(slots=True)
class ExitController:
    """Evaluates harvest, lock and kill for every open position at each bar close."""

    break_even_offset: float  # from the venue: BrokerConfig.break_even_offset()
    # Optional: the very arrays the snapshots wrap, read only up to `snapshot.n_bars(symbol)`
    # (the same bars `snapshot.bars` gives, without building a window view each bar).
    series: Mapping[str, Bars] | None = None
    # Optional: the policy's own kill score (see the module docstring).
    kill_scorer: KillScorer | None = None
    _tracks: dict[str, _Track] = field(default_factory=dict)

    def forget(self, symbol: str) -> None:
        self._tracks.pop(symbol, None)

    def _track(self, pos: Position, snapshot: MarketSnapshot) -> _Track | None:
        sym = pos.symbol
        n = snapshot.n_bars(sym)
        if n <= 0:
            return None
        t = self._tracks.get(sym)
        bars = None
        if t is None or t.opened_ts != pos.opened_ts:
            bars = self.series[sym] if self.series is not None else snapshot.bars(sym)
            # bars closed by the entry time (open + step <= opened_ts) were known at entry
            k = int(np.searchsorted(bars.ts[:n], pos.opened_ts - snapshot.timeframe_ms, "right"))
            if k <= 0:
                return None
            entry_close = float(bars.close[k - 1])
            ladder = pos.harvest
            unit = (ladder.t1_r if ladder is not None else 1.0) * (pos.r_distance or 0.0)
            sign = 1 if pos.side is Side.LONG else -1
            t = _Track(pos.opened_ts, k, k, entry_close, entry_close, best_close=entry_close,
                       sign=sign, unit=unit)  # fmt: skip
            self._tracks[sym] = t
        if n > t.seen_n:
            if bars is None:
                bars = self.series[sym] if self.series is not None else snapshot.bars(sym)
            close, high, low = bars.close, bars.high, bars.low
            prev, best = t.prev_close, t.best_close
            for k in range(t.seen_n, n):  # normally one new bar
                c, h, lo = float(close[k]), float(high[k]), float(low[k])
                d = c - prev
                t.path += d if d >= 0 else -d
                t.sq += d * d
                tr = (h if h > prev else prev) - (lo if lo < prev else prev)
                t.tr_sum += tr
                t.last_tr = tr
                t.held += 1
                prev = c
                if (c - best) * t.sign > 0:
                    best = c
            t.prev_close, t.best_close = prev, best
            t.seen_n = n
        return t

    def kill_components(self, t: _Track) -> tuple[float, float, float, float]:
        """The components in KILL_COMPONENTS order, each in [0, 1] (0 until history allows)."""
        s, unit = t.sign, t.unit
        held = t.held
        regime = -s * (t.prev_close - t.entry_close) / t.path if t.path > 0 else 0.0
        spike = 1.0 - (t.tr_sum / held) / t.last_tr if held >= 2 and t.last_tr > 0 else 0.0
        drop = s * (t.best_close - t.prev_close) / unit if unit > 0 else 0.0
        age = t.sq / (unit * unit) if held >= 2 and unit > 0 else 0.0  # held * var / unit^2
        regime, spike, drop, age = _clip01(regime), _clip01(spike), _clip01(drop), _clip01(age)
        return regime, spike, drop, age

    @staticmethod
    def kill_score(components: tuple[float, ...]) -> float:
        """Equal-weight mean of the components."""
        return sum(components) / len(components)

    def break_even_plus(self, pos: Position) -> float:
        return pos.entry_price * (1 + pos.side.sign * self.break_even_offset)

    def evaluate(self, snapshot: MarketSnapshot, portfolio: Portfolio) -> list[ExitAction]:
        """Exit actions for the open positions, from what is known at `snapshot.ts`."""
        actions: list[ExitAction] = []
        positions = portfolio.positions
        if len(self._tracks) > len(positions):
            for sym in [s for s in self._tracks if s not in positions]:
                del self._tracks[sym]
        scored = None
        if self.kill_scorer is not None and positions:
            scored = self.kill_scorer(snapshot, positions.values())
        now_ts = snapshot.ts
        predict: list[tuple[Position, _Track]] = []
        for pos in positions.values():  # the broker keeps only open positions here
            if scored is None:
                t = self._tracks.get(pos.symbol)
                if (
                    t is not None
                    and t.opened_ts == pos.opened_ts
                    and (
                        now_ts < t.quiet_ts
                        if t.quiet_ts is not None
                        else snapshot.n_bars(pos.symbol) < t.quiet_until
                    )
                    and (
                        pos.max_hold_sec is None
                        or (now_ts - pos.opened_ts) / MS_PER_S < pos.max_hold_sec
                    )
                ):
                    continue  # predicted quiet bar: no kill, reduce, rung or lock can fire
            t = self._track(pos, snapshot)
            if t is None or t.held == 0:
                continue
            acts = self._evaluate_one(pos, t, now_ts, scored)
            if acts:
                actions.extend(acts)
                t.quiet_until, t.quiet_ts = 0, None  # the actions change the position: look
                # again next bar
            elif scored is None:
                predict.append((pos, t))
        if predict:  # positions opened together are predicted together (one numpy pass)
            self._predict_quiet(predict, snapshot)
        return actions

    def _predict_quiet(
        self, items: list[tuple[Position, _Track]], snapshot: MarketSnapshot
    ) -> None:
        """`_quiet_until` of several positions at once: the same formulas on a (positions x
        bars) block, each row on its own position's bars and values (NaN past a row's end)."""
        if len(items) == 1:
            pos, t = items[0]
            self._set_quiet(t, pos.symbol, self._quiet_until(pos, t, snapshot), snapshot)
            return
        rows = []
        width = 0
        for pos, t in items:
            n = t.seen_n
            bars = self.series[pos.symbol] if self.series is not None else snapshot.bars(pos.symbol)
            hi = min(len(bars), n + _predict_bars(pos, snapshot))
            if hi <= n:
                self._set_quiet(t, pos.symbol, n, snapshot)
                continue
            rows.append((pos, t, bars, n, hi))
            width = max(width, hi - n)
        if not rows:
            return
        k_rows = len(rows)
        c = np.full((k_rows, width), np.nan)
        high = np.full((k_rows, width), np.nan)
        low = np.full((k_rows, width), np.nan)
        valid = np.zeros((k_rows, width), dtype=bool)
        inf = math.inf
        # per row: prev close, entry close, path, tr sum, held, sq, best close, sign, unit,
        # kill / reduce / rung / lock thresholds (inf: cannot fire), entry price, R
        values = []
        for k, (pos, t, bars, n, hi) in enumerate(rows):
            w = hi - n
            c[k, :w] = bars.close[n:hi]
            high[k, :w] = bars.high[n:hi]
            low[k, :w] = bars.low[n:hi]
            valid[k, :w] = True
            kill = pos.kill_threshold if pos.kill_threshold is not None else inf
            reduce = (
                pos.kill_reduce_threshold
                if not pos.kill_reduced
                and pos.kill_reduce_threshold is not None
                and pos.kill_reduce_frac is not None
                else inf
            )
            rung = lock = inf
            ladder, r = pos.harvest, pos.r_distance
            if ladder is not None and r:
                rungs = (ladder.t1_r, ladder.t2_r, ladder.t3_r)
                if ladder.close_fracs is not None and pos.harvest_stage < len(rungs):
                    rung = rungs[pos.harvest_stage]
                stop = pos.stop_price
                if stop is None or t.sign * (self.break_even_plus(pos) - stop) > 0:
                    lock = ladder.lock_r
            else:
                r = 1.0  # no ladder: the R thresholds are inf, nothing fires on R
            values.append((t.prev_close, t.entry_close, t.path, t.tr_sum, t.held, t.sq,
                           t.best_close, t.sign, t.unit, kill, reduce, rung, lock,
                           pos.entry_price, r))  # fmt: skip
        v = np.array(values)
        prev0, entry_close, path, tr_sum, held0, sq, best0, s, unit = v.T[:9, :, None]
        kill, reduce, rung, lock, entry_price, r_dist = v.T[9:, :, None]
        prevs = np.concatenate((prev0, c[:, :-1]), axis=1)
        d = c - prevs
        tr = np.fmax(high, prevs) - np.fmin(low, prevs)
        held = held0 + 1 + np.arange(width)
        # rows come from `evaluate` with at least one bar held: held >= 2 here, and the
        # spike and age components need no mask for their first bars (checked, not assumed)
        young = bool((held0 < 1).any())
        all_units = bool((unit > 0).all())
        with np.errstate(divide="ignore", invalid="ignore"):
            score = _unit(-s * (c - entry_close) / (path + np.cumsum(np.abs(d), axis=1)))
            spike = _unit(1.0 - (tr_sum + np.cumsum(tr, axis=1)) / held / tr)
            if young:
                spike[held < 2] = 0.0
            score += spike
            # the best close in the position's favour, signed: s * best = running max of s * c
            sc = s * c
            best = np.fmax.accumulate(np.concatenate((s * best0, sc), axis=1), axis=1)[:, 1:]
            drop = _unit((best - sc) / unit)
            age = _unit((sq + np.cumsum(d * d, axis=1)) / (unit * unit))
            if young:
                age[held < 2] = 0.0
            if all_units:
                score += drop
                score += age
            else:
                has_unit = unit > 0
                score += np.where(has_unit, drop, 0.0)
                score += np.where(has_unit, age, 0.0)
            score /= len(KILL_COMPONENTS)
            near = _PREDICT_MARGIN
            fires = (score >= kill - near) | (score >= reduce - near)
            r_now = s * (c - entry_price) / r_dist
            fires |= (r_now >= rung - near) | (r_now >= lock - near)
        fires &= valid
        any_fire = fires.any(axis=1)
        first = fires.argmax(axis=1)
        for k, (pos, t, _bars, n, hi) in enumerate(rows):
            self._set_quiet(t, pos.symbol, n + int(first[k]) + 1 if any_fire[k] else hi, snapshot)

    def _set_quiet(self, t: _Track, symbol: str, until: int, snapshot: MarketSnapshot) -> None:
        """`t.quiet_until = until`, and the time equivalent `evaluate` tests instead of counting
        bars: a snapshot closing at `ts` knows the symbol's bars opened by `ts - timeframe`, so
        it knows fewer than `until` bars exactly when bar `until - 1` opened after that, i.e.
        `ts < ts[until - 1] + timeframe` (never, for `until <= 0`; always, past the series)."""
        t.quiet_until = until
        if self.series is None:
            t.quiet_ts = None
            return
        if until <= 0:
            t.quiet_ts = -math.inf
            return
        ts = self.series[symbol].ts
        t.quiet_ts = ts.item(until - 1) + snapshot.timeframe_ms if until <= len(ts) else math.inf

    def _quiet_until(self, pos: Position, t: _Track, snapshot: MarketSnapshot) -> int:
        """The bar count at which a kill, reduce, harvest rung or lock may next fire.

        The kill score and R multiple of the next bars are computed at once with numpy from the
        running sums (the same formulas as `kill_components`, on bars of the series the snapshots
        wrap), with a small margin so that rounding can only make a bar be checked, never skipped;
        every bar at or past the returned count gets the exact bar-by-bar evaluation (the running
        sums catch up over the skipped bars there). Time exits are checked at every bar anyway.
        """
        n = t.seen_n
        bars = self.series[pos.symbol] if self.series is not None else snapshot.bars(pos.symbol)
        hi = min(len(bars), n + _predict_bars(pos, snapshot))
        if hi <= n:
            return n
        c = bars.close[n:hi]
        prevs = np.concatenate(((t.prev_close,), c[:-1]))
        d = c - prevs
        tr = np.fmax(bars.high[n:hi], prevs) - np.fmin(bars.low[n:hi], prevs)
        held = np.arange(t.held + 1, t.held + 1 + len(c))
        s, unit = t.sign, t.unit
        with np.errstate(divide="ignore", invalid="ignore"):
            # fmax / fmin clip to [0, 1] with NaN -> 0 and +inf -> 1: a score never below the
            # exact one where it matters (the bar-by-bar check maps +inf to 0)
            score = _unit(-s * (c - t.entry_close) / (t.path + np.cumsum(np.abs(d))))
            spike = _unit(1.0 - (t.tr_sum + np.cumsum(tr)) / held / tr)
            spike[held < 2] = 0.0
            score += spike
            if unit > 0:
                acc = np.fmax.accumulate if s > 0 else np.fmin.accumulate
                best = acc(np.concatenate(((t.best_close,), c)))[1:]
                score += _unit(s * (best - c) / unit)
                age = _unit((t.sq + np.cumsum(d * d)) / (unit * unit))
                age[held < 2] = 0.0
                score += age
            score /= len(KILL_COMPONENTS)
        near = _PREDICT_MARGIN
        fires = np.zeros(len(c), dtype=bool)
        if pos.kill_threshold is not None:
            fires |= score >= pos.kill_threshold - near
        if (
            not pos.kill_reduced
            and pos.kill_reduce_threshold is not None
            and pos.kill_reduce_frac is not None
        ):
            fires |= score >= pos.kill_reduce_threshold - near
        ladder, r = pos.harvest, pos.r_distance
        if ladder is not None and r:
            r_now = s * (c - pos.entry_price) / r
            rungs = (ladder.t1_r, ladder.t2_r, ladder.t3_r)
            stage = pos.harvest_stage
            if ladder.close_fracs is not None and stage < len(rungs):
                fires |= r_now >= rungs[stage] - near
            stop = pos.stop_price
            lock_moves = stop is None or s * (self.break_even_plus(pos) - stop) > 0
            if lock_moves:
                fires |= r_now >= ladder.lock_r - near
        first = int(np.argmax(fires)) if fires.any() else hi - n
        return n + first + 1 if first < hi - n else hi

    def _evaluate_one(
        self,
        pos: Position,
        t: _Track,
        now_ts: int,
        scored: Mapping[str, float] | None = None,
    ) -> list[ExitAction]:
        if scored is None:
            comps = self.kill_components(t)
            score: float | None = (comps[0] + comps[1] + comps[2] + comps[3]) / len(KILL_COMPONENTS)
        else:
            score = scored.get(pos.symbol)
        threshold = pos.kill_threshold
        if not self._may_act(pos, t, score, now_ts):
            return []  # the common bar: nothing fires (checked without building any action)
        if scored is None:
            named = _named(comps, score)
        else:
            named = (("policy_kill_score", score),) if score is not None else ()
        if threshold is not None and score is not None and score >= threshold:
            return [
                ExitAction(
                    pos.symbol,
                    OrderPurpose.KILL,
                    pos.qty,
                    detail=f"kill score {score:.3f} >= threshold {threshold:g}",
                    components=named,
                )
            ]
        max_hold = pos.max_hold_sec
        if max_hold is not None:
            held_sec = (now_ts - pos.opened_ts) / MS_PER_S
            if held_sec >= max_hold:
                return [
                    ExitAction(
                        pos.symbol,
                        OrderPurpose.MAX_HOLD,
                        pos.qty,
                        detail=f"held {held_sec:g} s >= max_hold_sec {max_hold:g}",
                        components=named,
                    )
                ]
        out: list[ExitAction] = []
        remaining = pos.qty
        reduce_at, reduce_frac = pos.kill_reduce_threshold, pos.kill_reduce_frac
        if (
            not pos.kill_reduced
            and reduce_at is not None
            and reduce_frac is not None
            and score is not None
            and score >= reduce_at
        ):
            qty = remaining * reduce_frac
            out.append(
                ExitAction(
                    pos.symbol,
                    OrderPurpose.KILL_REDUCE,
                    qty,
                    detail=f"kill score {score:.3f} >= reduce threshold {reduce_at:g}: close "
                    f"{reduce_frac:g} of the open quantity",
                    components=named,
                    kill_reduced=True,
                )
            )
            remaining -= qty
        ladder = pos.harvest
        r = pos.r_distance
        if ladder is None or not r:
            return out
        s = 1 if pos.side is Side.LONG else -1
        r_now = s * (t.prev_close - pos.entry_price) / r
        stage = pos.harvest_stage
        fracs = ladder.close_fracs
        rungs = (ladder.t1_r, ladder.t2_r, ladder.t3_r)
        while fracs is not None and stage < len(rungs) and r_now >= rungs[stage]:
            last = stage == len(rungs) - 1
            qty = remaining if last else remaining * fracs[stage]
            stage += 1
            if qty > 0:
                out.append(
                    ExitAction(
                        pos.symbol,
                        _RUNG_PURPOSES[stage - 1],
                        qty,
                        detail=f"{r_now:.2f} R >= T{stage} {rungs[stage - 1]:g} R",
                        components=named,
                        harvest_stage=stage,
                    )
                )
            remaining -= qty
        if remaining > 0 and r_now >= ladder.lock_r:
            lock = self.break_even_plus(pos)
            if pos.stop_price is None or s * (lock - pos.stop_price) > 0:
                out.append(
                    ExitAction(
                        pos.symbol,
                        OrderPurpose.STOP_LOSS,
                        0.0,
                        new_stop=lock,
                        detail=f"{r_now:.2f} R >= lock {ladder.lock_r:g} R: stop to "
                        "break-even-plus",
                        components=named,
                    )
                )
        return out

    def _may_act(self, pos: Position, t: _Track, score: float | None, now_ts: int) -> bool:
        """False only when `_evaluate_one` would return no action: same tests, no objects."""
        if score is not None:
            threshold = pos.kill_threshold
            if threshold is not None and score >= threshold:
                return True
            reduce_at = pos.kill_reduce_threshold
            if (
                reduce_at is not None
                and not pos.kill_reduced
                and pos.kill_reduce_frac is not None
                and score >= reduce_at
            ):
                return True
        max_hold = pos.max_hold_sec
        if max_hold is not None and (now_ts - pos.opened_ts) / MS_PER_S >= max_hold:
            return True
        ladder = pos.harvest
        r = pos.r_distance
        if ladder is None or not r:
            return False
        r_now = (t.prev_close - pos.entry_price) / r
        if pos.side is not Side.LONG:
            r_now = -r_now
        stage = pos.harvest_stage
        rungs = (ladder.t1_r, ladder.t2_r, ladder.t3_r)
        if ladder.close_fracs is not None and stage < len(rungs) and r_now >= rungs[stage]:
            return True
        if r_now < ladder.lock_r:
            return False
        stop = pos.stop_price
        if stop is None:
            return True
        gain = self.break_even_plus(pos) - stop
        return (gain if pos.side is Side.LONG else -gain) > 0

    def flatten(self, portfolio: Portfolio, reason: str) -> list[ExitAction]:
        """Close every open position (a flatten request from the control table)."""
        return [
            ExitAction(sym, OrderPurpose.FLATTEN, p.qty, detail=reason)
            for sym, p in portfolio.positions.items()
            if p.is_open
        ]
