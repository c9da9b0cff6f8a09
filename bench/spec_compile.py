"""How long a spec takes to compile into a capture plan: new, and from the cache.

    .venv/bin/python -m bench.spec_compile [--binary PATH] [--runs 3] [--against /tmp/old-rev]

Each measurement runs in a process of its own (nothing warm but the disk): the
binary's own analysis is cached first (`GoBinary.open` + layout: a spec is new, the
binary is not), then each run times, in CPU seconds and wall seconds,
- new: this revision's compile of the spec with an empty plan cache;
- cached: the same spec again (the plan from the cache);
- previous: with --against (a checkout of an earlier revision), that revision's
  compile_plan, in the same run, interleaved.
The default binary is etcd (36 MB, cgo), built by bench/realsvc/build.sh, and the
spec names 5 of its functions with 14 expressions; with --binary another binary and
--spec FUNC=EXPR,EXPR ... Targets: new at most 2 s, cached well under 0.1 s.
Writes bench/results-spec-compile.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from . import (
    BENCH_DIR,
    PROJECT_ROOT,
    REAL_SERVICE_DIR,
    git_revision,
    loadavg,
    machine_lines,
    median,
    real_service,
    run_in_revision,
)

ETCD = REAL_SERVICE_DIR / "etcd"  # built by bench/realsvc/build.sh (real_service())
_P = "go.etcd.io/etcd/server/v3/"
ETCD_SPEC = {
    _P + "etcdserver.(*EtcdServer).Put": ["r", "ctx"],
    _P + "etcdserver/api/v3rpc.(*serverWatchStream).sendLoop": ["sws", "wresp", "evs", "id"],
    _P + "etcdserver/api/v3rpc.(*serverWatchStream).recvLoop": ["sws"],
    _P + "storage/mvcc.(*watchStream).Watch": ["ws", "key", "end", "startRev"],
    _P + "lease.(*lessor).Grant": ["le", "id", "ttl"],
}
NEW_TARGET_S = 2.0
CACHED_TARGET_S = 0.1

# Run from a revision's directory: open the binary (its analysis cached), then time
# the compile. mode: "analyse" (only open), "new"/"cached" (compile_plan_cached),
# "previous" (compile_plan, which that revision has).
_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from sideeye_tui.dwarf.binary import GoBinary
mode, path, cache, spec = sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
b = GoBinary.open(path, cache_dir=cache)
_ = b.layout
b.save_cache()
if mode == "analyse":
    print(json.dumps({}))
    raise SystemExit
c0, w0 = time.process_time(), time.perf_counter()
if mode == "previous":
    from sideeye_tui.values.plan import compile_plan
    plan = compile_plan(b, spec)
else:
    from sideeye_tui.values.plan_cache import compile_plan_cached
    plan = compile_plan_cached(b, spec, cache)
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
print(json.dumps({"cpu": cpu, "wall": wall, "sites": len(plan.sites),
                  "rtypes": len(plan.rtypes), "errors": plan.errors}))
"""


def run(
    rev: Path, mode: str, binary: Path, cache: str, spec: dict[str, list[str]]
) -> dict[str, object]:
    args = [mode, str(binary), cache, json.dumps(spec)]
    return run_in_revision(rev, _RUN, args, timeout=900)


def _parse_spec(items: list[str]) -> dict[str, list[str]]:
    out = {}
    for item in items:
        func, _, exprs = item.partition("=")
        out[func] = exprs.split(",")
    return out


def _field(info: dict[str, object], mode: str, key: str) -> object:
    r = info[mode]
    return r.get(key) if isinstance(r, dict) else None


def _fmt(values: list[float]) -> str:
    m = median(values)
    return "-" if m is None else f"{m:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--binary", type=Path, default=ETCD)
    ap.add_argument("--spec", nargs="*", help="FUNC=EXPR,EXPR (default: etcd's)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--against", type=Path, help="a checkout of the revision to compare with")
    ap.add_argument("--out", default=str(BENCH_DIR / "results-spec-compile.md"))
    args = ap.parse_args(argv)
    spec = _parse_spec(args.spec) if args.spec else ETCD_SPEC
    if args.binary == ETCD:
        real_service()
    if not args.binary.exists():
        print(f"no binary at {args.binary} (use --binary)", file=sys.stderr)
        return 1
    times: dict[str, tuple[list[float], list[float]]] = {}
    info: dict[str, object] = {}
    load_before = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        run(PROJECT_ROOT, "analyse", args.binary, tmp, spec)
        for i in range(args.runs):
            plans = os.path.join(tmp, "plans")
            if os.path.isdir(plans):  # a new spec: no plan cached
                for name in os.listdir(plans):
                    os.unlink(os.path.join(plans, name))
            modes = [("new", PROJECT_ROOT), ("cached", PROJECT_ROOT)]
            if args.against is not None:
                modes.append(("previous", args.against))
            for mode, rev in modes:
                cache = tmp
                if mode == "previous":
                    cache = os.path.join(tmp, "previous")
                    if i == 0:
                        run(rev, "analyse", args.binary, cache, spec)
                r = run(rev, mode, args.binary, cache, spec)
                cpu, wall = times.setdefault(mode, ([], []))
                cpu.append(float(str(r["cpu"])))
                wall.append(float(str(r["wall"])))
                info[mode] = r
    new_cpu = median(times["new"][0]) or 0.0
    cached_cpu = median(times["cached"][0]) or 0.0
    size = args.binary.stat().st_size / 1e6
    new_info = info["new"]
    assert isinstance(new_info, dict)
    rows = [
        f"| {mode} | {_fmt(cpu)} | {_fmt(wall)} | {_field(info, mode, 'sites')} "
        f"| {_field(info, mode, 'rtypes')} |"
        for mode, (cpu, wall) in times.items()
    ]
    lines = [
        "# Compiling a spec into a capture plan",
        "",
        f"Command: `{shlex.join(['.venv/bin/python', '-m', 'bench.spec_compile', *(argv or sys.argv[1:])])}`",
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, revision {git_revision()}, "
        f"load average before {load_before}, after {loadavg()}",
        *machine_lines(),
        f"- binary: {args.binary} ({size:.1f} MB), {len(spec)} functions, "
        f"{sum(len(v) for v in spec.values())} expressions",
        "",
        "Seconds, median of the runs; each in a fresh process, the binary's analysis cached.",
        "",
        "| compile | CPU (s) | wall (s) | sites | dynamic types |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Targets: new at most {NEW_TARGET_S} s: {'met' if new_cpu <= NEW_TARGET_S else 'NOT met'}; "
        f"cached under {CACHED_TARGET_S} s: {'met' if cached_cpu < CACHED_TARGET_S else 'NOT met'}.",
        f"Spec errors (the same in every mode): {new_info['errors']}",
        "",
        *(f"{mode}: CPU {sorted(cpu)}, wall {sorted(wall)}" for mode, (cpu, wall) in times.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
