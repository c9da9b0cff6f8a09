"""The SQL console: errors in place, results, history, jumps, cancelling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static

from sideeye_tui.explorer.sql_console import RESULT_ROWS, SqlConsole, SqlInput, execute_sql
from sideeye_tui.explorer.sql_history import MAX_ENTRIES, SqlHistory, default_history_path
from sideeye_tui.explorer.tables_pane import ResultGrid
from sideeye_tui.model import Snapshot
from sideeye_tui.store import open_store

from .fixture_db import PID, SNAPSHOT_1, SNAPSHOT_2, snapshot_1, snapshot_2
from .fixture_reports import hosted, settle, sync


@pytest.fixture(autouse=True)
def private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the real ~/.local/share: the default history lives under tmp."""
    home = tmp_path / "data-home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def _status(console: SqlConsole) -> str:
    content = console.query_one("#sql-status", Static).content
    return content.plain if isinstance(content, Text) else str(content)


async def _type(pilot: Pilot[Any], console: SqlConsole, sql: str) -> None:
    field = console.query_one(SqlInput)
    field.focus()
    field.value = sql
    await pilot.press("enter")
    await settle(pilot)


def _goroutines(snapshot: Snapshot) -> int:
    return sum(len(p.goroutines) for p in snapshot.processes)


@sync
async def test_an_error_in_place_then_a_good_query(fixture_db: str, tmp_path: Path) -> None:
    history = SqlHistory(tmp_path / "h")
    async with hosted(lambda: SqlConsole(fixture_db, SNAPSHOT_1, history=history)) as (
        app,
        pilot,
    ):
        console = app.query_one(SqlConsole)
        grid = console.query_one("#sql-results", ResultGrid)
        await _type(pilot, console, "SELEC goid FROM goroutines")
        assert _status(console) == 'Parser Error: syntax error at or near "SELEC"'
        assert console.query_one("#sql-status").has_class("error")
        assert grid.row_count == 0 and app.focused is console.query_one(SqlInput)

        await _type(
            pilot,
            console,
            "SELECT goid, status FROM goroutines "
            "WHERE snapshot_id = getvariable('snapshot') ORDER BY goid",
        )
        expected = _goroutines(snapshot_1())
        assert _status(console).startswith(f"{expected} rows · ")
        assert not console.query_one("#sql-status").has_class("error")
        assert grid.row_count == expected
        goids = sorted(g.goid for g in snapshot_1().processes[0].goroutines)
        assert [grid.get_row_at(r)[0].plain for r in range(grid.row_count)] == [
            str(g) for g in goids
        ]
        assert app.focused is grid  # results with rows take the focus; Esc gives it back
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is console.query_one(SqlInput)


@sync
async def test_errors_are_one_line_and_writes_are_refused(fixture_db: str) -> None:
    async with hosted(lambda: SqlConsole(fixture_db, SNAPSHOT_1)) as (app, pilot):
        console = app.query_one(SqlConsole)
        await _type(pilot, console, "SELECT 'a'::INTEGER")
        assert _status(console).startswith("Conversion Error:")
        assert "\n" not in _status(console)
        await _type(pilot, console, "DELETE FROM goroutines")
        assert "read-only" in _status(console)
        await _type(pilot, console, "SELECT count(*) FROM no_such_table")
        assert _status(console).startswith("Catalog Error: Table with name no_such_table")


@sync
async def test_history_recall_and_persistence(fixture_db: str, private_data_home: Path) -> None:
    first = "SELECT count(*) FROM goroutines"
    second = "SELECT count(*) FROM frames"
    async with hosted(lambda: SqlConsole(fixture_db, SNAPSHOT_1)) as (app, pilot):
        console = app.query_one(SqlConsole)
        field = console.query_one(SqlInput)
        await _type(pilot, console, first)
        await _type(pilot, console, second)
        await _type(pilot, console, second)  # a repeat is kept once
        field.focus()
        field.value = "SELECT 1 -- draft"
        await pilot.press("up")
        assert field.value == second
        await pilot.press("up")
        assert field.value == first
        await pilot.press("up")  # the oldest stays
        assert field.value == first
        await pilot.press("down")
        assert field.value == second
        await pilot.press("down")
        assert field.value == "SELECT 1 -- draft"
    # Persisted under the user's data directory, private, for the next session.
    path = private_data_home / "sideeye-tui" / "sql_history"
    assert default_history_path() == path
    assert path.stat().st_mode & 0o077 == 0
    assert SqlHistory(path).entries == [first, second]


