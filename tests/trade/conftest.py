"""A local exchange (engine/venues/exchange_sim) in manual mode and a trade session against it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.backtest import default_policy_path
from engine.core.policy import StaticPolicy
from engine.journal.store import Journal
from engine.trade import TradeSession, TradeSettings, TradeSummary
from engine.venues.candle_files import sample_data_dir
from engine.venues.ccxt_setup import make_exchange
from engine.venues.exchange_sim.server import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET,
    LocalExchange,
    start_local_exchange,
)

SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
HISTORY = 300  # bars the feed loads at start (the sim holds 500 before its start)


@pytest.fixture
def sim() -> Iterator[LocalExchange]:
    """Time moves only when the test (or the session's wait hook) advances it."""
    with start_local_exchange(sample_data_dir(), symbols=SYMBOLS, bar_seconds=0) as ex:
        yield ex


def run_session(
    sim: LocalExchange,
    db: Path | str,
    mode: str = "live",
    bars: int = 30,
    policy: Any = None,
    on_wait: Callable[[], None] | None = None,
    new_run: bool = False,
    logs: list | None = None,
    timeout_ms: int | None = None,
) -> TradeSummary:
    """`bars` cycles of a session; each wait for a bar advances the exchange by one bar."""

    async def main() -> TradeSummary:
        ex = make_exchange("binanceusdm", sim.url, DEFAULT_API_KEY, DEFAULT_SECRET)
        if timeout_ms is not None:
            ex.timeout = timeout_ms
        journal = Journal(db)
        settings = TradeSettings(
            mode=mode, symbols=SYMBOLS, equity=10_000.0, max_bars=bars, poll_seconds=0.001,
            history_bars=HISTORY, new_run=new_run,
        )  # fmt: skip
        session = TradeSession(
            settings,
            policy or StaticPolicy.from_toml(default_policy_path()),
            journal,
            ex,
            out=lambda line: None,
            log=(lambda e, f: logs.append((e, dict(f)))) if logs is not None else None,
            on_wait=on_wait or (lambda: sim.advance(1)),
        )
        try:
            return await session.run()
        finally:
            await ex.close()
            journal.close()

    return asyncio.run(main())


def ledger_fills(sim: LocalExchange) -> list[tuple]:
    return sorted(
        (f["symbol"], f["side"].lower(), round(f["qty"], 10), round(f["price"], 8))
        for f in sim.ledger()["fills"]
    )


def journal_fills(db: Path | str) -> list[tuple]:
    with Journal.open_readonly(db) as j:
        rows = j.rows("fill")
    side = {"long": "buy", "short": "sell"}
    return sorted(
        (r["symbol"], side[r["side"]], round(r["qty"], 10), round(r["price"], 8)) for r in rows
    )


def sync_client(sim: LocalExchange):  # noqa: ANN201 - a ccxt exchange
    """Another client of the same account (a person, or a second bot)."""
    ex = make_exchange("binanceusdm", sim.url, DEFAULT_API_KEY, DEFAULT_SECRET, async_=False)
    ex.load_markets()
    return ex


def open_positions(sim: LocalExchange) -> dict[str, float]:
    return {p["symbol"]: float(p["qty"]) for p in sim.ledger()["positions"] if float(p["qty"])}


def stops_resting(sim: LocalExchange) -> set[str]:
    return {o["symbol"] for o in sim.ledger()["open_algo_orders"] if o["type"] == "STOP_MARKET"}
