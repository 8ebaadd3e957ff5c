"""What several commands share: defaults, option parsing and the one error for a bad option value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_EQUITY_USDT = 10_000.0  # the demo account size; any positive amount works
DEFAULT_MODEL_DIR = Path("qctl_models")

# `--data` of every command that reads candles (backtest, train, models compare, policy publish)
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data",
        "-d",
        help="Candle folder (or a root with ohlcv/, funding/, mark/). "
        "Default: the real-data sample shipped with qctl.",
        show_default=False,
    ),
]


class OptionError(ValueError):
    """A command-line value the user must fix (shown as one line, exit code 2)."""


def parse_date_ms(text: str, flag: str) -> int:
    """`2026-03-01`, `2026-03-01T12:00` or with an offset/`Z` (UTC when none) to epoch milliseconds.

    A bad date is a usage error (click prints it with the usage line, exit code 2).
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{flag} {text!r} is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def split_names(values: str | list[str] | None) -> list[str]:
    """Names given comma-separated and/or as a repeated option, stripped, empties dropped."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else values
    return [name.strip() for v in items for name in v.split(",") if name.strip()]


def show_flags_as_flags() -> None:
    """Typer's rich help prints a value type after every option, flags included
    (`--write <bool>`, `--help <bool>`), though a flag takes no value; its plain-text help
    already leaves flags bare. Called once by the CLI, so every command, present and future,
    renders flags as flags. Idempotent; without the method (another typer) it does nothing."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_qctl_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and not self.count:
            return None
        return shown(self, ctx)

    display_type_rich._qctl_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
