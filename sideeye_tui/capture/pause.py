"""Pausing every thread of a process with ptrace, and resuming it exactly as it was.

A paused process is stopped in ptrace-stops (PTRACE_SEIZE + PTRACE_INTERRUPT), never by
SIGSTOP, so if this tool dies the kernel detaches and the target simply runs on. A
signal that arrived while we held a thread is handed back to it at detach.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ProcessError
from ..procs import process_alive, tracer_of
from . import linux
from .signal_targets import SignalTargets


@dataclass
class PausedThread:
    tid: int
    regs: linux.UserRegs | None = None
    pending_signal: int = 0  # a signal that was being delivered when we stopped it
    stopped: bool = False
    stat_fd: int | None = None  # /proc/PID/task/TID/stat, opened before the pause
    # A walker is stopped by a signal of ours (see pause): it sits in the signal's
    # delivery-stop, ready to run the handler, and the signal is never handed back.
    trigger_signal: int = 0
    in_delivery: bool = False


@dataclass
class PausedProcess:
    pid: int
    threads: dict[int, PausedThread] = field(default_factory=dict)
    stopped_at_ns: int = 0
    resumed_at_ns: int = 0
    # The tracer thread's signal mask before pause() blocked SIGCHLD (see _nap).
    old_sigmask: set[int | signal.Signals] | None = None
    walkers: Walkers | None = None  # picked by pause(walkers=N)

    @property
    def pause_ns(self) -> int:
        return self.resumed_at_ns - self.stopped_at_ns


def _task_ids(pid: int) -> set[int]:
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except FileNotFoundError:
        raise ProcessError(f"pid {pid} exited") from None


def _forget(proc: PausedProcess, tid: int) -> None:
    """Drops a thread that exited."""
    thread = proc.threads.pop(tid)
    if thread.stat_fd is not None:
        os.close(thread.stat_fd)


POLL_S = 0.00002  # between waitpid(WNOHANG) polls, when SIGCHLD could not be blocked
NAP_S = 0.001  # the longest sleep between two looks at threads that have not stopped
STOP_TIMEOUT_S = 1.0  # a thread in uninterruptible sleep may not stop; we won't wait forever
SIGNAL_STOP_S = 0.002  # a walker stopped by signal that has not stopped by then blocks it


def _block_sigchld(proc: PausedProcess) -> None:
    """The kernel sends the tracer SIGCHLD at every ptrace-stop of a thread it traces.
    Blocked in the tracer thread, the signal stays pending for it, so _nap can sleep
    until a stop instead of polling: a polling tracer shares a CPU with a walker and
    steals it from the walker each time it wakes up."""
    with contextlib.suppress(OSError, ValueError):
        proc.old_sigmask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})


def _restore_sigmask(proc: PausedProcess) -> None:
    if proc.old_sigmask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, proc.old_sigmask)
        proc.old_sigmask = None


def _nap(proc: PausedProcess, until: float) -> None:
    """Sleeps until a traced thread stops (SIGCHLD), NAP_S or `until` (monotonic), the
    earliest. A wake-up with no stop behind it only costs a look at the threads: a
    SIGCHLD left over from an earlier stop, or one another thread took first (it is
    sent to the whole process), makes the nap return early or last NAP_S."""
    if proc.old_sigmask is None or signal.SIGCHLD in proc.old_sigmask:
        time.sleep(POLL_S)
        return
    left = min(NAP_S, until - time.monotonic())
    if left > 0:
        signal.sigtimedwait({signal.SIGCHLD}, left)


def _wait(proc: PausedProcess, tid: int, timeout_s: float = STOP_TIMEOUT_S) -> linux.WaitStatus:
    """waitpid for one thread, but never longer than timeout_s (then ProcessError)."""
    st = linux.wait(tid, nohang=True)
    deadline = time.monotonic() + timeout_s
    while st is None:
        if time.monotonic() > deadline:
            raise ProcessError(
                f"pid {proc.pid}: thread {tid} did not stop within {timeout_s:.0f} s "
                "(uninterruptible sleep?); the process was left running"
            )
        _nap(proc, deadline)
        st = linux.wait(tid, nohang=True)
    return st


def _wait_stopped(
    proc: PausedProcess, thread: PausedThread, timeout_s: float = STOP_TIMEOUT_S
) -> None:
    """Waits until the thread sits in a ptrace-stop; records what kind of stop it is.
    A thread it created meanwhile (attached by the kernel) joins proc.threads."""
    while not thread.stopped:
        st = _wait(proc, thread.tid, timeout_s)
        if st.exited:
            _forget(proc, thread.tid)
            return
        if st.event == linux.PTRACE_EVENT_STOP:
            thread.stopped = True
        elif st.event == linux.PTRACE_EVENT_CLONE:
            thread.stopped = True
            child = linux.event_message(thread.tid)
            if child not in proc.threads:
                proc.threads[child] = PausedThread(child)  # reports its own first stop
        elif st.event == 0 and thread.trigger_signal and st.stop_signal == thread.trigger_signal:
            thread.trigger_signal = 0  # ours: stopped in its delivery, never handed back
            thread.in_delivery = True
            thread.stopped = True
        elif st.event == 0:
            if st.stop_signal != linux.SYSCALL_STOP:  # a syscall-stop carries no signal
                thread.pending_signal = st.stop_signal
            thread.stopped = True
        else:
            linux.cont(thread.tid)


_gc_lock = threading.Lock()
_gc_holders = 0  # pauses under way, in all threads
_gc_was_enabled = False


class realtime:
    """Runs the calling thread at real-time priority for the duration of a pause, with
    Python's cyclic garbage collector off.

    Otherwise each target thread we wake (to stop it, or at detach) may preempt the
    tracer on its CPU, and the pause grows by scheduler latencies of milliseconds; and
    a collection that the walk's allocations trigger scans the whole heap (the binary's
    tables included) while the target waits: tens of milliseconds in a ptrace walk of
    3,000 goroutines. The collector is process-wide: it comes back on when the last of
    the concurrent pauses ends."""

    _old: tuple[int, os.sched_param] | None = None

    def __enter__(self) -> None:
        global _gc_holders, _gc_was_enabled
        with _gc_lock:
            if _gc_holders == 0:
                _gc_was_enabled = gc.isenabled()
                gc.disable()
            _gc_holders += 1
        try:
            self._old = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError:
            self._old = None

    def __exit__(self, *exc: object) -> None:
        global _gc_holders
        if self._old is not None:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, self._old[0], self._old[1])
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


MAX_CPU_LOOKUPS = 64  # threads whose last CPU we may read during a pause


def _attach_all(proc: PausedProcess) -> None:
    """PTRACE_SEIZE every thread, without stopping any: they run on until pause()
    interrupts them, so the attaching (tens of microseconds a thread) is not part of
    the pause. Threads they create from now on are attached by the kernel."""
    while True:
        fresh = _task_ids(proc.pid) - proc.threads.keys()
        if not fresh:
            return
        for tid in sorted(fresh):
            try:
                linux.seize(tid, linux.PTRACE_O_TRACECLONE | linux.PTRACE_O_TRACESYSGOOD)
            except OSError as err:
                if err.errno == errno.ESRCH:
                    continue  # the thread exited meanwhile
                if err.errno != errno.EPERM or not proc.threads:
                    raise
                # EPERM: already ours, attached by the kernel when its parent cloned it.
            thread = PausedThread(tid)
            if len(proc.threads) < MAX_CPU_LOOKUPS:
                with contextlib.suppress(OSError):
                    thread.stat_fd = os.open(f"/proc/{proc.pid}/task/{tid}/stat", os.O_RDONLY)
            proc.threads[tid] = thread


def pause(  # noqa: C901 - pause.py is being changed on another branch: split it after the merge
    pid: int,
    registers: bool = True,
    walkers: int = 0,
    trigger: int = 0,
    targets: SignalTargets | None = None,
) -> PausedProcess:
    """Stops every thread of pid, and reads their registers unless told not to (see
    read_registers). Call resume() in a finally block.

    With walkers=N, N threads to run the probe on are picked before the clock starts
    (proc.walkers, see pick_walkers), and they are stopped by the `trigger` signal
    instead of PTRACE_INTERRUPT: each stops in that signal's delivery, from where
    run_signal_handlers lets it straight into the handler. That saves a round trip
    through the tracer (two wake-ups of each walker) in the pause. A picked thread that
    stopped for another reason first takes the long way. A walker is one that `targets`
    allows (see signal_targets): one stopped in a call the handler would cut short
    stays in the delivery and gets nothing.

    The pause (pause_ns) runs from the first thread stopped to the last detach."""
    proc = PausedProcess(pid)
    targets = targets or SignalTargets()
    _block_sigchld(proc)
    try:
        _attach_all(proc)
        if walkers:
            proc.walkers = pick_walkers(proc, walkers, trigger, targets)
        signalled = set(proc.walkers.tids) if proc.walkers is not None and trigger else set()
        proc.stopped_at_ns = time.monotonic_ns()
        for thread in list(proc.threads.values()):
            try:
                if thread.tid in signalled:
                    thread.trigger_signal = trigger
                    linux.tgkill(pid, thread.tid, trigger)
                else:
                    linux.interrupt(thread.tid)
            except OSError as err:
                if err.errno != errno.ESRCH:
                    raise
        while not all(t.stopped for t in proc.threads.values()):
            for thread in list(proc.threads.values()):
                if thread.stopped:
                    continue
                if not thread.trigger_signal:
                    _wait_stopped(proc, thread)
                    continue
                try:
                    _wait_stopped(proc, thread, SIGNAL_STOP_S)
                except ProcessError:
                    # It blocked the signal meanwhile: stop it the usual way. The
                    # signal stays pending; the Go runtime expects stray SIGURGs.
                    thread.trigger_signal = 0
                    linux.interrupt(thread.tid)
        if not proc.threads:
            raise ProcessError(f"pid {pid} exited")
        if proc.walkers is not None:
            proc.walkers = proc.walkers.ready(proc, targets)
        if registers:
            read_registers(proc, list(proc.threads))
    except OSError as err:
        resume(proc)
        if not process_alive(pid):
            raise ProcessError(f"pid {pid} exited during the pause") from None
        if err.errno == errno.EPERM:
            tracer = tracer_of(pid)
            if tracer is not None:
                raise ProcessError(f"pid {pid} is already traced by {tracer}") from None
            if os.geteuid() != 0:
                raise ProcessError(
                    f"pid {pid}: cannot ptrace it ({err.strerror}; run as root)"
                ) from None
            raise ProcessError(
                f"pid {pid}: cannot ptrace it, even as root ({err.strerror}: a security"
                " policy such as Yama's ptrace_scope=3 or an LSM forbids it)"
            ) from None
        if err.errno == errno.ESRCH:
            raise ProcessError(f"pid {pid} exited during the pause") from None
        raise ProcessError(f"pid {pid}: pause failed: {err}") from None
    except BaseException:
        resume(proc)
        raise
    return proc


def read_registers(proc: PausedProcess, tids: list[int]) -> None:
    """PTRACE_GETREGS of the given stopped threads (a few microseconds each), unless
    read already in this pause: the registers wanted are those it was stopped with."""
    for tid in tids:
        thread = proc.threads[tid]
        if thread.regs is None:
            thread.regs = linux.getregs(tid)


def resume(proc: PausedProcess) -> None:
    """Detaches every thread we hold, handing back any signal we intercepted."""
    for thread in list(proc.threads.values()):
        if not thread.stopped:
            try:
                linux.interrupt(thread.tid)
                _wait_stopped(proc, thread)
            except (OSError, ProcessError):
                # Not stopped yet: the kernel detaches it when the tracer thread exits,
                # which is why every capture runs in a thread of its own.
                continue
        # A walker still in our signal's delivery-stop is let go without it.
        with contextlib.suppress(OSError):  # exited meanwhile
            linux.detach(thread.tid, thread.pending_signal)
    proc.resumed_at_ns = time.monotonic_ns()
    for thread in proc.threads.values():
        if thread.stat_fd is not None:
            os.close(thread.stat_fd)
    proc.threads.clear()
    _restore_sigmask(proc)


@dataclass(frozen=True)
class Walkers:
    """The threads that run the probe, in the order they are let go, and the CPU the
    tracer should sit on meanwhile (None: anywhere)."""

    tids: list[int]
    tracer_cpu: int | None

    def ready(self, proc: PausedProcess, targets: SignalTargets) -> Walkers | None:
        """The walkers that stopped in the trigger signal's delivery and may take it
        (None: none). One that may not stays in the delivery; resume withholds it."""
        tids = [t for t in self.tids if t in proc.threads and proc.threads[t].in_delivery]
        tids = [t for t in tids if _may_signal(proc, t, targets)]
        return Walkers(tids, self.tracer_cpu) if tids else None


def _may_signal(proc: PausedProcess, tid: int, targets: SignalTargets) -> bool:
    """Whether this stopped thread may run the signal's handler (see signal_targets)."""
    read_registers(proc, [tid])
    regs = proc.threads[tid].regs
    return regs is not None and targets.may_signal_stopped(regs)


