"""Leverage brackets and maintenance margin, checked against numbers worked out by hand.

BTC-USDT brackets (Binance, packaged copy): up to 50,000 USDT rate 0.4 % cum 0, 125x;
50,000-600,000 rate 0.5 % cum 50, 100x; 600,000-3,000,000 rate 0.65 % cum 950, 75x.
1000PEPE-USDT: up to 20,000 rate 0.65 % cum 0, 75x; 20,000-200,000 rate 1 % cum 70, 50x.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.core.tiers import (
    PACKAGED_TIERS,
    LeverageTiers,
    TiersError,
    _cum_from_rates,
    ccxt_to_symbol,
    default_tiers_path,
    extract_packaged_tiers,
    normalise_symbol,
)

SHARED_TIERS = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "binance_leverage_tiers.json"
)


@pytest.mark.parametrize(
    ("symbol", "notional", "expected"),
    [
        ("BTC-USDT", 10_000.0, 40.0),  # 10,000 * 0.004
        ("BTC-USDT", 50_000.0, 200.0),  # the cap belongs to the lower bracket
        ("BTC-USDT", 100_000.0, 450.0),  # 100,000 * 0.005 - 50 = 50,000*0.4% + 50,000*0.5%
        ("BTC-USDT", 600_000.0, 2_950.0),  # 600,000 * 0.005 - 50
        ("BTC-USDT", 1_000_000.0, 5_550.0),  # 1,000,000 * 0.0065 - 950 = 200 + 2,750 + 2,600
        ("BTC-USDT", -100_000.0, 450.0),  # a short's notional counts by size
        ("1000PEPE-USDT", 30_000.0, 230.0),  # 30,000 * 0.01 - 70 = 20,000*0.65% + 10,000*1%
        ("BTC-USDT", 0.0, 0.0),
    ],
)
def test_maintenance_margin_by_hand(
    tiers: LeverageTiers, symbol: str, notional: float, expected: float
) -> None:
    assert tiers.maintenance_margin(symbol, notional) == pytest.approx(expected)


def test_maintenance_margin_is_continuous_at_every_bracket_edge(tiers: LeverageTiers) -> None:
    for symbol in tiers.symbols:
        for tier in tiers.tiers(symbol)[1:]:
            edge = tier.min_notional
            below = tiers.maintenance_margin(symbol, edge * (1 - 1e-12))
            above = tiers.maintenance_margin(symbol, edge * (1 + 1e-12))
            assert above == pytest.approx(below, rel=1e-9), (symbol, edge)


def test_cum_equals_the_sum_over_lower_brackets(tiers: LeverageTiers) -> None:
    for symbol in tiers.symbols:
        ts = tiers.tiers(symbol)
        computed = _cum_from_rates([(t.min_notional, t.maintenance_margin_rate) for t in ts])
        assert [t.maintenance_amount for t in ts] == pytest.approx(computed, abs=1e-6)


@pytest.mark.parametrize(
    ("symbol", "notional", "expected"),
    [
        ("BTC-USDT", 1_000.0, 125.0),
        ("BTC-USDT", 50_000.0, 125.0),
        ("BTC-USDT", 50_000.01, 100.0),
        ("BTC-USDT", 1_000_000.0, 75.0),
        ("1000PEPE-USDT", 1_000.0, 75.0),
        ("BTC-USDT", 1e12, 0.0),  # above the top bracket: nothing allowed
    ],
)
def test_max_leverage_for_the_notional(
    tiers: LeverageTiers, symbol: str, notional: float, expected: float
) -> None:
    assert tiers.max_leverage(symbol, notional) == expected


def test_cum_is_computed_when_the_file_lacks_it() -> None:
    raw = {
        "ABC/USDT:USDT": [
            {
                "minNotional": 0,
                "maxNotional": 1000,
                "maintenanceMarginRate": 0.01,
                "maxLeverage": 50,
            },
            {
                "minNotional": 1000,
                "maxNotional": 5000,
                "maintenanceMarginRate": 0.02,
                "maxLeverage": 20,
            },
            {
                "minNotional": 5000,
                "maxNotional": 9000,
                "maintenanceMarginRate": 0.05,
                "maxLeverage": 10,
            },
        ]
    }
    t = LeverageTiers.from_ccxt(raw)
    # cum: 0; 1,000 * (0.02 - 0.01) = 10; 10 + 5,000 * (0.05 - 0.02) = 160
    assert [x.maintenance_amount for x in t.tiers("ABC-USDT")] == pytest.approx([0, 10, 160])
    # 6,000 * 0.05 - 160 = 140 = 1,000*1% + 4,000*2% + 1,000*5%
    assert t.maintenance_margin("ABC-USDT", 6_000) == pytest.approx(140.0)


def test_market_ids_map_to_our_names() -> None:
    assert ccxt_to_symbol("BTC/USDT:USDT") == "BTC-USDT"
    assert ccxt_to_symbol("1000PEPE/USDT:USDT") == "1000PEPE-USDT"
    assert ccxt_to_symbol("BTC/USD:BTC") is None  # inverse
    assert ccxt_to_symbol("BTC/USDT:USDT-241227") is None  # dated
    assert normalise_symbol("BTC/USDT:USDT") == "BTC-USDT"
    assert normalise_symbol("btc-usdt") == "BTC-USDT"


def test_unknown_symbol_is_a_clear_error(tiers: LeverageTiers) -> None:
    assert not tiers.has("BNB-USDT")  # not shipped
    with pytest.raises(TiersError, match="BNB-USDT"):
        tiers.maintenance_margin("BNB-USDT", 100.0)


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TiersError, match="cannot read"):
        LeverageTiers.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TiersError, match="not valid JSON"):
        LeverageTiers.from_file(bad)
    bad.write_text(json.dumps({"ABC/USDT:USDT": [{"minNotional": 0}]}))
    with pytest.raises(TiersError, match="ABC/USDT:USDT"):
        LeverageTiers.from_file(bad)


def test_packaged_copy_holds_the_shipped_symbols(tiers: LeverageTiers) -> None:
    assert len(tiers.symbols) == 16
    assert {"BTC-USDT", "ETH-USDT", "SOL-USDT", "1000PEPE-USDT", "AAVE-USDT"} <= set(tiers.symbols)
    assert tiers.max_leverage("BTC-USDT", 0.0) == 125.0


@pytest.mark.skipif(not SHARED_TIERS.is_file(), reason="../shared/data is not on this machine")
def test_packaged_copy_is_an_unchanged_extract_of_the_shared_file(
    tiers: LeverageTiers, tmp_path: Path
) -> None:
    shared = LeverageTiers.from_file(SHARED_TIERS)
    for symbol in tiers.symbols:
        assert tiers.tiers(symbol) == shared.tiers(symbol)
    # re-running the extraction script reproduces the packaged file byte for byte
    out = tmp_path / "tiers.json"
    extract_packaged_tiers(SHARED_TIERS, SHARED_TIERS.parent / "ohlcv", out)
    assert out.read_bytes() == PACKAGED_TIERS.read_bytes()


def test_source_order_env_then_shared_then_packaged(monkeypatch, tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text(PACKAGED_TIERS.read_text())
    monkeypatch.setenv("QCTL_LEVERAGE_TIERS", str(mine))
    assert default_tiers_path() == mine
    assert LeverageTiers.load().source == str(mine)
    monkeypatch.delenv("QCTL_LEVERAGE_TIERS")
    monkeypatch.chdir(tmp_path)
    expected = SHARED_TIERS if SHARED_TIERS.is_file() else PACKAGED_TIERS
    assert default_tiers_path().resolve() == expected.resolve()
