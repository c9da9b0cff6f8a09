"""Pausing every thread of a process with ptrace, and resuming it exactly as it was.

A paused process is stopped in ptrace-stops (PTRACE_SEIZE + PTRACE_INTERRUPT), never by
SIGSTOP, so if this tool dies the kernel detaches and the target simply runs on. A
signal that arrived while we held a thread is handed back to it at detach.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ProcessError
from ..procs import process_alive
from . import linux


@dataclass
class PausedThread:
    tid: int
    regs: linux.UserRegs | None = None
    pending_signal: int = 0  # a signal that was being delivered when we stopped it
    stopped: bool = False


@dataclass
class PausedProcess:
    pid: int
    threads: dict[int, PausedThread] = field(default_factory=dict)
    stopped_at_ns: int = 0
    resumed_at_ns: int = 0

    @property
    def pause_ns(self) -> int:
        return self.resumed_at_ns - self.stopped_at_ns


def _task_ids(pid: int) -> set[int]:
    try:
        return {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    except FileNotFoundError:
        raise ProcessError(f"pid {pid} exited") from None


STOP_TIMEOUT_S = 1.0  # a thread in uninterruptible sleep may not stop; we won't wait forever


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
        time.sleep(0.00001)
        st = linux.wait(tid, nohang=True)
    return st


def _wait_stopped(proc: PausedProcess, thread: PausedThread, new_tids: set[int]) -> None:
    """Waits until the thread sits in a ptrace-stop; records what kind of stop it is."""
    while not thread.stopped:
        st = _wait(proc, thread.tid)
        if st.exited:
            del proc.threads[thread.tid]
            return
        if st.event == linux.PTRACE_EVENT_STOP:
            thread.stopped = True
        elif st.event == linux.PTRACE_EVENT_CLONE:
            thread.stopped = True  # the new thread is attached by the kernel; found below
        elif st.event == 0:
            thread.pending_signal = st.stop_signal
            thread.stopped = True
        else:
            linux.cont(thread.tid)


class realtime:
    """Runs the calling thread at real-time priority for the duration of a pause.

    Otherwise each target thread we wake (to stop it, or at detach) may preempt the
    tracer on its CPU, and the pause grows by scheduler latencies of milliseconds."""

    _old: tuple[int, os.sched_param] | None = None

    def __enter__(self) -> None:
        try:
            self._old = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError:
            self._old = None

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, self._old[0], self._old[1])


def pause(pid: int) -> PausedProcess:
    """Stops every thread of pid. Call resume() in a finally block."""
    proc = PausedProcess(pid)
    proc.stopped_at_ns = time.monotonic_ns()
    try:
        while True:
            fresh = _task_ids(pid) - proc.threads.keys()
            if not fresh:
                break
            for tid in sorted(fresh):
                try:
                    linux.seize(tid, linux.PTRACE_O_TRACECLONE)
                except OSError as err:
                    if err.errno == errno.ESRCH:
                        continue  # the thread exited meanwhile
                    if err.errno != errno.EPERM or not proc.threads:
                        raise
                    # EPERM: already ours, auto-attached when its parent cloned it.
                    proc.threads[tid] = PausedThread(tid)
                    continue
                proc.threads[tid] = PausedThread(tid)
                try:
                    linux.interrupt(tid)
                except OSError as err:
                    if err.errno != errno.ESRCH:
                        raise
            for thread in list(proc.threads.values()):
                if not thread.stopped:
                    _wait_stopped(proc, thread, fresh)
        if not proc.threads:
            raise ProcessError(f"pid {pid} exited")
        for thread in proc.threads.values():
            thread.regs = linux.getregs(thread.tid)
    except OSError as err:
        resume(proc)
        if not process_alive(pid):
            raise ProcessError(f"pid {pid} exited during the pause") from None
        if err.errno == errno.EPERM:
            raise ProcessError(
                f"pid {pid}: cannot ptrace it ({err.strerror}; run as root)"
            ) from None
        if err.errno == errno.ESRCH:
            raise ProcessError(f"pid {pid} exited during the pause") from None
        raise ProcessError(f"pid {pid}: pause failed: {err}") from None
    except BaseException:
        resume(proc)
        raise
    return proc


def resume(proc: PausedProcess) -> None:
    """Detaches every thread we hold, handing back any signal we intercepted."""
    for thread in list(proc.threads.values()):
        if not thread.stopped:
            try:
                linux.interrupt(thread.tid)
                _wait_stopped(proc, thread, set())
            except (OSError, ProcessError):
                # Not stopped yet: the kernel detaches it when the tracer thread exits,
                # which is why every capture runs in a thread of its own.
                continue
        with contextlib.suppress(OSError):  # exited meanwhile
            linux.detach(thread.tid, thread.pending_signal)
    proc.resumed_at_ns = time.monotonic_ns()
    proc.threads.clear()


def pick_threads(proc: PausedProcess, count: int) -> list[int]:
    """Threads to run a signal handler on: cleanly stopped ones, the main thread first."""
    clean = [t.tid for t in proc.threads.values() if t.stopped and t.pending_signal == 0]
    clean.sort(key=lambda tid: (tid != proc.pid, tid))
    return clean[: max(count, 0)] or [min(proc.threads)]


def run_signal_handlers(
    proc: PausedProcess,
    tids: list[int],
    sig: int,
    probe_ran: Callable[[int], bool],
    timeout_s: float = 2.0,
) -> None:
    """Lets the given threads run into the target's handler for `sig`, at once, while
    every other thread stays stopped, and stops each again right after the uprobe at
    the handler's entry has fired: no Go code runs.

    This is how the probe is triggered inside the paused process. Go ignores a SIGURG
    it did not ask for (it is its own preemption signal). The trick that stops a thread
    just after its probe: PTRACE_INTERRUPT sent while the probe runs is held by the
    kernel until the uprobe has single-stepped the probed instruction, so the thread
    stops one instruction into the handler. `probe_ran(i)` says whether the probe has
    run on tids[i] since the call began; if a stop came too early (on the way to the
    handler), the thread is let go a little further.

    On a later call the threads are still inside the handler, where the signal is
    blocked: it stays pending until the handler returns, and is delivered on the way
    out of sigreturn, so again no Go code runs in between."""
    for tid in tids:
        linux.tgkill(proc.pid, tid, sig)
        proc.threads[tid].stopped = False
        linux.cont(tid)
    for tid in tids:  # each reports the signal's delivery...
        thread = proc.threads[tid]
        while True:
            st = _wait(proc, tid)
            if st.exited:
                del proc.threads[tid]
                raise ProcessError(f"pid {proc.pid} exited during the snapshot")
            if st.event == 0 and st.stop_signal == sig:
                break
            if st.event == 0:
                thread.pending_signal = thread.pending_signal or st.stop_signal
            linux.cont(tid)
    for n, tid in enumerate(tids):  # ...and only then are they all let into the handler
        linux.cont(tid, sig)
        linux.interrupt(tid)
        if n + 1 < len(tids):
            # Step off this CPU for a moment: the thread just woken takes it, and the
            # next one, woken from wherever this thread resumes, lands on another CPU
            # instead of queueing behind the first.
            time.sleep(0.0001)
    deadline = time.monotonic() + timeout_s
    for i, tid in enumerate(tids):
        thread = proc.threads[tid]
        delay = 0.0
        while True:
            st = _wait(proc, tid, max(0.01, deadline - time.monotonic()))
            if st.exited:
                del proc.threads[tid]
                raise ProcessError(f"pid {proc.pid} exited during the snapshot")
            if st.event == 0:  # a signal on the way: hand it back at detach
                thread.pending_signal = thread.pending_signal or st.stop_signal
            elif probe_ran(i):
                thread.stopped = True
                break
            if time.monotonic() > deadline:
                thread.stopped = True  # stopped, though the probe did not run
                break
            delay = min(max(delay * 4, 0.00002), 0.002)
            linux.cont(tid)
            time.sleep(delay)
            linux.interrupt(tid)