def test_history_keeps_multi_line_queries_and_skips_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "h"
    history = SqlHistory(path)
    history.add("SELECT 1\nFROM t")
    with path.open("a") as f:
        f.write('"SELECT torn')  # a crash mid-write
    assert SqlHistory(path).entries == ["SELECT 1\nFROM t"]
    many = SqlHistory(tmp_path / "many")
    for i in range(MAX_ENTRIES + 5):
        many.add(f"SELECT {i}")
    assert SqlHistory(tmp_path / "many").entries[0] == "SELECT 5"
    assert len(many.entries) == MAX_ENTRIES
    # The file only grows by appends; loading trims it once it is twice too long.
    for i in range(MAX_ENTRIES):
        many.add(f"SELECT {i} + 1")
    assert len((tmp_path / "many").read_text().splitlines()) == 2 * MAX_ENTRIES + 5
    reloaded = SqlHistory(tmp_path / "many")
    assert reloaded.entries == many.entries
    assert len((tmp_path / "many").read_text().splitlines()) == MAX_ENTRIES


@sync
async def test_result_rows_with_goroutines_open_them(fixture_db: str) -> None:
    async with hosted(lambda: SqlConsole(fixture_db, SNAPSHOT_1)) as (app, pilot):
        console = app.query_one(SqlConsole)
        await _type(
            pilot,
            console,
            "SELECT snapshot_id, pid, goid, depth, function FROM frames "
            "WHERE function = 'main.(*Server).lockAccount' ORDER BY snapshot_id DESC, goid",
        )
        assert "Enter: goroutine" in _status(console)
        await pilot.press("enter")
        await pilot.pause()
        first_waiter = min(
            g.goid
            for g in snapshot_2().processes[0].goroutines
            if any(f.function == "main.(*Server).lockAccount" for f in g.frames)
        )
        assert app.shown == [(SNAPSHOT_2, PID, first_waiter, 5)]
        # Without a snapshot_id column the console's snapshot is used.
        await _type(pilot, console, "SELECT 1001 AS pid, 20 AS goid")
        await pilot.press("enter")
        await pilot.pause()
        assert app.shown[-1] == (SNAPSHOT_1, PID, 20, None)
        # A row that names no goroutine posts nothing.
        await _type(pilot, console, "SELECT 42 AS answer")
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.shown) == 2


@sync
async def test_large_results_show_the_first_rows_and_the_count(fixture_db: str) -> None:
    async with hosted(lambda: SqlConsole(fixture_db, SNAPSHOT_1)) as (app, pilot):
        console = app.query_one(SqlConsole)
        await _type(pilot, console, "SELECT range AS n FROM range(123456)")
        assert _status(console).startswith(f"123,456 rows (first {RESULT_ROWS} shown) · ")
        assert console.query_one("#sql-results", ResultGrid).row_count == RESULT_ROWS
        await _type(pilot, console, "SET VARIABLE x = 1")
        assert _status(console).startswith("OK · ")


@sync
async def test_the_snapshot_variable_follows_set_snapshot(fixture_db: str) -> None:
    async with hosted(lambda: SqlConsole(fixture_db, SNAPSHOT_1)) as (app, pilot):
        console = app.query_one(SqlConsole)
        console.set_snapshot(SNAPSHOT_2)
        await _type(
            pilot,
            console,
            "SELECT count(*) AS n FROM goroutines WHERE snapshot_id = getvariable('snapshot')",
        )
        grid = console.query_one("#sql-results", ResultGrid)
        assert grid.get_row_at(0)[0].plain == str(_goroutines(snapshot_2()))


@sync
async def test_a_long_query_is_cancelled_with_escape(fixture_db: str) -> None:
    async with hosted(lambda: SqlConsole(fixture_db, SNAPSHOT_1)) as (app, pilot):
        console = app.query_one(SqlConsole)
        field = console.query_one(SqlInput)
        field.value = "SELECT count(*) FROM range(100000000000) t(x) WHERE x % 7 = 3"
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert console.running and _status(console).startswith("running")
        await pilot.press("escape")
        await settle(pilot)
        assert not console.running
        assert _status(console) == "query cancelled"
        # The console is usable again at once.
        await _type(pilot, console, "SELECT 7 AS n")
        assert console.query_one("#sql-results", ResultGrid).get_row_at(0)[0].plain == "7"


def test_execute_sql_counts_in_duckdb(fixture_db: str) -> None:
    with open_store(fixture_db) as con:
        result = execute_sql(con.cursor(), "SELECT * FROM range(10) ORDER BY range DESC", 1, 3)
    assert result.total == 10 and result.rows == ((9,), (8,), (7,))
    assert result.columns == ("range",) and result.returned_rows
