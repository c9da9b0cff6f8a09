"""A snapshot as plain text: per process, the largest groups of identical stacks.

The terminal report of `sideeye-tui summary`, until the explorer exists. DuckDB does
the grouping (goroutines sharing a stack_id, a status, a wait reason and a creator
form one bucket); Python only formats. Needs no root: it reads the file only.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from .errors import StoreError
from .store import (
    SnapshotInfo,
    has_column,
    list_snapshots,
    open_store,
    process_outcome_sql,
    wrapper_sql,
)
from .text import printable_lines


@dataclass(frozen=True)
class StackFrame:
    function: str
    file: str
    line: int
    inlined: bool
    wrapper: bool = False  # a compiler-made wrapper, shown only on demand


@dataclass(frozen=True)
class Bucket:
    """Goroutines with the same stack, status, wait reason and creator."""

    count: int
    stack_id: int | None
    status: str | None
    wait_reason: str | None
    max_wait_seconds: float | None
    created_by: str | None
    truncated: bool  # some goroutine's stack was deeper than the capture kept
    locked_to_thread: bool  # wired to their threads (runtime.LockOSThread)
    frames: tuple[StackFrame, ...]  # of one goroutine of the bucket, innermost first


@dataclass(frozen=True)
class ProcessReport:
    pid: int
    exe: str | None
    build_id: str | None
    go_version: str | None
    main_module: str | None
    pause_ns: int | None
    threads: int | None
    backend: str | None
    goroutine_count: int
    error: str | None  # why it was not captured
    notes: tuple[str, ...]  # caveats about a capture that happened
    by_status: tuple[tuple[str, int], ...]  # most common first
    bucket_count: int  # all buckets, shown or not
    buckets: tuple[Bucket, ...]  # the largest, largest first


@dataclass(frozen=True)
class SnapshotReport:
    path: str
    snapshot: SnapshotInfo
    snapshot_ids: tuple[int, ...]  # every snapshot in the file, oldest first
    processes: tuple[ProcessReport, ...]


_PROCESSES = """
SELECT pid, exe, build_id, go_version, main_module, pause_ns, threads, backend,
       coalesce(goroutine_count, 0), {outcome}
FROM processes
WHERE snapshot_id = $sid
ORDER BY pid
"""

_STATUSES = """
SELECT pid, coalesce(status, '?') AS status, count(*) AS n
FROM goroutines
WHERE snapshot_id = $sid
GROUP BY ALL
ORDER BY pid, n DESC, status
"""

# Buckets ranked per process (the largest first, then the longest waiting), each with
# the stack of one of its goroutines, innermost frame first. stack_id leaves wrapper
# frames out, so a bucket is what Go's default traceback prints alike; its stack shows
# them only when asked ($wrappers).
_BUCKETS = """
WITH buckets AS (
    SELECT pid, stack_id, status, wait_reason, created_by, {locked} AS locked,
           count(*) AS n,
           max(wait_seconds) AS max_wait,
           bool_or(coalesce(truncated, false)) AS truncated,
           min(goid) AS sample_goid,
           row_number() OVER (
               PARTITION BY pid
               ORDER BY count(*) DESC, max(wait_seconds) DESC NULLS LAST, min(goid)
           ) AS rank,
           count(*) OVER (PARTITION BY pid) AS buckets
    FROM goroutines
    WHERE snapshot_id = $sid
    GROUP BY pid, stack_id, status, wait_reason, created_by, locked
)
SELECT b.pid, b.rank, b.buckets, b.n, b.stack_id, b.status, b.wait_reason, b.max_wait,
       b.created_by, b.truncated, b.locked,
       list({'function': f.function, 'file': f.file, 'line': f.line, 'inlined': f.inlined,
             'wrapper': {wrapper}}
            ORDER BY f.depth)
           FILTER (WHERE f.depth IS NOT NULL AND ($wrappers OR NOT {wrapper})) AS frames
