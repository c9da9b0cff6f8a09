"""How long a snapshot pauses a Go process, next to a `/debug/pprof/goroutine?debug=2` dump.

    .venv/bin/python -m bench.pause --goroutines 1000,10000,100000 [--runs 5] [--backend ebpf]

For each N it starts bench/target with N goroutines parked on a channel receive, lets it
settle, then measures, `runs` times each:

- idle: the target's spinning meter (a goroutine reading the clock in a loop, keeping
  the largest interval between two readings) runs for the window with nothing else
  going on: the noise floor of this machine at this moment;
- sideeye: capture_process(pid, backend): the tool-side pause_ns (first thread stopped
  to last thread resumed) and the goroutines captured. The spinning meter starts just
  before the early walk (which reads most goroutines while the target runs) and stops
  20 ms after the resume (see PauseWindow): its largest gap is the pause as the target
  felt it, or a gap the early walk caused, if larger. The sleeping meter (a goroutine
  looping on a 100 µs sleep; about 1 ms resolution) is read around all of
  capture_process: what the whole capture (probe compilation, decoding on the same
  CPUs) costs the target;
- debug=2: the spinning meter around GET /debug/pprof/goroutine?debug=2 (whole body,
  timed): the dump's stop-the-world as the target felt it.

It prints a markdown table and writes it, with the machine and the command, to
bench/results-pause.md (see --out).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import (
    BENCH_DIR,
    fmt_ms,
    git_revision,
    loadavg,
    machine_lines,
    maximum,
    median,
)

if TYPE_CHECKING:
    from tests.go.build import Fixture

DEFAULT_OUT = BENCH_DIR / "results-pause.md"
HTTP_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 300.0

# Targets: pause (ms) per goroutine count, and the debug=2 / sideeye ratio (felt, medians).
PAUSE_TARGET_MS = {1_000: 1.0, 10_000: 3.0, 100_000: 30.0}
RATIO_TARGET = {10_000: 20.0, 100_000: 20.0}


@dataclass
class SizeResult:
    """Every measurement for one goroutine count."""

    n: int
    go_version: str = "?"
    startup_ms: int | None = None
    num_goroutine: int | None = None
    # sideeye
    tool_pause_ns: list[int] = field(default_factory=list)
    felt_ns: list[int] = field(default_factory=list)  # meter window around the pause only
    whole_ns: list[int] = field(default_factory=list)  # meter window around capture_process
    captured: list[int] = field(default_factory=list)
    snapshot_wall_s: list[float] = field(default_factory=list)
    failures: int = 0
    skipped: int = 0
    notes: dict[str, int] = field(default_factory=dict)
    # debug=2
    dump_felt_ns: list[int] = field(default_factory=list)
    dump_request_ns: list[int] = field(default_factory=list)
    dump_bytes: int = 0
    # idle
    idle_ns: list[int] = field(default_factory=list)
    meter_period_ns: list[int] = field(default_factory=list)
    error: str | None = None  # the target could not be started or measured

    def note(self, text: str) -> None:
        self.notes[text] = self.notes.get(text, 0) + 1


class Target:
    """The HTTP side of a started bench target."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=HTTP_TIMEOUT_S) as resp:
            body: bytes = resp.read()
            return body

    def get_json(self, path: str) -> dict[str, Any]:
        data = json.loads(self.get(path))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a JSON object")
        return data

    def reset(self) -> None:
        self.get("/hiccup/reset")

    def spin_start(self, ms: int) -> None:
        """Starts the spinning meter for at most ms milliseconds (returns once it runs)."""
        self.get(f"/hiccup/spin?ms={ms}")

    def spin_stop(self) -> int:
        """Stops the spinning meter; the largest interval between its clock readings, ns."""
        return int(self.get_json("/hiccup/spin/stop")["max_gap_ns"])

    def max_gap(self) -> tuple[int, int | None]:
        """(largest wake-up gap since the reset in ns, mean meter period in ns)."""
        m = self.get_json("/hiccup/max")
        if not m.get("enabled"):
            raise RuntimeError("the target's hiccup meter is not running (start it with -hiccup)")
        period = m.get("mean_period_ns")
        return int(m["max_gap_ns"]), int(period) if period is not None else None


