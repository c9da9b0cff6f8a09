"""How long binary analysis takes on a big (≥30 MB) Go binary, cold and from the cache.

    .venv/bin/python -m bench.analysis [--runs 3] [--variants dwarf,stripped] [--pcs 1000]

The binary is tests/dwarf/testdata/big plus 8000 generated types (about 31.5 MB with
DWARF), built by the dwarf tests' own builder and cached in tests/go/.cache/ (shared with
the tests: a binary they built is reused). Each run is a pair of fresh Python processes
on one new, empty cache directory:

- cold: the first process: `GoBinary.open(path, cache_dir=tmp)`, `.layout` (DWARF read;
  for the stripped variant, a layout learned from a tiny reference program built on the
  spot with the same Go version), then symbolizing `--pcs` pcs spread over the text,
  then `save_cache()`;
- cached: a second process, same cache directory: the same steps, now served from the
  cache written by the first.

Prints a markdown table and writes it to bench/results-analysis.md (see --out).
Targets: open + layout ≤5 s cold, ≤0.5 s cached.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import BENCH_DIR, PROJECT_ROOT, git_revision, loadavg, machine_lines, maximum, median

DEFAULT_OUT = BENCH_DIR / "results-analysis.md"
GENERATED_TYPES = 8000
MIN_SIZE = 30_000_000
COLD_TARGET_S = 5.0
CACHED_TARGET_S = 0.5
STRIP = "-s -w"
RUN_TIMEOUT_S = 900.0

# Runs in a fresh interpreter; prints one JSON object of timings (seconds).
_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from sideeye_tui.dwarf.binary import GoBinary
t1 = time.perf_counter()
path, cache, npcs = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = GoBinary.open(path, cache_dir=cache)
t2 = time.perf_counter()
layout = b.layout
t3 = time.perf_counter()
start, end = b.text_range
unknown = 0
for i in range(npcs):
    pc = start + (end - start) * i // npcs
    frames = b.symbolize(pc, return_address=bool(i % 2))
    unknown += frames[0].function == "?"
t4 = time.perf_counter()
b.save_cache()
t5 = time.perf_counter()
b.close()
print(json.dumps({
    "import": t1 - t0, "open": t2 - t1, "layout": t3 - t2, "symbolize": t4 - t3,
    "save": t5 - t4, "unknown": unknown, "go_version": b.go_version,
    "allgs": hex(layout.allgs_addr),
}))
"""


@dataclass
class Timings:
    """One child process's timings (seconds)."""

    import_s: float
    open_s: float
    layout_s: float
    symbolize_s: float
    save_s: float
    process_s: float  # the whole child, interpreter start to exit, seen from here
    unknown: int
    go_version: str

    @property
    def open_layout_s(self) -> float:
        return self.open_s + self.layout_s


@dataclass
class VariantResult:
    variant: str
    binary: Path
    size: int
    cold: list[Timings] = field(default_factory=list)
    cached: list[Timings] = field(default_factory=list)
    error: str | None = None


def build_big(stripped: bool) -> Path:
    """The big binary, built by (and cached with) the dwarf tests' builder."""
    from tests.dwarf.conftest import build, generated_types

    return build(
        "big",
        "local",
        STRIP if stripped else "",
        generated={"gen.go": generated_types(GENERATED_TYPES)},
    )


def run_child(binary: Path, cache_dir: Path, pcs: int) -> Timings:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(binary), str(cache_dir), str(pcs)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"analysis child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    d: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return Timings(
        import_s=d["import"],
        open_s=d["open"],
        layout_s=d["layout"],
        symbolize_s=d["symbolize"],
        save_s=d["save"],
        process_s=elapsed,
        unknown=int(d["unknown"]),
        go_version=str(d["go_version"]),
    )


def measure(variant: str, runs: int, pcs: int) -> VariantResult:
    print(f"[{variant}] building (or reusing) the big binary", file=sys.stderr, flush=True)
    binary = build_big(stripped=variant == "stripped")
    res = VariantResult(variant, binary, binary.stat().st_size)
    try:
        for i in range(runs):
            with tempfile.TemporaryDirectory(prefix="sideeye-bench-cache-") as tmp:
                cold = run_child(binary, Path(tmp), pcs)
                cached = run_child(binary, Path(tmp), pcs)
            res.cold.append(cold)
            res.cached.append(cached)
            print(
                f"[{variant}] run {i + 1}: open+layout cold {cold.open_layout_s:.3f} s, "
                f"cached {cached.open_layout_s:.3f} s; symbolize {pcs} pcs cold "
                f"{cold.symbolize_s:.3f} s, cached {cached.symbolize_s:.3f} s",
                file=sys.stderr,
                flush=True,
            )
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        res.error = f"{type(e).__name__}: {e}"
        print(f"[{variant}] error: {res.error}", file=sys.stderr, flush=True)
    return res


