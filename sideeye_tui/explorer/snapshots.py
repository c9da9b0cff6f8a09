"""Snapshots over time: the list of snapshots in the file (with each process and its
error), and the diff between two of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static, Tree
from textual.worker import get_current_worker

from ..query import snapshot as queries
from ..query.format import format_duration
from . import keymap
from .messages import Answering, ShowGoroutine

if TYPE_CHECKING:
    from ..query.reader import Reader
    from ..store import SnapshotInfo

KIND_TITLE = {
    "stuck": ("in the same place in both (stuck)", "bold red"),
    "moved": ("in both, elsewhere", "yellow"),
    "new": ("new", "green"),
    "gone": ("gone", "dim"),
}


class SnapshotsPane(Answering, Vertical):
    BINDINGS = keymap.bindings("snapshots")

    class Open(Message):
        def __init__(self, snapshot_id: int) -> None:
            super().__init__()
            self.snapshot_id = snapshot_id

    class Diff(Message):
        def __init__(self, old: int, new: int) -> None:
            super().__init__()
            self.old = old
            self.new = new

    def __init__(self, reader: Reader, snapshot_id: int) -> None:
        super().__init__(id="snapshots-pane")
        self.reader = reader
        self.snapshot_id = snapshot_id
        self.infos: list[SnapshotInfo] = []
        self.marked: int | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="snapshot-table", cursor_type="row")
        yield table
        yield Static("", id="snapshot-processes")

    def on_mount(self) -> None:
        table = self.query_one("#snapshot-table", DataTable)
        table.add_columns(" ", "id", "taken (UTC)", "host", "processes", "failed", "goroutines")
        self._load()

    def set_snapshot(self, snapshot_id: int) -> None:
        self.snapshot_id = snapshot_id
        self._load()

    @work(thread=True, exclusive=True, group="snapshots")
    def _load(self) -> None:
        infos = self.reader.snapshots()
        procs = self.reader.processes(self.snapshot_id)
        if not get_current_worker().is_cancelled:
            self.answer(self._show, infos, procs)

    def _show(self, infos: list[SnapshotInfo], procs: list[queries.ProcessInfo]) -> None:
        self.infos = infos
        table = self.query_one("#snapshot-table", DataTable)
        table.clear()
        for s in infos:
            mark = "▶" if s.snapshot_id == self.snapshot_id else ""
            mark += "*" if s.snapshot_id == self.marked else ""
            table.add_row(
                mark,
                str(s.snapshot_id),
                s.taken_at.strftime("%Y-%m-%d %H:%M:%S"),
                s.hostname or "?",
                str(s.processes),
                Text(str(s.failed_processes), style="red" if s.failed_processes else ""),
                str(s.goroutines),
                key=str(s.snapshot_id),
            )
        for i, s in enumerate(infos):
            if s.snapshot_id == self.snapshot_id:
                table.move_cursor(row=i)
        text = Text(f"processes of snapshot {self.snapshot_id}\n", style="bold")
        for p in procs:
            text.append(f"  pid {p.pid} {p.main_module or p.exe or '?'} {p.go_version or ''} ")
            if p.error:
                text.append(p.error, style="red")
            else:
                text.append(f"{p.goroutines} goroutines")
                if p.pause_ns is not None:
                    text.append(f", pause {p.pause_ns / 1e6:.2f} ms")
            for note in p.notes:  # caveats about the capture: it is shown all the same
                text.append(f"\n    warning: {note}", style="yellow")
            text.append("\n")
        self.query_one("#snapshot-processes", Static).update(text)

    def _cursor_snapshot(self) -> int | None:
        table = self.query_one("#snapshot-table", DataTable)
        if not self.infos or not 0 <= table.cursor_row < len(self.infos):
            return None
        return self.infos[table.cursor_row].snapshot_id

    @on(DataTable.RowSelected, "#snapshot-table")
    def _selected(self) -> None:
        self.action_open_snapshot()

    def action_open_snapshot(self) -> None:
        sid = self._cursor_snapshot()
        if sid is not None:
            self.post_message(self.Open(sid))

    def action_mark(self) -> None:
        sid = self._cursor_snapshot()
        self.marked = None if sid == self.marked else sid
        self._load()

    def action_diff(self) -> None:
        """Diff the marked snapshot (or the one under the cursor) with the current one;
        with neither, the current one with the one before it."""
        other = self.marked if self.marked is not None else self._cursor_snapshot()
        ids = [s.snapshot_id for s in self.infos]
        if other is None or other == self.snapshot_id:
            i = ids.index(self.snapshot_id) if self.snapshot_id in ids else 0
            other = ids[i - 1] if i > 0 else None
        if other is None:
            self.notify("one snapshot only: take another with s to diff", severity="warning")
            return
        old, new = sorted((other, self.snapshot_id))
        self.post_message(self.Diff(old, new))


class DiffPane(Answering, Vertical):
    """Goroutines matched by (pid, goid) between two snapshots, grouped by stack."""

    def __init__(self, reader: Reader) -> None:
        super().__init__(id="diff-pane")
        self.reader = reader
        self.old: int | None = None
        self.new: int | None = None

    def compose(self) -> ComposeResult:
        yield Static("press d in Snapshots, or 6 after taking two snapshots", id="diff-title")
        tree: Tree[Any] = Tree("diff", id="diff-tree")
        tree.show_root = False
        yield tree

    def compare(self, old: int, new: int) -> None:
        self.old, self.new = old, new
        self.query_one("#diff-title", Static).update(f"snapshot {old} → snapshot {new}: loading…")
        self._load(old, new)

    @work(thread=True, exclusive=True, group="diff")
    def _load(self, old: int, new: int) -> None:
        rows = self.reader.diff(old, new)
        t_old, t_new = self.reader.taken_at(old), self.reader.taken_at(new)
        gap = (t_new - t_old).total_seconds() if t_old and t_new else None
        if not get_current_worker().is_cancelled:
            self.answer(self._show, old, new, rows, gap)

    def _show(self, old: int, new: int, rows: list[queries.DiffBucket], gap: float | None) -> None:
        counts = {k: sum(b.count for b in rows if b.kind == k) for k in KIND_TITLE}
        title = Text(f"snapshot {old} → snapshot {new}", style="bold")
        if gap is not None:
            title.append(f" ({format_duration(gap)} apart)")
        title.append(
            f"  stuck {counts['stuck']} · moved {counts['moved']} · new {counts['new']}"
            f" · gone {counts['gone']}"
        )
        self.query_one("#diff-title", Static).update(title)
        tree = self.query_one("#diff-tree", Tree)
        tree.clear()
        for kind, (heading, style) in KIND_TITLE.items():
            group = [b for b in rows if b.kind == kind]
            section = tree.root.add(Text(f"{heading}: {counts[kind]}", style=style))
            for b in group:
                label = Text(f"{b.count:>5} ", style="bold")
                label.append(b.wait_reason or b.status or "?")
                if b.at_least_seconds is not None:
                    label.append(f" · at least {format_duration(b.at_least_seconds)}", style="red")
                label.append(f" · {b.function or '?'}")
                node = section.add(label)
                sid = old if kind == "gone" else new
                for pid, goid in b.goids:
                    node.add_leaf(f"goroutine {goid} (pid {pid})", data=(sid, pid, goid))
            if group:
                section.expand()
        tree.focus()

    @on(Tree.NodeSelected, "#diff-tree")
    def _selected(self, event: Tree.NodeSelected[Any]) -> None:
        if isinstance(event.node.data, tuple):
            sid, pid, goid = event.node.data
            self.post_message(ShowGoroutine(sid, pid, goid))
