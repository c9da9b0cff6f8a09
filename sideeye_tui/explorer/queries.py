"""Every query the explorer runs: DuckDB does the grouping, Python only formats.

The snapshot file is attached read-only to an in-memory DuckDB database, so the
explorer can keep small derived tables of its own (one row per distinct stack of a
snapshot, with the stack's text for filtering and its function path for the flame
graph) without writing the user's file, and share them between worker threads: each
thread gets its own cursor (DuckDB connections are not shared across threads).

Never imports Textual: the app calls these functions from worker threads.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb

from ..errors import StoreError
from ..store import SnapshotInfo, list_snapshots, open_store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ATTACHED = "snap"  # the snapshot file's name inside the in-memory database
BUCKET_PAGE = 200  # buckets fetched at once: the list says when there are more
GOROUTINE_PAGE = 500  # goroutines listed under one bucket

SortKey = Literal["count", "wait", "status"]
SORT_KEYS: tuple[SortKey, ...] = ("count", "wait", "status")

# A frame is the user's code when its package is main or lives under a path whose
# first element has a dot (example.com/...): the standard library's never do.
_USER_FUNCTION = r"^(main\.|[^/.]+\.[^/]*/)"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    exe: str | None
    go_version: str | None
    main_module: str | None
    pause_ns: int | None
    threads: int | None
    goroutines: int
    error: str | None


@dataclass(frozen=True)
class GoroutineFilter:
    """What the goroutine list shows: a text filter, one process, a flame-graph path."""

    text: str = ""
    pid: int | None = None
    path: tuple[str, ...] = ()  # functions outermost first: goroutines passing through

    @property
    def active(self) -> bool:
        return bool(self.text.strip()) or self.pid is not None or bool(self.path)


NO_FILTER = GoroutineFilter()


@dataclass(frozen=True)
class Bucket:
    """Goroutines of a snapshot with identical stacks."""

    stack_id: int
    count: int
    processes: int
    status: str | None
    wait_reason: str | None
    max_wait: float | None
    created_by: str | None
    function: str | None  # the innermost frame that is the user's code
    top: str | None  # the innermost frame


@dataclass(frozen=True)
class BucketPage:
    buckets: tuple[Bucket, ...]
    total_buckets: int
    total_goroutines: int
    statuses: tuple[tuple[str, int], ...]  # of the goroutines shown, largest first


@dataclass(frozen=True)
class GoroutineRow:
    pid: int
    goid: int
    status: str | None
    wait_reason: str | None
    wait_seconds: float | None
    labels: str | None
    created_by: str | None
    created_by_goid: int | None


@dataclass(frozen=True)
class FrameRow:
    depth: int
    function: str
    file: str
    line: int
    inlined: bool
    pc: int


@dataclass(frozen=True)
class CapturedRow:
    """One function table's row for a frame: its columns, JSON parsed."""

    table: str
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class GoroutineDetail:
    goroutine: GoroutineRow
    start_function: str | None
    truncated: bool
    unwound_from: str | None
    frames: tuple[FrameRow, ...]
    captured_depths: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class FlameNode:
    path: tuple[str, ...]  # outermost first; the node's function is path[-1]
    count: int

    @property
    def function(self) -> str:
        return self.path[-1] if self.path else "all"


@dataclass(frozen=True)
class DiffBucket:
    kind: Literal["stuck", "moved", "new", "gone"]
    stack_id: int
    count: int
    function: str | None
    status: str | None
    wait_reason: str | None
    at_least_seconds: float | None  # stuck only: time between the snapshots plus the wait
    goids: tuple[tuple[int, int], ...]  # (pid, goid), first few


# -- the store -----------------------------------------------------------------------


