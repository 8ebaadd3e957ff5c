"""`qctl tui`: open the Textual monitor over a journal (Textual is imported only when run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def tui_command(
    db: Annotated[
        Path, typer.Option("--db", help="Journal to monitor (SQLite file written by a run).")
    ] = Path("qctl.db"),
    run: Annotated[
        str | None,
        typer.Option("--run", help="Run ID to show. Default: the latest run.", show_default=False),
    ] = None,
    refresh: Annotated[
        float, typer.Option("--refresh", min=0.1, help="Seconds between journal reads.")
    ] = 2.0,
    stale: Annotated[
        float | None,
        typer.Option(
            "--stale",
            min=1.0,
            help="Seconds after which the engine's heartbeat shows stale (red). Default: the "
            "journal's own limit, or two bars when the run writes no heartbeat.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Monitor a run live (a running `qctl trade` or a finished backtest): positions with
    unrealised PnL and distance to stop and liquidation, AI decisions with reasons, safety-limit
    gauges, the engine's state and heartbeat, equity.

    Keys: p pause, r resume, f flatten the selected position, F flatten all, h halt (flatten and
    halt ask to confirm), 1/2/3 tabs on a small terminal, q quit. The monitor reads the journal
    read-only; controls are queued in its control table for the engine to act on, and refused
    for a run that is no longer running.

    Examples:

      qctl tui                                  # the latest run of ./qctl.db

      qctl tui --db live.db --refresh 1         # follow `qctl trade --db live.db` in tmux
    """
    from tui.data import check_journal

    check_journal(db, run)  # a missing file, a foreign file or an unknown run stop here, one line

    from tui.app import MonitorApp

    # without --run the monitor follows the latest run, so a run started later shows up
    MonitorApp(db, run_id=run, refresh_seconds=refresh, stale_seconds=stale).run()
