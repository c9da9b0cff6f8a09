"""What a bucket of goroutines is, for every reader (as panicparse's similarity levels).

    stack   the same stack_id: the same frames, wrappers left out (Go's default
            traceback prints them alike). The explorer's default: one line per stack.
    group   the same stack_id, status, wait reason and creator: what Go's traceback
            would print as one block with the same header. The summary's default.

A level is the list of goroutines columns its buckets share. A "stack" bucket still
shows a status, wait reason and creator: its most common ones.
"""

from __future__ import annotations

from typing import Literal

Level = Literal["stack", "group"]
LEVELS: dict[Level, tuple[str, ...]] = {
    "stack": ("stack_id",),
    "group": ("stack_id", "status", "wait_reason", "created_by"),
}
