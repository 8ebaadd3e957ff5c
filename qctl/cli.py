"""The `qctl` entry point: composes the command groups and maps known errors to exit codes."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from qctl import __version__
from qctl.audit_cmd import audit_command
from qctl.backtest_cmd import backtest_command
from qctl.ctl_cmd import ctl_app
from qctl.data_cmd import data_app
from qctl.migrate_cmd import migrate_app
from qctl.models_cmd import models_app
from qctl.options import show_flags_as_flags
from qctl.policy_cmd import policy_app
from qctl.sim_cmd import sim_app
from qctl.trade_cmd import trade_command
from qctl.train_cmd import train_command
from qctl.tui_cmd import tui_command
from qctl.verify_cmd import verify_command

show_flags_as_flags()  # flags take no value: no `<bool>` after them in help

app = typer.Typer(
    name="qctl",
    help=(
        "Take a crypto-futures trading system from hardcoded decisions to AI-decided parameters "
        "inside hard safety limits, and prove it.\n\n"
        "Start with `qctl audit PATH` to see the hardcoded trading values in a codebase.\n\n"
        "Examples:\n\n"
        "  qctl audit examples/legacy_trader          # what the demo bot hardcodes\n\n"
        "  qctl migrate plan examples/legacy_trader   # how qctl would rewrite it\n\n"
        "  qctl backtest                              # legacy policy, shipped sample"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("audit")(audit_command)
app.command("train")(train_command)
app.add_typer(models_app, name="models")
app.command("backtest")(backtest_command)
app.add_typer(migrate_app, name="migrate")
app.add_typer(policy_app, name="policy")
app.add_typer(data_app, name="data")
app.command("verify")(verify_command)
app.command("trade")(trade_command)
app.add_typer(ctl_app, name="ctl")
app.command("tui")(tui_command)
app.add_typer(sim_app, name="sim")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """qctl command line."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix: shown as one line, exit code 2, no traceback."""
    from audit.baseline import BaselineError
    from audit.config import ConfigError
    from engine.backtest import BacktestError
    from engine.core.bars import DataError
    from engine.core.policy import PolicyConfigError
    from engine.core.tiers import TiersError
    from engine.domain import LimitsError
    from engine.journal.store import JournalError
    from engine.policy_file import PolicyBuildError, PolicyFileError
    from engine.trade import TradeError
    from engine.venues.ccxt_feed import FeedError
    from engine.venues.simulated import BrokerConfigError
    from migrations.errors import MigrateError
    from models.errors import (
        CompareError,
        ModelError,
        TrainConfigError,
        TrainDataError,
        UniverseConfigError,
    )
    from qctl.options import OptionError

    return (
        (ConfigError, BaselineError, ModelError, TrainConfigError, TrainDataError)
        + (BacktestError, OptionError, BrokerConfigError, DataError, JournalError)
        + (LimitsError, PolicyConfigError, TiersError, MigrateError)
        + (PolicyBuildError, PolicyFileError)
        + (CompareError, UniverseConfigError, FeedError, TradeError)
    )


def main() -> None:
    """Run the CLI. Usage errors exit 2 (click prints them); user errors print one line and exit 2."""
    err = Console(stderr=True, soft_wrap=True)  # one error, one line, whatever the width
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        # the error classes are imported only when something failed: `--help` stays fast
        if not isinstance(exc, _user_errors()):
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
