"""The CPU priority of the snapshot command's own work.

What a snapshot costs a service is mostly not the pause but the command's CPU time
(analysing the binary, loading the probe, decoding, writing the file), spent on the
same CPUs as the service. So the command runs as SCHED_BATCH at nice 10
(`background`): a tenth of the weight of a normal thread, and never preempting one
that wakes up. Not SCHED_IDLE: an idle-priority command gets no CPU at all while the
host's CPUs are busy, and a busy host is when a debugger is run (a target spinning on
both CPUs of a 2-CPU host stalled a snapshot for minutes). Two windows are raised above
that:

- `foreground`, normal priority, from the moment the target bears us (a thread seized
  for the early walk, the goroutine tracker's uprobes) until it is left alone again:
  a seized thread that stops waits for us to let it go, and removing uprobes is timed
  against RCU grace periods (loader.remove_tracker), so none of that may wait for an
  idle CPU;
- the pause itself, at real-time priority (pause.realtime), as before.

Linux keeps the policy per thread and a new thread inherits its creator's, so calling
`background` first thing covers every thread the command starts later (capture
threads, DuckDB's pool). On a host whose CPUs are all busy the command gets about a
tenth of a CPU and finishes in turn; `--priority normal` runs it as any other process.
"""

from __future__ import annotations

import contextlib
import os

LOW_POLICY = os.SCHED_BATCH
LOW_NICE = 10  # weight 110 against a normal thread's 1024
_BELOW_NORMAL = (os.SCHED_IDLE, os.SCHED_BATCH)


class background:
    """The calling thread, and the threads it starts meanwhile, at low priority until
    the end of the with block (which restores the thread's old policy and nice value:
    the command may run inside another program, such as the tests)."""

    def __init__(self) -> None:
        self._old: tuple[int, os.sched_param, int] | None = None

    def __enter__(self) -> bool:
        """False if the kernel refused (the command then runs at normal priority)."""
        try:
            self._old = _current()
            os.sched_setscheduler(0, LOW_POLICY, os.sched_param(0))
            os.setpriority(os.PRIO_PROCESS, 0, LOW_NICE)  # the calling thread only, on Linux
        except OSError:
            self.__exit__()
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        old, self._old = self._old, None
        if old is not None:
            _set(old)


def _current() -> tuple[int, os.sched_param, int]:
    return (os.sched_getscheduler(0), os.sched_getparam(0), os.getpriority(os.PRIO_PROCESS, 0))


def _set(old: tuple[int, os.sched_param, int]) -> None:
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, old[2])
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, old[0], old[1])


class foreground:
    """The calling thread at normal priority (SCHED_OTHER, nice 0) until `restore`
    (or the end of a with block), if it runs below that (idle, batch, niced); a thread
    at normal or real-time priority is left as it is.

    `restore` may be called more than once: an early exit and a `finally` can both
    call it."""

    def __init__(self) -> None:
        self._old: tuple[int, os.sched_param, int] | None = None
        try:
            old = _current()
            if old[0] in _BELOW_NORMAL or (old[0] == os.SCHED_OTHER and old[2] > 0):
                self._old = old
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
                os.setpriority(os.PRIO_PROCESS, 0, 0)
        except OSError:
            self.restore()

    def restore(self) -> None:
        old, self._old = self._old, None
        if old is not None:
            _set(old)

    def __enter__(self) -> foreground:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
