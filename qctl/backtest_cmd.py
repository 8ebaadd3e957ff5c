"""`qctl backtest`: run a policy over recorded candles and report how it did."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from qctl.options import DEFAULT_EQUITY_USDT, DataDir, OptionError, parse_date_ms, split_names

if TYPE_CHECKING:
    from engine.backtest import BacktestInputs
    from engine.core.policy import Policy


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
        bool,
        typer.Option(
            "--json", help="Print the numbers as JSON (schema in the README) instead of the report."
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit 1 when the policy can never trade at this equity."),
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
            "(models from --models, default qctl_models); both runs go to --db.",
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

      qctl backtest --json --db :memory: | jq .metrics.total_return_pct

      qctl backtest --compare legacy,ai --holdout-symbols SOL,LINK

      qctl backtest --equity 100 --strict              # exit 1 if the policy cannot trade at 100 USDT
    """
    from engine.backtest import default_policy_path, load_inputs, run_journaled
    from engine.core.policy import StaticPolicy
    from engine.journal.store import MEMORY
    from engine.report import render_terminal, result_json, write_html

    if compare_with is not None:
        _compare(compare_with, models, data, policy, symbols, holdout_symbols, equity, as_json, db)
        return
    if holdout_symbols is not None:
        raise OptionError("--holdout-symbols only applies with --compare legacy,ai")
    if not equity > 0:
        raise OptionError(f"--equity must be a positive amount of USDT, got {equity:g}")
    if models is not None and policy is not None:
        raise OptionError("give --policy (a StaticPolicy TOML) or --models, not both")
    start_ms = parse_date_ms(start, "--start") if start is not None else None
    end_ms = parse_date_ms(end, "--end") if end is not None else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise OptionError(f"--end {end} is not after --start {start}")
    if models is not None:
        _check_model_dir(models)
    inputs = load_inputs(data, symbols=split_names(symbols) or None, timeframe=timeframe,
                         start_ms=start_ms, end_ms=end_ms, broker_file=broker)  # fmt: skip
    if models is not None:
        pol = _ai_policy(models, inputs)
    else:
        pol = StaticPolicy.from_toml(policy if policy is not None else default_policy_path())

    from engine.policy_file import never_trades

    console = Console()
    why = never_trades(pol, equity)
    if why is not None:  # the run would only skip: say so once, before the bars
        Console(stderr=True, soft_wrap=True).print(
            f"[bold yellow]warning:[/] {why}", highlight=False
        )
    bar = RunProgress(console, inputs.symbol_bars, enabled=console.is_terminal and not as_json)
    try:
        result = run_journaled(inputs, pol, equity=equity, db=db, progress=bar)
    finally:
        bar.close()
    journal = db if db != MEMORY else None
    if as_json:
        typer.echo(json.dumps(result_json(result, journal), indent=1, allow_nan=False))
    else:
        render_terminal(result, console)
        if journal is not None:
            console.print(f"journal: {db} (run {result.run_id})", highlight=False)
    if report is not None:
        written = write_html(result, report)
        if not as_json:
            console.print(f"report: {written}", highlight=False)
    if strict and why is not None:
        raise typer.Exit(1)


class RunProgress:
    """A progress bar with symbol-bars/s and time left, on a terminal, for runs over a second."""

    SHOW_AFTER_S = 1.0
    REFRESH_S = 0.1

    def __init__(self, console: Console, symbol_bars: int, *, enabled: bool) -> None:
        self.console = console
        self.symbol_bars = symbol_bars
        self.enabled = enabled
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._bar: Progress | None = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.REFRESH_S and done != total:
            return
        self._last = now
        elapsed = now - self._t0
        if self._bar is None:
            if elapsed < self.SHOW_AFTER_S:
                return
            self._bar = Progress(
                TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TextColumn("bars"),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                console=self.console, transient=True,
            )  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task("run", total=total, rate="")
        rate = self.symbol_bars * done / total / elapsed if total and elapsed > 0 else 0.0
        self._bar.update(self._task, completed=done, total=total,
                         rate=f"{rate:,.0f} symbol-bars/s")  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _check_model_dir(models: Path) -> None:
    """A model set named on the command line must load: else one line naming it (exit 2)."""
    from models.errors import ModelError
    from models.registry import load_models

    if not models.is_dir():
        raise OptionError(
            f"--models {models}: no such folder (make one with `qctl train --out {models}`)"
        )
    try:
        load_models(models)
    except ModelError as exc:
        raise OptionError(f"--models {models}: not a usable model set: {exc}") from None


def _ai_policy(models: Path, inputs: BacktestInputs) -> Policy:
    from models.policy import AIPolicy

    return AIPolicy.from_dir(
        models,
        funding={s: sd.funding for s, sd in inputs.market.symbols.items()},
        round_trip_cost=inputs.broker_config.break_even_offset(),
    )


def _compare(
    which: str,
    models: Path | None,
    data: Path | None,
    policy: Path | None,
    symbols: str | None,
    holdout: str | None,
    equity: float,
    as_json: bool,
    db: str,
) -> None:
    """`--compare legacy,ai`: the models' out-of-sample comparison, both runs in journal `db`."""
    from engine.backtest import default_policy_path
    from engine.journal.store import MEMORY, Journal
    from engine.report import result_json
    from engine.venues.candle_files import sample_data_dir
    from models.compare import compare, render
    from qctl.options import DEFAULT_MODEL_DIR

    names = {w.strip().lower() for w in which.split(",") if w.strip()}
    if names != {"legacy", "ai"}:
        raise OptionError(f"--compare takes `legacy,ai`, got {which!r}")
    if not equity > 0:
        raise OptionError(f"--equity must be a positive amount of USDT, got {equity:g}")
    console = Console()
    journal = Journal(db)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=True, disable=as_json) as bar:  # fmt: skip
            task = bar.add_task("backtest", total=None)

            def progress(label: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"backtest {label}")

            result = compare(
                data if data is not None else sample_data_dir(),
                models if models is not None else DEFAULT_MODEL_DIR,
                policy if policy is not None else default_policy_path(),
                symbols=split_names(symbols) or None,
                holdout_symbols=split_names(holdout),
                equity=equity,
                progress=progress,
                journal=journal,
            )
    finally:
        journal.close()
    saved = db if db != MEMORY else None
    if as_json:
        payload = {
            "schema_version": 1,
            "start_ms": result.start_ms,
            "end_ms": result.end_ms,
            "symbols": result.symbols,
            "model_set": result.model_set,
            "journal": saved,
            "notes": result.notes,
            "runs": {
                run.label: {**result_json(run.result, saved), "decisions": run.distribution()}
                for run in result.runs
            },
        }
        typer.echo(json.dumps(payload, indent=1, allow_nan=False))
        return
    console.print(render(result))
    if saved is not None:
        runs = ", ".join(f"{r.label} {r.result.run_id}" for r in result.runs)
        console.print(f"journal: {db} (runs {runs})", highlight=False)
