"""The snapshot file: round trip, appends, refusals, permissions, atomicity."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sideeye_tui.errors import StoreError
from sideeye_tui.model import Frame, Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.store import (
    SCHEMA_VERSION,
    list_snapshots,
    open_store,
    process_outcome_sql,
    stack_id,
    write_snapshot,
    writer,
)

from .synth import synthetic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

NASTY = 'a,b "quoted" \n newline\t tab, é ☃ \\N NULL'

F1 = Frame("runtime.gopark", "/go/src/runtime/proc.go", 425, 0x43A1B0)
F2 = Frame("main.(*S).wait[...]", "/src/x, y/main.go", 12, 2**64 - 1, inlined=True)
F3 = Frame(NASTY, "", 0, 0)


def small_snapshot(hostname: str = "box") -> Snapshot:
    g1 = Goroutine(
        goid=1,
        status="waiting",
        wait_reason="chan receive",
        wait_seconds=12.5,
        created_by=None,
        created_by_goid=None,
        start_function="main.main",
        labels=(("user", "alice"), ("q", NASTY)),
        frames=(F1, F2),
    )
    g2 = Goroutine(
        goid=2**40,
        status="running",
        wait_reason="",
        wait_seconds=None,
        created_by=NASTY,
        created_by_goid=1,
        start_function=None,
        frames=(F1, F2),
        truncated=True,
        unwound_from="thread",
    )
    g3 = Goroutine(
        goid=3,
        status="syscall",
        wait_reason=None,
        wait_seconds=None,
        created_by="main.main",
        created_by_goid=1,
        start_function="main.worker",
        frames=(F3,),
        unwound_from="syscall",
    )
    ok = ProcessSnapshot(
        pid=100,
        exe="/bin/svc",
        build_id="b1d",
        go_version="go1.22.12",
        main_module="example.com/svc",
        pause_ns=420_000,
        threads=5,
        backend="ebpf",
        goroutines=(g1, g2, g3),
    )
    failed = ProcessSnapshot(
        pid=200,
        exe="/bin/other",
        build_id=None,
        go_version=None,
        main_module=None,
        pause_ns=None,
        backend="ebpf",
        error="pid 200: exited during the capture",
    )
    taken = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    return Snapshot(taken_at=taken, hostname=hostname, processes=(ok, failed))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "snap.duckdb")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_round_trip(db: str) -> None:
    assert write_snapshot(db, small_snapshot()) == 1
    con = open_store(db)
    try:
        assert dict(con.execute("SELECT key, value FROM meta").fetchall()) == {
            "app": "sideeye-tui",
            "schema_version": str(SCHEMA_VERSION),
        }
        snaps = con.execute(
            "SELECT snapshot_id, epoch_us(taken_at), hostname, backend FROM snapshots"
        ).fetchall()
        assert snaps == [(1, 1741064767123456, "box", "ebpf")]
        procs = con.execute(
            "SELECT pid, exe, build_id, go_version, main_module, pause_ns, threads,"
            " goroutine_count, error FROM processes ORDER BY pid"
        ).fetchall()
        assert procs == [
            (100, "/bin/svc", "b1d", "go1.22.12", "example.com/svc", 420_000, 5, 3, None),
            (200, "/bin/other", None, None, None, None, 0, 0, "pid 200: exited during the capture"),
        ]
        gs = con.execute(
            "SELECT goid, status, wait_reason, wait_seconds, created_by, created_by_goid,"
            " start_function, labels, truncated, frame_count, stack_id, unwound_from"
            " FROM goroutines ORDER BY goid"
        ).fetchall()
        assert [g[:7] for g in gs] == [
            (1, "waiting", "chan receive", 12.5, None, None, "main.main"),
            (3, "syscall", None, None, "main.main", 1, "main.worker"),
            (2**40, "running", "", None, NASTY, 1, None),
        ]
        assert json.loads(gs[0][7]) == {"user": "alice", "q": NASTY}
        assert gs[1][7] is None and gs[2][7] is None
        assert [g[8:] for g in gs] == [
            (False, 2, stack_id((F1, F2)), "sched"),
            (False, 1, stack_id((F3,)), "syscall"),
            (True, 2, stack_id((F1, F2)), "thread"),
        ]
        frames = con.execute(
            "SELECT goid, depth, function, file, line, pc, inlined FROM frames ORDER BY goid, depth"
        ).fetchall()
        assert frames == [
            (1, 0, F1.function, F1.file, F1.line, F1.pc, False),
            (1, 1, F2.function, F2.file, F2.line, F2.pc, True),
            (3, 0, NASTY, "", 0, 0, False),
            (2**40, 0, F1.function, F1.file, F1.line, F1.pc, False),
            (2**40, 1, F2.function, F2.file, F2.line, F2.pc, True),
        ]
        assert con.execute("SELECT labels->>'user' FROM goroutines WHERE goid = 1").fetchone() == (
            "alice",
        )
    finally:
        con.close()


def test_stack_id_is_stable_and_ignores_pc() -> None:
    moved = Frame(F1.function, F1.file, F1.line, pc=F1.pc + 4)
    assert stack_id((F1, F2)) == stack_id((moved, F2))
    assert stack_id((F1, F2)) != stack_id((F2, F1))
    # A fixed value: stack ids must not change between versions or runs.
    assert stack_id((F1,)) == stack_id((Frame(F1.function, F1.file, F1.line, 0),))
    code = "from sideeye_tui.store import stack_id; from sideeye_tui.model import Frame;"
    code += f"print(stack_id((Frame({F1.function!r}, {F1.file!r}, {F1.line}, 0),)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert int(out.stdout) == stack_id((F1,))


def test_surrogates_are_written_escaped(db: str) -> None:
    bad = Frame("main.f\udcff", "/x.go", 1, 1)
    g = Goroutine(1, "waiting", None, None, None, None, None, frames=(bad,))
    p = ProcessSnapshot(1, "/x", None, None, None, None, goroutines=(g,))
    write_snapshot(db, Snapshot(datetime.now(UTC), "h", (p,)))
    with open_store(db) as con:
        assert con.execute("SELECT function FROM frames").fetchone() == ("main.f\\udcff",)


def test_appends_and_lists(db: str) -> None:
    assert write_snapshot(db, small_snapshot("one")) == 1
    assert write_snapshot(db, Snapshot(datetime.now(UTC), "empty")) == 2
    assert write_snapshot(db, small_snapshot("three")) == 3
    with open_store(db) as con:
        infos = list_snapshots(con)
        assert [(i.snapshot_id, i.hostname) for i in infos] == [
            (1, "one"),
            (2, "empty"),
            (3, "three"),
        ]
        assert (infos[0].processes, infos[0].failed_processes, infos[0].goroutines) == (2, 1, 3)
        assert (infos[1].processes, infos[1].goroutines) == (0, 0)
        assert infos[0].taken_at == datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
        assert infos[0].backend == "ebpf"
        assert infos[0].tool_version
        counts = con.execute(
            "SELECT snapshot_id, count(*) FROM frames GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert counts == [(1, 5), (3, 5)]


def test_naive_taken_at_is_local_time(db: str) -> None:
    naive = datetime(2025, 1, 2, 3, 4, 5)
    write_snapshot(db, Snapshot(naive, "h"))
    with open_store(db) as con:
        assert list_snapshots(con)[0].taken_at == naive.astimezone()


def test_files_are_owner_only(db: str, umask_022: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, int] = {}
    real = writer.insert_snapshot

    def spy(con: duckdb.DuckDBPyConnection, snap: Snapshot, name: str = "") -> int:
        sid = real(con, snap, name)
        # Committed, not yet checkpointed: the .wal holds the snapshot now.
        for p in (db, db + ".wal"):
            if os.path.exists(p):
                seen[p] = stat.S_IMODE(os.stat(p).st_mode)
        return sid

    monkeypatch.setattr(writer, "insert_snapshot", spy)
    write_snapshot(db, small_snapshot())
    write_snapshot(db, small_snapshot())  # the .wal is created again after a checkpoint
    assert seen == {db: 0o600, db + ".wal": 0o600}
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert os.umask(0o022) == 0o022  # restored


def test_existing_file_keeps_its_mode(db: str, umask_022: None) -> None:
    write_snapshot(db, small_snapshot())
    os.chmod(db, 0o640)
    write_snapshot(db, small_snapshot())
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o640


def test_missing_file(db: str) -> None:
    with pytest.raises(StoreError, match=r"snap\.duckdb: no such file$"):
        open_store(db)


def test_garbage_file(db: str) -> None:
    Path(db).write_bytes(b"hello, I am not a database\n" * 1000)
    for call in (lambda: open_store(db), lambda: write_snapshot(db, small_snapshot())):
        with pytest.raises(StoreError) as err:
            call()
        assert str(err.value) == f"{db}: not a sideeye-tui database"


def test_other_duckdb_file(db: str) -> None:
    con = duckdb.connect(db)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a sideeye-tui database$"):
        open_store(db)
    with pytest.raises(StoreError, match="not a sideeye-tui database$"):
        write_snapshot(db, small_snapshot())
    con = duckdb.connect(db)
    assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone() == (1,)
    con.close()


def test_empty_duckdb_file_gets_the_schema(db: str) -> None:
    duckdb.connect(db).close()
    with pytest.raises(StoreError, match="not a sideeye-tui database$"):
        open_store(db)
    assert write_snapshot(db, small_snapshot()) == 1


def test_other_app(db: str) -> None:
    write_snapshot(db, small_snapshot())
    con = duckdb.connect(db)
    con.execute("UPDATE meta SET value = 'other' WHERE key = 'app'")
    con.close()
    with pytest.raises(StoreError, match="not a sideeye-tui database$"):
        open_store(db)


def test_newer_schema(db: str) -> None:
    write_snapshot(db, small_snapshot())
    con = duckdb.connect(db)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(StoreError) as err:
        open_store(db)
    assert str(err.value).startswith(
        f"{db}: schema version {SCHEMA_VERSION + 1} is newer than this sideeye-tui supports"
    )
    with pytest.raises(StoreError, match="is newer than"):
        write_snapshot(db, small_snapshot())


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory$"):
        write_snapshot(str(tmp_path), small_snapshot())


def test_locked_by_another_process(db: str) -> None:
    write_snapshot(db, small_snapshot())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({db!r}); print('ok', flush=True);"
            " time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ok\n"
        with pytest.raises(StoreError, match="in use by another process$"):
            write_snapshot(db, small_snapshot())
    finally:
        holder.kill()
        holder.wait()


def test_store_never_imports_textual() -> None:
    code = (
        "import sys, sideeye_tui.store, sideeye_tui.store.writer, sideeye_tui.store.database;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'bcc', 'elftools'));"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from store.synth import synthetic
    from sideeye_tui.store import insert_snapshot
    from sideeye_tui.store.database import connect

    class PauseBeforeCommit:
        # Every statement of the transaction has run; wait to be killed before COMMIT.
        def __init__(self, con):
            self.con = con
        def __getattr__(self, name):
            return getattr(self.con, name)
        def commit(self):
            open({marker!r}, "w").close()
            time.sleep(600)

    con = connect({db!r}, read_only=False)
    insert_snapshot(PauseBeforeCommit(con), synthetic(30_000, 10, None), {db!r})
    """
)


