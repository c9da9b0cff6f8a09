"""Every query the explorer runs: DuckDB does the grouping, Python only formats.

The snapshot file is attached read-only to an in-memory DuckDB database, so the
explorer can keep small derived tables of its own (see Derived: goroutines counted by
stack, each distinct stack's frames as name ids, the names themselves) without writing
the user's file, and share them between worker threads: each thread gets its own
cursor (DuckDB connections are not shared across threads).

Never imports Textual: the app calls these functions from worker threads.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

import duckdb

from ..errors import StoreError
from ..store.database import (
    SnapshotInfo,
    list_snapshots,
    open_store,
    process_outcome_sql,
    wrapper_sql,
)
from .format import format_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ATTACHED = "snap"  # the snapshot file's name inside the in-memory database
BUCKET_PAGE = 200  # buckets fetched at once: the list says when there are more
GOROUTINE_PAGE = 500  # goroutines listed under one bucket
PAGES_REMEMBERED = 64  # pages of buckets kept: backspace and retyping cost nothing
DETAILS_REMEMBERED = 32  # goroutine details kept (the highlighted one is read ahead)

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
    error: str | None  # why it was not captured
    notes: tuple[str, ...] = ()  # caveats about a capture that happened


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
    wrapper: bool = False  # a compiler-made wrapper: hidden unless asked (Go's default)


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


@dataclass(frozen=True)
class Derived:
    """The names of one snapshot's derived tables, in the in-memory database.

    Built once per snapshot (prepare), so that a filter keystroke only touches small,
    narrow tables: stacks are matched through the distinct function and file names
    (thousands of strings) instead of the text of every stack (a 100,000-goroutine
    snapshot whose stacks all differ holds 80 MB of it), and a bucket's counts are
    read, not recomputed.
    """

    goroutines: str  # one row per goroutine, with a lower-cased `search` column
    cells: str  # goroutines counted by (pid, stack_id, status, wait_reason, created_by)
    buckets: str  # one row per stack_id: n, procs, max_wait over every process
    stacks: str  # one row per stack_id: its innermost frame and innermost user frame
    names: str  # distinct function and file names: id (hash), name, text (lower-cased), user
    frames: str  # every distinct stack's frames once: stack_id, depth, fn, file, line
    lines: str  # distinct line numbers: line, text
    flame: str  # built on first use: stack_id, funcs (name ids, outermost first)
    stack_count: int = 0  # distinct stacks (rows of buckets)


V = TypeVar("V")


class Memo(Generic[V]):
    """The last answers of a query by key, shared by the worker threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._answers.get(key)
            if value is not None:
                self._answers.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._answers[key] = value
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)


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
        self._prepared: dict[int, Derived] = {}
        self._flamed: set[int] = set()
        self._tables: frozenset[str] | None = None
        self._wrapper: str | None = None
        # Answers kept for the life of the file (it is read-only, so they stay true).
        self.pages: Memo[BucketPage] = Memo(PAGES_REMEMBERED)
        self.details: Memo[GoroutineDetail] = Memo(DETAILS_REMEMBERED)

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

    def wrapper(self, alias: str = "f") -> str:
        """SQL for frames.wrapper of the frames aliased `alias` (false in a file written
        before the column existed)."""
        if self._wrapper is None:
            self._wrapper = wrapper_sql(self.cursor(), "{alias}")
        return self._wrapper.replace("{alias}", alias)

    def prepare(self, snapshot_id: int) -> Derived:
        """The snapshot's derived tables, built on the first call (in a worker thread:
        about 0.1 s for 100,000 goroutines of 500 stacks, 0.3 s when all differ)."""
        derived = self._prepared.get(snapshot_id)
        if derived is not None:
            return derived
        with self._index_lock:
            derived = self._prepared.get(snapshot_id)
            if derived is None:
                derived = _derived_names(snapshot_id)
                cur = self.cursor()
                for sql in _derived_sql(derived, self.wrapper("f")):
                    cur.execute(sql, {"sid": snapshot_id} if "$sid" in sql else None)
                row = cur.execute(f"SELECT count(*) FROM {derived.buckets}").fetchone()
                derived = replace(derived, stack_count=int(row[0]) if row else 0)
                self._prepared[snapshot_id] = derived
        return derived

    def flame_table(self, snapshot_id: int) -> str:
        """The stacks as lists of function ids, outermost first, for the flame graph and
        its path filter: built on first use, since only those need it."""
        derived = self.prepare(snapshot_id)
        if snapshot_id not in self._flamed:
            with self._index_lock:
                if snapshot_id not in self._flamed:
                    # list_sort of (-depth, fn) pairs orders each list without an ordered
                    # aggregate, which costs far more time and memory here.
                    self.cursor().execute(
                        f"""CREATE OR REPLACE TABLE {derived.flame} AS
                        SELECT stack_id,
                               coalesce(list_transform(
                                   list_sort(list((-depth, fn)) FILTER (WHERE fn IS NOT NULL)),
                                   x -> x[2]), []) AS funcs
                        FROM {derived.frames} GROUP BY stack_id"""
                    )
                    self._flamed.add(snapshot_id)
        return derived.flame


