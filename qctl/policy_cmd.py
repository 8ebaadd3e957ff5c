"""`qctl policy`: publish the policy file that migrated code reads, and check one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qctl.options import DEFAULT_EQUITY_USDT, DataDir, OptionError, parse_date_ms, split_names

MS_PER_HOUR = 3_600_000
DEFAULT_VALID_HOURS = 24.0

policy_app = typer.Typer(
    name="policy",
    help=(
        "Publish the policy file (`qctl.policy/v1` JSON) that migrated code reads, or check one.\n\n"
        "Examples:\n\n"
        "  qctl policy publish --models qctl_models\n\n"
        "  qctl policy check qctl_policy.json"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


_HEADERS = {
    "leverage": "lev x",
    "size_pct": "size %",
    "stop_loss_pct": "SL %",
    "take_profit_pct": "TP %",
    "harvest_t1_r": "T1 R",
    "harvest_t2_r": "T2 R",
    "harvest_t3_r": "T3 R",
    "harvest_lock_r": "lock R",
    "harvest_t1_close_frac": "T1 close",
    "harvest_t2_close_frac": "T2 close",
    "kill_threshold": "kill",
    "kill_reduce_threshold": "reduce at",
    "kill_reduce_frac": "reduce",
    "max_hold_sec": "max hold s",
}


# the per-symbol values in narrow tables, by key prefix (one wide table does not fit a terminal)
_GROUPS = (
    ("entry", ("leverage", "size_pct", "stop_loss_pct", "take_profit_pct")),
    ("harvest", ("harvest_",)),
    ("kill and time exit", ("kill_", "max_hold")),
)


def _cell(key: str, v: float | None) -> str:
    if v is None:
        return "-"
    if key.endswith("_pct"):
        return f"{v * 100:.2f}"
    return f"{v:.0f}" if key.endswith("_sec") else f"{v:.3g}"


def _symbols_tables(doc: dict) -> list[Table]:
    from engine.policy_file import SYMBOL_KEYS

    groups = [(t, tuple(k for k in SYMBOL_KEYS if k.startswith(p))) for t, p in _GROUPS]
    shown = {k for _, keys in groups for k in keys}
    groups.append(("other", tuple(k for k in SYMBOL_KEYS if k not in shown)))
    tables = []
    for title, keys in groups:
        if not keys:
            continue
        if not tables:
            title = f"policy {doc['version']} ({doc['source']['kind']}): {title}"
        table = Table(title=title)
        table.add_column("symbol", no_wrap=True)
        for key in keys:
            table.add_column(_HEADERS.get(key, key), justify="right")
        for name, values in doc["symbols"].items():
            table.add_row(name, *(_cell(key, values.get(key)) for key in keys))
        tables.append(table)
    return tables


@policy_app.command("publish")
def publish_command(
    models: Annotated[
        Path | None,
        typer.Option("--models", help="Model directory (`qctl train --out`): publish AIPolicy."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="StaticPolicy TOML (the legacy values): publish those."),
    ] = None,
    data: DataDir = None,
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", help="Comma-separated symbols. Default: all in --data."),
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Bar timeframe.")] = "1h",
    end: Annotated[
        str | None,
        typer.Option(
            "--end", help="Decide as of this UTC time: bars before it only (default: all bars)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="File to write. Default: $QCTL_POLICY_FILE or ./qctl_policy.json.",
            show_default=False,
        ),
    ] = None,
    valid_for: Annotated[
        float, typer.Option("--valid-for", help="Hours the file stays valid.")
    ] = DEFAULT_VALID_HOURS,
    equity: Annotated[
        float,
        typer.Option("--equity", help="Account equity in USDT (StaticPolicy sizes against it)."),
    ] = DEFAULT_EQUITY_USDT,
    broker: Annotated[
        Path | None,
        typer.Option(
            "--broker",
            help="Venue TOML (fees, slippage) AIPolicy weighs its edge against. "
            "Default: Binance USDT-M.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the document as JSON.")] = False,
) -> None:
    """Run a policy on the latest bar of the data and write what it decided per symbol.

    With `--models` the AIPolicy of that model set decides; with `--policy` the StaticPolicy of a
    legacy TOML (at its latest refresh bar). A symbol the policy skips is left out of the file
    (its reason is listed under source.omitted): readers skip it, fail closed.

    Examples:

      qctl policy publish --models qctl_models --out qctl_policy.json

      qctl policy publish --policy legacy.toml --valid-for 6 --json
    """
    from engine.core.policy import StaticPolicy
    from engine.core.tiers import LeverageTiers
    from engine.domain import Portfolio, SafetyLimits
    from engine.policy_file import (
        default_policy_path,
        latest_snapshot,
        policy_document,
        write_policy_file,
    )
    from engine.venues.candle_files import load_market_data, sample_data_dir
    from engine.venues.simulated import BrokerConfig

    if (models is None) == (policy is None):
        raise OptionError("give exactly one of --models DIR (AIPolicy) or --policy TOML")
    if not valid_for > 0:
        raise OptionError(f"--valid-for must be a positive number of hours, got {valid_for:g}")
    if not equity > 0:
        raise OptionError(f"--equity must be a positive amount of USDT, got {equity:g}")
    console = Console()
    source = data if data is not None else sample_data_dir()
    wanted = split_names(symbols) or None
    end_ms = parse_date_ms(end, "--end") if end is not None else None
    md = load_market_data(source, symbols=wanted, timeframe=timeframe, end_ms=end_ms)
    limits = SafetyLimits()
    if models is not None:
        from models.policy import AIPolicy

        pol = AIPolicy.from_dir(
            models,
            limits,
            tiers=LeverageTiers.load(),
            funding={s: sd.funding for s, sd in md.symbols.items()},
            round_trip_cost=BrokerConfig.from_toml(broker).break_even_offset(),
        )
        if pol.error is not None:
            console.print(f"[yellow]models refused:[/] {pol.error}", highlight=False)
    else:
        assert policy is not None
        pol = StaticPolicy.from_toml(policy)
    snapshot = latest_snapshot(md, pol)
    doc = policy_document(
        pol,
        snapshot,
        Portfolio(wallet_balance=float(equity)),
        valid_for_ms=int(valid_for * MS_PER_HOUR),
        limits=limits,
    )
    target = out if out is not None else default_policy_path()
    write_policy_file(doc, target)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    if doc["symbols"]:
        for table in _symbols_tables(doc):
            console.print(table)
    else:
        console.print("[yellow]the policy decided no symbol: every reader will skip[/]")
    for name, reason in doc["source"].get("omitted", {}).items():
        console.print(f"  left out {name}: {reason}", highlight=False)
    console.print(
        f"wrote {target}: {len(doc['symbols'])} symbol(s), as of {doc['source']['as_of']}, "
        f"valid until {doc['valid_until']}, hash {doc['hash'][:12]}",
        highlight=False,
    )


@policy_app.command("check")
def check_command(
    file: Annotated[Path, typer.Argument(help="Policy file (JSON) or StaticPolicy TOML to check.")],
    now: Annotated[
        str | None,
        typer.Option("--now", help="Judge staleness at this UTC time (2026-11-25T14:00:00Z)."),
    ] = None,
    equity: Annotated[
        float,
        typer.Option(
            "--equity", help="TOML: account equity in USDT its fixed notional sizes against."
        ),
    ] = DEFAULT_EQUITY_USDT,
    strict: Annotated[
        bool, typer.Option("--strict", help="A TOML policy that can never trade fails (exit 1).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate a policy file: schema, hash, staleness and bounds (limits and autonomy zone).

    A StaticPolicy TOML (`*.toml`): every value inside the autonomy zone, and whether it can
    trade at all at `--equity` (said in one line; a failure with `--strict`).

    Exit codes: 0 valid, 1 refused (every problem is listed), 2 usage error.

    Examples:

      qctl policy check qctl_policy.json

      qctl policy check qctl_policy.json --now 2026-11-25T14:00:00Z --json

      qctl policy check examples/legacy_policy.toml --equity 300 --strict
    """
    from engine.policy_file import PolicyFileError, check_document, now_ms, parse_utc, read_document

    if file.suffix == ".toml":
        _check_toml(file, equity, strict, as_json)
        return
    try:
        at = parse_utc(now) if now is not None else now_ms()
    except ValueError as exc:
        raise OptionError(f"--now: {exc}") from None
    try:
        doc = read_document(file)
        problems = [str(p) for p in check_document(doc, now=at)]
    except PolicyFileError as exc:
        doc, problems = None, [str(exc)]
    if as_json:
        payload = {
            "file": str(file),
            "valid": not problems,
            "problems": problems,
            "version": doc.get("version") if isinstance(doc, dict) else None,
        }
        typer.echo(json.dumps(payload, indent=1))
    else:
        console = Console()
        if problems:
            console.print(
                f"[bold red]refused[/] {file}: {len(problems)} problem(s)", highlight=False
            )
            for p in problems:
                console.print(f"  {p}", highlight=False)
        else:
            assert doc is not None
            console.print(
                f"[green]valid[/] {file}: policy {doc['version']}, {len(doc['symbols'])} "
                f"symbol(s), valid until {doc['valid_until']}",
                highlight=False,
            )
    raise typer.Exit(1 if problems else 0)


