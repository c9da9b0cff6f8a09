"""The walkers keep what runtime.asyncPreempt's frame says (the interrupted pc's depth
and the word at the interrupted SP): the ptrace walker on a synthetic stack, the
probe's records through their decoder, and the probe's C text. No process."""

from __future__ import annotations

import re
import struct
from typing import cast

import pytest

from sideeye_tui.bpf import records
from sideeye_tui.bpf import stack_probe as sp
from sideeye_tui.capture.ptrace_walk import PtraceWalker, _Start
from sideeye_tui.capture.snapshot import _mend
from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.dwarf.layout import RuntimeLayout
from sideeye_tui.rawdata import SOURCE_SCHED, SOURCE_THREAD, RawGoroutine

from .preempted_stack import (
    ASYNC_PREEMPT,
    FUNC1_RET,
    GOEXIT_RET,
    HI,
    IN_PREEMPT,
    INTERRUPTED,
    SCHED_PC,
    SPINNER_RET,
    FakeBinary,
    PreemptedStack,
    layout,
    preempted_stack,
)

WALKED = (SCHED_PC, IN_PREEMPT, INTERRUPTED, FUNC1_RET, GOEXIT_RET)


class MemoryWalker(PtraceWalker):
    """The ptrace walker reading a synthetic stack instead of a process."""

    def __init__(self, stack: PreemptedStack, lay: RuntimeLayout) -> None:
        super().__init__(pid=0, layout=lay, max_depth=64)
        self.stack = stack
        self.reads: list[tuple[int, int]] = []

    def read(self, addr: int, size: int) -> bytes:
        self.reads.append((addr, size))
        return self.stack.read(addr, size)


def _walk(
    stack: PreemptedStack, window_len: int, lay: RuntimeLayout | None = None
) -> tuple[RawGoroutine, MemoryWalker]:
    walker = MemoryWalker(stack, lay or layout())
    start = _Start(SOURCE_SCHED, [SCHED_PC], stack.sched_bp, stack.sched_sp)
    window = stack.read(stack.sched_sp, window_len)
    return walker._finish(stack.g(), 1, start, window), walker


@pytest.mark.parametrize(
    "window",
    ["whole", "none", "record only"],
)
def test_ptrace_walker_keeps_the_interrupted_sp_word(window: str) -> None:
    """Wherever the window ends: asyncPreempt's record and the word above it may lie
    in it, outside it, or the record inside and the word just past its end."""
    stack = preempted_stack()
    length = {
        "whole": HI - stack.sched_sp,
        "none": 8,
        "record only": stack.preempt_bp + 16 - stack.sched_sp,
    }[window]
    g, walker = _walk(stack, length)
    assert g.pcs == WALKED
    assert (g.interrupted_depth, g.interrupted_sp_word) == (2, SPINNER_RET)
    assert not g.bad_frame_pointer and not g.truncated
    if window != "whole":
        assert (stack.preempt_bp, 24) in walker.reads
    # and after resuming, spinner is back between spinStep and func1
    (mended,) = _mend(cast(GoBinary, FakeBinary()), [g], {})
    assert mended.pcs == (*WALKED[:3], SPINNER_RET, *WALKED[3:])


def test_ptrace_walker_without_the_range_keeps_nothing() -> None:
    stack = preempted_stack()
    g, _ = _walk(stack, HI - stack.sched_sp, layout(async_preempt=(0, 0)))
    assert g.pcs == WALKED
    assert (g.interrupted_depth, g.interrupted_sp_word) == (0, 0)


def test_ptrace_walker_from_a_thread_in_async_preempt() -> None:
    stack = preempted_stack()
    walker = MemoryWalker(stack, layout())
    thread_pc = ASYNC_PREEMPT[0] + 0x60
    thread_sp = stack.preempt_bp - 0x180
    start = _Start(SOURCE_THREAD, [thread_pc], stack.preempt_bp, thread_sp)
    g = walker._finish(stack.g(status=2), 2, start, stack.read(thread_sp, HI - thread_sp))
    assert g.pcs == (thread_pc, INTERRUPTED, FUNC1_RET, GOEXIT_RET)
    assert (g.interrupted_depth, g.interrupted_sp_word) == (1, SPINNER_RET)


