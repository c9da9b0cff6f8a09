"""`locked to thread`: goroutines.locked_to_thread against Go's own goroutine header.

parkfixture (tests/go/README.md) parks goroutines in one select, some after
runtime.LockOSThread and some not, and reports the header the runtime prints for each
(`select, locked to thread` or `select`): on every toolchain, a stripped build, and
both backends, the snapshot says the same. The backends-agree test compares the field
between the probe and the ptrace walker on one pause.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from sideeye_tui.capture.snapshot import capture_process
from tests.go.build import PARKFIXTURE, build_go, start_fixture

from .support import BACKENDS, BUILDS

pytestmark = [pytest.mark.root, pytest.mark.go]

LOCKED = 3
UNLOCKED = 3


@functools.cache
def parkfixture(build: str) -> Path:
    toolchain, stripped = BUILDS[build]
    return build_go(PARKFIXTURE, toolchain=toolchain, stripped=stripped)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("build", list(BUILDS))
def test_locked_to_thread_as_go_prints_it(build: str, backend: str) -> None:
    args = ("-locked", str(LOCKED), "-unlocked", str(UNLOCKED), "-deep", "5", "-lifetime", "2m")
    with start_fixture(parkfixture(build), *args) as fx:
        snap = capture_process(fx.pid, backend)
    report = fx.report
    assert report["settled"]
    assert snap.error is None and snap.notes == ()
    headers = {int(goid): state for goid, state in report["headers"].items()}
    # The truth is Go's: each goroutine's header, as the runtime printed it.
    assert sorted(g for g, s in headers.items() if s == "select, locked to thread") == sorted(
        report["locked"]
    )
    assert sorted(g for g, s in headers.items() if s == "select") == sorted(report["unlocked"])
    by_goid = {g.goid: g for g in snap.goroutines}
    seen = {goid: by_goid[goid].locked_to_thread for goid in headers}
    assert seen == {goid: "locked to thread" in state for goid, state in headers.items()}
    # No goroutine outside the locked group is locked (main unlocked itself after init).
    assert {g.goid for g in snap.goroutines if g.locked_to_thread} == set(report["locked"])
    assert {by_goid[g].wait_reason for g in headers} == {"select"}
