"""bench.command and bench.latency still measure what they claim (each runs here once,
small; their numbers are checked under bench/, never in a test)."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go, pytest.mark.slow]


def test_command_bench_compares_two_revisions() -> None:
    from bench import PROJECT_ROOT, command

    old = command.export_revision("HEAD")
    try:
        case = command.Case("stacks", 0, None, 200)
        with command.bench_target(200, values=False) as pid:
            case.pid = pid
            command.measure(case, {"old": (old, []), "new": (PROJECT_ROOT, [])}, 1, [])
    finally:
        shutil.rmtree(old)
    assert case.errors == []
    assert set(case.first) == set(case.runs) == {"old", "new"}
    for runs in case.runs.values():
        (run,) = runs
        assert run.goroutines is not None and run.goroutines >= 200
        assert run.cpu_s > 0 and run.wall_s > 0


def test_latency_bench_measures_each_phase() -> None:
    from bench import PROJECT_ROOT, latency

    phases = ["idle", "sideeye", "debug2"]
    results = latency.measure(200, 1.5, 1, phases, {"sideeye": (PROJECT_ROOT, [])})
    assert list(results) == phases
    for phase in results.values():
        assert phase.failures == [], phase.failures
        assert phase.errors == 0
        assert len(phase.latencies_us) > 10, phase.name
    assert results["idle"].actions == 0
    assert results["sideeye"].actions >= 1 and results["debug2"].actions >= 1
