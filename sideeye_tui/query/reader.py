"""The one interface through which the explorer reads a snapshot file.

The app is given a way to open a Reader (Options.open_reader); its panes ask the
reader only, from worker threads. SnapshotReader answers from DuckDB (snapshot.py);
a test hands the app a fake answering from plain data, as memray's TUI takes a reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ..store.database import SnapshotInfo
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


class SnapshotReader:
    """The Reader over a DuckDB snapshot file, opened read-only."""

    def __init__(self, path: str) -> None:
        self.store = q.ExplorerStore(path)

    @property
    def path(self) -> str:
        return self.store.path

    def close(self) -> None:
        self.store.close()

    def prepare(self, snapshot_id: int) -> None:
        self.store.prepare(snapshot_id)

    def snapshots(self) -> list[SnapshotInfo]:
        return q.snapshots(self.store)

    def processes(self, snapshot_id: int) -> list[ProcessInfo]:
        return q.processes(self.store, snapshot_id)

    def taken_at(self, snapshot_id: int) -> datetime | None:
        return q.taken_at(self.store, snapshot_id)

    def buckets(
        self, snapshot_id: int, flt: GoroutineFilter = NO_FILTER, sort: SortKey = "count"
    ) -> BucketPage:
        return q.buckets(self.store, snapshot_id, flt, sort)

    def bucket_goroutines(
        self, snapshot_id: int, stack_id: int, flt: GoroutineFilter = NO_FILTER
    ) -> tuple[list[GoroutineRow], int]:
        return q.bucket_goroutines(self.store, snapshot_id, stack_id, flt)

    def bucket_stack(self, snapshot_id: int, stack_id: int) -> list[FrameRow]:
        return q.bucket_stack(self.store, snapshot_id, stack_id)

    def goroutine_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None:
        return q.goroutine_detail(self.store, snapshot_id, pid, goid)

    def remembered_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None:
        return self.store.details.get((snapshot_id, pid, goid))

    def captured_values(
        self, snapshot_id: int, pid: int, goid: int, depth: int, function: str
    ) -> tuple[list[CapturedRow], list[tuple[str, str]]]:
        return q.captured_values(self.store, snapshot_id, pid, goid, depth, function)

    def flame_children(
        self, snapshot_id: int, path: Sequence[str], levels: int, pid: int | None = None
    ) -> list[FlameNode]:
        return q.flame_children(self.store, snapshot_id, path, levels, pid)

    def flame_total(self, snapshot_id: int, path: Sequence[str], pid: int | None = None) -> int:
        return q.flame_total(self.store, snapshot_id, path, pid)

    def diff(self, old: int, new: int) -> list[DiffBucket]:
        return q.diff(self.store, old, new)
