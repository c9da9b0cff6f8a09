"""Stacks that agree with Go's own traceback, frame for frame.

snapfixture is snapshotted with both backends, then made to crash with SIGQUIT: its
runtime prints every goroutine at the system level (every frame, runtime frames and
wrappers included, each with file and line) on stderr. Every goroutine whose state is
stable (the fixture's parked and in-syscall groups) must have exactly that stack in the
snapshot, innermost frame included: a return address symbolized at its call (pc-1), a
goroutine in a system call unwound from g.syscallpc/sp as the runtime does. Then, with
the wrapper frames left out, the stack Go's default traceback printed (runtime.Stack,
what pprof's debug=2 shows) from the fixture's READY report.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.model import Goroutine, ProcessSnapshot
from tests.go.build import start_fixture

from .support import BUILDS, by_goid, snapfixture_binary
from .tracebacks import Traceback, compare, from_report, parse_dump, shown_by_default

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]

BACKEND_NAMES = ("ebpf", "ptrace")


@dataclass
class Parity:
    build: str
    report: dict[str, Any]
    snaps: dict[str, ProcessSnapshot]
    system: dict[int, Traceback]  # the crash dump
    default: dict[int, Traceback]  # runtime.Stack(all=true), from the report

    def stable_goids(self) -> list[tuple[str, int]]:
        return [
            (group["name"], goid)
            for group in self.report["groups"]
            if group["status"] in ("waiting", "syscall")
            for goid in group["ids"]
        ]


@pytest.fixture(scope="module", params=list(BUILDS))
def parity(request: pytest.FixtureRequest) -> Iterator[Parity]:
    binary = snapfixture_binary(request.param)
    with tempfile.TemporaryFile() as err:
        with start_fixture(binary, "-park", "50", stderr=err) as fx:
            assert fx.report["settled"], "snapfixture did not settle: its truth is unreliable"
            snaps = {backend: capture_process(fx.pid, backend) for backend in BACKEND_NAMES}
            os.kill(fx.pid, signal.SIGQUIT)
            fx.proc.wait(timeout=60)
        err.seek(0)
        dump = err.read().decode("utf-8", "replace")
    system = parse_dump(dump)
    assert system, f"no goroutine in the crash dump: {dump[:500]!r}"
    yield Parity(request.param, fx.report, snaps, system, from_report(fx.report["tracebacks"]))


def _positions(g: Goroutine, wrappers: bool = True) -> list[tuple[str, str, int]]:
    return [(f.function, f.file, f.line) for f in g.frames if wrappers or not f.wrapper]


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_stacks_equal_the_system_traceback(parity: Parity, backend: str) -> None:
    snap = parity.snaps[backend]
    assert snap.error is None
    gs = by_goid(snap.goroutines)
    problems = []
    for name, goid in parity.stable_goids():
        truth = parity.system.get(goid)
        assert truth is not None, (name, goid, "not in the crash dump")
        assert goid in gs, (name, goid, "not captured")
        problem = compare(_positions(gs[goid]), truth)
        if problem:
            problems.append(f"{name} {goid} ({gs[goid].unwound_from}): {problem}")
    assert problems == []


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_runtime_goroutines_equal_the_system_traceback(parity: Parity, backend: str) -> None:
    """The runtime's own goroutines (force gc, sweeper, scavenger, finalizers, GC
    workers...) that are parked in the snapshot and still in that state in the crash
    dump: the system level is the only one that prints them."""
    user = {goid for _, goid in parity.stable_goids()}
    user |= {goid for group in parity.report["groups"] for goid in group["ids"]}
    compared, problems = 0, []
    for g in parity.snaps[backend].goroutines:
        truth = parity.system.get(g.goid)
        if g.goid in user or g.status != "waiting" or truth is None:
            continue
        if truth.state != g.wait_reason:
            continue  # it ran in between: not stable
        compared += 1
        problem = compare(_positions(g), truth)
        if problem:
            problems.append(f"{g.goid} [{g.wait_reason}]: {problem}")
    assert compared >= 3, "too few runtime goroutines to compare"
    assert problems == []


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_stacks_without_wrappers_equal_the_default_traceback(parity: Parity, backend: str) -> None:
    """Go's default traceback hides wrapper frames and unexported runtime frames: with
    the frames marked wrapper left out, the name rule gives what runtime.Stack printed."""
    gs = by_goid(parity.snaps[backend].goroutines)
    problems = []
    for name, goid in parity.stable_goids():
        truth = parity.default[goid]
        kept: list[tuple[str, str, int]] = []
        for pos in _positions(gs[goid], wrappers=False):
            if shown_by_default(pos[0], not kept):
                kept.append(pos)
        problem = compare(kept, truth)
        if problem:
            problems.append(f"{name} {goid}: {problem}")
    assert problems == []


def test_wrapper_frames_are_marked(parity: Parity) -> None:
    """The fixture's wrapper groups go through a compiler-made method wrapper (and the
    `go s.serve()` one through a gowrap function): kept in frames, marked."""
    gs = by_goid(parity.snaps["ptrace"].goroutines)
    wrappers = {
        "ptrWrapper": "main.(*valueWaiter).wait",
        "dictWrapper": "main.(*box[...]).wait",
        "server": "main.startServers.gowrap1",
    }
    for group in parity.report["groups"]:
        if group["name"] not in wrappers:
            continue
        for goid in group["ids"]:
            marked = [f.function for f in gs[goid].frames if f.wrapper]
            assert marked == [wrappers[group["name"]]], (group["name"], goid, gs[goid].frames)
    for g in gs.values():
        for f in g.frames:
            if f.file == "<autogenerated>" or f.function.endswith(".gowrap1"):
                assert f.wrapper, (g.goid, f)


def test_backends_agree_on_every_stack(parity: Parity) -> None:
    """Both backends, one after the other on the same parked goroutines."""
    a = by_goid(parity.snaps["ebpf"].goroutines)
    b = by_goid(parity.snaps["ptrace"].goroutines)
    for _name, goid in parity.stable_goids():
        assert a[goid].frames == b[goid].frames, goid
        assert a[goid].unwound_from == b[goid].unwound_from, goid
