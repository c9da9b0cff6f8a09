"""A snapshot never leaves its target stopped: not after it ends, not when the process
taking it is SIGKILLed at any moment (the kernel detaches a dead tracer's tracees, and
closes its uprobes)."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from sideeye_tui.capture.snapshot import capture_process, take_snapshot
from tests.go.build import Fixture, start_fixture

from .support import (
    BACKENDS,
    PROJECT_ROOT,
    PYTHON,
    assert_runs_freely,
    by_goid,
    snapfixture_binary,
    stopped_threads,
)

pytestmark = [pytest.mark.root, pytest.mark.go, pytest.mark.slow]


@pytest.fixture(scope="module")
def target() -> Iterator[Fixture]:
    with start_fixture(snapfixture_binary("local"), "-park", "200") as fx:
        yield fx


@pytest.mark.parametrize("backend", BACKENDS)
def test_target_runs_after_snapshot(target: Fixture, backend: str) -> None:
    snap = take_snapshot([target.pid], backend).processes[0]
    assert snap.error is None
    assert_runs_freely(target.pid)


# The child: snapshots the target in a loop, writing one byte per step to stdout:
# L the loop starts, S the target is paused (every thread in a ptrace-stop),
# A the eBPF probe is armed (target paused), R resuming, D a snapshot done, E one failed.
# With HOLD > 0 it stays HOLD seconds at S (ptrace) or A (ebpf), the target stopped,
# so that the parent can kill it at a moment when the target is known to be stopped.
CHILD = r"""
import os, sys, time
backend, pid, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
from sideeye_tui.capture import pause, snapshot

def mark(c):
    os.write(1, c)

real_pause, real_resume = pause.pause, pause.resume

def paused(p, **kw):
    r = real_pause(p, **kw)
    mark(b"S")
    if hold and backend == "ptrace":
        time.sleep(hold)
    return r

def resumed(p):
    mark(b"R")
    return real_resume(p)

pause.pause, pause.resume = paused, resumed
if backend == "ebpf":
    from sideeye_tui.bpf import loader
    real_arm = loader.StackProbe.arm
    def arm(self, *a):
        real_arm(self, *a)
        mark(b"A")
        if hold:
            time.sleep(hold)
    loader.StackProbe.arm = arm
mark(b"L")
while True:
    s = snapshot.capture_process(pid, backend)
    mark(b"E" if s.error or not s.goroutines else b"D")
"""

HOLD_S = 0.3
# Each eBPF child compiles its probe (seconds) before it first pauses the target.
KILLS_PER_MODE = {"ptrace": 5, "ebpf": 3}


def _read_until(proc: subprocess.Popen[bytes], wanted: bytes, timeout: float) -> bytes:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"the child did not write {wanted!r} in {timeout} s (wrote {seen!r})"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the child exited (status {proc.wait()}) after writing {seen!r}"
            seen += chunk
    return seen


def _start_child(backend: str, pid: int, hold: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PYTHON), "-c", CHILD, backend, str(pid), str(hold)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_of_the_snapshotter_never_leaves_the_target_stopped(
    target: Fixture, backend: str
) -> None:
    rng = random.Random(f"sigkill-{backend}")
    marker = b"A" if backend == "ebpf" else b"S"
    log = []
    kills = KILLS_PER_MODE[backend]
    for mode in ["hold"] * kills + ["free"] * kills:
        hold = HOLD_S if mode == "hold" else 0.0
        delay = rng.uniform(0, HOLD_S * 0.8) if mode == "hold" else rng.uniform(0, 0.3)
        child = _start_child(backend, target.pid, hold)
        try:
            _read_until(child, marker, timeout=60)
            if mode == "hold":
                # the target is paused now, and stays so for HOLD_S
                assert stopped_threads(target.pid), "the child did not stop the target"
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            assert child.stdout is not None
            child.stdout.close()
        log.append((mode, round(delay * 1000, 1)))
        try:
            assert_runs_freely(target.pid)
        except AssertionError as e:
            raise AssertionError(f"after SIGKILL {log[-1]} (kills so far: {log}): {e}") from e
    # The target's runtime is unharmed: a full snapshot still finds everything in place.
    snap = capture_process(target.pid, backend)
    assert snap.error is None
    gs = by_goid(snap.goroutines)
    for group in target.report["groups"]:
        for goid in group["ids"]:
            assert gs[goid].status in group["statuses"], (group["name"], goid)
