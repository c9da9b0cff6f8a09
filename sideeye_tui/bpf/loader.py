"""Compiles, loads and attaches the stack probe with BCC; the only module that imports bcc.

Everything slow (compiling, verifying, attaching) happens here, before the target is
paused. During the pause the tracer only fills the threads map, arms the cursor and
polls it, all through raw map syscalls.
"""

from __future__ import annotations

import ctypes as ct
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..dwarf.binary import GoBinary
from ..errors import CaptureError, ProcessError
from ..procs import process_alive
from ..rawdata import ThreadRegs
from ..values.plan import CapturePlan
from . import program_cache, raw_program, stack_probe, uprobe_links, value_probe

TRIGGER_FUNCTION = "runtime.sigtrampgo"
WORKER_SHARE = 2000  # goroutines a walker; below that one more walking thread does not pay
# The last walker shares a CPU with the tracer (see pause.pick_walkers): it gets this many
# goroutines fewer, so that it stops, and the tracer (cold after the walk) deals with it,
# while the others still walk, instead of the tracer delaying the last walker's stop.
LAST_WALKER_SHORT = 400
# Threads walking at once, one per CPU. Safe because each walker stops by itself when
# the signal handler that ran its probe returns (see capture/pause.py
# run_signal_handlers): one that finishes early does not go back to the goroutine it
# interrupted while the others still walk.
PARALLEL_WALKERS = 8
MAX_COPIES = 32  # uprobes on the trigger, each with a tail-call chain of its own
# The early walk runs while the process runs, on one of its threads, without being
# preempted: each trigger may run this many invocations (~60 us each), so that the CPU
# it takes is given back every few tenths of a millisecond.
EARLY_BUDGET = 32
EARLY_POLL_S = 0.0002  # between two looks at the early walk's budget
EARLY_STALL_S = 0.05  # a trigger that has not started by then: the thread does not take it
# Frames whose values one walking thread reads in the pause after an early walk, below
# which one more thread does not pay (0.4 to 0.8 us a frame, measured on a loaded VM).
VALUE_SHARE = 2000

_compile_lock = threading.Lock()  # LLVM in BCC is not safe to drive from several threads
_bcc: Any = None
_attach: Any = None
KPROBE = raw_program.BPF_PROG_TYPE_KPROBE


def _load_bcc() -> Any:
    """BCC's Python module: only to compile (a miss of the program cache), as importing
    it loads LLVM (~50 ms of CPU). Sets up _attach too (_load_libs), as it always did."""
    global _bcc
    _load_libs()
    if _bcc is None:
        try:
            import bcc
        except ImportError as e:
            raise CaptureError(
                "BCC is not available (Debian package python3-bpfcc); use --backend ptrace"
            ) from e
        _bcc = bcc
    return _bcc


def _load_libs() -> Any:
    """BCC's map and attach calls, from libbcc_bpf (no compiler in it)."""
    global _attach
    if _attach is None:
        try:
            lib = raw_program.bpflib()
        except OSError as e:
            raise CaptureError(
                "BCC is not available (Debian package libbpfcc); use --backend ptrace"
            ) from e
        # bcc's own binding declares 6 arguments; libbcc 0.26 takes a 7th (ref_ctr_offset).
        _attach = lib.bpf_attach_uprobe
        _attach.restype = ct.c_int
        _attach.argtypes = [
            ct.c_int,
            ct.c_int,
            ct.c_char_p,
            ct.c_char_p,
            ct.c_ulonglong,
            ct.c_int,
            ct.c_uint32,
        ]
    return raw_program.bpflib()


def _ringbuf_pages(goroutines: int, values: bool = False) -> int:
    # header + one frames record each, twice over; values: up to 2 KiB a frame
    need = max(goroutines, 1024) * (2 * 400 + (2048 if values else 0))
    pages = 1
    while pages * 4096 < need:
        pages *= 2
    return min(pages, 1 << 16)  # 256 MiB at most


