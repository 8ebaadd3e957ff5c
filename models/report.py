"""`qctl models report MODEL_DIR --html FILE`: what a model set learnt, as one self-contained page.

Everything comes from the set's cards and boosters (no recomputation, no network, no plotting
library): the entry rule and the validation figures it was chosen on, per walk-forward fold the
AI's trades against trading every signal and staying flat (net return, Sharpe, trades, costs,
funding, and the running net return as a plot), the calibration curve, the confidence -> edge map,
feature importance and the kill levels. Plots are inline SVG.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.heads import platt_apply
from models.registry import ModelSet, load_models
from models.walkforward import RESULT_FILE

WIDTH, HEIGHT, PAD = 520, 220, 36
COLOURS = ("#1f6feb", "#d29922", "#8b949e", "#2da44e", "#cf222e")


def _esc(value: object) -> str:
    return html.escape(str(value))


def _num(value: object, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return _esc(value)


def _pct(value: float) -> str:
    return f"{value * 100:.3f} %"


def svg_lines(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]], x_label: str, y_label: str
) -> str:
    """Line plot of (name, xs, ys) series, with a legend and the axes' ranges written out."""
    xs = np.concatenate([np.asarray(x, float) for _, x, _ in series])
    ys = np.concatenate([np.asarray(y, float) for _, _, y in series])
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def px(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def py(y: float) -> float:
        return HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    parts = [
        f'<svg width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" '
        'fill="none" stroke="#d0d7de"/>',
    ]
    if y0 < 0 < y1:
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{py(0):.1f}" y2="{py(0):.1f}" '
            'stroke="#d0d7de" stroke-dasharray="4"/>'
        )
    for i, (name, x, y) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, y, strict=True))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}"/>'
        )
        parts.append(
            f'<text x="{PAD + 4}" y="{PAD + 14 + 14 * i}" font-size="11" fill="{colour}">'
            f"{_esc(name)}</text>"
        )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{_esc(x_label)}: {_num(x0)} .. '
        f"{_num(x1)}</text>"
    )
    parts.append(
        f'<text x="4" y="{PAD - 10}" font-size="10">{_esc(y_label)}: {_num(y0)} .. {_num(y1)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(items: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars, largest first, values written next to them."""
    top = max((v for _, v in items), default=1.0) or 1.0
    row = 16
    height = row * len(items) + 8
    parts = [f'<svg width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (name, value) in enumerate(items):
        w = value / top * (WIDTH - 220)
        y = 4 + i * row
        parts.append(f'<text x="0" y="{y + 11}" font-size="11">{_esc(name)}</text>')
        parts.append(f'<rect x="140" y="{y + 2}" width="{w:.1f}" height="11" fill="#1f6feb"/>')
        parts.append(
            f'<text x="{144 + w:.1f}" y="{y + 11}" font-size="10">{value * 100:.1f} %</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fold_section(direction: dict[str, Any]) -> str:
    folds = direction["metrics"].get("by_fold", [])
    aucs = direction["metrics"].get("auc_by_fold", [])
    rows = []
    plots = []
    for f in folds:
        k = f["fold"]
        auc = _num(aucs[k]) if k < len(aucs) else "-"
        for label, fig in (("AI", f["ai"]), ("every signal", f["every_signal"])):
            rows.append(
                [
                    str(k + 1),
                    label,
                    str(fig["trades"]),
                    f"{fig['net_sum']:.3f}",
                    _pct(fig["net_mean"]),
                    _num(fig["net_sharpe"]),
                    f"{fig['costs']:.3f}",
                    f"{fig['funding']:.3f}",
                    auc,
                ]
            )
        rows.append([str(k + 1), "flat", "0", "0", "-", "-", "0", "0", auc])
        series = []
        for label, fig in (("AI", f["ai"]), ("every signal", f["every_signal"])):
            curve = fig["curve"]
            series.append((label, np.linspace(0, 1, len(curve)), curve))
        series.append(("flat", [0.0, 1.0], [0.0, 0.0]))
        plots.append(
            f"<figure><figcaption>fold {k + 1}: running net return (sum of trade returns, "
            f"notional units) through the validation block</figcaption>"
            f"{svg_lines(series, 'share of the block', 'net')}</figure>"
        )
    table = _table(
        ["fold", "policy", "trades", "net return (sum, x notional)", "net per trade",
         "Sharpe per trade", "fees + slippage (x notional)", "funding paid (x notional)",
         "direction AUC"],
        rows,
    )  # fmt: skip
    return table + "".join(plots)


def _signed_pct(value: float) -> str:
    return f"{value * 100:+.2f} %"


def _sharpe(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def walkforward_section(wf: dict[str, Any]) -> str:
    """Per fold, legacy against AI against flat through the engine, with each run's equity."""
    rows, plots = [], []
    for f in wf["folds"]:
        for label in ("legacy", "ai"):
            r = f["runs"][label]
            rows.append([
                str(f["fold"] + 1), f"{_esc(f['start'])} .. {_esc(f['end'])}", label.upper()
                if label == "ai" else label, _signed_pct(r["total_return"]), _sharpe(r["sharpe"]),
                _pct(r["max_drawdown"]), str(r["trades"]), f"{r['fees']:,.2f}",
                f"{r['funding']:,.2f}", str(r["limit_breaches"]),
            ])  # fmt: skip
        rows.append([str(f["fold"] + 1), f"{_esc(f['start'])} .. {_esc(f['end'])}", "flat",
                     "+0.00 %", "-", "0.000 %", "0", "0.00", "0.00", "0"])  # fmt: skip
        series = []
        for label in ("legacy", "ai"):
            curve = f["runs"][label]["curve"]
            series.append((label, np.linspace(0, 1, len(curve)), curve))
        series.append(("flat", [0.0, 1.0], [0.0, 0.0]))
        level = f["min_confidence"]
        plots.append(
            f"<figure><figcaption>fold {f['fold'] + 1}, {_esc(f['start'])} .. "
            f"{_esc(f['end'])}: equity (return on the starting equity); models trained "
            f"{_esc(f['train_start'])} .. {_esc(f['train_end'])}, entry level "
            f"{'none (flat)' if level is None else _num(level)}"
            + "".join(f", {_esc(k)} {_esc(v)}" for k, v in f.get("chosen", {}).items())
            + "</figcaption>"
            f"{svg_lines(series, 'share of the block', 'return')}</figure>"
        )
    table = _table(
        ["fold", "test block (UTC)", "policy", "return", "Sharpe", "max drawdown", "trades",
         "fees (USDT)", "funding paid (USDT)", "limit breaches"],
        rows,
    )  # fmt: skip
    sm = wf["summary"]
    lines = []
    for label in ("legacy", "ai"):
        x = sm[label]
        lines.append(
            f"<li>{label}: compounded {_signed_pct(x['compounded_return'])}, mean Sharpe "
            f"{x['mean_sharpe']:.2f}, worst fold drawdown {_pct(x['worst_drawdown'])}, "
            f"{x['trades']} trades, {x['fees']:,.2f} USDT fees, {x['funding']:,.2f} USDT funding, "
            f"{x['limit_breaches']} limit breaches</li>"
        )
    costs = wf["costs"]
    head = (
        f"<p>Data {_esc(wf['data'])}: {_esc(', '.join(wf['symbols']))}; "
        f"{wf['walkforward']['folds']} test blocks after the first "
        f"{wf['walkforward']['initial_fraction'] * 100:.0f} % of the timeline; each block's models "
        f"were trained only on bars before it (embargo {wf['train_config']['embargo_bars']} bars, "
        f"labels purged at the training end). Both policies ran through the same engine from "
        f"{wf['equity']:,.0f} USDT per block, with taker fees and slippage (round trip "
        f"{_pct(costs['round_trip'])}) and funding; legacy policy {_esc(wf['legacy_policy'])}. "
        f"A run without trades has no Sharpe and counts as 0 (flat).</p>"
        f"<ul>{''.join(lines)}<li>AI Sharpe above legacy's in {sm['ai_sharpe_above_legacy']} of "
        f"{sm['folds']} folds; the AI traded in {sm['ai_traded_folds']} of them.</li></ul>"
    )
    return head + table + "".join(plots)


def _calibration_section(out: dict[str, Any], metrics: dict[str, Any]) -> str:
    xs = np.asarray(out["isotonic_x"], float)
    raw = np.linspace(xs.min(), xs.max(), 50)
    series = [
        ("isotonic (validation frequencies)", out["isotonic_x"], out["isotonic_y"]),
        ("Platt (slope only)", raw, platt_apply(raw, out["platt_a"], out["platt_b"])),
    ]
    note = (
        f"<p>In use: <b>{_esc(out['calibration'])}</b>. Brier score on validation "
        f"{_num(metrics.get('brier'))} (base rate {_num(metrics.get('brier_base_rate'))}); "
        f"log loss {_num(metrics.get('log_loss'))} (base rate "
        f"{_num(metrics.get('log_loss_base_rate'))}).</p>"
    )
    edge = out["edge_knots"]
    plot_edge = svg_lines(
        [("edge (volatility units)", edge["confidence"], edge["edge"])], "confidence", "edge"
    )
    return (
        note
        + svg_lines(series, "raw score", "P(up)")
        + "<h3>Confidence to realised edge (validation)</h3>"
        + plot_edge
    )


def _importance(models: ModelSet, head: str, top: int = 15) -> list[tuple[str, float]]:
    booster = models.booster(head)
    gain = booster.feature_importance(importance_type="gain")
    total = float(gain.sum()) or 1.0
    order = np.argsort(-gain, kind="stable")[:top]
    names = booster.feature_name()
    return [(names[i], float(gain[i]) / total) for i in order]


def render_report(directory: str | Path) -> str:
    """The report of the model set in `directory` as an HTML document (refused sets raise)."""
    models = load_models(directory)
    direction = models.models["direction"].card
    out, metrics = direction["outputs"], direction["metrics"]
    window = direction["training_window"]
    costs = direction["costs"]
    entry = metrics.get("entry")
    if out["min_confidence"] is None:
        rule = (
            "<p><b>No entry level</b>: on validation no confidence level gave a positive net "
            "return with enough evidence; this set enters no trade (the AI stays flat).</p>"
        )
    else:
        rule = (
            f"<p>Entry at a calibrated confidence of at least <b>{_num(out['min_confidence'])}"
            f"</b> and a positive expected net return: on validation {entry['trades']} trades, "
            f"{_pct(entry['net_mean'])} net per trade, Sharpe per trade "
            f"{_num(entry['net_sharpe_per_trade'])}, t = {_num(entry['t_stat'])}"
            + (
                f" ({_num(entry['t_stat_trades'])} counting trades, "
                f"{_num(entry['t_stat_by_time'])} counting entry times)"
                if "t_stat_by_time" in entry
                else ""
            )
            + ".</p>"
        )
    every = metrics.get("all_validation_trades", {})
    wf_path = Path(directory) / RESULT_FILE
    wf = json.loads(wf_path.read_text()) if wf_path.is_file() else None
    if wf is not None and wf.get("model_set") == models.set_id:
        wf_html = walkforward_section(wf)
    elif wf is not None:
        wf_html = (
            f"<p>{RESULT_FILE} here belongs to model set {_esc(wf.get('model_set'))}, not to "
            "this one: retrain with `qctl train --walk-forward N` to refresh it.</p>"
        )
    else:
        wf_html = (
            "<p>No walk-forward run in this directory: `qctl train --walk-forward` runs one "
            f"and writes {RESULT_FILE} here.</p>"
        )
    t1 = models.models["favourable_t1"].card
    ladder = t1["metrics"].get("ladder", {})
    ladder_rows = [
        [_num(c["scale"]), _pct(c["net_mean"]), _num(c["net_sharpe_per_trade"])]
        for c in ladder.get("candidates", [])
    ]
    kill = models.models["kill"].card
    kill_rows = [
        [_esc(r), _num(t), _num(kill["outputs"]["reduce_thresholds_by_regime"].get(r)),
         _num(kill["outputs"]["reduce_fracs_by_regime"].get(r)),
         _num(kill["metrics"]["expectancy"].get(r, "-"))]
        for r, t in kill["outputs"]["thresholds_by_regime"].items()
    ]  # fmt: skip
    importance = "".join(
        f"<h3>{head}</h3>{svg_bars(_importance(models, head))}"
        for head in ("direction", "universe", "adverse", "kill")
    )
    body = f"""
<h1>Model set {_esc(models.set_id)}</h1>
<p>Trained on {_esc(", ".join(direction["symbols"]))} from {_esc(window["start"])} to
{_esc(window["end"])}; held out: {_esc(", ".join(direction["holdout_symbols"]) or "-")};
valid for data until {_esc(direction["valid_until"])}. Costs every figure is net of:
round trip {_pct(costs["round_trip"])} (taker fee {_pct(costs["taker_fee"])} and slippage
{_pct(costs["slippage"])} per leg, venue {_esc(costs["venue"] or "-")}) and the funding paid.</p>
<h2>Entry rule (chosen on validation, net of costs)</h2>
{rule}
<p>Criterion: {_esc(out["entry_criterion"])}. Every validation signal taken: {every.get("trades")}
trades, {_pct(every.get("net_mean", 0.0))} net per trade
({_pct(every.get("gross_mean", 0.0))} before costs).</p>
<h2>Walk-forward through the engine: AI, legacy, flat</h2>
{wf_html}
<h2>Validation folds of this set: AI, every signal, flat</h2>
<p>Out of fold, inside this set's training period: each block was predicted by models trained
only on bars before it, less a purge and an embargo; figures are per trade held to the horizon,
net of costs (the walk-forward above runs the policies through the engine instead).</p>
{_fold_section(direction)}
<h2>Harvest ladder (chosen on validation, net of costs)</h2>
<p>Rungs = the favourable-excursion heads' predictions times a scale, chosen by mean net return
per trade through the exit rules on the validation trades ({_esc(ladder.get("chosen_on", "-"))},
{ladder.get("trades", 0)} trades): <b>scale {_num(ladder.get("scale", "-"))}</b>,
{_pct(ladder.get("net_mean", 0.0))} net per trade.</p>
{_table(["scale", "net per trade", "Sharpe per trade"], ladder_rows)}
<h2>Calibration</h2>
{_calibration_section(out, metrics)}
<h2>Feature importance (share of split gain)</h2>
{importance}
<h2>Kill levels by regime (validation, net)</h2>
{_table(["regime", "kill", "reduce at", "reduce by", "net per trade"], kill_rows)}
"""
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#1f2328}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;"
        "padding:2px 8px;text-align:right}figure{display:inline-block;margin:0.5em}"
        "figcaption{font-size:12px;max-width:520px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>qctl model set "
        f"{_esc(models.set_id)}</title><style>{style}</style></head><body>{body}</body></html>"
    )


def write_report(directory: str | Path, html_path: str | Path) -> Path:
    """Write the report; returns where."""
    path = Path(html_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(directory), encoding="utf-8")
    return path
