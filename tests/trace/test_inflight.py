"""The in-flight map of entries waiting for their return is bounded (an LRU hash), and
what it lets go of is counted, never silently lost: the eventfixture's recursion is 50
calls deep (tests/go/README.md), more than a map of 16 holds."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from sideeye_tui.bpf import event_probe as ep
from sideeye_tui.events.session import TraceSession
from sideeye_tui.model import EventBatch, ProbeSecond
from tests.go.build import EVENTFIXTURE, build_go, start_fixture

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go]


def test_recursion_deeper_than_the_map(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.json"
    binary = build_go(EVENTFIXTURE, toolchain=None, stripped=False)
    with start_fixture(binary, "-truth", str(truth_path), "-lifetime", "2m") as fx:
        session = TraceSession(
            [fx.pid], ["main.recurse"], limits=ep.EventLimits(inflight=16, ringbuf_pages=64)
        )
        batches: list[EventBatch] = []
        seconds: list[ProbeSecond] = []
        stop = threading.Event()

        def round_then_stop() -> None:
            os.kill(fx.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 60
            while not truth_path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.5)
            stop.set()

        threading.Thread(target=round_then_stop, daemon=True).start()
        try:
            summary = session.run(batches.append, seconds.extend, stop)
        finally:
            session.close()
    assert truth_path.exists()
    events = [e for b in batches for e in b.events]
    entries = [e for e in events if e.kind == "entry"]
    returns = [e for e in events if e.kind == "return"]
    paired = [e for e in returns if e.duration_ns is not None]
    assert len(entries) == len(returns) == 50
    assert 0 < len(paired) <= 16
    # Every entry is accounted for: paired, or let go of by the full map.
    assert summary.in_flight == 50 - len(paired)
    assert summary.evicted == summary.in_flight
    assert sum(s.hits for s in seconds) == 50