def _tracked_offsets(binary: GoBinary) -> list[int] | None:
    """File offsets of the functions the goroutine tracker hooks; None if one is missing."""
    offsets = []
    for name in stack_probe.TRACKED_FUNCTIONS + stack_probe.TRACKED_IF_LINKED:
        entry = binary.function_entry(name)
        if entry is None:
            if name in stack_probe.TRACKED_FUNCTIONS:
                return None
            continue  # not linked: nothing in this program can call it
        offsets.append(binary.file_offset(entry))
    return offsets


def _close_all(fds: list[int]) -> None:
    """Closes perf event fds, in parallel: each uprobe's removal waits for RCU grace
    periods, which removals at the same time share."""
    if len(fds) <= 1:
        for fd in fds:
            os.close(fd)
        return
    with ThreadPoolExecutor(max_workers=len(fds)) as pool:
        list(pool.map(os.close, fds))


# A function a healthy program never runs: a uprobe there is hit by nobody.
UNHIT_FUNCTION = "runtime.throw"


class StackProbe:
    """The probe for one target process: compiled, loaded and attached, not yet armed."""

    def __init__(
        self,
        binary: GoBinary,
        pid: int,
        expected_goroutines: int,
        max_depth: int,
        plan: CapturePlan | None = None,
        links: bool | None = None,
    ):
        """links: attach the uprobes as BPF links (see uprobe_links.py); None: where the
        kernel has them, False: as perf events (older kernels; for tests and benches)."""
        lib = _load_libs()
        self.links = uprobe_links.supported() if links is None else links
        # Programs in one tail-call chain share their expected attach type.
        attach_type = uprobe_links.ATTACH_TYPE if self.links else -1
        layout = binary.layout
        # Enough tail-call chains that one trigger walks everything: about 16 steps a
        # goroutine (a step unwinds one frame), split between the walking threads.
        self.max_workers = min(os.cpu_count() or 1, stack_probe.MAX_WORKERS, PARALLEL_WALKERS)
        # Values: about a dozen steps per frame, as many frames as goroutines at most.
        per_goroutine = 20 + (24 if plan is not None else 0)
        est_steps = (
            max(expected_goroutines, 1000) * per_goroutine // self.workers_for(expected_goroutines)
        )
        base = stack_probe.ProbeLimits(max_depth=max_depth)
        per_copy = base.steps * (base.tail_calls + 1)
        copies = min(MAX_COPIES, max(2, -(-est_steps // per_copy)))
        self.limits = stack_probe.ProbeLimits(
            max_depth=max_depth,
            copies=copies,
            ringbuf_pages=_ringbuf_pages(expected_goroutines, plan is not None),
        )
        entry = binary.function_entry(TRIGGER_FUNCTION)
        if entry is None:
            raise CaptureError(f"{binary.path}: no {TRIGGER_FUNCTION} to trigger the probe")
        self.pid = pid
        self._fds: list[int] = []
        self._track_fds: list[int] = []  # the goroutine tracker's uprobes (early walk)
        self._records: list[bytes] = []
        dims = value_probe.ValueDims.of(plan, expected_goroutines) if plan is not None else None
        self.value_jobs = dims.jobs if dims is not None else 0
        src = stack_probe.generate(layout, self.limits, dims)
        with _compile_lock:
            try:
                self.bpf = program_cache.load(src.encode(), lambda text: _load_bcc().BPF(text=text))
                fn = self.bpf.load_func(b"walk", KPROBE, attach_type=attach_type)
            except CaptureError:
                raise
            except Exception as e:  # bcc raises bare Exception
                raise CaptureError(
                    f"the eBPF probe could not be loaded ({str(e).splitlines()[0]}); "
                    "try --backend ptrace"
                ) from None
            self.bpf[b"chain"][ct.c_int(0)] = ct.c_int(fn.fd)
            if layout.labels is not None:
                labels_fn = self.bpf.load_func(b"labels", KPROBE, attach_type=attach_type)
                self.bpf[b"chain"][ct.c_int(1)] = ct.c_int(labels_fn.fd)
            if dims is not None and plan is not None:
                values_fn = self.bpf.load_func(b"values", KPROBE, attach_type=attach_type)
                self.bpf[b"chain"][ct.c_int(2)] = ct.c_int(values_fn.fd)
                value_probe.fill_maps(self.bpf, plan)
            try:
                self._fds += self._attach(fn.fd, [binary.file_offset(entry)] * copies, "")
            except OSError:
                self.close()
                if not process_alive(pid):
                    raise ProcessError(f"pid {pid} exited during the snapshot") from None
                raise CaptureError(
                    "could not attach a uprobe (is this kernel built with "
                    "CONFIG_UPROBE_EVENTS?); try --backend ptrace"
                ) from None
        self.values = dims is not None
        self._track_fn = self.bpf.load_func(b"track", KPROBE, attach_type=attach_type)
        self._tracked = _tracked_offsets(binary)
        unhit = binary.function_entry(UNHIT_FUNCTION)
        self._unhit_offset = binary.file_offset(unhit) if unhit is not None else None
        self._allglen = binary.data_symbol("runtime.allglen")
        self._allgptr = binary.data_symbol("runtime.allgptr")
        self._allm = binary.data_symbol("runtime.allm")
        self._changed_only = False
        self._early_jobs = 0
        self._cursors = self.bpf[b"cursors"]
        self._threads = self.bpf[b"threads"]
        self._workers = 0
        self._tgid = pid
        self.copies = copies
        self._lookup: Callable[..., int] = lib.bpf_lookup_elem
        self._update: Callable[..., int] = lib.bpf_update_elem
        self._update_batch: Callable[..., int] = lib.bpf_update_batch
        self._allgs_addr = layout.allgs_addr
        self._map_fd = self._cursors.map_fd
        # What arm() writes during the pause, made now.
        self._threads_fd = self._threads.map_fd
        self._thread_key = self._threads.Key
        self._thread_leaf = self._threads.Leaf
        worker_of = self.bpf[b"worker_of"]
        self._worker_of_fd = worker_of.map_fd
        self._worker_key = worker_of.Key
        self._worker_leaf = worker_of.Leaf
        self._armed: list[Any] = []
        self._peeked = [self._cursors.Leaf() for _ in range(self.max_workers)]
        self._vstate: list[Any] = []
        for slot in range(self.max_workers):
            cur = self._cursors.Leaf()
            cur.lq_base = slot * (stack_probe.LABEL_QUEUE // stack_probe.MAX_WORKERS)
            self._armed.append(cur)
        self._vstates_fd: int | None = None
        if self.values:
            states = self.bpf[b"vstates"]
            self._vstates_fd = states.map_fd
            for slot in range(self.max_workers):
                state = states.Leaf()
                state.worker = slot
                self._vstate.append(state)

        def on_record(_ctx: Any, data: Any, size: int) -> int:
            self._records.append(ct.string_at(data, size))
            return 0

        self._on_record = on_record
        self.bpf[b"records"].open_ring_buffer(on_record)

    def prepare(
        self, tgid: int, workers: int, changed_only: bool = False, early_jobs: int = 0
    ) -> None:
        """Before the pause: one cursor armed per worker. The probe reads allgs itself
        and takes its share, so nothing here depends on the paused state; it only runs
        on the threads arm() names. `changed_only`: after an early walk, the first
        worker walks only the goroutines the tracker marked, and the `early_jobs`
        frames the early walk queued for values are shared out between the workers
        (without them, one worker)."""
        self._tgid = tgid
        self._changed_only = changed_only
        self._early_jobs = early_jobs
        if changed_only and not (self.values and early_jobs):
            workers = 1
        shares = self._job_shares(workers, changed_only, early_jobs)
        for slot in range(workers):
            cur = self._armed[slot]
            cur.mode = stack_probe.WALK_CHANGED if changed_only else stack_probe.WALK_PAUSED
            cur.allm = self._allm or 0
            cur.armed = 1
            cur.tgid = tgid
            cur.allgs = self._allgs_addr
            cur.slot = slot
            cur.nworkers = workers
            cur.last_short = LAST_WALKER_SHORT
            cur.vq_base, cur.vq_len, cur.vq_cap = shares[slot]
            cur.rb_used, cur.rb_wait = 0, 0
            cur.rb_cap = self._value_ring_share(workers)
            key = ct.c_int(slot)
            self._update(self._map_fd, ct.byref(key), ct.byref(cur), 0)
            if self._vstates_fd is not None:
                self._update(self._vstates_fd, ct.byref(key), ct.byref(self._vstate[slot]), 0)
        self._workers = workers

    def _job_shares(
        self, workers: int, changed_only: bool, early_jobs: int
    ) -> list[tuple[int, int, int]]:
        """(base, queued, capacity) in vjobs, per worker. A full walk splits vjobs
        evenly. After an early walk (its jobs at [0, early_jobs)), the other workers
        each take a part of those, and the first the last part: its own walk queues
        after it, up to the end of vjobs."""
        total = self.value_jobs
        if not changed_only:
            part = total // max(workers, 1)
            return [(slot * part, 0, part) for slot in range(workers)]
        bounds = [early_jobs * k // workers for k in range(workers + 1)]
        shares = [
            (bounds[workers - 1], early_jobs - bounds[workers - 1], total - bounds[workers - 1])
        ]
        for slot in range(1, workers):
            lo, hi = bounds[slot - 1], bounds[slot]
            shares.append((lo, hi - lo, hi - lo))
        return shares

    def _value_ring_share(self, workers: int) -> int:
        """Bytes of value records a worker may leave in the ring buffer before it waits
        for the tracer to read them: half the ring (the rest is for stacks), shared."""
        return self.limits.ringbuf_pages * 4096 // 2 // max(workers, 1)

    def make_room(self) -> bool:
        """Between two triggers: if a worker stopped because its share of the ring
        buffer is full, reads the ring buffer (the records are kept for drain) and lets
        it go on at the next trigger. False if none waited."""
        waiting = [slot for slot in range(self._workers) if self._peek(slot).rb_wait]
        if not waiting:
            return False
        self.bpf.ring_buffer_consume()
        for slot in waiting:
            cur = self._peek(slot)
            cur.rb_used, cur.rb_wait = 0, 0
            key = ct.c_int(slot)
            self._update(self._map_fd, ct.byref(key), ct.byref(cur), 0)
        return True

    def value_workers(self, early_jobs: int) -> int:
        """Workers in a pause after an early walk that queued `early_jobs` frames."""
        if not self.values:
            return 1
        return max(1, min(self.max_workers, early_jobs // VALUE_SHARE + 1))

    def arm(self, threads: list[ThreadRegs], workers: list[int]) -> None:
        """Called while the target is paused: the threads' registers and the walking
        threads. Raw calls on objects made before the pause: BCC's table wrappers cost
        about 10 us a call, which the target would feel."""
        if len(workers) != self._workers:  # fewer clean threads than planned
            self.prepare(self._tgid, len(workers), self._changed_only, self._early_jobs)
        self._write_threads(threads)
        for slot, tid in enumerate(workers):
            wkey = self._worker_key(tid)
            wleaf = self._worker_leaf(slot)
            self._update(self._worker_of_fd, ct.byref(wkey), ct.byref(wleaf), 0)

    def _write_threads(self, threads: list[ThreadRegs]) -> None:
        """The threads map, in one batched update."""
        n = len(threads)
        if not n:
            return
        keys = (self._thread_key * n)(*(self._thread_key(t.tid) for t in threads))
        leaves = (self._thread_leaf * n)(*(self._thread_leaf(t.sp, t.pc, t.bp) for t in threads))
        count = ct.c_uint32(n)
        if self._update_batch(self._threads_fd, ct.byref(keys), ct.byref(leaves), ct.byref(count)):
            for key, leaf in zip(keys, leaves, strict=True):  # an old kernel: one by one
                self._update(self._threads_fd, ct.byref(key), ct.byref(leaf), 0)

    def warm_up(self) -> None:
        """Runs what the tracer runs during the pause once beforehand, so that it runs
        from warm caches then (cold, the same Python code takes several times longer).
        Writes only thread 0's entry, which no goroutine's thread can match."""
        for _ in range(3):
            self._write_threads([ThreadRegs(0, 0, 0, 0)] * 4)
            self.hits()
            self.progress(0)
            self.done()

    def poll(self) -> list[Any]:
        """Every armed worker's cursor, each a copy of its own."""
        out = []
        for slot in range(self._workers):
            key = ct.c_int(slot)
            leaf = self._cursors.Leaf()
            self._lookup(self._map_fd, ct.byref(key), ct.byref(leaf))
            out.append(leaf)
        return out

    def _peek(self, slot: int) -> Any:
        """One worker's cursor, read with a raw map lookup into a buffer reused by every
        call: the tracer polls it while the target is paused."""
        key = ct.c_int(slot)
        leaf = self._peeked[slot]
        self._lookup(self._map_fd, ct.byref(key), ct.byref(leaf))
        return leaf

    def hits(self) -> list[int]:
        """Per walking thread, how many times the probe fired: tells a stop after the
        probe from one on the way to it."""
        return [int(self._peek(slot).hits) for slot in range(self._workers)]

    def fired_since(self, before: list[int], worker: int) -> bool:
        return bool(self._peek(worker).hits > before[worker])

    def progress(self, worker: int) -> int:
        """A counter that grows while the probe runs on this worker's thread."""
        c = self._peek(worker)
        return int(c.hits + c.invocations)

    def cpu(self, worker: int) -> int:
        """The CPU this worker's probe ran on first."""
        return int(self._peek(worker).cpu)

    def workers_for(self, goroutines: int) -> int:
        return max(1, min(self.max_workers, goroutines // WORKER_SHARE))

    def done(self) -> bool:
        return all(self._peek(slot).done for slot in range(self._workers))

    def disarm(self) -> None:
        """Stops a walk that did not finish (a probe that is done does nothing more)."""
        for slot in range(self._workers):
            cur = self._peek(slot)
            if not cur.done:
                cur.armed = 0
                key = ct.c_int(slot)
                self._update(self._map_fd, ct.byref(key), ct.byref(cur), 0)

    # -- the early walk (see the walk modes in stack_probe.py) ---------------------

    def can_walk_early(self) -> bool:
        """Whether this binary has what the early walk needs: the symbols of allglen,
        allgptr and allm (a stripped binary has none) and every tracked function."""
        return None not in (self._allglen, self._allgptr, self._allm) and self._tracked is not None

    def start_tracking(self) -> bool:
        """Attaches the uprobes that mark the goroutines which start or stop running;
        from here on the target pays a uprobe hit (~1 us) at each such transition.
        False if one could not be attached (the tracker is then off)."""
        assert self._tracked is not None
        tracker = self.bpf[b"tracker"]
        tracker[ct.c_int(0)] = tracker.Leaf(self._tgid, 1, 0, 0)
        try:
            self._track_fds = self._attach(self._track_fn.fd, self._tracked, "t")
        except OSError:
            self.stop_tracking()
            return False
        return True

    def _attach(self, prog_fd: int, offsets: list[int], tag: str) -> list[int]:
        """Uprobes at these file offsets of the target's executable, running prog_fd:
        one link, or a perf event each (named sideeye_<us>_<pid>_<tag><i>). Their fds;
        OSError if one could not be attached (none is left then)."""
        path = f"/proc/{self.pid}/exe"
        if self.links:
            return [uprobe_links.attach(prog_fd, self.pid, path, offsets)]
        fds: list[int] = []
        for i, offset in enumerate(offsets):
            ev = f"sideeye_{os.getpid()}_{self.pid}_{tag}{i}".encode()
            fd = _attach(prog_fd, 0, ev, path.encode(), offset, -1, 0)
            if fd < 0:
                err = ct.get_errno()
                _close_all(fds)
                raise OSError(err, f"cannot attach a uprobe at offset {offset:#x} of {path}")
            fds.append(fd)
        return fds

    def stop_tracking(self) -> None:
        tracker = self.bpf[b"tracker"]
        leaf = tracker[ct.c_int(0)]
        leaf.on = 0
        tracker[ct.c_int(0)] = leaf

    def walk_early(
        self,
        tid: int,
        kick: Callable[[], None],
        deadline: float,
        tend: Callable[[], None] | None = None,
    ) -> int | None:
        """Walks every goroutine on thread `tid` while the process runs, EARLY_BUDGET
        invocations per `kick` (which sends it the trigger signal). Returns how many
        allgs entries the walk covered, None when it did not finish by `deadline`
        (monotonic) or the thread stopped taking the signal. `tend` runs at each look at
        the budget (early_walk.Courier.tend: the thread must not stay in a stop)."""
        self._tgid = self.pid
        cur = self._armed[0]
        cur.mode = stack_probe.WALK_EARLY
        cur.armed = 1
        cur.tgid = self.pid
        cur.allgs = self._allgs_addr
        cur.allglen = self._allglen or 0
        cur.allgptr = self._allgptr or 0
        cur.slot = 0
        cur.nworkers = 1
        cur.vq_base, cur.vq_len, cur.vq_cap = 0, 0, self.value_jobs
        cur.rb_cap = 0  # the early walk reads no values
        key = ct.c_int(0)
        self._update(self._map_fd, ct.byref(key), ct.byref(cur), 0)
        self._workers = 1
        worker_of = self.bpf[b"worker_of"]
        worker_of[self._worker_key(tid)] = self._worker_leaf(0)
        budget_map = self.bpf[b"early_budget"]
        budget_fd = budget_map.map_fd
        budget = ct.c_uint64(0)
        try:
            while not self._peek(0).done and time.monotonic() < deadline:
                budget.value = EARLY_BUDGET
                self._update(budget_fd, ct.byref(key), ct.byref(budget), 0)
                kick()
                started = time.monotonic()
                while True:
                    time.sleep(EARLY_POLL_S)
                    if tend is not None:
                        tend()
                    self._lookup(budget_fd, ct.byref(key), ct.byref(budget))
                    if budget.value == 0 or self._peek(0).done:
                        break
                    if budget.value == EARLY_BUDGET and time.monotonic() - started > EARLY_STALL_S:
                        return None  # the signal is not getting through
                    if time.monotonic() > deadline:
                        return None
        finally:
            self.disarm()
            del worker_of[self._worker_key(tid)]
        c = self._peek(0)
        return int(c.pre_len) if c.done else None

    def marked(self, count: int) -> set[int]:
        """The first `count` goroutines the tracker marked (g addresses)."""
        marks = self.bpf[b"marks"]
        out = set()
        leaf = ct.c_uint64(0)
        for i in range(min(count, stack_probe.MARKS)):
            key = ct.c_int(i)
            self._lookup(marks.map_fd, ct.byref(key), ct.byref(leaf))
            out.add(int(leaf.value))
        return out

    def detach(self) -> None:
        """Removes the uprobes (the program stays loaded until close).

        Each removal waits for RCU grace periods (~0.1 s); closing them all at once
        lets them share them. The tracker's go first (see remove_tracker)."""
        self.remove_tracker()
        fds, self._fds = self._fds, []
        _close_all(fds)

    def remove_tracker(self, warm: bool = True) -> None:
        """Removes the tracker's uprobes without stalling the threads that hit them.

        A link's removal stalls no one (see uprobe_links.py). Perf-event uprobes can:
        removing one holds its register_rwsem for writing while it write-locks
        dup_mmap_sem, a percpu rwsem, which from idle waits for a full RCU grace period
        (rcu_sync_enter; 20-40 ms here), and a thread that hits the breakpoint
        meanwhile sleeps in handler_chain's down_read of that register_rwsem for the
        rest of it (kernel stacks: rwsem_down_read_slowpath < handler_chain <
        uprobe_notify_resume < asm_exc_int3 from runtime.casgstatus). But for one grace
        period after a writer leaves, entering is immediate. So with perf events a
        uprobe nothing hits (runtime.throw) is attached first, which takes that grace
        period and holds no lock anyone waits on, and the tracker's are then removed
        all at once, inside the window. It narrows the stall; it does not always avoid
        it. (warm=False: without that first step, for bench/uprobe_removal.py.)"""
        track_fds, self._track_fds = self._track_fds, []
        if not track_fds:
            return
        unhit = self._attach_unhit_uprobe() if warm and not self.links else None
        _close_all(track_fds)
        if unhit is not None:
            self._fds.append(unhit)  # removed with the walk's

    def _attach_unhit_uprobe(self) -> int | None:
        if self._unhit_offset is None:
            return None
        try:
            return self._attach(self._track_fn.fd, [self._unhit_offset], "warm")[0]
        except OSError:
            return None

    def drain(self) -> list[bytes]:
        self.bpf.ring_buffer_consume()
        out, self._records = self._records, []
        return out

    def close(self) -> None:
        self.detach()
        bpf = getattr(self, "bpf", None)
        if bpf is not None:
            bpf.cleanup()


# -- the dynamic-events probe (events/; the program is bpf/c/event_probe.c) ----------


class EventProgram:
    """The events probe compiled and loaded once for a whole trace; uprobes are attached
    per process (attach) and removed with their fds (a link's dies with its fd)."""

    def __init__(self, text: str, links: bool | None = None) -> None:
        bcc = _load_bcc()
        self.links = uprobe_links.supported() if links is None else links
        attach_type = uprobe_links.ATTACH_TYPE if self.links else -1
        with _compile_lock:
            try:
                self.bpf = bcc.BPF(text=text.encode())
                self.fn = self.bpf.load_func(b"on_site", bcc.BPF.KPROBE, attach_type=attach_type)
                # The value capture's programs, reached by tail calls (see the C file).
                progs = self.bpf[b"progs"]
                for slot, name in enumerate((b"values", b"chase")):
                    f = self.bpf.load_func(name, bcc.BPF.KPROBE, attach_type=attach_type)
                    progs[ct.c_int(slot)] = ct.c_int(f.fd)
            except Exception as e:  # bcc raises bare Exception
                raise CaptureError(
                    f"the events probe could not be loaded ({str(e).splitlines()[0]})"
                ) from None
        self._fds: list[int] = []

    def attach(self, pid: int, offsets: list[int]) -> list[int]:
        """Uprobes at these file offsets of pid's executable; OSError if one failed (then
        none is left)."""
        path = f"/proc/{pid}/exe"
        if self.links:
            fds = [uprobe_links.attach(self.fn.fd, pid, path, offsets)]
        else:
            fds = []
            for i, offset in enumerate(offsets):
                ev = f"sideeye_ev_{os.getpid()}_{pid}_{i}".encode()
                fd = _attach(self.fn.fd, 0, ev, path.encode(), offset, -1, 0)
                if fd < 0:
                    err = ct.get_errno()
                    _close_all(fds)
                    raise OSError(err, f"cannot attach a uprobe at offset {offset:#x} of {path}")
                fds.append(fd)
        self._fds += fds
        return fds

    def detach(self, fds: list[int] | None = None) -> None:
        """Removes these uprobes (default: all)."""
        if fds is None:
            fds, self._fds = self._fds, []
        else:
            self._fds = [fd for fd in self._fds if fd not in fds]
        _close_all(fds)

    def close(self) -> None:
        self.detach()
        self.bpf.cleanup()
