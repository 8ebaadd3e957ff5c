"""`qctl tui`: a Textual monitor over a journal, with pause / resume / flatten controls.

The journal is read in a thread worker on a timer; the worker returns plain data in a message and
never touches a widget. The only write is a control request (`engine.journal.request_control`),
which the engine polls and acts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Sparkline, Static
from textual.worker import Worker, WorkerState

from engine.domain import ControlCommand
from engine.journal.store import JournalError, request_control
from tui.data import Snapshot, load_snapshot
from tui.widgets import ConfirmBar, DecisionsTable, PositionsTable, RunHeader, SafetyPanel

CONTROL_SOURCE = "tui"


class ConfirmFlatten(ModalScreen[bool]):
    """Flatten closes every position: it needs a second, explicit yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Flatten"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(f"Close every position of run {self.run_id}?", id="confirm-question")
            yield ConfirmBar()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(False)


class MonitorApp(App[None]):
    """Live view of one run of a journal (the latest unless `run_id` is given)."""

    CSS_PATH = "app.tcss"
    TITLE = "qctl monitor"
    BINDINGS = [
        Binding("p", "control('pause')", "Pause"),
        Binding("r", "control('resume')", "Resume"),
        Binding("f", "flatten", "Flatten"),
        Binding("q", "quit", "Quit"),
    ]

    @dataclass
    class Loaded(Message):
        """A fresh read of the journal."""

        snapshot: Snapshot

    @dataclass
    class Failed(Message):
        """The journal could not be read or written (one line for the user)."""

        error: str

    @dataclass
    class ControlSent(Message):
        """A control request was queued in the journal."""

        command: str
        request_id: int

    snapshot: reactive[Snapshot | None] = reactive(None, init=False)
    error: reactive[str] = reactive("", init=False)

    def __init__(
        self, db: str | Path, run_id: str | None = None, refresh_seconds: float = 2.0
    ) -> None:
        super().__init__()
        self.db = Path(db)
        self.run_id = run_id
        self.refresh_seconds = refresh_seconds
        self.sub_title = str(self.db)

    def compose(self) -> ComposeResult:
        yield Static("reading the journal…", id="message")
        yield RunHeader(id="header")
        with Horizontal(id="top"):
            with Vertical(id="positions-panel"):
                yield Label("Open positions", classes="panel-title")
                yield PositionsTable(id="positions")
            yield SafetyPanel(id="safety")
        with Vertical(id="decisions-panel"):
            yield Label("Recent decisions", classes="panel-title")
            yield DecisionsTable(id="decisions")
        with Vertical(id="equity-panel"):
            yield Label("Equity", classes="panel-title", id="equity-title")
            yield Sparkline([], id="equity")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(self.refresh_seconds, self.reload)

    # -- reading -----------------------------------------------------------------------------

    def reload(self) -> None:
        self._read_journal(self.db, self.run_id)

    @work(thread=True, exclusive=True, group="read", exit_on_error=False)
    def _read_journal(self, db: Path, run_id: str | None) -> None:
        try:
            snap = load_snapshot(db, run_id)
        except JournalError as exc:
            self.post_message(self.Failed(str(exc)))
        else:
            self.post_message(self.Loaded(snap))

    def on_monitor_app_loaded(self, message: Loaded) -> None:
        self.error = ""
        self.snapshot = message.snapshot

    def on_monitor_app_failed(self, message: Failed) -> None:
        self.error = message.error

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place an unexpected worker error reaches the user."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.error = f"{type(event.worker.error).__name__}: {event.worker.error}"

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        self._show_message()
        if snap is None:
            return
        self.query_one(RunHeader).show(snap)
        self.query_one(PositionsTable).show(snap.positions)
        self.query_one(DecisionsTable).show(snap.decisions)
        self.query_one(SafetyPanel).show(snap)
        self.query_one("#equity", Sparkline).data = list(snap.equity_curve)
        self.query_one("#equity-title", Label).update(
            f"Equity (last {len(snap.equity_curve)} points)"
        )

    def watch_error(self, error: str) -> None:
        self._show_message()

    def _show_message(self) -> None:
        """The message line: the error if any, a wait note before the first read, else hidden."""
        message = self.query_one("#message", Static)
        message.update(self.error or "reading the journal…")
        message.set_class(bool(self.error), "error")
        message.display = bool(self.error) or self.snapshot is None

    # -- controls ----------------------------------------------------------------------------

    def action_control(self, command: str) -> None:
        self._send_control(ControlCommand(command))

    def action_flatten(self) -> None:
        if self.snapshot is None:
            self.notify("no run to flatten yet", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._send_control(ControlCommand.FLATTEN)
            else:
                self.notify("flatten cancelled")

        self.push_screen(ConfirmFlatten(self.snapshot.run.id), answered)

    def _send_control(self, command: ControlCommand) -> None:
        if self.snapshot is None:
            self.notify(f"cannot {command}: no run shown", severity="warning")
            return
        self._write_control(self.db, command, self.snapshot.run.id)

    @work(thread=True, group="control", exit_on_error=False)
    def _write_control(self, db: Path, command: ControlCommand, run_id: str) -> None:
        try:
            request_id = request_control(db, command, source=CONTROL_SOURCE, run_id=run_id)
        except JournalError as exc:
            self.post_message(self.Failed(str(exc)))
        else:
            self.post_message(self.ControlSent(str(command), request_id))

    def on_monitor_app_control_sent(self, message: ControlSent) -> None:
        self.notify(f"{message.command} requested (control #{message.request_id})")
        self.reload()
