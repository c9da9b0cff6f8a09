"""What capturing values adds to a snapshot's pause.

    .venv/bin/python -m bench.values [--goroutines 10000] [--runs 7] [--backend ebpf]

Starts bench/target with N goroutines parked in main.parkedWithValues (an int, a
string and a pointer to a struct live across the receive), then alternates snapshots
without a spec and with a spec capturing `id`, `name` and `req` in every one of those
N frames, and compares the median pause (tool side: first thread stopped to last
resumed). Target: the values add at most 100%. Writes bench/results-values.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import UTC, datetime

from . import BENCH_DIR, fmt_ms, git_revision, machine_lines, median

CAPTURES = {"main.parkedWithValues": ["id", "name", "req"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--goroutines", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--backend", default="ebpf", choices=("ebpf", "ptrace"))
    ap.add_argument("--out", default=str(BENCH_DIR / "results-values.md"))
    args = ap.parse_args(argv)

    from sideeye_tui.capture.snapshot import capture_process
    from tests.go.build import BENCH_TARGET, build_go, start_fixture

    binary = build_go(BENCH_TARGET)
    n = args.goroutines
    plain: list[int] = []
    spec: list[int] = []
    frames = 0
    all_notes: set[str] = set()
    with start_fixture(
        binary, "-goroutines", str(n), "-with-values", "-hiccup=false", timeout=120
    ) as fx:
        for _ in range(args.runs):
            p = capture_process(fx.pid, args.backend)
            v = capture_process(fx.pid, args.backend, CAPTURES)
            for proc in (p, v):
                if proc.pause_ns is None or not proc.goroutines:
                    print(f"snapshot failed: {proc.error}", file=sys.stderr)
                    return 1
            notes = {note for x in (p, v) for note in x.notes}
            plain.append(p.pause_ns or 0)
            spec.append(v.pause_ns or 0)
            frames = len(v.captures)
            all_notes.update(notes)
            complete = sum(1 for c in v.captures if all(x.unavailable is None for x in c.values))
            if complete < 0.99 * n:  # a few may not have reached the receive yet
                print(f"only {complete} of {n} goroutines' frames have all values", file=sys.stderr)
                return 1
    base, with_values = median(plain), median(spec)
    assert base is not None and with_values is not None
    added = (with_values - base) / base * 100
    verdict = "met" if added <= 100 else "NOT met"
    lines = [
        "# Value capture: what it adds to the pause",
        "",
        f"Command: `{shlex.join(['.venv/bin/python', '-m', 'bench.values', *(argv or sys.argv[1:])])}`",
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, revision {git_revision()}, backend {args.backend}",
        *machine_lines(),
        "",
        "| goroutines | frames with values | expressions | pause without spec (median, ms) "
        "| pause with spec (median, ms) | added | target (<= 100%) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {n:,} | {frames:,} | 3 | {fmt_ms(base)} | {fmt_ms(with_values)} | {added:.0f}% | {verdict} |",
        "",
        f"All runs (ns), without: {sorted(plain)}",
        f"All runs (ns), with: {sorted(spec)}",
        *(f"Note from a run: {n}" for n in sorted(all_notes)),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
