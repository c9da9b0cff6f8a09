"""The probe's uprobes, attached as BPF links (kernels with them) or as perf events.

The truth is the target's own code: a uprobe is an int3 (0xcc) written over the first
byte of an instruction in the process's copy of the text page. While the probe is
attached those bytes are 0xcc; after its removal they are the executable file's again
(the target is never changed). A link names its process: another process running the
same executable must keep its code untouched (perf-event uprobes are system-wide, the
programs filter by pid).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sideeye_tui.bpf import stack_probe, uprobe_links
from sideeye_tui.bpf.loader import TRIGGER_FUNCTION, StackProbe
from sideeye_tui.capture import linux
from sideeye_tui.dwarf.binary import GoBinary
from tests.go.build import Fixture, start_fixture

from .support import snapfixture_binary

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go]

INT3 = 0xCC
KINDS = [pytest.param(True, id="link"), pytest.param(False, id="perf")]


@pytest.fixture(scope="module")
def two_targets() -> Iterator[tuple[Fixture, Fixture]]:
    """Two processes of one executable."""
    binary = snapfixture_binary("local")
    with start_fixture(binary) as a, start_fixture(binary) as b:
        yield a, b


def code_bytes(pid: int, addrs: list[int]) -> list[int]:
    return [linux.read_memory(pid, addr, 1)[0] for addr in addrs]


def entries(binary: GoBinary, names: tuple[str, ...]) -> list[int]:
    out = []
    for name in names:
        entry = binary.function_entry(name)
        assert entry is not None, name
        out.append(entry)
    return out


@pytest.mark.parametrize("links", KINDS)
def test_breakpoints_come_and_go(two_targets: tuple[Fixture, Fixture], links: bool) -> None:
    if links and not uprobe_links.supported():
        pytest.skip("this kernel has no uprobe links (Linux 6.6+)")
    a, b = two_targets
    go = GoBinary.open(f"/proc/{a.pid}/exe")
    tracked = entries(go, stack_probe.TRACKED_FUNCTIONS)
    trigger = entries(go, (TRIGGER_FUNCTION,))
    every = tracked + trigger
    original = [go.read_static(addr, 1)[0] for addr in every]
    assert INT3 not in original
    assert code_bytes(a.pid, every) == original
    assert code_bytes(b.pid, every) == original

    probe = StackProbe(go, a.pid, 1000, 1024, links=links)
    try:
        assert probe.links is links
        assert code_bytes(a.pid, trigger) == [INT3]
        assert probe.start_tracking()
        assert code_bytes(a.pid, tracked) == [INT3] * len(tracked)
        if links:
            assert code_bytes(b.pid, every) == original, "a link's uprobes are its target's only"
        # The tracker runs: goroutines that start or stop running are marked (the
        # fixture's spinners are preempted every 10 ms).
        deadline = time.monotonic() + 5
        while probe.bpf[b"tracker"][0].count == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.bpf[b"tracker"][0].count > 0
        probe.stop_tracking()
        probe.remove_tracker()
        assert code_bytes(a.pid, tracked) == original[: len(tracked)]
        assert code_bytes(a.pid, trigger) == [INT3], "the trigger stays until detach"
    finally:
        probe.close()
    assert code_bytes(a.pid, every) == original
    assert code_bytes(b.pid, every) == original
    assert a.proc.poll() is None and b.proc.poll() is None
