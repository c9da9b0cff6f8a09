"""Taking a snapshot: every given process paused independently, concurrently, briefly.

Per process, in its own thread (a ptrace tracer is a thread):
  analyse the binary (cached by build id) -> build and attach the probe ->
  pause -> registers -> walk (eBPF probe or ptrace reads) -> resume ->
  read the records -> symbolize.
Only the middle part runs while the target is stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..dwarf.binary import GoBinary
from ..errors import ProcessError, SideEyeError
from ..model import FrameCapture, ProcessSnapshot, Snapshot
from ..procs import process_alive
from ..rawdata import SOURCE_THREAD, RawGoroutine, RawProcess, StackHead, ThreadRegs
from ..values.plan import CapturePlan
from ..values.plan_cache import compile_plan_cached
from . import early_walk, linux, pause
from .decode import Decoder
from .priority import foreground
from .ptrace_walk import PtraceWalker
from .running import mend_preempted_frame, mend_running_frames
from .signal_targets import SignalTargets
from .values import chase_ptrace, frame_captures

if TYPE_CHECKING:
    from ..bpf.loader import StackProbe

MAX_DEPTH = 1024
MAX_TRIGGERS = 8  # a trigger walks ~10^6 frames a thread; more is a runaway
WALK_BUDGET_S = 1.0  # never hold a process longer than this: resume, keep what was read
BACKENDS = ("ebpf", "ptrace")
NO_WALKER = (
    "pid {pid}: every thread is in a system call that the probe's signal would cut short"
    " (EINTR); try --backend ptrace"
)

Progress = Callable[[str], None]


def _thread_regs(paused: pause.PausedProcess) -> list[ThreadRegs]:
    return [
        ThreadRegs(t.tid, t.regs.rip, t.regs.rsp, t.regs.rbp)
        for t in paused.threads.values()
        if t.regs is not None
    ]


def _mend(
    binary: GoBinary, goroutines: list[RawGoroutine], heads: dict[int, StackHead]
) -> list[RawGoroutine]:
    """Adds the frames frame pointers skip (see running.py): the caller of a function
    asyncPreempt interrupted, then that of a running goroutine's innermost function
    (in this order: the first inserts at 2 or deeper, the second at 1)."""
    out = []
    for g in goroutines:
        head = heads.get(g.goid) if g.source == SOURCE_THREAD else None
        pcs = g.pcs
        if g.interrupted_depth:
            pcs = mend_preempted_frame(
                binary, pcs, g.interrupted_depth, g.interrupted_sp_word, head
            )
        if head is not None:
            pcs = mend_running_frames(binary, pcs, head)
        if pcs != g.pcs:
            g = dataclasses.replace(g, pcs=pcs)
        out.append(g)
    return out


def _capture_ptrace(pid: int, binary: GoBinary, plan: CapturePlan | None = None) -> RawProcess:
    ranges = tuple((f.lo, f.hi) for f in plan.functions) if plan is not None and plan.sites else ()
    walker = PtraceWalker(pid, binary.layout, MAX_DEPTH, ranges)
    with pause.realtime():
        return _capture_ptrace_paused(pid, binary, walker, plan)


def _capture_ptrace_paused(
    pid: int, binary: GoBinary, walker: PtraceWalker, plan: CapturePlan | None = None
) -> RawProcess:
    paused = pause.pause(pid)
    try:
        raw = RawProcess(pid, threads=len(paused.threads))
        raw.now_ns = time.monotonic_ns()
        copied = walker.copy({t.tid: t for t in _thread_regs(paused)})
        if plan is not None and plan.sites:
            # The frames holding values are found by following the chains: in the
            # pause, with the chase; the rest of unwinding waits for the resume.
            walker.find_values(copied)
            if walker.value_frames:
                raw.values = chase_ptrace(pid, plan, walker.value_frames, walker.stack_copies)
    finally:
        pause.resume(paused)
    raw.pause_ns = paused.pause_ns
    goroutines, heads = walker.unwind(copied)  # from the copies: nothing read now
    raw.goroutines = _mend(binary, goroutines, heads)
    _note_queue_full(raw)
    return raw


def _pick_walkers(paused: pause.PausedProcess, count: int, targets: SignalTargets) -> pause.Walkers:
    """Walkers among the stopped threads; none that may take the signal is an error."""
    walkers = pause.pick_walkers(paused, count, targets=targets)
    if not walkers.tids:
        raise ProcessError(NO_WALKER.format(pid=paused.pid))
    return walkers


def _walk_paused_ebpf(
    pid: int,
    probe: StackProbe,
    targets: SignalTargets,
    expected: int,
    changed_only: bool,
    early_jobs: int = 0,
) -> tuple[RawProcess, int]:
    # Large processes are walked by several threads at once, one per CPU; after an
    # early walk, one thread reads what changed since, and the values of the frames
    # the early walk found are read by as many as they need.
    workers = probe.value_workers(early_jobs) if changed_only else probe.workers_for(expected)
    probe.prepare(pid, workers, changed_only, early_jobs)
    probe.warm_up()
    paused = pause.pause(
        pid, registers=False, walkers=workers, trigger=linux.SIGURG, targets=targets
    )
    triggers = 0
    try:
        raw = RawProcess(pid, threads=len(paused.threads))
        walkers = paused.walkers or _pick_walkers(paused, workers, targets)
        # The walkers' registers now, the others' with the maps the probe needs (arm):
        # before the walkers go when pause() stopped them in the signal's delivery,
        # else while they wake up to take it (see run_signal_handlers).
        pause.read_registers(paused, walkers.tids)
        rest = [tid for tid in paused.threads if tid not in walkers.tids]

        def arm() -> None:
            pause.read_registers(paused, rest)
            probe.arm(_thread_regs(paused), walkers.tids)

        raw.now_ns = time.monotonic_ns()
        deadline = time.monotonic() + WALK_BUDGET_S
        room_made = 0  # triggers after reading the ring buffer (see make_room): not a runaway
        with pause.pinned(walkers.tracer_cpu):
            while (
                not probe.done()
                and triggers < MAX_TRIGGERS + room_made
                and time.monotonic() < deadline
            ):
                if triggers and probe.make_room():
                    room_made += 1
                triggers += 1
                pause.run_signal_handlers(
                    paused,
                    walkers.tids,
                    linux.SIGURG,
                    functools.partial(probe.fired_since, probe.hits()),
                    probe.progress,
                    timeout_s=max(0.01, deadline - time.monotonic()),
                    meanwhile=arm if triggers == 1 else None,
                    probe_cpu=probe.cpu,
                )
        probe.disarm()
    finally:
        pause.resume(paused)
    raw.pause_ns = paused.pause_ns
    return raw, triggers


def _capture_ebpf(
    pid: int,
    binary: GoBinary,
    plan: CapturePlan | None = None,
    after_early_walk: Callable[[], None] | None = None,
    early: bool = True,
) -> RawProcess:
    from ..bpf import stack_probe
    from ..bpf.loader import StackProbe  # lazily: bcc is imported only here
    from ..bpf.records import RecordDecoder

    layout = binary.layout
    try:
        ptr_len = linux.read_memory(pid, layout.allgs_addr, 16)
        expected = struct.unpack("<QQ", ptr_len)[1]
    except OSError:
        expected = 10_000
    probe = StackProbe(
        binary, pid, expected, MAX_DEPTH, plan if plan is not None and plan.sites else None
    )
    targets = SignalTargets.of(binary)
    walked_early = None
    # From the early walk until the uprobes are gone the target bears us: normal priority
    # (if something fails, it stays so for the close and this capture thread's end).
    bearing = foreground()
    try:
        # Values are read in the pause only (the heap changes without their goroutine
        # running): the early walk queues the frames, the pause reads their values.
        if early:
            walked_early = early_walk.walk_early(pid, probe, targets)
        if walked_early is not None and after_early_walk is not None:
            after_early_walk()
        with pause.realtime():
            raw, triggers = _walk_paused_ebpf(
                pid,
                probe,
                targets,
                expected,
                walked_early is not None,
                walked_early.value_jobs if walked_early is not None else 0,
            )
        if walked_early is not None:
            probe.stop_tracking()
        probe.detach()
        bearing.restore()
        stats = probe.poll()
        decoder = RecordDecoder()
        for rec in probe.drain():
            decoder.feed(rec)
        goroutines = decoder.goroutines()
        value_frames = list(decoder.value_frames.values())
        early_kept: set[int] = set()
        if walked_early is not None and stats and not stats[0].fell_back:
            walked_early.decode()
            changed = goroutines
            goroutines = early_walk.merge(
                walked_early.goroutines, goroutines, probe.marked(int(stats[0].nmarked))
            )
            early_kept = {g.goid for g in goroutines} - {g.goid for g in changed}
            decoder.labels_cut |= walked_early.labels_cut
            raw.walk = "early"
        elif walked_early is not None:
            raw.notes.append("the goroutine tracker lost marks: the pause walked everything")
    finally:
        probe.close()
    # Caveats about the capture (README, processes.notes). Several triggers are how a
    # large process is walked, no caveat; a walk they did not finish is one.
    if not all(c.done for c in stats):
        raw.notes.append(
            f"the probe did not finish walking the goroutines ({triggers} triggers):"
            " some are missing"
        )
    lost = sum(c.lost for c in stats)
    if lost:
        raw.notes.append(f"{lost} records were lost (ring buffer full)")
    if decoder.labels_cut:
        raw.notes.append(
            f"{len(decoder.labels_cut)} goroutines have more labels than the probe reads "
            f"({stack_probe.MAX_LABELS})"
        )
    raw.goroutines = _mend(binary, goroutines, decoder.heads)
    raw.values = early_walk.merge_values(value_frames, early_kept)
    vq_lost = sum(c.vq_lost for c in stats)
    if vq_lost:
        raw.notes.append(f"{vq_lost} frames of spec'd functions were not captured (queue full)")
    _note_queue_full(raw)
    return raw


def _values(
    binary: GoBinary, plan: CapturePlan, decoder: Decoder, raw: RawProcess
) -> tuple[FrameCapture, ...]:
    """The spec'd frames' values; a failure to decode them is a caveat, never a reason
    to lose the stacks the pause read."""
    try:
        return frame_captures(binary, plan, decoder, raw.goroutines, raw.values)
    except Exception as e:  # noqa: BLE001 - keep the capture that happened
        raw.notes.append(f"the values were not decoded: {type(e).__name__}: {e}")
        return ()


def _note_queue_full(raw: RawProcess) -> None:
    """A frame with more pointers to follow than its item queue holds at once keeps
    what it copied; the values left out say "item queue full". Said once here too."""
    full = sum(1 for f in raw.values if f.queue_full)
    if full:
        raw.notes.append(
            f"{full} frames of spec'd functions had more to copy than their item queue "
            "holds (values cut: item queue full)"
        )


def capture_process(
    pid: int,
    backend: str = "ebpf",
    captures: Mapping[str, Sequence[str]] | None = None,
    after_early_walk: Callable[[], None] | None = None,
    early: bool = True,
) -> ProcessSnapshot:
    """One process's part of a snapshot; a failure lands in .error (nothing captured),
    a caveat about a capture that happened in .notes; never raises.

    Runs in a thread of its own: ptrace ties a tracee to the tracing thread, and a
    thread's exit detaches whatever it still holds, so nothing stays stopped."""
    result: list[ProcessSnapshot] = []
    worker = threading.Thread(
        target=lambda: result.append(
            _capture_process(pid, backend, captures, after_early_walk, early)
        ),
        name=f"capture-{pid}",
    )
    worker.start()
    worker.join()
    return result[0]


