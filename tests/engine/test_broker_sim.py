"""Simulated broker: hand-worked funding and liquidation arithmetic, fees and slippage, and the
documented intrabar order of events (gap at the open, adverse extreme first, then take-profit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.core.bars import AlignedBars
from engine.core.tiers import PACKAGED_TIERS, LeverageTiers
from engine.domain import OrderPurpose, OrderStatus, Portfolio, Side
from engine.venues.simulated import (
    BrokerConfig,
    BrokerConfigError,
    SimulatedBroker,
    cross_liquidation_price,
    funding_payment,
)

H = 3_600_000
T0 = 1_746_057_600_000
FREE = BrokerConfig(taker_fee=0.0, maker_fee=0.0, slippage=0.0, venue="test")
TIERS = LeverageTiers.load(PACKAGED_TIERS)


def bars_of(
    rows: dict[str, list[tuple[float, float, float, float]]],
    funding: dict[str, dict[int, float]] | None = None,
) -> AlignedBars:
    """AlignedBars from per-symbol (open, high, low, close) rows on an hourly grid from T0."""
    symbols = list(rows)
    n = len(next(iter(rows.values())))
    mats = {k: np.full((n, len(symbols)), np.nan) for k in ("o", "h", "l", "c")}
    fund = np.full((n, len(symbols)), np.nan)
    fund_ts = np.zeros((n, len(symbols)), dtype=np.int64)
    series = {}
    for j, s in enumerate(symbols):
        arr = np.array(rows[s], dtype=float)
        for k, col in zip("ohlc", arr.T, strict=True):
            mats[k][:, j] = col
        ts = T0 + H * np.arange(n, dtype=np.int64)
        series[s] = (ts, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.ones(n))
        for i, rate in (funding or {}).get(s, {}).items():
            fund[i, j] = rate
            fund_ts[i, j] = T0 + i * H
    nan = np.full((n, len(symbols)), np.nan)
    return AlignedBars(
        symbols=symbols, timeframe="1h", step_ms=H, ts=T0 + H * np.arange(n, dtype=np.int64),
        open=mats["o"], high=mats["h"], low=mats["l"], close=mats["c"],
        volume=np.ones((n, len(symbols))), known=np.tile(np.arange(1, n + 1)[:, None], (1, len(symbols))),
        funding=fund, funding_ts=fund_ts, mark_open=nan, mark_high=nan, mark_low=nan,
        mark_close=nan, has_funding=~np.isnan(fund).all(axis=0),
        has_mark=np.zeros(len(symbols), dtype=bool), series=series,
        funding_steps=~np.isnan(fund).all(axis=1),
    )  # fmt: skip


def broker_with(wallet: float, cfg: BrokerConfig = FREE) -> SimulatedBroker:
    return SimulatedBroker(cfg, TIERS, Portfolio(wallet_balance=wallet), run_id="t")


def open_pos(
    b: SimulatedBroker,
    symbol: str,
    side: Side,
    qty: float,
    price: float,
    stop: float | None = None,
    tp: float | None = None,
    ts: int = T0,
) -> None:
    order = b.market_order(ts, symbol, side, qty, OrderPurpose.ENTRY)
    b.open_position(order, price, 10.0, stop, tp)


# -- hand-worked arithmetic -------------------------------------------------------------------


def test_funding_payment_by_hand() -> None:
    # long 2 ETH, mark 2010, rate +0.01 %: pays 2 * 2010 * 0.0001 = 0.402 USDT
    assert funding_payment(Side.LONG, 2.0, 2010.0, 0.0001) == pytest.approx(0.402)
    # the short receives the same
    assert funding_payment(Side.SHORT, 2.0, 2010.0, 0.0001) == pytest.approx(-0.402)
    # negative rate: shorts pay longs
    assert funding_payment(Side.LONG, 1.0, 100.0, -0.0005) == pytest.approx(-0.05)


def test_cross_liquidation_price_by_hand() -> None:
    # wallet 1000, long 1 BTC @ 10000, bracket 1 (0.4 %, cum 0):
    # 1000 + (P - 10000) = 0.004 P  ->  P = 9000 / 0.996 = 9036.1446
    assert cross_liquidation_price(Side.LONG, 1, 10_000, 1000, 0.004, 0.0) == pytest.approx(
        9000 / 0.996
    )
    # short: 1000 + (10000 - P) = 0.004 P  ->  P = 11000 / 1.004 = 10956.1753
    assert cross_liquidation_price(Side.SHORT, 1, 10_000, 1000, 0.004, 0.0) == pytest.approx(
        11000 / 1.004
    )
    # bracket 2 (0.5 %, cum 50): wallet 10000, long 10 @ 10000:
    # 10000 + 10 (P - 10000) = 0.05 P - 50  ->  P = 89950 / 9.95 = 9040.2010
    assert cross_liquidation_price(Side.LONG, 10, 10_000, 10_000, 0.005, 50.0) == pytest.approx(
        89950 / 9.95
    )
    # another position's loss (-200) and maintenance (+40) move it up:
    # 1000 - 200 - 40 + P - 10000 = 0.004 P  ->  P = 9240 / 0.996
    assert cross_liquidation_price(
        Side.LONG, 1, 10_000, 1000, 0.004, 0.0, other_equity=-200.0, other_maintenance=40.0
    ) == pytest.approx(9240 / 0.996)


def test_liquidation_in_a_bar_closes_at_the_liquidation_price_and_empties_the_wallet() -> None:
    b = broker_with(1000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 10_000.0)
    bars = bars_of({"BTC-USDT": [(9_900.0, 9_950.0, 9_000.0, 9_100.0)]})
    events = b.process_bar(bars, 0, {"BTC-USDT": 0})
    lp = 9000 / 0.996
    fills = [e.fill for e in events if e.fill is not None]
    assert len(fills) == 1 and fills[0].price == pytest.approx(lp)
    assert fills[0].realised_pnl == pytest.approx(lp - 10_000)  # -963.855
    # what is left is the maintenance margin at the liquidation price, lost as clearance fee
    left = next(e for e in events if e.kind == "liquidation").amount
    assert left == pytest.approx(0.004 * lp)
    assert b.portfolio.wallet_balance == 0.0 and not b.portfolio.positions
    assert b.closed_positions[0].close_reason == "liquidation" and b.n_liquidations == 1


def test_bar_that_does_not_reach_the_liquidation_price_liquidates_nothing() -> None:
    b = broker_with(1000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 10_000.0)
    bars = bars_of({"BTC-USDT": [(9_900.0, 9_950.0, 9_037.0, 9_100.0)]})
    assert b.process_bar(bars, 0, {"BTC-USDT": 0}) == []
    assert "BTC-USDT" in b.portfolio.positions


def test_stop_before_the_liquidation_price_fills_first() -> None:
    b = broker_with(1000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 10_000.0, stop=0.05)  # stop at 9500
    b.process_bar(bars_of({"BTC-USDT": [(9_900.0, 9_950.0, 9_000.0, 9_100.0)]}), 0,
                  {"BTC-USDT": 0})  # fmt: skip
    assert b.portfolio.wallet_balance == pytest.approx(500.0)
    assert b.closed_positions[0].close_reason == "stop_loss" and b.n_liquidations == 0


def test_stop_beyond_the_liquidation_price_is_too_late() -> None:
    b = broker_with(1000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 10_000.0, stop=0.1)  # stop 9000 < liq 9036
    b.process_bar(bars_of({"BTC-USDT": [(9_900.0, 9_950.0, 8_990.0, 9_100.0)]}), 0,
                  {"BTC-USDT": 0})  # fmt: skip
    assert b.closed_positions[0].close_reason == "liquidation"
    assert b.portfolio.wallet_balance == 0.0


def test_cross_margin_two_positions_liquidate_together() -> None:
    # wallet 1000; long 1 BTC @ 10000 and long 5 ETH @ 2000; both bars crash
    b = broker_with(1000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 10_000.0)
    open_pos(b, "ETH-USDT", Side.LONG, 5.0, 2_000.0)
    bars = bars_of({"BTC-USDT": [(10_000.0, 10_000.0, 9_400.0, 9_500.0)],
                    "ETH-USDT": [(2_000.0, 2_000.0, 1_880.0, 1_900.0)]})  # fmt: skip
    b.process_bar(bars, 0, {"BTC-USDT": 0, "ETH-USDT": 1})
    # BTC liquidation price with ETH at its low (upnl -600, maintenance 0.004*9400=37.6):
    # 1000 - 600 - 37.6 + P - 10000 = 0.004 P  ->  P = 9637.6 / 0.996
    btc = next(p for p in b.closed_positions if p.symbol == "BTC-USDT")
    assert btc.entry_price + btc.realised_pnl == pytest.approx(9637.6 / 0.996)
    assert not b.portfolio.positions and b.portfolio.wallet_balance == 0.0


def test_funding_settles_at_its_time_for_positions_open_then() -> None:
    b = broker_with(10_000.0)
    open_pos(b, "ETH-USDT", Side.LONG, 2.0, 2_000.0, ts=T0)
    open_pos(b, "BTC-USDT", Side.SHORT, 0.1, 10_000.0, ts=T0 + H)  # opened after the print
    bars = bars_of(
        {"ETH-USDT": [(2_010.0, 2_020.0, 2_000.0, 2_015.0)],
         "BTC-USDT": [(10_000.0, 10_010.0, 9_990.0, 10_000.0)]},
        funding={"ETH-USDT": {0: 0.0001}, "BTC-USDT": {0: 0.0001}},
    )  # fmt: skip
    events = b.process_bar(bars, 0, {"ETH-USDT": 0, "BTC-USDT": 1})
    paid = [e for e in events if e.kind == "funding"]
    assert [(e.symbol, round(e.amount, 6)) for e in paid] == [("ETH-USDT", 0.402)]
    assert b.portfolio.wallet_balance == pytest.approx(10_000.0 - 0.402)
    assert b.portfolio.positions["ETH-USDT"].funding_paid == pytest.approx(0.402)
    assert b.funding_paid == pytest.approx(0.402)


# -- intrabar order of events -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "bar", "reason", "price"),
    [
        # long, stop 95, take-profit 110
        (Side.LONG, (100.0, 112.0, 94.0, 100.0), "stop_loss", 95.0),  # both touched: adverse first
        (Side.LONG, (93.0, 96.0, 92.0, 95.0), "stop_loss", 93.0),  # gap through the stop
        (Side.LONG, (111.0, 113.0, 109.0, 112.0), "take_profit", 111.0),  # gap through the TP
        (Side.LONG, (100.0, 111.0, 99.0, 105.0), "take_profit", 110.0),
        # short, stop 105, take-profit 90
        (Side.SHORT, (100.0, 106.0, 89.0, 100.0), "stop_loss", 105.0),
        (Side.SHORT, (107.0, 108.0, 104.0, 105.0), "stop_loss", 107.0),
        (Side.SHORT, (100.0, 101.0, 89.5, 95.0), "take_profit", 90.0),
    ],
)
def test_intrabar_order(side: Side, bar: tuple, reason: str, price: float) -> None:
    b = broker_with(10_000.0)
    tp = 0.10 if side is Side.LONG else 0.10
    open_pos(b, "BTC-USDT", side, 1.0, 100.0, stop=0.05, tp=tp)
    b.process_bar(bars_of({"BTC-USDT": [bar]}), 0, {"BTC-USDT": 0})
    (closed,) = b.closed_positions
    assert closed.close_reason == reason
    assert closed.entry_price + side.sign * closed.realised_pnl == pytest.approx(price)


def test_untouched_levels_keep_the_position_and_its_backstops() -> None:
    b = broker_with(10_000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 100.0, stop=0.05, tp=0.10)
    assert b.process_bar(bars_of({"BTC-USDT": [(100.0, 109.0, 96.0, 101.0)]}), 0,
                         {"BTC-USDT": 0}) == []  # fmt: skip
    stop, tp = b.protective_orders("BTC-USDT")
    assert stop is not None and stop.stop_price == pytest.approx(95.0) and stop.reduce_only
    assert tp is not None and tp.stop_price == pytest.approx(110.0)


# -- fees, slippage, partial closes -----------------------------------------------------------


def test_fees_and_slippage_by_hand() -> None:
    cfg = BrokerConfig(taker_fee=0.0005, maker_fee=0.0002, slippage=0.0002, venue="x")
    b = broker_with(1_000.0, cfg)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 100.0)
    pos = b.portfolio.positions["BTC-USDT"]
    assert pos.entry_price == pytest.approx(100.02)  # bought 2 bp above the reference
    assert pos.fees_paid == pytest.approx(0.05001)  # 0.05 % of 100.02
    # close half at a reference of 110: sold 2 bp below, at 109.978
    close = b.market_order(T0 + H, "BTC-USDT", Side.SHORT, 0.5, OrderPurpose.HARVEST_T1,
                           reduce_only=True)  # fmt: skip
    events = b.execute(close, 110.0)
    fill = next(e.fill for e in events if e.fill is not None)
    assert fill.price == pytest.approx(109.978)
    assert fill.realised_pnl == pytest.approx(0.5 * (109.978 - 100.02))
    assert fill.fee == pytest.approx(0.0005 * 0.5 * 109.978)
    assert b.portfolio.wallet_balance == pytest.approx(
        1_000.0 - 0.05001 + 0.5 * (109.978 - 100.02) - 0.0005 * 0.5 * 109.978
    )
    assert pos.qty == pytest.approx(0.5) and pos.is_open


def test_backstops_follow_a_partial_close_and_are_cancelled_on_close() -> None:
    b = broker_with(1_000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 3.0, 100.0, stop=0.05, tp=0.2)
    events = b.execute(b.market_order(T0, "BTC-USDT", Side.SHORT, 1.0, "harvest_t1", True), 110)
    amended = [e.order for e in events if e.kind == "order"]
    assert sorted(o.qty for o in amended) == [2.0, 2.0]
    events = b.execute(b.market_order(T0, "BTC-USDT", Side.SHORT, 2.0, "kill", True), 105)
    cancelled = [e.order for e in events if e.kind == "cancel"]
    assert {o.purpose for o in cancelled} == {"stop_loss", "take_profit"}
    assert all(o.status is OrderStatus.CANCELED for o in cancelled)
    assert b.protective_orders("BTC-USDT") == (None, None)
    assert b.closed_positions[0].close_reason == "kill"


def test_reduce_only_without_a_position_is_rejected() -> None:
    b = broker_with(1_000.0)
    (ev,) = b.execute(b.market_order(T0, "BTC-USDT", Side.SHORT, 1.0, "kill", True), 100.0)
    assert ev.order.status is OrderStatus.REJECTED and not b.portfolio.positions


def test_move_stop_replaces_the_resting_order() -> None:
    b = broker_with(1_000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 100.0, stop=0.05)
    old, _ = b.protective_orders("BTC-USDT")
    events = b.move_stop(T0 + H, "BTC-USDT", 100.5)
    assert [e.kind for e in events] == ["cancel", "order", "stop_moved"]
    new, _ = b.protective_orders("BTC-USDT")
    assert new.stop_price == 100.5 and new.client_order_id != old.client_order_id
    assert b.portfolio.positions["BTC-USDT"].initial_stop_price == pytest.approx(95.0)


def test_broker_config_from_toml(tmp_path: Path) -> None:
    cfg = BrokerConfig.from_toml()
    assert cfg.venue == "binance_usdm" and 0 < cfg.maker_fee < cfg.taker_fee
    bad = tmp_path / "v.toml"
    bad.write_text("[broker]\ntaker_fee = 0.0005\nmaker_fee = 0.0002\n")
    with pytest.raises(BrokerConfigError, match="missing slippage"):
        BrokerConfig.from_toml(bad)
    bad.write_text("[broker]\ntaker_fee = 1.5\nmaker_fee = 0.0002\nslippage = 0\n")
    with pytest.raises(BrokerConfigError, match="taker_fee"):
        BrokerConfig.from_toml(bad)
    with pytest.raises(BrokerConfigError, match="cannot read"):
        BrokerConfig.from_toml(tmp_path / "missing.toml")


def test_an_entry_without_leverage_is_rejected() -> None:
    b = broker_with(1_000.0)
    (ev,) = b.execute(b.market_order(T0, "BTC-USDT", Side.LONG, 1.0, OrderPurpose.ENTRY), 100.0)
    assert ev.order.status is OrderStatus.REJECTED and "leverage" in ev.order.detail
    assert not b.portfolio.positions and b.portfolio.wallet_balance == 1_000.0
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 100.0)
    assert b.portfolio.positions["BTC-USDT"].leverage == 10.0


def test_cached_maintenance_matches_the_tiers() -> None:
    b = broker_with(1.0)
    rng = np.random.default_rng(3)
    for symbol in TIERS.symbols:
        for notional in 10 ** rng.uniform(0, 9, 50):  # jumps across brackets, both ways
            mm, rate, cum = b.maintenance(symbol, float(notional))
            assert mm == pytest.approx(TIERS.maintenance_margin(symbol, float(notional)))
            assert mm == pytest.approx(notional * rate - cum)


def test_marks_after_a_quiet_bar_are_the_closes_even_when_a_fill_came_between() -> None:
    """`mark_to_close` reuses the closes the quiet-bar test read, only for the very positions it
    read them for: a position opened in between is marked at its close too."""
    bars = bars_of(
        {"BTC-USDT": [(100.0, 101.0, 99.0, 100.5)], "ETH-USDT": [(50.0, 51.0, 49.0, 50.7)]}
    )
    col = {"BTC-USDT": 0, "ETH-USDT": 1}
    b = broker_with(10_000.0)
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 100.0, stop=0.05, tp=0.10)
    assert b.process_bar(bars, 0, col) == []  # a quiet bar
    b.mark_to_close(bars, 0, col)
    assert b.portfolio.positions["BTC-USDT"].mark_price == 100.5
    open_pos(b, "BTC-USDT", Side.LONG, 1.0, 100.0, stop=0.05, tp=0.10)  # adds: a fill
    assert b.process_bar(bars, 0, col) == []
    open_pos(b, "ETH-USDT", Side.SHORT, 2.0, 50.0, stop=0.05, tp=0.10)  # after the quiet test
    b.mark_to_close(bars, 0, col)
    marks = {s: p.mark_price for s, p in b.portfolio.positions.items()}
    assert marks == {"BTC-USDT": 100.5, "ETH-USDT": 50.7}
