"""Costs enter the labels and the decisions: fees, slippage and funding, net figures only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.domain import Portfolio, SkipReason
from engine.venues.simulated import BrokerConfig
from models.labels import funding_over_horizon, net_trade_returns
from models.policy import AIPolicy
from models.train import EntryTrades, choose_entry, train_models

from .conftest import SMALL, snapshot_at

HOUR_MS = 3_600_000


def test_funding_over_the_horizon_counts_the_settlements_while_held():
    bars = np.arange(6) * HOUR_MS  # bar opens 00:00 .. 05:00
    settle = np.array([2, 4, 6]) * HOUR_MS
    rates = np.array([0.001, 0.002, 0.004])
    # entered at the close of bar t (t+1 h), held 2 bars (exit at t+3 h): settlements in (t+1, t+3]
    got = funding_over_horizon(bars, HOUR_MS, 2, settle, rates)
    assert got.tolist() == pytest.approx([0.001, 0.002, 0.002, 0.004, 0.004, 0.0])
    assert funding_over_horizon(bars, HOUR_MS, 2, None, None).tolist() == [0.0] * 6


def test_net_trade_returns_subtract_the_round_trip_and_the_side_s_funding():
    fwd = np.log(np.array([1.02, 1.02]))
    got = net_trade_returns(fwd, np.array([0.001, 0.001]), np.array([1.0, -1.0]), 0.0014)
    assert got.tolist() == pytest.approx([0.02 - 0.0014 - 0.001, -0.02 - 0.0014 + 0.001])


def _trades(confidence, edge, net, cost=0.0):
    n = len(confidence)
    return EntryTrades(
        confidence=np.asarray(confidence, float),
        vol_unit=np.ones(n),
        edge=np.asarray(edge, float),
        net=np.asarray(net, float) - cost,
        funding_now=np.zeros(n),
        fold=np.arange(n) % 2,
        ts=np.arange(n),
    )


def test_the_entry_level_is_chosen_by_net_returns():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 0.6, 4000)
    gross = (conf - 0.55) * 0.2 + rng.normal(0, 0.002, 4000)  # an edge only above 0.55
    cfg = replace(SMALL, grid_points=10, min_entry_t=2.0, horizon_bars=1)
    free = choose_entry(_trades(conf, gross, gross), cfg, 0.0)
    assert free["min_confidence"] is not None and free["min_confidence"] >= 0.54
    assert free["validation"]["net_mean"] > 0
    # an edge in one validation fold only is not traded unless the config allows it
    one_fold = np.where(np.arange(4000) % 2 == 0, gross, 0.1 * gross - 0.0015)
    steady = replace(cfg, entry_fold_share=1.0, min_entry_t=0.0)
    assert choose_entry(_trades(conf, gross, one_fold), steady, 0.0)["min_confidence"] is None
    loose = replace(cfg, entry_fold_share=0.5, min_entry_t=0.0)
    chosen = choose_entry(_trades(conf, gross, one_fold), loose, 0.0)
    assert chosen["validation"]["positive_fold_share"] == 0.5
    # a round trip larger than any gross return: no level pays, so there is none
    costly = choose_entry(_trades(conf, gross, gross, cost=0.02), cfg, 0.02)
    assert costly["min_confidence"] is None and costly["validation"] is None


def test_costs_above_every_move_give_zero_entries(market, tmp_path):
    candles, funding = market
    horizon = SMALL.horizon_bars
    moves = [
        np.abs(c["close"].to_numpy()[horizon:] / c["close"].to_numpy()[:-horizon] - 1).max()
        for c in candles.values()
    ]
    broker = BrokerConfig(taker_fee=float(max(moves)), maker_fee=0.0, slippage=0.0)
    result = train_models(candles, funding, tmp_path / "m", SMALL, broker=broker)
    card = result.cards["direction"]
    assert card["costs"]["round_trip"] == pytest.approx(2 * max(moves))
    assert card["metrics"]["all_validation_trades"]["net_mean"] < 0
    assert card["outputs"]["min_confidence"] is None
    policy = AIPolicy.from_dir(
        tmp_path / "m", funding=funding, round_trip_cost=broker.break_even_offset()
    )
    decisions = []
    for i in range(1300, 1590, 5):
        decisions += policy.decide(snapshot_at(candles, i), Portfolio(wallet_balance=1e4))
    assert decisions and not [d for d in decisions if d.skip is None]
    assert SkipReason.NO_SIGNAL in {d.skip for d in decisions}


def test_the_card_records_the_entry_choice_and_its_validation_figure(trained):
    card = trained.cards["direction"]
    entry = card["metrics"]["entry"]
    assert card["outputs"]["min_confidence"] == entry["min_confidence"]
    assert entry["net_mean"] > 0 and entry["trades"] >= SMALL.min_data_in_leaf
    assert "net" in card["outputs"]["entry_criterion"]
    assert card["costs"]["round_trip"] == BrokerConfig.from_toml().break_even_offset()
    assert trained.cards["kill"]["metrics"]["chosen_on"].endswith("net of costs")


def test_a_set_without_an_entry_level_skips_without_computing_features(trained, market):
    candles, funding = market
    cost = BrokerConfig.from_toml().break_even_offset()
    policy = AIPolicy.from_dir(trained.out_dir, funding=funding, round_trip_cost=cost)
    snapshot = snapshot_at(candles, 1400)
    assert any(d.skip is None for d in policy.decide(snapshot, Portfolio(wallet_balance=1e4)))

    policy._outputs = replace(policy._outputs, min_confidence=None)

    def no_features(*_args):
        raise AssertionError("features computed for a set that cannot enter")

    policy._feature_rows = no_features
    decisions = policy.decide(snapshot, Portfolio(wallet_balance=1e4))
    assert sorted(d.symbol for d in decisions) == sorted(candles)
    assert {d.skip for d in decisions} == {SkipReason.NO_SIGNAL}
    early = policy.decide(snapshot_at(candles, 10), Portfolio(wallet_balance=1e4))
    assert {d.skip for d in early} == {SkipReason.WARMUP}


def test_entry_times_count_trades_opened_together_as_one_bet():
    rng = np.random.default_rng(5)
    times, symbols = 400, 10
    z = rng.normal(size=times)
    # the net of every symbol's trade at each time: t = 0.07 * sqrt(400) = 1.4 over entry times,
    # 0.07 * sqrt(4000) = 4.4 over trades
    book = 0.0007 + 0.01 * (z - z.mean()) / z.std()
    ts = np.repeat(np.arange(times), symbols)
    net = np.repeat(book, symbols)
    n = len(net)
    trades = EntryTrades(
        confidence=rng.uniform(0.5, 0.6, n),
        vol_unit=np.ones(n),
        edge=np.full(n, 0.001),  # every trade expected to pay: the levels differ by confidence
        net=net,
        funding_now=np.zeros(n),
        fold=(ts >= times // 2).astype(int),
        ts=ts,
    )
    cfg = replace(SMALL, grid_points=5, min_entry_t=2.0, horizon_bars=1, entry_fold_share=0.0)
    by_trades = choose_entry(trades, cfg, 0.0)
    assert by_trades["min_confidence"] is not None
    chosen = by_trades["validation"]
    assert chosen["t_stat"] == chosen["t_stat_trades"] >= 2.0
    assert chosen["t_stat_by_time"] == pytest.approx(chosen["t_stat"] / np.sqrt(symbols), rel=0.3)
    by_times = choose_entry(trades, replace(cfg, entry_evidence="entry_times"), 0.0)
    assert by_times["min_confidence"] is None
    assert "entry time" in by_times["criterion"]
