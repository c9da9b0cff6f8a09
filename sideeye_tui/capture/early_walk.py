"""The early walk: most of a snapshot's reading done before the pause, while the process
runs, and the merge of its records with what the pause reads (the walk modes are in
bpf/stack_probe.py).

Why the merged snapshot is the process as it was in the pause: a goroutine's stack
changes only while the goroutine runs, or when the runtime moves the stack
(copystack). From before the early walk reads its first g until the pause, the
tracker marks every goroutine that passes through the runtime functions by which a
goroutine starts or stops running (casgstatus, preemptPark, coroswitch_m) or has its
stack moved. In the pause the changed walk reads again every marked goroutine, every
goroutine allgs gained since, and the goroutine each M is running (it may have started
before the tracker was on, and not stopped since). Any other goroutine did not run in
between, so its early record is what the pause would have read.

The early walk runs on a thread blocked in a system call, best an idle M (see
pick_thread): no goroutine waits while the probe runs in its signal handler. The probe works a few
tenths of a millisecond per trigger, then gives the CPU back (see loader.walk_early).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..rawdata import RawGoroutine
from . import linux

if TYPE_CHECKING:
    from ..bpf.loader import StackProbe

EARLY_WALK_S = 3.0  # the longest the early walk may take; then the pause walks all


@dataclass
class EarlyWalk:
    covered: int  # allgs entries the walk read
    records: list[bytes]  # the probe's, decoded after the pause (see decode)
    goroutines: list[RawGoroutine] = field(default_factory=list)
    labels_cut: set[int] = field(default_factory=set)  # goids with more labels than read

    def decode(self) -> None:
        """Decodes the records: after the pause, so that the pause comes as soon as
        possible after the walk (fewer goroutines run in between) and the decoding's
        CPU time is not spent while the target has to wait for it."""
        from ..bpf.records import RecordDecoder

        decoder = RecordDecoder()
        for rec in self.records:
            decoder.feed(rec)
        self.records = []
        self.goroutines = decoder.goroutines()
        self.labels_cut = set(decoder.labels_cut)


def pick_thread(pid: int) -> int | None:
    """A thread blocked in a system call that takes SIGURG, none that runs: the probe
    in its handler must keep no goroutine from running. Best an idle M (futex: it holds
    no P), then sysmon's or the netpoller's sleep, then any other call (a goroutine in a
    blocking call has its P handed off; SA_RESTART resumes most calls, and Go code is
    ready for EINTR since the runtime sends SIGURG itself)."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return None
    ranked = []
    for tid in tids:
        call = linux.current_syscall(pid, tid)
        if call is None or linux.blocks_signal(pid, tid, linux.SIGURG):
            continue
        ranked.append((_PREFERRED.index(call) if call in _PREFERRED else len(_PREFERRED), tid))
    return min(ranked)[1] if ranked else None


# futex, epoll_pwait, epoll_wait, nanosleep, clock_nanosleep
_PREFERRED = (linux.SYS_FUTEX, 281, 232, 35, 230)


def walk_early(pid: int, probe: StackProbe) -> EarlyWalk | None:
    """Turns the tracker on and walks every goroutine while the process runs. None when
    this process or binary cannot be walked early (the pause then walks everything)."""
    if not probe.can_walk_early():
        return None  # stripped: no symbols for allglen, allgptr, allm
    tid = pick_thread(pid)
    if tid is None:
        return None

    def kick() -> None:
        with contextlib.suppress(OSError):  # the thread exited: the walk stalls, gives up
            linux.tgkill(pid, tid, linux.SIGURG)

    if not probe.start_tracking():
        return None
    covered = probe.walk_early(tid, kick, time.monotonic() + EARLY_WALK_S)
    records = probe.drain()
    if covered is None or probe.poll()[0].lost:
        probe.stop_tracking()
        return None
    return EarlyWalk(covered, records)


def merge(
    early: list[RawGoroutine], changed: list[RawGoroutine], marked: set[int]
) -> list[RawGoroutine]:
    """The early records of goroutines the pause did not read again, then the pause's."""
    covered = marked | {g.g for g in changed}
    return [g for g in early if g.g not in covered] + changed
