"""The Tables pane: a snapshot's function and derived tables, a page at a time.

The pane lists the report tables of the snapshot on the left and shows the
highlighted one on the right, a page of rows at a time (LIMIT/OFFSET: a 100,000-row
table never enters the widget whole). From a row, Enter opens its goroutine (the
app handles ShowGoroutine) and `l` follows its links into a second table, whose
rows open their own goroutines. Every query runs in a worker thread on a cursor of
the pane's own read-only connection; results come back as WorkerAnswer messages
(messages.Answering: posting never blocks the worker, and a pane already gone simply
drops them), tagged so a slow answer to an old request never overwrites a newer one.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import duckdb
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from ..errors import SideEyeError
from ..query.reader import Connection, FileConnection
from ..query.spec_tables import LinkedRow, linked_rows
from ..query.tables import (
    GoroutineRef,
    Page,
    ReportTable,
    fetch_page,
    goroutine_of,
    list_report_tables,
)
from ..text import printable
from . import keymap
from .keymap import Key
from .messages import Answering, ShowGoroutine

PAGE_SIZE = 100
CELL_WIDTH = 40  # characters of a cell before it is cut with an ellipsis
GOROUTINE_COLUMNS = frozenset({"snapshot_id", "pid", "goid", "depth"})
KIND_HEADINGS = {
    "function": "Function tables",
    "derived": "Derived tables",
    "table": "Other tables",
    "messages": "Spec messages",
    "errors": "Capture errors",
}


# The pane's keys, registered with the explorer's keymap (help screen, keymap.toml).
ROWS_KEYS = (
    Key("rows.open", "enter", "select_cursor", "Open the row's goroutine"),
    Key("rows.down", "j", "cursor_down", "Down", show=False),
    Key("rows.up", "k", "cursor_up", "Up", show=False),
    Key("rows.first", "g", "scroll_top", "First row", show=False),
    Key("rows.last", "G", "scroll_bottom", "Last row", show=False),
)
TABLE_LIST_KEYS = (
    Key("tables.down", "j", "cursor_down", "Down", show=False),
    Key("tables.up", "k", "cursor_up", "Up", show=False),
    Key("tables.first", "g", "first", "First table", show=False),
    Key("tables.last", "G", "last", "Last table", show=False),
)
TABLES_PANE_KEYS = (
    Key("tables.follow_links", "l", "follow_links", "Linked rows"),
    Key("tables.next_page", "n", "next_page", "Next page"),
    Key("tables.prev_page", "p", "prev_page", "Previous page"),
    Key("tables.back", "escape", "back", "Back", show=False),
)
keymap.REGISTRY["tables"] = TABLES_PANE_KEYS + TABLE_LIST_KEYS
keymap.REGISTRY["rows"] = ROWS_KEYS


def key_bindings(keys: tuple[Key, ...]) -> list[BindingType]:
    """Textual bindings for registry keys: the id is what a user's keymap remaps."""
    return [Binding(k.keys, k.action, k.description, show=k.show, id=k.id) for k in keys]


JSON_PARSE_LIMIT = 64 * 1024  # longer JSON texts are cut as they are, not re-encoded


def _compact_json(text: str) -> str:
    if len(text) > JSON_PARSE_LIMIT:
        return text
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text


def cell_text(value: Any, limit: int = CELL_WIDTH, is_json: bool = False) -> Text:
    """A cell on one line: JSON compacted, long values cut, NULL dimmed, numbers right.

    Strings become Text, never markup: Go names such as `main.Map[...]` hold brackets.
    """
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, int | float):
        return Text(str(value), justify="right")
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    elif is_json and isinstance(value, str):
        text = _compact_json(value)
    else:
        text = str(value)
    text = " ".join(text.split()) if any(c in text for c in "\n\r\t") else text
    if len(text) > limit:
        text = text[: max(1, limit - 1)] + "…"
    return Text(printable(text))  # a value the target chose: never a raw ESC


def format_rows(
    rows: tuple[tuple[Any, ...], ...], types: tuple[str, ...], keep: list[int] | None = None
) -> list[list[Text]]:
    """The cells of rows, columns keep (all when None); run in the worker, not the UI."""
    columns = keep if keep is not None else list(range(len(types)))
    json_columns = {i for i in columns if types[i] == "JSON"}
    return [[cell_text(row[i], is_json=i in json_columns) for i in columns] for row in rows]