def _may_signal_soon(proc: PausedProcess, tid: int, targets: SignalTargets) -> bool:
    """Before the pause, for a thread that runs on: not blocked in a call the signal
    would cut short. Only a guess (it may enter one before the signal comes):
    Walkers.ready checks again in the signal's delivery."""
    call = linux.blocked_call(proc.pid, tid)
    return call is None or targets.may_signal_soon(call)


def pick_walkers(
    proc: PausedProcess, count: int, trigger: int = 0, targets: SignalTargets | None = None
) -> Walkers:
    """Threads to run the probe on, each on a CPU of its own.

    A thread let go is placed by the scheduler on the CPU it last ran on when that CPU
    is idle, else next to whatever runs there; and a probe runs to its end without being
    preempted. So walkers that last ran on the same CPU queue behind each other, and so
    does one woken onto the tracer's own CPU while the tracer runs. We pick threads that
    last ran on distinct CPUs and let them go in order, the one on the tracer's CPU
    last: it runs as soon as the tracer waits. Clean stops only (no signal pending).
    Called before the pause (by pause(walkers=N)), the CPUs are where the threads ran
    last before it: the same for threads that sleep, which most are.

    Only threads `targets` allows (see signal_targets): after the pause by their
    registers; before it, a guess that Walkers.ready checks. None allowed: no walkers."""
    targets = targets or SignalTargets()
    clean = [t.tid for t in proc.threads.values() if t.pending_signal == 0]
    if trigger:  # before the pause: threads that would not take the signal are no use
        clean = [
            tid
            for tid in clean
            if not linux.blocks_signal(proc.pid, tid, trigger)
            and _may_signal_soon(proc, tid, targets)
        ]
    else:  # stopped: their registers tell; a thread with a signal pending if need be
        may = [tid for tid in proc.threads if _may_signal(proc, tid, targets)]
        clean = [tid for tid in may if tid in clean] or may
    clean.sort(key=lambda tid: (tid != proc.pid, tid))
    if not clean:
        return Walkers([], None)
    count = max(count, 1)
    here = linux.current_cpu()
    if count == 1:
        # One walker: one that last ran on another CPU than the tracer's, if any, so
        # that the tracer can spin while it walks (see _wait_handlers).
        for tid in clean:
            fd = proc.threads[tid].stat_fd
            cpu = linux.last_cpu(fd) if fd is not None else None
            if cpu is not None and here is not None and cpu != here:
                return Walkers([tid], here)
        return Walkers(clean[:1], None)
    by_cpu: dict[int, int] = {}
    for tid in clean:
        fd = proc.threads[tid].stat_fd
        cpu = linux.last_cpu(fd) if fd is not None else None
        if cpu is not None and cpu not in by_cpu:
            by_cpu[cpu] = tid
            if len(by_cpu) >= count and here in by_cpu:
                break
    # The tracer stays where it is when a thread last ran there (moving it costs a
    # migration and cold caches), else it moves to one of the walkers' CPUs.
    allowed = os.sched_getaffinity(0)
    tracer_cpu = here if here in by_cpu else next((c for c in by_cpu if c in allowed), None)
    others = [tid for cpu, tid in by_cpu.items() if cpu != tracer_cpu][: count - 1]
    last = [by_cpu[tracer_cpu]] if tracer_cpu is not None else []
    chosen = others + last
    chosen += [tid for tid in clean if tid not in chosen][: count - len(chosen)]
    if last:  # the one on the tracer's CPU goes last
        chosen = [tid for tid in chosen if tid != last[0]] + last
    return Walkers(chosen, tracer_cpu)


