"""What a whole `snapshot` command costs: wall time and CPU time (user + system of the
command's process, Python's start-up included), this checkout next to a baseline
revision, alternately in one run.

    .venv/bin/python -m bench.command [--baseline main] [--goroutines 3000] [--runs 7]
        [--etcd BIN --etcd-load BIN --etcd-spec FILE]

The baseline is exported with `git archive` into a temporary directory (the repository
is only read) and run with the same interpreter and packages (PYTHONPATH names the
sources to import; every command runs in an empty directory). Each revision runs once first, which fills
the caches it has (the binary's analysis for both, the compiled probe for revisions that
keep it); then `--runs` measured runs alternate old, new. Each run writes a fresh
DuckDB file. Cases:

- stacks: bench/target with N goroutines parked, no spec;
- spec: the same with -with-values and a spec reading id, name and req of
  main.parkedWithValues in each of the N frames;
- etcd (with --etcd): a real service binary (etcd, 36 MB), driven by its load tool
  (1000 watch streams, 200 puts a second: about 3,000 goroutines), with a spec.

It prints a markdown report and writes it to bench/results-command.md (see --out).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import BENCH_DIR, PROJECT_ROOT, git_revision, loadavg, machine_lines, maximum, median

DEFAULT_OUT = BENCH_DIR / "results-command.md"
COMMAND_TIMEOUT_S = 600.0
WALL_TARGET_S = 1.5
CPU_TARGET_S = 1.0
NORMAL = "new --priority normal"
TARGET_SPEC = """
[functions."main.parkedWithValues"]
capture = ["id", "name", "req"]
"""


@dataclass
class Run:
    wall_s: float
    user_s: float
    sys_s: float
    goroutines: int | None  # from the command's summary line

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


@dataclass
class Case:
    name: str
    pid: int
    spec: str | None
    min_goroutines: int
    first: dict[str, Run] = field(default_factory=dict)
    runs: dict[str, list[Run]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def export_revision(rev: str) -> Path:
    """The sources of `rev` in a new temporary directory (git archive: read only)."""
    where = Path(tempfile.mkdtemp(prefix="sideeye-bench-rev-"))
    archive = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "archive", rev, "sideeye_tui"],
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    _check_imports_from(where)
    return where


def _check_imports_from(root: Path) -> None:
    """`python -m sideeye_tui` run from root must import root's sources, not the
    installed (editable) package."""
    code = "import sideeye_tui; print(sideeye_tui.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd="/",
        env=command_env(root),
        capture_output=True,
        text=True,
    )
    if not out.stdout.strip().startswith(str(root)):
        raise RuntimeError(f"from {root}, sideeye_tui is imported from {out.stdout.strip()}")


def command_env(root: Path) -> dict[str, str]:
    """The environment that makes `python -m sideeye_tui` import root's sources."""
    return {**os.environ, "PYTHONPATH": str(root)}


def snapshot_once(root: Path, pid: int, spec: str | None, extra: list[str]) -> Run:
    """One `python -m sideeye_tui snapshot` of root's sources, run in an empty directory
    (no ./.sideeye/ specs found by one revision and not the other); its own rusage
    (wait4)."""
    with tempfile.TemporaryDirectory(prefix="sideeye-bench-") as tmp:
        argv = [sys.executable, "-m", "sideeye_tui", "snapshot", str(pid)]
        argv += ["-o", os.path.join(tmp, "s.duckdb"), *extra]
        if spec is not None:
            argv += ["--spec", spec]
        out_path = os.path.join(tmp, "out")
        with open(out_path, "w+b") as out:
            started = time.monotonic()
            proc = subprocess.Popen(
                argv, cwd=tmp, env=command_env(root), stdout=out, stderr=subprocess.STDOUT
            )
            deadline = started + COMMAND_TIMEOUT_S
            while True:
                waited, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if waited:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    os.wait4(proc.pid, 0)
                    raise RuntimeError(f"{shlex.join(argv)}: no exit in {COMMAND_TIMEOUT_S} s")
                time.sleep(0.002)
            wall = time.monotonic() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} (in {root}) exited {proc.returncode}: {text}")
    return Run(wall, usage.ru_utime, usage.ru_stime, _goroutines(text))