def _derived_names(snapshot_id: int) -> Derived:
    def name(kind: str) -> str:
        return f"memory.main.{kind}_{int(snapshot_id)}"

    return Derived(
        goroutines=name("goroutines"),
        cells=name("cells"),
        buckets=name("buckets"),
        stacks=name("stacks"),
        names=name("names"),
        frames=name("frames"),
        lines=name("lines"),
        flame=name("flame"),
    )


# No window functions in the explorer's queries: with DuckDB 1.4, a count over the
# whole result of a UNION ALL, as a window, now and then fails with "INTERNAL Error:
# Attempted to access index 0 within vector of size 0" (duckdb/duckdb#22352), after
# which the database refuses every query. Totals are aggregates instead.


def _derived_sql(d: Derived, wrapper: str) -> list[str]:
    """The statements building a snapshot's derived tables ($sid: the snapshot).
    `wrapper`: SQL for frames f's wrapper column; a stack's frames leave wrappers out,
    as its stack_id and Go's default traceback do."""
    return [
        # The searchable text of a goroutine in one lower-cased column: a filter word is
        # one `contains` per goroutine, no JSON cast.
        f"""CREATE OR REPLACE TABLE {d.goroutines} AS
        SELECT pid, goid, stack_id, status, wait_reason, wait_seconds, created_by,
               created_by_goid, CAST(labels AS VARCHAR) AS labels,
               lower(concat_ws(' ', status, wait_reason, CAST(labels AS VARCHAR),
                               created_by)) AS search
        FROM goroutines WHERE snapshot_id = $sid""",
        # r, the first row of a cell, breaks ties of a bucket's most common status (as
        # DuckDB's mode() does: the value seen first).
        f"""CREATE OR REPLACE TABLE {d.cells} AS
        SELECT pid, stack_id, status, wait_reason, created_by, count(*) AS k,
               max(wait_seconds) AS w, min(rowid) AS r
        FROM {d.goroutines} GROUP BY ALL""",
        f"""CREATE OR REPLACE TABLE {d.buckets} AS
        SELECT stack_id, sum(k)::BIGINT AS n, count(DISTINCT pid) AS procs, max(w) AS max_wait
        FROM {d.cells} GROUP BY stack_id""",
        # A name's id is its 64-bit hash: the frames get theirs without a join on
        # strings (two of them over every frame cost more than the rest together).
        # Two of a snapshot's few thousand names sharing a hash is too unlikely to
        # matter; it would only let a word match one more stack.
        f"""CREATE OR REPLACE TABLE {d.names} AS
        SELECT hash(name) AS id, name, lower(name) AS text,
               regexp_matches(name, '{_USER_FUNCTION}') AS user
        FROM (SELECT function AS name FROM frames WHERE snapshot_id = $sid
              UNION SELECT file FROM frames WHERE snapshot_id = $sid)
        WHERE name IS NOT NULL""",
        # Equal stack_ids have equal (function, file, line) frames, wrappers left out:
        # one goroutine each.
        f"""CREATE OR REPLACE TABLE {d.frames} AS
        WITH rep AS (
            SELECT stack_id, arg_min(pid, (pid, goid)) AS pid, min(goid) AS goid
            FROM {d.goroutines} GROUP BY stack_id
        )
        SELECT r.stack_id, f.depth,
               CASE WHEN f.function IS NOT NULL THEN hash(f.function) END AS fn,
               CASE WHEN f.file IS NOT NULL THEN hash(f.file) END AS file, f.line
        FROM rep r JOIN frames f ON f.snapshot_id = $sid AND f.pid = r.pid AND f.goid = r.goid
        WHERE NOT {wrapper}""",
        f"""CREATE OR REPLACE TABLE {d.lines} AS
        SELECT DISTINCT line, CAST(line AS VARCHAR) AS text FROM {d.frames}
        WHERE line IS NOT NULL""",
        f"""CREATE OR REPLACE TABLE {d.stacks} AS
        WITH t AS (
            SELECT stack_id, arg_min(fn, depth) AS top,
                   arg_min(fn, depth) FILTER (WHERE fn IN (SELECT id FROM {d.names} WHERE user))
                       AS user_fn
            FROM {d.frames} GROUP BY stack_id
        )
        SELECT t.stack_id, a.name AS top, b.name AS user_fn
        FROM t LEFT JOIN {d.names} a ON a.id = t.top LEFT JOIN {d.names} b ON b.id = t.user_fn""",
    ]


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- snapshots and processes ---------------------------------------------------------


