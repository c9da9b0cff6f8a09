"""The pause of each backend, with and without a spec, against a previous revision.

    .venv/bin/python -m bench.backends [--goroutines 3000] [--runs 5] [--baseline main]

Starts bench/target with N goroutines parked in main.parkedWithValues (an int, a string
and a pointer to a struct live across the receive) and, in each run, snapshots it with
every combination of revision (this tree, and --baseline taken from git into a temporary
directory), backend (ebpf, ptrace) and spec (none, or `id`, `name` and `req` captured in
every one of those N frames), one after the other on the same target. Each revision runs
in a worker process of its own (its own cache directory) that calls capture_process; the
pause is the tool-side one (first thread stopped to last thread resumed). `ebpf-paused` is
the eBPF backend with --no-early-walk. Reports the medians and maxima, the ptrace/ebpf
ratios, and writes bench/results-backends.md.

The machine is shared and noisy: only ratios measured in one run mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from . import BENCH_DIR, PROJECT_ROOT, fmt_ms, git_revision, loadavg, machine_lines, median

CAPTURES = {"main.parkedWithValues": ["id", "name", "req"]}
# ebpf-paused: the eBPF backend without the early walk (--no-early-walk): every
# goroutine read in the pause, as the ptrace backend does
BACKENDS = ("ebpf", "ebpf-paused", "ptrace")
SPECS = ("none", "spec")

# A worker: one line in (backend, spec), one JSON line out, until stdin closes.
WORKER = """
import json, sys
from sideeye_tui.capture.snapshot import capture_process
print(json.dumps({"module": __import__("sideeye_tui").__file__}), flush=True)
pid, captures = int(sys.argv[1]), json.loads(sys.argv[2])
for line in sys.stdin:
    backend, spec = line.split()
    early = backend != "ebpf-paused"
    p = capture_process(pid, backend.split("-")[0], captures if spec == "spec" else None, early=early)
    notes = list(getattr(p, "notes", ()))
    if p.error and p.pause_ns is not None:  # before processes.notes: caveats in error
        notes.append(p.error)
    print(json.dumps({
        "pause_ns": p.pause_ns, "goroutines": len(p.goroutines), "frames": len(p.captures),
        "complete": sum(1 for c in p.captures if all(v.unavailable is None for v in c.values)),
        "error": p.error if p.pause_ns is None else None, "notes": notes,
    }), flush=True)
"""


def _extract(revision: str, into: Path) -> Path:
    """sideeye_tui/ of a revision, from git (read only), under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", revision, "sideeye_tui"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


class Worker:
    def __init__(self, name: str, path: Path, pid: int, cache: Path) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(path), "XDG_CACHE_HOME": str(cache)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(pid), json.dumps(CAPTURES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(cache),
        )
        self.module = self._reply()["module"]
        if not str(self.module).startswith(str(path)):
            raise RuntimeError(f"{name}: imported {self.module}, not the tree at {path}")

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: worker exited ({self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def capture(self, backend: str, spec: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{backend} {spec}\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(
    goroutines: int, runs: int, baseline: str | None
) -> tuple[dict[tuple[str, str, str], list[int]], list[str]]:
    """{(revision, backend, spec): pauses in ns}, and the notes seen."""
    from tests.go.build import BENCH_TARGET, build_go, start_fixture

    pauses: dict[tuple[str, str, str], list[int]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sideeye-bench-") as tmp:
        trees = {"this": PROJECT_ROOT}
        if baseline:
            trees["baseline"] = _extract(baseline, Path(tmp) / "baseline")
        args = ("-goroutines", str(goroutines), "-with-values", "-hiccup=false")
        with start_fixture(build_go(BENCH_TARGET), *args, timeout=120) as fx:
            workers = []
            try:
                for name, tree in trees.items():
                    cache = Path(tmp) / f"cache-{name}"
                    cache.mkdir()
                    workers.append(Worker(name, tree, fx.pid, cache))
                for run in range(runs):
                    for backend in BACKENDS:
                        for spec in SPECS:
                            for w in workers:
                                r = w.capture(backend, spec)
                                key = (w.name, backend, spec)
                                if r["pause_ns"] is None or r["goroutines"] < goroutines:
                                    raise RuntimeError(f"{key}: capture failed: {r}")
                                if spec == "spec" and r["complete"] < 0.99 * goroutines:
                                    raise RuntimeError(f"{key}: values missing: {r}")
                                pauses.setdefault(key, []).append(int(r["pause_ns"]))
                                notes += [f"{key}: {n}" for n in r["notes"]]
                                print(
                                    f"run {run + 1} {w.name:8} {backend:6} {spec:4} pause "
                                    f"{fmt_ms(r['pause_ns'])} ms",
                                    file=sys.stderr,
                                    flush=True,
                                )
            finally:
                for w in workers:
                    w.close()
    return pauses, notes


def report(
    pauses: dict[tuple[str, str, str], list[int]],
    notes: list[str],
    goroutines: int,
    baseline: str | None,
    command: str,
    load: tuple[str, str],
) -> str:
    revisions = [r for r in ("this", "baseline") if any(k[0] == r for k in pauses)]
    names = {"this": git_revision(), "baseline": baseline or "-"}
    lines = [
        "# Pause by backend, with and without a spec",
        "",
        f"Command: `{command}`",
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; this tree {names['this']}, "
        f"baseline {names['baseline']}; load average before {load[0]}, after {load[1]}",
        *machine_lines(),
        f"- target: bench/target, {goroutines:,} goroutines parked in main.parkedWithValues;"
        " spec: id, name, req in each of those frames",
        "",
        "Tool-side pause, median / max in ms (all captures of one run alternate on one target):",
        "",
        "| revision | spec | ebpf | ebpf, no early walk | ptrace | ptrace / ebpf | ptrace / ebpf,"
        " no early walk |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rev in revisions:
        for spec in SPECS:
            e, q, p = (pauses[(rev, b, spec)] for b in BACKENDS)
            me, mq, mp = median(e), median(q), median(p)
            ratio = f"{mp / me:.1f}x" if me and mp else "-"
            ratio_q = f"{mp / mq:.1f}x" if mq and mp else "-"
            lines.append(
                f"| {rev} ({names[rev]}) | {spec} | {fmt_ms(me)} / {fmt_ms(max(e))} "
                f"| {fmt_ms(mq)} / {fmt_ms(max(q))} | {fmt_ms(mp)} / {fmt_ms(max(p))} "
                f"| {ratio} | {ratio_q} |"
            )
    lines += ["", "All runs (ns):"]
    for key in sorted(pauses):
        lines.append(f"- {key}: {pauses[key]}")
    lines += [f"- note: {n}" for n in sorted(set(notes))]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--goroutines", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline", default="main", help="git revision to compare with ('' for none)")
    ap.add_argument("--out", default=str(BENCH_DIR / "results-backends.md"))
    ap.add_argument("--no-write", action="store_true", help="print only, write no report file")
    args = ap.parse_args(argv)
    before = loadavg()
    pauses, notes = measure(args.goroutines, args.runs, args.baseline or None)
    command = shlex.join([".venv/bin/python", "-m", "bench.backends", *(argv or sys.argv[1:])])
    text = report(pauses, notes, args.goroutines, args.baseline, command, (before, loadavg()))
    print(text)
    if not args.no_write:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
