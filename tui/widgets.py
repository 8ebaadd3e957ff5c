"""The monitor's panels. Each takes a `tui.data.Snapshot` (or part of it) and only displays it."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, DataTable, Label, Static

from tui.data import DecisionView, OpenPosition, Snapshot

BAR_WIDTH = 24  # characters of a gauge bar


def fmt_ts(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "-"
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def fmt_num(x: float | None, spec: str = ",.4g") -> str:
    return "-" if x is None else format(x, spec)


def fmt_pct(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else f"{x * 100:{spec}} %"


class RunHeader(Static):
    """Which run is shown, its state, equity and when it was last read."""

    def show(self, snap: Snapshot) -> None:
        run, eq = snap.run, snap.equity
        line = Text()
        line.append(f"{run.id}", style="bold")
        line.append(f"  {run.mode} · {run.policy} v{run.policy_version or '-'} · {run.status}")
        line.append(f" · {run.timeframe} · {', '.join(run.symbols) or '-'}")
        line.append("\n")
        if eq is None:
            line.append("no equity point yet", style="dim")
        else:
            state_style = "green" if eq.state == "ACTIVE" else "bold yellow"
            line.append(f"equity {fmt_num(eq.equity, ',.2f')} USDT")
            line.append("  state ")
            line.append(eq.state, style=state_style)
            line.append(f"  open {eq.open_positions}  at {fmt_ts(eq.ts)}")
        if snap.pending_controls:
            line.append(f"  · {snap.pending_controls} control request(s) pending", style="yellow")
        self.update(line)


class PositionsTable(DataTable):
    """Open positions: the latest snapshot of each position that is not closed."""

    COLUMNS = ("symbol", "side", "qty", "entry", "mark", "lev", "stop", "take profit", "stage")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*self.COLUMNS)

    def show(self, positions: tuple[OpenPosition, ...]) -> None:
        self.clear()
        for p in positions:
            self.add_row(
                p.symbol,
                Text(p.side, style="green" if p.side == "long" else "red"),
                fmt_num(p.qty),
                fmt_num(p.entry_price, ",.6g"),
                fmt_num(p.mark_price, ",.6g"),
                fmt_num(p.leverage, ".3g") + "x" if p.leverage is not None else "-",
                fmt_num(p.stop_price, ",.6g"),
                fmt_num(p.take_profit_price, ",.6g"),
                str(p.harvest_stage),
                key=p.symbol,
            )


class DecisionsTable(DataTable):
    """The latest decisions, newest first; a skip shows its reason code instead of its reasons."""

    COLUMNS = ("time", "symbol", "action", "lev", "size", "conf", "why")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*self.COLUMNS)

    def show(self, decisions: tuple[DecisionView, ...]) -> None:
        self.clear()
        styles = {"long": "green", "short": "red", "skip": "dim"}
        for d in decisions:
            self.add_row(
                fmt_ts(d.ts),
                d.symbol,
                Text(d.action, style=styles.get(d.action, "")),
                fmt_num(d.leverage, ".3g") + "x" if d.leverage is not None else "-",
                fmt_pct(d.size_pct),
                fmt_num(d.confidence, ".2f"),
                Text(d.why, style="yellow" if d.skip else ""),
            )


class LimitGauge(Widget):
    """One hard limit: the current value, the bound, and a bar that turns red past the bound.

    `floor=True` for a lower bound (margin ratio: the bar spans 0-100 %); otherwise the bar spans
    0 to the bound, so a full bar means the limit is reached.
    """

    value: reactive[float | None] = reactive(None)
    bound: reactive[float] = reactive(1.0)

    def __init__(self, label: str, *, floor: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.floor = floor

    @property
    def breached(self) -> bool:
        if self.value is None:
            return False
        return self.value < self.bound if self.floor else self.value > self.bound

    def render(self) -> Text:
        scale = 1.0 if self.floor else self.bound
        fill = 0 if self.value is None or scale <= 0 else self.value / scale
        filled = max(0, min(BAR_WIDTH, round(fill * BAR_WIDTH)))
        style = "bold red" if self.breached else "green"
        text = Text(f"{self.label:<18}")
        text.append("█" * filled, style=style)
        text.append("░" * (BAR_WIDTH - filled), style="dim")
        sign = "≥" if self.floor else "≤"
        text.append(f"  {fmt_pct(self.value)}  limit {sign} {fmt_pct(self.bound, '.0f')}")
        text.append("  BREACH" if self.breached else "  ok", style=style)
        return text


class SafetyPanel(Vertical):
    """Gauges for the three limits a running book can approach, plus the clip/veto counts."""

    def compose(self) -> ComposeResult:
        yield Label("Safety limits", classes="panel-title")
        yield LimitGauge("margin ratio", floor=True, id="gauge-margin")
        yield LimitGauge("total exposure", id="gauge-exposure")
        yield LimitGauge("largest position", id="gauge-position")
        yield Static(id="safety-counts")

    def show(self, snap: Snapshot) -> None:
        eq, limits = snap.equity, snap.limits
        margin = self.query_one("#gauge-margin", LimitGauge)
        margin.bound, margin.value = limits.min_margin_ratio, eq.margin_ratio if eq else None
        exposure = self.query_one("#gauge-exposure", LimitGauge)
        exposure.bound, exposure.value = limits.max_exposure_fraction, eq.exposure if eq else None
        largest = self.query_one("#gauge-position", LimitGauge)
        largest.bound, largest.value = limits.max_position_fraction, snap.largest_position_fraction
        counts = ", ".join(f"{name} {n}" for name, n in snap.safety_counts.items())
        self.query_one("#safety-counts", Static).update(
            f"safety events: {counts}" if counts else "safety events: none"
        )


class ConfirmBar(Horizontal):
    """Yes / No buttons, used by the flatten confirmation screen."""

    def compose(self) -> ComposeResult:
        yield Button("Flatten (y)", variant="error", id="confirm-yes")
        yield Button("Cancel (n)", variant="primary", id="confirm-no")
