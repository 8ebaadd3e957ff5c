"""The monitor's panels. Each takes a `tui.data.Snapshot` (or part of it) and only displays it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import (
    Button,
    DataTable,
    Label,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)

from tui.data import DecisionView, OpenPosition, Snapshot

LABEL_WIDTH = 17  # characters of a gauge's name
GAUGE_TAIL = 34  # characters after the bar: "  100.00 %  limit ≤ 200 %  BREACH"
MIN_BAR = 6


def fmt_ts(ts_ms: int | None, spec: str = "%Y-%m-%d %H:%M") -> str:
    if ts_ms is None:
        return "-"
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime(spec)


def fmt_num(x: float | None, spec: str = ",.4g") -> str:
    return "-" if x is None else format(x, spec)


def fmt_pct(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else f"{x * 100:{spec}} %"


def fmt_age(ms: int) -> str:
    """A short age: 42s, 7m, 3h, 2d."""
    s = ms // 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def signed(x: float | None, spec: str = "+,.2f") -> Text:
    """A signed number in green (gain) or red (loss)."""
    if x is None:
        return Text("-")
    return Text(format(x, spec), style="green" if x >= 0 else "red")


class RunHeader(Static):
    """Two lines that always fit: the state and equity first, then which run this is.

    `stale_ms` is how old the heartbeat may get before it is shown in red.
    """

    stale_ms: int | None = None
    lines: Text | None = None  # what is shown (kept for tests and screenshots)

    def show(self, snap: Snapshot) -> None:
        run, eq = snap.run, snap.equity
        first = Text(no_wrap=True, overflow="ellipsis")
        if eq is None:
            first.append("no equity point yet", style="dim")
        else:
            state_style = {"ACTIVE": "bold green", "HALTED": "bold red"}.get(
                eq.state, "bold yellow"
            )
            first.append(eq.state, style=state_style)
            first.append(f"  equity {fmt_num(eq.equity, ',.2f')} USDT  uPnL ")
            first.append_text(signed(eq.unrealised_pnl))
            first.append(f"  open {eq.open_positions}")
        first.append("  ")
        first.append_text(self._heartbeat(snap))
        second = Text(no_wrap=True, overflow="ellipsis")
        second.append(run.id, style="bold")
        second.append(f" {run.mode} · {run.policy} v{run.policy_version or '-'} · ")
        second.append(run.state or run.status, style="bold red" if run.ended else "")
        if snap.pending_controls and not run.ended:
            second.append(f" · {snap.pending_controls} control request(s) pending", style="yellow")
        second.append(f" · {run.timeframe} · {', '.join(run.symbols) or '-'}")
        self.lines = Text("\n", no_wrap=True).join([first, second])
        self.update(self.lines)

    def _heartbeat(self, snap: Snapshot) -> Text:
        if snap.run.state == "crashed":
            return Text("engine CRASHED", style="bold white on red")
        if snap.run.ended:
            return Text(f"ended {fmt_ts(snap.run.ended_ts, '%m-%d %H:%M')}", style="dim")
        age = snap.heartbeat_age_ms
        if age is None:  # a backtest: its times are the data's, not the wall clock's
            return Text(f"bar {fmt_ts(snap.heartbeat_ts, '%m-%d %H:%M')}", style="dim")
        stale = self.stale_ms is not None and age > self.stale_ms
        label = f"heartbeat {fmt_age(age)} ago" + (" STALE" if stale else "")
        return Text(label, style="bold white on red" if stale else "green")


class PositionsTable(DataTable):
    """Open positions, most telling columns first (a narrow screen scrolls the rest)."""

    COLUMNS = ("symbol", "side", "qty", "mark", "uPnL", "to stop", "to liq", "lev", "entry",
               "take profit", "stage")  # fmt: skip

    @dataclass
    class Selected(Message):
        """The highlighted position changed (None: no position)."""

        symbol: str | None

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self._columns()

    def _columns(self) -> None:
        if not self.columns:
            self.add_columns(*self.COLUMNS)

    def show(self, positions: tuple[OpenPosition, ...]) -> None:
        self._columns()
        selected = self.selected_symbol
        self.clear()
        for p in positions:
            self.add_row(
                p.symbol,
                Text(p.side, style="green" if p.side == "long" else "red"),
                fmt_num(p.qty),
                fmt_num(p.price, ",.6g"),
                signed(p.unrealised_pnl),
                distance_cell(p.stop_distance),
                distance_cell(p.liquidation_distance, warn=0.05),
                fmt_num(p.leverage, ".3g") + "x" if p.leverage is not None else "-",
                fmt_num(p.entry_price, ",.6g"),
                fmt_num(p.take_profit_price, ",.6g"),
                str(p.harvest_stage),
                key=p.symbol,
            )
        symbols = [p.symbol for p in positions]
        if selected in symbols:
            self.move_cursor(row=symbols.index(selected))
        self.post_message(self.Selected(self.selected_symbol))

    @property
    def selected_symbol(self) -> str | None:
        if self.row_count == 0:
            return None
        row = self.get_row_at(min(self.cursor_row, self.row_count - 1))
        return str(row[0])

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.post_message(self.Selected(self.selected_symbol))


def distance_cell(x: float | None, warn: float = 0.0) -> Text:
    """Distance left before a level: red past it (or within `warn`), plain otherwise."""
    if x is None:
        return Text("-")
    return Text(fmt_pct(x), style="bold red" if x <= warn else "")


class DecisionsTable(DataTable):
    """The latest decisions, newest first; a skip shows its reason code instead of its reasons.

    The compact form puts the reason right after the action; the full reason of the highlighted
    decision is shown unshortened under the table (`DecisionDetail`).
    """

    WIDE = ("time", "symbol", "action", "lev", "size", "conf", "why")
    COMPACT = ("time", "symbol", "action", "why", "lev", "size", "conf")

    @dataclass
    class Selected(Message):
        decision: DecisionView | None

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.compact = compact
        self.decisions: tuple[DecisionView, ...] = ()

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self._columns()

    def _columns(self) -> None:
        if not self.columns:
            self.add_columns(*(self.COMPACT if self.compact else self.WIDE))

    def show(self, decisions: tuple[DecisionView, ...]) -> None:
        self._columns()
        self.decisions = decisions
        cursor = self.cursor_row
        self.clear()
        styles = {"long": "green", "short": "red", "skip": "dim"}
        for d in decisions:
            cells = {
                "time": fmt_ts(d.ts, "%m-%d %H:%M"),
                "symbol": d.symbol,
                "action": Text(d.action, style=styles.get(d.action, "")),
                "lev": fmt_num(d.leverage, ".3g") + "x" if d.leverage is not None else "-",
                "size": fmt_pct(d.size_pct),
                "conf": fmt_num(d.confidence, ".2f"),
                "why": Text(d.why, style="yellow" if d.skip else ""),
            }
            self.add_row(*(cells[c] for c in (self.COMPACT if self.compact else self.WIDE)))
        if decisions:
            self.move_cursor(row=min(cursor, len(decisions) - 1))
        self._post_selected()

    def _post_selected(self) -> None:
        i = self.cursor_row
        chosen = self.decisions[i] if 0 <= i < len(self.decisions) else None
        self.post_message(self.Selected(chosen))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._post_selected()


class DecisionDetail(Static):
    """The highlighted decision's whole reason, wrapped: a table cell would cut it."""

    def show(self, d: DecisionView | None) -> None:
        if d is None:
            self.update(Text("no decision yet", style="dim"))
            return
        line = Text()
        line.append(f"{fmt_ts(d.ts)} {d.symbol} {d.action}: ", style="bold")
        line.append(d.why or "-", style="yellow" if d.skip else "")
        self.update(line)


