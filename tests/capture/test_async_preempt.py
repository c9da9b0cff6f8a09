"""Goroutines that async preemption interrupted keep every frame of their stack.

snapfixture runs more spinners than Ps (GOMAXPROCS=2): sysmon preempts each after
10 ms of running, so at any instant most of them are runnable, parked from
runtime.asyncPreempt2, most often interrupted in their frameless leaf main.spinStep.
There the frame-pointer chain goes asyncPreempt -> spinStep -> spinner's caller and
skips main.spinner (the flaky CI failure of test_expected_functions_in_order); the
snapshot must show it, as the runtime's own traceback (the fixture's runtime_view) does.
"""

from __future__ import annotations

import os

import pytest

from sideeye_tui.capture.snapshot import capture_process
from sideeye_tui.model import Frame
from tests.go.build import SNAPFIXTURE, start_fixture

from .support import (
    BACKENDS,
    BUILDS,
    by_goid,
    hidden_by_runtime,
    report_groups,
    snapfixture_binary,
)

pytestmark = [pytest.mark.root, pytest.mark.go, pytest.mark.slow]

SPINNERS = 8
SNAPSHOTS = 10  # at most: each usually catches several spinners in spinStep
ENOUGH = 3  # spinners caught in spinStep through asyncPreempt

IN_SPIN_STEP = ["main.spinStep", "main.spinner", "main.startSpinners.func1"]
IN_SPINNER = ["main.spinner", "main.startSpinners.func1"]


def _source_lines() -> tuple[range, int]:
    """The lines of spinStep's body, and the line of spinner's call to it."""
    lines = (SNAPFIXTURE / "goroutines.go").read_text().splitlines()
    start = next(i for i, s in enumerate(lines, 1) if s.startswith("func spinStep("))
    end = next(i for i, s in enumerate(lines, 1) if i > start and s == "}")
    call = next(i for i, s in enumerate(lines, 1) if s.strip() == "x = spinStep(x)")
    return range(start, end + 1), call


def _shown(frames: tuple[Frame, ...]) -> list[str]:
    """The frames runtime.Stack prints."""
    return [f.function for f in frames if not hidden_by_runtime(f)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("build", list(BUILDS))
def test_preempted_spinners_keep_their_caller(build: str, backend: str) -> None:
    spin_step_lines, call_line = _source_lines()
    env = dict(os.environ, GOMAXPROCS="2")
    binary = snapfixture_binary(build)
    with start_fixture(binary, "-park", "100", "-spin", str(SPINNERS), env=env) as fx:
        group = report_groups(fx.report)["spinner"]
        # The runtime's truth: a spinner stops in spinStep (with spinner as its caller)
        # or in spinner itself.
        for view in group["runtime_view"]:
            assert view["frames"] in (IN_SPIN_STEP, IN_SPINNER), view
        caught = 0
        for _ in range(SNAPSHOTS):
            snap = capture_process(fx.pid, backend)
            assert snap.error is None
            goroutines = by_goid(snap.goroutines)
            for goid in group["ids"]:
                g = goroutines[goid]
                names = [f.function for f in g.frames]
                what = (goid, g.status, g.unwound_from, names)
                assert g.status in group["statuses"], what
                assert _shown(g.frames) in (IN_SPIN_STEP, IN_SPINNER), what
                if "runtime.asyncPreempt" not in names:
                    continue
                i = names.index("runtime.asyncPreempt")
                interrupted = g.frames[i + 1]
                if interrupted.function != "main.spinStep":
                    assert names[i + 1 :] == [*IN_SPINNER, "runtime.goexit"], what
                    continue
                caught += 1
                assert names[i + 1 :] == [*IN_SPIN_STEP, "runtime.goexit"], what
                # at the interrupted instruction itself, and spinner at its call
                assert interrupted.line in spin_step_lines, (what, interrupted)
                assert g.frames[i + 2].line == call_line, (what, g.frames[i + 2])
            if caught >= ENOUGH:
                break
        assert caught, f"no spinner was caught in spinStep by asyncPreempt in {SNAPSHOTS} snapshots"
