"""Messages the explorer's panes post to the app to move between views."""

from __future__ import annotations

from textual.message import Message


class ShowGoroutine(Message):
    """Open a goroutine's detail, with one frame selected when depth is given."""

    def __init__(self, snapshot_id: int, pid: int, goid: int, depth: int | None = None) -> None:
        super().__init__()
        self.snapshot_id = snapshot_id
        self.pid = pid
        self.goid = goid
        self.depth = depth
