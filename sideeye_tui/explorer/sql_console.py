"""The SQL console: any DuckDB SQL against the snapshot file, results in a table.

The query runs in a worker thread on a cursor of a read-only connection, so typing
never waits for DuckDB, and Esc interrupts it (DuckDB's own interrupt). Only the
first rows come back to the widget; the count of the rest is DuckDB's. The variable
`snapshot` holds the snapshot the explorer shows (`getvariable('snapshot')`), so a
saved query follows the user from one snapshot to the next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from ..errors import SideEyeError
from ..query.reader import Connection, FileConnection
from ..query.tables import goroutine_of
from ..text import printable
from . import keymap
from .keymap import Key
from .messages import Answering, ShowGoroutine
from .sql_history import SqlHistory, default_history_path
from .tables_pane import ResultGrid, format_rows, key_bindings

RESULT_ROWS = 500  # rows of a result put in the table; the count covers all of them
# The console's keys, registered with the explorer's keymap (help screen, keymap.toml).
SQL_INPUT_KEYS = (
    Key("sql.run", "enter", "submit", "Run the query"),
    Key("sql.history_previous", "up", "history_previous", "Previous query", show=False),
    Key("sql.history_next", "down", "history_next", "Next query", show=False),
)
SQL_CONSOLE_KEYS = (
    Key("sql.cancel", "escape", "cancel_query", "Cancel the query"),
    Key("sql.back", "escape", "back", "Back to the query", show=False),
)
keymap.REGISTRY["sql"] = SQL_INPUT_KEYS + SQL_CONSOLE_KEYS
PLACEHOLDER = "SQL, Enter runs · getvariable('snapshot') is the snapshot shown · ↑↓ history"


@dataclass(frozen=True)
class SqlResult:
    """The first rows of a statement's result, and how many rows it had in all."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    total: int
    seconds: float
    returned_rows: bool  # False for statements without a result (SET, ...)


def execute_sql(
    cur: duckdb.DuckDBPyConnection,
    sql: str,
    snapshot_id: int,
    limit: int = RESULT_ROWS,
    clock: Callable[[], float] = time.perf_counter,
) -> SqlResult:
    """Run sql on cur; raises duckdb.Error with DuckDB's message when it fails."""
    start = clock()
    cur.execute("SET VARIABLE snapshot = ?", [snapshot_id])
    rel = cur.sql(sql)
    if rel is None:
        return SqlResult((), (), (), 0, clock() - start, returned_rows=False)
    rows = rel.limit(limit + 1).fetchall()
    total = len(rows)
    if total > limit:
        # Counting is DuckDB's job: the rows past the first page never reach Python.
        counted = rel.count("*").fetchone()
        total = int(counted[0]) if counted else total
        rows = rows[:limit]
    return SqlResult(
        columns=tuple(rel.columns),
        types=tuple(str(t) for t in rel.types),
        rows=tuple(tuple(r) for r in rows),
        total=total,
        seconds=clock() - start,
        returned_rows=True,
    )


