"""`qctl trade`: paper or live trading through ccxt, journaled like a backtest."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from qctl.options import OptionError, split_names

KEY_ENV, SECRET_ENV = "QCTL_API_KEY", "QCTL_API_SECRET"


def _credentials() -> tuple[str, str]:
    """API keys from the environment, else from the system keyring (service "qctl")."""
    key, secret = os.environ.get(KEY_ENV, ""), os.environ.get(SECRET_ENV, "")
    if key and secret:
        return key, secret
    try:
        import keyring  # optional: only when the user installed it

        key = key or keyring.get_password("qctl", "api_key") or ""
        secret = secret or keyring.get_password("qctl", "api_secret") or ""
    except Exception:  # noqa: BLE001 - no keyring, or no backend: the environment is the way
        pass
    return key, secret


def trade_command(
    paper: Annotated[
        bool, typer.Option("--paper", help="Live candles, simulated fills (no keys needed).")
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Real orders through ccxt (keys from the environment).")
    ] = False,
    symbols: Annotated[
        str, typer.Option("--symbols", "-s", help="Comma-separated symbols: BTC,ETH or BTC-USDT.")
    ] = "",
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Bar timeframe.")] = "1h",
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            "-p",
            help="StaticPolicy TOML. Default: the packaged legacy policy.",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Trade the AI policy of this model set instead of --policy.",
            show_default=False,
        ),
    ] = None,
    exchange: Annotated[
        str, typer.Option("--exchange", envvar="QCTL_EXCHANGE", help="ccxt exchange id.")
    ] = "binanceusdm",
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="Send every REST call to this base URL instead (the local "
            "exchange of `qctl sim serve`).",
            show_default=False,
        ),
    ] = None,
    equity: Annotated[
        float | None,
        typer.Option("--equity", help="Paper mode: starting balance in USDT.", show_default=False),
    ] = None,
    db: Annotated[str, typer.Option("--db", help="SQLite journal (the TUI reads it).")] = "qctl.db",
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log",
            help="Structured log (JSON lines). Default: the journal's name + .log",
            show_default=False,
        ),
    ] = None,
    max_bars: Annotated[
        int | None,
        typer.Option(
            "--max-bars", help="Stop cleanly after this many closed bars.", show_default=False
        ),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option("--poll-seconds", help="How often to ask the exchange for a new bar.")
    ] = 2.0,
    history_bars: Annotated[
        int, typer.Option("--history-bars", help="Closed bars loaded at start for the features.")
    ] = 500,
    new_run: Annotated[
        bool,
        typer.Option(
            "--new-run", help="Start a new run instead of resuming this journal's last one."
        ),
    ] = False,
) -> None:
    """Trade on a wall clock: one engine step per closed bar, the same policy, risk kernel, exit
    controller and journal as `qctl backtest`. Start-up recovers the journal's run and (live)
    reconciles it with the exchange; Ctrl-C or SIGTERM finishes the cycle and leaves the exchange's
    stop-loss / take-profit backstops in place.

    Examples:

      qctl trade --paper --symbols BTC,ETH --equity 10000                 # real candles, simulated fills

      qctl sim serve --port 8765 --bar-seconds 2 &                         # a local exchange

      QCTL_API_KEY=k QCTL_API_SECRET=s qctl trade --live --symbols BTC,ETH --api-url http://127.0.0.1:8765 --max-bars 20

      qctl tui --db qctl.db                                                # watch it (another pane)
    """
    from engine.trade import TradeSettings, json_logger

    if paper == live:
        raise OptionError("choose one of --paper or --live")
    mode = "paper" if paper else "live"
    names = split_names(symbols)
    if not names:
        raise OptionError("give the symbols to trade with --symbols (e.g. BTC,ETH)")
    from engine.core.bars import resolve_symbol

    wanted = [resolve_symbol(n) for n in names]
    key, secret = _credentials()
    if mode == "live" and not (key and secret):
        raise OptionError(
            f"live mode needs {KEY_ENV} and {SECRET_ENV} in the environment (or a keyring entry)"
        )
    settings = TradeSettings(
        mode=mode, symbols=wanted, timeframe=timeframe, exchange_id=exchange, api_url=api_url,
        history_bars=history_bars, max_bars=max_bars, poll_seconds=poll_seconds,
        equity=equity, new_run=new_run,
    )  # fmt: skip
    _check(settings)
    log = json_logger(str(log_file or f"{db}.log"), secrets=(key, secret))
    summary = asyncio.run(_run(settings, policy, models, db, key, secret, log))
    typer.echo(
        f"{summary.status}: run {summary.run_id}, {summary.bars} bar(s), {summary.entries} entr"
        f"{'y' if summary.entries == 1 else 'ies'}, equity {summary.equity:,.2f} USDT, state {summary.state}"
    )


def _check(settings: object) -> None:
    from engine.trade import TradeError

    try:
        settings.check()  # type: ignore[attr-defined]
    except TradeError as exc:
        raise OptionError(str(exc)) from None


async def _run(settings, policy_path, models_dir, db, key, secret, log):  # noqa: ANN001, ANN202
    from engine.backtest import default_policy_path
    from engine.core.policy import StaticPolicy
    from engine.journal.store import Journal
    from engine.trade import TradeError, TradeSession, scrub
    from engine.venues.ccxt_setup import make_exchange
    from engine.venues.simulated import BrokerConfig

    cfg = BrokerConfig.from_toml()
    if models_dir is not None:
        if policy_path is not None:
            raise OptionError("give --policy or --models, not both")
        from models.policy import AIPolicy

        pol = AIPolicy.from_dir(models_dir, round_trip_cost=cfg.break_even_offset())
    else:
        pol = StaticPolicy.from_toml(
            policy_path if policy_path is not None else default_policy_path()
        )
    exchange = make_exchange(settings.exchange_id, settings.api_url, key, secret, async_=True)
    journal = Journal(db)
    try:
        session = TradeSession(settings, pol, journal, exchange, broker_config=cfg, log=log)
        try:
            return await session.run()
        except TradeError:
            raise
        except Exception as exc:  # exchange or network trouble: one line, secrets scrubbed
            import ccxt

            if isinstance(exc, ccxt.BaseError):
                text = scrub(str(exc), (key, secret))
                raise TradeError(
                    f"exchange: {type(exc).__name__}: {text.splitlines()[0][:300]}"
                ) from None
            raise
    finally:
        await exchange.close()
        journal.close()