def test_sigkill_mid_write_keeps_previous_snapshots(db: str, tmp_path: Path) -> None:
    write_snapshot(db, small_snapshot("before"))
    marker = tmp_path / "inserted"
    script = KILLED_WRITER.format(tests=str(ROOT / "tests"), marker=str(marker), db=db)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the writer exited early"
            assert time.monotonic() < deadline, "the writer never reached its commit"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    with open_store(db) as con:
        assert [(i.snapshot_id, i.hostname) for i in list_snapshots(con)] == [(1, "before")]
        assert con.execute("SELECT count(*) FROM frames").fetchone() == (5,)
        assert con.execute("SELECT count(*) FROM goroutines").fetchone() == (3,)
    assert write_snapshot(db, small_snapshot("after")) == 2
    with open_store(db) as con:
        assert con.execute("SELECT count(*) FROM frames").fetchone() == (10,)


@pytest.mark.slow
def test_million_frames(db: str) -> None:
    snap = synthetic(100_000, 10, None)
    t = time.perf_counter()
    write_snapshot(db, snap)
    elapsed = time.perf_counter() - t
    with open_store(db) as con:
        assert con.execute("SELECT count(*) FROM frames").fetchone() == (1_000_000,)
        assert con.execute("SELECT count(DISTINCT stack_id) FROM goroutines").fetchone() == (
            100_000,
        )
    assert elapsed < 30, f"1M frames took {elapsed:.1f} s"


