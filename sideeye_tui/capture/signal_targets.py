"""Which threads of a Go process may run the probe's signal handler unnoticed.

The probe runs in the handler of SIGURG, the signal by which the Go runtime preempts
goroutines: Go code takes a stray one in its stride. What a program could notice is a
system call the signal cuts short. A call interrupted by a ptrace stop alone is
restarted unseen, and so is one whose handler was installed with SA_RESTART, as Go
installs them all, when the call allows it: a read, a futex wait without a timeout. But
nanosleep, poll, select or a futex wait with a timeout end with EINTR once a handler
has run (see linux.handler_ends_syscall), and a goroutine in syscall.Nanosleep would
see it.

So a thread may take the signal when it is in no system call, in one that is
restarted, or in one of the runtime's own sleeps (RUNTIME_SLEEPS): those take an early
return for a spurious wake-up and sleep again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import linux

if TYPE_CHECKING:
    from ..dwarf.binary import GoBinary

# Calls a signal handler ends with EINTR (ERESTARTNOHAND or ERESTART_RESTARTBLOCK):
# nanosleep, clock_nanosleep, poll, ppoll, select, pselect6, pause, rt_sigsuspend,
# rt_sigtimedwait, epoll_wait, epoll_pwait, epoll_pwait2, restart_syscall (a sleep carried
# on after a stop); a futex wait only with a timeout.
CUT_SHORT = frozenset((35, 230, 7, 271, 23, 270, 34, 130, 128, 232, 281, 441, 219))

# The functions whose system calls are the runtime's own sleeps: futexsleep (idle Ms,
# lock waits, timed note sleeps) and sysmon's usleep.
RUNTIME_SLEEPS = ("runtime.futex", "runtime.usleep")


@dataclass(frozen=True)
class SignalTargets:
    sleeps: tuple[tuple[int, int], ...] = ()  # [start, end) of each RUNTIME_SLEEPS function

    @classmethod
    def of(cls, binary: GoBinary) -> SignalTargets:
        bounds = (binary.function_bounds(name) for name in RUNTIME_SLEEPS)
        return cls(tuple(b for b in bounds if b is not None))

    def in_runtime_sleep(self, pc: int) -> bool:
        return any(start <= pc < end for start, end in self.sleeps)

    def may_signal_stopped(self, regs: linux.UserRegs) -> bool:
        """For a thread stopped by ptrace, whose registers tell whether it was in a
        call and how the call was cut."""
        return not linux.handler_ends_syscall(regs) or self.in_runtime_sleep(regs.rip)

    def may_signal_soon(self, call: linux.BlockedCall) -> bool:
        """For a thread that runs on, a guess: the call it sleeps in now is one the
        signal would not cut short (it may be in another by the time the signal comes)."""
        if call.restarts_after_handler() or self.in_runtime_sleep(call.pc):
            return True
        return call.nr not in CUT_SHORT and call.nr != linux.SYS_FUTEX

    def rank_blocked(self, call: linux.BlockedCall) -> int | None:
        """For a thread that runs on and sleeps in `call`: how good a target it is, best
        first (an idle M: the runtime's futex wait without a timeout), None: never."""
        if call.restarts_after_handler():
            return 0 if self.in_runtime_sleep(call.pc) else 1
        if self.in_runtime_sleep(call.pc):
            return 2
        return None
