"""The one interface through which the explorer reads a snapshot file.

The app is given a way to open a Reader (Options.open_reader); its panes ask the
reader only, from worker threads. SnapshotReader answers from DuckDB (snapshot.py);
a test hands the app a fake answering from plain data, as memray's TUI takes a reader.

Every string a Reader hands out is safe to paint: names, labels, wait reasons and
values come from the target (a `//line` directive can name a file anything), and
Textual passes ESC through to the terminal. Control characters are shown as \\xNN
(text.printable). Names handed out so changed are remembered, so that the UI can
give them back (a flame-graph path, a frame's function) and be understood.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

import duckdb

from ..store.database import SnapshotInfo, open_store
from ..text import printable, unsafe
from . import snapshot as q
from .snapshot import (
    NO_FILTER,
    BucketPage,
    CapturedRow,
    DiffBucket,
    FlameNode,
    FrameRow,
    GoroutineDetail,
    GoroutineFilter,
    GoroutineRow,
    ProcessInfo,
    SortKey,
)


class Connection(Protocol):
    """A DuckDB connection to the file, for the panes that run any SQL on it (the Tables
    pane, the SQL console): a cursor per query, released so a capture can write."""

    def cursor(self) -> duckdb.DuckDBPyConnection: ...

    def release(self) -> None: ...


class Reader(Protocol):
    """What the explorer asks of a snapshot file. Every method may be called from any
    worker thread; none writes the file."""

    @property
    def path(self) -> str: ...

    def close(self) -> None: ...

    def prepare(self, snapshot_id: int) -> None:
        """Build what the snapshot's queries need, so that the first one is fast."""

    def snapshots(self) -> list[SnapshotInfo]: ...

    def processes(self, snapshot_id: int) -> list[ProcessInfo]: ...

    def taken_at(self, snapshot_id: int) -> datetime | None: ...

    def buckets(
        self, snapshot_id: int, flt: GoroutineFilter = NO_FILTER, sort: SortKey = "count"
    ) -> BucketPage: ...

    def bucket_goroutines(
        self, snapshot_id: int, stack_id: int, flt: GoroutineFilter = NO_FILTER
    ) -> tuple[list[GoroutineRow], int]: ...

    def bucket_stack(self, snapshot_id: int, stack_id: int) -> list[FrameRow]: ...

    def goroutine_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None: ...

    def remembered_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None:
        """The detail if it was read already (never queries: called on the event loop)."""

    def captured_values(
        self, snapshot_id: int, pid: int, goid: int, depth: int, function: str
    ) -> tuple[list[CapturedRow], list[tuple[str, str]]]: ...

    def flame_children(
        self, snapshot_id: int, path: Sequence[str], levels: int, pid: int | None = None
    ) -> list[FlameNode]: ...

    def flame_total(self, snapshot_id: int, path: Sequence[str], pid: int | None = None) -> int: ...

    def diff(self, old: int, new: int) -> list[DiffBucket]: ...

    def connection(self) -> Connection:
        """A connection of its own for a pane that runs any SQL on the file."""


T = TypeVar("T")


