"""The probe's signal never cuts a goroutine's system call short (signal_targets).

snapfixture's nanosleepers sleep an hour in syscall.Nanosleep, each on a thread of its
own, and with `-eintr FILE` append a line to FILE whenever the call ends with EINTR: a
handler ran on their thread in the middle of it. A ptrace stop alone restarts the call
unseen, so the file must stay absent whatever we do: snapshots with the early walk and
without, the early walk's courier kicked at a nanosleeper directly, and walkers picked
among stopped threads that are mostly nanosleepers.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sideeye_tui.capture import early_walk, linux, pause
from sideeye_tui.capture.signal_targets import SignalTargets
from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.dwarf.binary import GoBinary
from tests.go.build import Fixture, start_fixture

from .support import BUILDS, snapfixture_binary, thread_states, tracer_pids

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]

NANOSLEEPERS = 12
SYS_NANOSLEEP = 35
SYS_RESTART_SYSCALL = 219
UNSTRIPPED = [name for name, (_, stripped) in BUILDS.items() if not stripped]


@dataclass
class Sleepers:
    fixture: Fixture
    eintr: Path
    targets: SignalTargets
    binary: GoBinary

    @property
    def pid(self) -> int:
        return self.fixture.pid

    def eintrs(self) -> list[str]:
        """The fixture's own record of the calls that ended with EINTR."""
        return self.eintr.read_text().splitlines() if self.eintr.exists() else []

    def nanosleeper_threads(self) -> list[int]:
        """Threads in a nanosleep of the program's own (not the runtime's usleep)."""
        tids = []
        for tid in sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task")):
            call = linux.blocked_call(self.pid, tid)
            # after a ptrace stop the kernel carries the sleep on in restart_syscall
            sleeping = call is not None and call.nr in (SYS_NANOSLEEP, SYS_RESTART_SYSCALL)
            if sleeping and call is not None and not self.targets.in_runtime_sleep(call.pc):
                tids.append(tid)
        return tids


@functools.cache
def _binary(build: str) -> GoBinary:
    return GoBinary.open(str(snapfixture_binary(build)))


@pytest.fixture(params=UNSTRIPPED)
def sleepers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sleepers]:
    build = str(request.param)
    eintr = tmp_path / "eintr.txt"
    args = ("-park", "200", "-spin", "1", "-nanosleep", str(NANOSLEEPERS), "-eintr", str(eintr))
    with start_fixture(snapfixture_binary(build), *args) as fx:
        binary = _binary(build)
        s = Sleepers(fx, eintr, SignalTargets.of(binary), binary)
        deadline = time.monotonic() + 5
        while len(s.nanosleeper_threads()) < NANOSLEEPERS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(s.nanosleeper_threads()) == NANOSLEEPERS
        yield s


def _settle() -> None:
    """Time for a nanosleeper woken by EINTR to run and write its line."""
    time.sleep(0.3)


def test_the_runtime_sleeps_are_found(sleepers: Sleepers) -> None:
    names = {sleepers.binary.function_name(start) for start, _ in sleepers.targets.sleeps}
    assert names == {"runtime.futex", "runtime.usleep"}


def test_snapshots_leave_every_sleep_alone(sleepers: Sleepers) -> None:
    walks = []
    for _ in range(3):
        for early in (True, False):
            snap = capture_process(sleepers.pid, early=early)
            assert snap.error is None
            walks.append(snap.walk)
            nanosleepers = [
                g
                for g in snap.goroutines
                if any(f.function == "main.nanosleeper" for f in g.frames)
            ]
            assert len(nanosleepers) == NANOSLEEPERS
            assert {g.status for g in nanosleepers} == {"syscall"}
    assert "early" in walks and "paused" in walks
    _settle()
    assert sleepers.eintrs() == []
    assert len(sleepers.nanosleeper_threads()) == NANOSLEEPERS


def test_the_early_walk_never_picks_a_nanosleeper(sleepers: Sleepers) -> None:
    for _ in range(20):
        tid = early_walk.pick_thread(sleepers.pid, sleepers.targets)
        assert tid not in sleepers.nanosleeper_threads()


def test_the_courier_withholds_the_signal_from_a_nanosleeper(sleepers: Sleepers) -> None:
    tid = sleepers.nanosleeper_threads()[0]
    courier = early_walk.Courier(sleepers.pid, tid, sleepers.targets)
    try:
        courier.kick()
        assert courier.refused and courier.delivered == 0
        courier.kick()  # a refused courier sends nothing more
        assert courier.delivered == 0
    finally:
        courier.close()
    _settle()
    assert sleepers.eintrs() == []
    assert tid in sleepers.nanosleeper_threads()
    assert tracer_pids(sleepers.pid).get(tid) == 0


def test_the_courier_delivers_to_the_runtimes_own_sleep(sleepers: Sleepers) -> None:
    """A thread in the runtime's usleep or futex takes the signal (the control)."""
    tid = None
    deadline = time.monotonic() + 5
    while tid is None and time.monotonic() < deadline:  # sysmon runs now and then
        tid = early_walk.pick_thread(sleepers.pid, sleepers.targets)
    assert tid is not None
    courier = early_walk.Courier(sleepers.pid, tid, sleepers.targets)
    try:
        courier.kick()
        assert courier.delivered == 1 and not courier.refused
    finally:
        courier.close()
    assert tracer_pids(sleepers.pid).get(tid) == 0


def test_the_courier_leaves_no_thread_in_a_stop(sleepers: Sleepers) -> None:
    """A seized thread stops at any signal, not only the courier's: tend() lets it go on
    at once (left stopped, an M keeps its P and the goroutines queued there)."""
    tid = None
    deadline = time.monotonic() + 5
    while tid is None and time.monotonic() < deadline:
        tid = early_walk.pick_thread(sleepers.pid, sleepers.targets)
    assert tid is not None
    courier = early_walk.Courier(sleepers.pid, tid, sleepers.targets)
    try:
        linux.tgkill(sleepers.pid, tid, signal.SIGWINCH)  # someone else's signal
        stopped = time.monotonic() + 1
        while thread_states(sleepers.pid).get(tid) != "t" and time.monotonic() < stopped:
            time.sleep(0.001)
        assert thread_states(sleepers.pid).get(tid) == "t", "not stopped in the delivery"
        courier.tend()
        going = time.monotonic() + 5  # a loaded machine may take long to run it
        while thread_states(sleepers.pid).get(tid) == "t" and time.monotonic() < going:
            time.sleep(0.001)
        assert thread_states(sleepers.pid).get(tid) != "t", "still stopped after tend()"
        assert courier.attached and not courier.refused and courier.delivered == 0
    finally:
        courier.close()
    assert tracer_pids(sleepers.pid).get(tid) == 0


def test_walkers_are_never_nanosleepers(sleepers: Sleepers) -> None:
    nanosleepers = set(sleepers.nanosleeper_threads())
    for _ in range(5):
        paused = pause.pause(
            sleepers.pid,
            registers=False,
            walkers=2,
            trigger=linux.SIGURG,
            targets=sleepers.targets,
        )
        try:
            ready = paused.walkers.tids if paused.walkers is not None else []
            assert not nanosleepers & set(ready)
            every = pause.pick_walkers(paused, len(paused.threads), targets=sleepers.targets)
            assert every.tids, "no thread may run the probe"
            assert not nanosleepers & set(every.tids)
            pause.run_signal_handlers(
                paused, every.tids, linux.SIGURG, lambda _i: True, lambda _i: 0, timeout_s=1.0
            )
        finally:
            pause.resume(paused)
    _settle()
    assert sleepers.eintrs() == []
