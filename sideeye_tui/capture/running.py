"""Goroutines running on a CPU: unwound from their thread's registers, then mended.

Their g.sched is stale; the stopped thread's registers are the truth. Both backends
walk the frame-pointer chain from the thread's BP, which is sound from the caller on
(every Go function that calls another saves BP just below its return address). But
the innermost function may be frameless or half-way through its prologue, so BP may
still be its caller's: then the chain skips the caller. The pcsp table says where the
return address is, so the missing frame is read from the copy of the top of the stack
taken in the pause. This runs after resuming: no table lookups while the target waits.
"""

from __future__ import annotations

from typing import Protocol

from ..rawdata import StackHead


class _SpDeltas(Protocol):
    def sp_delta(self, pc: int) -> int | None: ...


def mend_running_frames(
    binary: _SpDeltas, pcs: tuple[int, ...], head: StackHead
) -> tuple[int, ...]:
    """pcs is [thread pc] + the chain from the thread's BP; adds the caller if skipped."""
    if not pcs:
        return pcs
    delta = binary.sp_delta(pcs[0])
    if delta is None:  # not Go code (vdso): nothing to go by
        return pcs
    if delta >= 8 and head.bp == head.sp + delta - 8:
        return pcs  # the innermost function has set up its frame pointer
    if delta + 8 > len(head.data):
        return pcs
    caller = int.from_bytes(head.data[delta : delta + 8], "little")
    if caller == 0 or (len(pcs) > 1 and pcs[1] == caller):
        return pcs
    return (pcs[0], caller, *pcs[1:])
