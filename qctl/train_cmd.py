"""`qctl train`: walk-forward training of the five model heads into a model directory."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from qctl.options import DEFAULT_MODEL_DIR, DataDir, OptionError, parse_date_ms, split_names


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
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            help='Run the fold jobs on Dask: "local" (a LocalCluster of worker processes) or '
            "a scheduler address such as tcp://10.0.0.5:8786. Same seed, same models.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes of --dask local (default: the CPU count).",
            show_default=False,
        ),
    ] = None,
    walk_forward: Annotated[
        int | None,
        typer.Option(
            "--walk-forward",
            min=1,
            help="Also run a walk-forward of N test blocks through the engine: per block, models "
            "trained only before it, AI against the legacy policy and flat (return, Sharpe, "
            "drawdown, trades, fees, funding); written to OUT/walkforward.json for "
            "`qctl models report`. With --sweep, each block chooses its configuration on "
            "validation folds before it.",
            show_default=False,
        ),
    ] = None,
    sweep: Annotated[
        Path | None,
        typer.Option(
            "--sweep",
            help="TOML file of parameters and values to try (grid or random); the one with the "
            "best validation net Sharpe is trained. Results also go to OUT/sweep.json.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train the five LightGBM heads (universe, direction, adverse, favourable, kill).

    Walk-forward with a purge and an embargo, deterministic for a seed, every decision value
    chosen on validation net of the venue's costs; writes LightGBM text models and sealed JSON
    cards to --out and prints the validation metrics of each head.

    Examples:

      qctl train --data ../shared/data --out qctl_models --holdout-symbols AAVE,NEAR,SUI

      qctl train --data ../shared/data --sweep sweep.toml --dask local --workers 4

      qctl train --data ../shared/data/history --dask tcp://10.0.0.5:8786

      qctl train --data ../shared/data/history --walk-forward 6 --out qctl_models
    """
    from engine.core.bars import resolve_symbol
    from engine.venues.candle_files import load_market_data, sample_data_dir
    from models.config import TrainConfig
    from models.sweep import SweepSpec
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

    if workers is not None and dask != "local":
        raise OptionError("--workers goes with --dask local")
    spec = SweepSpec.from_toml(sweep) if sweep is not None else None
    with ExitStack() as stack:
        runner = None
        if dask is not None:
            from models.jobs import DaskRunner

            runner = stack.enter_context(DaskRunner(dask, workers))
        base_cfg = cfg  # the walk-forward's folds run the sweep again, each on its own past
        if spec is not None:
            cfg = _run_sweep(console, spec, cfg, candles, funding, held, end_ms, runner, out)
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
                runner=runner,
            )
        console.print(render_training(result.cards))
        card = result.cards["direction"]
        console.print(
            f"model set [bold]{result.set_id}[/] written to {out} — trained on "
            f"{', '.join(card['symbols'])} from {card['training_window']['start']} to "
            f"{card['training_window']['end']}; valid for data until {card['valid_until']}"
        )
        if walk_forward is not None:
            _run_walk_forward(
                console, market, base_cfg, walk_forward, runner, out, str(source), result.set_id,
                spec,
            )  # fmt: skip


def _run_walk_forward(
    console, market, cfg, folds: int, runner, out: Path, source: str, set_id: str, sweep
) -> None:
    """The walk-forward through the engine; prints its table and writes OUT/walkforward.json."""
    import json

    from engine.backtest import default_policy_path
    from models.walkforward import RESULT_FILE, WalkForwardConfig, walk_forward
    from qctl.options import DEFAULT_EQUITY_USDT

    wf = WalkForwardConfig.from_mapping({"folds": folds})
    with _jobs_bar(console, "walk-forward") as progress:
        task = progress.add_task("", total=folds)
        result = walk_forward(
            market,
            default_policy_path(),
            cfg,
            wf,
            equity=DEFAULT_EQUITY_USDT,
            runner=runner,
            done=lambda _: progress.update(task, advance=1),
            source=source,
            sweep=sweep,
        )
    result["model_set"] = set_id  # the set trained with the same configuration and data
    (out / RESULT_FILE).write_text(json.dumps(result, indent=1))
    console.print(render_walk_forward(result))
    console.print(f"walk-forward written to {out / RESULT_FILE}")


