"""The benchmarks still measure what they claim (their numbers are not checked here:
speed is measured under bench/, never in a test).

A bench wraps parts of the capture (bench.pause brackets the early walk and the pause
with the target's meter); when those change, a bench can break without any other test
failing. Each runs here once, small.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import backends as bench_backends
from bench import events as bench_events
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


def test_backends_bench_measures_every_combination() -> None:
    """Both revisions (this tree and main, from git), every backend, with and without
    the spec, on one target."""
    pauses, _ = bench_backends.measure(100, 1, "main")
    assert set(pauses) == {
        (rev, backend, spec)
        for rev in ("this", "baseline")
        for backend in bench_backends.BACKENDS
        for spec in bench_backends.SPECS
    }
    assert all(len(v) == 1 and v[0] > 0 for v in pauses.values()), pauses


def test_events_bench_measures_every_row(tmp_path: Path) -> None:
    calls = 20_000
    costs = bench_events.measure_costs(calls, 1, tmp_path)
    assert costs.notes == {}, costs.notes
    assert all(len(v) == 1 and v[0] > 0 for v in costs.ns_per_call.values()), costs
    # Every probed row saw every call (ours: hits count calls, entries).
    assert costs.counted == {
        "funccount-bpfcc": [calls],
        "ours: rates only": [calls],
        "ours: 3 values + backtrace": [calls],
    }
    # Drops depend on the machine's load (the bench reports them, a test does not judge
    # speed); the rates-only row keeps one event a second by design.
    assert costs.dropped["ours: 3 values + backtrace"] >= 0
    assert costs.dropped["ours: rates only"] > 0
    table = "\n".join(bench_events.cost_table(costs))
    assert "not available" not in table


def test_events_bench_measures_the_writer(tmp_path: Path) -> None:
    phases = bench_events.measure_writer((2000,), 0.5, tmp_path)
    assert len(phases) == 1
    p = phases[0]
    assert p.calls == 1000
    assert p.kept + p.dropped == 2 * p.calls  # an entry and a return event per call


def test_events_bench_attaches_to_etcd(tmp_path: Path) -> None:
    res = bench_events.measure_attach(1, 10, tmp_path)
    assert res.note == "", res.note
    assert res.probes == 10 and res.binary_mb > 30
    assert len(res.attach_s) == 2 and all(t > 0 for t in res.attach_s)
    assert len(res.remove_s) == 2