class ExplorerStore:
    """The snapshot file opened for browsing; cursor() gives each thread its own."""

    def __init__(self, path: str) -> None:
        open_store(path, read_only=True).close()  # one-line StoreError for a bad file
        self.path = path
        self._con = duckdb.connect(":memory:")
        try:
            self._con.execute(f"ATTACH {_sql_string(path)} AS {ATTACHED} (READ_ONLY)")
        except duckdb.Error as e:
            self._con.close()
            raise StoreError(f"{path}: {str(e).splitlines()[0]}") from e
        self._local = threading.local()
        self._index_lock = threading.Lock()
        self._indexed: set[int] = set()
        self._tables: frozenset[str] | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            cur.execute(f"USE {ATTACHED}")
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        self._con.close()

    def tables(self) -> frozenset[str]:
        if self._tables is None:
            rows = (
                self.cursor()
                .execute(
                    "SELECT table_name FROM information_schema.tables"
                    f" WHERE table_catalog = '{ATTACHED}'"
                )
                .fetchall()
            )
            self._tables = frozenset(str(r[0]) for r in rows)
        return self._tables

    def stacks_table(self, snapshot_id: int) -> str:
        """memory.main.stacks_N: one row per (pid, stack) of the snapshot, built once.

        The stack's lower-cased text makes a filter one scan over distinct stacks, not
        over every frame; its function list (outermost first) makes the flame graph a
        GROUP BY over list prefixes.
        """
        name = f"memory.main.stacks_{int(snapshot_id)}"
        with self._index_lock:
            if snapshot_id in self._indexed:
                return name
            self.cursor().execute(
                f"""
                CREATE OR REPLACE TABLE {name} AS
                WITH rep AS (
                    SELECT pid, stack_id, count(*) AS n, min(goid) AS goid,
                           max(wait_seconds) AS max_wait
                    FROM goroutines WHERE snapshot_id = $sid GROUP BY pid, stack_id
                )
                SELECT r.pid, r.stack_id, r.n, r.max_wait,
                       coalesce(list(f.function ORDER BY f.depth DESC)
                                FILTER (WHERE f.function IS NOT NULL), []) AS funcs,
                       lower(coalesce(string_agg(f.function || ' ' || f.file || ':' || f.line,
                                                 ' ' ORDER BY f.depth), '')) AS text,
                       arg_min(f.function, f.depth) AS top,
                       arg_min(f.function, f.depth)
                           FILTER (WHERE regexp_matches(f.function, '{_USER_FUNCTION}')) AS user_fn
                FROM rep r LEFT JOIN frames f
                  ON f.snapshot_id = $sid AND f.pid = r.pid AND f.goid = r.goid
                GROUP BY ALL
                """,
                {"sid": snapshot_id},
            )
            # One row per goroutine with its searchable text in one lower-cased column:
            # a filter keystroke is then two `contains` per row, no JSON cast.
            self.cursor().execute(
                f"""
                CREATE OR REPLACE TABLE memory.main.goroutines_{int(snapshot_id)} AS
                SELECT pid, goid, stack_id, status, wait_reason, wait_seconds, created_by,
                       created_by_goid, CAST(labels AS VARCHAR) AS labels,
                       lower(concat_ws(' ', status, wait_reason, CAST(labels AS VARCHAR),
                                       created_by)) AS search
                FROM goroutines WHERE snapshot_id = $sid
                """,
                {"sid": snapshot_id},
            )
            self._indexed.add(snapshot_id)
        return name

    def goroutines_table(self, snapshot_id: int) -> str:
        """memory.main.goroutines_N: the snapshot's goroutines with a search column."""
        self.stacks_table(snapshot_id)
        return f"memory.main.goroutines_{int(snapshot_id)}"


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- snapshots and processes ---------------------------------------------------------


def snapshots(store: ExplorerStore) -> list[SnapshotInfo]:
    return list_snapshots(store.cursor())


def processes(store: ExplorerStore, snapshot_id: int) -> list[ProcessInfo]:
    rows = (
        store.cursor()
        .execute(
            """SELECT pid, exe, go_version, main_module, pause_ns, threads,
                      coalesce(goroutine_count, 0), error
               FROM processes WHERE snapshot_id = ? ORDER BY pid""",
            [snapshot_id],
        )
        .fetchall()
    )
    return [ProcessInfo(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7]) for r in rows]


def taken_at(store: ExplorerStore, snapshot_id: int) -> datetime | None:
    row = (
        store.cursor()
        .execute("SELECT epoch_us(taken_at) FROM snapshots WHERE snapshot_id = ?", [snapshot_id])
        .fetchone()
    )
    return None if row is None else _EPOCH + timedelta(microseconds=int(row[0]))


# -- goroutine buckets ----------------------------------------------------------------


def _where(flt: GoroutineFilter, params: dict[str, object]) -> str:
    """SQL conditions over goroutines g joined with stacks s for the filter."""
    conds = ["true"]
    if flt.pid is not None:
        conds.append("g.pid = $pid")
        params["pid"] = flt.pid
    if flt.path:
        conds.append("s.funcs[1:$plen] = $path")
        params["plen"] = len(flt.path)
        params["path"] = list(flt.path)
    for i, word in enumerate(flt.text.lower().split()):
        key = f"w{i}"
        params[key] = word
        alternatives = [f"contains(s.text, ${key})", f"contains(g.search, ${key})"]
        if word.isdigit():
            alternatives.append(f"g.goid = {int(word)}")
        conds.append("(" + " OR ".join(alternatives) + ")")
    return " AND ".join(conds)


