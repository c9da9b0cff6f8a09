"""What removing the goroutine tracker's uprobes costs the target.

The early walk puts uprobes on runtime.casgstatus and friends; after the pause they are
removed. As perf events, a thread hitting one during its removal may sleep for an RCU
grace period (see StackProbe.remove_tracker and bpf/uprobe_links.py). This measures
the bench target's spinning meter (its largest gap between two clock readings) over
four windows, alternated on one target process:

- link: the uprobes attached as one BPF link and removed (what a snapshot does on a
  kernel with uprobe links, 6.6+);
- perf-warm: perf-event uprobes, remove_tracker() as a snapshot does it on older kernels
  (a uprobe nothing hits first);
- perf-cold: perf-event uprobes, remove_tracker(warm=False): removed at once, directly;
- idle: the tool sleeps as long as the last link removal took (the noise floor).

Run as root: .venv/bin/python -m bench.uprobe_removal --goroutines 10000 --runs 15
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import fmt_ms, median
from .pause import READY_TIMEOUT_S, Target

SETTLE_S = 1.0
MARGIN_S = 0.02  # meter time before and after the removal
KINDS = ("link", "perf-warm", "perf-cold", "idle")


def measure(goroutines: int, runs: int) -> dict[str, list[float]]:
    from sideeye_tui.bpf.loader import StackProbe
    from sideeye_tui.dwarf.binary import GoBinary
    from tests.go.build import BENCH_TARGET, build_go, start_fixture

    gaps: dict[str, list[float]] = {kind: [] for kind in KINDS}  # ns
    took = 0.3
    binary = build_go(BENCH_TARGET)
    with start_fixture(
        binary, "-goroutines", str(goroutines), "-hiccup", timeout=READY_TIMEOUT_S
    ) as fx:
        target = Target(str(fx.report["url"]))
        time.sleep(SETTLE_S)
        go = GoBinary.open(f"/proc/{fx.pid}/exe")
        for _ in range(runs):
            for kind in KINDS:
                probe = StackProbe(go, fx.pid, goroutines, 1024, links=kind == "link")
                try:
                    if not probe.start_tracking():
                        raise SystemExit("could not attach the tracker's uprobes")
                    time.sleep(0.1)  # tracking, as during an early walk
                    probe.stop_tracking()
                    target.spin_start(5000)
                    time.sleep(MARGIN_S)
                    start = time.monotonic()
                    if kind == "idle":
                        time.sleep(took)
                    else:
                        probe.remove_tracker(warm=kind != "perf-cold")
                        if kind == "link":
                            took = time.monotonic() - start
                    time.sleep(MARGIN_S)
                    gaps[kind].append(float(target.spin_stop()))  # ns
                finally:
                    probe.close()
    return gaps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--goroutines", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.uprobe_removal: run as root", file=sys.stderr)
        return 1
    gaps = measure(args.goroutines, args.runs)
    print(f"spin meter's largest gap, ms ({args.goroutines} goroutines, {args.runs} runs)")
    print("| window | median | p75 | max |")
    print("| --- | ---: | ---: | ---: |")
    for kind, values in gaps.items():
        v = sorted(values)
        p75 = v[len(v) * 3 // 4]
        print(f"| {kind} | {fmt_ms(median(v))} | {fmt_ms(p75)} | {fmt_ms(v[-1])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
