"""Speed benchmarks of sideeye-tui: pause length (bench.pause), binary analysis (bench.analysis).

Run from the project root with the project's virtualenv, as root:

    .venv/bin/python -m bench.pause --goroutines 1000,10000,100000
    .venv/bin/python -m bench.analysis

See bench/README.md for what each number means.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def maximum(values: Sequence[float]) -> float | None:
    return max(values) if values else None


def fmt_ms(ns: float | None) -> str:
    """Nanoseconds as milliseconds, 2 decimals ("-" when unknown)."""
    return "-" if ns is None else f"{ns / 1e6:.2f}"


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 0


def loadavg() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "?"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_lines() -> list[str]:
    """Markdown bullet lines describing this machine (CPU count, model, kernel, Python)."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"- machine: nproc {nproc()} ({model}), kernel {platform.release()}, "
        f"Python {platform.python_version()}",
    ]


def git_revision() -> str:
    """`git describe`-like identity of the working tree (read only; never changes it)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        rev = out.stdout.strip() or "?"
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--", "sideeye_tui"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return rev + (" (sideeye_tui/ modified)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


REAL_SERVICE_DIR = PROJECT_ROOT / "build" / "realsvc"


def real_service() -> tuple[Path, Path]:
    """etcd v3.6.16 (36 MB, gRPC, cgo: a real service nobody here wrote) and its load
    generator, built by bench/realsvc/build.sh on first use (the Go module proxy once)."""
    subprocess.run(
        ["bash", str(BENCH_DIR / "realsvc" / "build.sh")], check=True, capture_output=True
    )
    return REAL_SERVICE_DIR / "etcd", REAL_SERVICE_DIR / "load"


def run_in_revision(
    rev: Path, script: str, args: Sequence[str], timeout: float
) -> dict[str, object]:
    """Run a Python snippet with the package of the checkout `rev` (PYTHONPATH), same
    interpreter, and return the JSON object its last stdout line holds: how a bench
    measures the previous revision side by side with this one."""
    out = subprocess.run(
        [sys.executable, "-c", script, str(rev), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=rev,
        env={**os.environ, "PYTHONPATH": str(rev)},
    )
    if out.returncode != 0:
        raise RuntimeError(f"{rev}: {out.stderr.strip()[-2000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
