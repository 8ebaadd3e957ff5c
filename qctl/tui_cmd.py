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
) -> None:
    """Monitor a run live: positions, AI decisions with reasons, safety-limit gauges, equity.

    Keys: p pause, r resume, f flatten (asks to confirm), q quit. The monitor reads the journal
    read-only; pause / resume / flatten are queued in its control table for the engine to act on.
    """
    from tui.data import check_journal

    check_journal(db, run)  # a missing file, a foreign file or an unknown run stop here, one line

    from tui.app import MonitorApp

    # without --run the monitor follows the latest run, so a run started later shows up
    MonitorApp(db, run_id=run, refresh_seconds=refresh).run()
