"""Thin ctypes wrappers over the Linux calls a pause needs: ptrace, waitpid, tgkill,
process_vm_readv. Every call releases the GIL, so several processes can be paused from
several threads at once (a ptrace tracer is a thread, not a process)."""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import errno
import itertools
import os
from dataclasses import dataclass

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_DETACH = 17
PTRACE_GETEVENTMSG = 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_SYSCALL = 24
PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACECLONE = 0x8
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_STOP = 128
WALL = 0x40000000

SIGTRAP = 5
SYSCALL_STOP = SIGTRAP | 0x80  # the stop signal of a syscall-stop, with TRACESYSGOOD
SIGSTOP = 19
SIGURG = 23

_ptrace = _libc.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]

_waitpid = _libc.waitpid
_waitpid.restype = ctypes.c_int
_waitpid.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.c_int]

_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

SYS_tgkill = 234


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_vm_readv = _libc.process_vm_readv
_vm_readv.restype = ctypes.c_ssize_t
_vm_readv.argtypes = [
    ctypes.c_int,
    ctypes.POINTER(_Iovec),
    ctypes.c_ulong,
    ctypes.POINTER(_Iovec),
    ctypes.c_ulong,
    ctypes.c_ulong,
]


class UserRegs(ctypes.Structure):
    """struct user_regs_struct on x86_64."""

    _fields_ = [
        (name, ctypes.c_ulonglong)
        for name in [
            "r15",
            "r14",
            "r13",
            "r12",
            "rbp",
            "rbx",
            "r11",
            "r10",
            "r9",
            "r8",
            "rax",
            "rcx",
            "rdx",
            "rsi",
            "rdi",
            "orig_rax",
            "rip",
            "cs",
            "eflags",
            "rsp",
            "ss",
            "fs_base",
            "gs_base",
            "ds",
            "es",
            "fs",
            "gs",
        ]
    ]


