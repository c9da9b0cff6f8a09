"""A capture that happened is never thrown away: caveats are warnings and notes.

parkfixture's deep goroutines (tests/go/README.md) parked at the bottom of an 11-call
recursion of main.deep(n, ...), and a spec capturing `n` there: with 20,000 of them,
the eBPF walk takes several triggers and its value queue may overflow. Whatever the
caveats, the snapshot is written with every goroutine, exit status 0, and each caveat
is both a `warning:` line on stderr and an entry of processes.notes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.go.build import PARKFIXTURE, build_go, start_fixture

from .support import PROJECT_ROOT

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.go]

SPEC = '[functions."main.deep"]\ncapture = ["n"]\n'
DEPTH = 11


def _snapshot(pid: int, out: Path, spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sideeye_tui", "snapshot", str(pid), "-o", str(out)]
        + ["--spec", str(spec)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "HOME": str(out.parent)},
        timeout=600,
    )


def _capture(
    goroutines: int, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    spec = tmp_path / "deep.toml"
    spec.write_text(SPEC)
    out = tmp_path / "s.duckdb"
    binary = build_go(PARKFIXTURE)
    args = ("-deep", str(goroutines), "-depth", str(DEPTH), "-lifetime", "5m")
    with start_fixture(binary, *args, timeout=120) as fx:
        assert fx.report["settled"]
        r = _snapshot(fx.pid, out, spec)
    return r, fx.report


def _stored(out: Path, pid: int) -> tuple[str | None, list[str] | None, set[int]]:
    con = duckdb.connect(str(out), read_only=True)
    try:
        row = con.execute("SELECT error, notes FROM processes WHERE pid = ?", [pid]).fetchone()
        assert row is not None
        deep = con.execute(
            "SELECT goid FROM frames WHERE pid = ? AND function = 'main.deep'"
            " GROUP BY goid HAVING count(*) = ?",
            [pid, DEPTH],
        ).fetchall()
    finally:
        con.close()
    return row[0], row[1], {int(g) for (g,) in deep}


def _warnings(stderr: str, pid: int) -> list[str]:
    """The caveat warnings (`warning: pid N: ...`), without spec messages."""
    prefix = f"warning: pid {pid}: "
    return [line.removeprefix(prefix) for line in stderr.splitlines() if line.startswith(prefix)]


@pytest.mark.slow
def test_a_capture_with_caveats_is_kept(tmp_path: Path) -> None:
    r, report = _capture(20_000, tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "s.duckdb"
    assert f"wrote snapshot 1 to {out}" in r.stdout
    error, notes, deep = _stored(out, report["pid"])
    assert error is None
    assert deep == set(report["deep"]) and len(deep) == 20_000  # every goroutine, all 11 deep
    # Every caveat recorded is printed, and nothing else is warned about.
    assert _warnings(r.stderr, report["pid"]) == list(notes or [])
    assert "failed" not in r.stdout and "not written" not in r.stderr


@pytest.mark.slow
def test_no_caveat_for_a_small_capture(tmp_path: Path) -> None:
    r, report = _capture(200, tmp_path)
    assert r.returncode == 0, r.stderr
    error, notes, deep = _stored(tmp_path / "s.duckdb", report["pid"])
    assert (error, notes) == (None, None)
    assert deep == set(report["deep"]) and len(deep) == 200
    assert "warning:" not in r.stderr