def _capture_process(
    pid: int,
    backend: str,
    captures: Mapping[str, Sequence[str]] | None = None,
    after_early_walk: Callable[[], None] | None = None,
    early: bool = True,
) -> ProcessSnapshot:
    """`early`: try the early walk (capture/early_walk.py). `after_early_walk` runs
    between the early walk and the pause (tests change the target there)."""
    exe = ""
    binary: GoBinary | None = None
    plan: CapturePlan | None = None
    try:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except FileNotFoundError:
            raise SideEyeError(f"no process with pid {pid}") from None
        except PermissionError:
            raise SideEyeError(f"pid {pid}: permission denied (run as root)") from None
        binary = GoBinary.open(f"/proc/{pid}/exe")
        _ = binary.layout
        if captures:
            plan = compile_plan_cached(binary, captures)  # before the pause: it reads DWARF
        if backend == "ptrace":
            raw = _capture_ptrace(pid, binary, plan)
        elif backend == "ebpf":
            raw = _capture_ebpf(pid, binary, plan, after_early_walk, early)
        else:
            raise SideEyeError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
        if any(g.bad_frame_pointer for g in raw.goroutines) and not process_alive(pid):
            # Reads failed because the process died under the walk: not a snapshot.
            raise SideEyeError(f"pid {pid} exited during the snapshot")
        decoder = Decoder(binary, raw.now_ns)
        goroutines = tuple(decoder.decode(g) for g in raw.goroutines)
        values = _values(binary, plan, decoder, raw) if plan is not None else ()
        binary.save_cache()
        return ProcessSnapshot(
            pid=pid,
            exe=exe,
            build_id=binary.build_id,
            go_version=binary.go_version,
            main_module=binary.main_module,
            pause_ns=raw.pause_ns,
            threads=raw.threads,
            backend=backend,
            goroutines=goroutines,
            walk=raw.walk,
            notes=tuple(raw.notes),
            captures=values,
            spec_errors=tuple(plan.errors) if plan is not None else (),
        )
    except Exception as e:  # noqa: BLE001 - one process's failure must not lose the others
        if isinstance(e, SideEyeError):
            message = str(e)
        elif isinstance(e, OSError) and not os.path.exists(f"/proc/{pid}"):
            message = f"pid {pid} exited during the snapshot"
        elif isinstance(e, OSError):
            message = f"pid {pid}: {e.strerror or e}"
        else:
            message = f"internal error: {type(e).__name__}: {e}"
        return ProcessSnapshot(
            pid=pid,
            exe=exe,
            build_id=binary.build_id if binary else None,
            go_version=binary.go_version if binary else None,
            main_module=binary.main_module if binary else None,
            pause_ns=None,
            backend=backend,
            error=message,
            spec_errors=tuple(plan.errors) if plan is not None else (),
        )
    finally:
        if binary is not None:
            binary.close()


