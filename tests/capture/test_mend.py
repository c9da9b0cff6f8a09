"""Mending the frames frame pointers skip (capture/running.py), and symbolizing the
frame an injected call interrupted at its own pc (capture/decode.py). No process."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from sideeye_tui.capture.decode import Decoder, elide_wrappers
from sideeye_tui.capture.running import mend_preempted_frame, mend_running_frames
from sideeye_tui.capture.snapshot import _mend
from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.model import Frame
from sideeye_tui.rawdata import SOURCE_SCHED, SOURCE_THREAD, RawGoroutine, StackHead

from .preempted_stack import (
    ASYNC_PREEMPT,
    ASYNC_PREEMPT2,
    FUNC1_RET,
    GOEXIT_RET,
    IN_PREEMPT,
    INTERRUPTED,
    SCHED_PC,
    SIGPANIC,
    SPINNER,
    SPINNER_RET,
    FakeBinary,
)

BINARY = FakeBinary()
# As the walkers leave a goroutine parked from asyncPreempt2 after spinStep was
# interrupted: spinner is missing between spinStep and func1.
WALKED = (SCHED_PC, IN_PREEMPT, INTERRUPTED, FUNC1_RET, GOEXIT_RET)
MENDED = (SCHED_PC, IN_PREEMPT, INTERRUPTED, SPINNER_RET, FUNC1_RET, GOEXIT_RET)


def test_frameless_interrupted_function_gets_its_caller() -> None:
    assert mend_preempted_frame(BINARY, WALKED, 2, SPINNER_RET) == MENDED


def test_function_with_a_frame_is_left_alone() -> None:
    # spinner itself interrupted: its frame is set up, the chain is sound
    pcs = (SCHED_PC, IN_PREEMPT, SPINNER[0] + 0x10, FUNC1_RET, GOEXIT_RET)
    assert mend_preempted_frame(BINARY, pcs, 2, 0xC000123456) == pcs
    assert mend_preempted_frame(BINARY, pcs, 2, FUNC1_RET + 8) == pcs


@pytest.mark.parametrize(
    ("depth", "word"),
    [
        (2, FUNC1_RET),  # already the next pc
        (2, 0xC000123456),  # a stack or heap address: no Go code
        (2, 0),
        (0, SPINNER_RET),  # no interrupted frame
        (5, SPINNER_RET),  # beyond the stack
    ],
)
def test_nothing_to_mend(depth: int, word: int) -> None:
    assert mend_preempted_frame(BINARY, WALKED, depth, word) == WALKED


def test_pc_outside_go_code_is_left_alone() -> None:
    pcs = (SCHED_PC, IN_PREEMPT, 0x1234, FUNC1_RET)
    assert mend_preempted_frame(BINARY, pcs, 2, SPINNER_RET) == pcs


def test_running_in_async_preempt_needs_its_frame_set_up() -> None:
    """From a thread's registers, pcs[0] in asyncPreempt: the record read at BP is its
    own only after its prologue (PUSHQ BP; MOVQ SP, BP)."""
    pcs = (ASYNC_PREEMPT[0] + 0x40, INTERRUPTED, FUNC1_RET, GOEXIT_RET)
    sp = 0x11000
    delta = 0x188
    set_up = StackHead(sp=sp, bp=sp + delta - 8, data=b"")
    assert mend_preempted_frame(BINARY, pcs, 1, SPINNER_RET, set_up) == (
        pcs[0],
        INTERRUPTED,
        SPINNER_RET,
        FUNC1_RET,
        GOEXIT_RET,
    )
    not_yet = StackHead(sp=sp, bp=0x11F00, data=b"")
    assert mend_preempted_frame(BINARY, pcs, 1, SPINNER_RET, not_yet) == pcs
    # without a thread (g.sched), depth 1 is asyncPreempt's caller as walked
    assert mend_preempted_frame(BINARY, pcs, 1, SPINNER_RET) == pcs[:2] + (SPINNER_RET,) + pcs[2:]


def _raw(pcs: tuple[int, ...], source: int, depth: int = 0, word: int = 0) -> RawGoroutine:
    return RawGoroutine(
        goid=7,
        status=1,
        wait_reason=0,
        wait_since=0,
        gopc=0,
        startpc=0,
        parent_goid=0,
        source=source,
        pcs=pcs,
        interrupted_depth=depth,
        interrupted_sp_word=word,
    )


def test_mend_after_resuming_any_source() -> None:
    binary = cast(GoBinary, BINARY)
    parked = _raw(WALKED, SOURCE_SCHED, 2, SPINNER_RET)
    untouched = _raw(WALKED, SOURCE_SCHED)
    out = _mend(binary, [parked, untouched], {})
    assert [g.pcs for g in out] == [MENDED, WALKED]
    assert out[0].interrupted_depth == 2  # the raw fields stay as read


LEAF = 0xA000  # a frameless leaf that asyncPreempt2 called, outside FUNCTIONS


class LeafBinary(FakeBinary):
    def sp_delta(self, pc: int) -> int | None:
        return 0 if pc == LEAF else super().sp_delta(pc)


def test_both_mends_on_one_running_goroutine() -> None:
    """A thread in a frameless leaf called by asyncPreempt2: the running mend adds
    asyncPreempt2 at 1, after the preempt mend added spinner further out."""
    a2_ret = ASYNC_PREEMPT2[0] + 0x30
    head = StackHead(sp=0x11000, bp=0x11100, data=a2_ret.to_bytes(8, "little") + bytes(8))
    walked = (LEAF, IN_PREEMPT, INTERRUPTED, FUNC1_RET, GOEXIT_RET)
    g = _raw(walked, SOURCE_THREAD, 2, SPINNER_RET)
    (out,) = _mend(cast(GoBinary, LeafBinary()), [g], {7: head})
    assert out.pcs == (LEAF, a2_ret, IN_PREEMPT, INTERRUPTED, SPINNER_RET, FUNC1_RET, GOEXIT_RET)
    # the running mend alone, as before
    assert mend_running_frames(LeafBinary(), walked, head) == (LEAF, a2_ret, *walked[1:])


# ---- symbolization -------------------------------------------------------------------


class SymbolBinary(FakeBinary):
    """Frames that tell how they were looked up: line = the pc looked up."""

    layout = SimpleNamespace(status_names={1: "runnable"}, wait_reasons=())

    def symbolize(self, pc: int, return_address: bool) -> tuple[Frame, ...]:
        at = pc - 1 if return_address else pc
        return (Frame(self.function_name(at) or "?", "x.go", at, pc),)


def _looked_up(pcs: tuple[int, ...], first_exact: bool = False) -> list[int]:
    decoder = Decoder(cast(GoBinary, SymbolBinary()), 0)
    return [f.line for f in decoder.frames(pcs, first_exact)]


def test_frame_after_async_preempt_is_at_its_exact_pc() -> None:
    assert _looked_up(MENDED) == [
        SCHED_PC - 1,  # g.sched.pc is a return address (mcall's, in asyncPreempt2)
        IN_PREEMPT - 1,
        INTERRUPTED,  # interrupted there: no call before it
        SPINNER_RET - 1,
        FUNC1_RET - 1,
        GOEXIT_RET - 1,
    ]


def test_frame_after_sigpanic_is_at_its_exact_pc() -> None:
    faulting = SPINNER[0]  # at a function's entry, pc-1 would be another function
    pcs = (SIGPANIC[0] + 4, faulting, FUNC1_RET)
    assert _looked_up(pcs) == [SIGPANIC[0] + 3, faulting, FUNC1_RET - 1]
    decoder = Decoder(cast(GoBinary, SymbolBinary()), 0)
    assert [f.function for f in decoder.frames(pcs)] == [
        "runtime.sigpanic",
        "main.spinner",
        "main.startSpinners.func1",
    ]


def test_a_return_address_at_a_trap_functions_end_is_not_in_it() -> None:
    """The function a return address belongs to is that of pc-1: a call at the very
    end of the function before asyncPreempt returns to asyncPreempt's entry."""
    before = ASYNC_PREEMPT[0]  # the return address of a call in the function before
    pcs = (SCHED_PC, before, SPINNER_RET)
    assert _looked_up(pcs) == [SCHED_PC - 1, before - 1, SPINNER_RET - 1]


