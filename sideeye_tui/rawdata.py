"""What a backend reads from a paused process, before symbolization.

Both backends (the eBPF probe in bpf/ and the ptrace reader in capture/) produce
these, so decoding, symbolizing and storing never know which one ran. It sits below
both, at the package root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .values.chase import FrameMemory

# Where a goroutine's unwinding started (mirrored by the probe's SOURCE_* constants).
SOURCE_SCHED = 0  # g.sched: parked or runnable
SOURCE_THREAD = 1  # the registers of the thread running it
SOURCE_SYSCALL = 2  # g.syscallpc/sp/bp: in a syscall, its thread not on its stack

SOURCE_NAMES = {SOURCE_SCHED: "sched", SOURCE_THREAD: "thread", SOURCE_SYSCALL: "syscall"}


def status_code(status_names: dict[int, str], name: str) -> int:
    """The runtime's code for a status name (from the binary's `_G*` constants)."""
    for code, status in status_names.items():
        if status == name:
            return code
    raise KeyError(f"runtime status {name!r} not in the binary's constants")


def not_goroutines(status_names: dict[int, str]) -> tuple[int, ...]:
    """Status codes of g's that are no goroutine a user has: never started, or dead
    and kept for reuse (_Gdead, and Go 1.26's _Gdeadextra for cgo's extra Ms)."""
    return tuple(
        sorted(
            code for code, name in status_names.items() if name == "idle" or name.startswith("dead")
        )
    )


@dataclass(frozen=True)
class RawGoroutine:
    goid: int
    status: int  # runtime status code, _Gscan bit cleared
    wait_reason: int
    wait_since: int  # runtime nanotime() when it started waiting, 0 if unknown
    gopc: int  # pc of the go statement
    startpc: int
    parent_goid: int
    source: int
    pcs: tuple[int, ...]  # pcs[0] exact, the rest return addresses
    truncated: bool = False
    bad_frame_pointer: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    locked_to_thread: bool = False  # g.lockedm != 0 (runtime.LockOSThread)
    g: int = 0  # the runtime.g's address, where the backend knows it
    # When runtime.asyncPreempt interrupted this goroutine: the index in pcs of the pc
    # it interrupted (0: no such frame), and the word at the SP it interrupted, a
    # frameless function's return address (mended in after resuming: capture/running.py)
    interrupted_depth: int = 0
    interrupted_sp_word: int = 0


@dataclass
class RawProcess:
    pid: int
    goroutines: list[RawGoroutine] = field(default_factory=list)
    threads: int = 0
    pause_ns: int = 0
    now_ns: int = 0  # CLOCK_MONOTONIC during the pause, to age wait_since
    notes: list[str] = field(default_factory=list)  # things the user should know
    values: list[FrameMemory] = field(default_factory=list)  # spec'd frames' copied memory
    walk: str = "paused"  # "early": most goroutines read before the pause (early_walk.py)


@dataclass(frozen=True)
class ThreadRegs:
    tid: int
    pc: int
    sp: int
    bp: int


@dataclass(frozen=True)
class StackHead:
    """A running goroutine's registers and the first bytes of its stack from SP."""

    sp: int
    bp: int
    data: bytes