FROM buckets b
LEFT JOIN frames f ON f.snapshot_id = $sid AND f.pid = b.pid AND f.goid = b.sample_goid
WHERE $top = 0 OR b.rank <= $top
GROUP BY ALL
ORDER BY b.pid, b.rank
"""


def read_report(
    con: duckdb.DuckDBPyConnection,
    path: str,
    snapshot_id: int | None = None,
    top: int = 10,
    wrappers: bool = False,
) -> SnapshotReport:
    """The report of one snapshot (the latest when snapshot_id is None).

    top limits the buckets shown per process (0: all of them). Stacks leave out the
    wrapper frames Go's default traceback elides, unless `wrappers`.
    """
    snapshots = list_snapshots(con)
    if not snapshots:
        raise StoreError(f"{path}: holds no snapshot")
    ids = tuple(s.snapshot_id for s in snapshots)
    if snapshot_id is None:
        info = snapshots[-1]
    else:
        found = [s for s in snapshots if s.snapshot_id == snapshot_id]
        if not found:
            raise StoreError(f"{path}: no snapshot {snapshot_id} (it holds {_id_ranges(ids)})")
        info = found[0]
    sid = info.snapshot_id
    params = {"sid": sid}

    statuses: dict[int, list[tuple[str, int]]] = {}
    for pid, status, n in con.execute(_STATUSES, params).fetchall():
        statuses.setdefault(int(pid), []).append((str(status), int(n)))

    buckets: dict[int, list[Bucket]] = {}
    bucket_counts: dict[int, int] = {}
    # Files written before goroutines.locked_to_thread have no such column.
    locked = (
        "coalesce(locked_to_thread, false)"
        if has_column(con, "goroutines", "locked_to_thread")
        else "false"
    )
    buckets_sql = _BUCKETS.replace("{wrapper}", wrapper_sql(con, "f")).replace("{locked}", locked)
    query = {"sid": sid, "top": max(top, 0), "wrappers": wrappers}
    for row in con.execute(buckets_sql, query).fetchall():
        pid, _, total, n, stack, status, reason, max_wait, created_by, truncated, lock = row[:11]
        frames = row[11]
        bucket_counts[int(pid)] = int(total)
        buckets.setdefault(int(pid), []).append(
            Bucket(
                count=int(n),
                stack_id=None if stack is None else int(stack),
                status=status,
                wait_reason=reason,
                max_wait_seconds=None if max_wait is None else float(max_wait),
                created_by=created_by,
                truncated=bool(truncated),
                locked_to_thread=bool(lock),
                frames=tuple(
                    StackFrame(
                        f["function"] or "?",
                        f["file"] or "?",
                        int(f["line"] or 0),
                        bool(f["inlined"]),
                        bool(f["wrapper"]),
                    )
                    for f in frames or ()
                ),
            )
        )

    processes = tuple(
        ProcessReport(
            pid=int(r[0]),
            exe=r[1],
            build_id=r[2],
            go_version=r[3],
            main_module=r[4],
            pause_ns=None if r[5] is None else int(r[5]),
            threads=None if r[6] is None else int(r[6]),
            backend=r[7],
            goroutine_count=int(r[8]),
            error=r[9],
            notes=tuple(r[10] or ()),
            by_status=tuple(statuses.get(int(r[0]), ())),
            bucket_count=bucket_counts.get(int(r[0]), 0),
            buckets=tuple(buckets.get(int(r[0]), ())),
        )
        for r in con.execute(_PROCESSES.format(outcome=process_outcome_sql(con)), params).fetchall()
    )
    return SnapshotReport(path, info, ids, processes)


def load_report(
    path: str, snapshot_id: int | None = None, top: int = 10, wrappers: bool = False
) -> SnapshotReport:
    """Open the file read-only, read the report, close. Failures are StoreErrors."""
    con = open_store(path, read_only=True)
    try:
        return read_report(con, path, snapshot_id, top, wrappers)
    except duckdb.Error as e:
        text = str(e).strip()
        raise StoreError(f"{path}: {text.splitlines()[0] if text else type(e).__name__}") from e
    finally:
        con.close()


# -- text -----------------------------------------------------------------------------

SEP = " · "
_FUNCTION_WIDTH = 64  # function column, beyond which file:line just follows


def _id_ranges(ids: tuple[int, ...]) -> str:
    """'snapshot 1' or 'snapshots 1-3, 5'."""
    parts: list[str] = []
    start = prev = ids[0]
    for i in (*ids[1:], None):
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ("snapshot " if len(ids) == 1 else "snapshots ") + ", ".join(parts)


def format_duration(seconds: float) -> str:
    """Short and human: 850ms, 12s, 4m05s, 2h10m, 3d04h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def bucket_title(b: Bucket) -> str:
    """N goroutines · status · wait reason · locked to thread · up to max wait · created
    by fn (in the order of Go's goroutine header: `[select, locked to thread]`)."""
    parts = [_plural(b.count, "goroutine"), b.status or "?"]
    if b.wait_reason:
        parts.append(b.wait_reason)
    if b.locked_to_thread:
        parts.append("locked to thread")
    if b.max_wait_seconds is not None:
        parts.append(f"up to {format_duration(b.max_wait_seconds)}")
    if b.created_by:
        parts.append(f"created by {b.created_by}")
    if b.truncated:
        parts.append("stack truncated")
    return SEP.join(parts)


