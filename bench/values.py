"""What capturing values adds to a snapshot's pause, side by side with another revision.

    .venv/bin/python -m bench.values [--goroutines 10000] [--runs 7] [--backend ebpf]
        [--against /tmp/old-rev]

Starts bench/target with N goroutines parked in main.parkedWithValues (an int, a
string and a pointer to a struct live across the receive), then alternates snapshots
without a spec and with a spec capturing `id`, `name` and `req` in every one of those
N frames, and compares the median pause (tool side: first thread stopped to last
resumed). With --against (a checkout of an earlier revision, e.g. made by
`git worktree add /tmp/old-rev main`), that revision's capture takes the same
snapshots of the same target in the same run, interleaved with this one's, so that
load on the machine falls on both alike. Each capture runs in a process of its own
(the revision's package is imported from its directory). Targets: the values add at
most 100%, and the pause with them is at most 3 ms. Writes bench/results-values.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import (
    BENCH_DIR,
    PROJECT_ROOT,
    fmt_ms,
    git_revision,
    loadavg,
    machine_lines,
    median,
    run_in_revision,
)

CAPTURES = {"main.parkedWithValues": ["id", "name", "req"]}
PAUSE_TARGET_NS = 3_000_000

# Run in a process of its own, from a revision's directory: one capture, as JSON.
_CAPTURE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from sideeye_tui.capture.snapshot import capture_process
pid, backend, captures = int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
p = capture_process(pid, backend, captures or None)
complete = sum(1 for c in p.captures if all(x.unavailable is None for x in c.values))
notes = [p.error] if p.error and p.pause_ns is not None else []
notes += list(getattr(p, "notes", None) or ())  # caveats, where the model has them apart
print(json.dumps({"pause_ns": p.pause_ns, "goroutines": len(p.goroutines), "error": p.error,
                  "notes": notes, "walk": getattr(p, "walk", None),
                  "frames": len(p.captures), "complete": complete}))
"""


@dataclass
class Revision:
    name: str
    path: Path
    plain: list[int] = field(default_factory=list)
    spec: list[int] = field(default_factory=list)
    frames: int = 0
    notes: set[str] = field(default_factory=set)


def capture(rev: Path, pid: int, backend: str, captures: dict[str, list[str]]) -> dict[str, object]:
    return run_in_revision(rev, _CAPTURE, [str(pid), backend, json.dumps(captures)], timeout=600)


def _revision_name(path: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or str(path)
    except (OSError, subprocess.SubprocessError):
        return str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--goroutines", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--backend", default="ebpf", choices=("ebpf", "ptrace"))
    ap.add_argument("--against", type=Path, help="a checkout of the revision to compare with")
    ap.add_argument("--out", default=str(BENCH_DIR / "results-values.md"))
    args = ap.parse_args(argv)

    from tests.go.build import BENCH_TARGET, build_go, start_fixture

    binary = build_go(BENCH_TARGET)
    n = args.goroutines
    revs = [Revision(f"this ({git_revision()})", PROJECT_ROOT)]
    if args.against is not None:
        revs.append(Revision(f"previous ({_revision_name(args.against)})", args.against))
    load_before = loadavg()
    with start_fixture(
        binary, "-goroutines", str(n), "-with-values", "-hiccup=false", timeout=120
    ) as fx:
        for _ in range(args.runs):
            for rev in revs:
                for captures, into in (({}, rev.plain), (CAPTURES, rev.spec)):
                    r = capture(rev.path, fx.pid, args.backend, captures)
                    if r["pause_ns"] is None or not r["goroutines"]:
                        print(f"{rev.name}: snapshot failed: {r['error']}", file=sys.stderr)
                        return 1
                    into.append(int(str(r["pause_ns"])))
                    notes = r["notes"]
                    assert isinstance(notes, list)
                    rev.notes.update(str(n) for n in notes)
                    rev.notes.add(
                        f"walk: {r['walk']}" if captures else f"walk without spec: {r['walk']}"
                    )
                    if captures:
                        rev.frames = int(str(r["frames"]))
                        complete = int(str(r["complete"]))
                        if complete < 0.99 * n:  # a few may not have reached the receive yet
                            msg = f"only {complete:,} of {n:,} frames have all values"
                            if rev is revs[0]:
                                print(f"{rev.name}: {msg}", file=sys.stderr)
                                return 1
                            rev.notes.add(msg)  # the previous revision's defect: noted
    rows = []
    verdicts = []
    for rev in revs:
        base, with_values = median(rev.plain), median(rev.spec)
        assert base is not None and with_values is not None
        added = (with_values - base) / base * 100
        rows.append(
            f"| {rev.name} | {n:,} | {rev.frames:,} | 3 | {fmt_ms(base)} | {fmt_ms(with_values)} "
            f"| {added:.0f}% |"
        )
        verdicts.append((rev.name, with_values))
    this_with = verdicts[0][1]
    lines = [
        "# Value capture: what it adds to the pause",
        "",
        f"Command: `{shlex.join(['.venv/bin/python', '-m', 'bench.values', *(argv or sys.argv[1:])])}`",
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, backend {args.backend}, "
        f"load average before {load_before}, after {loadavg()}",
        *machine_lines(),
        "",
        "Captures alternate: for each run, each revision takes one snapshot without the spec",
        "and one with it, of the same target process (each capture in a process of its own).",
        "",
        "| revision | goroutines | frames with values | expressions | pause without spec (median, ms) "
        "| pause with spec (median, ms) | added |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Target: the pause with the spec at most {fmt_ms(PAUSE_TARGET_NS)} ms: "
        f"{'met' if this_with <= PAUSE_TARGET_NS else 'NOT met'} ({fmt_ms(this_with)} ms).",
    ]
    if len(verdicts) > 1:
        lines.append(f"With the spec, previous / this: {verdicts[1][1] / this_with:.1f}x.")
    lines.append("")
    for rev in revs:
        lines += [
            f"{rev.name}, all runs (ns), without: {sorted(rev.plain)}",
            f"{rev.name}, all runs (ns), with: {sorted(rev.spec)}",
            *(f"{rev.name}, note from a run: {x}" for x in sorted(rev.notes)),
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
