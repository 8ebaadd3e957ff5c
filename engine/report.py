"""Backtest reports: a rich terminal report and a self-contained HTML file (inline SVG, no network).

Both show the same things: headline metrics, what the run did not model (funding, mark prices,
spot data), safety events by limit, skips by reason, exits by kind, data issues, and the equity
and drawdown curves (braille charts in the terminal, SVG in HTML).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from engine.backtest import BacktestResult
from engine.core.metrics import MS_PER_HOUR, drawdown_curve

_MAX_ISSUES_SHOWN = 20
# braille dot bits: (column, row) -> bit, rows top to bottom
_BRAILLE_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_BRAILLE_BASE = 0x2800
_DOTS_X, _DOTS_Y = 2, 4  # dots per braille character


def _ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x * 100:+.2f} %"


def _num(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:,.{digits}f}"


def metric_rows(r: BacktestResult) -> list[tuple[str, str]]:
    """(label, value) pairs shown by both reports, in order."""
    m = r.metrics
    hold = "n/a" if m.avg_holding_ms is None else f"{m.avg_holding_ms / MS_PER_HOUR:,.1f} h"
    dd_days = m.max_drawdown_duration_ms / (24 * MS_PER_HOUR)
    return [
        ("period", f"{_ts(m.start_ts)} .. {_ts(m.end_ts)} UTC"),
        ("equity", f"{_num(m.start_equity)} -> {_num(m.end_equity)} USDT"),
        ("total return", _pct(m.total_return)),
        ("CAGR", _pct(m.cagr)),
        ("Sharpe (ann.)", _num(m.sharpe)),
        ("Sortino (ann.)", _num(m.sortino)),
        ("Calmar", _num(m.calmar)),
        (
            "max drawdown",
            f"{m.max_drawdown * 100:.2f} % (longest {dd_days:,.1f} days under a peak)",
        ),
        ("trades", f"{m.n_trades:,}"),
        ("win rate", "n/a" if m.win_rate is None else f"{m.win_rate * 100:.1f} %"),
        ("profit factor", _num(m.profit_factor)),
        ("expectancy", "n/a" if m.expectancy is None else f"{m.expectancy:,.2f} USDT / trade"),
        ("avg holding time", hold),
        (
            "exposure",
            f"in the market {m.exposure_time * 100:.1f} % of bars; gross notional "
            f"avg {m.avg_exposure * 100:.1f} %, max {m.max_exposure * 100:.1f} % of equity",
        ),
        ("fees paid", f"{_num(m.fees_paid)} USDT"),
        (
            "funding",
            "NOT modelled (no funding data)"
            if not r.has_funding
            else f"{_num(m.funding_paid)} USDT paid (net)",
        ),
        ("liquidations", f"{r.stats.liquidations}"),
    ]


JSON_SCHEMA_VERSION = 1


def _pct_number(x: float | None) -> float | None:
    """A fraction as a percentage number; None (JSON null) where undefined or infinite."""
    return None if x is None or not math.isfinite(x) else x * 100.0


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def metrics_json(r: BacktestResult) -> dict[str, float | int | None]:
    """The headline metrics as numbers, snake_case keys ending in their unit (README: JSON).

    `_pct` keys are percentages (1.5 = 1.5 %), `_usdt` amounts, `_hours` durations, `_ms` epoch
    milliseconds; ratios (sharpe, sortino, calmar, profit_factor) have no unit. null: undefined
    for this run (no trade, no loss for the profit factor, too short for CAGR)."""
    m = r.metrics
    hours = m.avg_holding_ms / MS_PER_HOUR if m.avg_holding_ms is not None else None
    return {
        "start_ms": int(m.start_ts),
        "end_ms": int(m.end_ts),
        "start_equity_usdt": float(m.start_equity),
        "end_equity_usdt": float(m.end_equity),
        "total_return_pct": _pct_number(m.total_return),
        "cagr_pct": _pct_number(m.cagr),
        "sharpe": _finite(m.sharpe),
        "sortino": _finite(m.sortino),
        "calmar": _finite(m.calmar),
        "max_drawdown_pct": _pct_number(m.max_drawdown),
        "max_drawdown_duration_hours": m.max_drawdown_duration_ms / MS_PER_HOUR,
        "trades": int(m.n_trades),
        "win_rate_pct": _pct_number(m.win_rate),
        "profit_factor": _finite(m.profit_factor),
        "expectancy_usdt": _finite(m.expectancy),
        "realised_pnl_usdt": float(sum(t.pnl for t in r.trades)),
        "avg_holding_hours": _finite(hours),
        "exposure_time_pct": _pct_number(m.exposure_time),
        "avg_exposure_pct": _pct_number(m.avg_exposure),
        "max_exposure_pct": _pct_number(m.max_exposure),
        "fees_usdt": float(m.fees_paid),
        "funding_paid_usdt": float(m.funding_paid),
        "liquidations": int(r.stats.liquidations),
    }


def result_json(r: BacktestResult, journal: str | None = None) -> dict[str, object]:
    """One run as `qctl backtest --json` prints it: numbers only where a number is meant."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "run_id": r.run_id,
        "policy": r.policy,
        "policy_version": r.policy_version,
        "timeframe": r.timeframe,
        "symbols": list(r.symbols),
        "journal": journal,
        "metrics": metrics_json(r),
        "counts": {
            "steps": int(r.stats.steps),
            "symbol_bars": int(r.stats.symbol_bars),
            "decisions": int(r.stats.decisions),
            "entries": int(r.stats.entries),
            "funding_events": int(r.stats.funding_events),
        },
        "skips": {str(k): int(v) for k, v in sorted(r.stats.skips.items())},
        "safety_events": {str(k): int(v) for k, v in sorted(r.stats.safety_events.items())},
        "exits": {str(k): int(v) for k, v in sorted(r.stats.exits.items())},
        "funding_modelled": bool(r.has_funding),
        "elapsed_s": float(r.elapsed_s),
        "symbol_bars_per_s": float(r.symbol_bars_per_s),
        "notes": list(r.notes),
        "issues": [str(i) for i in r.issues],
    }


