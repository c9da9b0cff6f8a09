"""pause(walkers=N, trigger=SIG) stops the picked threads with SIG itself, so that the
probe's trigger needs no second wake-up. The signal is ours: a walker that is never
triggered must not get it, and a thread that blocks it must not be picked.

The target is a small Python process that counts the SIGURGs it handles and reports the
count on request: the truth about what was delivered."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from sideeye_tui.capture import pause

pytestmark = [pytest.mark.root]

COUNTER = textwrap.dedent(
    """
    import signal, sys
    got = []
    signal.signal(signal.SIGURG, lambda *_: got.append(1))
    if sys.argv[1] == "block":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})
    print("ready", flush=True)
    for _ in sys.stdin:
        print(len(got), flush=True)
    """
)


def _start(mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", COUNTER, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _handled(proc: subprocess.Popen[str]) -> int:
    """How many SIGURGs the target's handler has run (it answers, so it runs)."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("?\n")
    proc.stdin.flush()
    return int(proc.stdout.readline())


@pytest.fixture(params=["plain", "block"])
def counter(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    proc = _start(str(request.param))
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_an_untriggered_walker_never_gets_the_signal(counter: subprocess.Popen[str]) -> None:
    blocking = counter.args[-1] == "block"  # type: ignore[index]
    for _ in range(3):
        paused = pause.pause(counter.pid, registers=False, walkers=1, trigger=signal.SIGURG)
        try:
            if blocking:
                assert paused.walkers is None, "a thread that blocks the signal was picked"
            else:
                assert paused.walkers is not None and paused.walkers.tids == [counter.pid]
                assert paused.threads[counter.pid].in_delivery
        finally:
            pause.resume(paused)
    assert _handled(counter) == 0
    with open(f"/proc/{counter.pid}/status") as f:
        assert "SigPnd:\t0000000000000000" in f.read()


def test_a_triggered_walker_runs_its_handler_once() -> None:
    """What the probe's trigger does to a walker: the handler runs, exactly once, and
    the thread stops again at its end (the rt_sigreturn syscall-stop)."""
    proc = _start("plain")
    try:
        paused = pause.pause(proc.pid, registers=False, walkers=1, trigger=signal.SIGURG)
        try:
            assert paused.walkers is not None
            pause.run_signal_handlers(
                paused,
                paused.walkers.tids,
                signal.SIGURG,
                lambda _i: True,
                lambda _i: 0,
                timeout_s=1.0,
            )
            assert paused.threads[proc.pid].stopped
        finally:
            pause.resume(paused)
        assert _handled(proc) == 1
    finally:
        proc.kill()
        proc.wait()
