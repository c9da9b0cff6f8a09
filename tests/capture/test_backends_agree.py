"""The eBPF probe and the ptrace walker, reading the same pause, see the same thing."""

from __future__ import annotations

import os

import pytest

from sideeye_tui.capture.snapshot import capture_both_backends
from sideeye_tui.rawdata import RawGoroutine
from tests.go.build import Fixture, start_fixture

from .support import BUILDS, snapfixture_binary, user_goids

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]

SPINNERS = 8
PAUSES = 5

FIELDS = (
    "status",
    "wait_reason",
    "wait_since",
    "gopc",
    "startpc",
    "parent_goid",
    "source",
    "truncated",
    "bad_frame_pointer",
    "interrupted_depth",
    "interrupted_sp_word",
    "locked_to_thread",
)


def assert_agree(fx: Fixture) -> list[RawGoroutine]:
    """One pause walked by both backends; the ptrace walker's goroutines."""
    by_ebpf, by_ptrace = capture_both_backends(fx.pid)
    ebpf = {g.goid: g for g in by_ebpf}
    ptrace = {g.goid: g for g in by_ptrace}
    assert len(ebpf) == len(by_ebpf), "the probe reported a goroutine twice"
    assert len(ptrace) == len(by_ptrace), "the walker reported a goroutine twice"
    assert sorted(user_goids(fx.report) - ptrace.keys()) == []
    assert sorted(ebpf.keys() ^ ptrace.keys()) == []
    pcs_differ = {i: (ebpf[i].pcs, ptrace[i].pcs) for i in ptrace if ebpf[i].pcs != ptrace[i].pcs}
    assert pcs_differ == {}
    for field in FIELDS:
        differ = {
            i: (getattr(ebpf[i], field), getattr(ptrace[i], field))
            for i in ptrace
            if getattr(ebpf[i], field) != getattr(ptrace[i], field)
        }
        assert differ == {}, field
    assert all(g.pcs for g in by_ptrace), "a goroutine without a single pc"
    assert not any(g.bad_frame_pointer for g in by_ptrace)
    return by_ptrace


@pytest.mark.parametrize("build", list(BUILDS))
def test_both_backends_agree(build: str) -> None:
    with start_fixture(snapfixture_binary(build), "-park", "2000") as fx:
        assert_agree(fx)


def test_both_backends_agree_through_async_preemption() -> None:
    """More spinners than Ps: most are runnable, parked from runtime.asyncPreempt2, so
    both walkers step asyncPreempt's frame and keep the word at the interrupted SP."""
    env = dict(os.environ, GOMAXPROCS="2")
    with start_fixture(
        snapfixture_binary("local"), "-park", "100", "-spin", str(SPINNERS), env=env
    ) as fx:
        interrupted = 0
        for _ in range(PAUSES):
            goroutines = assert_agree(fx)
            interrupted += sum(1 for g in goroutines if g.interrupted_depth)
            if interrupted:
                break
        assert interrupted, f"no goroutine was walked through asyncPreempt in {PAUSES} pauses"
