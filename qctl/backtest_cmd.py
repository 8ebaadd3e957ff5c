"""`qctl backtest`: run a policy over recorded candles and report how it did."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from qctl.options import DEFAULT_EQUITY_USDT, DataDir, OptionError, parse_date_ms, split_names


def _json_number(value: object) -> object:
    """inf / NaN are not JSON numbers: write them as strings ("inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def backtest_command(
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            "-p",
            help="Policy file (StaticPolicy TOML). Default: the packaged legacy policy.",
            show_default=False,
        ),
    ] = None,
    data: DataDir = None,
    symbols: Annotated[
        str | None,
        typer.Option(
            "--symbols",
            "-s",
            help="Comma-separated symbols (BTC, BTCUSDT, BTC-USDT...). Default: all in --data.",
            show_default=False,
        ),
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Bar timeframe.")] = "1h",
    start: Annotated[
        str | None, typer.Option("--start", help="First bar (UTC date or date-time).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Bars before this time only (UTC, exclusive).")
    ] = None,
    equity: Annotated[
        float, typer.Option("--equity", help="Starting equity in USDT.")
    ] = DEFAULT_EQUITY_USDT,
    db: Annotated[
        str, typer.Option("--db", help="SQLite journal to write (':memory:' keeps none).")
    ] = "qctl.db",
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Also write a self-contained HTML report to this file."),
    ] = None,
    broker: Annotated[
        Path | None,
        typer.Option(
            "--broker",
            help="Venue TOML with taker_fee, maker_fee, slippage. Default: Binance USDT-M.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics as JSON instead of the report.")
    ] = False,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Run the AI policy of this model set (`qctl train --out`) instead of --policy.",
            show_default=False,
        ),
    ] = None,
    compare_with: Annotated[
        str | None,
        typer.Option(
            "--compare",
            help="`legacy,ai`: both policies on the same out-of-sample bars, side by side "
            "(models from --models, default qctl_models).",
            show_default=False,
        ),
    ] = None,
    holdout_symbols: Annotated[
        str | None,
        typer.Option(
            "--holdout-symbols",
            help="With --compare: trade only these symbols, which the models never saw.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Backtest a policy over recorded candles (with funding when present), journal every
    decision, order, fill, position, equity point and safety event, and print a report.

    Examples:

      qctl backtest                                    # legacy policy on the shipped sample

      qctl backtest --models qctl_models               # the AI policy

      qctl backtest --compare legacy,ai --holdout-symbols SOL,LINK
    """
    from engine.backtest import default_policy_path, run_backtest
    from engine.core.policy import StaticPolicy
    from engine.journal.store import MEMORY, Journal
    from engine.report import render_terminal, write_html
    from engine.venues.candle_files import load_market_data, sample_data_dir
    from engine.venues.simulated import BrokerConfig

    if compare_with is not None:
        _compare(compare_with, models, data, policy, symbols, holdout_symbols, equity, as_json)
        return
    if holdout_symbols is not None:
        raise OptionError("--holdout-symbols only applies with --compare legacy,ai")
    console = Console()
    if not equity > 0:
        raise OptionError(f"--equity must be a positive amount of USDT, got {equity:g}")
    start_ms = parse_date_ms(start, "--start") if start is not None else None
    end_ms = parse_date_ms(end, "--end") if end is not None else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise OptionError(f"--end {end} is not after --start {start}")
    wanted = split_names(symbols) or None
    data_dir = data if data is not None else sample_data_dir()
    md = load_market_data(
        data_dir, symbols=wanted, timeframe=timeframe, start_ms=start_ms, end_ms=end_ms
    )
    cfg = BrokerConfig.from_toml(broker)
    if models is not None:
        if policy is not None:
            raise OptionError("give --policy (a StaticPolicy TOML) or --models, not both")
        from models.policy import AIPolicy

        pol = AIPolicy.from_dir(
            models,
            funding={s: sd.funding for s, sd in md.symbols.items()},
            round_trip_cost=cfg.break_even_offset(),
        )
    else:
        pol = StaticPolicy.from_toml(policy if policy is not None else default_policy_path())

    journal = Journal(db if db != MEMORY else MEMORY)
    try:
        if console.is_terminal and not as_json:
            with Progress(
                TextColumn("backtest"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("bars"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("run", total=None)
                every = max(1, md.n_bars // len(md.symbols) // 200)

                def progress(done: int, total: int) -> None:
                    if done % every == 0 or done == total:
                        bar.update(task, completed=done, total=total)

                result = run_backtest(
                    md,
                    pol,
                    equity=equity,
                    broker_config=cfg,
                    journal=journal,
                    progress=progress,
                    data_source=str(data_dir),
                )
        else:
            result = run_backtest(
                md,
                pol,
                equity=equity,
                broker_config=cfg,
                journal=journal,
                data_source=str(data_dir),
            )
    finally:
        journal.close()

    if as_json:
        m = result.metrics
        payload = {
            "run_id": result.run_id,
            "policy": result.policy,
            "symbols": result.symbols,
            "metrics": {k: _json_number(getattr(m, k)) for k in m.__slots__},
            "skips": dict(result.stats.skips),
            "safety_events": dict(result.stats.safety_events),
            "exits": dict(result.stats.exits),
            "funding": result.has_funding,
            "notes": result.notes,
            "issues": [str(i) for i in result.issues],
            "journal": db,
        }
        typer.echo(json.dumps(payload, default=str, indent=1))
    else:
        render_terminal(result, console)
        if db != MEMORY:
            console.print(f"journal: {db} (run {result.run_id})", highlight=False)
    if report is not None:
        written = write_html(result, report)
        if not as_json:
            console.print(f"report: {written}", highlight=False)


def _compare(
    which: str,
    models: Path | None,
    data: Path | None,
    policy: Path | None,
    symbols: str | None,
    holdout: str | None,
    equity: float,
    as_json: bool,
) -> None:
    """`--compare legacy,ai`: the models' out-of-sample comparison (the same as `qctl models compare`)."""
    from qctl.models_cmd import compare_command
    from qctl.options import DEFAULT_MODEL_DIR

    names = {w.strip().lower() for w in which.split(",") if w.strip()}
    if names != {"legacy", "ai"}:
        raise OptionError(f"--compare takes `legacy,ai`, got {which!r}")
    split = split_names(symbols)
    held = split_names(holdout)
    compare_command(
        directory=models if models is not None else DEFAULT_MODEL_DIR,
        data=data,
        policy=policy,
        holdout_symbols=held or None,
        symbols=split or None,
        universe=None,
        equity=equity,
        as_json=as_json,
    )
