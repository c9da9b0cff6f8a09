"""Where to start unwinding a goroutine that is running on a stopped thread.

Its g.sched is stale: the truth is the thread's registers. The innermost function may
be frameless or half-way through its prologue, so the frame pointer cannot be trusted
there; the pcsp table can. From it we get the caller's return address and the frame
pointer the caller set up, and from there the frame-pointer chain is sound (every Go
function that calls another saves BP just below its return address).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class _SpDeltas(Protocol):
    def sp_delta(self, pc: int) -> int | None: ...


@dataclass(frozen=True)
class ThreadStart:
    tid: int
    sp: int  # the thread's SP, to tell the goroutine's stack from g0's or gsignal's
    pc0: int
    pc1: int  # 0 when unknown: then unwind from bp1 as a plain frame pointer
    bp1: int


def thread_start(
    binary: _SpDeltas, tid: int, pc: int, sp: int, bp: int, read: Callable[[int, int], bytes]
) -> ThreadStart:
    delta = binary.sp_delta(pc)
    if delta is None:  # not Go code (vdso, cgo): trust the frame pointer
        return ThreadStart(tid, sp, pc, 0, bp)
    try:
        (pc1,) = struct.unpack("<Q", read(sp + delta, 8))
    except OSError:
        return ThreadStart(tid, sp, pc, 0, bp)
    caller_delta = binary.sp_delta(pc1)
    if caller_delta is None or caller_delta < 8:
        return ThreadStart(tid, sp, pc, pc1, 0)
    caller_sp = sp + delta + 8
    return ThreadStart(tid, sp, pc, pc1, caller_sp + caller_delta - 8)
