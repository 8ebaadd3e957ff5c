"""SafetyLimits: the owner's hard limits, stricter-only config; the autonomy zone's edges."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

import engine
from engine.domain import (
    AutonomyZone,
    HarvestLadder,
    LimitsError,
    PolicyKey,
    SafetyLimits,
    SkipReason,
)


def ladder(t1: float, t2: float, t3: float, lock: float, **fracs: float | None) -> HarvestLadder:
    """A ladder with the legacy close fractions (0.3 of the open quantity at T1 and T2)."""
    return HarvestLadder(t1, t2, t3, lock, **({"t1_close_frac": 0.3, "t2_close_frac": 0.3} | fracs))


def test_hard_limit_defaults_are_the_owners() -> None:
    limits = SafetyLimits()
    assert limits.min_margin_ratio_pct == 10.0
    assert limits.max_leverage == 125.0
    assert limits.max_position_size_pct == 50.0
    assert limits.max_total_exposure_pct == 200.0
    assert limits.max_position_fraction == 0.5
    assert limits.max_exposure_fraction == 2.0
    assert limits.min_margin_ratio == pytest.approx(0.10)


def test_limits_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SafetyLimits().max_leverage = 200.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "stricter"),
    [
        ("min_margin_ratio_pct", 25.0),
        ("max_leverage", 20),
        ("max_position_size_pct", 10.0),
        ("max_total_exposure_pct", 100.0),
    ],
)
def test_config_may_make_each_limit_stricter(field: str, stricter: float) -> None:
    limits = SafetyLimits.from_mapping({field: stricter})
    assert getattr(limits, field) == float(stricter)
    assert isinstance(getattr(limits, field), float)


@pytest.mark.parametrize(
    ("field", "looser", "hard"),
    [
        ("min_margin_ratio_pct", 5.0, "10"),
        ("max_leverage", 126.0, "125"),
        ("max_position_size_pct", 60.0, "50"),
        ("max_total_exposure_pct", 300.0, "200"),
    ],
)
def test_config_may_never_loosen_a_limit(field: str, looser: float, hard: str) -> None:
    with pytest.raises(LimitsError) as err:
        SafetyLimits.from_mapping({field: looser})
    message = str(err.value)
    assert "\n" not in message
    assert field in message and f"{looser:g}" in message and hard in message


@pytest.mark.parametrize(
    "bad",
    [
        {"max_leverage": "20"},
        {"max_leverage": True},
        {"max_leverage": math.nan},
        {"max_leverage": -1.0},
        {"max_leverage": 0.5},
        {"min_margin_ratio_pct": 100.0},
        {"max_levrage": 20.0},
    ],
)
def test_bad_limit_values_are_config_errors(bad: dict) -> None:
    with pytest.raises(LimitsError):
        SafetyLimits.from_mapping(bad)


def test_limits_cannot_be_loosened_by_direct_construction_either() -> None:
    with pytest.raises(LimitsError, match="max_position_size_pct"):
        SafetyLimits(max_position_size_pct=51.0)


def test_zone_follows_stricter_limits(make_entry) -> None:
    strict = AutonomyZone.for_limits(SafetyLimits(max_leverage=20.0, max_position_size_pct=10.0))
    assert strict.check(make_entry(leverage=20.0, size_pct=0.1)) is None
    assert strict.check(make_entry(leverage=21.0)) is SkipReason.OUT_OF_ZONE
    assert strict.check(make_entry(size_pct=0.11)) is SkipReason.OUT_OF_ZONE


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"leverage": 1.0}, None),
        ({"leverage": 125.0}, None),
        ({"leverage": 0.99}, SkipReason.OUT_OF_ZONE),
        ({"leverage": 125.5}, SkipReason.OUT_OF_ZONE),
        ({"size_pct": 0.5}, None),
        ({"size_pct": 0.0}, SkipReason.OUT_OF_ZONE),
        ({"size_pct": 0.5001}, SkipReason.OUT_OF_ZONE),
        ({"kill_threshold": 0.3, "kill_reduce_threshold": 0.3}, None),
        ({"kill_threshold": 0.9}, None),
        ({"kill_threshold": 0.29}, SkipReason.OUT_OF_ZONE),
        ({"kill_threshold": 0.91}, SkipReason.OUT_OF_ZONE),
        ({"harvest": ladder(0.5, 5.0, 10.0, 0.5)}, None),
        ({"harvest": ladder(0.4, 4.0, 6.0, 1.5)}, SkipReason.OUT_OF_ZONE),
        ({"harvest": ladder(2.0, 4.0, 10.5, 1.5)}, SkipReason.OUT_OF_ZONE),
        ({"harvest": ladder(2.0, 4.0, 6.0, 0.2)}, SkipReason.OUT_OF_ZONE),
        ({"harvest": ladder(4.0, 2.0, 6.0, 1.5)}, SkipReason.OUT_OF_ZONE),
        ({"stop_loss_pct": 0.9}, None),
        ({"stop_loss_pct": 1.0}, SkipReason.OUT_OF_ZONE),
        ({"stop_loss_pct": 0.0}, SkipReason.OUT_OF_ZONE),
        ({"take_profit_pct": 3.0}, None),
        ({"take_profit_pct": None}, None),
        ({"take_profit_pct": -0.01}, SkipReason.OUT_OF_ZONE),
        ({"confidence": 1.2}, SkipReason.OUT_OF_ZONE),
        ({"leverage": math.nan}, SkipReason.POLICY_NAN),
        ({"size_pct": math.inf}, SkipReason.POLICY_NAN),
        ({"kill_threshold": math.nan}, SkipReason.POLICY_NAN),
        ({"harvest": ladder(math.nan, 4.0, 6.0, 1.5)}, SkipReason.POLICY_NAN),
        ({"harvest": None}, None),  # no ladder at all: no harvest, no close fractions needed
        ({"harvest": ladder(2.0, 4.0, 6.0, 1.5, t1_close_frac=1.0)}, None),
        ({"harvest": ladder(2.0, 4.0, 6.0, 1.5, t2_close_frac=0.0)}, SkipReason.OUT_OF_ZONE),
        ({"harvest": ladder(2.0, 4.0, 6.0, 1.5, t1_close_frac=1.01)}, SkipReason.OUT_OF_ZONE),
        ({"harvest": ladder(2.0, 4.0, 6.0, 1.5, t1_close_frac=None)}, SkipReason.MISSING_VALUE),
        ({"harvest": ladder(2.0, 4.0, 6.0, 1.5, t2_close_frac=math.nan)}, SkipReason.POLICY_NAN),
        ({"kill_reduce_threshold": 0.6}, None),  # = kill_threshold: the reduce never fires
        ({"kill_reduce_threshold": 0.3}, None),
        ({"kill_reduce_threshold": 0.61}, SkipReason.OUT_OF_ZONE),  # above kill_threshold
        ({"kill_reduce_threshold": 0.29}, SkipReason.OUT_OF_ZONE),
        ({"kill_reduce_threshold": None}, SkipReason.MISSING_VALUE),
        ({"kill_reduce_frac": 0.99}, None),
        ({"kill_reduce_frac": 0.0}, SkipReason.OUT_OF_ZONE),
        ({"kill_reduce_frac": 1.0}, SkipReason.OUT_OF_ZONE),
        ({"kill_reduce_frac": None}, SkipReason.MISSING_VALUE),
        ({"max_hold_sec": 1.0}, None),
        ({"max_hold_sec": 0.0}, SkipReason.OUT_OF_ZONE),
        ({"max_hold_sec": -3600.0}, SkipReason.OUT_OF_ZONE),
        ({"max_hold_sec": math.inf}, SkipReason.POLICY_NAN),
        ({"max_hold_sec": None}, SkipReason.MISSING_VALUE),
        ({"leverage": None}, SkipReason.MISSING_VALUE),
        ({"stop_loss_pct": None}, SkipReason.MISSING_VALUE),
        ({"kill_threshold": None}, SkipReason.MISSING_VALUE),
        ({"side": None}, SkipReason.MISSING_VALUE),
        ({"leverage": "10"}, SkipReason.BAD_DECISION),
    ],
)
def test_zone_edges(make_entry, zone: AutonomyZone, changes: dict, expected) -> None:
    decision = make_entry(**changes)
    assert zone.check(decision) is expected
    explained = zone.explain(decision)
    if expected is None:
        assert explained is None
    else:
        assert explained[0] is expected and explained[1]


def test_zone_lets_skips_through(zone: AutonomyZone, make_entry) -> None:
    skip = make_entry().as_skip(SkipReason.NO_SIGNAL, "flat")
    assert zone.check(skip) is None
    assert skip.leverage is None and skip.size_pct is None and skip.action == "skip"


def test_policy_key_is_the_one_list_of_value_names() -> None:
    assert [k.value for k in PolicyKey] == [
        "leverage",
        "size_pct",
        "stop_loss_pct",
        "take_profit_pct",
        "harvest_t1_r",
        "harvest_t2_r",
        "harvest_t3_r",
        "harvest_lock_r",
        "harvest_t1_close_frac",
        "harvest_t2_close_frac",
        "kill_threshold",
        "kill_reduce_threshold",
        "kill_reduce_frac",
        "max_hold_sec",
        "universe_symbols",
        "universe_count",
    ]


def test_decision_values_use_policy_key_names(make_entry) -> None:
    keys = {k.value for k in PolicyKey}
    assert set(make_entry().numeric_values()) - {"confidence"} <= keys


def test_engine_is_imported_from_this_repository() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert Path(engine.__file__).resolve().is_relative_to(repo)


@pytest.mark.parametrize(
    "wider",
    [
        {"min_leverage": 0.5},
        {"min_harvest_r": 0.1},
        {"max_harvest_r": 20.0},
        {"min_kill_threshold": 0.2},
        {"max_kill_threshold": 0.95},
        {"max_kill_threshold": math.nan},
    ],
)
def test_zone_may_not_be_widened(wider: dict) -> None:
    with pytest.raises(LimitsError, match=next(iter(wider))):
        AutonomyZone(**wider)


def test_zone_may_be_narrowed(make_entry) -> None:
    narrow = AutonomyZone(min_kill_threshold=0.5, max_harvest_r=5.0)
    reason, detail = narrow.explain(make_entry(kill_threshold=0.45, kill_reduce_threshold=0.45))
    assert reason is SkipReason.OUT_OF_ZONE and detail.startswith("kill_threshold = 0.45")
    reason, detail = narrow.explain(make_entry(kill_reduce_threshold=0.45))
    assert reason is SkipReason.OUT_OF_ZONE and detail.startswith("kill_reduce_threshold = 0.45")
    assert narrow.check(make_entry(harvest=ladder(2.0, 4.0, 6.0, 1.5))) is SkipReason.OUT_OF_ZONE
    with pytest.raises(LimitsError):
        AutonomyZone(min_kill_threshold=0.8, max_kill_threshold=0.7)
