"""End to end: the real explorer in a pseudo-terminal snapshots a live Go fixture.

`python -m sideeye_tui PID --db FILE` as root: the app runs the snapshot subprocess,
opens the result, and must paint the fixture's goroutines; `q` then quits it.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.go.build import SNAPFIXTURE, build_go, start_fixture

pytestmark = [pytest.mark.root, pytest.mark.go, pytest.mark.bpf, pytest.mark.slow]

_ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def _read_until(fd: int, proc: subprocess.Popen[bytes], want: list[str], timeout: float) -> str:
    """The screen's text (ANSI removed) once every string of want appeared in it."""
    raw = b""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                raw += os.read(fd, 65536)
            except OSError:
                break
            text = _ANSI.sub(b"", raw).decode("utf-8", "replace")
            if all(w in text for w in want):
                return text
    raise AssertionError(f"never saw {want!r}; the screen said: {text[-3000:]!r}")


def _drain(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                os.read(fd, 65536)
            except OSError:
                return


def test_explorer_snapshots_a_live_fixture(tmp_path: Path) -> None:
    binary = build_go(SNAPFIXTURE)
    db = tmp_path / "e2e.duckdb"
    with start_fixture(binary) as fx:
        functions = sorted({str(g["function"]) for g in fx.report["groups"]})
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "48"}
        env.pop("TEXTUAL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "sideeye_tui", str(fx.pid), "--db", str(db)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        try:
            text = _read_until(master, proc, ["goroutines in", "buckets", "main."], 120)
            assert f"pid {fx.pid}" in text
            assert any(f in text for f in functions), functions
            os.write(master, b"q")
            _drain(master, proc, 30)  # the app blocks on a full pty if nobody reads
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        assert db.exists()
