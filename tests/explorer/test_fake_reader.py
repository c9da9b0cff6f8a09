"""The explorer reads only through the Reader it is given: a fake answering from plain
data drives it, with no snapshot file at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sideeye_tui.explorer.app import BrowserScreen
from sideeye_tui.explorer.goroutines import GoroutinesPane
from sideeye_tui.explorer.sql_console import SqlConsole
from sideeye_tui.explorer.tables_pane import TablesPane
from sideeye_tui.query.snapshot import (
    NO_FILTER,
    Bucket,
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
from sideeye_tui.store.database import SnapshotInfo

from .support import open_app, screen_text, settle, sync

TAKEN = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
BUCKET = Bucket(77, 42, 1, "waiting", "chan receive", 245.0, "main.pump", "main.(*Fake).wait", "x")
GOROUTINE = GoroutineRow(4242, 9, "waiting", "chan receive", 245.0, None, "main.pump", 1)
FRAME = FrameRow(0, "main.(*Fake).wait", "/src/fake.go", 12, False, 0x401000)


class FakeReader:
    """Answers from constants, and records what it was asked."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.asked: list[str] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def prepare(self, snapshot_id: int) -> None:
        self.asked.append("prepare")

    def snapshots(self) -> list[SnapshotInfo]:
        self.asked.append("snapshots")
        return [SnapshotInfo(7, TAKEN, "fake-host", "0.0", "ebpf", 1, 0, 42)]

    def processes(self, snapshot_id: int) -> list[ProcessInfo]:
        self.asked.append("processes")
        return [ProcessInfo(4242, "/bin/fake", "go1.24.0", "example.com/fake", 1000, 2, 42, None)]

    def taken_at(self, snapshot_id: int) -> datetime | None:
        return TAKEN

    def buckets(
        self, snapshot_id: int, flt: GoroutineFilter = NO_FILTER, sort: SortKey = "count"
    ) -> BucketPage:
        self.asked.append(f"buckets {snapshot_id}")
        return BucketPage((BUCKET,), 1, 42, (("waiting", 42),))

    def bucket_goroutines(
        self, snapshot_id: int, stack_id: int, flt: GoroutineFilter = NO_FILTER
    ) -> tuple[list[GoroutineRow], int]:
        return [GOROUTINE], 42

    def bucket_stack(self, snapshot_id: int, stack_id: int) -> list[FrameRow]:
        return [FRAME]

    def goroutine_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None:
        return GoroutineDetail(GOROUTINE, "main.pump", False, "sched", (FRAME,))

    def remembered_detail(self, snapshot_id: int, pid: int, goid: int) -> GoroutineDetail | None:
        return None

    def captured_values(
        self, snapshot_id: int, pid: int, goid: int, depth: int, function: str
    ) -> tuple[list[CapturedRow], list[tuple[str, str]]]:
        return [], []

    def flame_children(
        self, snapshot_id: int, path: Sequence[str], levels: int, pid: int | None = None
    ) -> list[FlameNode]:
        return [FlameNode(("main.(*Fake).wait",), 42)]

    def flame_total(self, snapshot_id: int, path: Sequence[str], pid: int | None = None) -> int:
        return 42

    def diff(self, old: int, new: int) -> list[DiffBucket]:
        return []

    def connection(self) -> EmptyConnection:
        return EmptyConnection()


class EmptyConnection:
    """The Tables pane's and SQL console's connection: an empty in-memory database."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def release(self) -> None:
        self.con.close()


@sync
async def test_the_app_shows_what_its_reader_answers(tmp_path: Path) -> None:
    readers: list[FakeReader] = []

    def open_reader(path: str) -> FakeReader:
        readers.append(FakeReader(path))
        return readers[-1]

    missing = str(tmp_path / "no-such-file.duckdb")
    app = open_app(missing, open_reader=open_reader)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen)
        pane = app.screen.query_one(GoroutinesPane)
        assert pane.page is not None and pane.page.buckets == (BUCKET,)
        text = screen_text(app)
        assert "42 goroutines · chan receive · up to 4m05s · main.(*Fake).wait" in text
        assert "snapshot 7 (1/1)" in text
        (reader,) = readers
        assert reader.path == missing
        assert "buckets 7" in reader.asked
        # The panes that run any SQL use the reader's connection, not the file's path.
        assert isinstance(app.screen.query_one(TablesPane).reader, EmptyConnection)
        assert isinstance(app.screen.query_one(SqlConsole).reader, EmptyConnection)
    assert reader.closed
    assert not Path(missing).exists()