_BUCKET_ORDER: dict[SortKey, str] = {
    "count": "n DESC, max_wait DESC NULLS LAST, stack_id",
    "wait": "max_wait DESC NULLS LAST, n DESC, stack_id",
    "status": "status NULLS LAST, n DESC, stack_id",
}


def buckets(
    store: ExplorerStore,
    snapshot_id: int,
    flt: GoroutineFilter = NO_FILTER,
    sort: SortKey = "count",
    limit: int = BUCKET_PAGE,
) -> BucketPage:
    """The largest groups of identical stacks (by sort), and the status counts."""
    stacks = store.stacks_table(snapshot_id)
    params: dict[str, object] = {}
    where = _where(flt, params)
    cur = store.cursor()
    source = f"{store.goroutines_table(snapshot_id)} g JOIN {stacks} s ON s.pid = g.pid AND s.stack_id = g.stack_id"
    rows = cur.execute(
        f"""
        WITH b AS (
            SELECT g.stack_id, count(*) AS n, count(DISTINCT g.pid) AS procs,
                   mode(g.status) AS status, mode(g.wait_reason) AS wait_reason,
                   max(g.wait_seconds) AS max_wait, mode(g.created_by) AS created_by,
                   any_value(coalesce(s.user_fn, s.top)) AS fn, any_value(s.top) AS top
            FROM {source} WHERE {where} GROUP BY g.stack_id
        )
        SELECT *, count(*) OVER () AS total_buckets, sum(n) OVER () AS total
        FROM b ORDER BY {_BUCKET_ORDER[sort]} LIMIT {int(limit)}
        """,
        params,
    ).fetchall()
    statuses = cur.execute(
        f"SELECT coalesce(g.status, '?'), count(*) AS n FROM {source} WHERE {where}"
        " GROUP BY 1 ORDER BY n DESC, 1",
        params,
    ).fetchall()
    return BucketPage(
        buckets=tuple(
            Bucket(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], r[6], r[7], r[8])
            for r in rows
        ),
        total_buckets=int(rows[0][9]) if rows else 0,
        total_goroutines=int(rows[0][10]) if rows else 0,
        statuses=tuple((str(s), int(n)) for s, n in statuses),
    )


def bucket_goroutines(
    store: ExplorerStore,
    snapshot_id: int,
    stack_id: int,
    flt: GoroutineFilter = NO_FILTER,
    limit: int = GOROUTINE_PAGE,
) -> tuple[list[GoroutineRow], int]:
    """The goroutines of one bucket that pass the filter (longest waiting first), and
    how many there are in all."""
    stacks = store.stacks_table(snapshot_id)
    params: dict[str, object] = {"stack": stack_id}
    where = _where(flt, params)
    goroutines = store.goroutines_table(snapshot_id)
    rows = (
        store.cursor()
        .execute(
            f"""
            SELECT g.pid, g.goid, g.status, g.wait_reason, g.wait_seconds,
                   g.labels, g.created_by, g.created_by_goid,
                   count(*) OVER () AS total
            FROM {goroutines} g JOIN {stacks} s ON s.pid = g.pid AND s.stack_id = g.stack_id
            WHERE {where} AND g.stack_id = $stack
            ORDER BY g.wait_seconds DESC NULLS LAST, g.pid, g.goid LIMIT {int(limit)}
            """,
            params,
        )
        .fetchall()
    )
    return [GoroutineRow(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows], (
        int(rows[0][8]) if rows else 0
    )


def bucket_stack(store: ExplorerStore, snapshot_id: int, stack_id: int) -> list[FrameRow]:
    """The frames shared by a bucket's goroutines (read from one of them)."""
    row = (
        store.cursor()
        .execute(
            "SELECT pid, goid FROM goroutines WHERE snapshot_id = ? AND stack_id = ?"
            " ORDER BY pid, goid LIMIT 1",
            [snapshot_id, stack_id],
        )
        .fetchone()
    )
    return [] if row is None else frames(store, snapshot_id, int(row[0]), int(row[1]))


# -- one goroutine ------------------------------------------------------------------


def frames(store: ExplorerStore, snapshot_id: int, pid: int, goid: int) -> list[FrameRow]:
    rows = (
        store.cursor()
        .execute(
            """SELECT depth, function, file, line, inlined, pc FROM frames
               WHERE snapshot_id = ? AND pid = ? AND goid = ? ORDER BY depth""",
            [snapshot_id, pid, goid],
        )
        .fetchall()
    )
    return [
        FrameRow(int(r[0]), r[1] or "?", r[2] or "?", int(r[3] or 0), bool(r[4]), int(r[5] or 0))
        for r in rows
    ]


def function_tables(store: ExplorerStore) -> dict[str, str]:
    """Go function name -> its function table, from spec_tables (when the file has it)."""
    if "spec_tables" not in store.tables():
        return {}
    rows = (
        store.cursor()
        .execute("SELECT function, name FROM spec_tables WHERE kind = 'function'")
        .fetchall()
    )
    return {str(f): str(n) for f, n in rows if f is not None and str(n) in store.tables()}


def goroutine_detail(
    store: ExplorerStore, snapshot_id: int, pid: int, goid: int
) -> GoroutineDetail | None:
    row = (
        store.cursor()
        .execute(
            """SELECT pid, goid, status, wait_reason, wait_seconds, CAST(labels AS VARCHAR),
                      created_by, created_by_goid, start_function, truncated, unwound_from
               FROM goroutines WHERE snapshot_id = ? AND pid = ? AND goid = ?""",
            [snapshot_id, pid, goid],
        )
        .fetchone()
    )
    if row is None:
        return None
    fs = frames(store, snapshot_id, pid, goid)
    tables = function_tables(store)
    captured = frozenset(f.depth for f in fs if f.function in tables)
    return GoroutineDetail(
        goroutine=GoroutineRow(
            int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7]
        ),
        start_function=row[8],
        truncated=bool(row[9]),
        unwound_from=row[10],
        frames=tuple(fs),
        captured_depths=captured,
    )


