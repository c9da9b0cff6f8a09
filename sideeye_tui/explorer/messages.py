"""Messages the explorer's panes post: to the app, to move between views; to
themselves, to hand back what a worker read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump


class ShowGoroutine(Message):
    """Open a goroutine's detail, with one frame selected when depth is given."""

    def __init__(self, snapshot_id: int, pid: int, goid: int, depth: int | None = None) -> None:
        super().__init__()
        self.snapshot_id = snapshot_id
        self.pid = pid
        self.goid = goid
        self.depth = depth


class WorkerAnswer(Message, bubble=False):
    """A worker thread's result, to be applied by callback on the widget's event loop."""

    def __init__(self, callback: Callable[..., None], *args: Any) -> None:
        super().__init__()
        self.callback = callback
        self.args = args


class Answering:
    """The one way a pane's workers hand back what they read: `self.answer(callback,
    *args)` from the worker thread posts a WorkerAnswer to the pane itself, which
    applies it on the event loop. Posting never blocks the worker (call_from_thread
    waits for the loop), and a pane already gone simply drops the answer; answers to
    superseded requests are told apart by the panes' generation numbers."""

    def answer(self, callback: Callable[..., None], *args: Any) -> None:
        assert isinstance(self, MessagePump)
        self.post_message(WorkerAnswer(callback, *args))

    def on_worker_answer(self, answer: WorkerAnswer) -> None:
        answer.stop()
        answer.callback(*answer.args)