class PauseWindow:
    """Brackets the tool's early walk and pause with the spinning meter, inside
    capture_process.

    The whole capture (probe compilation, decoding, symbolization) takes seconds and
    competes with the target for the CPUs; the meter spins only around the pause. This
    wraps sideeye_tui.capture.pause.pause and .resume for the duration of a `with`
    block: the meter starts just before the early walk (or pause(), without one: see
    capture/early_walk.py) and stops AFTER_RESUME_S after the last thread is resumed.
    Nothing in the pause itself changes (the meter starts before pause() starts its
    clock).
    """

    AFTER_RESUME_S = 0.02
    SPIN_MAX_MS = 10_000  # stopped after the resume; this only bounds a failed run

    def __init__(self, target: Target) -> None:
        self.target = target
        self.gap_ns: int | None = None
        self.error: str | None = None
        self._saved: tuple[Any, Any, Any] | None = None

    def __enter__(self) -> PauseWindow:
        from sideeye_tui.capture import early_walk as early_mod
        from sideeye_tui.capture import pause as pause_mod

        real_pause, real_resume = pause_mod.pause, pause_mod.resume
        real_early = early_mod.walk_early
        self._saved = (real_pause, real_resume, real_early)
        started = False

        def start() -> None:
            nonlocal started
            if started:
                return
            started = True
            try:
                self.target.spin_start(self.SPIN_MAX_MS)
            except Exception as e:
                self.error = f"meter start: {e}"

        def walk_early(*args: Any, **kwargs: Any) -> Any:
            start()  # the early walk runs in the target's threads: in the window too
            return real_early(*args, **kwargs)

        def pause(*args: Any, **kwargs: Any) -> Any:
            start()
            return real_pause(*args, **kwargs)

        def resume(proc: Any) -> None:
            try:
                real_resume(proc)
            finally:
                try:
                    time.sleep(self.AFTER_RESUME_S)
                    self.gap_ns = self.target.spin_stop()
                except Exception as e:
                    self.error = f"meter read after the resume: {e}"

        pause_mod.pause, pause_mod.resume = pause, resume
        early_mod.walk_early = walk_early
        return self

    def __exit__(self, *exc: object) -> None:
        from sideeye_tui.capture import early_walk as early_mod
        from sideeye_tui.capture import pause as pause_mod

        if self._saved is not None:
            pause_mod.pause, pause_mod.resume, early_mod.walk_early = self._saved