def captured_values(
    store: ExplorerStore, snapshot_id: int, pid: int, goid: int, depth: int, function: str
) -> tuple[list[CapturedRow], list[tuple[str, str]]]:
    """The function-table rows of one frame, JSON columns parsed; and the frame's
    capture errors as (expression, reason)."""
    cur = store.cursor()
    out: list[CapturedRow] = []
    table = function_tables(store).get(function)
    key = [snapshot_id, pid, goid, depth]
    if table is not None:
        result = cur.execute(
            f"SELECT * FROM {_q(table)} WHERE snapshot_id = ? AND pid = ? AND goid = ?"
            " AND depth = ?",
            key,
        )
        description = result.description or []
        names = [str(d[0]) for d in description]
        json_columns = {str(d[0]) for d in description if str(d[1]).upper() == "JSON"}
        for r in result.fetchall():
            values = []
            for name, value in list(zip(names, r, strict=True))[4:]:
                if name in json_columns and isinstance(value, str):
                    with contextlib.suppress(ValueError):
                        value = json.loads(value)
                values.append((name, value))
            out.append(CapturedRow(table, tuple(values)))
    errors: list[tuple[str, str]] = []
    if "capture_errors" in store.tables():
        errors = [
            (str(e), str(r))
            for e, r in cur.execute(
                """SELECT expression, reason FROM capture_errors
                   WHERE snapshot_id = ? AND pid = ? AND goid = ? AND depth = ?
                   ORDER BY expression""",
                key,
            ).fetchall()
        ]
    return out, errors


# -- flame graph -------------------------------------------------------------------


def flame_children(
    store: ExplorerStore,
    snapshot_id: int,
    path: Sequence[str],
    levels: int,
    pid: int | None = None,
) -> list[FlameNode]:
    """The nodes up to `levels` below path (outermost-first functions), with the number
    of goroutines passing through each; largest first within a level."""
    stacks = store.stacks_table(snapshot_id)
    k = len(path)
    params: dict[str, object] = {"k": k, "path": list(path), "top": k + levels}
    pid_cond = ""
    if pid is not None:
        pid_cond = "AND pid = $pid"
        params["pid"] = pid
    rows = (
        store.cursor()
        .execute(
            f"""
            SELECT funcs[1:d] AS p, sum(n) AS n
            FROM {stacks}, range($k + 1, $top + 1) AS t(d)
            WHERE len(funcs) >= d AND funcs[1:$k] = $path {pid_cond}
            GROUP BY p ORDER BY len(p), n DESC, p
            """,
            params,
        )
        .fetchall()
    )
    return [FlameNode(tuple(r[0]), int(r[1])) for r in rows]