def _counter_rows(counter: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def _resample(y: np.ndarray, n: int) -> np.ndarray:
    """`n` points of `y` (last value of each bucket), so the chart keeps the final equity."""
    if len(y) <= n:
        return y.astype(float)
    idx = np.linspace(0, len(y) - 1, n).round().astype(int)
    return y[idx].astype(float)


def braille_chart(y: np.ndarray, width: int, height: int) -> list[str]:
    """A line chart of `y` in `height` rows of `width` braille characters."""
    if len(y) == 0 or width <= 0 or height <= 0:
        return []
    v = _resample(np.asarray(y, dtype=float), width * _DOTS_X)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    span = hi - lo if hi > lo else 1.0
    rows_dots = height * _DOTS_Y
    level = ((v - lo) / span * (rows_dots - 1)).round().astype(int)
    grid = [[0] * width for _ in range(height)]
    prev = None
    for x, yv in enumerate(level):
        lo_d, hi_d = (yv, yv) if prev is None else (min(prev, yv), max(prev, yv))
        for d in range(lo_d, hi_d + 1):  # vertical stroke joins consecutive points
            row_from_top = rows_dots - 1 - d
            cell_row, dot_row = divmod(row_from_top, _DOTS_Y)
            cell_col, dot_col = divmod(x, _DOTS_X)
            grid[cell_row][cell_col] |= _BRAILLE_BITS[dot_col][dot_row]
        prev = yv
    return ["".join(chr(_BRAILLE_BASE + b) for b in row) for row in grid]


def _chart_panel(title: str, y: np.ndarray, width: int, height: int, fmt: str, style: str) -> Panel:
    lines = braille_chart(y, width, height)
    hi, lo = (float(np.max(y)), float(np.min(y))) if len(y) else (0.0, 0.0)
    text = Text()
    for k, line in enumerate(lines):
        label = fmt.format(hi) if k == 0 else fmt.format(lo) if k == len(lines) - 1 else ""
        text.append(f"{label:>12} ", style="dim")
        text.append(line + ("\n" if k < len(lines) - 1 else ""), style=style)
    return Panel(text, title=title, expand=False)


def render_terminal(r: BacktestResult, console: Console | None = None) -> None:
    """Print the report with rich (tables and braille charts)."""
    console = console or Console()
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    for label, value in metric_rows(r):
        head.add_row(label, value)
    title = (
        f"backtest {r.run_id}: policy {r.policy} {r.policy_version}, {len(r.symbols)} "
        f"symbols, {r.timeframe}"
    )
    console.print(Panel(head, title=title, expand=False))

    width = max(20, min(100, console.width - 20))
    console.print(_chart_panel("equity (USDT)", r.equity, width, 6, "{:,.0f}", "green"))
    console.print(
        _chart_panel("drawdown", drawdown_curve(r.equity) * 100, width, 4, "{:.1f} %", "red")
    )

    side = Table.grid(padding=(0, 4))
    tables = []
    for caption, counter, empty in (
        ("safety events by limit", dict(r.stats.safety_events), "none"),
        ("skips by reason", dict(r.stats.skips), "none"),
        ("exits by kind", _exit_counts(r), "none"),
    ):
        t = Table(title=caption, show_header=False, min_width=len(caption) + 4)
        t.add_column()
        t.add_column(justify="right")
        rows = _counter_rows(counter)
        for k, v in rows:
            t.add_row(k, f"{v:,}")
        if not rows:
            t.add_row(empty, "")
        tables.append(t)
    side.add_row(*tables)
    console.print(side)

    notes = [Text("• " + n) for n in r.notes]
    issues = [i for i in r.issues if i.severity != "info"]
    infos = [i for i in r.issues if i.severity == "info"]
    lines: list[Text] = []
    for i in issues[:_MAX_ISSUES_SHOWN]:
        style = "red" if i.severity == "error" else "yellow"
        lines.append(Text(f"{i.severity:7} {i.symbol}: {i.kind}: {i.detail}", style=style))
    if len(issues) > _MAX_ISSUES_SHOWN:
        lines.append(Text(f"… {len(issues) - _MAX_ISSUES_SHOWN} more", style="dim"))
    if infos:
        lines.append(
            Text(
                f"{len(infos)} informational note(s) on the data (see --report for the list)",
                style="dim",
            )
        )
    if not issues:
        lines.append(
            Text("no data problems found (no gaps, duplicates, NaN or bad prices)", style="green")
        )
    console.print(Panel(Group(*notes, *lines), title="data and model notes", expand=False))
    rate = r.symbol_bars_per_s
    console.print(
        Text(
            f"{r.stats.symbol_bars:,} symbol-bars in {r.elapsed_s:.2f} s ({rate:,.0f}/s); "
            f"{r.stats.decisions:,} decisions, {r.stats.entries:,} entries",
            style="dim",
        )
    )


def _exit_counts(r: BacktestResult) -> dict[str, int]:
    out: dict[str, int] = dict(r.stats.exits)
    for t in r.trades:
        if t.exit_reason in ("stop_loss", "take_profit", "liquidation"):
            out[t.exit_reason] = out.get(t.exit_reason, 0) + 1
    return out


# -- HTML -------------------------------------------------------------------------------------


def svg_line_chart(
    ts: np.ndarray,
    series: Sequence[tuple[str, np.ndarray, str]],
    *,
    width: int = 900,
    height: int = 220,
    fill: bool = False,
    fmt: str = "{:,.0f}",
) -> str:
    """An inline SVG line (or area) chart of one or more series over the same timestamps."""
    pad_l, pad_r, pad_t, pad_b = 70, 10, 10, 24
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    n_points = w
    all_y = np.concatenate([np.asarray(y, dtype=float) for _, y, _ in series]) if series else []
    if len(ts) == 0 or len(all_y) == 0:
        return f'<svg width="{width}" height="{height}"></svg>'
    lo, hi = float(np.nanmin(all_y)), float(np.nanmax(all_y))
    if hi <= lo:
        hi = lo + 1.0
    t_res = _resample(np.asarray(ts, dtype=float), n_points)
    t0, t1 = t_res[0], t_res[-1] if t_res[-1] > t_res[0] else t_res[0] + 1

    def px(t: float) -> float:
        return pad_l + (t - t0) / (t1 - t0) * w

    def py(v: float) -> float:
        return pad_t + (hi - v) / (hi - lo) * h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="#fafafa" stroke="#ddd"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        y = py(v)
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
        )
        parts.append(
            f'<text x="{pad_l - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#666">{html.escape(fmt.format(v))}</text>'
        )
    for frac, anchor in ((0.0, "start"), (1.0, "end")):
        t = t0 + (t1 - t0) * frac
        parts.append(
            f'<text x="{px(t):.1f}" y="{height - 6}" font-size="11" '
            f'text-anchor="{anchor}" fill="#666">{_ts(int(t))[:10]}</text>'
        )
    for _name, y, color in series:
        yr = _resample(np.asarray(y, dtype=float), n_points)
        pts = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in zip(t_res, yr, strict=True))
        if fill:
            base = py(min(max(0.0, lo), hi))
            parts.append(
                f'<polygon points="{px(t_res[0]):.1f},{base:.1f} {pts} '
                f'{px(t_res[-1]):.1f},{base:.1f}" fill="{color}" fill-opacity="0.25" '
                'stroke="none"/>'
            )
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(rows: Sequence[tuple[str, str]], caption: str) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table><caption>{html.escape(caption)}</caption>{body}</table>"


