"""Screenshots of the SQL console at 80x24 and 160x48 (pytest-textual-snapshot).

The console is given a clock that never moves, so the timing in its status line
reads 0 ms in every run. Update with `--snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from sideeye_tui.explorer.sql_console import SqlConsole, SqlInput
from sideeye_tui.explorer.sql_history import SqlHistory

from .fixture_db import SNAPSHOT_1
from .fixture_reports import PaneHost, settle

SIZES = [(80, 24), (160, 48)]
QUERY = (
    "SELECT pid, goid, status, wait_reason, wait_seconds, labels FROM goroutines"
    " WHERE snapshot_id = getvariable('snapshot') ORDER BY goid"
)


def _console(db: str) -> PaneHost:
    return PaneHost(lambda: SqlConsole(db, SNAPSHOT_1, history=SqlHistory(), clock=lambda: 0.0))


async def _run(pilot: Pilot[Any], sql: str) -> None:
    await settle(pilot)
    field = pilot.app.query_one(SqlInput)
    field.cursor_blink = False
    field.focus()
    field.value = sql
    await pilot.press("enter")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_results(snap_compare: Any, fixture_db: str, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _run(pilot, QUERY)

    assert snap_compare(_console(fixture_db), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_error_in_place(snap_compare: Any, fixture_db: str, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _run(pilot, "SELECT goid FROM goroutine")

    assert snap_compare(_console(fixture_db), terminal_size=size, run_before=run_before)