class ResultGrid(DataTable[Text]):
    """A row-cursor DataTable with the explorer's list keys (j/k/g/G), all with ids."""

    BINDINGS: ClassVar[list[BindingType]] = key_bindings(ROWS_KEYS)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)


class TableList(OptionList):
    """The list of report tables, with the same list keys as the grids."""

    BINDINGS: ClassVar[list[BindingType]] = key_bindings(TABLE_LIST_KEYS)


def _shown_columns(page: Page) -> list[int]:
    """Every column but snapshot_id: the page is filtered to one snapshot already."""
    return [i for i, name in enumerate(page.columns) if name != "snapshot_id"] or [0]


def _error_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class TablesPane(Answering, Widget):
    """Function tables and derived tables of one snapshot, with their links."""

    DEFAULT_CSS = """
    TablesPane { height: 1fr; }
    TablesPane #tables-list { width: 32; max-width: 40%; height: 1fr; }
    TablesPane #tables-main { width: 1fr; height: 1fr; }
    TablesPane .tables-title { height: 1; padding: 0 1; background: $boost; }
    TablesPane #tables-rows { height: 1fr; }
    TablesPane #tables-links { height: 1fr; }
    TablesPane .hidden { display: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = key_bindings(TABLES_PANE_KEYS)

    def __init__(
        self,
        source: str | Connection,
        snapshot_id: int,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """source: the Reader's connection() (or a file's path, opened the same way)."""
        super().__init__(name=name, id=id, classes=classes)
        self.snapshot_id = snapshot_id
        self.reader = FileConnection(source) if isinstance(source, str) else source
        self.tables: list[ReportTable] = []
        self.page: Page | None = None
        self.links: list[LinkedRow] = []
        self._wanted: tuple[str, int] | None = None  # the page asked for last
        # Request counters per kind of answer: a newer request makes older answers stale.
        self._generation = {"tables": 0, "page": 0, "links": 0}

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield TableList(id="tables-list")
            with Vertical(id="tables-main"):
                yield Static(Text("Loading tables…"), id="tables-title", classes="tables-title")
                yield ResultGrid(id="tables-rows")
                yield Static(Text(""), id="tables-links-title", classes="tables-title hidden")
                yield ResultGrid(id="tables-links")

    def on_mount(self) -> None:
        self.query_one("#tables-links", ResultGrid).add_class("hidden")
        self._load_tables(self._bump("tables", "page", "links"), None)

    def on_unmount(self) -> None:
        self.reader.release()

    # -- public interface for the app -------------------------------------------------

    def set_snapshot(self, snapshot_id: int) -> None:
        """Show another snapshot of the same file, keeping the selected table if it has one."""
        self.snapshot_id = snapshot_id
        keep = self._wanted[0] if self._wanted is not None else None
        self._wanted = None
        self._hide_links()
        self._load_tables(self._bump("tables", "page", "links"), keep)

    def release(self) -> None:
        """Close the file (so a snapshot can be written to it); the next query reopens."""
        self.reader.release()

    def select_table(self, name: str) -> bool:
        """Highlight (and so open) the table called name; False if the snapshot has none."""
        names = [t.name for t in self.tables]
        if name not in names:
            return False
        listing = self.query_one("#tables-list", TableList)
        listing.highlighted = listing.get_option_index(str(names.index(name)))
        return True

    # -- workers: queries off the event loop --------------------------------------------

    def _bump(self, kind: str, *also: str) -> int:
        """A new request of kind (and a reset of the others named): its generation."""
        for k in (kind, *also):
            self._generation[k] += 1
        return self._generation[kind]

    def _current(self, kind: str, generation: int) -> bool:
        return self._generation[kind] == generation

    @work(thread=True, exclusive=True, group="tables-list")
    def _load_tables(self, generation: int, keep: str | None) -> None:
        snapshot_id = self.snapshot_id
        try:
            cur = self.reader.cursor()
            try:
                tables = list_report_tables(cur, snapshot_id)
            finally:
                cur.close()
        except (duckdb.Error, SideEyeError) as err:
            self.answer(self._show_error, "tables", generation, _error_line(err))
            return
        self.answer(self._show_tables, generation, tables, keep)

    @work(thread=True, exclusive=True, group="tables-page")
    def _load_page(self, generation: int, table: str, offset: int) -> None:
        snapshot_id = self.snapshot_id
        try:
            cur = self.reader.cursor()
            try:
                page = fetch_page(cur, table, snapshot_id, offset, PAGE_SIZE)
            finally:
                cur.close()
        except (duckdb.Error, SideEyeError) as err:
            message = f"{table}: {_error_line(err)}"
            self.answer(self._show_error, "page", generation, message)
            return
        keep = _shown_columns(page)
        cells = format_rows(page.rows, page.types, keep)
        self.answer(self._show_page, generation, page, keep, cells)

    @work(thread=True, exclusive=True, group="tables-links")
    def _load_links(
        self, generation: int, table: str, position: int, row: dict[str, object]
    ) -> None:
        snapshot_id = self.snapshot_id
        try:
            cur = self.reader.cursor()
            try:
                links = linked_rows(cur, snapshot_id, table, row)
            finally:
                cur.close()
        except (duckdb.Error, SideEyeError) as err:
            self.answer(self._show_links_error, generation, f"links: {_error_line(err)}")
            return
        self.answer(self._show_links, generation, table, position, links)

    # -- handlers: the pane's state changes on the event loop -----------------------------

    def _show_error(self, kind: str, generation: int, message: str) -> None:
        if not self._current(kind, generation):
            return
        self.query_one("#tables-title", Static).update(Text(printable(message), style="bold red"))

    def _show_tables(self, generation: int, tables: list[ReportTable], keep: str | None) -> None:
        if not self._current("tables", generation):
            return
        self.tables = tables
        self.page = None
        listing = self.query_one("#tables-list", TableList)
        listing.clear_options()
        options: list[Option] = []
        for i, t in enumerate(tables):
            if i == 0 or tables[i - 1].kind != t.kind:
                heading = KIND_HEADINGS.get(t.kind, t.kind)
                options.append(Option(Text(heading, style="bold dim"), disabled=True))
            count = Text(f" {t.rows:,}", style="dim" if t.rows else "dim italic")
            options.append(Option(Text.assemble(printable(t.name), count), id=str(i)))
        listing.add_options(options)
        self.query_one("#tables-rows", ResultGrid).clear(columns=True)
        if not tables:
            self.query_one("#tables-title", Static).update(
                Text(
                    "No function or derived tables in this file: "
                    "apply a spec to capture some (SQL pane queries the core tables).",
                    style="dim",
                )
            )
            return
        names = [t.name for t in tables]
        index = names.index(keep) if keep in names else 0
        listing.highlighted = listing.get_option_index(str(index))
        # Setting the highlight posts OptionHighlighted, but only when it changes: open
        # the table here so that a kept selection reloads for the new snapshot.
        self._open_table(tables[index].name, 0)

    def _open_table(self, table: str, offset: int) -> None:
        if self._wanted == (table, offset):
            return
        self._wanted = (table, offset)
        self._hide_links()
        self.query_one("#tables-title", Static).update(
            Text(f"{printable(table)} · loading…", style="dim")
        )
        self._load_page(self._bump("page", "links"), table, offset)

    def _show_page(
        self, generation: int, page: Page, keep: list[int], cells: list[list[Text]]
    ) -> None:
        if not self._current("page", generation):
            return
        self._wanted = (page.table, page.offset)  # an offset past the end comes back clamped
        self.page = page
        grid = self.query_one("#tables-rows", ResultGrid)
        grid.clear(columns=True)
        for i in keep:
            grid.add_column(Text(printable(page.columns[i]), style="bold"))
        grid.add_rows(cells)
        self.query_one("#tables-title", Static).update(self._page_title(page))
        self.refresh_bindings()

    def _page_title(self, page: Page) -> Text:
        title = Text(printable(page.table), style="bold")
        if page.total == 0:
            title.append("  no rows in this snapshot", style="dim")
            return title
        last = page.offset + len(page.rows)
        title.append(f"  rows {page.offset + 1:,}–{last:,} of {page.total:,}", style="dim")
        if page.total > len(page.rows):
            title.append("  n/p: page", style="dim")
        return title

    def _hide_links(self) -> None:
        self.links = []
        self.query_one("#tables-links-title", Static).add_class("hidden")
        grid = self.query_one("#tables-links", ResultGrid)
        grid.add_class("hidden")
        grid.clear(columns=True)

    def _show_links_error(self, generation: int, message: str) -> None:
        if not self._current("links", generation):
            return
        title = self.query_one("#tables-links-title", Static)
        title.remove_class("hidden")
        title.update(Text(printable(message), style="bold red"))

    def _show_links(
        self, generation: int, table: str, position: int, links: list[LinkedRow]
    ) -> None:
        if not self._current("links", generation):
            return
        self.links = links
        title = self.query_one("#tables-links-title", Static)
        title.remove_class("hidden")
        heading = Text(f"Links of row {position + 1:,} of {printable(table)}", style="bold")
        grid = self.query_one("#tables-links", ResultGrid)
        grid.clear(columns=True)
        if not links:
            heading.append("  none", style="dim")
            title.update(heading)
            grid.add_class("hidden")
            return
        noun = "linked row" if len(links) == 1 else "linked rows"
        heading.append(f"  {len(links):,} {noun} · Enter: goroutine · Esc: back", style="dim")
        title.update(heading)
        # What identifies the far row first, so it stays in view at 80 columns.
        for label in ("link", "goid", "table", "row", "pid", "depth"):
            grid.add_column(Text(label, style="bold"))
        for link in links:
            rest = ", ".join(
                f"{k}={cell_text(v, 24).plain}"
                for k, v in link.row.items()
                if k not in GOROUTINE_COLUMNS
            )
            grid.add_row(
                Text(printable(link.link)),
                cell_text(link.goid),
                cell_text(link.table),
                cell_text(rest, 60),
                cell_text(link.pid),
                cell_text(link.depth),
            )
        grid.remove_class("hidden")
        grid.focus()

    # -- events and actions ------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#tables-list")
    def _table_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        index = int(event.option.id or 0)
        if 0 <= index < len(self.tables):
            self._open_table(self.tables[index].name, 0)

    @on(OptionList.OptionSelected, "#tables-list")
    def _table_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#tables-rows", ResultGrid).focus()

    @on(DataTable.RowSelected, "#tables-rows")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        page = self.page
        if page is None or not 0 <= event.cursor_row < len(page.rows):
            return
        self._open_goroutine(
            goroutine_of(page.columns, page.rows[event.cursor_row], self.snapshot_id)
        )

    @on(DataTable.RowSelected, "#tables-links")
    def _link_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.links):
            link = self.links[event.cursor_row]
            self._open_goroutine(
                goroutine_of(list(link.row), list(link.row.values()), self.snapshot_id)
            )

    def _open_goroutine(self, ref: GoroutineRef | None) -> None:
        if ref is None:
            self.notify(
                "This row names no goroutine (no pid and goid columns).", severity="warning"
            )
            return
        self.post_message(ShowGoroutine(ref.snapshot_id, ref.pid, ref.goid, ref.depth))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        page = self.page
        if action == "follow_links":
            return page is not None and bool(page.rows)
        if action == "next_page":
            return page is not None and page.offset + len(page.rows) < page.total
        if action == "prev_page":
            return page is not None and page.offset > 0
        if action == "back":
            focused = self.screen.focused
            return focused is not None and focused.id in ("tables-rows", "tables-links")
        return True

    def action_follow_links(self) -> None:
        page = self.page
        if page is None or not page.rows:
            return
        index = min(
            max(0, self.query_one("#tables-rows", ResultGrid).cursor_row), len(page.rows) - 1
        )
        row = dict(zip(page.columns, page.rows[index], strict=True))
        self._load_links(self._bump("links"), page.table, page.offset + index, row)

    def action_next_page(self) -> None:
        if self.page is not None:
            self._open_table(self.page.table, self.page.offset + PAGE_SIZE)

    def action_prev_page(self) -> None:
        if self.page is not None:
            self._open_table(self.page.table, max(0, self.page.offset - PAGE_SIZE))

    def action_back(self) -> None:
        focused = self.screen.focused
        if focused is not None and focused.id == "tables-links":
            self._hide_links()
            self.query_one("#tables-rows", ResultGrid).focus()
        else:
            self.query_one("#tables-list", TableList).focus()
