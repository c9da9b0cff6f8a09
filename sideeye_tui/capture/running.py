"""Frames that frame-pointer unwinding skips, mended in after resuming.

Goroutines running on a CPU are unwound from their thread's registers (their g.sched
is stale). Both backends walk the frame-pointer chain from the thread's BP, which is
sound from the caller on (every Go function that calls another saves BP just below its
return address). But the innermost function may be frameless or half-way through its
prologue, so BP may still be its caller's: then the chain skips the caller. The pcsp
table says where the return address is, so the missing frame is read from the copy of
the top of the stack taken in the pause.

Async preemption makes the same gap in the middle of a stack, for a goroutine running
or not (a preempted one parks from runtime.asyncPreempt2): the runtime injects a call
to runtime.asyncPreempt at the interrupted pc, and when the interrupted function is
frameless, the BP that asyncPreempt saves is still its caller's, so the chain goes on
from the caller's own record and skips the caller. The walkers keep the word at the
interrupted SP, where that function's return address is (RawGoroutine.interrupted_sp_word).

This runs after resuming: no table lookups while the target waits.
"""

from __future__ import annotations

from typing import Protocol

from ..rawdata import StackHead


class _SpDeltas(Protocol):
    def sp_delta(self, pc: int) -> int | None: ...


class _Functions(_SpDeltas, Protocol):
    def function_name(self, pc: int) -> str | None: ...


def _has_frame(delta: int, head: StackHead) -> bool:
    """Whether the innermost function, delta bytes below its return address, has set up
    its frame pointer (BP is then where it pushed its caller's)."""
    return delta >= 8 and head.bp == head.sp + delta - 8


def mend_running_frames(
    binary: _SpDeltas, pcs: tuple[int, ...], head: StackHead
) -> tuple[int, ...]:
    """pcs is [thread pc] + the chain from the thread's BP; adds the caller if skipped."""
    if not pcs:
        return pcs
    delta = binary.sp_delta(pcs[0])
    if delta is None:  # not Go code (vdso): nothing to go by
        return pcs
    if _has_frame(delta, head):
        return pcs
    if delta + 8 > len(head.data):
        return pcs
    caller = int.from_bytes(head.data[delta : delta + 8], "little")
    if caller == 0 or (len(pcs) > 1 and pcs[1] == caller):
        return pcs
    return (pcs[0], caller, *pcs[1:])


def mend_preempted_frame(
    binary: _Functions,
    pcs: tuple[int, ...],
    depth: int,
    sp_word: int,
    head: StackHead | None = None,
) -> tuple[int, ...]:
    """Adds the caller of the function asyncPreempt interrupted at pcs[depth], if the
    chain skipped it: that function was frameless there, so its return address is
    the word at the interrupted SP. `head`: the thread's, when pcs[0] came from one.

    A function interrupted with its frame set up leaves a sound chain. One interrupted
    in its prologue (SP moved, BP not yet saved) breaks it too, but its return address
    is then above the interrupted SP: reading it would take more of the stack than the
    walkers keep. That is rare, and left as it is."""
    if depth <= 0 or depth >= len(pcs) or sp_word == 0:
        return pcs
    if depth == 1 and head is not None:
        # pcs[0] is the thread's own pc in asyncPreempt: the record the walker read
        # was its own only once it has set up its frame.
        delta = binary.sp_delta(pcs[0])
        if delta is None or not _has_frame(delta, head):
            return pcs
    if binary.sp_delta(pcs[depth]) != 0:
        return pcs
    if depth + 1 < len(pcs) and pcs[depth + 1] == sp_word:
        return pcs
    if binary.function_name(sp_word) is None:
        return pcs  # not a return address into Go code
    return (*pcs[: depth + 1], sp_word, *pcs[depth + 1 :])
