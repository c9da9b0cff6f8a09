"""Variable capture in a snapshot: the ptrace backend's chase, and turning the copied
memory of both backends into FrameCaptures for the model."""

from __future__ import annotations

from ..dwarf.binary import GoBinary
from ..model import CapturedValue, FrameCapture
from ..rawdata import RawGoroutine
from ..values.chase import FrameMemory, chase_frame
from ..values.decode import ValueDecoder
from ..values.plan import CapturePlan
from . import linux
from .decode import Decoder


def chase_ptrace(
    pid: int, plan: CapturePlan, frames: list[tuple[int, int, int, int]]
) -> list[FrameMemory]:
    """Copies the values of these frames (goid, depth, pc, cfa) of a paused process."""

    def read(addr: int, size: int) -> bytes | None:
        try:
            data = linux.read_memory(pid, addr, size)
        except OSError:
            return None
        return data if len(data) == size else None

    out = []
    for goid, depth, pc, cfa in frames:
        site = plan.sites.get(pc)
        if site is None:
            out.append(FrameMemory(goid=goid, depth=depth, pc=pc))
            continue
        out.append(chase_frame(plan, site, goid, depth, cfa, read))
    return out


def _expanded_depths(decoder: Decoder, pcs: tuple[int, ...]) -> list[int]:
    """Depth in the stored frames (inlined calls expanded) of each physical frame: the
    last frame of its group, the function the pc belongs to. Once per stack, not once
    per frame: a deep recursion has thousands of spec'd frames."""
    out, total = [], 0
    for frames in decoder.physical_frames(pcs):
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
    depths: dict[tuple[int, ...], list[int]] = {}
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
                depth=_depth(depths, decoder, g.pcs, index),
                function=fplan.name,
                values=tuple(captured),
            )
        )
    out.sort(key=lambda f: (f.goid, f.depth))
    return tuple(out)


def _depth(
    cache: dict[tuple[int, ...], list[int]], decoder: Decoder, pcs: tuple[int, ...], index: int
) -> int:
    depths = cache.get(pcs)
    if depths is None:
        depths = cache[pcs] = _expanded_depths(decoder, pcs)
    return depths[index]


def _physical_index(pcs: tuple[int, ...], depth: int, pc: int) -> int | None:
    """The frame's index after mending (running.py: a frame at 1 and one after the
    pc asyncPreempt interrupted, each shifting the frames above it)."""
    for i in (depth, depth + 1, depth + 2):
        if 0 <= i < len(pcs) and pcs[i] == pc:
            return i
    return None
