"""`sideeye-tui trace` as a user runs it: bad input is one line and exit 1; a SIGKILL of
the tracer at any moment leaves no probe behind (the target's code bytes are the
executable file's again, as tests/capture/test_uprobe_links.py checks for snapshots),
and keeps what was written before it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sideeye_tui.bpf import uprobe_links
from sideeye_tui.capture import linux
from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.events.locations import resolve
from tests.go.build import EVENTFIXTURE, Fixture, build_go, start_fixture

pytestmark = [pytest.mark.root, pytest.mark.go]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLI = str(PROJECT_ROOT / ".venv" / "bin" / "sideeye-tui")
INT3 = 0xCC
ATTACH_TIMEOUT_S = 120.0  # BCC compiles the probe: slow on a busy 2-core machine


@pytest.fixture(scope="module")
def ticking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """The eventfixture with a goroutine calling main.tick every millisecond; its
    rounds' truth goes to the file in fx.args[1]."""
    binary = build_go(EVENTFIXTURE, toolchain=None, stripped=False)
    truth = tmp_path_factory.mktemp("truth") / "truth.json"
    with start_fixture(binary, "-truth", str(truth), "-tick", "1ms", "-lifetime", "5m") as fx:
        yield fx


def trace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "trace", *args], capture_output=True, text=True, timeout=300)


def one_line_error(r: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sideeye-tui: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_bad_input_is_one_line(ticking: Fixture, tmp_path: Path) -> None:
    out = str(tmp_path / "t.duckdb")
    pid = str(ticking.pid)
    assert "not a duration" in one_line_error(
        trace(pid, "--probe", "main.tick", "--for", "soon", "-o", out)
    )
    assert "no process with pid" in one_line_error(
        trace("999999999", "--probe", "main.tick", "-o", out)
    )
    line = one_line_error(trace(pid, "--probe", "main.tik", "--for", "1s", "-o", out))
    assert "no such function" in line and "main.tick" in line
    assert "ambiguous" in one_line_error(trace(pid, "--probe", "workload.go:10", "-o", out))
    assert "nothing to trace" in one_line_error(trace(pid, "-o", out))
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert "not a Go program" in one_line_error(
            trace(str(sleeper.pid), "--probe", "main.tick", "-o", out)
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not os.path.exists(out), "nothing is written when nothing could be traced"


def probed_code(pid: int, name: str) -> tuple[list[int], list[int]]:
    """The probed addresses of a function and their bytes in the executable file."""
    with GoBinary.open(f"/proc/{pid}/exe") as go:
        pcs = [s.pc for s in resolve(go, name).sites]
        return pcs, [go.read_static(pc, 1)[0] for pc in pcs]


def live_bytes(pid: int, pcs: list[int]) -> list[int]:
    return [linux.read_memory(pid, pc, 1)[0] for pc in pcs]


def start_trace(pid: int, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, "trace", str(pid), "--probe", "main.tick", "-o", str(out), "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_attached(pid: int, pcs: list[int], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    while live_bytes(pid, pcs) != [INT3] * len(pcs):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the trace's uprobes never appeared"
        time.sleep(0.02)


UPROBES = [pytest.param("link", id="link"), pytest.param("perf", id="perf")]


@pytest.mark.bpf
@pytest.mark.parametrize("uprobes", UPROBES)
def test_sigkill_leaves_no_probe(ticking: Fixture, tmp_path: Path, uprobes: str) -> None:
    if uprobes == "link" and not uprobe_links.supported():
        pytest.skip("this kernel has no uprobe links (Linux 6.6+)")
    pcs, original = probed_code(ticking.pid, "main.tick")
    assert INT3 not in original and len(pcs) >= 2  # an entry and a return at least
    assert live_bytes(ticking.pid, pcs) == original
    rng = random.Random()
    for _ in range(3):
        out = tmp_path / f"kill-{rng.randrange(1 << 30)}.duckdb"
        proc = start_trace(ticking.pid, out, "--uprobes", uprobes)
        wait_attached(ticking.pid, pcs, proc)
        time.sleep(rng.uniform(0.0, 2.5))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        deadline = time.monotonic() + 10
        while live_bytes(ticking.pid, pcs) != original:
            assert time.monotonic() < deadline, "a probe outlived the killed trace"
            time.sleep(0.05)
        assert ticking.proc.poll() is None, "the target died"
    # The target runs on: a round of its workload completes and reports its truth.
    truth = Path(ticking.args[1])
    os.kill(ticking.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while not truth.exists():
        assert time.monotonic() < deadline, "the target no longer runs its rounds"
        time.sleep(0.05)
    assert json.loads(truth.read_text())["round"] >= 1


@pytest.mark.bpf
def test_sigkill_keeps_the_seconds_already_written(ticking: Fixture, tmp_path: Path) -> None:
    pcs, original = probed_code(ticking.pid, "main.tick")
    out = tmp_path / "kept.duckdb"
    proc = start_trace(ticking.pid, out)
    wait_attached(ticking.pid, pcs, proc)
    assert proc.stdout is not None
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 3:  # three seconds reported, so at least two batches committed
        line = proc.stdout.readline()
        assert line, proc.communicate()
        assert time.monotonic() < deadline
        if json.loads(line)["type"] == "probe":
            seen += 1
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    con = duckdb.connect(str(out), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(ended) FROM traces").fetchone() == (1, 0)
        events = con.execute("SELECT count(*) FROM events WHERE kind = 'entry'").fetchone()
        rates = con.execute("SELECT count(*), sum(hits) FROM probe_rates").fetchone()
        assert events is not None and rates is not None
        assert rates[0] >= 2 and rates[1] > 0
        assert events[0] > 0
    finally:
        con.close()
    assert live_bytes(ticking.pid, pcs) == original


@pytest.mark.bpf
def test_two_traces_on_one_process(ticking: Fixture, tmp_path: Path) -> None:
    pcs, _original = probed_code(ticking.pid, "main.tick")
    first = start_trace(ticking.pid, tmp_path / "first.duckdb")
    try:
        wait_attached(ticking.pid, pcs, first)
        r = trace(str(ticking.pid), "--probe", "main.tick", "-o", str(tmp_path / "second.duckdb"))
        assert "already being traced" in one_line_error(r)
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "ended: interrupted" in err