def snapshots(store: ExplorerStore) -> list[SnapshotInfo]:
    return list_snapshots(store.cursor())


def processes(store: ExplorerStore, snapshot_id: int) -> list[ProcessInfo]:
    cur = store.cursor()
    rows = cur.execute(
        f"""SELECT pid, exe, go_version, main_module, pause_ns, threads,
                   coalesce(goroutine_count, 0), {process_outcome_sql(cur)}
            FROM processes WHERE snapshot_id = ? ORDER BY pid""",
        [snapshot_id],
    ).fetchall()
    return [
        ProcessInfo(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], tuple(r[8] or ()))
        for r in rows
    ]


def taken_at(store: ExplorerStore, snapshot_id: int) -> datetime | None:
    row = (
        store.cursor()
        .execute("SELECT epoch_us(taken_at) FROM snapshots WHERE snapshot_id = ?", [snapshot_id])
        .fetchone()
    )
    return None if row is None else _EPOCH + timedelta(microseconds=int(row[0]))


# -- goroutine buckets ----------------------------------------------------------------
#
# A goroutine passes the filter when, for every word of its text, the word is in its
# stack's text (each frame as "function file:line", lower-cased) or in its own text
# (status, wait reason, labels, creator) or is its goid; and it belongs to the chosen
# process and passes through the chosen flame-graph path. A stack's text is searched
# through its distinct names: a word without spaces is in "function file:line" when it
# is in the function, in the file, in the line's digits, or spans the end of the file
# and the start of the line around the colon.


def _frame_match(d: Derived, word: str, key: str, params: dict[str, object]) -> str:
    """SQL true for the rows f of d.frames whose frame text contains word ($key)."""
    params[key] = word
    names = f"(SELECT id FROM {d.names} WHERE contains(text, ${key}))"
    alternatives = [f"f.fn IN {names}", f"f.file IN {names}"]
    if _digits(word):
        alternatives.append(f"f.line IN (SELECT line FROM {d.lines} WHERE contains(text, ${key}))")
    if ":" in word:
        head, tail = word.rsplit(":", 1)
        if tail == "" or _digits(tail):
            params[key + "h"] = head
            params[key + "t"] = tail
            alternatives.append(
                f"(f.file IN (SELECT id FROM {d.names} WHERE suffix(text, ${key}h))"
                f" AND f.line IN (SELECT line FROM {d.lines} WHERE starts_with(text, ${key}t)))"
            )
    return "(" + " OR ".join(alternatives) + ")"


