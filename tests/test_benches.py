"""The benchmarks still measure what they claim (their numbers are not checked here:
speed is measured under bench/, never in a test).

A bench wraps parts of the capture (bench.pause brackets the early walk and the pause
with the target's meter); when those change, a bench can break without any other test
failing. Each runs here once, small.
"""

from __future__ import annotations

import pytest

from bench import pause as bench_pause
from bench import uprobe_removal
from tests.go.build import BENCH_TARGET, build_go

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]


def test_pause_bench_measures_an_early_walk() -> None:
    res = bench_pause.measure_size(
        build_go(BENCH_TARGET),
        1000,
        runs=1,
        backend="ebpf",
        window_s=0.05,
        settle_s=0.2,
        keep_going=False,
    )
    assert res.error is None, res.error
    assert res.failures == 0, res.notes
    assert res.notes == {"walk: early": 1}
    assert len(res.tool_pause_ns) == len(res.felt_ns) == len(res.whole_ns) == 1
    assert res.captured[0] >= 1000
    assert len(res.dump_felt_ns) == 1 and res.dump_bytes > 0


def test_uprobe_removal_bench_measures_every_kind() -> None:
    gaps = uprobe_removal.measure(1000, 1)
    assert set(gaps) == set(uprobe_removal.KINDS)
    assert all(len(v) == 1 and v[0] > 0 for v in gaps.values()), gaps
