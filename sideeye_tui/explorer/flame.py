"""The flame graph: every goroutine's stack aggregated by DuckDB, drawn as an icicle
(roots on top) or a flame (roots at the bottom), navigable with the arrow keys.

Only the levels that fit on screen below the current zoom are queried; moving the
selection past them moves the zoom. Enter filters the goroutine list to the goroutines
passing through the selected node.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widget import Widget
from textual.worker import get_current_worker

from ..query import snapshot as queries
from . import keymap
from .messages import Answering

if TYPE_CHECKING:
    from ..query.reader import Reader

_PALETTE = ("#d75f00", "#d78700", "#af5f00", "#d7af00", "#af8700", "#d75f5f", "#af5f5f")


@dataclass(frozen=True)
class Box:
    node: queries.FlameNode
    level: int  # 0 = the zoom root
    x: int
    width: int


class FlameGraph(Answering, Widget, can_focus=True):
    BINDINGS = keymap.bindings("flame")

    class Selected(Message):
        """Enter on a node: show the goroutines passing through path."""

        def __init__(self, path: tuple[str, ...], pid: int | None) -> None:
            super().__init__()
            self.path = path
            self.pid = pid

    def __init__(self, reader: Reader, snapshot_id: int, pids: list[int]) -> None:
        super().__init__(id="flame")
        self.reader = reader
        self.snapshot_id = snapshot_id
        self.pids = pids
        self.pid: int | None = None
        self.flame = False  # False: icicle, roots on top
        self.zoom: tuple[str, ...] = ()
        self.selected: tuple[str, ...] = ()
        self.nodes: list[queries.FlameNode] = []
        self.total = 0
        self._generation = 0

    def on_resize(self) -> None:
        # The first load waits for the tab to be shown (its first size): the goroutine
        # list, on screen at first, gets the machine while the app opens.
        self.reload()

    def set_snapshot(self, snapshot_id: int, pids: list[int]) -> None:
        self.snapshot_id = snapshot_id
        self.pids = pids
        if self.pid not in pids:
            self.pid = None
        self.zoom = self.selected = ()
        self.reload()

    @property
    def levels(self) -> int:
        return max(1, self.size.height - 2)  # a title line and the zoom root's line

    def reload(self) -> None:
        if not self.size.height:  # never shown yet: on_resize loads it
            return
        self._generation += 1
        self._load(self._generation, self.snapshot_id, self.zoom, self.levels, self.pid)

    @work(thread=True, exclusive=True, group="flame")
    def _load(
        self, generation: int, snapshot_id: int, zoom: tuple[str, ...], levels: int, pid: int | None
    ) -> None:
        nodes = self.reader.flame_children(snapshot_id, zoom, levels, pid)
        total = self.reader.flame_total(snapshot_id, zoom, pid)
        if not get_current_worker().is_cancelled:
            self.answer(self._loaded, generation, nodes, total)

    def _loaded(self, generation: int, nodes: list[queries.FlameNode], total: int) -> None:
        if generation != self._generation:
            return
        self.nodes = nodes
        self.total = total
        if self.selected[: len(self.zoom)] != self.zoom or not self._box(self.selected):
            self.selected = self.zoom
        self.refresh()

    # -- layout -------------------------------------------------------------------

    def layout_boxes(self, width: int) -> list[Box]:
        """Each node a box as wide as its share of its parent; boxes under a column
        dropped (their goroutines are still counted in the parent)."""
        root = queries.FlameNode(self.zoom, self.total)
        boxes = [Box(root, 0, 0, width)]
        placed: dict[tuple[str, ...], Box] = {self.zoom: boxes[0]}
        cursor: dict[tuple[str, ...], int] = {}
        for node in self.nodes:
            parent = placed.get(node.path[:-1])
            if parent is None or parent.node.count == 0:
                continue
            w = parent.width * node.count // parent.node.count
            if w < 1:
                continue
            x = cursor.get(parent.node.path, parent.x)
            cursor[parent.node.path] = x + w
            box = Box(node, parent.level + 1, x, w)
            placed[node.path] = box
            boxes.append(box)
        return boxes

    def _box(self, path: tuple[str, ...]) -> Box | None:
        for b in self.layout_boxes(max(1, self.size.width)):
            if b.node.path == path:
                return b
        return None

    def render(self) -> Text:
        width = max(1, self.size.width)
        boxes = self.layout_boxes(width)
        depth = max((b.level for b in boxes), default=0) + 1
        rows = [[" "] * width for _ in range(depth)]
        styles: list[list[str]] = [[""] * width for _ in range(depth)]
        for b in boxes:
            label = f" {b.node.function} {b.node.count}"
            colour = _PALETTE[zlib.crc32(b.node.function.encode()) % len(_PALETTE)]
            style = "reverse bold" if b.node.path == self.selected else f"black on {colour}"
            for i in range(b.width):
                rows[b.level][b.x + i] = label[i] if i < len(label) and i < b.width - 1 else " "
                styles[b.level][b.x + i] = style
        ordered = list(range(depth))
        if self.flame:
            ordered.reverse()
        out = Text()
        selected = self._box(self.selected)
        title = f"{'flame' if self.flame else 'icicle'} · {self.total} goroutines"
        title += f" · pid {self.pid}" if self.pid is not None else " · all processes"
        if selected is not None and self.total:
            n = selected.node.count
            title += f" · {selected.node.function}: {n} ({100 * n / self.total:.0f}%)"
        out.append(title[:width] + "\n", style="bold")
        for level in ordered:
            for ch, st in zip(rows[level], styles[level], strict=True):
                out.append(ch, style=st)
            out.append("\n")
        return out

    # -- actions --------------------------------------------------------------------

    def action_move(self, direction: str) -> None:
        boxes = self.layout_boxes(max(1, self.size.width))
        current = next((b for b in boxes if b.node.path == self.selected), boxes[0])
        up, down = ("up", "down") if not self.flame else ("down", "up")
        target: tuple[str, ...] | None = None
        if direction == up:
            if current.node.path:
                target = current.node.path[:-1]
        elif direction == down:
            children = [
                b
                for b in boxes
                if b.node.path[:-1] == current.node.path and b.level == current.level + 1
            ]
            if children:
                target = max(children, key=lambda b: b.node.count).node.path
        else:
            row = sorted((b for b in boxes if b.level == current.level), key=lambda b: b.x)
            i = row.index(current)
            j = i - 1 if direction == "left" else i + 1
            if 0 <= j < len(row):
                target = row[j].node.path
        if target is None:
            return
        self.selected = target
        # Keep the selection on screen: zoom out above the root, in past the last level.
        if len(target) < len(self.zoom) or len(target) >= len(self.zoom) + self.levels:
            self.zoom = target[: max(0, len(target) - self.levels // 2)]
            self.reload()
        self.refresh()

    def action_select_node(self) -> None:
        self.post_message(self.Selected(self.selected, self.pid))

    def action_flip(self) -> None:
        self.flame = not self.flame
        self.refresh()

    def action_cycle_process(self) -> None:
        choices: list[int | None] = [None, *self.pids]
        i = choices.index(self.pid) if self.pid in choices else 0
        self.pid = choices[(i + 1) % len(choices)]
        self.zoom = self.selected = ()
        self.reload()