def _pair(values: list[float]) -> str:
    med, mx = median(values), maximum(values)
    if med is None or mx is None:
        return "-"
    return f"{med:.3f} / {mx:.3f}"


def _mark(values: list[float], limit: float) -> str:
    med = median(values)
    return "-" if med is None else ("✓" if med <= limit else "✗")


def table(results: list[VariantResult], pcs: int) -> str:
    head = (
        "| binary | cache | open + layout med / max (s) | target | "
        f"symbolize {pcs} pcs med / max (s) | save_cache med (s) | import med (s) "
        "| whole process med / max (s) |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        name = f"{r.variant} {r.size / 1e6:.1f} MB"
        for label, rows, limit in (
            ("cold", r.cold, COLD_TARGET_S),
            ("cached", r.cached, CACHED_TARGET_S),
        ):
            ol = [t.open_layout_s for t in rows]
            save = median([t.save_s for t in rows])
            imp = median([t.import_s for t in rows])
            lines.append(
                f"| {name} | {label} | {_pair(ol)} | ≤{limit:g} s {_mark(ol, limit)} "
                f"| {_pair([t.symbolize_s for t in rows])} "
                f"| {'-' if save is None else f'{save:.3f}'} "
                f"| {'-' if imp is None else f'{imp:.3f}'} "
                f"| {_pair([t.process_s for t in rows])} |"
            )
    return "\n".join(lines)


def report(
    results: list[VariantResult], args: argparse.Namespace, command: str, load: tuple[str, str]
) -> str:
    go = sorted({t.go_version for r in results for t in r.cold}) or ["?"]
    lines = [
        "# Binary analysis benchmark",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        *machine_lines(),
        f"- binary: tests/dwarf/testdata/big + {GENERATED_TYPES} generated types, "
        f"built with {', '.join(go)}",
        f"- runs: {args.runs} (each a cold process then a cached one, new cache dir per run)",
        f"- load average before / after: {load[0]} / {load[1]}",
        f"- sideeye revision: {git_revision()}",
        f"- command: `{command}`",
        "",
        table(results, args.pcs),
        "",
        "Seconds, median / max over the runs, each in a fresh Python process. *open + "
        "layout*: `GoBinary.open(path, cache_dir)` then `.layout` (the targets apply to "
        "this: ≤5 s cold, ≤0.5 s cached). *symbolize*: that many pcs spread evenly over "
        "the text, every other one as a return address; cached, they come from the "
        "frames memoized by the cold run's `save_cache()`. *import*: importing "
        "sideeye_tui.dwarf.binary. *whole process*: the child process from start to "
        "exit, interpreter start-up included. Stripped, cold: the runtime layout comes "
        "from a tiny reference program built on the spot with the same Go version (a "
        "fresh machine's case; Go's own build cache is warm, so that build is mostly a "
        "link). Cold means sideeye's cache is empty: the binary's pages are in the OS "
        "page cache either way (the benchmark does not drop it).",
        "",
    ]
    for r in results:
        lines.append(f"- {r.variant}: `{r.binary.relative_to(PROJECT_ROOT)}`, {r.size:,} bytes")
        if r.size < MIN_SIZE and r.variant == "dwarf":
            lines.append(f"  - smaller than {MIN_SIZE:,} bytes: below the benchmark's premise")
        unknown = {t.unknown for t in r.cold + r.cached}
        if unknown - {0}:
            lines.append(f"  - pcs symbolized as unknown (padding between functions): {unknown}")
        if r.error:
            lines.append(f"  - error: {r.error}")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.analysis", description=__doc__.strip().split("\n")[0]
    )
    p.add_argument("--runs", type=int, default=3, help="cold+cached pairs (default 3)")
    p.add_argument("--pcs", type=int, default=1000, help="pcs to symbolize (default 1000)")
    p.add_argument(
        "--variants",
        default="dwarf,stripped",
        help="comma-separated: dwarf, stripped (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report path")
    p.add_argument("--no-write", action="store_true", help="print only, write no report file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.runs < 1 or args.pcs < 1 or not set(variants) <= {"dwarf", "stripped"}:
        print("need --runs ≥ 1, --pcs ≥ 1, variants among dwarf,stripped", file=sys.stderr)
        return 2
    command = shlex.join(
        ["python", "-m", "bench.analysis", *(sys.argv[1:] if argv is None else argv)]
    )
    load_before = loadavg()
    results = [measure(v, args.runs, args.pcs) for v in variants]
    text = report(results, args, command, (load_before, loadavg()))
    print(text)
    if not args.no_write:
        args.out.write_text(text)
        print(f"written to {args.out}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
