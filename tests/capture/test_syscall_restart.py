"""linux.handler_ends_syscall: which stopped threads a signal handler would hand EINTR,
from the registers a ptrace stop shows (values as seen on this kernel: a nanosleep
interrupted shows orig_rax 35 and rax -516; stopped again before its restart, rax 219)."""

from __future__ import annotations

import pytest

from sideeye_tui.capture import linux


def regs(orig_rax: int, rax: int) -> linux.UserRegs:
    r = linux.UserRegs()
    r.orig_rax = orig_rax & (1 << 64) - 1
    r.rax = rax & (1 << 64) - 1
    return r


@pytest.mark.parametrize(
    ("orig_rax", "rax", "ends"),
    [
        (-1, 12345, False),  # running user code: no call
        (35, -516, True),  # nanosleep: ERESTART_RESTARTBLOCK
        (232, -514, True),  # epoll_wait style: ERESTARTNOHAND
        (202, -512, False),  # futex wait without a timeout: ERESTARTSYS, SA_RESTART
        (0, -512, False),  # read of a pipe
        (61, -513, False),  # ERESTARTNOINTR
        (35, 219, True),  # restart_syscall pending from an earlier stop
        (219, 219, True),
        (281, -4, False),  # epoll_pwait already ended with EINTR by the stop itself
        (0, 17, False),  # a read that returned 17 bytes
    ],
)
def test_handler_ends_syscall(orig_rax: int, rax: int, ends: bool) -> None:
    assert linux.handler_ends_syscall(regs(orig_rax, rax)) is ends


def test_blocked_call_restarts_only_untimed_futex_waits() -> None:
    untimed = linux.BlockedCall(202, (0x1000, 0x80, 0, 0, 0, 0), 0x401000)  # WAIT|PRIVATE
    timed = linux.BlockedCall(202, (0x1000, 0x80, 0, 0x7FFF0000, 0, 0), 0x401000)
    bitset = linux.BlockedCall(202, (0x1000, 0x89, 0, 0, 0, 0xFFFFFFFF), 0x401000)
    wake = linux.BlockedCall(202, (0x1000, 0x81, 1, 0, 0, 0), 0x401000)
    sleep = linux.BlockedCall(35, (0x7FFF0000, 0, 0, 0, 0, 0), 0x401000)
    assert untimed.restarts_after_handler()
    assert bitset.restarts_after_handler()
    assert not timed.restarts_after_handler()
    assert not wake.restarts_after_handler()
    assert not sleep.restarts_after_handler()
