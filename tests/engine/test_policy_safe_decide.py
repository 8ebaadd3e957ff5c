"""safe_decide: a policy that raises, returns NaN, leaves the zone or returns garbage yields a
SKIP with the right reason code and never an order (and never a default value)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.core.policy import ALL_SYMBOLS, Policy, safe_decide
from engine.core.risk import RiskKernel
from engine.domain import Decision, SafetyLimits, SkipReason
from tests.engine.conftest import bars_from_closes, portfolio, snapshot_of


class Scripted:
    """A policy that returns (or raises) whatever the test scripted."""

    name = "scripted"
    version = "s1"

    def __init__(self, result) -> None:
        self.result = result

    def decide(self, snapshot, portfolio):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result(snapshot) if callable(self.result) else self.result


@pytest.fixture
def snap():
    return snapshot_of({"BTC-USDT": bars_from_closes(np.full(10, 100_000.0))}, 10)


def run(result, snap, zone):
    return safe_decide(Scripted(result), snap, portfolio(10_000.0), zone)


def test_a_raising_policy_is_one_skip(snap, zone) -> None:
    (d,) = run(RuntimeError("model file gone"), snap, zone)
    assert d.skip is SkipReason.POLICY_ERROR and d.symbol == ALL_SYMBOLS
    assert "RuntimeError: model file gone" in d.skip_detail
    assert d.leverage is None and d.size_pct is None  # nothing filled in
    assert d.policy == "scripted" and d.ts == snap.ts


@pytest.mark.parametrize(
    ("changes", "reason", "mentions"),
    [
        ({"leverage": math.nan}, SkipReason.POLICY_NAN, "leverage"),
        ({"size_pct": math.inf}, SkipReason.POLICY_NAN, "size_pct"),
        ({"confidence": math.nan}, SkipReason.POLICY_NAN, "confidence"),
        ({"leverage": 200.0}, SkipReason.OUT_OF_ZONE, "leverage = 200"),
        ({"size_pct": 0.6}, SkipReason.OUT_OF_ZONE, "size_pct"),
        ({"kill_threshold": 0.1}, SkipReason.OUT_OF_ZONE, "kill_threshold"),
        ({"kill_threshold": None}, SkipReason.MISSING_VALUE, "kill_threshold"),
    ],
)
def test_bad_values_become_skips(snap, zone, make_entry, changes, reason, mentions) -> None:
    bad = make_entry(ts=snap.ts, **changes)
    (d,) = run(lambda s: [bad], snap, zone)
    assert d.skip is reason and mentions in d.skip_detail
    assert d.symbol == "BTC-USDT" and d.leverage is None


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (None, SkipReason.POLICY_ERROR),  # not iterable
        ("BTC-USDT", SkipReason.POLICY_ERROR),
        ({"leverage": 10}, SkipReason.POLICY_ERROR),
        ([{"leverage": 10}], SkipReason.BAD_DECISION),
    ],
)
def test_garbage_is_a_skip(snap, zone, result, reason) -> None:
    (d,) = run(result, snap, zone)
    assert d.skip is reason and d.symbol == ALL_SYMBOLS


def test_wrong_time_unknown_symbol_and_duplicates(snap, zone, make_entry) -> None:
    out = run(
        lambda s: [
            make_entry(ts=s.ts + 1),  # claims to be from the future
            make_entry(ts=s.ts, symbol="ETH-USDT"),  # no data in the snapshot
            make_entry(ts=s.ts),
            make_entry(ts=s.ts, leverage=20.0),  # a second entry for BTC
        ],
        snap,
        zone,
    )
    assert [d.skip for d in out] == [
        SkipReason.BAD_DECISION,
        SkipReason.NO_DATA,
        None,
        SkipReason.BAD_DECISION,
    ]
    assert out[2].leverage == 10.0


def test_skips_and_good_entries_pass(snap, zone, make_entry) -> None:
    skip = Decision.skipped(snap.ts, "BTC-USDT", SkipReason.LOW_CONFIDENCE, "0.4 < 0.55")
    out = run(lambda s: [skip], snap, zone)
    assert out[0].skip is SkipReason.LOW_CONFIDENCE and out[0].policy == "scripted"
    assert run(lambda s: [], snap, zone) == []


@pytest.mark.parametrize(
    "result",
    [
        ValueError("boom"),
        [Decision(ts=0, symbol="BTC-USDT")],
        "garbage",
    ],
)
def test_bad_policies_never_produce_an_order(snap, zone, tiers, result) -> None:
    kernel = RiskKernel(SafetyLimits(), tiers)
    out = run(result, snap, zone)
    assert out and all(d.skip is not None for d in out)
    assert not any(kernel.check(d, portfolio(10_000.0), 100_000.0).approved for d in out)


def test_scripted_policy_satisfies_the_protocol() -> None:
    assert isinstance(Scripted([]), Policy)