def render_walk_forward(result: dict) -> Table:
    """Per fold: legacy, AI and flat through the engine, on bars the fold's models never saw."""
    from rich import box

    table = Table(
        title="walk-forward through the engine (test blocks never trained on)", box=box.SIMPLE_HEAD
    )
    for column in ("fold", "policy", "return", "Sharpe", "max DD", "trades", "fees", "funding",
                   "breach"):  # fmt: skip
        table.add_column(
            column,
            no_wrap=True,
            min_width=len(column),
            justify="left" if column == "policy" else "right",
        )
    for f in result["folds"]:
        for label in ("legacy", "ai", "flat"):
            if label == "flat":
                table.add_row(str(f["fold"] + 1), "flat", "+0.00 %", "-", "0.00 %", "0", "0",
                              "0", "0", end_section=True)  # fmt: skip
                continue
            r = f["runs"][label]
            sharpe = "-" if r["sharpe"] is None else f"{r['sharpe']:.2f}"
            table.add_row(
                str(f["fold"] + 1), label, f"{r['total_return'] * 100:+.2f} %", sharpe,
                f"{r['max_drawdown'] * 100:.2f} %", str(r["trades"]), f"{r['fees']:,.0f}",
                f"{r['funding']:,.0f}", str(r["limit_breaches"]),
            )  # fmt: skip
    s = result["summary"]
    blocks = "; ".join(
        f"{f['fold'] + 1}: {f['start'][:10]} .. {f['end'][:10]}" for f in result["folds"]
    )
    table.caption = (
        f"test blocks (UTC) {blocks}. Fees and funding in USDT. AI Sharpe above legacy's in "
        f"{s['ai_sharpe_above_legacy']} of {s['folds']} folds (no trades = Sharpe 0); compounded: "
        f"legacy {s['legacy']['compounded_return'] * 100:+.2f} %, "
        f"AI {s['ai']['compounded_return'] * 100:+.2f} %"
    )
    return table


def _jobs_bar(console: Console, label: str) -> Progress:
    """A transient bar of jobs done (folds, blocks, configurations) with the time so far."""
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )  # fmt: skip


def _run_sweep(console, spec, base, candles, funding, held, end_ms, runner, out: Path):
    """Score the sweep's configurations (progress bar), print and save the table; the best."""
    import json

    from engine.venues.simulated import BrokerConfig
    from models.sweep import count_jobs, run_sweep

    with _jobs_bar(console, "sweep") as progress:
        task = progress.add_task("", total=count_jobs(spec, base))
        best, rows = run_sweep(
            candles,
            funding,
            spec,
            base,
            BrokerConfig.from_toml().break_even_offset(),
            holdout_symbols=held,
            train_end_ms=end_ms,
            runner=runner,
            done=lambda _: progress.update(task, advance=1),
        )
    table = Table(title="sweep: validation net Sharpe per trade (0: no trades)")
    for column in ("#", *spec.params, "net Sharpe", "trades", "entry level", "auc"):
        table.add_column(column)
    for i, row in enumerate(rows):
        entry = row.entry or {}
        table.add_row(
            str(i + 1),
            *(_fmt(row.changes[k]) for k in spec.params),
            f"{row.score:.4f}",
            str(entry.get("trades", 0)),
            _fmt(entry.get("min_confidence", "-")),
            f"{row.auc:.4f}",
        )
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    payload = [{"params": r.changes, "net_sharpe": r.score, "entry": r.entry} for r in rows]
    (out / "sweep.json").write_text(json.dumps(payload, indent=1, default=str))
    chosen = {k: getattr(best, k) for k in spec.params}
    console.print(f"best: {', '.join(f'{k}={_fmt(v)}' for k, v in chosen.items())}")
    return best


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
