"""Variable capture in a snapshot: the ptrace backend's chase, and turning the copied
memory of both backends into FrameCaptures for the model."""

from __future__ import annotations

from collections.abc import Callable

from ..dwarf.binary import GoBinary
from ..model import CapturedValue, FrameCapture
from ..rawdata import SOURCE_THREAD, RawGoroutine
from ..values.chase import FrameMemory, chase_frame
from ..values.decode import ValueDecoder
from ..values.plan import CapturePlan
from . import linux
from .decode import Decoder


def chase_ptrace(
    pid: int,
    plan: CapturePlan,
    frames: list[tuple[int, int, int, int]],
    stacks: dict[int, tuple[int, bytes]] | None = None,
) -> list[FrameMemory]:
    """Copies the values of these frames (goid, depth, pc, cfa) of a paused process.

    `stacks` (goid -> SP and the copy of the stack from there, taken in this pause)
    serves the reads of a frame's own variables; the rest goes through pages copied in
    batches (linux.PageReader: each page the chase reaches and a few after it, since
    objects of one type tend to sit side by side in the heap)."""
    reader = linux.PageReader(pid)
    stacks = stacks or {}
    out = []
    for goid, depth, pc, cfa in frames:
        site = plan.sites.get(pc)
        if site is None:
            out.append(FrameMemory(goid=goid, depth=depth, pc=pc))
            continue
        out.append(chase_frame(plan, site, goid, depth, cfa, _reader(reader, stacks.get(goid))))
    return out


def _reader(
    pages: linux.PageReader, stack: tuple[int, bytes] | None
) -> Callable[[int, int], bytes | None]:
    """Reads from the goroutine's stack copy where it holds them, else from pages."""
    if stack is None:
        return pages.read
    sp, data = stack
    end = sp + len(data)
    page_read = pages.read

    def read(addr: int, size: int) -> bytes | None:
        if sp <= addr and addr + size <= end:
            return data[addr - sp : addr - sp + size]
        return page_read(addr, size)

    return read


def _expanded_depths(decoder: Decoder, pcs: tuple[int, ...], first_exact: bool) -> list[int]:
    """Depth in the stored frames (inlined calls expanded) of each physical frame: the
    last frame of its group, the function the pc belongs to. Once per stack, not once
    per frame: a deep recursion has thousands of spec'd frames. `first_exact`: pcs[0]
    is where a thread stood, not a return address (symbolized as decode.py does)."""
    out, total = [], 0
    for frames in decoder.physical_frames(pcs, first_exact):
        total += len(frames)
        out.append(total - 1)
    return out


def frame_captures(
    binary: GoBinary,
    plan: CapturePlan,
    decoder: Decoder,
    goroutines: list[RawGoroutine],
    memories: list[FrameMemory],
) -> tuple[FrameCapture, ...]:
    if not memories or plan.types is None:
        return ()
    values = ValueDecoder(plan, binary.function_name, binary.read_static)
    by_goid = {g.goid: g for g in goroutines}
    depths: dict[tuple[tuple[int, ...], bool], list[int]] = {}
    out: list[FrameCapture] = []
    for mem in memories:
        fplan = plan.function_at(mem.pc)
        g = by_goid.get(mem.goid)
        if fplan is None or g is None:
            continue
        index = _physical_index(g.pcs, mem.depth, mem.pc)
        if index is None:
            continue
        captured: list[CapturedValue] = []
        site = plan.sites.get(mem.pc)
        for i, expr in enumerate(fplan.expressions):
            if site is None or i >= len(mem.roots):
                why = expr.unavailable or f"no location plan at pc {mem.pc:#x} (not a call site)"
                captured.append(CapturedValue(expr.text, None, expr.sql_type, why))
                continue
            try:
                captured.append(
                    values.value(mem, i, expr, site.roots[i].unavailable, site.roots[i].value_type)
                )
            except Exception as e:  # noqa: BLE001 - one bad value must not lose the snapshot
                captured.append(
                    CapturedValue(expr.text, None, expr.sql_type, f"decode failed: {e}")
                )
        out.append(
            FrameCapture(
                goid=mem.goid,
                depth=_depth(depths, decoder, g, index),
                function=fplan.name,
                values=tuple(captured),
            )
        )
    out.sort(key=lambda f: (f.goid, f.depth))
    return tuple(out)


def _depth(
    cache: dict[tuple[tuple[int, ...], bool], list[int]],
    decoder: Decoder,
    g: RawGoroutine,
    index: int,
) -> int:
    key = (g.pcs, g.source == SOURCE_THREAD)
    depths = cache.get(key)
    if depths is None:
        depths = cache[key] = _expanded_depths(decoder, *key)
    return depths[index]


def _physical_index(pcs: tuple[int, ...], depth: int, pc: int) -> int | None:
    """The frame's index after mending (running.py: a frame at 1 and one after the
    pc asyncPreempt interrupted, each shifting the frames above it)."""
    for i in (depth, depth + 1, depth + 2):
        if 0 <= i < len(pcs) and pcs[i] == pc:
            return i
    return None