def _digits(word: str) -> bool:
    """A goid or the digits of a line number could be this word ("²" is a digit too)."""
    return word.isascii() and word.isdigit()


def _goroutine_match(word: str, key: str) -> str:
    """SQL true for the goroutines g whose own text contains word ($key), or whose goid
    it is."""
    alternatives = [f"contains(g.search, ${key})"]
    if _digits(word):
        alternatives.append(f"g.goid = {int(word)}")
    return "(" + " OR ".join(alternatives) + ")"


def _path_ids(d: Derived, params: dict[str, object], path: Sequence[str]) -> str:
    """SQL for path's function names as ids; NULL when a name is not in the snapshot."""
    params["path"] = list(path)
    params["plen"] = len(path)
    return f"""(SELECT CASE WHEN count(n.id) = $plen THEN coalesce(list(n.id ORDER BY p.i), []) END
        FROM (SELECT unnest(CAST($path AS VARCHAR[])) AS name,
                     generate_subscripts(CAST($path AS VARCHAR[]), 1) AS i) p
        JOIN {d.names} n ON n.name = p.name)"""


_BUCKET_ORDER: dict[SortKey, str] = {
    "count": "n DESC, max_wait DESC NULLS LAST, stack_id",
    "wait": "max_wait DESC NULLS LAST, n DESC, stack_id",
    "status": "status NULLS LAST, n DESC, stack_id",
}


_FINAL_ORDER: dict[SortKey, str] = {
    "count": "t.n DESC, t.max_wait DESC NULLS LAST, t.stack_id",
    "wait": "t.max_wait DESC NULLS LAST, t.n DESC, t.stack_id",
    "status": "s.status NULLS LAST, t.n DESC, t.stack_id",
}


def _mode(name: str, column: str, source: str) -> str:
    """A CTE: per stack_id the most common non-NULL column of source's cells (ties: the
    value seen first, as DuckDB's mode() breaks them)."""
    return f"""{name} AS (
        SELECT stack_id, arg_max({column}, (k, -r)) AS {column}
        FROM (SELECT stack_id, {column}, sum(k) AS k, min(r) AS r FROM {source}
              WHERE {column} IS NOT NULL GROUP BY ALL)
        GROUP BY stack_id)"""