def _check_toml(file: Path, equity: float, strict: bool, as_json: bool) -> None:
    """`policy check` of a StaticPolicy TOML: loads (every value checked), then can it trade."""
    from engine.core.policy import PolicyConfigError, StaticPolicy
    from engine.policy_file import never_trades

    if not equity > 0:
        raise OptionError(f"--equity must be a positive amount of USDT, got {equity:g}")
    if not file.is_file():
        raise OptionError(f"policy file {file} does not exist")
    try:
        policy = StaticPolicy.from_toml(file)
        problems, idle = [], never_trades(policy, equity)
    except PolicyConfigError as exc:
        problems, idle = [str(exc)], None
    failed = bool(problems) or (strict and idle is not None)
    if as_json:
        payload = {"file": str(file), "valid": not problems, "problems": problems,
                   "never_trades": idle}  # fmt: skip
        typer.echo(json.dumps(payload, indent=1))
    elif problems:
        Console().print(f"[bold red]refused[/] {escape(problems[0])}", highlight=False)
    elif idle is not None:
        Console().print(f"[yellow]never trades[/] {escape(idle)}", highlight=False)
    else:
        Console().print(
            f"[green]valid[/] {file}: StaticPolicy {policy.name}, every value inside the "
            f"autonomy zone, trades at {equity:g} USDT",
            highlight=False,
        )
    raise typer.Exit(1 if failed else 0)


@policy_app.command("seal")
def seal_command(
    file: Annotated[Path, typer.Argument(help="Hand-edited policy file to re-seal in place.")],
) -> None:
    """Recompute `version` and `hash` after editing a policy file by hand (it must be valid).

    Example:

      qctl policy seal qctl_policy.json
    """
    from engine.policy_file import read_document, seal, write_policy_file

    doc = seal(read_document(file))
    write_policy_file(doc, file)
    Console().print(f"sealed {file}: version {doc['version']}, hash {doc['hash'][:12]}")
