"""Failures land in ProcessSnapshot.error, in words a user understands; one process's
failure never spoils the others of the same snapshot."""

from __future__ import annotations

import contextlib
import os
import random
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sideeye_tui.capture import pause
from sideeye_tui.capture.snapshot import capture_process, take_snapshot
from sideeye_tui.dwarf import GoBinary
from sideeye_tui.model import ProcessSnapshot
from tests.go.build import Fixture, start_fixture

from .support import BACKENDS, assert_runs_freely, by_goid, snapfixture_binary, stopped_threads

pytestmark = [pytest.mark.root]

# What an error about a process that is gone may say; never "run as root", never a
# kernel configuration problem.
GONE = re.compile(r"exited|no process|no such process", re.IGNORECASE)


def _assert_gone_error(snap: ProcessSnapshot, pid: int) -> None:
    assert snap.error is not None
    assert str(pid) in snap.error, snap.error
    assert GONE.search(snap.error), snap.error
    assert snap.goroutines == ()


def _assert_complete(snap: ProcessSnapshot, fx: Fixture) -> None:
    assert snap.pid == fx.pid
    assert snap.error is None, snap.error
    assert snap.pause_ns is not None and snap.pause_ns > 0
    gs = by_goid(snap.goroutines)
    for group in fx.report["groups"]:
        for goid in group["ids"]:
            assert goid in gs, (group["name"], goid)
            assert gs[goid].status in group["statuses"], (group["name"], goid)
            assert gs[goid].frames[-1].function == "runtime.goexit" or gs[goid].truncated


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not os.path.exists(f"/proc/{proc.pid}")
    return proc.pid


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_such_pid(backend: str) -> None:
    pid = _dead_pid()
    snap = capture_process(pid, backend)
    assert snap.pid == pid
    assert snap.backend == backend
    _assert_gone_error(snap, pid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_not_a_go_program(backend: str) -> None:
    proc = subprocess.Popen(["sleep", "100"])
    try:
        time.sleep(0.05)
        snap = capture_process(proc.pid, backend)
        assert snap.error is not None
        assert re.search(r"not a Go (program|binary)", snap.error), snap.error
        assert snap.goroutines == ()
        assert proc.poll() is None
        assert stopped_threads(proc.pid) == {}
    finally:
        proc.kill()
        proc.wait()


def test_unknown_backend() -> None:
    proc = subprocess.Popen(["sleep", "100"])
    try:
        snap = capture_process(proc.pid, "gdb")
        assert snap.error is not None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.go
def test_unknown_backend_of_a_go_program() -> None:
    with start_fixture(snapfixture_binary("local"), "-park", "10") as fx:
        snap = capture_process(fx.pid, "gdb")
        assert snap.error is not None and "gdb" in snap.error, snap.error
        assert "ebpf" in snap.error and "ptrace" in snap.error, snap.error
        assert_runs_freely(fx.pid)


# ---- a process that exits during take_snapshot ------------------------------------------


@pytest.fixture
def two_fixtures() -> Iterator[tuple[Fixture, Fixture]]:
    with (
        start_fixture(snapfixture_binary("local"), "-park", "300") as survivor,
        start_fixture(snapfixture_binary("local"), "-park", "300") as victim,
    ):
        yield survivor, victim


def _kill(fx: Fixture, reap: bool) -> None:
    fx.proc.kill()
    if reap:
        fx.proc.wait()
    else:  # a zombie until the end of the test: its parent has not waited yet
        time.sleep(0.05)


@pytest.mark.go
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_process_killed_while_paused(
    two_fixtures: tuple[Fixture, Fixture], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL lands while every thread of the victim is in a ptrace-stop."""
    survivor, victim = two_fixtures
    real_pause = pause.pause

    def pause_then_kill(pid: int, **kwargs: Any) -> Any:
        paused = real_pause(pid, **kwargs)
        if pid == victim.pid:
            # Not reaped: the kernel holds the exit for the tracer (this very thread)
            # until it lets the threads go, so waiting here would never return.
            _kill(victim, reap=False)
        return paused

    monkeypatch.setattr(pause, "pause", pause_then_kill)
    snap = take_snapshot([survivor.pid, victim.pid], backend)
    monkeypatch.undo()
    _assert_complete(snap.processes[0], survivor)
    _assert_gone_error(snap.processes[1], victim.pid)
    assert_runs_freely(survivor.pid)


@pytest.mark.go
@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "reap"),
    [
        pytest.param(
            "ebpf",
            True,
            id="ebpf-reaped",
            marks=pytest.mark.bpf,
        ),
        pytest.param(
            "ptrace",
            False,
            id="ptrace-zombie",
        ),
        pytest.param("ptrace", True, id="ptrace-reaped"),
    ],
)
def test_process_exits_before_the_pause(
    two_fixtures: tuple[Fixture, Fixture],
    backend: str,
    reap: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The victim exits after its binary was opened, before it could be paused (zombie:
    its parent has not waited for it yet; reaped: gone from /proc)."""
    survivor, victim = two_fixtures
    real_open = GoBinary.open

    def open_then_kill(path: str, *args: Any, **kwargs: Any) -> Any:
        binary = real_open(path, *args, **kwargs)
        if path == f"/proc/{victim.pid}/exe":
            _kill(victim, reap=reap)
        return binary

    monkeypatch.setattr(GoBinary, "open", staticmethod(open_then_kill))
    snap = take_snapshot([survivor.pid, victim.pid], backend)
    monkeypatch.undo()
    _assert_complete(snap.processes[0], survivor)
    _assert_gone_error(snap.processes[1], victim.pid)


@pytest.mark.go
@pytest.mark.slow
def test_process_killed_at_random_moments() -> None:
    """No instrumentation: the victim is killed (and reaped, as a parent would) at a
    random moment of the snapshot. Whatever the moment, the call returns, the survivor
    is complete, and the victim is either complete or has an error. (ptrace only: an
    eBPF capture spends seconds compiling its probe, so a random moment falls there;
    the tests above place the exit at the interesting moments for both backends.)"""
    backend = "ptrace"
    rng = random.Random(f"exit-{backend}")
    span = 0.15
    for _ in range(5):
        delay = rng.uniform(0, span)
        with contextlib.ExitStack() as stack:
            survivor = stack.enter_context(
                start_fixture(snapfixture_binary("local"), "-park", "300")
            )
            victim = stack.enter_context(start_fixture(snapfixture_binary("local"), "-park", "300"))
            killer = threading.Timer(delay, _kill, args=(victim, True))
            killer.start()
            try:
                snap = take_snapshot([survivor.pid, victim.pid], backend)
            finally:
                killer.join()
            _assert_complete(snap.processes[0], survivor)
            lost = snap.processes[1]
            if lost.error is None:
                _assert_complete(lost, victim)
            else:  # its wording is checked by the deterministic tests above
                assert lost.error.strip() and lost.goroutines == (), (delay, lost)
            assert_runs_freely(survivor.pid)