def buckets(
    store: ExplorerStore,
    snapshot_id: int,
    flt: GoroutineFilter = NO_FILTER,
    sort: SortKey = "count",
    limit: int = BUCKET_PAGE,
) -> BucketPage:
    """The largest groups of identical stacks (by sort), and the status counts.

    Two steps. The stacks every word matches (and on the flame path) go to temporary
    tables of this thread's cursor; when that is every stack (the first letters of a
    word usually are) the answer is the unfiltered page, read once and remembered.
    Otherwise those stacks bring their goroutines whole, counted in advance, and only
    the goroutines matched through their own text (a status, a label, a goid) are
    counted one by one.
    """
    words = tuple(flt.text.lower().split())
    key = (snapshot_id, words, flt.pid, flt.path, sort, limit)
    page = store.pages.get(key)
    if page is not None:
        return page
    d = store.prepare(snapshot_id)
    cur = store.cursor()
    params: dict[str, object] = {}
    sets: list[str] = []
    for i, word in enumerate(words):
        match = _frame_match(d, word, "w", params)
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE s{i} AS"
            f" SELECT DISTINCT stack_id FROM {d.frames} f WHERE {match}",
            params,
        )
        params.clear()
        sets.append(f"s{i}")
    if flt.path:
        flame = store.flame_table(snapshot_id)
        ids = _path_ids(d, params, flt.path)
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE sp AS"
            f" SELECT stack_id FROM {flame} WHERE funcs[1:$plen] = {ids}",
            params,
        )
        params.clear()
        sets.append("sp")
    in_hit = ""
    if sets:
        row = cur.execute(
            "CREATE OR REPLACE TEMP TABLE hit AS "
            + " INTERSECT ".join(f"SELECT stack_id FROM temp.main.{s}" for s in sets)
        ).fetchone()
        if row is not None and int(row[0]) == d.stack_count:
            # Every goroutine passes: the page without words and path.
            page = buckets(store, snapshot_id, GoroutineFilter(pid=flt.pid), sort, limit)
            store.pages.put(key, page)
            return page
        in_hit = " AND stack_id IN (SELECT stack_id FROM temp.main.hit)"

    ctes: list[str] = []
    pid = g_pid = ""
    if flt.pid is not None:
        params["pid"] = flt.pid
        pid, g_pid = " AND pid = $pid", " AND g.pid = $pid"
    cells = [f"SELECT * FROM {d.cells} WHERE true{in_hit}{pid}"]
    if flt.pid is None:
        counts = [f"SELECT stack_id, n, procs, max_wait FROM {d.buckets} WHERE true{in_hit}"]
    else:
        counts = [
            f"SELECT stack_id, sum(k) AS n, 1 AS procs, max(w) AS max_wait FROM {d.cells}"
            f" WHERE true{in_hit}{pid} GROUP BY stack_id"
        ]
    if words:
        # Goroutines of the other stacks that their own text lets through.
        own = []
        each = []
        for i, word in enumerate(words):
            params[f"w{i}"] = word
            own.append(_goroutine_match(word, f"w{i}"))
            each.append(f"(g.stack_id IN (SELECT stack_id FROM temp.main.s{i}) OR {own[-1]})")
        path = " AND g.stack_id IN (SELECT stack_id FROM temp.main.sp)" if flt.path else ""
        ctes.append(
            f"""part AS MATERIALIZED (
            SELECT pid, stack_id, status, wait_reason, created_by, count(*) AS k,
                   max(wait_seconds) AS w, min(rowid) AS r
            FROM {d.goroutines} g
            WHERE ({" OR ".join(own)})
                  AND g.stack_id NOT IN (SELECT stack_id FROM temp.main.hit)
                  AND {" AND ".join(each)}{path}{g_pid}
            GROUP BY ALL)"""
        )
        cells.append("SELECT * FROM part")
        counts.append(
            "SELECT stack_id, sum(k), count(DISTINCT pid), max(w) FROM part GROUP BY stack_id"
        )
    ctes.append("c AS (" + " UNION ALL ".join(cells) + ")")
    ctes.append("b AS MATERIALIZED (" + " UNION ALL ".join(counts) + ")")
    if sort == "status":
        ctes.append(_mode("ranked_status", "status", "c"))
        ranked = "SELECT b.*, s.status FROM b LEFT JOIN ranked_status s USING (stack_id)"
    else:
        ranked = "SELECT * FROM b"
    ctes.append(
        f"""top AS MATERIALIZED (
        SELECT * FROM ({ranked}) ORDER BY {_BUCKET_ORDER[sort]} LIMIT {int(limit)})"""
    )
    ctes.append("tc AS MATERIALIZED (SELECT * FROM c WHERE stack_id IN (SELECT stack_id FROM top))")
    ctes += [_mode(f"{c}_m", c, "tc") for c in ("status", "wait_reason", "created_by")]
    rows = cur.execute(
        "WITH "
        + ",\n".join(ctes)
        + f"""
        SELECT t.stack_id, t.n, t.procs, s.status, w.wait_reason, t.max_wait, cb.created_by,
               coalesce(st.user_fn, st.top), st.top, totals.buckets, totals.goroutines,
               (SELECT list((status, n) ORDER BY n DESC, status)
                FROM (SELECT coalesce(status, '?') AS status, sum(k) AS n FROM c
                      GROUP BY 1)) AS statuses
        FROM top t
        CROSS JOIN (SELECT count(*) AS buckets, sum(n) AS goroutines FROM b) totals
        LEFT JOIN status_m s USING (stack_id)
        LEFT JOIN wait_reason_m w USING (stack_id)
        LEFT JOIN created_by_m cb USING (stack_id)
        LEFT JOIN {d.stacks} st USING (stack_id)
        ORDER BY {_FINAL_ORDER[sort]}""",
        params,
    ).fetchall()
    if rows:
        page = BucketPage(
            buckets=tuple(
                Bucket(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], r[6], r[7], r[8])
                for r in rows
            ),
            total_buckets=int(rows[0][9]),
            total_goroutines=int(rows[0][10]),
            statuses=tuple((str(s), int(n)) for s, n in rows[0][11] or ()),
        )
    else:
        page = BucketPage((), 0, 0, ())
    store.pages.put(key, page)
    return page


