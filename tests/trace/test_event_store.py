"""The events tables (store/events.py): written batch by batch, each its own
transaction, in a new file or next to snapshots, owner-only, with the same checks of
the file's identity and schema version as snapshots."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sideeye_tui.errors import StoreError
from sideeye_tui.model import EventBatch, Frame, ProbeInfo, ProbeSecond, Snapshot, TraceEvent
from sideeye_tui.store import write_snapshot
from sideeye_tui.store.events import EventWriter

FRAMES_A = (
    Frame("main.handle", "/src/main.go", 43, 0x401000),
    Frame("main.serve", "/src/main.go", 80, 0x402000),
)
FRAMES_B = (Frame("main.small", "/src/main.go", 150, 0x403000, True),) + FRAMES_A
T0 = 1_796_000_000_123_456_789  # unix ns, with nanoseconds that a TIMESTAMPTZ drops


def probes() -> list[ProbeInfo]:
    return [
        ProbeInfo(1, 42, "function", "main.handle", "main.handle", "/src/main.go", 43, 3),
        ProbeInfo(2, 42, "line", "main.go:99", error="main.go:99: no code at line 99"),
    ]


def event(i: int, kind: str, stack: int, duration: int | None = None) -> TraceEvent:
    return TraceEvent(
        event_id=1000 + i,
        probe_id=1,
        pid=42,
        tid=43,
        goid=7,
        ts_ns=T0 + i,
        kind=kind,
        duration_ns=duration,
        entry_event_id=1000 if duration is not None else None,
        stack=stack,
        inlined=kind == "entry" and stack == 1,
    )


def second(t: float) -> ProbeSecond:
    return ProbeSecond(1, 42, t, 5, 5, 4, 1, 0, 5, 4, 1, ((10, 3), (20, 2)))


def write_two_batches(path: Path) -> int:
    w = EventWriter(str(path))
    try:
        tid = w.begin_trace(probes(), ["spec.toml"], 0)
        w.write(
            EventBatch(
                (event(0, "entry", 0), event(1, "return", 0, 500)),
                ((0, FRAMES_A),),
                (second(1_796_000_001.0),),
            )
        )
        # A new session key whose frames equal an earlier stack's: stored once.
        w.write(
            EventBatch(
                (event(2, "entry", 1), event(3, "entry", 2)),
                ((1, FRAMES_B), (2, FRAMES_A)),
                (second(1_796_000_002.0),),
            )
        )
        w.end_trace("duration")
    finally:
        w.close()
    return tid


def test_tables_rows_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    assert write_two_batches(path) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute(
            "SELECT trace_id, end_reason, spec_paths, ended IS NOT NULL FROM traces"
        ).fetchall() == [(1, "duration", "spec.toml", True)]
        assert con.execute(
            "SELECT probe_id, kind, location, pcs, error FROM probes ORDER BY probe_id"
        ).fetchall() == [
            (1, "function", "main.handle", 3, None),
            (2, "line", "main.go:99", 0, "main.go:99: no code at line 99"),
        ]
        rows = con.execute(
            "SELECT event_id, kind, duration_ns, entry_event_id, ts_ns, epoch_us(ts), inlined,"
            " stack_id FROM events ORDER BY event_id"
        ).fetchall()
        assert [r[:4] for r in rows] == [
            (1000, "entry", None, None),
            (1001, "return", 500, 1000),
            (1002, "entry", None, None),
            (1003, "entry", None, None),
        ]
        assert [r[4] for r in rows] == [T0 + i for i in range(4)]
        assert all(r[5] == (T0 + i) // 1000 for i, r in enumerate(rows))
        assert [r[6] for r in rows] == [False, False, True, False]
        assert rows[0][7] == rows[1][7] == rows[3][7] != rows[2][7]
        stacks = con.execute(
            "SELECT stack_id, count(*), list(function ORDER BY depth) FROM event_stacks"
            " GROUP BY stack_id ORDER BY 2"
        ).fetchall()
        assert [(n, fns) for _s, n, fns in stacks] == [
            (2, ["main.handle", "main.serve"]),
            (3, ["main.small", "main.handle", "main.serve"]),
        ]
        assert (
            con.execute(
                "SELECT hits, kept, dropped, returns FROM probe_rates ORDER BY second"
            ).fetchall()
            == [(5, 4, 1, 5)] * 2
        )
        assert con.execute(
            "SELECT bucket, sum(count) FROM probe_durations GROUP BY 1 ORDER BY 1"
        ).fetchall() == [(10, 6), (20, 4)]
    finally:
        con.close()


def test_next_to_snapshots_and_numbered(tmp_path: Path) -> None:
    path = tmp_path / "both.duckdb"
    write_snapshot(str(path), Snapshot(datetime.now(UTC), "host"))
    assert write_two_batches(path) == 1
    assert write_two_batches(path) == 2
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM snapshots").fetchone() == (1,)
        assert con.execute("SELECT count(DISTINCT trace_id) FROM events").fetchone() == (2,)
    finally:
        con.close()


def test_refuses_a_file_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a sideeye-tui database"):
        EventWriter(str(path))


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "newer.duckdb"
    write_snapshot(str(path), Snapshot(datetime.now(UTC), "host"))
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="newer than this sideeye-tui supports"):
        EventWriter(str(path))
