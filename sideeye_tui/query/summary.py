"""The summary's reading of a snapshot: per process, the largest buckets of goroutines.

What `sideeye-tui summary` prints (report.py formats it). DuckDB does the grouping;
Python only shapes rows. Needs no root: it reads the file only.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ..errors import StoreError
from ..store.database import (
    SnapshotInfo,
    has_column,
    list_snapshots,
    open_store,
    process_outcome_sql,
    wrapper_sql,
)
from .buckets import LEVELS, Level
from .format import id_ranges


@dataclass(frozen=True)
class StackFrame:
    function: str
    file: str
    line: int
    inlined: bool
    wrapper: bool = False  # a compiler-made wrapper, shown only on demand


@dataclass(frozen=True)
class Bucket:
    """Goroutines of one process alike at a level (buckets.py): the same stack, and at
    the "group" level the same status, wait reason and creator too."""

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
# them only when asked ($wrappers). {key} is the level's grouping (buckets.py); at the
# "stack" level, a bucket's status, wait reason and creator are its most common ones.
_BUCKETS = """
WITH buckets AS (
    SELECT pid, stack_id, {attrs}, locked_to_thread AS locked,
           count(*) AS n,
           max(wait_seconds) AS max_wait,
           bool_or(coalesce(truncated, false)) AS truncated,
           min(goid) AS sample_goid,
           row_number() OVER (
               PARTITION BY pid
               ORDER BY count(*) DESC, max(wait_seconds) DESC NULLS LAST, min(goid)
           ) AS rank,
           count(*) OVER (PARTITION BY pid) AS buckets
    FROM ({goroutines})
    WHERE snapshot_id = $sid
    GROUP BY pid, {key}
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


def _goroutines_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The goroutines table with locked_to_thread never NULL: false in files written
    before the column."""
    if has_column(con, "goroutines", "locked_to_thread"):
        return (
            "SELECT * REPLACE (coalesce(locked_to_thread, false) AS locked_to_thread)"
            " FROM goroutines"
        )
    return "SELECT *, false AS locked_to_thread FROM goroutines"


def _buckets_sql(level: Level, wrapper: str, goroutines: str) -> str:
    columns = LEVELS[level]
    attrs = ", ".join(
        c if c in columns else f"mode({c}) AS {c}" for c in ("status", "wait_reason", "created_by")
    )
    return (
        _BUCKETS.replace("{attrs}", attrs)
        .replace("{key}", ", ".join(columns))
        .replace("{wrapper}", wrapper)
        .replace("{goroutines}", goroutines)
    )


def read_report(
    con: duckdb.DuckDBPyConnection,
    path: str,
    snapshot_id: int | None = None,
    top: int = 10,
    wrappers: bool = False,
    level: Level = "group",
) -> SnapshotReport:
    """The report of one snapshot (the latest when snapshot_id is None).

    top limits the buckets shown per process (0: all of them); level says what a bucket
    is (buckets.py). Stacks leave out the wrapper frames Go's default traceback
    elides, unless `wrappers`.
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
            raise StoreError(f"{path}: no snapshot {snapshot_id} (it holds {id_ranges(ids)})")
        info = found[0]
    sid = info.snapshot_id
    params = {"sid": sid}

    statuses: dict[int, list[tuple[str, int]]] = {}
    for pid, status, n in con.execute(_STATUSES, params).fetchall():
        statuses.setdefault(int(pid), []).append((str(status), int(n)))

    buckets: dict[int, list[Bucket]] = {}
    bucket_counts: dict[int, int] = {}
    buckets_sql = _buckets_sql(level, wrapper_sql(con, "f"), _goroutines_sql(con))
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
    path: str,
    snapshot_id: int | None = None,
    top: int = 10,
    wrappers: bool = False,
    level: Level = "group",
) -> SnapshotReport:
    """Open the file read-only, read the report, close. Failures are StoreErrors."""
    con = open_store(path, read_only=True)
    try:
        return read_report(con, path, snapshot_id, top, wrappers, level)
    except duckdb.Error as e:
        text = str(e).strip()
        raise StoreError(f"{path}: {text.splitlines()[0] if text else type(e).__name__}") from e
    finally:
        con.close()


# -- text -----------------------------------------------------------------------------
