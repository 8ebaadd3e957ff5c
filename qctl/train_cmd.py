"""`qctl train`: walk-forward training of the five model heads into a model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from qctl.options import DEFAULT_MODEL_DIR, DataDir, parse_date_ms, split_names


def train_command(
    data: DataDir = None,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the models and their cards.")
    ] = DEFAULT_MODEL_DIR,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: the config's).")
    ] = None,
    holdout_symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--holdout-symbols",
            help="Symbols never trained on (repeat or comma-separate), kept for the comparison.",
            show_default=False,
        ),
    ] = None,
    train_end: Annotated[
        str | None,
        typer.Option(
            "--train-end",
            help="Train only on data before this UTC date (default: keep the last "
            "holdout_fraction of the timeline out).",
            show_default=False,
        ),
    ] = None,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols", help="Only these symbols (default: all in --data).", show_default=False
        ),
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candle timeframe.")] = "1h",
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file with a [train] table of hyper-parameters."),
    ] = None,
) -> None:
    """Train the five LightGBM heads (universe, direction, adverse, favourable, kill).

    Walk-forward with a purge gap, deterministic for a seed; writes LightGBM text models and
    JSON cards to --out and prints the validation metrics of each head.
    """
    from engine.core.bars import resolve_symbol
    from engine.venues.candle_files import load_market_data, sample_data_dir
    from models.config import TrainConfig
    from models.train import count_steps, train_models

    console = Console()
    cfg = TrainConfig.from_toml(config) if config is not None else TrainConfig.defaults()
    if seed is not None:
        cfg = TrainConfig.from_mapping({"seed": seed}, base=cfg)
    end_ms = parse_date_ms(train_end, "--train-end") if train_end is not None else None
    source = data if data is not None else sample_data_dir()
    market = load_market_data(source, symbols=split_names(symbols) or None, timeframe=timeframe)
    for issue in market.issues:
        if issue.severity != "info":
            console.print(f"[yellow]data:[/] {issue}")
    held = [resolve_symbol(s, market.symbols) for s in split_names(holdout_symbols)]
    candles = {s: d.candles for s, d in market.symbols.items()}
    funding = {s: d.funding for s, d in market.symbols.items()}

    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=count_steps(cfg))
        result = train_models(
            candles,
            funding,
            out,
            cfg,
            holdout_symbols=held,
            train_end_ms=end_ms,
            progress=lambda step: progress.update(task, advance=1, description=step),
        )
    console.print(render_training(result.cards))
    card = result.cards["direction"]
    console.print(
        f"model set [bold]{result.set_id}[/] written to {out} — trained on "
        f"{', '.join(card['symbols'])} from {card['training_window']['start']} to "
        f"{card['training_window']['end']}; valid for data until {card['valid_until']}"
    )


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def render_training(cards: dict[str, dict]) -> Table:
    """Validation metrics and decision outputs of every head of a model set."""
    table = Table(title="validation (walk-forward, out of fold)")
    table.add_column("head")
    table.add_column("metrics")
    table.add_column("outputs")
    for name, card in cards.items():
        table.add_row(name, _fmt(card["metrics"]), _fmt(card["outputs"]))
    return table
