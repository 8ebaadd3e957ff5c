"""Governor tests from the legacy repository (run with: pytest tests/ from this folder)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from risk.governor import Governor, OrderIntent  # noqa: E402
from risk.safety import AccountState  # noqa: E402

RICH = AccountState(equity_usdt=10_000.0, used_margin_usdt=0.0, open_notional_usdt=0.0)


def test_small_order_is_approved():
    verdict = Governor().review(OrderIntent("BTCUSDT", "BUY", 150.0, 5), RICH)
    assert verdict.approved, verdict.reason


def test_order_above_per_trade_notional_is_rejected():
    verdict = Governor().review(OrderIntent("BTCUSDT", "BUY", 250.0, 5), RICH)
    assert not verdict.approved
    assert "per-trade" in verdict.reason


def test_leverage_above_governor_max_is_rejected():
    verdict = Governor().review(OrderIntent("ETHUSDT", "SELL", 100.0, 50), RICH)
    assert not verdict.approved
    assert "leverage" in verdict.reason


def test_symbol_notional_accumulates():
    gov = Governor()
    for _ in range(3):
        gov.record_open(OrderIntent("SOLUSDT", "BUY", 200.0, 3))
    verdict = gov.review(OrderIntent("SOLUSDT", "BUY", 100.0, 3), RICH)
    assert not verdict.approved


def test_reentry_cooldown_after_close():
    gov = Governor()
    gov.record_close("XRPUSDT")
    verdict = gov.review(OrderIntent("XRPUSDT", "BUY", 100.0, 3), RICH)
    assert "cooldown" in verdict.reason


def test_thin_margin_blocks_new_orders():
    thin = AccountState(equity_usdt=1_000.0, used_margin_usdt=950.0, open_notional_usdt=0.0)
    verdict = Governor().review(OrderIntent("BTCUSDT", "BUY", 10.0, 5), thin)
    assert not verdict.approved
    assert verdict.reason.startswith("safety:")
