"""The command's CPU priority: idle for its own work, normal while the target bears
it (a seized thread, the tracker's uprobes), real-time in the pause. Read back from the
kernel (sched_getscheduler, getpriority) in the thread that does each part."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sideeye_tui import cli, procs
from sideeye_tui.bpf import program_cache
from sideeye_tui.capture import early_walk, pause, priority, snapshot
from sideeye_tui.capture.snapshot import capture_process
from tests.go.build import start_fixture
from tests.test_cli import captured, fake_capture, fake_target

from .support import snapfixture_binary, user_goids

T = TypeVar("T")
LOW, OTHER, FIFO = os.SCHED_BATCH, os.SCHED_OTHER, os.SCHED_FIFO


def policy() -> tuple[int, int]:
    """The calling thread's scheduling policy and nice value."""
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def in_thread(fn: Callable[[], T]) -> T:
    """Runs fn in a thread of its own: the test's thread keeps its priority whatever
    fn does (a policy belongs to a thread)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


@pytest.mark.root
def test_background_foreground_and_realtime_nest() -> None:
    def steps() -> list[Any]:
        seen: list[Any] = [policy()]
        with priority.background() as lowered:
            seen.append((lowered, policy()))
            seen.append(in_thread(policy))  # a thread started meanwhile inherits it
            fg = priority.foreground()
            seen.append(policy())
            with pause.realtime():
                seen.append(policy()[0])
                with priority.foreground():  # never lowers
                    seen.append(policy()[0])
            seen.append(policy())
            fg.restore()
            fg.restore()  # twice: nothing more
            seen.append(policy())
        seen.append(policy())
        return seen

    assert in_thread(steps) == [
        (OTHER, 0),
        (True, (LOW, 10)),
        (LOW, 10),
        (OTHER, 0),
        FIFO,
        FIFO,
        (OTHER, 0),
        (LOW, 10),
        (OTHER, 0),
    ]


@pytest.mark.root
def test_foreground_leaves_normal_priority_alone() -> None:
    def steps() -> list[tuple[int, int]]:
        with priority.foreground():
            inside = policy()
        return [inside, policy()]

    assert in_thread(steps) == [(OTHER, 0), (OTHER, 0)]


def _spy(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, seen: dict[str, list[int]]
) -> None:
    real = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.setdefault(name, []).append(os.sched_getscheduler(0))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.go
def test_capture_raises_priority_only_while_the_target_bears_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, list[int]] = {}
    _spy(monkeypatch, program_cache, "load", seen)  # loading the probe
    _spy(monkeypatch, early_walk, "walk_early", seen)  # the seized thread, the tracker
    _spy(monkeypatch, pause, "pause", seen)
    _spy(monkeypatch, pause, "resume", seen)
    _spy(monkeypatch, snapshot, "_mend", seen)  # decoding, after the uprobes are gone

    def capture() -> Any:
        with priority.background():
            return capture_process(fx.pid, "ebpf")

    with start_fixture(snapfixture_binary("local"), "-park", "100") as fx:
        snap = in_thread(capture)
        assert snap.error is None, snap.error
        assert user_goids(fx.report) <= {g.goid for g in snap.goroutines}
    assert seen == {
        "load": [LOW],
        "walk_early": [OTHER],
        "pause": [FIFO],
        "resume": [FIFO],
        "_mend": [LOW],
    }


@pytest.mark.root
def test_snapshot_command_runs_idle_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In-process, capture faked: the command lowers its thread for its work, then
    gives the caller its priority back."""
    seen: list[tuple[int, int]] = []
    take = fake_capture({10: captured(10, "waiting")}, [])

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(policy())
        return take(*args, **kwargs)

    monkeypatch.setattr(cli, "_take_snapshot", spying)
    monkeypatch.setattr(procs, "check_target", fake_target)
    out = str(tmp_path / "s.duckdb")

    def run() -> list[tuple[int, int]]:
        assert cli.main(["snapshot", "10", "-o", out]) == 0
        after = policy()
        assert cli.main(["snapshot", "10", "-o", out, "--priority", "normal"]) == 0
        return [after, policy()]

    assert in_thread(run) == [(OTHER, 0), (OTHER, 0)]
    assert seen == [(LOW, 10), (OTHER, 0)]
