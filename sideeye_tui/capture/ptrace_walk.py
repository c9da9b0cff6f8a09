"""The ptrace backend: walks every goroutine of a paused process from user space.

For hosts where eBPF cannot be used. It reads the same fields and follows the same
frame-pointer chain as the eBPF probe (bpf/stack_probe.py), but through
process_vm_readv, batching reads so that 100,000 goroutines cost a few thousand calls.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..dwarf.layout import RuntimeLayout
from ..rawdata import (
    SOURCE_SCHED,
    SOURCE_SYSCALL,
    SOURCE_THREAD,
    RawGoroutine,
    StackHead,
    ThreadRegs,
    not_goroutines,
    status_code,
)
from . import linux
from .labels import read_labels

STACK_WINDOW = 16 * 1024  # bytes of stack read at once above the starting SP
HEAD = 512  # bytes of a running goroutine's stack kept to mend its frames (as the probe)


@dataclass
class _Start:
    source: int
    pcs: list[int]
    bp: int
    sp: int


def _u64(buf: bytes, off: int) -> int:
    return int.from_bytes(buf[off : off + 8], "little")


class PtraceWalker:
    def __init__(
        self,
        pid: int,
        layout: RuntimeLayout,
        max_depth: int,
        value_ranges: tuple[tuple[int, int], ...] = (),
    ) -> None:
        self.pid = pid
        self.layout = layout
        self.max_depth = max_depth
        # Frames in these pc ranges (spec'd functions) are noted for value capture:
        # (goid, physical depth, pc, CFA), as the probe queues them.
        self.value_ranges = value_ranges
        self.value_frames: list[tuple[int, int, int, int]] = []

    def read(self, addr: int, size: int) -> bytes:
        return linux.read_memory(self.pid, addr, size)

    def walk(
        self, threads: dict[int, ThreadRegs]
    ) -> tuple[list[RawGoroutine], dict[int, StackHead]]:
        """The goroutines, and the stack heads of those running on a thread."""
        lay = self.layout
        gptr, glen = struct.unpack("<QQ", self.read(lay.allgs_addr, 16))
        if glen == 0:
            return [], {}
        gaddrs = struct.unpack(f"<{glen}Q", self.read(gptr, 8 * glen))
        gsize = lay.g_size
        gbufs = linux.read_many(self.pid, [(g, gsize) for g in gaddrs])
        skip = not_goroutines(lay.status_names)
        running = status_code(lay.status_names, "running")
        syscall = status_code(lay.status_names, "syscall")

        live: list[tuple[bytes, int, _Start]] = []
        for gbuf in gbufs:
            if gbuf is None:
                continue
            status = int.from_bytes(gbuf[lay.g_atomicstatus : lay.g_atomicstatus + 4], "little")
            status &= ~0x1000
            if status in skip:
                continue
            live.append((gbuf, status, self._start(gbuf, status, running, syscall, threads)))

        # One read per goroutine of the stack above its starting SP: the whole chain of
        # a parked goroutine usually lies within it.
        windows = linux.read_many(
            self.pid,
            [
                (st.sp, max(0, min(_u64(g, lay.g_stack_hi), st.sp + STACK_WINDOW) - st.sp))
                for g, _, st in live
            ],
        )
        out = []
        heads: dict[int, StackHead] = {}
        for (gbuf, status, start), window in zip(live, windows, strict=True):
            g = self._finish(gbuf, status, start, window or b"")
            if start.source == SOURCE_THREAD:
                heads[g.goid] = StackHead(start.sp, start.bp, (window or b"")[:HEAD])
            out.append(g)
        return out, heads

    def _start(
        self,
        gbuf: bytes,
        status: int,
        running: int,
        syscall: int,
        threads: dict[int, ThreadRegs],
    ) -> _Start:
        lay = self.layout
        lo, hi = _u64(gbuf, lay.g_stack_lo), _u64(gbuf, lay.g_stack_hi)
        m = _u64(gbuf, lay.g_m)
        if status in (running, syscall) and m:
            try:
                procid = _u64(self.read(m + lay.m_procid, 8), 0)
            except OSError:
                procid = 0
            t = threads.get(procid)
            if t is not None and lo <= t.sp < hi:
                return _Start(SOURCE_THREAD, [t.pc], t.bp, t.sp)
        if status == syscall:
            bp = _u64(gbuf, lay.g_syscallbp) if lay.g_syscallbp is not None else 0
            return _Start(
                SOURCE_SYSCALL, [_u64(gbuf, lay.g_syscallpc)], bp, _u64(gbuf, lay.g_syscallsp)
            )
        return _Start(
            SOURCE_SCHED,
            [_u64(gbuf, lay.g_sched_pc)],
            _u64(gbuf, lay.g_sched_bp),
            _u64(gbuf, lay.g_sched_sp),
        )

    def _finish(self, gbuf: bytes, status: int, start: _Start, window: bytes) -> RawGoroutine:
        lay = self.layout
        lo, hi = _u64(gbuf, lay.g_stack_lo), _u64(gbuf, lay.g_stack_hi)
        pcs = list(start.pcs)
        bp = start.bp
        goid = _u64(gbuf, lay.g_goid)
        truncated = bad = False
        preempt_lo, preempt_hi = lay.async_preempt
        interrupted_depth = interrupted_sp_word = 0
        while True:
            if len(pcs) >= self.max_depth:
                truncated = True
                break
            if bp == 0:
                break
            if bp < lo or bp + 16 > hi:
                bad = True
                break
            # In runtime.asyncPreempt's frame record, the return address is the pc it
            # interrupted, and the word just above is at the SP there (as the probe).
            size = 24 if preempt_lo <= pcs[-1] < preempt_hi and bp + 24 <= hi else 16
            off = bp - start.sp
            if off >= 0 and off + size <= len(window):
                record = window[off : off + size]
            else:
                try:
                    record = self.read(bp, size)
                except OSError:
                    bad = True
                    break
            next_bp, ret = _u64(record, 0), _u64(record, 8)
            if ret == 0:
                break
            if size == 24:
                interrupted_depth, interrupted_sp_word = len(pcs), _u64(record, 16)
            pcs.append(ret)
            if next_bp != 0 and any(lo_ <= ret < hi_ for lo_, hi_ in self.value_ranges):
                self.value_frames.append((goid, len(pcs) - 1, ret, next_bp + 16))
            if next_bp != 0 and next_bp <= bp:
                bad = True
                break
            bp = next_bp
        labels: tuple[tuple[str, str], ...] = ()
        labels_ptr = _u64(gbuf, lay.g_labels)
        if labels_ptr and lay.labels is not None:
            try:
                labels = read_labels(self.read, lay.labels, labels_ptr)
            except OSError:
                labels = ()
        return RawGoroutine(
            goid=goid,
            status=status,
            wait_reason=gbuf[lay.g_waitreason],
            wait_since=_u64(gbuf, lay.g_waitsince),
            gopc=_u64(gbuf, lay.g_gopc),
            startpc=_u64(gbuf, lay.g_startpc),
            parent_goid=_u64(gbuf, lay.g_parent_goid) if lay.g_parent_goid is not None else 0,
            source=start.source,
            pcs=tuple(pcs),
            truncated=truncated,
            bad_frame_pointer=bad,
            labels=labels,
            locked_to_thread=_u64(gbuf, lay.g_lockedm) != 0,
            interrupted_depth=interrupted_depth,
            interrupted_sp_word=interrupted_sp_word,
        )
