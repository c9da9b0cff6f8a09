"""The explorer application: picker -> browser (goroutines, flame graph, tables, SQL,
snapshots, diff) -> goroutine detail.

Screens only read the file through a query.reader.Reader, in worker threads; captures run as a
`sideeye-tui snapshot` subprocess (see picker.py). Before a capture writes to the file,
the app closes its own read-only connections (DuckDB locks a file per process).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from ..errors import SideEyeError, StoreError
from ..query import snapshot as queries
from ..query.reader import SnapshotReader
from ..text import printable
from . import keymap
from .detail import DetailScreen, SourceReader, read_source_file
from .flame import FlameGraph
from .goroutines import GoroutinesPane
from .help import ExplorerCommands, HelpScreen
from .messages import Answering, ShowGoroutine
from .picker import (
    PickerScreen,
    ProcessSource,
    SnapshotRunner,
    list_processes_subprocess,
    snapshot_subprocess,
)
from .snapshots import DiffPane, SnapshotsPane
from .sql_console import SqlConsole
from .tables_pane import TablesPane

if TYPE_CHECKING:
    from ..query.reader import Reader
    from ..store import SnapshotInfo

Mode = Literal["pick", "open", "capture"]
TABS = ("goroutines", "flame", "tables", "sql", "snapshots", "diff")


def default_db_path() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "sideeye-tui", "snapshots.duckdb")


@dataclass(frozen=True)
class Options:
    """What the command line (or a test) chooses; sources injectable for tests."""

    db_path: str
    mode: Mode = "pick"
    pids: tuple[int, ...] = ()
    snapshot_id: int | None = None
    process_source: ProcessSource = list_processes_subprocess
    snapshot_runner: SnapshotRunner = snapshot_subprocess
    read_source: SourceReader = read_source_file
    keymap_path: Path | None = None
    open_reader: Callable[[str], Reader] = SnapshotReader
    can_snapshot: bool = field(default_factory=lambda: os.geteuid() == 0)


class MessageScreen(Screen[None]):
    """A one-line error in place of the screen that could not open: no traceback."""

    BINDINGS = [("escape", "back", "Back")]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        yield Static(Text(printable(self.message), style="bold red"), id="message")
        yield Static("q quits · Esc goes back", id="message-hint")
        yield Footer()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


class BrowserScreen(Answering, Screen[None]):
    BINDINGS = keymap.bindings("browser")

    def __init__(
        self,
        reader: Reader,
        infos: list[SnapshotInfo],
        snapshot_id: int,
        options: Options,
        pids: list[int],
        first_page: queries.BucketPage | None = None,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.infos = infos
        self.snapshot_id = snapshot_id
        self.options = options
        self.pids = pids
        self._first_page = first_page

    def compose(self) -> ComposeResult:
        yield Static("", id="header")
        with TabbedContent(initial="goroutines", id="tabs"):
            with TabPane("1 Goroutines", id="goroutines"):
                yield GoroutinesPane(self.reader, self.snapshot_id, self.pids, self._first_page)
            with TabPane("2 Flame", id="flame"):
                yield FlameGraph(self.reader, self.snapshot_id, self.pids)
            with TabPane("3 Tables", id="tables"):
                yield TablesPane(self.reader.connection(), self.snapshot_id)
            with TabPane("4 SQL", id="sql"):
                yield SqlConsole(self.reader.connection(), self.snapshot_id)
            with TabPane("5 Snapshots", id="snapshots"):
                yield SnapshotsPane(self.reader, self.snapshot_id)
            with TabPane("6 Diff", id="diff"):
                yield DiffPane(self.reader)
        yield Footer()

    def on_mount(self) -> None:
        self._load_header(self.snapshot_id)
        self.query_one(GoroutinesPane).bucket_list.focus()
        # What is alive once the browser is up (modules, widgets, styles) leaves the
        # collector's reach: its full collections, which walked all of it and took up
        # to 50 ms in the middle of a keystroke, only walk what came after.
        self.call_after_refresh(gc.freeze)

    @work(thread=True, exclusive=True, group="header")
    def _load_header(self, snapshot_id: int) -> None:
        procs = self.reader.processes(snapshot_id)
        self.answer(self._show_header, snapshot_id, procs)

    def _show_header(self, snapshot_id: int, procs: list[queries.ProcessInfo]) -> None:
        info = next((s for s in self.infos if s.snapshot_id == snapshot_id), None)
        text = Text()
        for p in procs:
            name = p.main_module or os.path.basename(p.exe or "") or "?"
            if p.error:
                text.append(f"pid {p.pid} {name} failed", style="red")
            else:
                text.append(f"pid {p.pid} {name}", style="bold")
                if p.pause_ns is not None:
                    text.append(f" pause {p.pause_ns / 1e6:.2f}ms")
                if p.notes:
                    n = len(p.notes)
                    text.append(f" ({n} warning{'s' if n > 1 else ''})", style="yellow")
            text.append(" · ")
        pos = [s.snapshot_id for s in self.infos].index(snapshot_id) + 1
        text.append(f"snapshot {snapshot_id} ({pos}/{len(self.infos)})")
        if info is not None:
            text.append(f" · {info.taken_at:%Y-%m-%d %H:%M:%S} UTC · ")
            text.append(f"{info.goroutines} goroutines", style="bold")
        self.query_one("#header", Static).update(text)

    # -- moving between snapshots and panes ------------------------------------------

    def switch_snapshot(self, snapshot_id: int) -> None:
        if snapshot_id == self.snapshot_id:
            return
        self.snapshot_id = snapshot_id
        self._switch(snapshot_id)

    @work(thread=True, exclusive=True, group="switch")
    def _switch(self, snapshot_id: int) -> None:
        pids = [p.pid for p in self.reader.processes(snapshot_id) if p.error is None]
        self.reader.prepare(snapshot_id)  # built here, off the event loop
        self.answer(self._switched, snapshot_id, pids)

    def _switched(self, snapshot_id: int, pids: list[int]) -> None:
        self.pids = pids
        self.query_one(GoroutinesPane).set_snapshot(snapshot_id, pids)
        self.query_one(FlameGraph).set_snapshot(snapshot_id, pids)
        self.query_one(TablesPane).set_snapshot(snapshot_id)
        self.query_one(SqlConsole).set_snapshot(snapshot_id)
        self.query_one(SnapshotsPane).set_snapshot(snapshot_id)
        self._load_header(snapshot_id)

    def action_snapshot(self, delta: int) -> None:
        ids = [s.snapshot_id for s in self.infos]
        i = ids.index(self.snapshot_id) + delta
        if 0 <= i < len(ids):
            self.switch_snapshot(ids[i])
        else:
            self.notify("no " + ("earlier" if delta < 0 else "later") + " snapshot")

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        pane = self.query_one(f"#{tab}", TabPane)
        focusable = [w for w in pane.query("*") if w.focusable]
        if focusable:
            focusable[0].focus()

    def action_back(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active != "goroutines":
            self.action_show_tab("goroutines")
        else:
            self.query_one(GoroutinesPane).clear_one_level()

    def action_diff_previous(self) -> None:
        self.query_one(SnapshotsPane).action_diff()

    def action_take_snapshot(self) -> None:
        app = self.app
        if isinstance(app, ExplorerApp):
            app.snapshot_again(self.pids)

    @on(FlameGraph.Selected)
    def _flame_selected(self, event: FlameGraph.Selected) -> None:
        self.query_one(GoroutinesPane).set_path(event.path, event.pid)
        self.action_show_tab("goroutines")

    @on(SnapshotsPane.Open)
    def _open_snapshot(self, event: SnapshotsPane.Open) -> None:
        self.switch_snapshot(event.snapshot_id)
        self.action_show_tab("goroutines")

    @on(SnapshotsPane.Diff)
    def _diff(self, event: SnapshotsPane.Diff) -> None:
        self.query_one(DiffPane).compare(event.old, event.new)
        self.query_one("#tabs", TabbedContent).active = "diff"

    def release(self) -> None:
        """Close every connection to the file, so a capture can write to it."""
        self.query_one(TablesPane).release()
        self.query_one(SqlConsole).release()
        self.reader.close()


class ExplorerApp(Answering, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "sideeye-tui"
    BINDINGS = keymap.bindings("app")
    COMMANDS = App.COMMANDS | {ExplorerCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.options = options
        self.reader: Reader | None = None
        self.user_keymap: dict[str, str] = {}

    def on_mount(self) -> None:
        try:
            self.user_keymap = keymap.load_keymap(self.options.keymap_path)
        except SideEyeError as e:
            self.notify(str(e), severity="error", timeout=10)
        self.set_keymap(self.user_keymap)
        opts = self.options
        if opts.mode == "open":
            self.open_browser(opts.snapshot_id)
        else:
            self.push_screen(self._picker(opts.pids if opts.mode == "capture" else ()))

    def _picker(self, capture: tuple[int, ...] = ()) -> PickerScreen:
        return PickerScreen(
            self.options.db_path,
            self.options.process_source,
            self.options.snapshot_runner,
            capture,
        )

    def open_browser(self, snapshot_id: int | None = None) -> None:
        self._open(snapshot_id)

    @work(thread=True, exclusive=True, group="open")
    def _open(self, snapshot_id: int | None) -> None:
        reader: Reader | None = None
        try:
            reader = self.options.open_reader(self.options.db_path)
            infos = reader.snapshots()
            if not infos:
                raise StoreError(f"{self.options.db_path}: holds no snapshot yet")
            ids = [s.snapshot_id for s in infos]
            if snapshot_id is None:
                snapshot_id = ids[-1]
            elif snapshot_id not in ids:
                raise StoreError(f"{self.options.db_path}: no snapshot {snapshot_id}")
            pids = [p.pid for p in reader.processes(snapshot_id) if p.error is None]
            # The first page is read here too: the list is on screen with the screen.
            first_page = reader.buckets(snapshot_id)
        except StoreError as e:
            if reader is not None:
                reader.close()
            self.answer(self._failed, str(e))
            return
        self.answer(self._opened, reader, infos, snapshot_id, pids, first_page)

    def _failed(self, message: str) -> None:
        self.push_screen(MessageScreen(message))

    def _opened(
        self,
        reader: Reader,
        infos: list[SnapshotInfo],
        sid: int,
        pids: list[int],
        first_page: queries.BucketPage,
    ) -> None:
        self.reader = reader
        self.push_screen(BrowserScreen(reader, infos, sid, self.options, pids, first_page))

    def snapshot_again(self, pids: list[int]) -> None:
        """`s` in the browser: back to the picker with the same processes, capturing."""
        if not self.options.can_snapshot:
            self.notify("taking a snapshot needs root", severity="warning")
            return
        for screen in list(self.screen_stack):
            if isinstance(screen, BrowserScreen):
                screen.release()
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.reader = None
        self.push_screen(self._picker(tuple(pids)))

    @on(PickerScreen.Taken)
    def _taken(self, event: PickerScreen.Taken) -> None:
        for line in event.lines:
            if "failed" in line or line.startswith("warning:"):
                self.notify(printable(line), severity="warning", timeout=10, markup=False)
        self.open_browser(event.snapshot_id)

    @on(ShowGoroutine)
    def _show_goroutine(self, event: ShowGoroutine) -> None:
        if self.reader is None:
            return
        read = self.reader.remembered_detail(event.snapshot_id, event.pid, event.goid)
        self.push_screen(
            DetailScreen(
                self.reader,
                event.snapshot_id,
                event.pid,
                event.goid,
                event.depth,
                self.options.read_source,
                read,
            )
        )

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.user_keymap))

    def action_quit_top(self) -> None:
        """q quits from a top-level screen; inside a detail it goes back instead."""
        if isinstance(self.screen, DetailScreen | HelpScreen):
            self.pop_screen()
        else:
            self.exit()

    def action_show_tab(self, tab: str) -> None:
        if isinstance(self.screen, BrowserScreen):
            self.screen.action_show_tab(tab)

    def action_snapshot(self, delta: int) -> None:
        if isinstance(self.screen, BrowserScreen):
            self.screen.action_snapshot(delta)

    def action_diff_previous(self) -> None:
        if isinstance(self.screen, BrowserScreen):
            self.screen.action_diff_previous()

    def action_take_snapshot(self) -> None:
        if isinstance(self.screen, BrowserScreen):
            self.screen.action_take_snapshot()

    def on_unmount(self) -> None:
        if self.reader is not None:
            self.reader.close()


def run_explorer(options: Options) -> int:
    ExplorerApp(options).run()
    return 0
