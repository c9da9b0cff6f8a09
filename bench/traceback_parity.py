"""Compare a snapshot with the target's own goroutine dump, goroutine by goroutine.

    curl -s 'http://HOST/debug/pprof/goroutine?debug=2' > dump.txt   # right after the snapshot
    .venv/bin/python -m bench.traceback_parity FILE.duckdb dump.txt [--snapshot N] [--system]

A debug=2 dump follows Go's default traceback: unexported runtime frames and wrapper
frames hidden; --system compares with a GOTRACEBACK=system crash dump instead, every
frame shown. Goroutines running or runnable in either view are skipped (they move
between the two captures); differing goroutines are grouped by what differs, the
commonest first. The dump is read and compared by tests/capture/tracebacks.py, the
parser the traceback-parity tests use. This is how snapshots are checked against a
real service (bench/realsvc)."""

from __future__ import annotations

import argparse
import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from tests.capture.tracebacks import Traceback, compare, parse_dump, shown_by_default

Row = tuple[str, str, int, bool]  # function, file, line, wrapper


@dataclass
class Parity:
    same: int = 0
    differ: int = 0
    absent: int = 0  # in the dump only: born after the snapshot
    why: collections.Counter[str] = field(default_factory=collections.Counter)


def parity(
    ours: Mapping[int, Sequence[Row]],
    status: Mapping[int, str],
    dumped: Mapping[int, Traceback],
    system: bool,
) -> Parity:
    out = Parity()
    for goid, truth in dumped.items():
        if goid not in status:
            out.absent += 1
            continue
        if truth.state in ("running", "runnable") or status[goid] in ("running", "runnable"):
            continue
        frames = [
            (fn, file, line)
            for fn, file, line, wrapper in ours.get(goid, ())
            if system or not wrapper
        ]
        if not system:
            frames = [f for i, f in enumerate(frames) if shown_by_default(f[0], i == 0)]
        why = compare(frames, truth)
        if why is None:
            out.same += 1
        else:
            out.differ += 1
            out.why[why] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("dump")
    ap.add_argument("--snapshot", type=int, default=None)
    ap.add_argument("--system", action="store_true", help="the dump is GOTRACEBACK=system")
    args = ap.parse_args()
    con = duckdb.connect(args.file, read_only=True)
    row = con.execute("SELECT max(snapshot_id) FROM snapshots").fetchone()
    sid = args.snapshot if args.snapshot is not None else (row[0] if row else None)
    cols = {r[0] for r in con.execute("DESCRIBE frames").fetchall()}
    wrapper = "coalesce(wrapper, false)" if "wrapper" in cols else "false"
    ours: dict[int, list[Row]] = collections.defaultdict(list)
    for goid, fn, file, line, wrap in con.execute(
        f"SELECT goid, function, file, line, {wrapper} FROM frames WHERE snapshot_id = ?"
        " ORDER BY goid, depth",
        [sid],
    ).fetchall():
        ours[goid].append((fn, file, line, bool(wrap)))
    status = dict(
        con.execute("SELECT goid, status FROM goroutines WHERE snapshot_id = ?", [sid]).fetchall()
    )
    with open(args.dump, encoding="utf-8", errors="replace") as f:
        p = parity(ours, status, parse_dump(f.read()), args.system)
    print(
        f"snapshot {sid}: {p.same + p.differ} goroutines compared, {p.same} identical,"
        f" {p.differ} different; {p.absent} in the dump only (born after the snapshot)"
    )
    for why, n in p.why.most_common(10):
        print(f"  {n} x {why}")


if __name__ == "__main__":
    main()
