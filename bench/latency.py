"""What a service's requests feel while snapshots are taken back to back, next to idle
and to back-to-back `/debug/pprof/goroutine?debug=2` dumps, in one run.

    .venv/bin/python -m bench.latency [--goroutines 3000] [--phase-s 10] [--rounds 3]
        [--baseline main] [--phases idle,sideeye,sideeye-normal,sideeye-old,debug2]

The service is bench/target (N goroutines parked, and GET /work: about 0.1 ms of CPU,
a map update under a shared lock, a small JSON answer). bench/loadgen drives it on
loopback with a bounded closed loop (4 workers, 2 ms pause after each answer, so the
service leaves CPU time unused, as a real one does). Each round runs every phase once
(their order rotated from round to round), the load running `--phase-s` seconds in
each:

- idle: nothing else;
- sideeye: `python -m sideeye_tui snapshot PID -o FILE` commands back to back (this
  checkout: SCHED_IDLE for its own work); sideeye-normal: the same with
  `--priority normal`;
- sideeye-old: the same commands from the baseline revision (exported with git
  archive, run with the same interpreter, as in bench.command);
- debug2: GET /debug/pprof/goroutine?debug=2 back to back, body read to the end.

The report gives, per phase, the latency of every request of all rounds (p50, p99,
max, count), the commands or dumps completed, and p99 against idle. Target: sideeye's
p99 within 10% of idle's. It writes bench/results-latency.md (see --out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import BENCH_DIR, PROJECT_ROOT, git_revision, loadavg, machine_lines
from .command import _rev_label, bench_target, command_env, export_revision

DEFAULT_OUT = BENCH_DIR / "results-latency.md"
LOADGEN = BENCH_DIR / "loadgen"
P99_TARGET = 1.10  # sideeye's p99 / idle's
PHASES = ("idle", "sideeye", "sideeye-normal", "sideeye-old", "debug2")


@dataclass
class Phase:
    name: str
    latencies_us: list[int] = field(default_factory=list)
    errors: int = 0
    actions: int = 0  # snapshots or dumps completed
    failures: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_us:
            return None
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000.0


Commands = dict[str, tuple[Path, list[str]]]  # phase -> (sources, more arguments)


def _snapshot(command: tuple[Path, list[str]], pid: int, out_dir: str) -> str | None:
    """One snapshot command; None if it succeeded, else why not."""
    root, more = command
    out = os.path.join(out_dir, "s.duckdb")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(out)
    argv = [sys.executable, "-m", "sideeye_tui", "snapshot", str(pid), "-o", out, *more]
    r = subprocess.run(
        argv, cwd=out_dir, env=command_env(root), capture_output=True, text=True, timeout=600
    )
    return None if r.returncode == 0 else (r.stdout + r.stderr).strip()[-300:]


def _dump(url: str) -> None:
    with urllib.request.urlopen(url + "/debug/pprof/goroutine?debug=2", timeout=120) as r:
        while r.read(1 << 16):
            pass


def run_phase(
    phase: Phase, loadgen: Path, url: str, pid: int, seconds: float, roots: Commands
) -> None:
    """The load for `seconds`, and the phase's action back to back meanwhile."""
    load = subprocess.Popen(
        [str(loadgen), "-url", url + "/work", "-for", f"{seconds}s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with tempfile.TemporaryDirectory(prefix="sideeye-bench-") as tmp:
        while load.poll() is None:
            if phase.name == "debug2":
                _dump(url)
            elif phase.name in roots:
                why = _snapshot(roots[phase.name], pid, tmp)
                if why is not None:
                    phase.failures.append(why)
                    continue
            else:
                time.sleep(0.05)
                continue
            phase.actions += 1
    out, err = load.communicate()
    if load.returncode != 0:
        raise RuntimeError(f"loadgen exited {load.returncode}: {err}")
    data = json.loads(out)
    phase.latencies_us += data["latencies_us"]
    phase.errors += int(data["errors"])


def measure(
    goroutines: int, seconds: float, rounds: int, phases: list[str], roots: Commands
) -> dict[str, Phase]:
    from tests.go.build import build_go

    loadgen = build_go(LOADGEN)
    results = {name: Phase(name) for name in phases}
    with bench_target(goroutines, values=False) as pid:
        url = _target_url(pid)
        with tempfile.TemporaryDirectory(prefix="sideeye-bench-") as tmp:
            for root in roots.values():  # fills the caches (binary analysis, probe)
                _snapshot(root, pid, tmp)
        warm = Phase("warm-up")
        run_phase(warm, loadgen, url, pid, min(2.0, seconds), roots)
        for r in range(rounds):
            order = phases[r % len(phases) :] + phases[: r % len(phases)]
            for name in order:
                run_phase(results[name], loadgen, url, pid, seconds, roots)
    return results


def _target_url(pid: int) -> str:
    """The target's address, from its listening socket (bench_target hides its report)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                port = int(cols[1].split(":")[1], 16)
                return f"http://127.0.0.1:{port}"
    raise RuntimeError(f"pid {pid} listens on no TCP port")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def report(
    results: dict[str, Phase],
    labels: dict[str, str],
    args: argparse.Namespace,
    load: tuple[str, str],
) -> str:
    command = shlex.join([".venv/bin/python", "-m", "bench.latency", *sys.argv[1:]])
    idle = results.get("idle")
    lines = [
        "# Request latency of a service during back-to-back snapshots",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{command}`",
        *machine_lines(),
        f"- load average (1 5 15 min): {load[0]} before, {load[1]} after",
        "- revisions: " + ", ".join(f"{k} = {v}" for k, v in labels.items()),
        f"- target: bench/target, {args.goroutines} goroutines parked; load: bench/loadgen,"
        f" 4 workers, 2 ms pause after each answer; {args.rounds} rounds of"
        f" {args.phase_s:g} s per phase, phases rotated; latencies in ms over every request",
        "",
        "| phase | p50 | p99 | max | requests | errors | actions done | p99 / idle p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    idle_p99 = idle.percentile(0.99) if idle is not None else None
    for phase in results.values():
        p99 = phase.percentile(0.99)
        ratio = f"{p99 / idle_p99:.2f}" if p99 is not None and idle_p99 else "-"
        lines.append(
            f"| {phase.name} | {_ms(phase.percentile(0.5))} | {_ms(p99)}"
            f" | {_ms(max(phase.latencies_us, default=0) / 1000.0)}"
            f" | {len(phase.latencies_us)} | {phase.errors} | {phase.actions} | {ratio} |"
        )
    sideeye = results.get("sideeye")
    if sideeye is not None and idle_p99:
        p99 = sideeye.percentile(0.99)
        met = p99 is not None and p99 <= idle_p99 * P99_TARGET
        lines += ["", f"Target (sideeye p99 <= 110% of idle): {'met' if met else 'NOT met'}."]
    failures = [f"- {p.name}: {f}" for p in results.values() for f in p.failures[:3]]
    if failures:
        lines += ["", "Failed actions (first 3 per phase):", "", *failures]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--goroutines", type=int, default=3000)
    p.add_argument("--phase-s", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--baseline", default="main")
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--no-write", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.latency: needs root", file=sys.stderr)
        return 1
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        print(f"bench.latency: unknown phases {sorted(unknown)}", file=sys.stderr)
        return 1
    old = export_revision(args.baseline) if "sideeye-old" in phases else None
    try:
        roots: Commands = {
            "sideeye": (PROJECT_ROOT, []),
            "sideeye-normal": (PROJECT_ROOT, ["--priority", "normal"]),
        }
        labels = {"sideeye": git_revision()}
        if old is not None:
            roots["sideeye-old"] = (old, [])
            labels["sideeye-old"] = _rev_label(args.baseline)
        load_before = loadavg()
        results = measure(args.goroutines, args.phase_s, args.rounds, phases, roots)
        text = report(results, labels, args, (load_before, loadavg()))
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    print(text)
    if not args.no_write:
        args.out.write_text(text)
    return 1 if any(p.failures for p in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