def format_stack(frames: tuple[StackFrame, ...], indent: str = "    ") -> list[str]:
    """One line per frame, innermost first: function, then file:line."""
    if not frames:
        return [f"{indent}(no frames)"]
    names = [
        f.function + (" (inlined)" if f.inlined else "") + (" (wrapper)" if f.wrapper else "")
        for f in frames
    ]
    width = min(max(len(n) for n in names), _FUNCTION_WIDTH)
    return [
        f"{indent}{name.ljust(width)}  {f.file}:{f.line}"
        for name, f in zip(names, frames, strict=True)
    ]


def _process_lines(p: ProcessReport) -> list[str]:
    lines = [f"pid {p.pid}{SEP}{p.exe or '?'}"]
    about = [p.go_version or "Go version unknown", p.main_module or "module unknown"]
    if p.build_id:
        about.append(f"build id {p.build_id}")
    lines.append("  " + SEP.join(about))
    if p.error is not None:
        lines.append(f"  not captured: {p.error}")
        return lines
    # Caveats about a capture that happened (lost records, a walk left unfinished).
    lines.extend(f"  warning: {note}" for note in p.notes)
    capture = []
    if p.pause_ns is not None:
        capture.append(f"paused {p.pause_ns / 1e6:.2f} ms")
    if p.threads:
        capture.append(_plural(p.threads, "thread"))
    if p.backend:
        capture.append(f"{p.backend} backend")
    if capture:
        lines.append("  " + SEP.join(capture))
    counts = ", ".join(f"{status} {n}" for status, n in p.by_status)
    lines.append(f"  {_plural(p.goroutine_count, 'goroutine')}" + (f": {counts}" if counts else ""))
    for b in p.buckets:
        lines.append("")
        lines.append("  " + bucket_title(b))
        lines.extend(format_stack(b.frames))
        if b.truncated:
            lines.append("    ... deeper frames were not captured")
    hidden = p.bucket_count - len(p.buckets)
    if hidden > 0:
        rest = p.goroutine_count - sum(b.count for b in p.buckets)
        lines.append("")
        lines.append(
            f"  ... {_plural(hidden, 'more group')} of identical stacks"
            f" ({_plural(rest, 'goroutine')}); --top 0 shows all"
        )
    return lines


def format_report(r: SnapshotReport) -> list[str]:
    s = r.snapshot
    head = [
        f"snapshot {s.snapshot_id}",
        s.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    ]
    if s.hostname:
        head.append(f"host {s.hostname}")
    if s.tool_version:
        head.append(f"sideeye-tui {s.tool_version}")
    lines = [SEP.join(head)]
    others = f"{r.path} holds {_id_ranges(r.snapshot_ids)}"
    lines.append(f"{others}; --snapshot ID picks one" if len(r.snapshot_ids) > 1 else others)
    if not r.processes:
        lines.append("")
        lines.append("no process in this snapshot")
    for p in r.processes:
        lines.append("")
        lines.extend(_process_lines(p))
    return printable_lines(lines)  # names and labels come from the target
