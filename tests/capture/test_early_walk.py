"""The early walk never leaves a stale record: a snapshot shows every goroutine as it is
at the pause, not as the walk before the pause saw it.

movefixture (tests/go/README.md) changes on cue: on SIGUSR1 its movers leave
main.beforeMove for a select in main.afterMove (growing, hence copying, their stacks on
the way), its leavers exit, and newcomers are born; then it writes what its own
runtime.Stack(all=true) shows. The capture's `after_early_walk` hook sends the signal
and waits for that report, so the whole move falls between the early walk and the
pause: everything the early walk recorded of movers and leavers is stale, and the
newcomers did not exist yet. A control capture without a move must show the READY
state, and a stripped build (no symbol table: no early walk) walks inside the pause.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sideeye_tui.bpf import uprobe_links
from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.model import Goroutine, ProcessSnapshot
from tests.go.build import MOVEFIXTURE, build_go, start_fixture

from .support import BUILDS, by_goid

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]

# The early walk needs the symbol table: every build but the stripped one. Its uprobes
# are BPF links where the kernel has them; "+perf" attaches them as perf events, as on
# older kernels (bpf/uprobe_links.py).
EARLY_BUILDS = [name for name, (_, stripped) in BUILDS.items() if not stripped]
PERF = "+perf"
MOVE_CASES = [*EARLY_BUILDS, "local" + PERF]
MOVED_TIMEOUT_S = 20.0


@functools.cache
def movefixture_binary(build: str) -> Path:
    toolchain, stripped = BUILDS[build]
    return build_go(MOVEFIXTURE, toolchain=toolchain, stripped=stripped)


def frame_names(g: Goroutine) -> list[str]:
    return [f.function for f in g.frames]


def is_system(g: Goroutine) -> bool:
    """The runtime's own goroutines, which runtime.NumGoroutine does not count and
    runtime.Stack does not print (runtime.isSystemGoroutine, by start function)."""
    start = g.start_function or ""
    return start.startswith("runtime.") and start != "runtime.main"


def user_goroutines(snap: ProcessSnapshot) -> list[Goroutine]:
    return [g for g in snap.goroutines if not is_system(g)]


def present(snap: ProcessSnapshot, goids: Iterable[int], group: str) -> Iterator[Goroutine]:
    gs = by_goid(snap.goroutines)
    missing = sorted(set(goids) - gs.keys())
    assert missing == [], f"{group} goroutines missing: {missing}"
    for goid in goids:
        yield gs[goid]


@dataclass
class Mover:
    """The after_early_walk hook: sends SIGUSR1 and waits for the move report."""

    pid: int
    path: Path
    calls: int = 0
    report: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def __call__(self) -> None:
        self.calls += 1
        if self.calls > 1:
            self.problems.append("after_early_walk called more than once")
            return
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + MOVED_TIMEOUT_S
        while not self.path.exists():
            if time.monotonic() > deadline:
                self.problems.append(f"no move report after {MOVED_TIMEOUT_S:.0f} s")
                return
            time.sleep(0.005)
        self.report = json.loads(self.path.read_text())


@dataclass
class CallCount:
    """An after_early_walk hook that only counts its calls."""

    calls: int = 0

    def __call__(self) -> None:
        self.calls += 1


@dataclass
class Moved:
    build: str
    ready: dict[str, Any]
    snap: ProcessSnapshot
    mover: Mover

    @property
    def moved(self) -> dict[str, Any]:
        assert self.mover.report is not None, self.mover.problems
        return self.mover.report


@dataclass
class Control:
    build: str
    ready: dict[str, Any]
    snap: ProcessSnapshot
    hook: CallCount


@pytest.fixture(scope="module", params=MOVE_CASES)
def moved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Moved:
    build = request.param.removesuffix(PERF)
    path = tmp_path_factory.mktemp(f"move-{request.param}") / "moved.json"
    with (
        start_fixture(movefixture_binary(build), "-moved", str(path)) as fx,
        pytest.MonkeyPatch.context() as mp,
    ):
        assert fx.report["settled"], "movefixture did not settle: its truth is unreliable"
        if request.param.endswith(PERF):
            mp.setattr(uprobe_links, "supported", lambda: False)
        mover = Mover(fx.pid, path)
        snap = capture_process(fx.pid, "ebpf", after_early_walk=mover)
    return Moved(request.param, fx.report, snap, mover)


@pytest.fixture(scope="module", params=EARLY_BUILDS)
def control(request: pytest.FixtureRequest) -> Control:
    with start_fixture(movefixture_binary(request.param)) as fx:
        assert fx.report["settled"], "movefixture did not settle: its truth is unreliable"
        hook = CallCount()
        snap = capture_process(fx.pid, "ebpf", after_early_walk=hook)
    return Control(request.param, fx.report, snap, hook)


# ---- the move between the early walk and the pause -------------------------------------


def test_move_happened_between_walk_and_pause(moved: Moved) -> None:
    snap = moved.snap
    assert snap.error is None
    assert snap.pid == moved.ready["pid"]
    assert snap.walk == "early"
    assert moved.mover.problems == []
    assert moved.mover.calls == 1
    assert moved.moved["settled"] is True, "the move did not settle: its truth is unreliable"
    assert moved.moved["stay"] == moved.ready["stay"]


def test_stayers_unchanged(moved: Moved) -> None:
    function = moved.moved["functions"]["stay"]
    for g in present(moved.snap, moved.moved["stay"], "stay"):
        assert g.status == "waiting", (g.goid, g.status)
        assert g.wait_reason == "chan receive", (g.goid, g.wait_reason)
        assert function in frame_names(g), (g.goid, frame_names(g))


def test_movers_seen_after_the_move(moved: Moved) -> None:
    functions, reason = moved.moved["functions"], moved.moved["wait_reasons"]["moved"]
    for g in present(moved.snap, moved.moved["move"], "move"):
        names = frame_names(g)
        assert functions["moved"] in names, (g.goid, names)
        assert functions["move"] not in names, (g.goid, names)
        assert g.status == "waiting", (g.goid, g.status)
        assert g.wait_reason == reason, (g.goid, g.wait_reason)


def test_leavers_gone(moved: Moved) -> None:
    goids = {g.goid for g in moved.snap.goroutines}
    assert sorted(goids & set(moved.moved["exit"])) == []
    leaver = moved.moved["functions"]["exit"]
    assert [g.goid for g in moved.snap.goroutines if leaver in frame_names(g)] == []


def test_newcomers_present(moved: Moved) -> None:
    spawn = moved.moved["spawn"]
    assert spawn, "the move started no newcomer"
    function = moved.moved["functions"]["spawn"]
    for g in present(moved.snap, spawn, "spawn"):
        assert function in frame_names(g), (g.goid, frame_names(g))
        assert g.status == "waiting", (g.goid, g.status)
        assert g.wait_reason == moved.moved["wait_reasons"]["spawn"], (g.goid, g.wait_reason)


def test_goroutines_exactly_those_at_the_pause(moved: Moved) -> None:
    """Every goroutine that runtime.NumGoroutine counts, once, and no other: the
    groups after the move and the two helpers (main, os/signal.loop)."""
    m = moved.moved
    goids = [g.goid for g in moved.snap.goroutines]
    assert len(goids) == len(set(goids)), "a goroutine was captured twice"
    users = {g.goid for g in user_goroutines(moved.snap)}
    expected = {*m["stay"], *m["move"], *m["spawn"], *(h["goid"] for h in m["helpers"])}
    assert sorted(users - expected) == [], "goroutines the runtime does not have"
    assert sorted(expected - users) == [], "goroutines the runtime has"
    assert len(users) == m["num_goroutine"]


# ---- control: the same capture without a move ----------------------------------------


def test_control_shows_the_ready_state(control: Control) -> None:
    snap, r = control.snap, control.ready
    assert snap.error is None
    assert snap.walk == "early"
    assert control.hook.calls == 1
    for group in ("stay", "move", "exit"):
        function = r["functions"][group]
        for g in present(snap, r[group], group):
            names = frame_names(g)
            assert function in names, (group, g.goid, names)
            assert g.status == "waiting", (group, g.goid, g.status)
            assert g.wait_reason == r["wait_reasons"][group], (group, g.goid, g.wait_reason)
    after = (r["functions"]["moved"], r["functions"]["spawn"])
    assert [g.goid for g in snap.goroutines if set(after) & set(frame_names(g))] == []
    users = {g.goid for g in user_goroutines(snap)}
    expected = {*r["stay"], *r["move"], *r["exit"], *(h["goid"] for h in r["helpers"])}
    assert users == expected
    assert len(users) == r["num_goroutine"]


# ---- stripped: no symbol table, no early walk ---------------------------------------


def test_stripped_walks_inside_the_pause() -> None:
    with start_fixture(movefixture_binary("local-stripped")) as fx:
        r = fx.report
        assert r["settled"], "movefixture did not settle: its truth is unreliable"
        hook = CallCount()
        snap = capture_process(fx.pid, "ebpf", after_early_walk=hook)
    assert snap.error is None
    assert snap.walk == "paused"
    assert hook.calls == 0, "after_early_walk called without an early walk"
    for g in present(snap, r["stay"], "stay"):
        assert g.wait_reason == "chan receive", (g.goid, g.wait_reason)
        assert r["functions"]["stay"] in frame_names(g), (g.goid, frame_names(g))