def render_html(r: BacktestResult) -> str:
    """The report as one self-contained HTML document."""
    dd = drawdown_curve(r.equity) * 100
    eq_svg = svg_line_chart(r.ts, [("equity", r.equity, "#2a7d2a")])
    dd_svg = svg_line_chart(
        r.ts, [("drawdown", dd, "#c0392b")], height=160, fill=True, fmt="{:.1f} %"
    )
    ex_svg = svg_line_chart(
        r.ts, [("exposure", r.exposure * 100, "#2c5aa0")], height=140, fmt="{:.0f} %"
    )
    counters = "".join(
        _html_table([(k, f"{v:,}") for k, v in _counter_rows(c)] or [("none", "")], cap)
        for cap, c in (
            ("safety events by limit", dict(r.stats.safety_events)),
            ("skips by reason", dict(r.stats.skips)),
            ("exits by kind", _exit_counts(r)),
        )
    )
    issue_rows = (
        "".join(
            f"<tr class='{html.escape(str(i.severity))}'><td>{html.escape(str(i.severity))}</td>"
            f"<td>{html.escape(i.symbol)}</td><td>{html.escape(str(i.kind))}</td>"
            f"<td>{html.escape(i.detail)}</td></tr>"
            for i in r.issues
        )
        or "<tr><td colspan='4'>no data problems found</td></tr>"
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    trades = "".join(
        f"<tr><td>{html.escape(t.symbol)}</td><td>{t.side}</td><td>{_ts(t.entry_ts)}</td>"
        f"<td>{_ts(t.exit_ts)}</td><td>{t.entry_price:.6g}</td><td>{t.exit_price:.6g}</td>"
        f"<td>{t.pnl:,.2f}</td><td>{html.escape(t.exit_reason)}</td></tr>"
        for t in r.trades[-200:]
    )
    title = f"qctl backtest {r.run_id}"
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}"
        "table{border-collapse:collapse;margin:0 2em 1em 0;display:inline-table;vertical-align:top}"
        "th,td{text-align:left;padding:2px 10px;border-bottom:1px solid #eee;font-size:14px}"
        "caption{text-align:left;font-weight:bold;padding:4px 0}"
        "tr.error td{color:#b00}tr.warning td{color:#a60}h2{margin-top:1.5em}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>policy <b>{html.escape(r.policy)}</b> {html.escape(r.policy_version)}; "
        f"{len(r.symbols)} symbols ({html.escape(', '.join(r.symbols[:20]))}"
        f"{', …' if len(r.symbols) > 20 else ''}); timeframe {html.escape(r.timeframe)}</p>"
        f"{_html_table(metric_rows(r), 'results')}"
        f"<h2>equity (USDT)</h2>{eq_svg}<h2>drawdown</h2>{dd_svg}"
        f"<h2>gross exposure (% of equity)</h2>{ex_svg}"
        f"<h2>safety, skips, exits</h2>{counters}"
        f"<h2>data and model notes</h2><ul>{notes}</ul>"
        f"<table><caption>data issues</caption><tr><th>severity</th><th>symbol</th><th>kind</th>"
        f"<th>detail</th></tr>{issue_rows}</table>"
        f"<h2>last trades</h2><table><tr><th>symbol</th><th>side</th><th>entry</th><th>exit</th>"
        f"<th>entry px</th><th>exit px</th><th>pnl USDT</th><th>exit</th></tr>{trades}</table>"
        "</body></html>\n"
    )


def write_html(r: BacktestResult, path: str | Path) -> Path:
    """Write the HTML report; returns the path written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(r), encoding="utf-8")
    return p
