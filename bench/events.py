"""Dynamic events: what a probe hit costs the target, what the writer keeps up with,
and how long 100 probes take to attach to a large binary.

Costs, side by side in one run on one target process (bench/eventloop: a loop calling
the noinline main.work(a, b, c int) N times, timed by the target itself), each row in
turn within every run:

- unprobed;
- bare uprobe: a uprobe on main.work's entry running an empty BPF program (BCC, a
  BPF link as the trace uses);
- funccount-bpfcc: Debian's bpfcc-tools counting main.work's calls (entry only);
- ours, rates only: `sideeye-tui trace --probe main.work --max-events-per-s 1` (entry
  and return probes; the trace command has no switch to keep no events at all, so
  this keeps one a second and counts the rest as dropped: per-second rates and the
  duration histogram are still exact);
- ours, 3 values + backtrace: a spec capturing a, b, c at entry; every event kept
  with its stack.

A hit's cost is (ns per call - unprobed ns per call) / hits per call: 1 for the bare
uprobe and funccount, 2 for ours (entry and return). Ratios are to the bare uprobe's.

Writer: one trace capturing the 3 values, and the target calling main.work at paced
rates (calls/s, two events each, from two goroutines) for a few seconds each; kept and
dropped per phase from the trace's --json stream. Drops begin at the first phase with
any; a rate the probes' cost does not allow is a ceiling (events/s produced says what
the target managed).

Attach: `trace` on a running etcd (bench/realsvc, 39 MB) with 100 --probe
function names from its own etcdserver package: from the command's start until every
one of the 100 functions holds a breakpoint in the target's code, first with a cold
analysis cache, then cached; and from SIGINT until none is left.

Run as root: .venv/bin/python -m bench.events --calls 3000000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import (
    BENCH_DIR,
    REAL_SERVICE_DIR,
    git_revision,
    loadavg,
    machine_lines,
    median,
    real_service,
)

DEFAULT_OUT = BENCH_DIR / "results-events.md"
FUNCCOUNT = Path("/usr/sbin/funccount-bpfcc")
ETCD = REAL_SERVICE_DIR / "etcd"  # built by bench/realsvc/build.sh (real_service())
ROWS = (
    "unprobed",
    "bare uprobe",
    "funccount-bpfcc",
    "ours: rates only",
    "ours: 3 values + backtrace",
)
HITS_PER_CALL = {
    "unprobed": 0,
    "bare uprobe": 1,
    "funccount-bpfcc": 1,
    "ours: rates only": 2,
    "ours: 3 values + backtrace": 2,
}
TARGETS = {"ours: rates only": 1.3, "ours: 3 values + backtrace": 2.0}
NOTHING_DROPPED = {"ours: 3 values + backtrace"}  # its target holds only with no drop
ATTACH_TIMEOUT_S = 900.0
PACE_RATES = (5_000, 10_000, 20_000, 40_000, 80_000, 200_000)
PACE_WORKERS = 2  # goroutines calling main.work: both CPUs produce events
PACE_S = 2.0
PHASE_GAP_S = 2.5


class Unavailable(Exception):
    """A row that cannot be measured here (its one-line reason)."""


# ---- the target --------------------------------------------------------------------


class Loop:
    """bench/eventloop, driven through its stdin."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.proc = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"eventloop did not start: {line!r}")
        self.ready: dict[str, Any] = json.loads(line[len("READY ") :])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("RESULT "):
            raise RuntimeError(f"eventloop: {command}: {line!r}")
        out: dict[str, Any] = json.loads(line[len("RESULT ") :])
        return out

    def run(self, calls: int) -> dict[str, Any]:
        return self._ask(f"run {calls}")

    def pace(self, rate: int, seconds: float, workers: int) -> dict[str, Any]:
        return self._ask(f"pace {rate} {seconds} {workers}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def eventloop_binary() -> Path:
    from tests.go.build import BENCH_EVENTLOOP, build_go

    return build_go(BENCH_EVENTLOOP)


# ---- the probes being compared -------------------------------------------------------


@contextmanager
def bare_uprobe(binary: Path, pid: int) -> Iterator[None]:
    """A uprobe at main.work's entry running an empty program, attached as the trace
    attaches its own (a BPF link naming the process: bpf/uprobe_links.py)."""
    from bcc import BPF  # bench/ may import bcc directly

    from sideeye_tui.bpf import uprobe_links
    from sideeye_tui.dwarf.binary import GoBinary

    if not uprobe_links.supported():
        raise Unavailable("this kernel has no uprobe links")
    go = GoBinary.open(str(binary))
    entry = go.function_entry("main.work")
    assert entry is not None
    bpf = BPF(text=b"int probe(struct pt_regs *ctx) { return 0; }")
    try:
        fn = bpf.load_func(b"probe", BPF.KPROBE, attach_type=uprobe_links.ATTACH_TYPE)
        fd = uprobe_links.attach(fn.fd, pid, f"/proc/{pid}/exe", [go.file_offset(entry)])
        try:
            yield
        finally:
            os.close(fd)
    finally:
        bpf.cleanup()


@contextmanager
def funccount(binary: Path, pid: int) -> Iterator[list[int]]:
    """funccount-bpfcc on main.work; the list gets its count at the end."""
    if not FUNCCOUNT.exists():
        raise Unavailable(f"{FUNCCOUNT} is not installed")
    proc = subprocess.Popen(
        [str(FUNCCOUNT), "-p", str(pid), f"{binary}:main.work"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    line = ""
    while "Tracing" not in line:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise Unavailable(f"funccount-bpfcc did not start: {line.strip()!r}")
    count: list[int] = []
    try:
        yield count
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        for ln in out.splitlines():
            parts = ln.split()
            if len(parts) == 2 and parts[0] == "main.work" and parts[1].isdigit():
                count.append(int(parts[1]))


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("sideeye-tui")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sideeye_tui"]


def code_of(binary: Path) -> tuple[dict[str, tuple[int, int]], int, bytes]:
    """function name -> [start, end), and the text section (address, bytes)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with binary.open("rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        symtab = elf.get_section_by_name(".symtab")
        assert text is not None and isinstance(symtab, SymbolTableSection)
        funcs = {
            s.name: (s["st_value"], s["st_value"] + s["st_size"])
            for s in symtab.iter_symbols()
            if s["st_info"]["type"] == "STT_FUNC" and s["st_size"] > 0
        }
        return funcs, text["sh_addr"], text.data()


def breakpoints_in(pid: int, ranges: list[tuple[int, int]], text: tuple[int, bytes]) -> int:
    """How many of the ranges hold a byte that differs from the file (an int3)."""
    from sideeye_tui.capture import linux

    base, data = text
    n = 0
    for lo, hi in ranges:
        live = linux.read_memory(pid, lo, hi - lo)
        if live != data[lo - base : hi - base]:
            n += 1
    return n


@dataclass
class Traced:
    proc: subprocess.Popen[str]
    db: Path
    attach_s: float = 0.0
    json: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def trace(
    pid: int,
    args: list[str],
    ranges: list[tuple[int, int]],
    text: tuple[int, bytes],
    tmp: Path,
) -> Iterator[Traced]:
    """`sideeye-tui trace PID ARGS --json -o DB`, started and waited for until every
    range holds a breakpoint; SIGINT at the end."""
    db = tmp / f"trace-{time.monotonic_ns()}.duckdb"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*cli(), "trace", str(pid), *args, "--json", "-o", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tr = Traced(proc=proc, db=db)
    try:
        while breakpoints_in(pid, ranges, text) < len(ranges):
            if proc.poll() is not None:
                err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
                raise Unavailable(err[-1] if err else f"trace exited {proc.returncode}")
            if time.monotonic() - t0 > ATTACH_TIMEOUT_S:
                raise Unavailable("trace did not attach")
            time.sleep(0.01)
        tr.attach_s = time.monotonic() - t0
        yield tr
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        tr.json = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]


def trace_totals(db: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT coalesce(sum(hits), 0), coalesce(sum(kept), 0), coalesce(sum(dropped), 0) "
            "FROM probe_rates"
        ).fetchone()
        events = con.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None and events is not None
    return {"hits": row[0], "kept": row[1], "dropped": row[2], "events": events[0]}


# ---- costs -----------------------------------------------------------------------------


@dataclass
class Costs:
    ns_per_call: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in ROWS})
    notes: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    counted: dict[str, list[int]] = field(default_factory=dict)


def measure_costs(calls: int, runs: int, tmp: Path) -> Costs:
    binary = eventloop_binary()
    funcs, base, data = code_of(binary)
    ranges = [funcs["main.work"]]
    text = (base, data)
    spec = tmp / "work.toml"
    spec.write_text('[probes."main.work"]\ncapture = ["a", "b", "c"]\n')
    ours = {
        "ours: rates only": ["--probe", "main.work", "--max-events-per-s", "1"],
        "ours: 3 values + backtrace": ["--spec", str(spec)],
    }
    res = Costs()
    loop = Loop(binary)
    try:
        loop.run(calls)  # warm up
        for _ in range(runs):
            for row in ROWS:
                if row in res.notes:
                    continue
                try:
                    if row == "unprobed":
                        r = loop.run(calls)
                    elif row == "bare uprobe":
                        with bare_uprobe(binary, loop.pid):
                            r = loop.run(calls)
                    elif row == "funccount-bpfcc":
                        with funccount(binary, loop.pid) as count:
                            r = loop.run(calls)
                        res.counted.setdefault(row, []).extend(count)
                    else:
                        with trace(loop.pid, ours[row], ranges, text, tmp) as tr:
                            r = loop.run(calls)
                        totals = trace_totals(tr.db)
                        res.counted.setdefault(row, []).append(totals["hits"])
                        res.dropped[row] = res.dropped.get(row, 0) + totals["dropped"]
                        tr.db.unlink(missing_ok=True)
                except Unavailable as e:
                    res.notes[row] = f"not available: {e}"
                    continue
                res.ns_per_call[row].append(float(r["ns_per_call"]))
    finally:
        loop.close()
    return res


# ---- the writer --------------------------------------------------------------------------


@dataclass
class Phase:
    rate: int  # calls/s asked
    calls: int
    seconds: float
    kept: int
    dropped: int

    @property
    def events_per_s(self) -> float:
        return 2 * self.calls / self.seconds

    @property
    def kept_per_s(self) -> float:
        return self.kept / self.seconds


def measure_writer(rates: tuple[int, ...], seconds: float, tmp: Path) -> list[Phase]:
    """Paced phases under one trace; each phase's kept and dropped are the --json
    totals at its end (the last line before the next phase starts) less the previous."""
    binary = eventloop_binary()
    funcs, base, data = code_of(binary)
    spec = tmp / "work.toml"
    spec.write_text('[probes."main.work"]\ncapture = ["a", "b", "c"]\n')
    loop = Loop(binary)
    phases: list[Phase] = []
    try:
        with trace(loop.pid, ["--spec", str(spec)], [funcs["main.work"]], (base, data), tmp) as tr:
            results = []
            for rate in rates:
                started = time.time()
                results.append((rate, started, loop.pace(rate, seconds, PACE_WORKERS)))
                time.sleep(PHASE_GAP_S)  # the writer catches up, the second's line is out
        lines = [o for o in tr.json if o.get("type") == "probe"]
        prev = (0, 0)
        for k, (rate, _, r) in enumerate(results):
            until = results[k + 1][1] if k + 1 < len(results) else float("inf")
            before = [o for o in lines if o["t"] < until]
            now = (before[-1]["kept_total"], before[-1]["dropped_total"]) if before else prev
            phases.append(
                Phase(rate, r["calls"], r["ns"] / 1e9, now[0] - prev[0], now[1] - prev[1])
            )
            prev = now
        tr.db.unlink(missing_ok=True)
    finally:
        loop.close()
    return phases


# ---- attaching 100 probes ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def etcd(tmp: Path) -> Iterator[int]:
    c, p = free_port(), free_port()
    data = tmp / "etcd-data"
    proc = subprocess.Popen(
        [
            str(ETCD),
            "--name=bench",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{c}",
            f"--advertise-client-urls=http://127.0.0.1:{c}",
            f"--listen-peer-urls=http://127.0.0.1:{p}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p}",
            f"--initial-cluster=bench=http://127.0.0.1:{p}",
            "--log-level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", c)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Unavailable("etcd did not start")
            time.sleep(0.1)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


def probe_names(funcs: dict[str, tuple[int, int]], n: int) -> list[str]:
    prefix = "go.etcd.io/etcd/server/v3/etcdserver."
    names = sorted(
        f
        for f in funcs
        if f.startswith(prefix)
        and not any(x in f for x in (".func", "[", "deferwrap", "gowrap", "glob."))
    )
    step = max(1, len(names) // n)
    return names[::step][:n]


@dataclass
class Attach:
    probes: int = 0
    binary_mb: float = 0.0
    attach_s: list[float] = field(default_factory=list)  # first: cold cache
    remove_s: list[float] = field(default_factory=list)
    note: str = ""


def measure_attach(runs: int, n: int, tmp: Path) -> Attach:
    res = Attach()
    real_service()  # builds it on first use
    funcs, base, data = code_of(ETCD)
    names = probe_names(funcs, n)
    ranges = [funcs[f] for f in names]
    res.probes = len(names)
    res.binary_mb = ETCD.stat().st_size / 1e6
    args = [a for f in names for a in ("--probe", f)]
    try:
        with etcd(tmp) as pid:
            for _ in range(runs + 1):
                with trace(pid, args, ranges, (base, data), tmp) as tr:
                    res.attach_s.append(tr.attach_s)
                    tr.proc.send_signal(signal.SIGINT)
                    t0 = time.monotonic()
                    while breakpoints_in(pid, ranges, (base, data)) > 0:
                        if time.monotonic() - t0 > 60:
                            break
                        time.sleep(0.005)
                    res.remove_s.append(time.monotonic() - t0)
                tr.db.unlink(missing_ok=True)
    except Unavailable as e:
        res.note = f"not available: {e}"
    return res


# ---- the report ------------------------------------------------------------------------------


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def cost_table(c: Costs) -> list[str]:
    base = median(c.ns_per_call["unprobed"])
    bare = median(c.ns_per_call["bare uprobe"])
    bare_hit = None if base is None or bare is None else bare - base
    out = [
        "| row | ns per call (median) | runs | hits per call | ns per hit | ratio to bare uprobe per hit | target | dropped | hits counted |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for row in ROWS:
        if row in c.notes:
            out.append(f"| {row} | {c.notes[row]} | | | | | | | |")
            continue
        v = median(c.ns_per_call[row])
        hits = HITS_PER_CALL[row]
        per_hit = None if v is None or base is None or not hits else (v - base) / hits
        ratio = None if per_hit is None or not bare_hit else per_hit / bare_hit
        target = f"<= {TARGETS[row]}x" if row in TARGETS else ""
        if ratio is not None and row in TARGETS:
            target += " met" if ratio <= TARGETS[row] else " NOT met"
            if row in NOTHING_DROPPED and c.dropped.get(row, 0):
                target += "; NOT met: events dropped"
        counted = ", ".join(str(x) for x in c.counted.get(row, []))
        out.append(
            f"| {row} | {fmt(v, 1)} | {len(c.ns_per_call[row])} | {hits} | {fmt(per_hit)} | "
            f"{fmt(ratio, 2)} | {target} | {c.dropped.get(row, '')} | {counted} |"
        )
    return out


def writer_table(phases: list[Phase]) -> list[str]:
    out = [
        "| calls/s asked | events/s produced | kept/s | kept | dropped |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        out.append(
            f"| {fmt(p.rate)} | {fmt(p.events_per_s)} | {fmt(p.kept_per_s)} | {p.kept} | {p.dropped} |"
        )
    first = next((p for p in phases if p.dropped), None)
    out.append("")
    out.append(
        "Drops begin at "
        + (f"{fmt(first.events_per_s)} events/s produced." if first else "no phase measured here.")
    )
    return out


def report(
    args: argparse.Namespace,
    costs: Costs | None,
    phases: list[Phase] | None,
    attach: Attach | None,
    load: tuple[str, str],
) -> str:
    lines = [
        "# Dynamic events benchmark",
        "",
        f"- command: `.venv/bin/python -m bench.events {' '.join(args.argv)}`".rstrip(),
        f"- revision: {git_revision()}",
        *machine_lines(),
        f"- load average before: {load[0]}, after: {load[1]} (the machine is shared: "
        "compare rows of one run, not runs)",
        "",
    ]
    if costs is not None:
        lines += [
            f"## Cost per hit ({args.calls:,} calls of main.work per row, {args.runs} runs, "
            "rows alternated)",
            "",
            *cost_table(costs),
            "",
        ]
    if phases is not None:
        lines += [
            f"## Writer ({PACE_S:.0f} s per phase, {PACE_WORKERS} goroutines calling, "
            "3 values + backtrace)",
            "",
            *writer_table(phases),
            "",
        ]
    if attach is not None:
        lines += ["## Attaching 100 probes", ""]
        if attach.note:
            lines.append(attach.note)
        else:
            cached = attach.attach_s[1:]
            lines += [
                f"{attach.probes} function probes (entry and return) on etcd "
                f"({attach.binary_mb:.1f} MB), from the command's start until every function "
                "holds a breakpoint:",
                "",
                f"- first run (analysis cache as found): {fmt(attach.attach_s[0], 2)} s",
                f"- cached, median of {len(cached)}: {fmt(median(cached), 2)} s "
                f"(target < 2 s: {'met' if cached and (median(cached) or 99) < 2 else 'NOT met'})",
                f"- removal (SIGINT until no breakpoint is left), median: "
                f"{fmt(median(attach.remove_s), 3)} s",
            ]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--calls", type=int, default=3_000_000, help="calls of main.work per row")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parts", default="costs,writer,attach", help="comma-separated")
    ap.add_argument("--attach-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report path")
    ap.add_argument("--no-write", action="store_true", help="print only, write no report file")
    args = ap.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if os.geteuid() != 0:
        print("bench.events: run as root", file=sys.stderr)
        return 1
    parts = set(args.parts.split(","))
    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench-events-") as d:
        tmp = Path(d)
        costs = measure_costs(args.calls, args.runs, tmp) if "costs" in parts else None
        phases = measure_writer(PACE_RATES, PACE_S, tmp) if "writer" in parts else None
        attach = measure_attach(args.attach_runs, 100, tmp) if "attach" in parts else None
    text = report(args, costs, phases, attach, (load_before, loadavg()))
    print(text)
    if not args.no_write:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