class pinned:
    """Keeps the calling thread on one CPU for a while (None: no change)."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self._old: set[int] | None = None

    def __enter__(self) -> None:
        if self.cpu is None:
            return
        try:
            self._old = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})
        except OSError:
            self._old = None

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, self._old)


HANDLER_STALL_S = 0.002  # probe over, no stop yet: the handler is stuck; stop it
WATCH_S = 0.001  # between two looks at the progress of probes still running
SPIN_S = 0.001  # the longest the tracer spins waiting for probes on other CPUs


def run_signal_handlers(
    proc: PausedProcess,
    tids: list[int],
    sig: int,
    probe_ran: Callable[[int], bool],
    probe_progress: Callable[[int], int],
    timeout_s: float = 2.0,
    meanwhile: Callable[[], None] | None = None,
    probe_cpu: Callable[[int], int] | None = None,
) -> None:
    """Lets the given threads run the target's handler for `sig`, all at once, while
    every other thread stays stopped; each stops again by itself when the handler
    returns. This is how the probe is triggered inside the paused process.

    Each thread gets the signal (tgkill), reports its delivery, and is resumed with it
    by PTRACE_SYSCALL: it runs the handler, where the uprobe at its entry runs the
    probe, and stops at the handler's first system call, its closing rt_sigreturn. Go
    ignores a SIGURG it did not ask for (it is its own preemption signal): the handler
    only acknowledges it, and the interrupted code resumes at detach. The tracer does
    nothing while the probes run, so they need no CPU of its.

    `probe_ran(i)` says whether the probe has run on tids[i] since the call began;
    `probe_progress(i)` is a counter that grows while it runs. A thread whose probe is
    over but which does not stop (a handler stuck on a lock held by a stopped thread)
    is stopped with PTRACE_INTERRUPT after HANDLER_STALL_S.

    On a later call each thread is still inside the handler, where the signal is
    blocked: it stays pending until rt_sigreturn, and is delivered on the way out, so
    again only the handler runs.

    `meanwhile` runs while the threads wake up to take the signal (tens of
    microseconds): work the probe needs before it runs, done in that shadow. Threads
    pause() stopped in the signal's delivery need no wake-up: it runs before.

    `probe_cpu(i)` is the CPU the probe runs on (known once it ran): while none runs on
    the tracer's CPU, the tracer spins instead of sleeping (see _wait_handlers)."""
    waiting = [tid for tid in tids if not proc.threads[tid].in_delivery]
    if not waiting and meanwhile is not None:
        meanwhile()  # stopped in the delivery already (see pause): nothing to wait for
        meanwhile = None
    for tid in waiting:
        linux.tgkill(proc.pid, tid, sig)
        proc.threads[tid].stopped = False
        linux.cont(tid)
    if meanwhile is not None:
        meanwhile()
    for tid in waiting:  # each reports the signal's delivery...
        thread = proc.threads[tid]
        while True:
            st = _wait(proc, tid)
            if st.exited:
                _forget(proc, tid)
                raise ProcessError(f"pid {proc.pid} exited during the snapshot")
            if st.event == 0 and st.stop_signal == sig:
                break
            if st.event == 0 and st.stop_signal != linux.SYSCALL_STOP:
                thread.pending_signal = thread.pending_signal or st.stop_signal
            linux.cont(tid)
    for tid in tids:  # ...and only then are they all let into the handler
        thread = proc.threads[tid]
        thread.in_delivery = False
        thread.stopped = False
        linux.cont_to_syscall(tid, sig)
    _wait_handlers(proc, tids, probe_ran, probe_progress, probe_cpu, time.monotonic() + timeout_s)


