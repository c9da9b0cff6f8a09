"""Compare a snapshot with the target's own goroutine dump, goroutine by goroutine.

    curl -s 'http://HOST/debug/pprof/goroutine?debug=2' > dump.txt   # right after the snapshot
    .venv/bin/python -m bench.traceback_parity FILE.duckdb dump.txt [--snapshot N] [--system]

A debug=2 dump follows Go's default traceback: runtime.* frames (unless exported) and
wrapper frames hidden; --system compares with a GOTRACEBACK=system crash dump instead,
every frame shown. Goroutines running or runnable in either view are skipped (they
move between the two captures); each differing goroutine is grouped by its first
differing frame, the commonest first. This is how the snapshot is checked against a real
service nobody here wrote (README, "How it was checked")."""

from __future__ import annotations

import argparse
import collections
import re
from dataclasses import dataclass

import duckdb

Frame = tuple[str, str, int]  # function, file, line


@dataclass(frozen=True)
class Dumped:
    header: str  # "select", "chan receive, 3 minutes", "running"...
    frames: list[Frame]


def parse_dump(text: str) -> dict[int, Dumped]:
    out: dict[int, Dumped] = {}
    for block in text.split("\n\n"):
        lines = block.strip("\n").splitlines()
        m = re.match(r"goroutine (\d+) \[([^\]]*)\]", lines[0]) if lines else None
        if m is None:
            continue
        frames: list[Frame] = []
        for call, where in zip(lines[1::2], lines[2::2], strict=False):
            if call.startswith("created by"):
                break
            loc = re.match(r"\s*(.*):(\d+)", where.split(" +")[0])
            if loc is None:
                break
            name = re.sub(r"\([^()]*\)$", "", call)
            frames.append((name, loc.group(1), int(loc.group(2))))
        out[int(m.group(1))] = Dumped(m.group(2), frames)
    return out


def shown_by_default(function: str, wrapper: bool) -> bool:
    """Go's default traceback (runtime/traceback.go, showfuncinfo)."""
    if wrapper:
        return False
    return not function.startswith("runtime.") or function[len("runtime.") :][:1].isupper()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("dump")
    ap.add_argument("--snapshot", type=int, default=None)
    ap.add_argument("--system", action="store_true", help="the dump is GOTRACEBACK=system")
    args = ap.parse_args()
    con = duckdb.connect(args.file, read_only=True)
    row = con.execute("SELECT max(snapshot_id) FROM snapshots").fetchone()
    sid = args.snapshot if args.snapshot is not None else (row[0] if row else None)
    cols = {r[0] for r in con.execute("DESCRIBE frames").fetchall()}
    wrapper = "wrapper" if "wrapper" in cols else "false"
    ours: dict[int, list[Frame]] = collections.defaultdict(list)
    for goid, fn, file, line, wrap in con.execute(
        f"SELECT goid, function, file, line, {wrapper} FROM frames WHERE snapshot_id = ?"
        " ORDER BY goid, depth",
        [sid],
    ).fetchall():
        if args.system or shown_by_default(fn, bool(wrap)):
            ours[goid].append((fn, file, line))
    status = dict(
        con.execute("SELECT goid, status FROM goroutines WHERE snapshot_id = ?", [sid]).fetchall()
    )
    with open(args.dump, encoding="utf-8", errors="replace") as f:
        dumped = parse_dump(f.read())
    same = differ = absent = 0
    firsts: collections.Counter[tuple[int, str, str]] = collections.Counter()
    example: dict[tuple[int, str, str], int] = {}
    for goid, d in dumped.items():
        if goid not in status:
            absent += 1
            continue
        if d.header.startswith(("running", "runnable")) or status[goid] in ("running", "runnable"):
            continue
        mine = ours[goid]
        if mine == d.frames:
            same += 1
            continue
        differ += 1
        k = next(
            i
            for i in range(max(len(mine), len(d.frames)) + 1)
            if i >= len(mine) or i >= len(d.frames) or mine[i] != d.frames[i]
        )
        a = f"{mine[k][0]} {mine[k][1]}:{mine[k][2]}" if k < len(mine) else "(end)"
        b = f"{d.frames[k][0]} {d.frames[k][1]}:{d.frames[k][2]}" if k < len(d.frames) else "(end)"
        firsts[(k, a, b)] += 1
        example.setdefault((k, a, b), goid)
    print(
        f"snapshot {sid}: {same + differ} goroutines compared, {same} identical, {differ}"
        f" different; {absent} in the dump only (born after the snapshot)"
    )
    for (k, a, b), n in firsts.most_common(10):
        print(f"  {n} x frame {k} (e.g. goroutine {example[(k, a, b)]}): ours {a} / Go's {b}")


if __name__ == "__main__":
    main()