def test_innermost_pc_is_exact_only_from_a_thread() -> None:
    """g.sched.pc and g.syscallpc are return addresses, symbolized at their call as the
    runtime's unwinder does (symPC); a thread's pc is where it was stopped."""
    pcs = (SCHED_PC, SPINNER_RET, FUNC1_RET)
    assert _looked_up(pcs) == [SCHED_PC - 1, SPINNER_RET - 1, FUNC1_RET - 1]
    assert _looked_up(pcs, first_exact=True) == [SCHED_PC, SPINNER_RET - 1, FUNC1_RET - 1]
    decoder = Decoder(cast(GoBinary, SymbolBinary()), 0)
    for source, first in ((SOURCE_SCHED, SCHED_PC - 1), (SOURCE_THREAD, SCHED_PC)):
        g = decoder.decode(_raw(pcs, source, 0, 0))
        assert [f.line for f in g.frames] == [first, SPINNER_RET - 1, FUNC1_RET - 1], source


def test_a_wrapper_that_called_a_panic_is_shown() -> None:
    """runtime/traceback.go elideWrapperCalling: a wrapper frame is elided unless the
    frame it called (the next one inwards) is gopanic, sigpanic or panicwrap."""
    wrapper = Frame("main.(*T).M", "<autogenerated>", 1, 0x100, wrapper=True)
    method = Frame("main.T.M", "m.go", 5, 0x200)
    for callee, elided in (
        (method, True),
        (Frame("runtime.panicwrap", "error.go", 9, 0x300), False),
        (Frame("runtime.gopanic", "panic.go", 9, 0x300), False),
        (Frame("runtime.sigpanic", "signal_unix.go", 9, 0x300), False),
    ):
        assert elide_wrappers((callee, wrapper, method))[1].wrapper is elided, callee.function
    assert elide_wrappers((wrapper, method))[0].wrapper  # innermost: its callee is normal
