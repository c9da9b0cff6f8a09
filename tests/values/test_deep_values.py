"""Every frame of a spec'd function gets its values, however many frames there are.

deepfixture (tests/go/deepfixture/main.go) parks goroutines -depth frames deep in a
recursive `main.deep(n, id, m, ch, s, p)`, and reports for each goroutine its goid,
the n of each frame (innermost first: 0, 1, ...) and the values of id, m (a map), ch (a
channel), s and p. Issue 12 item 5: 20,000 goroutines x 11 frames overflowed the
probe's value queue (203,616 frames without values); so did about 1,000 frames with
6 expressions. On SIGUSR1 the fixture changes every goroutine's heap values without
the deep goroutines running, and reports them again: a capture whose early walk comes
before that change must show the values at the pause.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.model import FrameCapture, ProcessSnapshot
from tests.capture.support import BACKENDS
from tests.go.build import GO_DIR, build_go, start_fixture

pytestmark = [pytest.mark.root, pytest.mark.go]

DEEPFIXTURE = GO_DIR / "deepfixture"
FUNCTION = "main.deep"
RICH = ["n", "id", "m", "ch", "s", "p"]  # 6 expressions, a map and a channel among them
MOVED_TIMEOUT_S = 30.0


@functools.cache
def deepfixture_binary() -> Path:
    return build_go(DEEPFIXTURE)


def deep_frames(proc: ProcessSnapshot) -> dict[int, list[FrameCapture]]:
    """main.deep's captured frames by goid, innermost first."""
    out: dict[int, list[FrameCapture]] = defaultdict(list)
    for c in proc.captures:
        if c.function == FUNCTION:
            out[c.goid].append(c)
    for frames in out.values():
        frames.sort(key=lambda c: c.depth)
    return out


def caveats(proc: ProcessSnapshot) -> str:
    """What the capture says about itself: its error and, where the model has them
    apart (ProcessSnapshot.notes), its caveats."""
    notes = getattr(proc, "notes", None) or ()
    return "; ".join([proc.error or "", *notes])


def no_lost_frames(proc: ProcessSnapshot) -> None:
    """Caveats there may be (more than one trigger), never a frame without values."""
    assert "not captured" not in caveats(proc), caveats(proc)
    assert "queue full" not in caveats(proc), caveats(proc)


def check_ns(proc: ProcessSnapshot, report: dict[str, Any]) -> int:
    """Each goroutine has report["depth"] frames of main.deep, their n as reported."""
    frames = deep_frames(proc)
    checked = 0
    for g in report["goroutines"]:
        got = frames.get(g["goid"], [])
        ns = [next(v.value for v in c.values if v.expression == "n") for c in got]
        assert ns == g["ns"], f"goroutine {g['goid']}: n by depth {ns}, want {g['ns']}"
        checked += len(ns)
    return checked


def check_rich(proc: ProcessSnapshot, report: dict[str, Any]) -> int:
    """Every frame of every goroutine: n as reported, the other five as reported."""
    frames = deep_frames(proc)
    checked = 0
    for g in report["goroutines"]:
        got = frames.get(g["goid"], [])
        assert len(got) == len(g["ns"]), f"goroutine {g['goid']}: {len(got)} frames of deep"
        for c, n in zip(got, g["ns"], strict=True):
            values = {v.expression: v for v in c.values}
            for name in RICH:
                assert values[name].unavailable is None, (name, values[name].unavailable)
            assert values["n"].value == n
            for name, want in g["values"].items():
                assert values[name].value == want, (
                    f"goroutine {g['goid']} n={n} {name}: got {values[name].value!r} want {want!r}"
                )
            checked += 1
    return checked


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_n_in_every_frame_of_20000_goroutines_11_deep(backend: str) -> None:
    with start_fixture(
        deepfixture_binary(), "-goroutines", "20000", "-depth", "11", timeout=180
    ) as fx:
        assert fx.report["settled"], "deepfixture did not settle: its truth is unreliable"
        proc = capture_process(fx.pid, backend, {FUNCTION: ["n"]})
        assert proc.pause_ns is not None, proc.error
        no_lost_frames(proc)
        assert check_ns(proc, fx.report) == 220_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_six_expressions_with_a_map_and_a_channel_in_10000_frames(backend: str) -> None:
    """More frames than the probe's old queue held for one walking thread (8,192)."""
    with start_fixture(deepfixture_binary(), "-goroutines", "1000", "-depth", "10") as fx:
        assert fx.report["settled"]
        proc = capture_process(fx.pid, backend, {FUNCTION: RICH})
        assert proc.pause_ns is not None, proc.error
        assert proc.spec_errors == ()
        no_lost_frames(proc)
        assert check_rich(proc, fx.report) == 10_000


