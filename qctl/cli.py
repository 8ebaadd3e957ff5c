"""The `qctl` entry point: composes the command groups and maps known errors to exit codes.

A command's module is imported only when that command runs or shows its own help: the root
`qctl --help` lists every command from the short summaries below without importing numpy,
libcst, LightGBM, ccxt or Textual behind them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from qctl.options import show_flags_as_flags

show_flags_as_flags()  # flags take no value: no `<bool>` after them in help

MARKUP = "markdown"


@dataclass(frozen=True)
class Entry:
    """Where a subcommand lives and the one line the root's help shows for it."""

    module: str
    attr: str  # a command function, or a typer.Typer group
    summary: str


# the order of the root's help screen: commands first, then groups (typer's own order)
COMMANDS: dict[str, Entry] = {
    "audit": Entry(
        "qctl.audit_cmd",
        "audit_command",
        "Find literal values that make a trading decision: leverage, size, symbol lists and "
        "weights, harvest R-thresholds, kill-score thresholds, SL/TP distances, hidden "
        "fallbacks, secrets.",
    ),
    "train": Entry(
        "qctl.train_cmd",
        "train_command",
        "Train the five LightGBM heads (universe, direction, adverse, favourable, kill).",
    ),
    "backtest": Entry(
        "qctl.backtest_cmd",
        "backtest_command",
        "Backtest a policy over recorded candles (with funding when present), journal every "
        "decision, order, fill, position, equity point and safety event, and print a report.",
    ),
    "verify": Entry(
        "qctl.verify_cmd",
        "verify_command",
        "Run the CI safety checks and exit 0 (all pass), 1 (a check failed) or 2 (usage/config).",
    ),
    "trade": Entry(
        "qctl.trade_cmd",
        "trade_command",
        "Trade on a wall clock: one engine step per closed bar, the same policy, risk kernel, "
        "exit controller and journal as `qctl backtest`. Start-up recovers the journal's run "
        "and (live) reconciles it with the exchange; Ctrl-C or SIGTERM finishes the cycle and "
        "leaves the exchange's stop-loss / take-profit backstops in place.",
    ),
    "tui": Entry(
        "qctl.tui_cmd",
        "tui_command",
        "Monitor a run live (a running `qctl trade` or a finished backtest): positions with "
        "unrealised PnL and distance to stop and liquidation, AI decisions with reasons, "
        "safety-limit gauges, the engine's state and heartbeat, equity.",
    ),
    "models": Entry(
        "qctl.models_cmd",
        "models_app",
        "Inspect trained model sets (cards, metrics, validity, reports).",
    ),
    "migrate": Entry(
        "qctl.migrate_cmd",
        "migrate_app",
        "Replace hardcoded trading values with fail-closed policy look-ups, in phases: "
        "1 sizing, 2 universe, 3 harvest, 4 kill.",
    ),
    "policy": Entry(
        "qctl.policy_cmd",
        "policy_app",
        "Publish the policy file (`qctl.policy/v1` JSON) that migrated code reads, or check one.",
    ),
    "data": Entry(
        "qctl.data_cmd",
        "data_app",
        "Fetch market data into a local cache that `qctl backtest` and `qctl train` read.",
    ),
    "ctl": Entry(
        "qctl.ctl_cmd",
        "ctl_app",
        "Send a control to the `qctl trade` writing a journal: the engine acts on it at its next "
        "cycle and journals the result.",
    ),
    "sim": Entry(
        "qctl.sim_cmd",
        "sim_app",
        "A local exchange (127.0.0.1 only) that replays recorded candles and speaks the Binance "
        "USD-M REST subset ccxt uses.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the module behind `name` and build its click command (a group for a sub-app)."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attr)
    # built under a stand-in root, as `app.command` / `app.add_typer` would have built it:
    # the same markup mode and help for every level
    holder = typer.Typer(rich_markup_mode=MARKUP, add_completion=False)
    holder.callback()(_no_op)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


def _no_op() -> None:
    """Makes a stand-in root a group (typer builds a lone command otherwise)."""


class _LazyCommands(MutableMapping[str, click.Command]):
    """The root's subcommands by name; each is built on first look-up and then kept."""

    def __init__(self, eager: Mapping[str, click.Command]) -> None:
        self._built: dict[str, click.Command] = dict(eager)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = load_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (n for n in self._built if n not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))


class LazyGroup(TyperGroup):
    """The root group: lists every command from `COMMANDS`, imports one only to run it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands(self.commands)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing and cmd_name in COMMANDS:
            # the root's help needs a name and a line, not the command: nothing is imported
            return click.Command(cmd_name, help=COMMANDS[cmd_name].summary)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="qctl",
    cls=LazyGroup,
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
    rich_markup_mode=MARKUP,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from qctl import __version__

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
