"""The speed paths change no decision: quiet-bar prediction of the exit controller, the lazy
snapshot, the policy skipped between refreshes (the whole-run check is test_backtest_golden)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.core.exits import ExitController
from engine.core.loop import KnownRow
from engine.domain import HarvestLadder, MarketSnapshot, Portfolio, Side
from tests.engine.test_exits_controller import BE_OFFSET, T0, H, long_position, series

LADDERS = (
    HarvestLadder(t1_r=2.0, t2_r=4.0, t3_r=6.0, lock_r=1.5, t1_close_frac=0.3, t2_close_frac=0.3),
    HarvestLadder(t1_r=0.8, t2_r=1.2, t3_r=2.0, lock_r=0.5, t1_close_frac=0.5, t2_close_frac=0.5),
    None,
)


def run(ctrl: ExitController, pos, bars, upto: int) -> list[list]:  # type: ignore[no-untyped-def]
    """Evaluate every bar after the entry bar, applying actions as the loop does, until a
    closing action; a closed position is reopened at the next bar's close (a new trade)."""
    pf = Portfolio(wallet_balance=10_000.0, positions={pos.symbol: pos})
    out = []
    for n in range(1, upto + 1):
        acts = ctrl.evaluate(MarketSnapshot(int(bars.ts[n - 1]) + H, H, {pos.symbol: bars},
                                            {pos.symbol: n}), pf)  # fmt: skip
        for a in acts:
            pos.qty -= a.close_qty
            if a.harvest_stage is not None:
                pos.harvest_stage = a.harvest_stage
            if a.kill_reduced:
                pos.kill_reduced = True
            if a.new_stop is not None:
                pos.stop_price = a.new_stop
        if any(a.closes_all for a in acts):
            ctrl.forget(pos.symbol)
            entry = float(bars.close[n - 1])
            stop = entry - (pos.entry_price - pos.initial_stop_price)
            pos = dataclasses.replace(pos, entry_price=entry, stop_price=stop,
                                      initial_stop_price=stop, qty=3.0, harvest_stage=0,
                                      kill_reduced=False, opened_ts=int(bars.ts[n - 1]) + H)  # fmt: skip
            pf.positions = {pos.symbol: pos}
        out.append(acts)
    return out


class _Counting(ExitController):
    """Counts the bars at which a position was evaluated bar by bar (not predicted quiet)."""

    tracked = 0

    def _track(self, pos, snapshot):  # type: ignore[no-untyped-def]
        type(self).tracked += 1
        return super()._track(pos, snapshot)


@pytest.mark.parametrize("seed", range(12))
def test_quiet_bar_prediction_never_skips_an_action(seed: int) -> None:
    """With the full series (prediction on) and with windows only (prediction off, as in live
    mode) the controller returns the same actions at every bar, on random walks that cross the
    kill, reduce, rung and lock levels many times."""
    rng = np.random.default_rng(seed)
    n = 400
    closes = 100 * np.exp(np.cumsum(rng.normal(0, rng.uniform(0.003, 0.03), n)))
    highs = closes * (1 + rng.uniform(0, 0.01, n))
    lows = closes * (1 - rng.uniform(0, 0.01, n))
    bars = series(list(closes), list(highs), list(lows))
    side = Side.LONG if seed % 2 == 0 else Side.SHORT
    entry = float(closes[0])
    stop = entry * (1 - side.sign * rng.uniform(0.005, 0.05))
    kwargs = dict(
        entry=entry,
        stop=stop,
        kill=float(rng.uniform(0.3, 0.9)),
        ladder=LADDERS[seed % 3],
        reduce_at=float(rng.uniform(0.3, 0.6)) if seed % 4 else None,
        reduce_frac=0.5 if seed % 4 else None,
        max_hold_sec=float(rng.integers(50, 300)) * 3600 if seed % 5 else None,
    )
    fast_pos = dataclasses.replace(long_position(**kwargs), side=side)
    exact_pos = dataclasses.replace(long_position(**kwargs), side=side)
    predicted = _Counting(BE_OFFSET, series={"BTC-USDT": bars})
    exact = ExitController(BE_OFFSET)  # windows only: nothing to predict from
    _Counting.tracked = 0
    got = run(predicted, fast_pos, bars, upto=n)
    want = run(exact, exact_pos, bars, upto=n)
    assert got == want
    assert sum(map(len, want)) > 0  # the walk did make the controller act
    # ... and the prediction did skip bars (else this test would prove nothing about it)
    assert predicted.tracked < n - 20