class HeapChange:
    """The after_early_walk hook: SIGUSR1, then the fixture's report of the new values."""

    def __init__(self, pid: int, path: Path) -> None:
        self.pid, self.path = pid, path
        self.report: dict[str, Any] | None = None

    def __call__(self) -> None:
        assert self.report is None, "after_early_walk called twice"
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + MOVED_TIMEOUT_S
        while not self.path.exists():
            assert time.monotonic() < deadline, "no report of the changed values"
            time.sleep(0.005)
        self.report = json.loads(self.path.read_text())


@pytest.mark.bpf
def test_values_are_those_at_the_pause_after_an_early_walk(tmp_path: Path) -> None:
    """The early walk finds the frames; the heap changes (no deep goroutine runs); the
    values captured are the changed ones, and the snapshot did walk early."""
    moved = tmp_path / "moved.json"
    with start_fixture(
        deepfixture_binary(), "-goroutines", "300", "-depth", "4", "-moved", str(moved)
    ) as fx:
        assert fx.report["settled"]
        hook = HeapChange(fx.pid, moved)
        proc = capture_process(fx.pid, "ebpf", {FUNCTION: RICH}, after_early_walk=hook)
        assert hook.report is not None, "the capture did not walk early"
        assert proc.walk == "early", proc.error
        no_lost_frames(proc)
        before = {g["goid"]: g["values"] for g in fx.report["goroutines"]}
        after = {g["goid"]: g["values"] for g in hook.report["goroutines"]}
        assert all(before[goid] != after[goid] for goid in after), "the change changed nothing"
        assert check_rich(proc, hook.report) == 1200


@pytest.mark.bpf
def test_a_goroutine_that_ran_since_the_early_walk_has_one_frame_with_the_pause_s_value(
    tmp_path: Path,
) -> None:
    """Loopers wake between the early walk and the pause, add 1000 to st.N, move their
    stacks and wait again at the same call: the frame the early walk queued (same pc,
    same depth, the old stack's CFA) must give way to the one the pause walked."""
    moved = tmp_path / "moved.json"
    with start_fixture(
        deepfixture_binary(),
        *("-goroutines", "10", "-depth", "2", "-loopers", "50", "-moved", str(moved)),
    ) as fx:
        assert fx.report["settled"]
        hook = HeapChange(fx.pid, moved)
        proc = capture_process(fx.pid, "ebpf", {"main.loop": ["st.N"]}, after_early_walk=hook)
        assert hook.report is not None, "the capture did not walk early"
        assert hook.report["settled"], "the loopers did not wait again"
    assert proc.walk == "early", proc.error
    want = {lp["goid"]: [lp["n"]] for lp in hook.report["loopers"]}
    assert all(n > 1000 for (n,) in want.values())
    got: dict[int, list[Any]] = defaultdict(list)
    for c in proc.captures:
        if c.function == "main.loop":
            got[c.goid].extend(v.value for v in c.values)
    assert got == want


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frame_with_more_copies_than_the_queue_holds_at_once(backend: str) -> None:
    """main.wide(a []string, p *bag) captured as a, p.S and p.T, 32 strings each: 102
    copies in one frame, never more than 33 waiting at once. The per-frame queue is a
    ring: all of them are copied (it held 64 copies per frame in all: the last
    strings were cut)."""
    with start_fixture(deepfixture_binary(), "-goroutines", "1", "-depth", "1", "-wide") as fx:
        assert fx.report["settled"]
        wide = fx.report["wide"]
        proc = capture_process(fx.pid, backend, {"main.wide": ["a", "p.S", "p.T"]})
        assert proc.pause_ns is not None, proc.error
        assert "item queue" not in caveats(proc), caveats(proc)
    frames = [c for c in proc.captures if c.goid == wide["goid"] and c.function == "main.wide"]
    assert len(frames) == 1
    values = {v.expression: v for v in frames[0].values}
    p = wide["values"]["p"]
    for name, want in (("a", wide["values"]["a"]), ("p.S", p["S"]), ("p.T", p["T"])):
        assert values[name].unavailable is None, values[name].unavailable
        assert values[name].value == want, f"{name}: {values[name].value!r:.400}"


def _has_cut(v: Any, why: str) -> bool:
    if isinstance(v, dict):
        return v.get("$cut") == why or any(_has_cut(x, why) for x in v.values())
    if isinstance(v, list):
        return any(_has_cut(x, why) for x in v)
    return False


@pytest.mark.parametrize("backend", BACKENDS)
def test_copies_the_full_queue_turns_away_are_marked_and_reported(backend: str) -> None:
    """p: 96 string contents (p.S, p.T, p.U) queued by one level of the chase, more
    than the 64 that may wait: those left out say so, and the process has a caveat."""
    with start_fixture(deepfixture_binary(), "-goroutines", "1", "-depth", "1", "-wide") as fx:
        wide = fx.report["wide"]
        proc = capture_process(fx.pid, backend, {"main.wide": ["p"]})
        assert proc.pause_ns is not None, proc.error
    assert "item queue full" in caveats(proc), caveats(proc)
    (frame,) = [c for c in proc.captures if c.goid == wide["goid"]]
    assert any(_has_cut(v.value, "item queue full") for v in frame.values), frame.values
