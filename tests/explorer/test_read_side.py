"""One read side: the summary and the explorer count the same buckets at the same level,
and print a duration the same way."""

from __future__ import annotations

from sideeye_tui.query import snapshot as queries
from sideeye_tui.query.format import format_duration
from sideeye_tui.query.summary import load_report

from .fixture_db import PID, SNAPSHOT_1


def _explorer_counts(db: str, pid: int) -> list[tuple[int, int]]:
    store = queries.ExplorerStore(db)
    try:
        page = queries.buckets(store, SNAPSHOT_1, queries.GoroutineFilter(pid=pid))
        return sorted((b.stack_id, b.count) for b in page.buckets)
    finally:
        store.close()


def test_summary_by_stack_counts_as_the_explorer(fixture_db: str) -> None:
    report = load_report(fixture_db, SNAPSHOT_1, top=0, level="stack")
    (proc,) = [p for p in report.processes if p.pid == PID]
    summary = sorted((int(b.stack_id or 0), b.count) for b in proc.buckets)
    assert summary == _explorer_counts(fixture_db, PID)
    assert proc.bucket_count == len(summary)
    assert sum(n for _, n in summary) == proc.goroutine_count


def test_group_level_splits_a_stack_by_status(fixture_db: str) -> None:
    """The holder (running) and goroutine 50 (runnable) share a stack: one bucket at the
    "stack" level, two at the "group" level, each with its own status."""
    by_stack = load_report(fixture_db, SNAPSHOT_1, top=0, level="stack")
    by_group = load_report(fixture_db, SNAPSHOT_1, top=0, level="group")
    stack = next(p for p in by_stack.processes if p.pid == PID)
    group = next(p for p in by_group.processes if p.pid == PID)
    assert group.bucket_count == stack.bucket_count + 1
    holder_stack = next(b.stack_id for b in group.buckets if b.status == "running" and b.count == 1)
    split = sorted(str(b.status) for b in group.buckets if b.stack_id == holder_stack)
    assert split == ["runnable", "running"]
    (merged,) = [b for b in stack.buckets if b.stack_id == holder_stack]
    assert merged.count == 2


def test_one_duration_format_for_every_reader() -> None:
    waits = (None, 0.0, 0.85, 59.9, 245, 330.0, 7830, 90000)
    assert [format_duration(s) for s in waits] == [
        "?",
        "0ms",
        "850ms",
        "59s",
        "4m05s",
        "5m30s",
        "2h10m",
        "1d01h",
    ]
    bucket = queries.Bucket(1, 3, 1, "waiting", "chan receive", 245.0, None, "main.w", "x")
    assert "up to 4m05s" in queries.bucket_label(bucket)