def _check(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def ptrace(request: int, tid: int, addr: int = 0, data: int = 0) -> int:
    return _check(_ptrace(request, tid, ctypes.c_void_p(addr), ctypes.c_void_p(data)), "ptrace")


def seize(tid: int, options: int = 0) -> None:
    ptrace(PTRACE_SEIZE, tid, 0, options)


def interrupt(tid: int) -> None:
    ptrace(PTRACE_INTERRUPT, tid)


def cont(tid: int, sig: int = 0) -> None:
    ptrace(PTRACE_CONT, tid, 0, sig)


def cont_to_syscall(tid: int, sig: int = 0) -> None:
    """PTRACE_SYSCALL: resume (delivering sig), stop at the next syscall entry or exit."""
    ptrace(PTRACE_SYSCALL, tid, 0, sig)


def last_cpu(stat_fd: int) -> int | None:
    """The CPU a thread last ran on: field 39 of its /proc/PID/task/TID/stat, read
    through a descriptor opened earlier (opening costs far more than reading)."""
    try:
        fields = os.pread(stat_fd, 1024, 0).rsplit(b")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return None


def blocks_signal(pid: int, tid: int, sig: int) -> bool:
    """Whether the thread has `sig` blocked (SigBlk in /proc/PID/task/TID/status); a
    thread we cannot read counts as blocking it."""
    try:
        with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigBlk:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except (OSError, IndexError, ValueError):
        pass
    return True


_sched_getcpu = _libc.sched_getcpu
_sched_getcpu.restype = ctypes.c_int
_sched_getcpu.argtypes = []


SYS_FUTEX = 202
SYS_RESTART_SYSCALL = 219
FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_CMD_MASK = 0, 9, 0x7F

# What an interrupted system call leaves in ax while its thread is stopped, before any
# handler is set up (include/linux/errno.h). With no handler to run the kernel restarts
# all four unseen; a handler installed with SA_RESTART, as Go installs every one, lets
# the first two restart after it but ends the last two with EINTR for the program to see
# (arch/x86/kernel/signal.c, handle_signal).
ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK = 512, 513, 514, 516


def _signed(word: int) -> int:
    return word - (1 << 64) if word >> 63 else word


def handler_ends_syscall(regs: UserRegs) -> bool:
    """Whether a signal handler run now on this stopped thread would end the system
    call it is in with EINTR (nanosleep, poll, select, futex with a timeout...) instead
    of letting it go on, as the stop alone does.

    Also a thread stopped again before it went back into a call that an earlier stop
    interrupted: its ax already holds restart_syscall, pc the syscall instruction, and
    restart_syscall after a handler (rt_sigreturn resets the restart) returns EINTR.
    (A call that returned 219 looks the same: one thread fewer to pick, no harm.)"""
    if _signed(regs.orig_rax) < 0:
        return False
    ax = _signed(regs.rax)
    return -ax in (ERESTARTNOHAND, ERESTART_RESTARTBLOCK) or ax == SYS_RESTART_SYSCALL


@dataclass(frozen=True)
class BlockedCall:
    """The system call a running thread sleeps in (/proc/PID/task/TID/syscall)."""

    nr: int
    args: tuple[int, ...]
    pc: int  # the user address the call returns to

    def restarts_after_handler(self) -> bool:
        """A futex wait without a timeout: interrupted, it returns ERESTARTSYS, and
        SA_RESTART restarts it after the handler (kernel/futex/waitwake.c). Other calls
        cannot be told apart from here, and most end with EINTR."""
        if self.nr != SYS_FUTEX:
            return False
        op = self.args[1] & FUTEX_CMD_MASK
        return op in (FUTEX_WAIT, FUTEX_WAIT_BITSET) and self.args[3] == 0


def blocked_call(pid: int, tid: int) -> BlockedCall | None:
    """The system call a thread is blocked in, None when it runs or cannot be read."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return None
    # "nr arg1 .. arg6 sp pc" ("running", or "-1 sp pc" outside of a call)
    if len(fields) != 9 or not fields[0].isdigit():
        return None
    try:
        return BlockedCall(
            int(fields[0]), tuple(int(a, 16) for a in fields[1:7]), int(fields[8], 16)
        )
    except ValueError:
        return None


def current_cpu() -> int | None:
    """The CPU the calling thread runs on."""
    cpu = int(_sched_getcpu())
    return None if cpu < 0 else cpu


def event_message(tid: int) -> int:
    """PTRACE_GETEVENTMSG: for a clone event, the new thread's id."""
    msg = ctypes.c_ulong(0)
    _check(
        _ptrace(PTRACE_GETEVENTMSG, tid, None, ctypes.cast(ctypes.byref(msg), ctypes.c_void_p)),
        "ptrace(GETEVENTMSG)",
    )
    return int(msg.value)


def detach(tid: int, sig: int = 0) -> None:
    ptrace(PTRACE_DETACH, tid, 0, sig)


def getregs(tid: int) -> UserRegs:
    regs = UserRegs()
    _check(
        _ptrace(PTRACE_GETREGS, tid, None, ctypes.cast(ctypes.byref(regs), ctypes.c_void_p)),
        "ptrace(GETREGS)",
    )
    return regs


@dataclass(frozen=True)
class WaitStatus:
    tid: int
    raw: int

    @property
    def exited(self) -> bool:
        return os.WIFEXITED(self.raw) or os.WIFSIGNALED(self.raw)

    @property
    def stopped(self) -> bool:
        return os.WIFSTOPPED(self.raw)

    @property
    def stop_signal(self) -> int:
        return os.WSTOPSIG(self.raw) if self.stopped else 0

    @property
    def event(self) -> int:
        return (self.raw >> 16) & 0xFF


def wait(tid: int, nohang: bool = False) -> WaitStatus | None:
    """waitpid(tid, __WALL); None when nohang and nothing is ready."""
    status = ctypes.c_int(0)
    while True:
        ret = _waitpid(tid, ctypes.byref(status), WALL | (os.WNOHANG if nohang else 0))
        if ret == -1 and ctypes.get_errno() == errno.EINTR:
            continue
        _check(ret, "waitpid")
        if ret == 0:
            return None
        return WaitStatus(ret, status.value)


def tgkill(tgid: int, tid: int, sig: int) -> None:
    _check(_syscall(SYS_tgkill, tgid, tid, sig), "tgkill")


def read_memory(pid: int, addr: int, size: int) -> bytes:
    """process_vm_readv of one range; raises OSError when unmapped (short reads too)."""
    buf = ctypes.create_string_buffer(size)
    local = _Iovec(ctypes.cast(buf, ctypes.c_void_p), size)
    remote = _Iovec(ctypes.c_void_p(addr), size)
    got = _check(
        _vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0), "process_vm_readv"
    )
    if got != size:
        raise OSError(errno.EFAULT, f"short read at {addr:#x}: {got} of {size}")
    return buf.raw


def read_many(pid: int, ranges: list[tuple[int, int]]) -> list[bytes | None]:
    """Reads several ranges; each result is None where that range was not readable.

    Batches ranges into one process_vm_readv call (the kernel stops at the first fault,
    so a failing batch is retried range by range)."""
    out: list[bytes | None] = []
    batch = 1024  # IOV_MAX
    for start in range(0, len(ranges), batch):
        chunk = ranges[start : start + batch]
        n = len(chunk)
        # Both iovec arrays built as arrays of words, not ctypes objects one by one
        # (that cost ~3 us a range, most of a 3,000-goroutine walk's in-pause time).
        remote = array.array("Q", [x for r in chunk for x in r])
        sizes = remote[1::2]
        total = sum(sizes)
        buf = ctypes.create_string_buffer(total)
        offsets = list(itertools.accumulate(sizes, initial=ctypes.addressof(buf)))
        local = array.array("Q", [0]) * (2 * n)
        local[0::2] = array.array("Q", offsets[:-1])
        local[1::2] = sizes
        got = _vm_readv(
            pid,
            ctypes.cast(local.buffer_info()[0], ctypes.POINTER(_Iovec)),
            n,
            ctypes.cast(remote.buffer_info()[0], ctypes.POINTER(_Iovec)),
            n,
            0,
        )
        if got == total:
            raw = buf.raw
            off = 0
            for _, size in chunk:
                out.append(raw[off : off + size])
                off += size
            continue
        for addr, size in chunk:
            try:
                out.append(read_memory(pid, addr, size))
            except OSError:
                out.append(None)
    return out


PAGE = 4096


class PageReader:
    """Reads of a stopped process's memory served from copies of whole pages, which
    are read in batches: a read succeeds when all its pages are readable, as a
    process_vm_readv of it would. A miss reads its pages and READ_AHEAD more.

    Only for a process that stays stopped while the reader is in use: the pages are
    the memory of one moment."""

    READ_AHEAD = 3

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pages: dict[int, bytes | None] = {}  # page address -> its bytes, None: unreadable

    def prefetch(self, ranges: list[tuple[int, int]], ahead: int = 0) -> None:
        """Copies the pages of these ranges (and `ahead` pages after each) not held yet."""
        missing: dict[int, None] = {}
        pages = self.pages
        for addr, size in ranges:
            if size <= 0:
                continue
            first, last = addr & ~(PAGE - 1), (addr + size - 1) & ~(PAGE - 1)
            for page in range(first, last + PAGE * (ahead + 1), PAGE):
                if page not in pages:
                    missing[page] = None
        if not missing:
            return
        wanted = sorted(missing)
        for page, data in zip(
            wanted, read_many(self.pid, [(p, PAGE) for p in wanted]), strict=True
        ):
            pages[page] = data

    def read(self, addr: int, size: int) -> bytes | None:
        """size bytes at addr, or None when any of their pages is unreadable."""
        if size <= 0:
            return b""
        first, last = addr & ~(PAGE - 1), (addr + size - 1) & ~(PAGE - 1)
        pages = self.pages
        if first not in pages or last not in pages:
            self.prefetch([(addr, size)], self.READ_AHEAD)
        if first == last:
            data = pages.get(first)
            if data is None:
                return None
            off = addr - first
            return data[off : off + size]
        parts = []
        for page in range(first, last + PAGE, PAGE):
            if page not in pages:
                self.prefetch([(page, PAGE)], self.READ_AHEAD)
            data = pages.get(page)
            if data is None:
                return None
            parts.append(data)
        off = addr - first
        return b"".join(parts)[off : off + size]