def _wait_handlers(  # noqa: C901 - pause.py is being changed on another branch: split it after the merge
    proc: PausedProcess,
    tids: list[int],
    probe_ran: Callable[[int], bool],
    probe_progress: Callable[[int], int],
    probe_cpu: Callable[[int], int] | None,
    deadline: float,
) -> None:
    """Waits until each thread has stopped again after its probe (see above).

    While a probe runs on the tracer's CPU, the tracer sleeps until a stop (_nap):
    each time it wakes it takes that CPU from the probe's thread. Once every probe
    still running runs on another CPU, the tracer spins instead, for at most SPIN_S: it
    sees the last stop at once, where waking it from sleep on an idle CPU takes tens of
    microseconds. Until the probes show where they run, it polls. It looks at their
    progress only every WATCH_S, which is all the stall check needs."""
    running = dict(enumerate(tids))
    seen: dict[int, tuple[int, float]] = {}  # i -> (progress, when it last changed)
    cpus: dict[int, int] = {}  # i -> the CPU its probe runs on
    here = linux.current_cpu() if probe_cpu is not None else None
    spin_until: float | None = None
    next_watch = time.monotonic() + WATCH_S
    while running:
        now = time.monotonic()
        watch = now >= next_watch or now > deadline
        if watch:
            next_watch = now + WATCH_S
        for i, tid in list(running.items()):
            thread = proc.threads[tid]
            ws = linux.wait(tid, nohang=True)
            if ws is None:
                if probe_cpu is not None and i not in cpus and probe_ran(i):
                    cpus[i] = probe_cpu(i)
                if not watch:
                    continue
                if probe_ran(i):
                    progress = probe_progress(i)
                    if seen.get(i, (None, 0.0))[0] != progress:
                        seen[i] = (progress, now)
                stalled = i in seen and now - seen[i][1] > HANDLER_STALL_S
                if stalled or now > deadline:
                    linux.interrupt(tid)
                    _wait_stopped(proc, thread)
                    thread.stopped = True
                    del running[i]
                continue
            if ws.exited:
                _forget(proc, tid)
                raise ProcessError(f"pid {proc.pid} exited during the snapshot")
            if ws.event == 0 and ws.stop_signal == linux.SYSCALL_STOP and probe_ran(i):
                thread.stopped = True  # in the handler, after the probe
                del running[i]
                continue
            if ws.event == 0 and ws.stop_signal != linux.SYSCALL_STOP:
                thread.pending_signal = thread.pending_signal or ws.stop_signal
            if time.monotonic() > deadline:
                thread.stopped = True  # stopped, though the probe did not run
                del running[i]
                continue
            linux.cont_to_syscall(tid)
        if not running:
            break
        if here is None or any(cpus.get(i) == here for i in running):
            _nap(proc, min(deadline, next_watch))
        elif any(i not in cpus for i in running):
            time.sleep(POLL_S)  # until each probe shows where it runs
        else:  # every probe runs on another CPU
            spin_until = spin_until or now + SPIN_S
            if now > spin_until:
                _nap(proc, min(deadline, next_watch))
