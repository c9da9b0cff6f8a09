"""With a spec, the early walk finds the spec'd frames and the pause reads their values:
a goroutine that moved between the two has the frames of where it is at the pause,
never those the early walk saw.

movefixture (tests/go/README.md) moves on SIGUSR1: movers leave main.beforeMove for
main.afterMove (their stacks copied on the way), leavers exit, newcomers are born in
main.newcomer, stayers stay in main.stayer. The capture's after_early_walk hook sends
the signal and waits for the fixture's report that the move is done.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sideeye_tui.capture.snapshot import capture_process
from tests.capture.test_early_walk import Mover
from tests.go.build import MOVEFIXTURE, build_go, start_fixture

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go]

SPEC = {
    "main.stayer": ["ch"],
    "main.beforeMove": ["release"],
    "main.afterMove": ["a", "b"],
    "main.leaver": ["release"],
    "main.newcomer": ["ch"],
}


def test_spec_d_frames_are_those_at_the_pause(tmp_path: Path) -> None:
    path = tmp_path / "moved.json"
    with start_fixture(build_go(MOVEFIXTURE), "-moved", str(path)) as fx:
        assert fx.report["settled"]
        mover = Mover(fx.pid, path)
        proc = capture_process(fx.pid, "ebpf", SPEC, after_early_walk=mover)
        assert mover.calls == 1, "the capture did not walk early"
        assert mover.report is not None, mover.problems
        moved = mover.report
    assert proc.walk == "early", proc.error
    frames = {(g.goid, d): f.function for g in proc.goroutines for d, f in enumerate(g.frames)}
    for c in proc.captures:  # every captured frame is a frame of the snapshot's stacks
        assert frames.get((c.goid, c.depth)) == c.function, (c.goid, c.depth, c.function)
    by_function = Counter(c.function for c in proc.captures)
    goids = {f: {c.goid for c in proc.captures if c.function == f} for f in SPEC}
    assert by_function["main.beforeMove"] == 0, "a mover's frame from before the move"
    assert by_function["main.leaver"] == 0, "a frame of a goroutine that exited"
    assert goids["main.afterMove"] == set(moved["move"])
    assert goids["main.newcomer"] == set(moved["spawn"])
    assert goids["main.stayer"] == set(moved["stay"])
    for f in ("main.afterMove", "main.newcomer", "main.stayer"):
        assert by_function[f] == len(goids[f]), f"{f}: a goroutine's frame captured twice"
