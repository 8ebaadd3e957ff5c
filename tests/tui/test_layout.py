"""The monitor fits 80x24 first: snapshot-style checks of what the terminal shows, small and big.

At 80x24 each panel has a tab of its own; from 120x36 up every panel shows at once. At both sizes
the state and equity stay on the header's first row, no panel is squeezed to nothing, and the
newest decision's whole reason is on screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widget import Widget
from textual.widgets import DataTable, Sparkline, TabbedContent

from tests.tui.conftest import screen_text, settle
from tui.app import MonitorApp, is_compact
from tui.widgets import DecisionDetail, LimitGauge, SafetyPanel

NO_TIMER = 3600.0
PANELS = {  # tab -> the widgets it shows
    "tab-positions": ("#positions",),
    "tab-decisions": ("#decisions", "#decision-detail"),
    "tab-safety": ("#gauge-margin", "#gauge-exposure", "#gauge-position", "#equity"),
}


def _flat(text: str) -> str:
    """Screen text with the rows joined and runs of blanks and borders squeezed to one space."""
    return re.sub(r"[\s│]+", " ", text)


def _assert_visible(widget: Widget, min_width: int) -> None:
    region = widget.region
    assert region.width >= min_width and region.height >= 1, (widget, region)


def _assert_header(app: MonitorApp, rows: list[str]) -> None:
    snap = app.snapshot
    assert snap is not None and snap.equity is not None
    assert rows[0].split()[0] == snap.equity.state
    assert "equity" in rows[0] and f"{snap.equity.equity:,.2f}" in rows[0]
    assert snap.run.id in rows[1] and snap.run.status in rows[1]


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
def test_every_panel_is_readable(
    size: tuple[int, int], backtest_journal: Path, run_async: Callable
) -> None:
    async def scenario() -> None:
        app = MonitorApp(backtest_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            snap = app.snapshot
            assert snap is not None and snap.positions and snap.decisions
            compact = bool(app.query(TabbedContent))
            assert compact == (size == (80, 24)) == is_compact(app.size)
            min_width = size[0] - 4 if compact else 40
            for tab, selectors in PANELS.items():
                if compact:
                    await pilot.press(str(list(PANELS).index(tab) + 1))
                    await pilot.pause()
                    assert app.query_one(TabbedContent).active == tab
                rows = screen_text(app).splitlines()
                assert len(rows) == size[1]
                _assert_header(app, rows)
                for selector in selectors:
                    _assert_visible(app.query_one(selector), min_width)
                flat = _flat("\n".join(rows))
                if tab == "tab-positions":
                    assert snap.positions[0].symbol in flat
                if tab == "tab-decisions":
                    newest = snap.decisions[0]
                    assert len(newest.why) > 40  # the sample's reasons are long enough to test
                    assert _flat(newest.why) in flat  # whole, not cut
                if tab == "tab-safety":
                    gauge = app.query_one("#gauge-margin", LimitGauge)
                    assert "limit ≥ 10 %" in str(gauge.render())
                    assert "safety events" in flat

    run_async(scenario())


def test_resizing_switches_layout_and_keeps_the_data(
    backtest_journal: Path, run_async: Callable
) -> None:
    async def scenario() -> None:
        app = MonitorApp(backtest_journal, refresh_seconds=NO_TIMER)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(app, pilot)
            assert not app.query(TabbedContent)
            n_positions = app.query_one("#positions", DataTable).row_count
            assert n_positions > 0
            await pilot.resize_terminal(80, 24)
            await settle(app, pilot)
            assert app.query(TabbedContent)
            assert app.query_one("#positions", DataTable).row_count == n_positions
            assert app.query_one("#decisions", DataTable).row_count > 0
            assert app.query_one("#equity", Sparkline).data
            assert app.query_one(SafetyPanel).query_one("#gauge-margin", LimitGauge).value
            detail = str(app.query_one(DecisionDetail).render())
            assert app.snapshot is not None and app.snapshot.decisions[0].why in detail
            await pilot.resize_terminal(160, 45)
            await settle(app, pilot)
            assert not app.query(TabbedContent)
            assert app.query_one("#positions", DataTable).row_count == n_positions

    run_async(scenario())
