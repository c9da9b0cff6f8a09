"""A snapshot of snapfixture tells what the fixture itself reported, for every toolchain
(and a stripped build) and both backends.

The fixture knows its own truth (tests/go/README.md): the ids of each group of
goroutines, their status and wait reason, the functions on their stacks, their labels,
and the runtime's own view of them from runtime.Stack(all=true).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sideeye_tui.capture.snapshot import MAX_DEPTH, capture_process
from sideeye_tui.model import Goroutine, ProcessSnapshot
from tests.go.build import Fixture, start_fixture

from .support import (
    BACKENDS,
    BUILDS,
    align_with_runtime_view,
    by_goid,
    is_subsequence,
    report_groups,
    snapfixture_binary,
    user_goids,
)

pytestmark = [pytest.mark.root, pytest.mark.go, pytest.mark.slow]

PARK = "500"


@dataclass
class Target:
    build: str
    fixture: Fixture
    started: float  # time.monotonic() just before the fixture started

    @property
    def report(self) -> dict[str, Any]:
        return self.fixture.report


@dataclass
class Captured:
    target: Target
    backend: str
    snap: ProcessSnapshot
    elapsed: float  # seconds from the fixture's start to the end of the capture

    @property
    def report(self) -> dict[str, Any]:
        return self.target.report

    @property
    def goroutines(self) -> dict[int, Goroutine]:
        return by_goid(self.snap.goroutines)

    def group_goroutines(self, group: dict[str, Any]) -> Iterator[tuple[int, Goroutine]]:
        gs = self.goroutines
        for goid in group["ids"]:
            assert goid in gs, f"{group['name']} goroutine {goid} missing"
            yield goid, gs[goid]


@pytest.fixture(scope="module", params=list(BUILDS))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    binary = snapfixture_binary(request.param)
    started = time.monotonic()
    with start_fixture(binary, "-park", PARK) as fx:
        assert fx.report["settled"], "snapfixture did not settle: its truth is unreliable"
        yield Target(request.param, fx, started)


@pytest.fixture(scope="module", params=BACKENDS)
def captured(request: pytest.FixtureRequest, target: Target) -> Captured:
    snap = capture_process(target.fixture.pid, request.param)
    return Captured(target, request.param, snap, time.monotonic() - target.started)


def test_snapshot_has_no_error(captured: Captured) -> None:
    snap, report = captured.snap, captured.report
    assert snap.error is None
    assert snap.pid == report["pid"]
    assert snap.backend == captured.backend
    assert snap.go_version == report["go_version"]
    assert snap.main_module == "example.com/snapfixture"
    assert snap.exe == report["executable"]
    assert snap.threads >= 1
    assert snap.pause_ns is not None and 0 < snap.pause_ns < 2_000_000_000


def test_every_reported_goroutine_is_present(captured: Captured) -> None:
    report = captured.report
    goids = [g.goid for g in captured.snap.goroutines]
    assert len(goids) == len(set(goids)), "a goroutine was captured twice"
    expected = user_goids(report)
    assert len(expected) == report["expected_goroutines"]
    assert sorted(expected - set(goids)) == []
    # NumGoroutine counts every user goroutine; system goroutines only add to ours.
    assert len(goids) >= report["num_goroutine"]


def test_status_matches(captured: Captured) -> None:
    for group in captured.report["groups"]:
        for goid, g in captured.group_goroutines(group):
            assert g.status in group["statuses"], (group["name"], goid, g.status)


def test_wait_reason_is_the_runtimes_own(captured: Captured) -> None:
    for group in captured.report["groups"]:
        header_states: Counter[str] = Counter()
        for goid, g in captured.group_goroutines(group):
            if group["status"] == "waiting":
                assert g.wait_reason == group["wait_reason"], (group["name"], goid)
                header_states[g.wait_reason] += 1
            else:
                assert g.wait_reason is None, (group["name"], goid, g.wait_reason)
                header_states[g.status] += 1
        if group["status"] in ("waiting", "syscall"):
            # runtime.Stack's headers ("[chan receive]", "[syscall]") over all the ids
            assert dict(header_states) == group["runtime_states"], group["name"]
            for view in group["runtime_view"]:
                g = captured.goroutines[view["id"]]
                assert (g.wait_reason or g.status) == view["state"], view["header"]


def test_expected_functions_in_order(captured: Captured) -> None:
    for group in captured.report["groups"]:
        for goid, g in captured.group_goroutines(group):
            names = [f.function for f in g.frames]
            assert is_subsequence(group["functions"], names), (group["name"], goid, names)


def test_stacks_match_the_runtimes_traceback(captured: Captured) -> None:
    """Frame for frame, except the frames runtime.Stack hides (unexported runtime
    functions, frames marked wrapper). test_traceback_parity.py compares positions too."""
    problems = []
    for group in captured.report["groups"]:
        if group["status"] == "running":
            continue  # a spinner's innermost frame changes from instant to instant
        for view in group["runtime_view"]:
            if view["elided"]:
                continue  # checked by test_recursion_depth
            g = captured.goroutines[view["id"]]
            for p in align_with_runtime_view(g.frames, view["frames"], g.unwound_from == "thread"):
                problems.append(f"{group['name']} {view['id']}: {p}")
    assert problems == []


def test_recursion_depth(captured: Captured) -> None:
    report = captured.report
    depth = report["recursion_depth"]
    assert depth < MAX_DEPTH - 16, "this test wants a stack that fits (see the truncated one)"
    for goid, g in captured.group_goroutines(report_groups(report)["recurse"]):
        names = [f.function for f in g.frames]
        assert not g.truncated, goid
        assert names.count("main.recurse") == depth, goid
        assert names[-2:] == ["main.startRecurse.func1", "runtime.goexit"], goid


def test_inlined_frames(captured: Captured) -> None:
    group = report_groups(captured.report)["inlined"]
    assert group["inlined"] == ["main.inlinedHelper"]
    for goid, g in captured.group_goroutines(group):
        frames = {f.function: (i, f) for i, f in enumerate(g.frames)}
        for name in group["functions"]:
            assert name in frames, (goid, name)
            i, f = frames[name]
            assert f.inlined == (name in group["inlined"]), (goid, name, f)
            if f.inlined:
                # inlined into the frame below it: same pc, a physical frame
                caller = g.frames[i + 1]
                assert caller.function == "main.inlinedOuter" and not caller.inlined
                assert caller.pc == f.pc


def test_source_positions(captured: Captured) -> None:
    """main.* frames point into the fixture's sources (pclntab, even when stripped),
    but for the `<autogenerated>` wrappers (ptrWrapper's), marked wrapper."""
    for group in captured.report["groups"]:
        for goid, g in captured.group_goroutines(group):
            for f in g.frames:
                if f.file == "<autogenerated>":  # a method wrapper the compiler made
                    assert f.wrapper and f.line == 1, (goid, f)
                elif f.function.startswith("main."):
                    assert re.search(r"snapfixture/(main|goroutines)\.go$", f.file), (goid, f)
                    assert f.line > 0, (goid, f)
                assert f.pc > 0, (goid, f)


def test_labels(captured: Captured) -> None:
    report = captured.report
    labeled = report_groups(report)["labeled"]
    assert len(labeled["labels"]) == labeled["count"] > 0
    for goid, g in captured.group_goroutines(labeled):
        assert dict(g.labels) == labeled["labels"][str(goid)], goid
        assert len(g.labels) == len(dict(g.labels)), "a label key appears twice"
    others = user_goids(report) - set(labeled["ids"])
    assert {
        goid: captured.goroutines[goid].labels
        for goid in others
        if captured.goroutines[goid].labels
    } == {}


_FUNC_LITERAL = re.compile(r"\.func\d+(\.\d+)*$")


def test_created_by_and_start_function(captured: Captured) -> None:
    """The runtime records who ran the go statement (gopc), what the goroutine started
    in (startpc) and its parent (Go 1.21+). snapfixture starts every group from main."""
    groups = report_groups(captured.report)
    for group in groups.values():
        for goid, g in captured.group_goroutines(group):
            what = (group["name"], goid, g.created_by, g.start_function, g.created_by_goid)
            if group["name"] == "main":
                assert g.start_function == "runtime.main", what
                assert g.created_by_goid is None, what
                continue
            assert g.created_by_goid == 1, what
            if group["name"] == "server":  # `go s.serve()`: through a compiler wrapper
                assert g.created_by == "main.startServers", what
                assert g.start_function in ("main.startServers.gowrap1", "main.(*server).serve")
                continue
            outermost = group["functions"][-1]  # a func literal of main.startX
            assert _FUNC_LITERAL.search(outermost), outermost
            assert g.start_function == outermost, what
            assert g.created_by == _FUNC_LITERAL.sub("", outermost), what
            # the start function is the outermost frame below goexit
            assert [f.function for f in g.frames][-2] == outermost, what


def _check_running_unwound_from(g: Goroutine, what: object) -> None:
    """A running goroutine is unwound from its thread's registers, unless its M is on
    the system stack (the registers are g0's): then from g.sched, which systemstack
    saved in systemstack_switch."""
    if g.unwound_from == "sched":
        assert g.frames and g.frames[0].function == "runtime.systemstack_switch", (
            what,
            [f.function for f in g.frames[:3]],
        )
    else:
        assert g.unwound_from == "thread", what


def test_unwound_from(captured: Captured) -> None:
    for group in captured.report["groups"]:
        for goid, g in captured.group_goroutines(group):
            what = (group["name"], goid, g.status, g.unwound_from)
            if g.status == "running":
                _check_running_unwound_from(g, what)
            elif g.status == "syscall":
                assert g.unwound_from == "syscall", what  # as Go does: g.syscallpc/sp
            else:
                assert g.unwound_from == "sched", what
    for g in captured.snap.goroutines:  # system goroutines as well
        if g.status == "running":
            _check_running_unwound_from(g, (g.goid, g.unwound_from, g.frames[:3]))


def test_stacks_end_with_goexit(captured: Captured) -> None:
    for group in captured.report["groups"]:
        if group["name"] == "recurse":
            continue  # test_recursion_depth
        for goid, g in captured.group_goroutines(group):
            assert not g.truncated, goid
            assert g.frames and g.frames[-1].function == "runtime.goexit", (group["name"], goid)
    # every parked goroutine, system ones included
    for g in captured.snap.goroutines:
        if g.status == "waiting":
            assert g.frames and g.frames[-1].function == "runtime.goexit", (g.goid, g.frames)


def test_wait_seconds_are_plausible(captured: Captured) -> None:
    """A parked goroutine's age, when the runtime has stamped it, is no older than the
    fixture; goroutines that are not blocked have none.

    (snapfixture's single forced GC does not stamp g.waitsince: the runtime stamps with
    work.tstart, which is only set at the first GC's mark termination, so it takes a
    second GC. test_wait_seconds_after_several_gcs makes the runtime stamp them.)"""
    for g in captured.snap.goroutines:
        if g.status in ("waiting", "syscall"):
            if g.wait_seconds is not None:
                assert 0 <= g.wait_seconds <= captured.elapsed + 0.5, (g.goid, g.wait_seconds)
        else:
            assert g.wait_seconds is None, (g.goid, g.status, g.wait_seconds)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wait_seconds_after_several_gcs(backend: str) -> None:
    """With GOGC=1 the fixture's start-up allocations run several GCs, and the ones after
    the first stamp g.waitsince of every goroutine then parked."""
    env = dict(os.environ, GOGC="1")
    started = time.monotonic()
    with start_fixture(snapfixture_binary("local"), "-park", PARK, env=env) as fx:
        time.sleep(0.5)  # let a GC triggered by the report's own allocations finish
        snap = capture_process(fx.pid, backend)
        elapsed = time.monotonic() - started
        assert snap.error is None
        gs = by_goid(snap.goroutines)
        aged = {}
        for group in fx.report["groups"]:
            if group["status"] == "waiting":
                aged.update({i: gs[i].wait_seconds for i in group["ids"]})
        stamped = {i: s for i, s in aged.items() if s is not None}
        assert stamped, "no parked goroutine has an age after several GCs"
        assert all(0 < s <= elapsed for s in stamped.values()), stamped


# ---- a stack deeper than the capture limit ------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_stack_deeper_than_limit_is_truncated(backend: str) -> None:
    depth = MAX_DEPTH + 500
    with start_fixture(snapfixture_binary("local"), "-park", "50", "-depth", str(depth)) as fx:
        snap = capture_process(fx.pid, backend)
        assert snap.error is None
        gs = by_goid(snap.goroutines)
        assert sorted(user_goids(fx.report) - gs.keys()) == []
        for goid in report_groups(fx.report)["recurse"]["ids"]:
            g = gs[goid]
            names = [f.function for f in g.frames]
            assert g.truncated, goid
            assert names[0] == "runtime.gopark"
            # the limit counts physical frames: a few runtime frames, then main.recurse
            assert len(g.frames) == MAX_DEPTH
            assert MAX_DEPTH - 8 <= names.count("main.recurse") < depth
            assert names[-1] == "main.recurse"  # cut before reaching goexit
        for goid in report_groups(fx.report)["parkedRecv"]["ids"]:
            assert not gs[goid].truncated
