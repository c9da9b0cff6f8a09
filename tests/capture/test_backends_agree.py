"""The eBPF probe and the ptrace walker, reading the same pause, see the same thing."""

from __future__ import annotations

import pytest

from sideeye_tui.capture.snapshot import capture_both_backends
from tests.go.build import start_fixture

from .support import BUILDS, snapfixture_binary, user_goids

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]

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
)


@pytest.mark.parametrize("build", list(BUILDS))
def test_both_backends_agree(build: str) -> None:
    with start_fixture(snapfixture_binary(build), "-park", "2000") as fx:
        by_ebpf, by_ptrace = capture_both_backends(fx.pid)
        ebpf = {g.goid: g for g in by_ebpf}
        ptrace = {g.goid: g for g in by_ptrace}
        assert len(ebpf) == len(by_ebpf), "the probe reported a goroutine twice"
        assert len(ptrace) == len(by_ptrace), "the walker reported a goroutine twice"
        assert sorted(user_goids(fx.report) - ptrace.keys()) == []
        assert sorted(ebpf.keys() ^ ptrace.keys()) == []
        pcs_differ = {
            i: (ebpf[i].pcs, ptrace[i].pcs) for i in ptrace if ebpf[i].pcs != ptrace[i].pcs
        }
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
