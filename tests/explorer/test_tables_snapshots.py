"""Screenshots of the Tables pane at 80x24 and 160x48 (pytest-textual-snapshot).

Update after a deliberate change with `--snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from sideeye_tui.explorer.tables_pane import TablesPane

from .fixture_db import HANDLE, LOCK_ACCOUNT, SNAPSHOT_1
from .fixture_reports import PaneHost, add_extra_tables, normalise_links, settle

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def reports_db(fixture_db: str) -> str:
    normalise_links(fixture_db)
    add_extra_tables(fixture_db)
    return fixture_db


async def _open(pilot: Pilot[Any], table: str, *keys: str) -> None:
    await settle(pilot)
    assert pilot.app.query_one(TablesPane).select_table(table)
    await settle(pilot)
    await pilot.press("enter", *keys)
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_function_table_with_json_cells(
    snap_compare: Any, reports_db: str, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _open(pilot, HANDLE, "j")

    app = PaneHost(lambda: TablesPane(reports_db, SNAPSHOT_1))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_linked_rows_of_a_waiter(snap_compare: Any, reports_db: str, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _open(pilot, LOCK_ACCOUNT, "j", "l")

    app = PaneHost(lambda: TablesPane(reports_db, SNAPSHOT_1))
    assert snap_compare(app, terminal_size=size, run_before=run_before)