def error_line(err: BaseException) -> str:
    """DuckDB's message on one line: its first (the rest is a caret under the SQL)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class SqlInput(Input):
    """The query line: Enter runs it, up and down recall the history."""

    BINDINGS: ClassVar[list[BindingType]] = key_bindings(SQL_INPUT_KEYS)

    def __init__(self, history: SqlHistory, *, id: str | None = None) -> None:
        super().__init__(placeholder=PLACEHOLDER, id=id)
        self.history = history

    def _recall(self, text: str | None) -> None:
        if text is not None:
            self.value = text
            self.cursor_position = len(text)

    def action_history_previous(self) -> None:
        self._recall(self.history.previous(self.value))

    def action_history_next(self) -> None:
        self._recall(self.history.next())


class SqlConsole(Answering, Widget):
    """A SQL prompt over the whole snapshot file, its result or its error in place."""

    DEFAULT_CSS = """
    SqlConsole { height: 1fr; }
    SqlConsole #sql-input { height: 3; }
    SqlConsole #sql-status { height: 1; padding: 0 1; }
    SqlConsole #sql-status.error { color: $error; text-style: bold; }
    SqlConsole #sql-results { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = key_bindings(SQL_CONSOLE_KEYS)

    def __init__(
        self,
        source: str | Connection,
        snapshot_id: int,
        *,
        history: SqlHistory | None = None,
        clock: Callable[[], float] = time.perf_counter,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.snapshot_id = snapshot_id
        self.history = history if history is not None else SqlHistory(default_history_path())
        # The Reader's connection() (or a file's path, opened the same way).
        self.reader = FileConnection(source) if isinstance(source, str) else source
        self.clock = clock  # times queries; tests pass a fixed one for stable screens
        self.result: SqlResult | None = None
        self.error: str | None = None
        # The cursor of the running query, shared with the worker thread under the lock.
        self._lock = threading.Lock()
        self._running_cursor: duckdb.DuckDBPyConnection | None = None
        self._generation = 0  # of the latest query: answers to older ones are dropped
        self._cancelled = 0  # the latest generation cancel() was called for
        self._busy = False  # a query is running, as the event loop sees it

    def compose(self) -> ComposeResult:
        yield SqlInput(self.history, id="sql-input")
        yield Static(
            Text("Tables: SHOW TABLES · columns: DESCRIBE goroutines", style="dim"), id="sql-status"
        )
        yield ResultGrid(id="sql-results")

    def on_unmount(self) -> None:
        self.cancel()
        self.reader.release()

    # -- public interface for the app -------------------------------------------------

    def set_snapshot(self, snapshot_id: int) -> None:
        """The snapshot getvariable('snapshot') names from the next query on."""
        self.snapshot_id = snapshot_id

    def release(self) -> None:
        """Close the file (so a snapshot can be written to it); the next query reopens."""
        self.cancel()
        self.reader.release()

    def run_query(self, sql: str) -> None:
        """Run sql as if typed: recorded in the history, result or error shown here."""
        sql = sql.strip()
        if not sql:
            return
        self.history.add(sql)
        self.cancel()
        self._generation += 1
        self._busy = True
        self._set_status(Text("running…  Esc cancels", style="dim"))
        self._run(self._generation, sql, self.snapshot_id)

    def cancel(self) -> None:
        """Interrupt the running query, if any (DuckDB stops it at its next check)."""
        with self._lock:
            self._cancelled = self._generation
            if self._running_cursor is not None:
                self._running_cursor.interrupt()

    @property
    def running(self) -> bool:
        return self._busy

    # -- the worker ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sql")
    def _run(self, generation: int, sql: str, snapshot_id: int) -> None:
        try:
            cur = self.reader.cursor()
        except SideEyeError as err:
            self.answer(self._show_error, generation, str(err))
            return
        try:
            with self._lock:
                if self._cancelled >= generation:
                    raise duckdb.InterruptException("cancelled before it started")
                self._running_cursor = cur
            result = execute_sql(cur, sql, snapshot_id, clock=self.clock)
            cells = format_rows(result.rows, result.types)
        except duckdb.InterruptException:
            self.answer(self._show_cancelled, generation)
            return
        except duckdb.Error as err:
            self.answer(self._show_error, generation, error_line(err))
            return
        finally:
            with self._lock:
                if self._running_cursor is cur:
                    self._running_cursor = None
            cur.close()
        self.answer(self._show_result, generation, result, cells)

    # -- handlers ------------------------------------------------------------------------

    def _set_status(self, text: Text, error: bool = False) -> None:
        status = self.query_one("#sql-status", Static)
        status.set_class(error, "error")
        status.update(text)
        self.refresh_bindings()

    def _show_error(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._busy = False
        self.result, self.error = None, message
        self.query_one("#sql-results", ResultGrid).clear(columns=True)
        self._set_status(Text(printable(message)), error=True)

    def _show_cancelled(self, generation: int) -> None:
        if generation != self._generation:
            return
        self._busy = False
        self._set_status(Text("query cancelled", style="dim"))

    def _show_result(self, generation: int, result: SqlResult, cells: list[list[Text]]) -> None:
        if generation != self._generation:
            return
        self._busy = False
        self.result, self.error = result, None
        grid = self.query_one("#sql-results", ResultGrid)
        grid.clear(columns=True)
        ms = f"{result.seconds * 1000:,.0f} ms"
        if not result.returned_rows:
            self._set_status(Text(f"OK · {ms}", style="dim"))
            return
        for column in result.columns:
            grid.add_column(Text(printable(column), style="bold"))
        grid.add_rows(cells)
        noun = "row" if result.total == 1 else "rows"
        status = Text(f"{result.total:,} {noun}")
        if result.total > len(result.rows):
            status.append(f" (first {len(result.rows):,} shown)")
        status.append(f" · {ms}", style="dim")
        if result.rows and goroutine_of(result.columns, result.rows[0], self.snapshot_id):
            status.append(" · Enter: goroutine", style="dim")
        self._set_status(status)
        if result.rows:
            grid.focus()

    # -- events and actions ----------------------------------------------------------------

    @on(Input.Submitted, "#sql-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.run_query(event.value)

    @on(DataTable.RowSelected, "#sql-results")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        result = self.result
        if result is None or not 0 <= event.cursor_row < len(result.rows):
            return
        ref = goroutine_of(result.columns, result.rows[event.cursor_row], self.snapshot_id)
        if ref is None:
            self.notify(
                "This row names no goroutine (no pid and goid columns).", severity="warning"
            )
            return
        self.post_message(ShowGoroutine(ref.snapshot_id, ref.pid, ref.goid, ref.depth))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_query":
            return self.running
        if action == "back":
            focused = self.screen.focused
            return not self.running and focused is not None and focused.id == "sql-results"
        return True

    def action_cancel_query(self) -> None:
        self.cancel()

    def action_back(self) -> None:
        self.query_one("#sql-input", SqlInput).focus()