def test_no_word_above_the_top_of_the_stack() -> None:
    """A record whose word + 16 would lie past stack.hi: the walker reads only the
    record (the probe's window holds no more either)."""
    stack = preempted_stack()
    lay = layout()
    walker = MemoryWalker(stack, lay)
    gbuf = bytearray(stack.g())
    # the stack ends just above asyncPreempt's record
    gbuf[lay.g_stack_hi : lay.g_stack_hi + 8] = (stack.preempt_bp + 16).to_bytes(8, "little")
    start = _Start(SOURCE_SCHED, [SCHED_PC], stack.sched_bp, stack.sched_sp)
    g = walker._finish(bytes(gbuf), 1, start, b"")
    assert g.pcs[:3] == (SCHED_PC, IN_PREEMPT, INTERRUPTED)
    assert (g.interrupted_depth, g.interrupted_sp_word) == (0, 0)
    assert (stack.preempt_bp, 16) in walker.reads


# ---- the probe's records ---------------------------------------------------------------


def _record(
    kind: int, pcs: list[int], flags: int, depth: int, interrupted: tuple[int, int]
) -> bytes:
    head = records._REC.pack(
        kind, 1, 7, 0xC000001000, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,  # fields (goid 7)
        len(pcs), flags, depth, *interrupted,
    )  # fmt: skip
    return head + struct.pack(f"<{len(pcs)}Q", *pcs)


@pytest.mark.parametrize("found_in", [0, 1])
def test_decoder_takes_the_word_from_whichever_chunk_has_it(found_in: int) -> None:
    """The probe finds asyncPreempt's frame while unwinding: a goroutine's chunks before
    the one holding it lack the word, the later ones repeat it."""
    pcs = list(range(0x1000, 0x1000 + sp.CHUNK + 8))
    at = (5, SPINNER_RET) if found_in == 0 else (sp.CHUNK + 3, SPINNER_RET)
    first = _record(sp.REC_GOROUTINE, pcs[: sp.CHUNK], 0, 0, at if found_in == 0 else (0, 0))
    rest = _record(sp.REC_FRAMES, pcs[sp.CHUNK :], sp.FRAMES_LAST, sp.CHUNK, at)
    decoder = records.RecordDecoder()
    decoder.feed(first + rest)  # one batch
    (g,) = decoder.goroutines()
    assert g.pcs == tuple(pcs)
    assert (g.interrupted_depth, g.interrupted_sp_word) == at
    assert not g.bad_frame_pointer


def _struct_size(c_text: str, name: str) -> tuple[int, list[str]]:
    """sizeof and field names of a C struct of u32/u64 fields (arrays of u64 too)."""
    body = re.search(rf"struct {name} {{(.*?)\n}};", c_text, re.S)
    assert body is not None
    size, names = 0, []
    for kind, field, count in re.findall(r"u(32|64) (\w+)(?:\[(\w+)\])?;", body.group(1)):
        n = 1 if not count else sp.CHUNK if count == "CHUNK" else int(count)
        size += int(kind) // 8 * n
        names.append(field)
    return size, names


def test_record_layout_mirrors_the_c_struct() -> None:
    text = sp.generate(layout())
    size, names = _struct_size(text, "rec")
    assert size == sp.REC_MAX
    assert records._REC.size == sp.REC_MAX - 8 * sp.CHUNK
    assert names[-3:] == ["interrupted_depth", "interrupted_sp_word", "pcs"]


def test_probe_gets_the_async_preempt_range() -> None:
    lo, hi = ASYNC_PREEMPT
    text = sp.generate(layout())
    assert f"#define PREEMPT_LO {lo}ULL" in text
    assert f"#define PREEMPT_HI {hi}ULL" in text
    none = sp.generate(layout(async_preempt=(0, 0)))
    assert "#define PREEMPT_LO 0ULL" in none and "#define PREEMPT_HI 0ULL" in none
