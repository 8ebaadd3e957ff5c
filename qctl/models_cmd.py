"""`qctl models list|show`: what a model directory holds and whether the policy would use it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from qctl.options import (
    DEFAULT_EQUITY_USDT,
    DEFAULT_MODEL_DIR,
    DataDir,
    parse_date_ms,
    split_names,
)

models_app = typer.Typer(
    name="models",
    help="Inspect trained model sets (cards, metrics, validity, reports).\n\n"
    "Example: qctl models list --dir qctl_models",
    no_args_is_help=True,
)

ModelDir = Annotated[Path, typer.Option("--dir", help="The model directory (`qctl train --out`).")]


def _headline(card: dict) -> str:
    """The head's main validation metric ("" if the card does not hold a readable one)."""
    metrics = card.get("metrics", {})
    if not isinstance(metrics, dict):
        return ""
    keys = [k for k in ("auc", "pinball") if k in metrics]
    keys += [k for k in metrics if str(k).startswith("ndcg") and not str(k).endswith("random")]
    for key in keys:
        if isinstance(metrics[key], int | float):
            return f"{key} {metrics[key]:.4f}"
    return ""


@models_app.command("list")
def list_command(
    directory: ModelDir = DEFAULT_MODEL_DIR,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Check the set for data at this UTC date (default: now, as live trading would).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """One line per model with its headline validation metric, then whether the AI policy
    would use the set for data at --at (the same check the policy makes).

    Exit code 1 when the set would be refused (the AI policy then skips every trade).

    Example: qctl models list --dir qctl_models --at 2026-04-01
    """
    from models.errors import ModelMissingError
    from models.registry import list_models, set_verdict

    if not directory.is_dir():
        raise ModelMissingError(f"no model directory {directory}; run `qctl train` first")
    at_ms = (
        parse_date_ms(at, "--at") if at is not None else int(datetime.now(UTC).timestamp() * 1000)
    )
    rows = list_models(directory)
    verdict = set_verdict(directory, at_ms)
    cards = [card for _, card, _ in rows if card]
    console = Console()
    if cards:
        card = cards[0]
        window = card.get("training_window", {})
        if not isinstance(window, dict):
            window = {}
        console.print(
            f"set [bold]{escape(str(card.get('set_id', '?')))}[/] in {directory}: trained on "
            f"{escape(', '.join(map(str, card.get('symbols', []))))} from "
            f"{window.get('start', '?')} to {window.get('end', '?')}; valid for data until "
            f"{escape(str(card.get('valid_until', '?')))}",
            highlight=False,
        )
    table = Table()
    for column in ("model", "objective", "validation", "status"):
        table.add_column(column)
    for name, card, status in rows:
        card = card or {}
        table.add_row(
            name,
            str(card.get("objective", "?")),
            _headline(card),
            "[green]ok[/]" if status == "ok" else f"[red]{escape(status)}[/]",
        )
    console.print(table)
    when = at if at is not None else "now"
    if verdict == "ok":
        console.print(f"the AI policy would use this set for data at {when}", highlight=False)
        return
    console.print(f"[red]refused[/] for data at {when}: {escape(verdict)}", highlight=False)
    raise typer.Exit(1)


@models_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Model name, e.g. direction or favourable_t1.")],
    directory: ModelDir = DEFAULT_MODEL_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw card.")] = False,
) -> None:
    """The model's card: features and their hash, training window, data hash, metrics, outputs.

    Example: qctl models show direction --dir qctl_models --json
    """
    from models.errors import ModelMissingError
    from models.registry import HEAD_NAMES, read_card

    if name not in HEAD_NAMES:
        raise ModelMissingError(f"unknown model {name!r} (known: {', '.join(HEAD_NAMES)})")
    card = read_card(directory / f"{name}.json")
    if as_json:
        typer.echo(json.dumps(card, indent=2, sort_keys=True))
        return
    console = Console()
    table = Table(title=f"{name} ({directory})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    window = card["training_window"]
    rows = [
        ("objective", card.get("objective", "")),
        ("set", card["set_id"]),
        ("features", f"{len(card['features'])} — hash {card['feature_hash']}"),
        ("inputs", ", ".join(card["inputs"])),
        ("trained on", f"{', '.join(card.get('symbols', []))}"),
        ("held out", ", ".join(card.get("holdout_symbols", [])) or "-"),
        ("window", f"{window['start']} .. {window['end']} ({window.get('rows', '?')} rows)"),
        ("data hash", card["data_hash"]),
        ("created", card["created_at"]),
        ("valid until", card.get("valid_until", str(card["valid_until_ms"]))),
        ("qctl", card.get("qctl_version", "?")),
        ("seed", str(card.get("seed", "?"))),
        ("metrics", json.dumps(card["metrics"], sort_keys=True)),
        ("outputs", json.dumps(card["outputs"], sort_keys=True)),
        ("model sha256", card["model_sha256"]),
    ]
    for field, value in rows:
        table.add_row(field, value)
    console.print(table)


@models_app.command("compare")
def compare_command(
    directory: ModelDir = DEFAULT_MODEL_DIR,
    data: DataDir = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="The legacy StaticPolicy TOML. Default: the packaged legacy policy.",
            show_default=False,
        ),
    ] = None,
    holdout_symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--holdout-symbols",
            help="Trade only these symbols, which the models must never have seen.",
            show_default=False,
        ),
    ] = None,
    symbols: Annotated[
        list[str] | None,
        typer.Option("--symbols", help="Only these symbols.", show_default=False),
    ] = None,
    universe: Annotated[
        str | None,
        typer.Option(
            "--universe",
            help='Symbols the AI trades: a number or "auto" (default: models/defaults.toml).',
            show_default=False,
        ),
    ] = None,
    equity: Annotated[float, typer.Option("--equity", help="Starting equity in USDT.")] = (
        DEFAULT_EQUITY_USDT
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """AI versus legacy on the same bars, out of sample only (after the models' training end;
    with --holdout-symbols also on symbols they never saw), side by side.

    Example: qctl models compare --dir qctl_models --data ../shared/data --holdout-symbols AAVE,NEAR,SUI
    """
    from engine.backtest import default_policy_path
    from engine.venues.candle_files import sample_data_dir
    from models.compare import compare, metric_rows, render
    from models.policy import UniverseConfig

    universe_cfg = None
    if universe is not None:
        value = universe.strip().lower()
        universe_cfg = UniverseConfig.from_mapping(
            {"count": "auto" if value == "auto" else _count(value)}
        )
    console = Console()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("backtest", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"backtest {label}")

        result = compare(
            data if data is not None else sample_data_dir(),
            directory,
            policy if policy is not None else default_policy_path(),
            symbols=split_names(symbols) or None,
            holdout_symbols=split_names(holdout_symbols),
            equity=equity,
            universe=universe_cfg,
            progress=progress,
        )
    if as_json:
        payload = {
            "start_ms": result.start_ms,
            "end_ms": result.end_ms,
            "symbols": result.symbols,
            "model_set": result.model_set,
            "notes": result.notes,
            "runs": {
                run.label: {
                    "metrics": metric_rows(run),
                    "skips": dict(run.skips()),
                    "safety_events": dict(run.result.stats.safety_events),
                    "decisions": run.distribution(),
                }
                for run in result.runs
            },
        }
        typer.echo(json.dumps(payload, indent=1))
        return
    console.print(render(result))


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f'--universe must be a number or "auto", got {text!r}') from None


@models_app.command("report")
def report_command(
    directory: Annotated[Path, typer.Argument(help="The model directory (`qctl train --out`).")],
    html_file: Annotated[
        Path, typer.Option("--html", help="Where to write the self-contained HTML report.")
    ],
) -> None:
    """An HTML report of a model set: the entry rule and its validation figures, each
    walk-forward fold (AI, every signal, flat: net return, Sharpe, trades, costs, funding, and
    the running net return as a plot), calibration, edge map, feature importance, kill levels.

    Example: qctl models report qctl_models --html report.html
    """
    from models.report import write_report

    path = write_report(directory, html_file)
    Console().print(f"report written to {path}", highlight=False)
