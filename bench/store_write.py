"""How long writing a big snapshot to a new DuckDB file takes (store.write_snapshot).

    .venv/bin/python -m bench.store_write [--runs 3] [--goroutines 100000] [--depth 10]

Synthetic snapshots (tests/store/synth.py): --goroutines goroutines of --depth frames,
once with 500 distinct stacks and once with every stack distinct (a million frame rows
at the defaults). Each run writes to a new file in a new temporary directory; the
table gives the median and the slowest run. Target: a million frames in 30 s or less
(the store test once asserted it and failed at 26 s against 30 on a loaded machine:
speed is measured here, never in a test).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from sideeye_tui.store import open_store, write_snapshot
from tests.store.synth import synthetic

from . import git_revision, loadavg, maximum, median

TARGET_S = 30.0


def measure(goroutines: int, depth: int, distinct: int | None, runs: int) -> list[float]:
    snap = synthetic(goroutines, depth, distinct)
    seconds = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bench.duckdb")
            t = time.perf_counter()
            write_snapshot(path, snap)
            seconds.append(time.perf_counter() - t)
            with open_store(path) as con:
                row = con.execute("SELECT count(*) FROM frames").fetchone()
            assert row == (goroutines * depth,), row
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store_write", description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--goroutines", type=int, default=100_000)
    p.add_argument("--depth", type=int, default=10)
    args = p.parse_args(argv)
    print(f"revision {git_revision()} · load {loadavg()}")
    print("| stacks | frame rows | median s | slowest s | target s |")
    print("|---|---:|---:|---:|---:|")
    for label, distinct in (("500 distinct", 500), ("every one distinct", None)):
        seconds = measure(args.goroutines, args.depth, distinct, args.runs)
        rows = args.goroutines * args.depth
        print(
            f"| {label} | {rows:,} | {median(seconds) or 0:.2f} | {maximum(seconds) or 0:.2f}"
            f" | {TARGET_S:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