def bucket_goroutines(
    store: ExplorerStore,
    snapshot_id: int,
    stack_id: int,
    flt: GoroutineFilter = NO_FILTER,
    limit: int = GOROUTINE_PAGE,
) -> tuple[list[GoroutineRow], int]:
    """The goroutines of one bucket that pass the filter (longest waiting first), and
    how many there are in all."""
    d = store.prepare(snapshot_id)
    params: dict[str, object] = {"stack": stack_id}
    conds = ["g.stack_id = $stack"]
    for i, word in enumerate(flt.text.lower().split()):
        match = _frame_match(d, word, f"w{i}", params)
        in_stack = f"EXISTS (SELECT 1 FROM {d.frames} f WHERE f.stack_id = $stack AND {match})"
        conds.append(f"({in_stack} OR {_goroutine_match(word, f'w{i}')})")
    if flt.pid is not None:
        params["pid"] = flt.pid
        conds.append("g.pid = $pid")
    if flt.path:
        funcs = (
            f"(SELECT coalesce(list(fn ORDER BY depth DESC) FILTER (WHERE fn IS NOT NULL), [])"
            f" FROM {d.frames} WHERE stack_id = $stack)"
        )
        conds.append(f"{funcs}[1:$plen] = {_path_ids(d, params, flt.path)}")
    rows = (
        store.cursor()
        .execute(
            f"""
            WITH m AS MATERIALIZED (
                SELECT g.pid, g.goid, g.status, g.wait_reason, g.wait_seconds,
                       g.labels, g.created_by, g.created_by_goid
                FROM {d.goroutines} g
                WHERE {" AND ".join(conds)}
            )
            SELECT *, (SELECT count(*) FROM m) AS total FROM m
            ORDER BY wait_seconds DESC NULLS LAST, pid, goid LIMIT {int(limit)}
            """,
            params,
        )
        .fetchall()
    )
    return [GoroutineRow(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows], (
        int(rows[0][8]) if rows else 0
    )


def bucket_stack(store: ExplorerStore, snapshot_id: int, stack_id: int) -> list[FrameRow]:
    """The frames shared by a bucket's goroutines (read from one of them), without the
    wrapper frames its stack_id leaves out."""
    d = store.prepare(snapshot_id)
    row = (
        store.cursor()
        .execute(
            f"SELECT pid, goid FROM {d.goroutines} WHERE stack_id = ? ORDER BY pid, goid LIMIT 1",
            [stack_id],
        )
        .fetchone()
    )
    if row is None:
        return []
    return [f for f in frames(store, snapshot_id, int(row[0]), int(row[1])) if not f.wrapper]


# -- one goroutine ------------------------------------------------------------------


def frames(store: ExplorerStore, snapshot_id: int, pid: int, goid: int) -> list[FrameRow]:
    """Every frame of one goroutine, wrappers included (marked)."""
    rows = (
        store.cursor()
        .execute(
            f"""SELECT depth, function, file, line, inlined, pc, {store.wrapper("f")}
                FROM frames f
                WHERE snapshot_id = ? AND pid = ? AND goid = ? ORDER BY depth""",
            [snapshot_id, pid, goid],
        )
        .fetchall()
    )
    return [
        FrameRow(
            int(r[0]),
            r[1] or "?",
            r[2] or "?",
            int(r[3] or 0),
            bool(r[4]),
            int(r[5] or 0),
            bool(r[6]),
        )
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
    """One goroutine with its frames; remembered, so reading it ahead (the goroutines
    pane does for the highlighted one) makes opening it immediate."""
    key = (snapshot_id, pid, goid)
    detail = store.details.get(key)
    if detail is None:
        detail = _goroutine_detail(store, snapshot_id, pid, goid)
        if detail is not None:
            store.details.put(key, detail)
    return detail


def _goroutine_detail(
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


def _stack_counts(d: Derived, params: dict[str, object], pid: int | None) -> str:
    """SQL for (stack_id, n): the goroutines of each stack, of one process or all."""
    if pid is None:
        return f"SELECT stack_id, n FROM {d.buckets}"
    params["pid"] = pid
    return f"SELECT stack_id, sum(k) AS n FROM {d.cells} WHERE pid = $pid GROUP BY stack_id"


def flame_children(
    store: ExplorerStore,
    snapshot_id: int,
    path: Sequence[str],
    levels: int,
    pid: int | None = None,
) -> list[FlameNode]:
    """The nodes up to `levels` below path (outermost-first functions), with the number
    of goroutines passing through each; largest first within a level."""
    d = store.prepare(snapshot_id)
    flame = store.flame_table(snapshot_id)
    params: dict[str, object] = {"top": len(path) + levels}
    ids = _path_ids(d, params, path)
    counts = _stack_counts(d, params, pid)
    rows = (
        store.cursor()
        .execute(
            f"""
            WITH nodes AS (
                SELECT f.funcs[1:t.d] AS p, sum(c.n) AS n
                FROM {flame} f JOIN ({counts}) c USING (stack_id),
                     range($plen + 1, $top + 1) AS t(d)
                WHERE len(f.funcs) >= t.d AND f.funcs[1:$plen] = {ids}
                GROUP BY p
            ),
            ids AS (SELECT p, n, unnest(p) AS id, generate_subscripts(p, 1) AS i FROM nodes)
            SELECT list(nm.name ORDER BY ids.i) AS path, any_value(ids.n) AS n
            FROM ids JOIN {d.names} nm USING (id)
            GROUP BY ids.p
            ORDER BY len(path), n DESC, path
            """,
            params,
        )
        .fetchall()
    )
    return [FlameNode(tuple(r[0]), int(r[1])) for r in rows]


def flame_total(
    store: ExplorerStore, snapshot_id: int, path: Sequence[str], pid: int | None = None
) -> int:
    d = store.prepare(snapshot_id)
    flame = store.flame_table(snapshot_id)
    params: dict[str, object] = {}
    ids = _path_ids(d, params, path)
    counts = _stack_counts(d, params, pid)
    row = (
        store.cursor()
        .execute(
            f"""SELECT coalesce(sum(c.n), 0) FROM {flame} f JOIN ({counts}) c USING (stack_id)
            WHERE len(f.funcs) >= $plen AND f.funcs[1:$plen] = {ids}""",
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
    old_stacks = store.prepare(old).stacks
    new_stacks = store.prepare(new).stacks
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
            LEFT JOIN {new_stacks} sn ON m.kind <> 'gone' AND sn.stack_id = m.stack_id
            LEFT JOIN {old_stacks} so ON m.kind = 'gone' AND so.stack_id = m.stack_id
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