class LimitGauge(Widget):
    """One hard limit: the current value, the bound, and a bar that turns red past the bound.

    `floor=True` for a lower bound (margin ratio: the bar spans 0-100 %); otherwise the bar spans
    0 to the bound, so a full bar means the limit is reached. The bar takes the width left over.
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
        width = max(MIN_BAR, self.size.width - LABEL_WIDTH - GAUGE_TAIL)
        scale = 1.0 if self.floor else self.bound
        fill = 0 if self.value is None or scale <= 0 else self.value / scale
        filled = max(0, min(width, round(fill * width)))
        style = "bold red" if self.breached else "green"
        text = Text(f"{self.label:<{LABEL_WIDTH}}", no_wrap=True, overflow="ellipsis")
        text.append("█" * filled, style=style)
        text.append("░" * (width - filled), style="dim")
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


class EquityPanel(Vertical):
    """A sparkline of the latest equity points."""

    def compose(self) -> ComposeResult:
        yield Label("Equity", classes="panel-title", id="equity-title")
        yield Sparkline([], id="equity")

    def show(self, snap: Snapshot) -> None:
        self.query_one("#equity", Sparkline).data = list(snap.equity_curve)
        self.query_one("#equity-title", Label).update(
            f"Equity (last {len(snap.equity_curve)} points)"
        )


class MonitorBody(Container):
    """Every panel, laid out for the screen: one tab per panel when small, all at once when big.

    `compact` is chosen by the app from the terminal size; changing it composes the body again
    (the app then shows its latest snapshot in the new widgets).
    """

    def __init__(self, *, compact: bool, id: str | None = None) -> None:
        super().__init__(id=id)
        self.compact = compact

    def compose(self) -> ComposeResult:
        if self.compact:
            with TabbedContent(id="tabs"):
                with TabPane("Positions", id="tab-positions"):
                    yield from self._positions()
                with TabPane("Decisions", id="tab-decisions"):
                    yield from self._decisions()
                with TabPane("Safety", id="tab-safety"):
                    yield SafetyPanel(id="safety")
                    yield EquityPanel(id="equity-panel")
            return
        with Horizontal(id="top"):
            with Vertical(id="positions-panel", classes="panel"):
                yield from self._positions()
            yield SafetyPanel(id="safety", classes="panel")
        with Vertical(id="decisions-panel", classes="panel"):
            yield from self._decisions()
        yield EquityPanel(id="equity-panel", classes="panel")

    def _positions(self) -> ComposeResult:
        yield Label("Open positions", classes="panel-title")
        yield PositionsTable(id="positions")

    def _decisions(self) -> ComposeResult:
        yield Label("Recent decisions", classes="panel-title")
        yield DecisionsTable(compact=self.compact, id="decisions")
        yield DecisionDetail(id="decision-detail")

    @on(DecisionsTable.Selected)
    def _decision_selected(self, event: DecisionsTable.Selected) -> None:
        self.query_one(DecisionDetail).show(event.decision)

    def show(self, snap: Snapshot) -> None:
        self.query_one(PositionsTable).show(snap.positions)
        self.query_one(DecisionsTable).show(snap.decisions)
        self.query_one(SafetyPanel).show(snap)
        self.query_one(EquityPanel).show(snap)


class ConfirmBar(Horizontal):
    """Yes / No buttons, used by the confirmation screen."""

    def compose(self) -> ComposeResult:
        yield Button("Yes (y)", variant="error", id="confirm-yes")
        yield Button("Cancel (n)", variant="primary", id="confirm-no")
