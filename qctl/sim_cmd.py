"""`qctl sim serve`: the local Binance USD-M exchange that tests and demos point ccxt at."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from qctl.options import DataDir, OptionError, parse_date_ms, split_names

DEFAULT_PORT = 8790

sim_app = typer.Typer(
    name="sim",
    help=(
        "A local exchange (127.0.0.1 only) that replays recorded candles and speaks the Binance "
        "USD-M REST subset ccxt uses.\n\n"
        "Examples:\n\n"
        "  qctl sim serve --port 8790 --bar-seconds 5\n\n"
        "  qctl sim fault http_429 --count 2"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@sim_app.command("serve")
def serve_command(
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0: any free port).")
    ] = DEFAULT_PORT,
    data: DataDir = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Simulated start, UTC: 2025-09-01[T12:00]. Default: after the history_bars of exchange.toml.",
        ),
    ] = None,
    bar_seconds: Annotated[
        float,
        typer.Option(
            "--bar-seconds",
            help="Wall-clock seconds per replayed bar (fractions allowed); 0: the clock moves "
            "only through POST /qctl-sim/advance.",
        ),
    ] = 1.0,
    symbols: Annotated[
        list[str] | None,
        typer.Option("--symbols", "-s", help="Symbols to list, comma-separated (default: all)."),
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Candle timeframe.")] = "1h",
    balance: Annotated[
        float | None,
        typer.Option("--balance", help="USDT in the account at start (default: exchange.toml)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="QCTL_API_KEY",
            help="API key clients must send (default: a demo key).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            envvar="QCTL_API_SECRET",
            help="Secret requests are signed with (default: a demo secret).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the local exchange until Ctrl-C or SIGTERM.

    Its truth: `GET /qctl-sim/ledger`. Faults on command: `POST /qctl-sim/fault` with JSON
    such as {"kind": "http_429", "count": 2}. Point ccxt at it with `--api-url` (qctl trade) or
    engine.venues.ccxt_setup.make_exchange.

    Examples:

      qctl sim serve --port 8790 --bar-seconds 5

      qctl sim serve --data ../shared/data --symbols BTC,ETH --start 2025-09-01 --bar-seconds 0
    """
    from engine.venues.candle_files import sample_data_dir
    from engine.venues.exchange_sim import (
        DEFAULT_API_KEY,
        DEFAULT_SECRET,
        ExchangeConfigError,
        build_exchange,
        serve,
    )

    if not 0 <= port <= 65535:
        raise typer.BadParameter(f"--port must be 0..65535, got {port}")
    if not bar_seconds >= 0:
        raise typer.BadParameter(f"--bar-seconds must be >= 0, got {bar_seconds}")
    if balance is not None and not balance > 0:
        raise typer.BadParameter(f"--balance must be positive, got {balance}")
    start_ms = parse_date_ms(start, "--start") if start else None
    names = split_names(symbols) or None
    folder = Path(data) if data is not None else sample_data_dir()
    try:
        exchange = build_exchange(
            folder, names, start_ms, bar_seconds, timeframe=timeframe, starting_balance=balance
        )
    except ExchangeConfigError as exc:
        raise OptionError(str(exc)) from None
    try:
        handle = serve(exchange, port, api_key or DEFAULT_API_KEY, secret or DEFAULT_SECRET)
    except OSError as exc:
        raise OptionError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None

    market = exchange.market
    pace = f"one bar every {bar_seconds:g} s" if bar_seconds > 0 else "manual clock"
    typer.echo(f"local exchange on {handle.url}", nl=True)
    typer.echo(
        f"  {', '.join(sorted(market.series))} {market.timeframe} from {_utc(market.now_ms)}, {pace}"
    )
    typer.echo(f"  api key: {handle.api_key}" + ("" if secret else f"  secret: {handle.secret}"))
    typer.echo(f"  ledger: {handle.url}/qctl-sim/ledger   (Ctrl-C stops)")

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()
    typer.echo("stopped")


UrlOption = Annotated[
    str,
    typer.Option("--url", help="Base URL of a running `qctl sim serve`."),
]
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"


def _control(url: str, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    """Call one of the simulator's own endpoints; a refusal or no server is one line, exit 2."""
    import urllib.error
    import urllib.request

    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:  # noqa: S310 - a URL the user gave
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            detail = exc.reason
        raise OptionError(f"{url}{path}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OptionError(f"no local exchange at {url} ({reason})") from None


@sim_app.command("fault")
def fault_command(
    kind: Annotated[
        str,
        typer.Argument(
            help="http_429, http_418, http_5xx, timeout, drop_after_accept, reject_margin, reject_min_notional or duplicate_fill."
        ),
    ],
    count: Annotated[int, typer.Option("--count", "-n", help="How many requests it hits.")] = 1,
    path: Annotated[
        str | None, typer.Option("--path", help="Only requests whose path starts with this.")
    ] = None,
    seconds: Annotated[
        float | None, typer.Option("--seconds", help="timeout: how long the reply is held.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Queue a fault on a running local exchange and list the pending ones.

    Example:

      qctl sim fault timeout --count 1 --path /fapi/v1/order --seconds 12
    """
    payload: dict[str, Any] = {"kind": kind, "count": count}
    if path is not None:
        payload["path"] = path
    if seconds is not None:
        payload["seconds"] = seconds
    reply = _control(url, "POST", "/qctl-sim/fault", payload)
    for f in reply["pending"]:
        where = f["path"] or "any matching request"
        typer.echo(f"pending: {f['kind']} x{f['count']} on {where}")


@sim_app.command("ledger")
def ledger_command(url: UrlOption = DEFAULT_URL) -> None:
    """Print the local exchange's ledger as JSON (balance, positions, orders, fills).

    Example:

      qctl sim ledger --url http://127.0.0.1:8790
    """
    typer.echo(json.dumps(_control(url, "GET", "/qctl-sim/ledger"), indent=1))


@sim_app.command("advance")
def advance_command(
    bars: Annotated[int, typer.Argument(help="Bars to close now.", min=0)] = 1,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Close bars now (the only way time moves with --bar-seconds 0).

    Example:

      qctl sim advance 3
    """
    reply = _control(url, "POST", "/qctl-sim/advance", {"bars": bars})
    typer.echo(
        f"simulated time {_utc(reply['sim_time_ms'])}"
        + (" (end of data)" if reply["finished"] else "")
    )