def test_known_row_reads_the_counts_lazily() -> None:
    row = np.array([3, 0, 7], dtype=np.int64)
    known = KnownRow(row, {"A": 0, "B": 1, "C": 2})
    snap = MarketSnapshot(H, H, {}, known)
    assert snap.symbols == ("A", "C") and snap.n_bars("C") == 7 and not snap.has("B")
    assert snap.n_bars("ZZZ") == 0 and dict(known.items()) == {"A": 3, "B": 0, "C": 7}


def run_book(ctrl: ExitController, book: dict, series_by: dict, upto: int) -> list[list]:  # type: ignore[type-arg]
    """`run` for several positions evaluated together (one controller, one snapshot per bar)."""
    pf = Portfolio(wallet_balance=10_000.0, positions=dict(book))
    out = []
    for n in range(1, upto + 1):
        ts = T0 + (n - 1) * H + H
        snapshot = MarketSnapshot(ts, H, series_by, {s: n for s in series_by})
        acts = ctrl.evaluate(snapshot, pf)
        for a in acts:
            pos = pf.positions[a.symbol]
            pos.qty -= a.close_qty
            if a.harvest_stage is not None:
                pos.harvest_stage = a.harvest_stage
            if a.kill_reduced:
                pos.kill_reduced = True
            if a.new_stop is not None:
                pos.stop_price = a.new_stop
        for a in acts:
            if a.closes_all and a.symbol in pf.positions:
                ctrl.forget(a.symbol)
                pos = pf.positions.pop(a.symbol)
                entry = float(series_by[a.symbol].close[n - 1])
                stop = entry - (pos.entry_price - pos.initial_stop_price)
                pf.positions[a.symbol] = dataclasses.replace(
                    pos, entry_price=entry, stop_price=stop, initial_stop_price=stop, qty=3.0,
                    harvest_stage=0, kill_reduced=False, opened_ts=ts)  # fmt: skip
        out.append(sorted((a.symbol, a.purpose, a.close_qty, a.new_stop) for a in acts))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_positions_predicted_together_act_as_if_evaluated_bar_by_bar(seed: int) -> None:
    """Positions opened at the same bar are predicted in one block (rows of other lengths, other
    sides, ladders and thresholds): the same actions as the windows-only controller."""
    rng = np.random.default_rng(100 + seed)
    upto = 300
    book, series_by, exact_book = {}, {}, {}
    for k in range(6):
        sym = f"S{k}-USDT"
        n = upto + int(rng.integers(0, 80))  # some rows end inside the prediction window
        closes = 100 * np.exp(np.cumsum(rng.normal(0, rng.uniform(0.003, 0.03), n)))
        highs = closes * (1 + rng.uniform(0, 0.01, n))
        lows = closes * (1 - rng.uniform(0, 0.01, n))
        bars = series(list(closes), list(highs), list(lows))
        series_by[sym] = bars
        side = Side.LONG if rng.random() < 0.5 else Side.SHORT
        entry = float(closes[0])
        stop = entry * (1 - side.sign * rng.uniform(0.005, 0.05))
        pos = long_position(entry=entry, stop=stop, kill=float(rng.uniform(0.3, 0.9)),
                            ladder=LADDERS[k % 3],
                            reduce_at=float(rng.uniform(0.3, 0.6)) if k % 4 else None,
                            reduce_frac=0.5 if k % 4 else None,
                            max_hold_sec=float(rng.integers(50, 300)) * 3600 if k % 5 else None)  # fmt: skip
        book[sym] = dataclasses.replace(pos, symbol=sym, side=side)
        exact_book[sym] = dataclasses.replace(pos, symbol=sym, side=side)
    predicted = _Counting(BE_OFFSET, series=series_by)
    _Counting.tracked = 0
    got = run_book(predicted, book, series_by, upto)
    want = run_book(ExitController(BE_OFFSET), exact_book, series_by, upto)
    assert got == want
    assert sum(map(len, want)) > 6
    assert predicted.tracked < 6 * upto - 100  # bars were predicted quiet, in blocks