def flame_total(
    store: ExplorerStore, snapshot_id: int, path: Sequence[str], pid: int | None = None
) -> int:
    stacks = store.stacks_table(snapshot_id)
    params: dict[str, object] = {"k": len(path), "path": list(path)}
    pid_cond = ""
    if pid is not None:
        pid_cond = "AND pid = $pid"
        params["pid"] = pid
    row = (
        store.cursor()
        .execute(
            f"SELECT coalesce(sum(n), 0) FROM {stacks}"
            f" WHERE len(funcs) >= $k AND funcs[1:$k] = $path {pid_cond}",
            params,
        )
        .fetchone()
    )
    return int(row[0]) if row else 0


# -- diff -----------------------------------------------------------------------------

_DIFF_ORDER = {"stuck": 0, "moved": 1, "new": 2, "gone": 3}


def diff(store: ExplorerStore, old: int, new: int) -> list[DiffBucket]:
    """Goroutines of two snapshots matched by (pid, goid): in the same place in both
    (stuck: same stack), elsewhere (moved), only in the newer (new), only in the older
    (gone); grouped by stack, largest first."""
    old_stacks = store.stacks_table(old)
    new_stacks = store.stacks_table(new)
    t_old, t_new = taken_at(store, old), taken_at(store, new)
    gap = (t_new - t_old).total_seconds() if t_old and t_new else 0.0
    rows = (
        store.cursor()
        .execute(
            f"""
            WITH a AS (SELECT * FROM goroutines WHERE snapshot_id = $old),
                 b AS (SELECT * FROM goroutines WHERE snapshot_id = $new),
            m AS (
                SELECT CASE WHEN a.goid IS NULL THEN 'new' WHEN b.goid IS NULL THEN 'gone'
                            WHEN a.stack_id = b.stack_id THEN 'stuck' ELSE 'moved' END AS kind,
                       coalesce(b.pid, a.pid) AS pid, coalesce(b.goid, a.goid) AS goid,
                       coalesce(b.stack_id, a.stack_id) AS stack_id,
                       coalesce(b.status, a.status) AS status,
                       coalesce(b.wait_reason, a.wait_reason) AS wait_reason,
                       $gap + coalesce(a.wait_seconds, 0) AS at_least
                FROM a FULL OUTER JOIN b USING (pid, goid)
            )
            SELECT m.kind, m.stack_id, count(*) AS n,
                   any_value(coalesce(sn.user_fn, sn.top, so.user_fn, so.top)),
                   mode(m.status), mode(m.wait_reason), min(m.at_least),
                   list([m.pid, m.goid] ORDER BY m.pid, m.goid)[1:20]
            FROM m
            LEFT JOIN {new_stacks} sn ON m.kind <> 'gone' AND sn.pid = m.pid
                 AND sn.stack_id = m.stack_id
            LEFT JOIN {old_stacks} so ON m.kind = 'gone' AND so.pid = m.pid
                 AND so.stack_id = m.stack_id
            GROUP BY m.kind, m.stack_id
            """,
            {"old": old, "new": new, "gap": gap},
        )
        .fetchall()
    )
    out = [
        DiffBucket(
            kind=r[0],
            stack_id=int(r[1]),
            count=int(r[2]),
            function=r[3],
            status=r[4],
            wait_reason=r[5],
            at_least_seconds=float(r[6]) if r[0] == "stuck" else None,
            goids=tuple((int(p), int(g)) for p, g in r[7]),
        )
        for r in rows
    ]
    out.sort(key=lambda b: (_DIFF_ORDER[b.kind], -b.count, b.stack_id))
    return out


# -- formatting helpers shared by the panes ------------------------------------------


def format_duration(seconds: float | None) -> str:
    """Short human durations: 450ms, 12s, 5m, 2h3m, 4d."""
    if seconds is None:
        return "?"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        h, rem = divmod(int(seconds), 3600)
        return f"{h}h{rem // 60}m" if rem >= 60 else f"{h}h"
    return f"{seconds / 86400:.0f}d"


def bucket_label(b: Bucket) -> str:
    """panicparse-like: `N goroutines · chan receive · up to 5m · fn · created by F`."""
    parts = [f"{b.count} goroutine{'s' if b.count != 1 else ''}"]
    parts.append(b.wait_reason or b.status or "?")
    if b.max_wait is not None:
        parts.append(f"up to {format_duration(b.max_wait)}")
    if b.function:
        parts.append(b.function)
    if b.created_by:
        parts.append(f"created by {b.created_by}")
    return " · ".join(parts)
