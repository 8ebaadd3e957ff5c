"""Labels: hand-worked forward returns, excursions and the edge-collapsed flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.labels import relevance_grades, side_excursions, symbol_labels


def _candles(close, high, low):
    idx = pd.Index(np.arange(len(close), dtype=np.int64) * 3_600_000, name="timestamp")
    return pd.DataFrame(
        {"open": close, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx
    )


def test_hand_worked_labels_over_two_bars():
    c = _candles(
        close=[100, 102, 99, 101, 100], high=[101, 104, 100, 105, 101], low=[99, 101, 95, 100, 98]
    )
    lab = symbol_labels(c, horizon=2)
    # bar 0: close 100 -> close 99 two bars later; highs 104, 100; lows 101, 95
    assert lab["fwd_return"].iloc[0] == pytest.approx(np.log(99 / 100))
    assert lab["excursion_up"].iloc[0] == pytest.approx(0.04)
    assert lab["excursion_down"].iloc[0] == pytest.approx(0.05)
    assert lab["collapsed_long"].iloc[0] == 1.0  # lost and went further against than for
    assert lab["collapsed_short"].iloc[0] == 0.0
    # bar 1: close 102 -> 101; highs 100, 105; lows 95, 100
    assert lab["excursion_up"].iloc[1] == pytest.approx(105 / 102 - 1)
    assert lab["excursion_down"].iloc[1] == pytest.approx(1 - 95 / 102)
    # the last `horizon` bars have no complete future
    assert lab.iloc[3:].isna().all().all()


def test_excursions_are_never_negative_and_swap_with_the_side():
    c = _candles(close=[100, 110, 120], high=[100, 111, 121], low=[100, 109, 119])
    lab = symbol_labels(c, horizon=1)
    assert lab["excursion_down"].iloc[0] == 0.0
    adverse, favourable = side_excursions(lab.iloc[:1], np.array([-1.0]))
    assert adverse[0] == pytest.approx(0.11) and favourable[0] == 0.0


def test_relevance_grades_are_per_group_and_in_range():
    score = np.array([0.1, 0.9, 0.5, 0.2, 3.0, 1.0, 2.0, 0.0])
    groups = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    grades = relevance_grades(score, groups, 4)
    assert grades.tolist() == [0, 3, 2, 1, 3, 1, 2, 0]


def test_horizon_must_be_positive():
    with pytest.raises(ValueError):
        symbol_labels(_candles([1.0, 2.0], [1.0, 2.0], [1.0, 2.0]), horizon=0)
