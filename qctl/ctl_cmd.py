"""`qctl ctl`: operator controls for a running `qctl trade` (queued in its journal's control table)."""

from __future__ import annotations

from typing import Annotated

import typer

from qctl.options import OptionError

ctl_app = typer.Typer(
    help=(
        "Send a control to the `qctl trade` writing a journal: the engine acts on it at its next "
        "cycle and journals the result.\n\n"
        "Example: `qctl ctl pause --db qctl.db`, then `qctl ctl flatten BTC-USDT --db qctl.db`."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

Db = Annotated[str, typer.Option("--db", help="The journal `qctl trade` writes.")]


def _send(db: str, command: str, symbol: str | None = None) -> None:
    from engine.journal.store import Journal, JournalError, request_control, run_liveness

    try:
        with Journal.open_readonly(db) as journal:
            runs = journal.runs()
    except JournalError as exc:
        raise OptionError(str(exc)) from None
    live = [r for r in runs if r["mode"] in ("paper", "live")]
    state = run_liveness(live[-1]) if live else ""
    if state not in ("running", "unknown"):  # unknown: written on another host, may be alive
        latest = f" (latest paper/live run {live[-1]['id']} is {state})" if live else ""
        raise OptionError(
            f"no running `qctl trade` in {db}{latest}: nothing would act on the {command}"
        )
    run_id = live[-1]["id"]
    request_id = request_control(db, command, symbol, source="qctl ctl", run_id=run_id)
    what = f"{command} {symbol}" if symbol else command
    typer.echo(f"queued {what} for run {run_id} (control #{request_id})")


@ctl_app.command("pause")
def pause_command(db: Db = "qctl.db") -> None:
    """No new entries (state REDUCING); open positions keep their exits.

    Example: `qctl ctl pause --db qctl.db`
    """
    _send(db, "pause")


@ctl_app.command("resume")
def resume_command(db: Db = "qctl.db") -> None:
    """Back to ACTIVE after a pause or a flatten.

    Example: `qctl ctl resume --db qctl.db`
    """
    _send(db, "resume")


@ctl_app.command("flatten")
def flatten_command(
    symbol: Annotated[
        str | None, typer.Argument(help="Close only this symbol's position (BTC-USDT).")
    ] = None,
    db: Db = "qctl.db",
) -> None:
    """Close one position, or all of them (then REDUCING), through the exit controller.

    Examples: `qctl ctl flatten --db qctl.db` (all), `qctl ctl flatten ETH-USDT --db qctl.db`
    """
    if symbol is not None:
        from engine.core.bars import resolve_symbol

        symbol = resolve_symbol(symbol)
    _send(db, "flatten", symbol)


@ctl_app.command("halt")
def halt_command(db: Db = "qctl.db") -> None:
    """HALTED: nothing new is sent; the exchange's backstops stay in place.

    Example: `qctl ctl halt --db qctl.db`
    """
    _send(db, "halt")
