"""The Tables pane: listing, paging, jumping to a goroutine, following links."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import OptionList, Static

from sideeye_tui.explorer.tables_pane import PAGE_SIZE, ResultGrid, TablesPane, cell_text
from sideeye_tui.query.tables import fetch_page, goroutine_of, list_report_tables
from sideeye_tui.store import open_store

from .fixture_db import (
    DERIVED,
    HANDLE,
    HANDLE_DEPTH,
    HOLDER,
    LINK,
    LOCK_ACCOUNT,
    LOCK_DEPTH,
    PID,
    SNAPSHOT_1,
    SNAPSHOT_2,
    TRANSFER,
    TRANSFER_DEPTH,
    WAITERS_1,
    WAITERS_2,
)
from .fixture_reports import (
    BIG,
    BIG_ROWS,
    SCRATCH,
    add_extra_tables,
    hosted,
    normalise_links,
    settle,
    sync,
)


@pytest.fixture
def reports_db(fixture_db: str) -> str:
    normalise_links(fixture_db)
    add_extra_tables(fixture_db)
    return fixture_db


def _title(pane: TablesPane, selector: str = "#tables-title") -> str:
    content = pane.query_one(selector, Static).content
    return content.plain if isinstance(content, Text) else str(content)


def _column(grid: ResultGrid, index: int) -> list[str]:
    return [grid.get_row_at(r)[index].plain for r in range(grid.row_count)]


# -- the queries, without the widget -------------------------------------------------------


def test_lists_registered_tables_then_unregistered_then_errors(reports_db: str) -> None:
    with open_store(reports_db) as con:
        tables = list_report_tables(con, SNAPSHOT_1)
    names = [t.name for t in tables]
    assert names == sorted([HANDLE, LOCK_ACCOUNT, TRANSFER, BIG]) + [
        DERIVED,
        SCRATCH,
        "capture_errors",
    ]
    by_name = {t.name: t for t in tables}
    assert by_name[LOCK_ACCOUNT].rows == len(WAITERS_1)
    assert by_name[BIG].rows == BIG_ROWS
    assert by_name[SCRATCH].kind == "table"
    assert by_name["capture_errors"].kind == "errors"
    assert by_name[DERIVED].kind == "derived"
    with open_store(reports_db) as con:
        later = {t.name: t.rows for t in list_report_tables(con, SNAPSHOT_2)}
    assert later[TRANSFER] == 0 and later[LOCK_ACCOUNT] == len(WAITERS_2) and later[BIG] == 0


def test_a_file_without_reports_lists_nothing(tmp_path: Path) -> None:
    from .fixture_db import build_fixture_db

    path = build_fixture_db(tmp_path / "bare.duckdb", reports=False)
    with open_store(path) as con:
        assert list_report_tables(con, SNAPSHOT_1) == []


def test_pages_are_windows_of_the_snapshot(reports_db: str) -> None:
    with open_store(reports_db) as con:
        first = fetch_page(con, BIG, SNAPSHOT_1, 0, 100)
        last = fetch_page(con, BIG, SNAPSHOT_1, 200, 100)
        beyond = fetch_page(con, BIG, SNAPSHOT_1, 10_000, 100)
    assert first.total == BIG_ROWS and len(first.rows) == 100
    assert [r[first.columns.index("attempt")] for r in first.rows] == list(range(100))
    assert len(last.rows) == BIG_ROWS - 200 and last.rows[0][4] == 200
    assert beyond.offset == BIG_ROWS - 1 and len(beyond.rows) == 1  # clamped to the end


def test_goroutine_of_needs_pid_and_goid() -> None:
    ref = goroutine_of(("snapshot_id", "PID", "goid"), (2, 7, 9), 1)
    assert ref is not None and (ref.snapshot_id, ref.pid, ref.goid, ref.depth) == (2, 7, 9, None)
    assert goroutine_of(("pid", "note"), (7, "x"), 1) is None
    assert goroutine_of(("pid", "goid"), (7, None), 1) is None


def test_cells_are_one_short_line() -> None:
    long_json = '{"a": [1, 2, 3],\n "b": "' + "y" * 80 + '"}'
    text = cell_text(long_json, 30)
    assert len(text.plain) == 30 and text.plain.endswith("…") and "\n" not in text.plain
    assert cell_text(None).plain == "NULL"
    assert cell_text({"k": [1, 2]}).plain == '{"k":[1,2]}'
    assert cell_text(12.5).justify == "right"
    assert cell_text("main.Map[...]").plain == "main.Map[...]"  # never read as markup


# -- the widget ----------------------------------------------------------------------------


@sync
async def test_opens_a_function_table_and_jumps_to_a_goroutine(reports_db: str) -> None:
    async with hosted(lambda: TablesPane(reports_db, SNAPSHOT_1)) as (app, pilot):
        pane = app.query_one(TablesPane)
        listing = pane.query_one("#tables-list", OptionList)
        assert len(pane.tables) == 7
        headings = ["Function tables", "Derived tables", "Other tables", "Capture errors"]
        assert listing.option_count == len(pane.tables) + len(headings)
        assert [
            str(listing.get_option_at_index(i).prompt)
            for i in range(listing.option_count)
            if listing.get_option_at_index(i).disabled
        ] == headings
        assert pane.page is not None and pane.page.table == HANDLE  # first in the list
        # j/k move through the list, each table opening as it is highlighted.
        await pilot.press("j")
        await settle(pilot)
        assert listing.highlighted == 2 and pane.page.table == LOCK_ACCOUNT
        await pilot.press("k")
        await settle(pilot)
        # Drill in, go to the second row and open its goroutine.
        await pilot.press("enter")
        await settle(pilot)
        assert pane.page is not None and pane.page.table == HANDLE
        grid = pane.query_one("#tables-rows", ResultGrid)
        assert app.focused is grid
        assert _column(grid, 1) == [str(g) for g in WAITERS_1]  # snapshot_id is not shown
        assert "rows 1–5 of 5" in _title(pane)
        await pilot.press("j", "enter")
        await pilot.pause()
        assert app.shown == [(SNAPSHOT_1, PID, WAITERS_1[1], HANDLE_DEPTH)]
        # Esc goes back to the list, one level; a second Esc is not the pane's.
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is listing


@sync
async def test_follows_links_both_ways_and_on_to_goroutines(reports_db: str) -> None:
    async with hosted(lambda: TablesPane(reports_db, SNAPSHOT_1)) as (app, pilot):
        pane = app.query_one(TablesPane)
        names = [t.name for t in pane.tables]
        await pilot.press(*["j"] * names.index(LOCK_ACCOUNT), "enter")
        await settle(pilot)
        assert pane.page is not None and pane.page.table == LOCK_ACCOUNT
        await pilot.press("j", "j", "l")  # the third waiter
        await settle(pilot)
        links = pane.query_one("#tables-links", ResultGrid)
        assert links.display and app.focused is links
        assert [link.link for link in pane.links] == [LINK]
        assert [(link.table, link.goid, link.depth) for link in pane.links] == [
            (TRANSFER, HOLDER, TRANSFER_DEPTH)
        ]
        assert f"Links of row 3 of {LOCK_ACCOUNT}" in _title(pane, "#tables-links-title")
        await pilot.press("enter")
        await pilot.pause()
        assert app.shown == [(SNAPSHOT_1, PID, HOLDER, TRANSFER_DEPTH)]
        # Esc closes the links and returns to the rows.
        await pilot.press("escape")
        await pilot.pause()
        assert not links.display and app.focused is pane.query_one("#tables-rows")

        # From the holder's side: every waiter, each opening its own goroutine.
        await pilot.press("escape")
        assert pane.select_table(TRANSFER)
        await settle(pilot)
        await pilot.press("enter", "l")
        await settle(pilot)
        assert sorted(link.goid or 0 for link in pane.links) == list(WAITERS_1)
        assert {link.table for link in pane.links} == {LOCK_ACCOUNT}
        await pilot.press("G", "enter")
        await pilot.pause()
        assert app.shown[-1] == (SNAPSHOT_1, PID, pane.links[-1].goid, LOCK_DEPTH)


@sync
async def test_a_row_without_links_says_so(reports_db: str) -> None:
    async with hosted(lambda: TablesPane(reports_db, SNAPSHOT_1)) as (app, pilot):
        pane = app.query_one(TablesPane)
        assert pane.select_table(HANDLE)
        await settle(pilot)
        await pilot.press("enter", "l")
        await settle(pilot)
        assert pane.links == []
        assert _title(pane, "#tables-links-title").endswith("none")
        assert not pane.query_one("#tables-links").display


@sync
async def test_pages_through_a_long_table_a_page_at_a_time(reports_db: str) -> None:
    async with hosted(lambda: TablesPane(reports_db, SNAPSHOT_1)) as (app, pilot):
        pane = app.query_one(TablesPane)
        grid = pane.query_one("#tables-rows", ResultGrid)
        assert pane.select_table(BIG)
        await settle(pilot)
        assert pane.page is not None and pane.page.table == BIG
        assert grid.row_count == PAGE_SIZE
        assert f"rows 1–100 of {BIG_ROWS}" in _title(pane)
        await pilot.press("enter", "n")
        await settle(pilot)
        assert grid.row_count == PAGE_SIZE and _column(grid, 3)[0] == "100"
        await pilot.press("n")
        await settle(pilot)
        assert grid.row_count == BIG_ROWS - 2 * PAGE_SIZE
        assert f"rows 201–{BIG_ROWS} of {BIG_ROWS}" in _title(pane)
        await pilot.press("n")  # no further page: the key does nothing here
        await settle(pilot)
        assert pane.page.offset == 2 * PAGE_SIZE
        await pilot.press("p")
        await settle(pilot)
        assert pane.page.offset == PAGE_SIZE and _column(grid, 3)[-1] == "199"
        # JSON cells are shortened.
        payload = _column(grid, 4)[0]
        assert payload.startswith('{"seq":100,"note":"xxx') and payload.endswith("…")
        assert len(payload) == 40


@sync
async def test_derived_table_rows_open_goroutines_without_a_frame(reports_db: str) -> None:
    async with hosted(lambda: TablesPane(reports_db, SNAPSHOT_1)) as (app, pilot):
        pane = app.query_one(TablesPane)
        assert pane.select_table(DERIVED)
        await settle(pilot)
        await pilot.press("enter", "enter")
        await pilot.pause()
        # The derived table is ordered longest wait first: the last waiter.
        assert app.shown == [(SNAPSHOT_1, PID, WAITERS_1[-1], None)]


@sync
async def test_rows_without_a_goroutine_post_nothing(reports_db: str) -> None:
    async with hosted(lambda: TablesPane(reports_db, SNAPSHOT_1)) as (app, pilot):
        pane = app.query_one(TablesPane)
        assert pane.select_table(SCRATCH)
        await settle(pilot)
        assert pane.page is not None and pane.page.rows == ((1, "looked at the lock"),)
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert app.shown == []


@sync
async def test_switching_snapshot_keeps_the_table(reports_db: str) -> None:
    async with hosted(lambda: TablesPane(reports_db, SNAPSHOT_1)) as (app, pilot):
        pane = app.query_one(TablesPane)
        assert pane.select_table(LOCK_ACCOUNT)
        await settle(pilot)
        pane.set_snapshot(SNAPSHOT_2)
        await settle(pilot)
        assert pane.page is not None and pane.page.table == LOCK_ACCOUNT
        grid = pane.query_one("#tables-rows", ResultGrid)
        assert _column(grid, 1) == [str(g) for g in WAITERS_2]
        assert {row[0] for row in pane.page.rows} == {SNAPSHOT_2}
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert app.shown == [(SNAPSHOT_2, PID, WAITERS_2[0], LOCK_DEPTH)]


@sync
async def test_a_file_that_is_not_a_snapshot_file_is_said_in_place(tmp_path: Path) -> None:
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database at all\n" * 100)
    async with hosted(lambda: TablesPane(str(bad), 1)) as (app, _pilot):
        pane = app.query_one(TablesPane)
        assert "not a sideeye-tui database" in _title(pane)
        assert pane.tables == []
