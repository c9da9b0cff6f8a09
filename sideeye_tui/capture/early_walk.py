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

The early walk runs on a thread blocked in a system call our signal does not cut
short, best an idle M (see pick_thread): no goroutine waits while the probe runs in its
signal handler, and no goroutine sees EINTR. The probe works a few tenths of a millisecond per trigger, then gives the CPU back (see loader.walk_early).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..rawdata import RawGoroutine
from ..values.chase import FrameMemory
from . import linux
from .signal_targets import SignalTargets

if TYPE_CHECKING:
    from ..bpf.loader import StackProbe

EARLY_WALK_S = 3.0  # the longest the early walk may take; then the pause walks all


@dataclass
class EarlyWalk:
    covered: int  # allgs entries the walk read
    records: list[bytes]  # the probe's, decoded after the pause (see decode)
    value_jobs: int = 0  # spec'd frames queued, whose values the pause reads
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


def pick_thread(pid: int, targets: SignalTargets) -> int | None:
    """A thread blocked in a system call our signal does not cut short (see
    signal_targets), none that runs: the probe in its handler must keep no goroutine
    from running. Best an idle M (the runtime's futex wait: it holds no P)."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return None
    ranked = []
    for tid in tids:
        call = linux.blocked_call(pid, tid)
        rank = targets.rank_blocked(call) if call is not None else None
        if rank is None or linux.blocks_signal(pid, tid, linux.SIGURG):
            continue
        ranked.append((rank, tid))
    return min(ranked)[1] if ranked else None


def walk_early(pid: int, probe: StackProbe, targets: SignalTargets) -> EarlyWalk | None:
    """Turns the tracker on and walks every goroutine while the process runs. None when
    this process or binary cannot be walked early (the pause then walks everything)."""
    if not probe.can_walk_early():
        return None  # stripped: no symbols for allglen, allgptr, allm
    tid = pick_thread(pid, targets)
    if tid is None:
        return None
    try:
        courier = Courier(pid, tid, targets)
    except OSError:
        return None  # it exited, or is traced by someone else
    try:
        if not probe.start_tracking():
            return None
        covered = probe.walk_early(
            tid, courier.kick, time.monotonic() + EARLY_WALK_S, tend=courier.tend
        )
    finally:
        courier.close()
    records = probe.drain()
    stats = probe.poll()[0]
    # Lost records, or spec'd frames that did not fit the value queue (the early walk
    # cannot empty it: values are read in the pause): the pause walks everything.
    if covered is None or stats.lost or stats.vq_lost:
        probe.stop_tracking()
        return None
    return EarlyWalk(covered, records, value_jobs=int(stats.vq_len))


DELIVERY_WAIT_S = 0.05  # a thread that has not stopped in our signal's delivery by then blocks it
WAIT_POLL_S = 0.00002


class Courier:
    """Hands the early walk's signal to its thread through ptrace, which sees the thread
    in the signal's delivery, before the handler: a thread that has left its safe sleep
    since pick_thread, for a call our signal would cut short, does not get it (the call
    restarts unseen) and the walk stalls, to fall back to the paused walk. The thread is
    seized (it runs on, untouched) from the first kick to close."""

    def __init__(self, pid: int, tid: int, targets: SignalTargets) -> None:
        self.pid, self.tid, self.targets = pid, tid, targets
        self.attached = True
        self.refused = False  # a delivery was withheld: kick no more
        self.delivered = 0
        linux.seize(tid)

    def kick(self) -> None:
        if not self.attached or self.refused:
            return
        try:
            linux.tgkill(self.pid, self.tid, linux.SIGURG)
        except OSError:
            return  # it exited: the walk stalls and gives up
        deadline = time.monotonic() + DELIVERY_WAIT_S
        while self.attached and time.monotonic() < deadline:
            st = linux.wait(self.tid, nohang=True)
            if st is None:
                time.sleep(WAIT_POLL_S)
            elif self._handle(st):
                return

    def tend(self) -> None:
        """Lets the thread go on from any stop it is in, without waiting for one.

        A seized thread stops at every signal sent to it, not only ours: the runtime
        may wake this M to run goroutines and then preempt it with its own SIGURG. Left
        in such a stop, it would keep its P and the goroutines queued there from
        running (the bench target's meter felt gaps of up to 37 ms at 100,000
        goroutines), so the early walk tends it while it waits for the probe."""
        while self.attached:
            st = linux.wait(self.tid, nohang=True)
            if st is None:
                return
            self._handle(st)

    def _handle(self, st: linux.WaitStatus) -> bool:
        """Lets the thread go on from one stop; True when it was our signal's delivery."""
        if st.exited:
            self.attached = False
            return False
        if st.event:  # a group-stop (SIGSTOP) or our interrupt: leave it as it is
            self._detach()
            return False
        if st.stop_signal != linux.SIGURG:
            self._resume(st.stop_signal)  # someone else's signal, passed on
            return False
        try:
            safe = self.targets.may_signal_stopped(linux.getregs(self.tid))
        except OSError:
            safe = False
        if safe:
            self.delivered += 1
        else:
            self.refused = True
        self._resume(linux.SIGURG if safe else 0)
        return True

    def _resume(self, sig: int) -> None:
        try:
            linux.cont(self.tid, sig)
        except OSError:
            self.attached = False  # it exited

    def _detach(self) -> None:
        with contextlib.suppress(OSError):
            linux.detach(self.tid)
        self.attached = False

    def close(self) -> None:
        """Stops the thread (an interrupt, which restarts any call unseen), settles a
        delivery of ours still pending as kick does, and lets it go."""
        if not self.attached:
            return
        try:
            linux.interrupt(self.tid)
        except OSError:
            self.attached = False
            return
        deadline = time.monotonic() + DELIVERY_WAIT_S * 20
        while self.attached and time.monotonic() < deadline:
            st = linux.wait(self.tid, nohang=True)
            if st is None:
                time.sleep(WAIT_POLL_S)
            else:
                self._handle(st)
        # Not stopped within a second (uninterruptible sleep): the kernel detaches it
        # when the capture thread, its tracer, ends.


def merge(
    early: list[RawGoroutine], changed: list[RawGoroutine], marked: set[int]
) -> list[RawGoroutine]:
    """The early records of goroutines the pause did not read again, then the pause's."""
    covered = marked | {g.g for g in changed}
    return [g for g in early if g.g not in covered] + changed


def merge_values(frames: list[FrameMemory], early_kept: set[int]) -> list[FrameMemory]:
    """The value frames that go with the merged goroutines: those the pause queued,
    and those the early walk queued for a goroutine whose early record stands
    (`early_kept`, goids): the probe reads the early frames of the goroutines the
    pause walked again too (their stacks may have changed: those values are not
    kept). Every frame's values were read in the pause either way."""
    return [f for f in frames if not f.early or f.goid in early_kept]
