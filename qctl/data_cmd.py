"""`qctl data fetch`: candles and funding from an exchange (ccxt) into a cache that backtest and
train read with `--data`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from qctl.options import OptionError, parse_date_ms, split_names

DEFAULT_CACHE_DIR = Path("data_cache")

data_app = typer.Typer(
    name="data",
    help=(
        "Fetch market data into a local cache that `qctl backtest` and `qctl train` read.\n\n"
        "Example:\n\n"
        "  qctl data fetch --symbols BTC-USDT,ETH-USDT --since 2026-01-01"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def make_exchange(exchange_id: str) -> Any:
    """A ccxt exchange with ccxt's own rate limiter on (the one place the CLI builds one)."""
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise OptionError(
            f"unknown exchange {exchange_id!r} (a ccxt id such as binanceusdm, bybit, okx)"
        )
    return getattr(ccxt, exchange_id)({"enableRateLimit": True})


def _fmt_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def render_fetch(report: Any) -> Table:
    """One row per symbol: bars and funding prints in the cache (new in this run) and their span."""
    table = Table(title=f"{report.exchange} {report.timeframe} → {report.cache_dir}")
    for col in ("symbol", "market", "bars", "new", "first bar (UTC)", "last bar (UTC)", "funding"):
        table.add_column(col, justify="right" if col in ("bars", "new", "funding") else "left")
    for s in report.symbols:
        funding = "—" if s.funding_total is None else f"{s.funding_total} (+{s.funding_new})"
        table.add_row(
            s.symbol,
            s.market_symbol,
            str(s.bars_total),
            f"+{s.bars_new}",
            _fmt_ms(s.first_ts),
            _fmt_ms(s.last_ts),
            funding,
        )
    return table


@data_app.command("fetch")
def fetch_command(
    symbols: Annotated[
        list[str],
        typer.Option("--symbols", "-s", help="Symbols, comma-separated or repeated: BTC,ETHUSDT."),
    ],
    since: Annotated[
        str, typer.Option("--since", help="First bar to fetch, UTC: 2025-01-01[T12:00].")
    ],
    exchange: Annotated[
        str, typer.Option("--exchange", "-e", help="ccxt exchange id.")
    ] = "binanceusdm",
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Candle timeframe.")] = "1h",
    until: Annotated[
        str | None, typer.Option("--until", help="End of the range (exclusive), UTC. Default: now.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Cache folder (gets ohlcv/ and funding/).")
    ] = DEFAULT_CACHE_DIR,
    no_funding: Annotated[bool, typer.Option("--no-funding", help="Fetch candles only.")] = False,
) -> None:
    """Fetch closed candles (and funding prints) into --out; a rerun fetches only what is new.

    Then `qctl backtest --data OUT` and `qctl train --data OUT` read the cache as they read
    ../shared/data.

    Examples:

      qctl data fetch --symbols BTC-USDT,ETH-USDT --since 2026-01-01

      qctl data fetch -s SOL-USDT --since 2026-01-01 --timeframe 15m --no-funding
    """
    from engine.venues.ccxt_feed import FeedError, fetch_to_cache

    names = split_names(symbols)
    if not names:
        raise OptionError("--symbols is empty (e.g. --symbols BTC,ETH)")
    since_ms = parse_date_ms(since, "--since")
    until_ms = parse_date_ms(until, "--until") if until is not None else None
    ex = make_exchange(exchange)
    console = Console()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(symbol: str, fraction: float) -> None:
            if symbol not in tasks:
                tasks[symbol] = progress.add_task(symbol, total=1.0)
            progress.update(tasks[symbol], completed=fraction)

        try:
            report = fetch_to_cache(
                ex,
                names,
                timeframe,
                since_ms,
                until_ms,
                out,
                funding=not no_funding,
                progress=advance,
            )
        except FeedError as exc:
            if exc.report is not None and exc.report.symbols:
                console.print(render_fetch(exc.report))
            raise
    console.print(render_fetch(report))
    console.print(f"read it with: qctl backtest --data {out}  (or qctl train --data {out})")