def test_walk_column_added_to_an_older_file(db: str) -> None:
    """A file written before processes.walk existed gets the column on its next write;
    its old rows read NULL there."""
    write_snapshot(db, small_snapshot("old"))
    con = duckdb.connect(db)
    con.execute("ALTER TABLE processes DROP COLUMN walk")
    con.close()
    write_snapshot(db, small_snapshot("new"))
    con = duckdb.connect(db, read_only=True)
    rows = con.execute(
        "SELECT snapshot_id, walk FROM processes WHERE goroutine_count > 0 "
        "ORDER BY snapshot_id, pid"
    ).fetchall()
    con.close()
    assert {sid for sid, _ in rows} == {1, 2}
    assert {walk for sid, walk in rows if sid == 1} == {None}
    assert {walk for sid, walk in rows if sid == 2} == {"paused"}


def test_notes_column_added_to_an_older_file(db: str) -> None:
    """A file written before processes.notes existed gets the column on its next write;
    a caveat it kept in error (beside a pause) reads as a note, a failure as an error."""
    old = small_snapshot("old")
    caveat = dataclasses.replace(old.processes[0], error="5 records were lost")
    failure = ProcessSnapshot(7, "/x", None, None, None, None, error="pid 7 exited")
    write_snapshot(db, dataclasses.replace(old, processes=(caveat, failure)))
    con = duckdb.connect(db)
    con.execute("ALTER TABLE processes DROP COLUMN notes")
    con.close()
    new = small_snapshot("new")
    noted = dataclasses.replace(new.processes[0], notes=("a", "b"))
    write_snapshot(db, dataclasses.replace(new, processes=(noted,)))
    with open_store(db) as con:
        rows = con.execute(
            f"SELECT snapshot_id, pid, {process_outcome_sql(con)} FROM processes"
            " ORDER BY snapshot_id, pid"
        ).fetchall()
        infos = list_snapshots(con)
    pid = old.processes[0].pid
    assert rows == [
        (1, 7, "pid 7 exited", None),
        (1, pid, None, ["5 records were lost"]),
        (2, pid, None, ["a", "b"]),
    ]
    assert [i.failed_processes for i in infos] == [1, 0]
