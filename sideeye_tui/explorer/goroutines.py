"""The goroutines pane: buckets of identical stacks, largest first, filterable.

Every query runs in a worker thread; a generation counter drops the answers of
queries that a newer keystroke made stale, so typing never waits for DuckDB. The list
is drawn line by line (BucketList): a new answer replaces a list of rows and repaints
the lines on screen, whatever the number of buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Literal

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from ..query import snapshot as queries
from ..query.format import format_duration
from . import keymap
from .messages import Answering, ShowGoroutine

if TYPE_CHECKING:
    from ..query.reader import Reader

STATUS_STYLE = {
    "running": "bold green",
    "runnable": "green",
    "syscall": "yellow",
    "waiting": "cyan",
    "dead": "dim",
}

RowKind = Literal["bucket", "goroutine", "more", "more-buckets"]


@dataclass(frozen=True)
class Row:
    """One line of the bucket list."""

    kind: RowKind
    label: Text
    bucket: queries.Bucket | None = None  # the bucket of the line, or the line's own
    goroutine: queries.GoroutineRow | None = None
    last: bool = False  # the last line under its bucket (drawn with └)

    @property
    def key(self) -> tuple[str, int | None, int | None, int | None]:
        """What the line is about, whatever its position: the cursor follows it."""
        stack = self.bucket.stack_id if self.bucket is not None else None
        g = self.goroutine
        return (self.kind, stack, g.pid if g else None, g.goid if g else None)


class BucketList(ScrollView, can_focus=True):
    """Buckets, and under each expanded one its goroutines, as a virtual list.

    Only the lines on screen are rendered (and cached until the rows change), so
    showing a new page is one assignment and a repaint, not a tree of widgets rebuilt.
    Enter (or a click) on a bucket expands or collapses it; on a goroutine it selects it.
    """

    ICON_COLLAPSED = "▶ "
    ICON_EXPANDED = "▼ "

    COMPONENT_CLASSES: ClassVar[set[str]] = {"bucket-list--cursor", "bucket-list--guides"}

    DEFAULT_CSS = """
    BucketList {
        background: $surface;
        color: $foreground;
        & > .bucket-list--guides {
            color: $surface-lighten-2;
        }
        & > .bucket-list--cursor {
            text-style: $block-cursor-blurred-text-style;
            background: $block-cursor-blurred-background;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .bucket-list--cursor {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
            & > .bucket-list--guides {
                color: $surface-lighten-3;
            }
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Select", show=False),
        Binding("space", "toggle_bucket", "Expand or collapse", show=False),
        Binding("shift+left", "to_bucket", "Cursor to the bucket", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to another line."""

        def __init__(self, bucket_list: BucketList, row: Row | None) -> None:
            super().__init__()
            self.bucket_list = bucket_list
            self.row = row

        @property
        def control(self) -> BucketList:
            return self.bucket_list

    class Selected(Message):
        """Enter or a click on a line."""

        def __init__(self, bucket_list: BucketList, row: Row) -> None:
            super().__init__()
            self.bucket_list = bucket_list
            self.row = row

        @property
        def control(self) -> BucketList:
            return self.bucket_list

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buckets: tuple[queries.Bucket, ...] = ()
        self.more_buckets = 0  # buckets the page left out
        # Expanded buckets by stack_id: their goroutines and how many there are in all,
        # None while they load.
        self.expanded: dict[int, tuple[tuple[queries.GoroutineRow, ...], int] | None] = {}
        self.rows: list[Row] = []
        self.cursor = 0
        self._strips: dict[tuple[int, bool, int, bool], Strip] = {}

    # -- contents -----------------------------------------------------------------------

    def show_page(self, buckets: tuple[queries.Bucket, ...], more: int) -> None:
        """New buckets, all collapsed; the cursor stays on the same line if it can."""
        if buckets == self.buckets and more == self.more_buckets and not self.expanded:
            self.refresh()  # the same lines (a word's first letters often match all)
            return
        self.buckets = buckets
        self.more_buckets = more
        self.expanded = {}
        self._rebuild()
        self.cursor = min(max(self.cursor, 0), max(len(buckets) - 1, 0))
        self._scroll_to_cursor()

    def toggle(self, stack_id: int) -> bool:
        """Expand or collapse a bucket; True when its goroutines must be loaded."""
        if stack_id in self.expanded:
            del self.expanded[stack_id]
        else:
            self.expanded[stack_id] = None
        self._rebuild(keep_cursor=True)
        return self.expanded.get(stack_id, ()) is None

    def show_goroutines(
        self, stack_id: int, goroutines: tuple[queries.GoroutineRow, ...], total: int
    ) -> None:
        """The goroutines of an expanded bucket (ignored if it was collapsed since)."""
        if stack_id in self.expanded and self.expanded[stack_id] is None:
            self.expanded[stack_id] = (goroutines, total)
            self._rebuild(keep_cursor=True)

    @property
    def highlighted(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def row_text(self, index: int) -> str:
        return self.rows[index].label.plain

    def _rebuild(self, keep_cursor: bool = False) -> None:
        """The lines from the buckets and the expanded ones' goroutines; with keep_cursor
        the cursor stays on the line it was on (or its bucket), wherever that moved."""
        before = self.highlighted if keep_cursor else None
        rows: list[Row] = []
        for b in self.buckets:
            rows.append(Row("bucket", _bucket_text(b), bucket=b))
            loaded = self.expanded.get(b.stack_id)
            if loaded is None:
                continue
            goroutines, total = loaded
            more = total - len(goroutines)
            for i, g in enumerate(goroutines):
                last = i == len(goroutines) - 1 and more <= 0
                rows.append(Row("goroutine", _goroutine_text(g), b, g, last))
            if more > 0:
                rows.append(Row("more", Text(f"… {more} more", style="dim"), b, last=True))
        if self.more_buckets > 0:
            label = Text(f"… {self.more_buckets} more buckets: refine the filter", style="dim")
            rows.append(Row("more-buckets", label))
        self.rows = rows
        self._strips.clear()
        if before is not None:
            keys = [r.key for r in rows]
            bucket = ("bucket", before.key[1], None, None)
            for wanted in (before.key, bucket):
                if wanted in keys:
                    self.cursor = keys.index(wanted)
                    break
        self.cursor = min(self.cursor, max(len(rows) - 1, 0))
        width = max((2 + r.label.cell_len for r in rows), default=0)  # 2: icon or guide
        self.virtual_size = Size(width, len(rows))
        self.refresh()
        if before is not None:
            self._scroll_to_cursor()

    # -- the cursor ---------------------------------------------------------------------

    def move_cursor(self, index: int) -> None:
        index = min(max(index, 0), max(len(self.rows) - 1, 0))
        if index != self.cursor:
            self.cursor = index
            self.refresh()
            self.post_message(self.Highlighted(self, self.highlighted))
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif height and self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + max(self.scrollable_content_region.height - 1, 1))

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - max(self.scrollable_content_region.height - 1, 1))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.rows) - 1)

    def action_select(self) -> None:
        row = self.highlighted
        if row is not None:
            self.post_message(self.Selected(self, row))

    def action_toggle_bucket(self) -> None:
        """Space: expand or collapse the line's bucket, from any of its lines."""
        row = self.highlighted
        if row is not None and row.bucket is not None:
            self.move_cursor(self._bucket_line(row.bucket.stack_id))
            self.action_select()

    def action_to_bucket(self) -> None:
        row = self.highlighted
        if row is not None and row.bucket is not None:
            self.move_cursor(self._bucket_line(row.bucket.stack_id))

    def _bucket_line(self, stack_id: int) -> int:
        return next(
            i
            for i, r in enumerate(self.rows)
            if r.kind == "bucket" and r.bucket is not None and r.bucket.stack_id == stack_id
        )

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = offset.y + round(self.scroll_y)
        if 0 <= index < len(self.rows):
            self.move_cursor(index)
            self.action_select()

    # -- drawing ------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def on_focus(self) -> None:
        self.refresh()  # the cursor's colours follow the focus

    def on_blur(self) -> None:
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = y + round(self.scroll_y)
        width = self.scrollable_content_region.width
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        full_width = max(width, self.virtual_size.width)
        key = (index, index == self.cursor, full_width, self.has_focus)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._render_row(self.rows[index], key[1], full_width)
        x = round(self.scroll_x)
        return strip.crop(x, x + width)

    def _render_row(self, row: Row, selected: bool, width: int) -> Strip:
        base = self.rich_style
        line = Text(no_wrap=True, end="", style=base)
        if row.kind == "bucket" and row.bucket is not None:
            expanded = row.bucket.stack_id in self.expanded
            line.append(self.ICON_EXPANDED if expanded else self.ICON_COLLAPSED)
        elif row.kind in ("goroutine", "more"):
            guides = self.get_component_rich_style("bucket-list--guides", partial=True)
            line.append("└ " if row.last else "├ ", style=guides)
        label = row.label
        if selected:
            label = label.copy()
            label.stylize(self.get_component_rich_style("bucket-list--cursor", partial=False))
        line.append_text(label)
        return Strip(list(line.render(self.app.console))).crop_extend(0, width, base)


class GoroutinesPane(Answering, Vertical):
    """Buckets of goroutines; Enter expands a bucket, then opens a goroutine."""

    BINDINGS = keymap.bindings("goroutines")

    def __init__(
        self,
        reader: Reader,
        snapshot_id: int,
        pids: list[int],
        first_page: queries.BucketPage | None = None,
    ) -> None:
        super().__init__(id="goroutines-pane")
        self.reader = reader
        self.snapshot_id = snapshot_id
        self.pids = pids
        self.flt = queries.GoroutineFilter()
        self.sort: queries.SortKey = "count"
        self._generation = 0
        self.shown_generation = 0  # the request whose answer is on screen
        self.page: queries.BucketPage | None = None
        self._first_page = first_page  # the unfiltered page, read while the app opened
        self._previewed: int | None = None  # the stack_id in the preview
        # Kept, not queried: an answer arriving while the app closes finds them still.
        self._counts = Static("", id="status-counts")
        self._list = BucketList(id="buckets")
        self._stack = Static("", id="stack-preview")

    def compose(self) -> ComposeResult:
        yield self._counts
        yield Input(
            placeholder="/ filter: function, file, status, wait reason, label, goid",
            id="goroutine-filter",
        )
        with Horizontal(id="goroutines-body"):
            yield self._list
            yield self._stack

    @property
    def bucket_list(self) -> BucketList:
        return self._list

    def on_mount(self) -> None:
        if self._first_page is not None:
            self._generation += 1
            self._show(self._generation, self._first_page)
            self._first_page = None
        else:
            self.refresh_buckets()

    # -- state changes --------------------------------------------------------------

    def set_snapshot(self, snapshot_id: int, pids: list[int]) -> None:
        self.snapshot_id = snapshot_id
        self.pids = pids
        if self.flt.pid is not None and self.flt.pid not in pids:
            self.flt = replace(self.flt, pid=None)
        self.refresh_buckets()

    def set_path(self, path: tuple[str, ...], pid: int | None) -> None:
        """The flame graph's selection: goroutines passing through path."""
        self.flt = replace(self.flt, path=path, pid=pid)
        self.refresh_buckets()

    def refresh_buckets(self) -> None:
        self._generation += 1
        self._load(self._generation, self.snapshot_id, self.flt, self.sort)

    @work(thread=True, exclusive=True, group="buckets")
    def _load(
        self, generation: int, snapshot_id: int, flt: queries.GoroutineFilter, sort: queries.SortKey
    ) -> None:
        page = self.reader.buckets(snapshot_id, flt, sort)
        if not get_current_worker().is_cancelled:
            self.answer(self._show, generation, page)

    def _show(self, generation: int, page: queries.BucketPage) -> None:
        if generation != self._generation:
            return
        self.shown_generation = generation
        self.page = page
        self._show_counts(page)
        self.bucket_list.show_page(page.buckets, page.total_buckets - len(page.buckets))
        self._preview()

    def _show_counts(self, page: queries.BucketPage) -> None:
        text = Text()
        text.append(f"{page.total_goroutines} goroutines", style="bold")
        text.append(f" in {page.total_buckets} buckets  ")
        for status, n in page.statuses:
            text.append(f"{status} ", style=STATUS_STYLE.get(status, ""))
            text.append(f"{n}  ")
        text.append(f"sort: {self.sort}", style="dim")
        extra = []
        if self.flt.pid is not None:
            extra.append(f"pid {self.flt.pid}")
        if self.flt.path:
            extra.append(f"through {self.flt.path[-1]}")
        if extra:
            text.append("  [" + ", ".join(extra) + "]", style="magenta")
        # One line whatever the text: no layout needed.
        self._counts.update(text, layout=False)

    # -- events ---------------------------------------------------------------------

    @on(Input.Changed, "#goroutine-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.flt = replace(self.flt, text=event.value)
        self.refresh_buckets()

    @on(Input.Submitted, "#goroutine-filter")
    def _filter_done(self) -> None:
        self.bucket_list.focus()

    @on(BucketList.Selected, "#buckets")
    def _selected(self, event: BucketList.Selected) -> None:
        row = event.row
        if row.kind == "bucket" and row.bucket is not None:
            if self.bucket_list.toggle(row.bucket.stack_id):
                self._load_goroutines(
                    self.shown_generation, self.snapshot_id, row.bucket.stack_id, self.flt
                )
        elif row.kind == "goroutine" and row.goroutine is not None:
            g = row.goroutine
            self.post_message(ShowGoroutine(self.snapshot_id, g.pid, g.goid))

    @work(thread=True, group="bucket-goroutines")
    def _load_goroutines(
        self, generation: int, snapshot_id: int, stack_id: int, flt: queries.GoroutineFilter
    ) -> None:
        rows, total = self.reader.bucket_goroutines(snapshot_id, stack_id, flt)
        self.answer(self._add_goroutines, generation, stack_id, rows, total)

    def _add_goroutines(
        self, generation: int, stack_id: int, rows: list[queries.GoroutineRow], total: int
    ) -> None:
        if generation == self.shown_generation:  # else the list shows another answer
            self.bucket_list.show_goroutines(stack_id, tuple(rows), total)

    @on(BucketList.Highlighted, "#buckets")
    def _highlighted(self, event: BucketList.Highlighted) -> None:
        self._preview()
        g = event.row.goroutine if event.row is not None else None
        if g is not None:
            self._read_ahead(self.snapshot_id, g.pid, g.goid)

    @work(thread=True, exclusive=True, group="read-ahead")
    def _read_ahead(self, snapshot_id: int, pid: int, goid: int) -> None:
        """The highlighted goroutine's detail, remembered by the store: Enter then opens
        it without waiting for a query."""
        self.reader.goroutine_detail(snapshot_id, pid, goid)

    def _preview(self) -> None:
        row = self.bucket_list.highlighted
        stack_id = row.bucket.stack_id if row is not None and row.bucket is not None else None
        if stack_id == self._previewed:
            return
        self._previewed = stack_id
        if stack_id is None:
            self._stack.update("")
        else:
            self._load_preview(self.snapshot_id, stack_id)

    @work(thread=True, exclusive=True, group="preview")
    def _load_preview(self, snapshot_id: int, stack_id: int) -> None:
        frames = self.reader.bucket_stack(snapshot_id, stack_id)
        if not get_current_worker().is_cancelled:
            self.answer(self._show_preview, stack_id, frames)

    def _show_preview(self, stack_id: int, frames: list[queries.FrameRow]) -> None:
        if stack_id != self._previewed:
            return
        text = Text()
        for f in frames:
            text.append(f.function, style="bold" if not f.function.startswith("runtime.") else "")
            if f.inlined:
                text.append(" (inlined)", style="italic dim")
            text.append(f"\n    {f.file}:{f.line}\n", style="dim")
        self._stack.update(text)

    # -- actions --------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one("#goroutine-filter", Input).focus()

    def action_cycle_sort(self) -> None:
        keys = queries.SORT_KEYS
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self.refresh_buckets()

    def action_cycle_process(self) -> None:
        choices: list[int | None] = [None, *self.pids]
        i = choices.index(self.flt.pid) if self.flt.pid in choices else 0
        self.flt = replace(self.flt, pid=choices[(i + 1) % len(choices)])
        self.refresh_buckets()

    def action_cursor_down(self) -> None:
        self.bucket_list.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.bucket_list.action_cursor_up()

    def action_first(self) -> None:
        self.bucket_list.action_first()

    def action_last(self) -> None:
        self.bucket_list.action_last()

    def clear_one_level(self) -> bool:
        """Esc: drop the innermost restriction; False when there was nothing to drop."""
        filter_input = self.query_one("#goroutine-filter", Input)
        if filter_input.has_focus:
            self.bucket_list.focus()
            return True
        if self.flt.path:
            self.flt = replace(self.flt, path=())
        elif self.flt.text:
            filter_input.value = ""  # Input.Changed refreshes
            self.flt = replace(self.flt, text="")
        elif self.flt.pid is not None:
            self.flt = replace(self.flt, pid=None)
        else:
            return False
        self.refresh_buckets()
        return True


def _bucket_text(b: queries.Bucket) -> Text:
    label = queries.bucket_label(b)
    text = Text(label)
    count_end = label.index(" · ")
    text.stylize("bold", 0, count_end)
    reason_end = label.find(" · ", count_end + 3)
    reason_end = len(label) if reason_end < 0 else reason_end
    text.stylize(STATUS_STYLE.get(b.status or "", ""), count_end + 3, reason_end)
    return text


def _goroutine_text(g: queries.GoroutineRow) -> Text:
    text = Text()
    text.append(f"goroutine {g.goid}", style="bold")
    text.append(f" pid {g.pid} ", style="dim")
    text.append(g.wait_reason or g.status or "?", style=STATUS_STYLE.get(g.status or "", ""))
    if g.wait_seconds is not None:
        text.append(f" {format_duration(g.wait_seconds)}")
    if g.labels:
        text.append(f" {g.labels}", style="magenta")
    return text
