"""Orders, positions, portfolio and snapshots: arithmetic and the no-future-data guarantee."""

from __future__ import annotations

import re

import numpy as np
import pytest

from engine.domain import (
    MarketSnapshot,
    Order,
    OrderType,
    Side,
    client_order_id,
)
from tests.engine.conftest import HOUR_MS, T0, bars_from_closes, portfolio, position, snapshot_of

BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def test_client_order_id_is_deterministic_and_binance_safe() -> None:
    a = client_order_id("run-1", "BTC-USDT", T0, "entry")
    assert a == client_order_id("run-1", "BTC-USDT", T0, "entry")
    others = {
        client_order_id("run-2", "BTC-USDT", T0, "entry"),
        client_order_id("run-1", "ETH-USDT", T0, "entry"),
        client_order_id("run-1", "BTC-USDT", T0 + 1, "entry"),
        client_order_id("run-1", "BTC-USDT", T0, "stop_loss"),
        client_order_id("run-1", "BTC-USDT", T0, "entry", seq=1),
    }
    assert a not in others and len(others) == 5
    assert BINANCE_CLIENT_ID.match(a)


def test_order_create_uses_the_deterministic_id() -> None:
    o = Order.create("run-1", T0, "BTC-USDT", Side.LONG, OrderType.MARKET, 0.01, "entry")
    assert o.client_order_id == client_order_id("run-1", "BTC-USDT", T0, "entry")
    assert o.with_status(o.status.FILLED).client_order_id == o.client_order_id


def test_position_pnl_and_r_multiples_by_hand() -> None:
    long = position("BTC-USDT", Side.LONG, 0.5, 100_000.0, mark=98_000.0)
    assert long.unrealised_pnl == pytest.approx(-1_000.0)  # 0.5 * (98,000 - 100,000)
    assert long.notional == pytest.approx(49_000.0)
    assert long.initial_margin == pytest.approx(4_900.0)  # 49,000 / 10x
    assert long.r_distance == pytest.approx(10_000.0)  # stop at 90,000
    assert long.r_multiple(120_000.0) == pytest.approx(2.0)
    short = position("ETH-USDT", Side.SHORT, 2.0, 3_000.0, mark=2_900.0)
    assert short.unrealised_pnl == pytest.approx(200.0)  # -1 * 2 * (2,900 - 3,000)
    assert short.initial_qty == 2.0


def test_portfolio_equity_and_exposure_by_hand() -> None:
    pf = portfolio(
        10_000.0,
        position("BTC-USDT", Side.LONG, 0.1, 100_000.0, mark=101_000.0),
        position("ETH-USDT", Side.SHORT, 2.0, 3_000.0, mark=3_100.0),
    )
    # upnl: +100 (long) and -200 (short)
    assert pf.equity == pytest.approx(9_900.0)
    assert pf.gross_notional() == pytest.approx(10_100.0 + 6_200.0)
    assert pf.exposure() == pytest.approx(16_300.0 / 9_900.0)
    pf.mark({"BTC-USDT": 100_000.0})
    assert pf.equity == pytest.approx(9_800.0)


def test_snapshot_never_shows_bars_after_its_time() -> None:
    closes = np.arange(1.0, 101.0)
    series = {"AAA-USDT": bars_from_closes(closes)}
    snap = snapshot_of(series, 10)
    bars = snap.bars("AAA-USDT")
    assert len(bars) == 10 and bars.close[-1] == 10.0
    assert bars.ts[-1] + HOUR_MS == snap.ts  # the last known bar closed at ts
    assert snap.last_close("AAA-USDT") == 10.0
    assert list(snap.close("AAA-USDT", 3)) == [8.0, 9.0, 10.0]
    with pytest.raises(ValueError):
        bars.close[0] = 5.0  # read-only: a policy cannot alter history either


def test_snapshot_symbols_are_those_with_known_bars() -> None:
    series = {"AAA-USDT": bars_from_closes(np.ones(5)), "BBB-USDT": bars_from_closes(np.ones(5))}
    snap = MarketSnapshot(T0, HOUR_MS, series, {"AAA-USDT": 3, "BBB-USDT": 0})
    assert snap.symbols == ("AAA-USDT",)
    assert not snap.has("BBB-USDT") and not snap.has("CCC-USDT")
    with pytest.raises(KeyError):
        snap.bars("BBB-USDT")


def test_engine_imports_none_of_the_other_parts() -> None:
    """Dependency direction: qctl -> {tui, models, migrations} -> {engine, audit}."""
    import ast
    from pathlib import Path

    forbidden = {"qctl", "tui", "models", "migrations", "audit"}
    engine_dir = Path(__file__).resolve().parents[2] / "engine"
    offenders = []
    for path in sorted(engine_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert offenders == []