def measure_size(
    binary: Path,
    n: int,
    runs: int,
    backend: str,
    window_s: float,
    settle_s: float,
    keep_going: bool,
    early: bool = True,
) -> SizeResult:
    from sideeye_tui.capture.snapshot import capture_process
    from tests.go.build import start_fixture

    res = SizeResult(n)
    print(f"[N={n}] starting the target", file=sys.stderr, flush=True)
    fx: Fixture | None = None
    try:
        fx = start_fixture(binary, "-goroutines", str(n), "-hiccup", timeout=READY_TIMEOUT_S)
        res.go_version = str(fx.report.get("go_version", "?"))
        res.startup_ms = fx.report.get("startup_ms")
        res.num_goroutine = fx.report.get("num_goroutine")
        target = Target(str(fx.report["url"]))
        time.sleep(settle_s)

        for _ in range(runs):
            target.spin_start(int(window_s * 1000))
            time.sleep(window_s)
            res.idle_ns.append(target.spin_stop())
        print(f"[N={n}] idle max gap {[fmt_ms(x) for x in res.idle_ns]} ms", file=sys.stderr)

        for i in range(runs):
            if res.failures and not keep_going:
                res.skipped = runs - i
                break
            target.reset()
            t0 = time.perf_counter()
            with PauseWindow(target) as pw:
                snap = capture_process(fx.pid, backend, early=early)
            res.snapshot_wall_s.append(time.perf_counter() - t0)
            time.sleep(window_s)
            whole, period = target.max_gap()
            if period is not None:
                res.meter_period_ns.append(period)
            if pw.error:
                res.note(f"pause window: {pw.error}")
            got = len(snap.goroutines)
            ok = snap.pause_ns is not None and got >= n
            if snap.error:
                res.note(snap.error)
            for caveat in snap.notes:
                res.note(caveat)
            res.note(f"walk: {snap.walk}")
            if not ok:
                res.failures += 1
                print(
                    f"[N={n}] capture {i + 1}: FAILED ({got} goroutines, pause "
                    f"{fmt_ms(snap.pause_ns)} ms, felt {fmt_ms(pw.gap_ns)} ms): {snap.error}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            assert snap.pause_ns is not None
            res.tool_pause_ns.append(snap.pause_ns)
            if pw.gap_ns is not None:
                res.felt_ns.append(pw.gap_ns)
            res.whole_ns.append(whole)
            res.captured.append(got)
            print(
                f"[N={n}] capture {i + 1}: pause {fmt_ms(snap.pause_ns)} ms, felt "
                f"{fmt_ms(pw.gap_ns)} ms (whole capture {fmt_ms(whole)} ms), {got} goroutines, "
                f"{snap.threads} threads" + (f" ({snap.error})" if snap.error else ""),
                file=sys.stderr,
                flush=True,
            )

        for i in range(runs):
            target.spin_start(PauseWindow.SPIN_MAX_MS)
            t0 = time.perf_counter_ns()
            body = target.get("/debug/pprof/goroutine?debug=2")
            res.dump_request_ns.append(time.perf_counter_ns() - t0)
            res.dump_bytes = len(body)
            time.sleep(PauseWindow.AFTER_RESUME_S)
            gap = target.spin_stop()
            res.dump_felt_ns.append(gap)
            time.sleep(window_s)  # let the dump's garbage settle before the next one
            dumped = body.count(b"\ngoroutine ") + body.startswith(b"goroutine ")
            if dumped < n:
                res.note(f"debug=2 dump listed {dumped} goroutines only")
            print(
                f"[N={n}] debug=2 {i + 1}: request {fmt_ms(res.dump_request_ns[-1])} ms, "
                f"felt {fmt_ms(gap)} ms, {len(body) / 1e6:.1f} MB, {dumped} goroutines",
                file=sys.stderr,
                flush=True,
            )
    except Exception as e:  # report it in the table, go on with the next N
        res.error = f"{type(e).__name__}: {e}"
        print(f"[N={n}] error: {res.error}", file=sys.stderr, flush=True)
    finally:
        if fx is not None:
            fx.stop()
    return res


def _pair(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{fmt_ms(median(values))} / {fmt_ms(maximum(values))}"


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("✓" if ok else "✗")


def ratio(r: SizeResult) -> float | None:
    felt = median(r.felt_ns)
    dump = median(r.dump_felt_ns)
    if felt is None or dump is None or felt <= 0:
        return None
    return dump / felt


def targets_cell(r: SizeResult) -> str:
    parts = []
    limit = PAUSE_TARGET_MS.get(r.n)
    if limit is not None:
        tool = median(r.tool_pause_ns)
        felt = median(r.felt_ns)
        tool_ok = None if tool is None else tool / 1e6 <= limit
        felt_ok = None if felt is None else felt / 1e6 <= limit
        parts.append(f"pause ≤{limit:g} ms: tool {_mark(tool_ok)}, felt {_mark(felt_ok)}")
    want = RATIO_TARGET.get(r.n)
    if want is not None:
        got = ratio(r)
        parts.append(f"ratio ≥{want:g}×: {_mark(None if got is None else got >= want)}")
    return "; ".join(parts) or "-"


def table(results: list[SizeResult]) -> str:
    head = (
        "| N | captured (min) | tool pause med / max (ms) | sideeye felt max-gap med / max (ms) "
        "| whole-capture felt max-gap med / max (ms) | debug=2 felt max-gap med / max (ms) | debug=2 request med (ms) "
        "| ratio debug=2 / sideeye (felt, medians) | idle noise floor med / max (ms) | targets |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        rt = ratio(r)
        captured = "-" if not r.captured else str(min(r.captured))
        if r.failures:
            captured += f" ({r.failures} failed"
            captured += f", {r.skipped} skipped)" if r.skipped else ")"
        lines.append(
            f"| {r.n:,} | {captured} | {_pair(r.tool_pause_ns)} | {_pair(r.felt_ns)} "
            f"| {_pair(r.whole_ns)} "
            f"| {_pair(r.dump_felt_ns)} | {fmt_ms(median(r.dump_request_ns))} "
            f"| {'-' if rt is None else f'{rt:.1f}×'} | {_pair(r.idle_ns)} | {targets_cell(r)} |"
        )
    return "\n".join(lines)


def details(results: list[SizeResult]) -> list[str]:
    out = []
    for r in results:
        bits = [f"target startup {r.startup_ms} ms", f"NumGoroutine {r.num_goroutine}"]
        if r.snapshot_wall_s:
            bits.append(f"snapshot wall time median {median(r.snapshot_wall_s) or 0:.2f} s")
        if r.meter_period_ns:
            bits.append(f"sleeping meter mean period {fmt_ms(median(r.meter_period_ns))} ms")
        if r.dump_bytes:
            bits.append(f"debug=2 body {r.dump_bytes / 1e6:.1f} MB")
        out.append(f"- N={r.n:,}: " + ", ".join(bits))
        if r.error:
            out.append(f"  - error: {r.error}")
        for text, count in r.notes.items():
            out.append(f"  - {count}× capture note: {text}")
    return out


def report(
    results: list[SizeResult], args: argparse.Namespace, command: str, load: tuple[str, str]
) -> str:
    go = sorted({r.go_version for r in results if r.go_version != "?"}) or ["?"]
    lines = [
        "# Pause benchmark",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        *machine_lines(),
        f"- target: bench/target built with {', '.join(go)} "
        f"(toolchain {args.toolchain or 'local'})",
        f"- backend: {args.backend}; runs per N: {args.runs}; window {args.window_ms} ms; "
        f"settle {args.settle_s} s; early walk: {'on' if args.early_walk else 'off'}",
        f"- load average before / after: {load[0]} / {load[1]}",
        f"- sideeye revision: {git_revision()}",
        f"- command: `{command}`",
        "",
        table(results),
        "",
        "Times in ms, median / max over the runs. *tool pause*: `ProcessSnapshot.pause_ns`, "
        "first thread stopped to last thread resumed, as the tool measures it. *felt "
        "max-gap*: the largest interval between two clock readings of the target's "
        "spinning meter (a goroutine reading the clock in a loop) in a window holding the "
        "snapshot's early walk and pause (started just before the early walk, which reads "
        "most goroutines while the target runs, stopped 20 ms after the resume; the "
        "snapshot's walk mode is in the notes below) or one debug=2 request (started before it, stopped 20 ms after "
        "the answer). While it spins the meter keeps a CPU busy, so the target is not idle "
        "when paused: its thread is stopped while running. The *idle noise floor* is the "
        f"same meter over a {args.window_ms} ms window with nothing in it. *whole-capture "
        "felt*: the sleeping meter (a goroutine looping on a 100 µs sleep; about 1 ms "
        "resolution: see its mean period below) around all of capture_process (analysis, "
        "probe compilation, pause, decoding: seconds of CPU on the same machine) plus "
        f"{args.window_ms} ms. Ratio: debug=2 felt median / sideeye felt median. "
        "Targets: pause ≤1 ms at 1k, ≤3 ms at 10k, ≤30 ms at 100k; ratio ≥20× at 10k and "
        "100k.",
        "",
        *details(results),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pause", description=__doc__.split("\n")[0])
    p.add_argument(
        "--goroutines",
        default="1000,10000,100000",
        help="comma-separated goroutine counts (default: %(default)s)",
    )
    p.add_argument("--runs", type=int, default=5, help="runs of each measure per N (default 5)")
    p.add_argument("--backend", default="ebpf", choices=("ebpf", "ptrace"))
    p.add_argument(
        "--no-early-walk",
        dest="early_walk",
        action="store_false",
        help="every goroutine read inside the pause (sideeye-tui snapshot --no-early-walk)",
    )
    p.add_argument(
        "--toolchain",
        default=None,
        help="Go toolchain for the target, e.g. go1.24.13 (default: the machine's go)",
    )
    p.add_argument("--window-ms", type=int, default=300, help="wait before reading the meter")
    p.add_argument("--settle-s", type=float, default=1.0, help="wait after the target is ready")
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="keep capturing after a failed capture (default: skip the rest of that N; a "
        "failing eBPF walk can pause the target for tens of seconds)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report path")
    p.add_argument("--no-write", action="store_true", help="print only, write no report file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(x.replace("_", "")) for x in args.goroutines.split(",") if x.strip()]
    if args.runs < 1 or not counts or min(counts) < 1:
        print("need --runs ≥ 1 and positive goroutine counts", file=sys.stderr)
        return 2
    from tests.go.build import BENCH_TARGET, build_go

    command = shlex.join(["python", "-m", "bench.pause", *(sys.argv[1:] if argv is None else argv)])
    binary = build_go(BENCH_TARGET, toolchain=args.toolchain)
    load_before = loadavg()
    results = [
        measure_size(
            binary,
            n,
            args.runs,
            args.backend,
            args.window_ms / 1000,
            args.settle_s,
            args.keep_going,
            args.early_walk,
        )
        for n in counts
    ]
    text = report(results, args, command, (load_before, loadavg()))
    print(text)
    if not args.no_write:
        args.out.write_text(text)
        print(f"written to {args.out}", file=sys.stderr)
    return 1 if any(r.error or r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
