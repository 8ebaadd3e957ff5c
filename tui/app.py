"""`qctl tui`: a Textual monitor over a journal, with pause / resume / flatten / halt controls.

The journal is read in a thread worker on a timer; the worker returns plain data in a message and
never touches a widget. The only write is a control request (`engine.journal.request_control`),
which the engine polls and acts on; a run that has ended (or whose engine crashed) polls nothing,
so its controls are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static, TabbedContent
from textual.worker import Worker, WorkerState

from engine.domain import ControlCommand
from engine.journal.store import Journal, JournalError, request_control
from tui.data import Snapshot, load_snapshot, resolve_run, run_state, stale_after_ms
from tui.widgets import ConfirmBar, MonitorBody, PositionsTable, RunHeader

CONTROL_SOURCE = "tui"
WIDE_AT = Size(120, 36)  # from this terminal size up every panel shows at once; below, tabs


def refusal(command: str, run_id: str, state: str, mode: str) -> str:
    """One line: why a control for this run is not sent, and what to do instead."""
    line = f"cannot {command}: run {run_id} is {state}, nothing would act on the request"
    if mode != "backtest" and state != "finished":
        line += "; start `qctl trade` on this journal again (it resumes the run), then send it"
    return line


def is_compact(size: Size) -> bool:
    """One tab per panel unless the terminal has room for them all side by side."""
    return size.width < WIDE_AT.width or size.height < WIDE_AT.height


class ConfirmControl(ModalScreen[bool]):
    """Flatten and halt act on real positions: they need a second, explicit yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(self.question, id="confirm-question")
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
        Binding("f", "flatten(False)", "Flatten sel."),
        Binding("F", "flatten(True)", "Flatten all"),
        Binding("h", "halt", "Halt"),
        Binding("1", "tab('tab-positions')", "Pos.", show=False),
        Binding("2", "tab('tab-decisions')", "Dec.", show=False),
        Binding("3", "tab('tab-safety')", "Safety", show=False),
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
        symbol: str | None
        request_id: int

    @dataclass
    class ControlRefused(Message):
        """A control request was not written (the run has ended, nothing to act on...)."""

        reason: str

    snapshot: reactive[Snapshot | None] = reactive(None, init=False)
    error: reactive[str] = reactive("", init=False)
    selected_symbol: reactive[str | None] = reactive(None, init=False)

    def __init__(
        self,
        db: str | Path,
        run_id: str | None = None,
        refresh_seconds: float = 2.0,
        stale_seconds: float | None = None,
    ) -> None:
        super().__init__()
        self.db = Path(db)
        self.run_id = run_id
        self.refresh_seconds = refresh_seconds
        self.stale_seconds = stale_seconds
        self.sub_title = str(self.db)
        self._read_again = False

    def compose(self) -> ComposeResult:
        yield Static("reading the journal…", id="message")
        yield RunHeader(id="header")
        yield MonitorBody(compact=is_compact(self.size), id="body")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(self.refresh_seconds, self.reload)

    # `query_one` on the app searches the active screen, a dialog while one is open: the
    # monitor's own widgets are looked up on the screen below every dialog
    @property
    def _message(self) -> Static:
        return self.screen_stack[0].query_one("#message", Static)

    @property
    def _header(self) -> RunHeader:
        return self.screen_stack[0].query_one(RunHeader)

    @property
    def _body(self) -> MonitorBody:
        return self.screen_stack[0].query_one(MonitorBody)

    async def on_resize(self, event: Resize) -> None:
        compact = is_compact(event.size)
        if not self.screen_stack or not self.screen_stack[0].query(MonitorBody):
            return  # not composed yet: compose reads the size itself
        if compact == self._body.compact:
            return
        self._body.compact = compact
        await self._body.recompose()
        if self.snapshot is not None:
            self._body.show(self.snapshot)

    # -- reading -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the journal again; if a read is still going, once it is done (a slow disk never
        piles up threads, and a read asked for after a control still happens)."""
        busy = (WorkerState.PENDING, WorkerState.RUNNING)
        if any(w.group == "read" and w.state in busy for w in self.workers):
            self._read_again = True
            return
        self._read_again = False
        self._read_journal(self.db, self.run_id, self.snapshot)

    @work(thread=True, group="read", exit_on_error=False)
    def _read_journal(self, db: Path, run_id: str | None, previous: Snapshot | None) -> None:
        try:
            snap = load_snapshot(db, run_id, previous=previous)
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
        if event.worker.group == "read" and event.worker.is_finished and self._read_again:
            self.reload()

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if not self.screen_stack or not self.screen_stack[0].query("#message"):
            return  # a read that ends before the widgets exist or after they are gone
        self._show_message()
        if snap is None:
            return
        stale = self.stale_seconds
        self._header.stale_ms = stale_after_ms(snap.run) if stale is None else int(stale * 1000)
        self._header.show(snap)
        self._body.show(snap)

    def watch_error(self, error: str) -> None:
        if self.screen_stack:
            self._show_message()

    def _show_message(self) -> None:
        """The message line: the error if any, a wait note before the first read, else hidden."""
        message = self._message
        message.update(self.error or "reading the journal…")
        message.set_class(bool(self.error), "error")
        message.display = bool(self.error) or self.snapshot is None

    @on(PositionsTable.Selected)
    def _position_selected(self, event: PositionsTable.Selected) -> None:
        self.selected_symbol = event.symbol

    def action_tab(self, tab: str) -> None:
        for tabs in self._body.query(TabbedContent):
            tabs.active = tab

    # -- controls ----------------------------------------------------------------------------

    def action_control(self, command: str) -> None:
        self._request(ControlCommand(command))

    def action_flatten(self, everything: bool) -> None:
        if everything:
            self._confirm(ControlCommand.FLATTEN, None, "Close every position of run {run}?")
            return
        symbol = self.selected_symbol
        if symbol is None:
            self.notify("no open position selected (F flattens all)", severity="warning")
            return
        self._confirm(
            ControlCommand.FLATTEN, symbol, f"Close the {symbol} position of run {{run}}?"
        )

    def action_halt(self) -> None:
        self._confirm(
            ControlCommand.HALT, None, "Halt run {run}? It sends nothing new until resumed."
        )

    def _refusal(self, command: ControlCommand) -> str | None:
        """Why `command` cannot be sent now, if it cannot."""
        snap = self.snapshot
        if snap is None:
            return f"cannot {command}: no run shown"
        if not snap.run.accepts_controls:
            return refusal(str(command), snap.run.id, snap.run.state, snap.run.mode)
        return None

    def _confirm(self, command: ControlCommand, symbol: str | None, question: str) -> None:
        refusal = self._refusal(command)
        if refusal is not None:
            self.notify(refusal, severity="error")
            return
        assert self.snapshot is not None

        def answered(yes: bool | None) -> None:
            if yes:
                self._request(command, symbol)
            else:
                self.notify(f"{command} cancelled")

        self.push_screen(ConfirmControl(question.format(run=self.snapshot.run.id)), answered)

    def _request(self, command: ControlCommand, symbol: str | None = None) -> None:
        refusal = self._refusal(command)
        if refusal is not None:
            self.notify(refusal, severity="error")
            return
        assert self.snapshot is not None
        self._write_control(self.db, command, symbol, self.snapshot.run.id)

    @work(thread=True, group="control", exit_on_error=False)
    def _write_control(
        self, db: Path, command: ControlCommand, symbol: str | None, run_id: str
    ) -> None:
        """Check the run is still going (it may have ended since the last read), then queue."""
        try:
            with Journal.open_readonly(db) as journal:
                row = resolve_run(journal, run_id)
            state = run_state(row)
            if row["ended_ts"] is not None or state not in ("running", "unknown"):
                reason = refusal(str(command), run_id, state, str(row["mode"]))
                self.post_message(self.ControlRefused(reason))
                return
            request_id = request_control(
                db, command, symbol=symbol, source=CONTROL_SOURCE, run_id=run_id
            )
        except JournalError as exc:
            self.post_message(self.Failed(str(exc)))
        else:
            self.post_message(self.ControlSent(str(command), symbol, request_id))

    def on_monitor_app_control_sent(self, message: ControlSent) -> None:
        what = f"{message.command} {message.symbol}" if message.symbol else message.command
        self.notify(f"{what} requested (control #{message.request_id})")
        self.reload()

    def on_monitor_app_control_refused(self, message: ControlRefused) -> None:
        self.notify(message.reason, severity="error")
        self.reload()
