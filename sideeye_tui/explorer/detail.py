"""One goroutine: its frames, the source around the selected frame's line, and the
captured variables of that frame as an expandable tree of their JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from ..query import snapshot as queries
from ..query.format import format_duration
from . import keymap
from .goroutines import STATUS_STYLE
from .messages import Answering

if TYPE_CHECKING:
    from ..query.reader import Reader

SourceReader = Callable[[str], "str | None"]
CONTEXT_LINES = 6  # shown either side of the frame's line
MAX_CHILDREN = 200  # of one JSON object or array in the variables tree


def read_source_file(path: str) -> str | None:
    """The file's text when it exists on this machine (snapshots keep the build's paths)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4_000_000)
    except OSError:
        return None


class DetailScreen(Answering, Screen[None]):
    BINDINGS = keymap.bindings("detail")

    def __init__(
        self,
        reader: Reader,
        snapshot_id: int,
        pid: int,
        goid: int,
        depth: int | None,
        read_source: SourceReader = read_source_file,
        detail: queries.GoroutineDetail | None = None,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.snapshot_id = snapshot_id
        self.pid = pid
        self.goid = goid
        self.initial_depth = depth
        self.read_source = read_source
        self.detail: queries.GoroutineDetail | None = None
        self._read = detail  # read ahead: shown as the screen mounts
        # Wrapper frames are hidden, as Go's default traceback does, until asked for.
        self.show_wrappers = False
        self._rows: list[queries.FrameRow] = []  # the frames in the table, row by row
        self._header = Text()  # the goroutine's line, before the hidden-wrappers note

    def compose(self) -> ComposeResult:
        yield Static(f"goroutine {self.goid} (pid {self.pid})", id="detail-header")
        with Horizontal(id="detail-body"):
            table: DataTable[Text | str] = DataTable(id="frames", cursor_type="row")
            yield table
            with Vertical(id="detail-side"):
                yield Static("", id="source")
                variables: Tree[Any] = Tree("variables", id="variables")
                variables.show_root = False
                yield variables
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#frames", DataTable)
        table.add_columns("#", "function", "file:line")
        if self._read is not None:
            self._show(self._read)
        else:
            self._load()

    @work(thread=True, group="detail")
    def _load(self) -> None:
        detail = self.reader.goroutine_detail(self.snapshot_id, self.pid, self.goid)
        self.answer(self._show, detail)

    def _show(self, detail: queries.GoroutineDetail | None) -> None:
        header = self.query_one("#detail-header", Static)
        if detail is None:
            header.update(
                Text(
                    f"goroutine {self.goid} of pid {self.pid} is not in this snapshot",
                    style="bold red",
                )
            )
            return
        self.detail = detail
        g = detail.goroutine
        text = Text()
        text.append(f"goroutine {g.goid}", style="bold")
        text.append(f"  pid {g.pid}  ")
        text.append(g.status or "?", style=STATUS_STYLE.get(g.status or "", ""))
        if g.wait_reason:
            text.append(f" ({g.wait_reason})")
        if g.wait_seconds is not None:
            text.append(f" for {format_duration(g.wait_seconds)}")
        if g.created_by:
            text.append(f"  created by {g.created_by}")
            if g.created_by_goid is not None:
                text.append(f" in goroutine {g.created_by_goid}")
        if g.labels:
            text.append(f"  labels {g.labels}", style="magenta")
        if detail.truncated:
            text.append("  stack truncated", style="bold red")
        self._header = text
        depth = self.initial_depth
        if depth is None:
            # The first frame of the user's code is the one worth looking at.
            captured = sorted(detail.captured_depths)
            depth = captured[0] if captured else _first_user_frame(detail.frames)
        self._fill_frames(depth)
        self.query_one("#frames", DataTable).focus()

    def _fill_frames(self, depth: int) -> None:
        """The frames table, wrappers shown or not, its cursor on the frame at `depth`
        (or the nearest one outwards, when that frame is a hidden wrapper)."""
        detail = self.detail
        if detail is None:
            return
        hidden = sum(1 for f in detail.frames if f.wrapper)
        text = self._header.copy()
        if hidden and not self.show_wrappers:
            plural = "s" if hidden > 1 else ""
            text.append(f"  {hidden} wrapper frame{plural} hidden (w shows)", style="dim")
        self.query_one("#detail-header", Static).update(text)
        self._rows = [f for f in detail.frames if self.show_wrappers or not f.wrapper]
        table = self.query_one("#frames", DataTable)
        table.clear()
        for f in self._rows:
            name = Text(f.function)
            if f.inlined:
                name.append(" (inlined)", style="italic dim")
            if f.wrapper:
                name.append(" (wrapper)", style="italic dim")
            mark = "●" if f.depth in detail.captured_depths else ""
            table.add_row(
                Text(f"{mark}{f.depth}", style="bold magenta" if mark else "dim"),
                name,
                Text(f"{_short_path(f.file)}:{f.line}", style="dim"),
                key=str(f.depth),
            )
        row = next((i for i, f in enumerate(self._rows) if f.depth >= depth), 0)
        if self._rows:
            table.move_cursor(row=row)
        self._frame_selected(row)

    @on(DataTable.RowHighlighted, "#frames")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._frame_selected(event.cursor_row)

    def _frame_selected(self, row: int) -> None:
        if not 0 <= row < len(self._rows):
            return
        self._load_frame(self._rows[row])

    @work(thread=True, exclusive=True, group="frame")
    def _load_frame(self, frame: queries.FrameRow) -> None:
        source = self.read_source(frame.file)
        rows, errors = self.reader.captured_values(
            self.snapshot_id, self.pid, self.goid, frame.depth, frame.function
        )
        if not get_current_worker().is_cancelled:
            self.answer(self._show_frame, frame, source, rows, errors)

    def _show_frame(
        self,
        frame: queries.FrameRow,
        source: str | None,
        rows: list[queries.CapturedRow],
        errors: list[tuple[str, str]],
    ) -> None:
        panel = self.query_one("#source", Static)
        if source is None:
            panel.update(
                Text(f"{frame.file}:{frame.line}\n(source not on this machine)", style="dim")
            )
        else:
            lines = source.count("\n") + 1
            # A short window on a small terminal, so the marked line stays in view.
            context = CONTEXT_LINES if self.app.size.height >= 40 else 2
            first = max(1, frame.line - context)
            last = min(lines, frame.line + context)
            panel.update(
                Syntax(
                    source,
                    "go",
                    line_numbers=True,
                    line_range=(first, last),
                    highlight_lines={frame.line},
                    theme="monokai",
                    word_wrap=False,
                )
            )
        tree = self.query_one("#variables", Tree)
        tree.clear()
        if not rows and not errors:
            tree.root.add_leaf(Text(f"no captured variables in {frame.function}", style="dim"))
        for row in rows:
            for name, value in row.values:
                _add_value(tree.root, name, value)
        for expression, reason in errors:
            tree.root.add_leaf(Text.assemble((expression, "bold"), ": ", (reason, "red")))
        tree.root.expand()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_frame_down(self) -> None:
        self.query_one("#frames", DataTable).action_cursor_down()

    def action_frame_up(self) -> None:
        self.query_one("#frames", DataTable).action_cursor_up()

    def action_focus_variables(self) -> None:
        self.query_one("#variables", Tree).focus()

    def action_focus_frames(self) -> None:
        self.query_one("#frames", DataTable).focus()

    def action_toggle_wrappers(self) -> None:
        """Show or hide the wrapper frames, staying on the same frame."""
        if self.detail is None:
            return
        row = self.query_one("#frames", DataTable).cursor_row
        depth = self._rows[row].depth if 0 <= row < len(self._rows) else 0
        self.show_wrappers = not self.show_wrappers
        self._fill_frames(depth)


def _first_user_frame(frames: tuple[queries.FrameRow, ...]) -> int:
    for f in frames:
        if f.function.startswith("main.") or "." in f.function.split("/", 1)[0]:
            return f.depth
    return 0


def _short_path(path: str) -> str:
    """The last two path elements: enough to recognise a file at 80 columns."""
    parts = path.rsplit("/", 2)
    return "/".join(parts[-2:]) if len(parts) > 2 else path


def _add_value(parent: TreeNode[Any], name: str, value: object) -> None:
    """A JSON value as tree nodes: objects and arrays expandable, scalars as leaves."""
    if isinstance(value, dict):
        node = parent.add(Text.assemble((name, "bold"), (f"  {{{len(value)}}}", "dim")))
        for i, (k, v) in enumerate(value.items()):
            if i == MAX_CHILDREN:
                node.add_leaf(Text(f"… {len(value) - i} more", style="dim"))
                break
            _add_value(node, str(k), v)
        node.expand()
    elif isinstance(value, list):
        node = parent.add(Text.assemble((name, "bold"), (f"  [{len(value)}]", "dim")))
        for i, v in enumerate(value):
            if i == MAX_CHILDREN:
                node.add_leaf(Text(f"… {len(value) - i} more", style="dim"))
                break
            _add_value(node, f"[{i}]", v)
    else:
        parent.add_leaf(Text.assemble((name, "bold"), " = ", _scalar(value)))


def _scalar(value: object) -> Text:
    if value is None:
        return Text("nil", style="dim")
    if isinstance(value, str):
        return Text(repr(value) if len(value) < 200 else repr(value[:200]) + "…", style="green")
    if isinstance(value, bool):
        return Text(str(value).lower(), style="yellow")
    return Text(str(value), style="cyan")