class _Shown:
    """Strings made printable, and the originals of the names that changed."""

    def __init__(self) -> None:
        self._original: dict[str, str] = {}
        self._lock = threading.Lock()

    def name(self, text: str) -> str:
        if not unsafe(text):
            return text
        shown = printable(text)
        with self._lock:
            self._original[shown] = text
        return shown

    def opt(self, text: str | None) -> str | None:
        return None if text is None else self.name(text)

    def original(self, shown: str) -> str:
        with self._lock:
            return self._original.get(shown, shown)

    def fields(self, row: T, *names: str) -> T:
        """row with its string fields `names` made printable (the same row when none
        needs it: the common case costs a scan of each string)."""
        changes = {
            n: self.name(v) for n in names if isinstance(v := getattr(row, n), str) and unsafe(v)
        }
        return replace(row, **changes) if changes else row  # type: ignore[type-var]

    def value(self, value: Any) -> Any:
        """A captured JSON value, every string and key in it printable."""
        if isinstance(value, str):
            return printable(value)
        if isinstance(value, dict):
            return {printable(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


_BUCKET = ("status", "wait_reason", "created_by", "function", "top")
_GOROUTINE = ("status", "wait_reason", "labels", "created_by")
_FRAME = ("function", "file")
_PROCESS = ("exe", "go_version", "main_module", "error")
_SNAPSHOT = ("hostname", "tool_version", "backend")
_DIFF = ("function", "status", "wait_reason")


class FileConnection:
    """A read-only connection to the file for the Tables pane and the SQL console,
    opened on first use; one cursor per query.

    DuckDB connections are not shared between threads: each worker takes a cursor
    (a connection of its own to the same database). release() closes the file so
    another process (a snapshot being written) can lock it; the next query reopens.
    """

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self._con = open_store(self.db_path, read_only=True)
            return self._con.cursor()

    def release(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


class SnapshotReader:
    """The Reader over a DuckDB snapshot file, opened read-only."""

    def __init__(self, path: str) -> None:
        self.store = q.ExplorerStore(path)
        self._shown = _Shown()

    @property
    def path(self) -> str:
        return self.store.path

    def close(self) -> None:
        self.store.close()

    def prepare(self, snapshot_id: int) -> None:
        self.store.prepare(snapshot_id)

    def snapshots(self) -> list[SnapshotInfo]:
        return [self._shown.fields(s, *_SNAPSHOT) for s in q.snapshots(self.store)]

    def processes(self, snapshot_id: int) -> list[ProcessInfo]:
        return [self._shown.fields(p, *_PROCESS) for p in q.processes(self.store, snapshot_id)]

    def taken_at(self, snapshot_id: int) -> datetime | None:
        return q.taken_at(self.store, snapshot_id)

    def buckets(
        self, snapshot_id: int, flt: GoroutineFilter = NO_FILTER, sort: SortKey = "count"
    ) -> BucketPage:
        page = q.buckets(self.store, snapshot_id, self._filter(flt), sort)
        shown = tuple(self._shown.fields(b, *_BUCKET) for b in page.buckets)
        statuses = tuple((self._shown.name(s), n) for s, n in page.statuses)
        if all(a is b for a, b in zip(shown, page.buckets, strict=True)) and statuses == (
            page.statuses
        ):
            return page
        return replace(page, buckets=shown, statuses=statuses)

    def bucket_goroutines(
        self, snapshot_id: int, stack_id: int, flt: GoroutineFilter = NO_FILTER
    ) -> tuple[list[GoroutineRow], int]:
        rows, total = q.bucket_goroutines(self.store, snapshot_id, stack_id, self._filter(flt))
        return [self._shown.fields(g, *_GOROUTINE) for g in rows], total

    def bucket_stack(self, snapshot_id: int, stack_id: int) -> list[FrameRow]:
        return [
            self._shown.fields(f, *_FRAME)
            for f in q.bucket_stack(self.store, snapshot_id, stack_id)
        ]

    def goroutine_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None:
        return self._detail(q.goroutine_detail(self.store, snapshot_id, pid, goid))

    def remembered_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None:
        return self._detail(self.store.details.get((snapshot_id, pid, goid)))

    def captured_values(
        self, snapshot_id: int, pid: int, goid: int, depth: int, function: str
    ) -> tuple[list[CapturedRow], list[tuple[str, str]]]:
        function = self._shown.original(function)
        rows, errors = q.captured_values(self.store, snapshot_id, pid, goid, depth, function)
        shown_rows = [
            CapturedRow(r.table, tuple((printable(k), self._shown.value(v)) for k, v in r.values))
            for r in rows
        ]
        return shown_rows, [(printable(e), printable(r)) for e, r in errors]

    def flame_children(
        self, snapshot_id: int, path: Sequence[str], levels: int, pid: int | None = None
    ) -> list[FlameNode]:
        nodes = q.flame_children(self.store, snapshot_id, self._path(path), levels, pid)
        return [FlameNode(tuple(self._shown.name(f) for f in n.path), n.count) for n in nodes]

    def flame_total(self, snapshot_id: int, path: Sequence[str], pid: int | None = None) -> int:
        return q.flame_total(self.store, snapshot_id, self._path(path), pid)

    def diff(self, old: int, new: int) -> list[DiffBucket]:
        return [self._shown.fields(b, *_DIFF) for b in q.diff(self.store, old, new)]

    def connection(self) -> Connection:
        return FileConnection(self.path)

    # -- names given back by the UI --------------------------------------------------

    def _path(self, path: Sequence[str]) -> tuple[str, ...]:
        return tuple(self._shown.original(f) for f in path)

    def _filter(self, flt: GoroutineFilter) -> GoroutineFilter:
        return replace(flt, path=self._path(flt.path)) if flt.path else flt

    def _detail(self, d: GoroutineDetail | None) -> GoroutineDetail | None:
        if d is None:
            return None
        g = self._shown.fields(d.goroutine, *_GOROUTINE)
        frames = tuple(self._shown.fields(f, *_FRAME) for f in d.frames)
        start = self._shown.opt(d.start_function)
        unwound = self._shown.opt(d.unwound_from)
        same = g is d.goroutine and all(a is b for a, b in zip(frames, d.frames, strict=True))
        if same and start == d.start_function and unwound == d.unwound_from:
            return d  # the remembered detail itself: nothing to escape (the common case)
        return replace(d, goroutine=g, frames=frames, start_function=start, unwound_from=unwound)
