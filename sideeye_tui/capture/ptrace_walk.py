"""The ptrace backend: walks every goroutine of a paused process from user space.

For hosts where eBPF cannot be used. It reads the same fields and follows the same
frame-pointer chain as the eBPF probe (bpf/stack_probe.py), but through
process_vm_readv, batching reads so that 100,000 goroutines cost a few hundred calls.
The pause only copies (copy(): every g, every used stack, the labels); unwinding the
copies (unwind()) reads nothing, so it may run after the resume.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field

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
    # Frame records below this address are skipped, not pushed: those of the functions a
    # thread in a system call runs below the frame of g.syscallpc (Go before 1.23).
    skip_below: int = 0


# pcs, truncated, bad frame pointer, interrupted depth, word at the interrupted SP
_Chain = tuple[tuple[int, ...], bool, bool, int, int]


@dataclass
class _Stack:
    gbuf: bytes
    status: int
    start: _Start
    window: bytes  # the stack from start.sp up
    labels: tuple[tuple[str, str], ...]
    walked: RawGoroutine | None  # unwound in the pause already (see PtraceWalker.copy)
    chain: _Chain | None = None  # its frame-pointer chain, when followed in the pause


@dataclass
class Copied:
    """A paused process's goroutines as copied: enough to unwind them after resuming.

    The pause keeps what it read as it is (live, windows, and per index the labels and
    any goroutine already unwound); `stacks` puts them together, after the resume."""

    live: list[tuple[bytes, int, _Start, int, int]] = field(default_factory=list)
    windows: list[bytes | None] = field(default_factory=list)
    extra: dict[int, tuple[tuple[tuple[str, str], ...], RawGoroutine | None]] = field(
        default_factory=dict
    )
    _stacks: list[_Stack] | None = None

    @property
    def stacks(self) -> list[_Stack]:
        if self._stacks is None:
            extra, none = self.extra, ((), None)
            self._stacks = [
                _Stack(gbuf, status, start, window or b"", *extra.get(i, none))
                for i, ((gbuf, status, start, _, _), window) in enumerate(
                    zip(self.live, self.windows, strict=True)
                )
            ]
        return self._stacks


_QQ = struct.Struct("<QQ").unpack_from


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
        # [min lo, max hi) of the ranges: most return addresses are outside at once
        self._value_span = (
            (min(lo for lo, _ in value_ranges), max(hi for _, hi in value_ranges))
            if value_ranges
            else (0, 0)
        )
        # goid -> (SP, copy of its stack from there): the chase reads the frames' own
        # variables from it (filled by find_values)
        self.stack_copies: dict[int, tuple[int, bytes]] = {}
        # Bytes of each g read: up to the last field used (as the probe's G_READ).
        fields = [
            getattr(layout, f.name)
            for f in dataclasses.fields(layout)
            if f.name.startswith("g_") and f.name != "g_size"
        ]
        self.g_read = min(layout.g_size, (max(x for x in fields if x is not None) + 8 + 7) // 8 * 8)

    def read(self, addr: int, size: int) -> bytes:
        return linux.read_memory(self.pid, addr, size)

    def walk(
        self, threads: dict[int, ThreadRegs]
    ) -> tuple[list[RawGoroutine], dict[int, StackHead]]:
        """The goroutines, and the stack heads of those running on a thread: copy and
        unwind at once (all of it while the process is paused)."""
        return self.unwind(self.copy(threads))

    def copy(self, threads: dict[int, ThreadRegs]) -> Copied:
        """What the pause must read: every g, the used part of every stack and the
        labels, in a few batched process_vm_readv calls. Unwinding the copies needs no
        more reads (unwind() may run after the resume), except for the rare stack
        deeper than the copy or a frame pointer below the SP: those are unwound here."""
        lay = self.layout
        gptr, glen = struct.unpack("<QQ", self.read(lay.allgs_addr, 16))
        copied = Copied()
        if glen == 0:
            return copied
        gaddrs = struct.unpack(f"<{glen}Q", self.read(gptr, 8 * glen))
        gbufs = linux.read_many(self.pid, [(g, self.g_read) for g in gaddrs])
        skip = set(not_goroutines(lay.status_names))
        running = status_code(lay.status_names, "running")
        syscall = status_code(lay.status_names, "syscall")
        status_at = lay.g_atomicstatus
        # The common case inline, the g's words by index: this loop runs in the pause.
        hi_w, labels_w = lay.g_stack_hi >> 3, lay.g_labels >> 3
        pc_w, bp_w, sp_w = lay.g_sched_pc >> 3, lay.g_sched_bp >> 3, lay.g_sched_sp >> 3
        live: list[tuple[bytes, int, _Start, int, int]] = []
        for gbuf in gbufs:
            if gbuf is None:
                continue
            status = int.from_bytes(gbuf[status_at : status_at + 4], "little") & ~0x1000
            if status in skip:
                continue
            w = memoryview(gbuf).cast("Q")
            if status in (running, syscall):
                start = self._start(gbuf, status, running, syscall, threads)
            else:
                start = _Start(SOURCE_SCHED, [w[pc_w]], w[bp_w], w[sp_w])
            live.append((gbuf, status, start, w[hi_w], w[labels_w]))
        # One read per goroutine of its stack above the starting SP: all of it, up to
        # STACK_WINDOW (the whole chain of nearly every goroutine lies within).
        windows = linux.read_many(
            self.pid,
            [(st.sp, max(0, min(hi, st.sp + STACK_WINDOW) - st.sp)) for _, _, st, hi, _ in live],
        )
        # Only goroutines with labels, or whose chain may leave the copy (followed now,
        # reading as it goes), need more in the pause; the rest is kept as it is.
        labels_layout = lay.labels
        special = [
            i
            for i, ((_, _, st, hi, labels_ptr), window) in enumerate(
                zip(live, windows, strict=True)
            )
            if window is None
            or st.sp + len(window) < hi
            or (st.bp and st.bp < st.sp)
            or (labels_ptr and labels_layout is not None)
        ]
        extra: dict[int, tuple[tuple[tuple[str, str], ...], RawGoroutine | None]] = {}
        for i in special:
            gbuf, status, start, hi, labels_ptr = live[i]
            window = windows[i] or b""
            labels: tuple[tuple[str, str], ...] = ()
            if labels_ptr and labels_layout is not None:
                try:
                    labels = read_labels(self.read, labels_layout, labels_ptr)
                except OSError:
                    labels = ()
            walked = None
            if start.sp + len(window) < hi or (start.bp and start.bp < start.sp):
                walked = self._finish(gbuf, status, start, window, labels)
            extra[i] = (labels, walked)
        copied.live, copied.windows, copied.extra = live, windows, extra
        return copied

    def find_values(self, copied: Copied) -> None:
        """Follows every chain of the copy (kept for unwind()) to note the frames of the
        spec'd functions (value_frames) and the stack copies their values are read from
        (stack_copies): what the chase needs, in the pause, without the rest of
        unwinding."""
        goid_at = self.layout.g_goid
        for st in copied.stacks:
            if st.walked is None and st.chain is None:
                st.chain = self._chain(st.gbuf, st.start, st.window)
            self.stack_copies[_u64(st.gbuf, goid_at)] = (st.start.sp, st.window)
        position = {_u64(st.gbuf, goid_at): i for i, st in enumerate(copied.stacks)}
        self.value_frames.sort(key=lambda f: (position.get(f[0], 0), f[1]))

    def unwind(self, copied: Copied) -> tuple[list[RawGoroutine], dict[int, StackHead]]:
        """The goroutines from a copy, in allgs order, and the stack heads of those
        running on a thread. Reads nothing (copy() unwound the exceptions)."""
        out = []
        heads: dict[int, StackHead] = {}
        for st in copied.stacks:
            start = st.start
            g = st.walked or self._finish(st.gbuf, st.status, start, st.window, st.labels, st.chain)
            if start.source == SOURCE_THREAD:
                heads[g.goid] = StackHead(start.sp, start.bp, st.window[:HEAD])
            out.append(g)
        if self.value_frames:  # in goroutine order, as the probe queues them
            position = {g.goid: i for i, g in enumerate(out)}
            self.value_frames.sort(key=lambda f: (position.get(f[0], 0), f[1]))
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
        # Only a running goroutine starts from its thread's registers: one in a system
        # call starts from g.syscallpc/sp/bp, as the runtime's traceback does (the
        # thread, in the kernel, is deeper in the same stack, in frames Go does not print).
        wants_thread = status == running or (status == syscall and lay.g_syscallbp is None)
        t = self._thread(m, threads) if wants_thread and m else None
        if t is not None and not lo <= t.sp < hi:
            t = None
        if status == running and t is not None:
            return _Start(SOURCE_THREAD, [t.pc], t.bp, t.sp)
        if status == syscall:
            pc, sp = _u64(gbuf, lay.g_syscallpc), _u64(gbuf, lay.g_syscallsp)
            if lay.g_syscallbp is not None:
                return _Start(SOURCE_SYSCALL, [pc], _u64(gbuf, lay.g_syscallbp), sp)
            # Before Go 1.23 there is no g.syscallbp: the thread's chain passes through
            # the frame of syscallpc's function, the first record at or above syscallsp.
            if t is not None and t.sp <= sp:
                return _Start(SOURCE_SYSCALL, [pc], t.bp, sp, skip_below=sp)
            return _Start(SOURCE_SYSCALL, [pc], 0, sp)
        return _Start(
            SOURCE_SCHED,
            [_u64(gbuf, lay.g_sched_pc)],
            _u64(gbuf, lay.g_sched_bp),
            _u64(gbuf, lay.g_sched_sp),
        )

    def _thread(self, m: int, threads: dict[int, ThreadRegs]) -> ThreadRegs | None:
        """The registers of the thread running M m (m.procid is its tid)."""
        try:
            procid = _u64(self.read(m + self.layout.m_procid, 8), 0)
        except OSError:
            return None
        return threads.get(procid)

    def _finish(
        self,
        gbuf: bytes,
        status: int,
        start: _Start,
        window: bytes,
        labels: tuple[tuple[str, str], ...] | None = None,
        chain: _Chain | None = None,
    ) -> RawGoroutine:
        """Unwinds one goroutine from its g and the copy of its stack; reads what lies
        outside the copy (and its labels, unless given)."""
        lay = self.layout
        if chain is None:
            chain = self._chain(gbuf, start, window)
        pcs, truncated, bad, interrupted_depth, interrupted_sp_word = chain
        goid = _u64(gbuf, lay.g_goid)
        if labels is None:
            labels = ()
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
            pcs=pcs,
            truncated=truncated,
            bad_frame_pointer=bad,
            labels=labels,
            locked_to_thread=_u64(gbuf, lay.g_lockedm) != 0,
            interrupted_depth=interrupted_depth,
            interrupted_sp_word=interrupted_sp_word,
        )

    def _chain(self, gbuf: bytes, start: _Start, window: bytes) -> _Chain:
        """The frame-pointer chain from start, in the copy of the stack where it lies
        (read from the process elsewhere); notes the frames of spec'd functions."""
        lay = self.layout
        lo, hi = _u64(gbuf, lay.g_stack_lo), _u64(gbuf, lay.g_stack_hi)
        pcs = list(start.pcs)
        bp = start.bp
        goid = _u64(gbuf, lay.g_goid)
        truncated = bad = False
        preempt_lo, preempt_hi = lay.async_preempt
        interrupted_depth = interrupted_sp_word = 0
        sp, wlen = start.sp, len(window)
        vlo, vhi = self._value_span
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
            off = bp - sp
            if off >= 0 and off + size <= wlen:
                record, off = window, off
            else:
                try:
                    record, off = self.read(bp, size), 0
                except OSError:
                    bad = True
                    break
            next_bp, ret = _QQ(record, off)
            if bp < start.skip_below:
                if next_bp <= bp:
                    bad = True
                    break
                bp = next_bp
                continue
            if ret == 0:
                break
            if size == 24:
                interrupted_depth, interrupted_sp_word = len(pcs), _u64(record, off + 16)
            pcs.append(ret)
            if (
                vlo <= ret < vhi
                and next_bp != 0
                and any(lo_ <= ret < hi_ for lo_, hi_ in self.value_ranges)
            ):
                self.value_frames.append((goid, len(pcs) - 1, ret, next_bp + 16))
            if next_bp != 0 and next_bp <= bp:
                bad = True
                break
            bp = next_bp
        return tuple(pcs), truncated, bad, interrupted_depth, interrupted_sp_word