def _goroutines(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("pid ") and " goroutines" in line:
            return int(line.split(": ", 1)[1].split()[0])
    return None


Variants = dict[str, tuple[Path, list[str]]]  # name -> (sources, more arguments)


def measure(case: Case, variants: Variants, runs: int, extra: list[str]) -> None:
    for name, (root, more) in variants.items():
        try:
            case.first[name] = snapshot_once(root, case.pid, case.spec, extra + more)
        except RuntimeError as e:
            case.errors.append(f"{name}, first run: {e}")
    for _ in range(runs):
        for name, (root, more) in variants.items():
            try:
                run = snapshot_once(root, case.pid, case.spec, extra + more)
            except RuntimeError as e:
                case.errors.append(f"{name}: {e}")
                continue
            if run.goroutines is None or run.goroutines < case.min_goroutines:
                case.errors.append(f"{name}: captured {run.goroutines} goroutines")
            case.runs.setdefault(name, []).append(run)


# -- targets -------------------------------------------------------------------------


@contextmanager
def bench_target(goroutines: int, values: bool) -> Iterator[int]:
    from tests.go.build import BENCH_TARGET, build_go, start_fixture

    args = ["-goroutines", str(goroutines)] + (["-with-values"] if values else [])
    with start_fixture(build_go(BENCH_TARGET), *args, timeout=300) as fx:
        time.sleep(1.0)  # settle
        yield fx.pid


@contextmanager
def etcd_target(binary: str, load: str, port: int) -> Iterator[int]:
    """etcd on loopback (client port `port`, peer port +10), with its load tool running
    (watch streams and puts)."""
    client, peer = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 10}"
    data = tempfile.mkdtemp(prefix="sideeye-bench-etcd-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        etcd = subprocess.Popen(
            [
                binary,
                "--data-dir",
                data,
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"default={peer}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(etcd)
        time.sleep(2.0)
        loader = subprocess.Popen(
            [load, "-ep", f"127.0.0.1:{port}", "-watches", "1000", "-rate", "200", "-for", "30m"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        procs.append(loader)
        assert loader.stdout is not None
        if loader.stdout.readline().strip() != b"READY":
            raise RuntimeError("the etcd load tool did not start")
        time.sleep(2.0)
        yield etcd.pid
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(data, ignore_errors=True)


# -- report --------------------------------------------------------------------------


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def report(
    cases: list[Case], revisions: dict[str, str], args: argparse.Namespace, load: tuple[str, str]
) -> str:
    command = shlex.join([".venv/bin/python", "-m", "bench.command", *sys.argv[1:]])
    lines = [
        "# Whole `snapshot` command: wall and CPU time",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{command}`",
        *machine_lines(),
        f"- load average (1 5 15 min): {load[0]} before, {load[1]} after",
        "- revisions: " + ", ".join(f"{k} = {v}" for k, v in revisions.items()),
        f"- {args.runs} measured runs per revision and case, alternating, after one first run"
        " each (which fills the caches); median / max in seconds; CPU = user + system time"
        " of the command's process (wait4), Python's start-up included",
        "",
        "| case | revision | wall | CPU | user | system | first run: wall / CPU | goroutines |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = list(revisions) + ([NORMAL] if args.normal else [])
    for case in cases:
        for name in names:
            runs = case.runs.get(name, [])
            first = case.first.get(name)
            walls = [r.wall_s for r in runs]
            cpus = [r.cpu_s for r in runs]
            lines.append(
                f"| {case.name} | {name} | {_s(median(walls))} / {_s(maximum(walls))}"
                f" | {_s(median(cpus))} / {_s(maximum(cpus))}"
                f" | {_s(median([r.user_s for r in runs]))}"
                f" | {_s(median([r.sys_s for r in runs]))}"
                f" | {_s(first.wall_s if first else None)} / {_s(first.cpu_s if first else None)}"
                f" | {min((r.goroutines or 0 for r in runs), default=0)} |"
            )
    lines += ["", "Ratios (new / old, medians) and targets (new: wall <= "]
    lines[-1] += f"{WALL_TARGET_S} s, CPU <= {CPU_TARGET_S} s):"
    lines.append("")
    for case in cases:
        old = case.runs.get("old", [])
        for name in names[1:]:
            new = case.runs.get(name, [])
            if not old or not new:
                continue
            w_old, w_new = median([r.wall_s for r in old]), median([r.wall_s for r in new])
            c_old, c_new = median([r.cpu_s for r in old]), median([r.cpu_s for r in new])
            assert w_old and w_new and c_old and c_new
            lines.append(
                f"- {case.name}, {name}: wall {w_new / w_old:.2f}x, CPU {c_new / c_old:.2f}x;"
                f" wall {'met' if w_new <= WALL_TARGET_S else 'NOT met'},"
                f" CPU {'met' if c_new <= CPU_TARGET_S else 'NOT met'}"
            )
    errors = [f"- {c.name}: {e}" for c in cases for e in c.errors]
    if errors:
        lines += ["", "Errors:", "", *errors]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.command", description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", default="main", help="git revision to compare with")
    p.add_argument("--goroutines", type=int, default=3000)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--cases", default="stacks,spec", help="of stacks, spec, etcd")
    p.add_argument("--etcd", help="etcd binary (the etcd case)")
    p.add_argument("--etcd-load", help="its load tool (watch streams and puts)")
    p.add_argument("--etcd-spec", help="spec for etcd")
    p.add_argument("--etcd-port", type=int, default=23990, help="client port (peer: +10)")
    p.add_argument("--snapshot-args", default="", help="more arguments to both commands")
    p.add_argument(
        "--normal",
        action="store_true",
        help=f"also run the new revision with --priority normal (as '{NORMAL}')",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--no-write", action="store_true")
    return p.parse_args(argv)


def run_cases(args: argparse.Namespace, revisions: Variants) -> list[Case]:
    extra = shlex.split(args.snapshot_args)
    cases: list[Case] = []
    wanted = args.cases.split(",")
    with tempfile.TemporaryDirectory(prefix="sideeye-bench-spec-") as tmp:
        spec = os.path.join(tmp, "target.toml")
        Path(spec).write_text(TARGET_SPEC)
        for name in ("stacks", "spec"):
            if name not in wanted:
                continue
            with bench_target(args.goroutines, name == "spec") as pid:
                case = Case(name, pid, spec if name == "spec" else None, args.goroutines)
                measure(case, revisions, args.runs, extra)
                cases.append(case)
    if "etcd" in wanted and args.etcd and args.etcd_load:
        with etcd_target(args.etcd, args.etcd_load, args.etcd_port) as pid:
            case = Case("etcd", pid, args.etcd_spec, 1000)
            measure(case, revisions, args.runs, extra)
            cases.append(case)
    return cases


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.command: needs root", file=sys.stderr)
        return 1
    old = export_revision(args.baseline)
    try:
        labels = {"old": _rev_label(args.baseline), "new": git_revision()}
        variants: Variants = {"old": (old, []), "new": (PROJECT_ROOT, [])}
        if args.normal:
            variants[NORMAL] = (PROJECT_ROOT, ["--priority", "normal"])
        load_before = loadavg()
        cases = run_cases(args, variants)
        text = report(cases, labels, args, (load_before, loadavg()))
    finally:
        shutil.rmtree(old, ignore_errors=True)
    print(text)
    if not args.no_write:
        args.out.write_text(text)
    return 1 if any(c.errors for c in cases) else 0


def _rev_label(rev: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", rev],
        capture_output=True,
        text=True,
    )
    return f"{rev} ({out.stdout.strip() or '?'})"


if __name__ == "__main__":
    sys.exit(main())
