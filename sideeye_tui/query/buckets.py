"""What a bucket of goroutines is, for every reader (as panicparse's similarity levels).

    stack   the same stack_id: the same frames, wrappers left out (Go's default
            traceback prints them alike). The explorer's default: one line per stack.
    group   the same stack_id, status, wait reason and creator: what Go's traceback
            would print as one block with the same header. The summary's default.

At both levels a goroutine locked to its thread (runtime.LockOSThread; Go's header
says `[select, locked to thread]`) never shares a bucket with one that is not.

A level is the list of goroutines columns its buckets share. A "stack" bucket still
shows a status, wait reason and creator: its most common ones.
"""

from __future__ import annotations

from typing import Literal

Level = Literal["stack", "group"]
LEVELS: dict[Level, tuple[str, ...]] = {
    "stack": ("stack_id", "locked_to_thread"),
    "group": ("stack_id", "status", "wait_reason", "created_by", "locked_to_thread"),
}