def take_snapshot(
    pids: list[int],
    backend: str = "ebpf",
    progress: Progress | None = None,
    captures: Mapping[str, Sequence[str]] | None = None,
    early_walk: bool = True,
) -> Snapshot:
    """Captures every pid, each in its own thread, and returns them together.

    `captures` maps a function name to the expressions to read in its frames (the
    spec's `capture` lists); problems with them land in ProcessSnapshot.spec_errors."""
    taken_at = datetime.now(UTC)
    results: dict[int, ProcessSnapshot] = {}

    def run(pid: int) -> None:
        results[pid] = _capture_process(pid, backend, captures, early=early_walk)
        if progress:
            progress(f"pid {pid} captured")

    threads = [threading.Thread(target=run, args=(pid,), name=f"capture-{pid}") for pid in pids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Snapshot(
        taken_at=taken_at,
        hostname=socket.gethostname(),
        processes=tuple(results[pid] for pid in pids),
    )


__all__ = ["take_snapshot", "capture_process", "RawGoroutine"]


def capture_both_backends(pid: int) -> tuple[list[RawGoroutine], list[RawGoroutine]]:
    """Walks one pause of pid with both backends: (ebpf, ptrace). For cross-checks.

    The ptrace walk runs first (it only reads), then the probe is triggered; both see
    the same stopped process, so they must agree exactly."""
    from ..bpf.loader import StackProbe
    from ..bpf.records import RecordDecoder

    binary = GoBinary.open(f"/proc/{pid}/exe")
    try:
        layout = binary.layout
        walker = PtraceWalker(pid, layout, MAX_DEPTH)
        probe = StackProbe(binary, pid, 10_000, MAX_DEPTH)
        try:
            with pause.realtime():
                paused = pause.pause(pid)
                try:
                    regs = _thread_regs(paused)
                    by_ptrace, ptrace_heads = walker.walk({t.tid: t for t in regs})
                    # Two walkers even for a small process: the parallel walk is what
                    # could break the single moment, so this cross-check exercises it.
                    walkers = _pick_walkers(paused, 2, SignalTargets.of(binary))
                    probe.prepare(pid, 2)
                    probe.arm(regs, walkers.tids)
                    with pause.pinned(walkers.tracer_cpu):
                        pause.run_signal_handlers(
                            paused,
                            walkers.tids,
                            linux.SIGURG,
                            functools.partial(probe.fired_since, probe.hits()),
                            probe.progress,
                        )
                    probe.disarm()
                finally:
                    pause.resume(paused)
            probe.detach()
            decoder = RecordDecoder()
            for rec in probe.drain():
                decoder.feed(rec)
            by_ebpf = _mend(binary, decoder.goroutines(), decoder.heads)
            by_ptrace = _mend(binary, by_ptrace, ptrace_heads)
        finally:
            probe.close()
    finally:
        binary.close()
    return by_ebpf, by_ptrace
