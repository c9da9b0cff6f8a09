"""The goroutines pane: buckets of identical stacks, largest first, filterable.

Every query runs in a worker thread; a generation counter drops the answers of
queries that a newer keystroke made stale, so typing never waits for DuckDB.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from . import keymap, queries
from .messages import ShowGoroutine

if TYPE_CHECKING:
    from .queries import ExplorerStore

STATUS_STYLE = {
    "running": "bold green",
    "runnable": "green",
    "syscall": "yellow",
    "waiting": "cyan",
    "dead": "dim",
}

NodeData = tuple[str, Any]


class GoroutinesPane(Vertical):
    """Buckets of goroutines; Enter expands a bucket, then opens a goroutine."""

    BINDINGS = keymap.bindings("goroutines")

    def __init__(self, store: ExplorerStore, snapshot_id: int, pids: list[int]) -> None:
        super().__init__(id="goroutines-pane")
        self.store = store
        self.snapshot_id = snapshot_id
        self.pids = pids
        self.flt = queries.GoroutineFilter()
        self.sort: queries.SortKey = "count"
        self._generation = 0
        self.shown_generation = 0  # the request whose answer is on screen
        self.page: queries.BucketPage | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="status-counts")
        yield Input(
            placeholder="/ filter: function, file, status, wait reason, label, goid",
            id="goroutine-filter",
        )
        with Horizontal(id="goroutines-body"):
            tree: Tree[NodeData] = Tree("buckets", id="buckets")
            tree.show_root = False
            tree.guide_depth = 2
            yield tree
            yield Static("", id="stack-preview")

    def on_mount(self) -> None:
        self.refresh_buckets()

    @property
    def bucket_tree(self) -> Tree[NodeData]:
        return self.query_one("#buckets", Tree)

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
        page = queries.buckets(self.store, snapshot_id, flt, sort)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, generation, page)

    def _show(self, generation: int, page: queries.BucketPage) -> None:
        if generation != self._generation:
            return
        self.shown_generation = generation
        self.page = page
        self._show_counts(page)
        tree = self.bucket_tree
        cursor = tree.cursor_line
        tree.clear()
        for b in page.buckets:
            tree.root.add(_bucket_text(b), data=("bucket", b), allow_expand=True)
        if page.total_buckets > len(page.buckets):
            more = page.total_buckets - len(page.buckets)
            tree.root.add_leaf(
                Text(f"… {more} more buckets: refine the filter", style="dim"), data=("more", None)
            )
        if page.buckets:
            tree.cursor_line = min(max(cursor, 0), len(page.buckets) - 1)
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
        self.query_one("#status-counts", Static).update(text)

    # -- events ---------------------------------------------------------------------

    @on(Input.Changed, "#goroutine-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.flt = replace(self.flt, text=event.value)
        self.refresh_buckets()

    @on(Input.Submitted, "#goroutine-filter")
    def _filter_done(self) -> None:
        self.bucket_tree.focus()

    @on(Tree.NodeExpanded, "#buckets")
    def _expanded(self, event: Tree.NodeExpanded[NodeData]) -> None:
        data = event.node.data
        if data is None or data[0] != "bucket" or event.node.children:
            return
        self._load_goroutines(event.node, self.snapshot_id, data[1], self.flt)

    @work(thread=True, group="bucket-goroutines")
    def _load_goroutines(
        self,
        node: TreeNode[NodeData],
        snapshot_id: int,
        bucket: queries.Bucket,
        flt: queries.GoroutineFilter,
    ) -> None:
        rows, total = queries.bucket_goroutines(self.store, snapshot_id, bucket.stack_id, flt)
        self.app.call_from_thread(self._add_goroutines, node, rows, total)

    def _add_goroutines(
        self, node: TreeNode[NodeData], rows: list[queries.GoroutineRow], total: int
    ) -> None:
        if node.children:
            return
        for g in rows:
            node.add_leaf(_goroutine_text(g), data=("goroutine", g))
        if total > len(rows):
            node.add_leaf(Text(f"… {total - len(rows)} more", style="dim"), data=("more", None))

    @on(Tree.NodeSelected, "#buckets")
    def _selected(self, event: Tree.NodeSelected[NodeData]) -> None:
        data = event.node.data
        if data is not None and data[0] == "goroutine":
            g: queries.GoroutineRow = data[1]
            self.post_message(ShowGoroutine(self.snapshot_id, g.pid, g.goid))

    @on(Tree.NodeHighlighted, "#buckets")
    def _highlighted(self) -> None:
        self._preview()

    def _preview(self) -> None:
        node = self.bucket_tree.cursor_node
        while node is not None and node.data is not None and node.data[0] != "bucket":
            node = node.parent
        if node is None or node.data is None:
            self.query_one("#stack-preview", Static).update("")
            return
        self._load_preview(self.snapshot_id, node.data[1].stack_id)

    @work(thread=True, exclusive=True, group="preview")
    def _load_preview(self, snapshot_id: int, stack_id: int) -> None:
        frames = queries.bucket_stack(self.store, snapshot_id, stack_id)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_preview, frames)

    def _show_preview(self, frames: list[queries.FrameRow]) -> None:
        text = Text()
        for f in frames:
            text.append(f.function, style="bold" if not f.function.startswith("runtime.") else "")
            if f.inlined:
                text.append(" (inlined)", style="italic dim")
            text.append(f"\n    {f.file}:{f.line}\n", style="dim")
        self.query_one("#stack-preview", Static).update(text)

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
        self.bucket_tree.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.bucket_tree.action_cursor_up()

    def action_first(self) -> None:
        self.bucket_tree.action_scroll_home()
        self.bucket_tree.cursor_line = 0

    def action_last(self) -> None:
        self.bucket_tree.action_scroll_end()
        self.bucket_tree.cursor_line = self.bucket_tree.last_line

    def clear_one_level(self) -> bool:
        """Esc: drop the innermost restriction; False when there was nothing to drop."""
        filter_input = self.query_one("#goroutine-filter", Input)
        if filter_input.has_focus:
            self.bucket_tree.focus()
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
        text.append(f" {queries.format_duration(g.wait_seconds)}")
    if g.labels:
        text.append(f" {g.labels}", style="magenta")
    return text
