"""Several processes in one snapshot: each paused on its own, each complete."""

from __future__ import annotations

import contextlib

import pytest

from sideeye_tui.capture.snapshot import take_snapshot
from tests.go.build import start_fixture

from .support import BACKENDS, by_goid, snapfixture_binary

pytestmark = [pytest.mark.root, pytest.mark.go, pytest.mark.slow]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_two_toolchains(backend: str) -> None:
    with contextlib.ExitStack() as stack:
        fixtures = [
            stack.enter_context(start_fixture(snapfixture_binary(b), "-park", "300"))
            for b in ("local", "go1.22.12")
        ]
        pids = [fx.pid for fx in fixtures]
        snap = take_snapshot(pids, backend)
        assert [p.pid for p in snap.processes] == pids
        for fx, proc in zip(fixtures, snap.processes, strict=True):
            assert proc.error is None, proc.error
            assert proc.backend == backend
            assert proc.go_version == fx.report["go_version"]
            assert proc.pause_ns is not None and 0 < proc.pause_ns < 2_000_000_000
            gs = by_goid(proc.goroutines)
            for group in fx.report["groups"]:
                for goid in group["ids"]:
                    assert goid in gs, (proc.pid, group["name"], goid)
                    assert gs[goid].status in group["statuses"], (proc.pid, group["name"], goid)
                    if group["status"] == "waiting":
                        assert gs[goid].wait_reason == group["wait_reason"]
        # different toolchains: the wait reasons of sync.WaitGroup.Wait differ, and
        # each process got its own
        reasons = [
            {
                g.wait_reason
                for g in p.goroutines
                if any(f.function == "main.wgWaiter" for f in g.frames)
            }
            for p in snap.processes
        ]
        expected = [
            {g["wait_reason"] for g in fx.report["groups"] if g["name"] == "wgWaiter"}
            for fx in fixtures
        ]
        assert expected == [{"sync.WaitGroup.Wait"}, {"semacquire"}]  # Go 1.24 renamed it
        assert reasons == expected
