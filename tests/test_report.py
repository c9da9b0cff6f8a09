"""`sideeye-tui summary`: the text report of a snapshot file, and its refusals."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sideeye_tui import cli
from sideeye_tui.errors import StoreError
from sideeye_tui.model import Frame, Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.query.format import format_duration
from sideeye_tui.report import format_report, load_report
from sideeye_tui.store import write_snapshot
from sideeye_tui.store.writer import tool_version

ROOT = Path(__file__).resolve().parent.parent
TAKEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
GOSRC = "/usr/local/go/src"
SRC = "/src/bank"

GOPARK = Frame("runtime.gopark", f"{GOSRC}/runtime/proc.go", 435, 0x43A1B0)
SEMA = Frame("runtime.semacquire1", f"{GOSRC}/runtime/sema.go", 160, 0x44B000)
MUTEX_SLOW = Frame("sync.(*Mutex).lockSlow", f"{GOSRC}/sync/mutex.go", 171, 0x46C000)
MUTEX_LOCK = Frame("sync.(*Mutex).Lock", f"{GOSRC}/sync/mutex.go", 90, 0x46C100, inlined=True)
LOCK_ACCOUNT = Frame("main.(*Server).lockAccount", f"{SRC}/main.go", 150, 0x6A0000)
HANDLE = Frame("main.(*Server).handle", f"{SRC}/main.go", 128, 0x6A1000)
CHANRECV = Frame("runtime.chanrecv", f"{GOSRC}/runtime/chan.go", 664, 0x409000)
CHANRECV2 = Frame("runtime.chanrecv2", f"{GOSRC}/runtime/chan.go", 511, 0x409100)
WORKER = Frame("main.worker", f"{SRC}/main.go", 181, 0x6A2000)
SPIN = Frame("main.spin", f"{SRC}/main.go", 40, 0x6A3000)

LOCKED = (GOPARK, SEMA, MUTEX_SLOW, MUTEX_LOCK, LOCK_ACCOUNT, HANDLE)
QUEUED = (GOPARK, CHANRECV, CHANRECV2, WORKER)


def g(
    goid: int,
    frames: tuple[Frame, ...],
    status: str = "waiting",
    reason: str | None = None,
    wait: float | None = None,
    created_by: str | None = "main.main",
    truncated: bool = False,
) -> Goroutine:
    return Goroutine(
        goid=goid,
        status=status,
        wait_reason=reason,
        wait_seconds=wait,
        created_by=created_by,
        created_by_goid=1,
        start_function=None,
        frames=frames,
        truncated=truncated,
    )


def bank(pid: int = 4242) -> ProcessSnapshot:
    gs = (
        # Three requests queued on the hot account's lock, the longest for 75 s.
        g(10, LOCKED, reason="sync.Mutex.Lock", wait=3.0, created_by="net/http.(*Server).Serve"),
        g(11, LOCKED, reason="sync.Mutex.Lock", wait=75.2, created_by="net/http.(*Server).Serve"),
        g(12, LOCKED, reason="sync.Mutex.Lock", wait=None, created_by="net/http.(*Server).Serve"),
        # Two idle workers, one busy (same stack, other status: its own bucket).
        g(20, QUEUED, reason="chan receive"),
        g(21, QUEUED, reason="chan receive"),
        g(22, QUEUED, status="runnable"),
        g(30, (SPIN,), status="running", created_by=None, truncated=True),
    )
    return ProcessSnapshot(
        pid=pid,
        exe="/opt/bank/service",
        build_id="b1d",
        go_version="go1.22.12",
        main_module="example.com/bank",
        pause_ns=420_000,
        threads=4,
        backend="ebpf",
        goroutines=gs,
    )


def gone(pid: int) -> ProcessSnapshot:
    return ProcessSnapshot(
        pid, "/opt/other", None, None, None, None, backend="ebpf", error="exited during the capture"
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "snap.duckdb")
    write_snapshot(path, Snapshot(TAKEN, "box", (bank(), gone(77))))
    return path


def summary(*args: str) -> tuple[int, str, str]:
    """Runs the command in this process; (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["summary", *args])
    return code, out.getvalue(), err.getvalue()


def test_full_report(db: str) -> None:
    code, out, err = summary(db)
    assert (code, err) == (0, "")
    assert out == "\n".join(
        [
            f"snapshot 1 · 2025-03-04 05:06:07 UTC · host box · sideeye-tui {tool_version()}",
            f"{db} holds snapshot 1",
            "",
            "pid 77 · /opt/other",
            "  Go version unknown · module unknown",
            "  not captured: exited during the capture",
            "",
            "pid 4242 · /opt/bank/service",
            "  go1.22.12 · example.com/bank · build id b1d",
            "  paused 0.42 ms · 4 threads · ebpf backend",
            "  7 goroutines: waiting 5, runnable 1, running 1",
            "",
            "  3 goroutines · waiting · sync.Mutex.Lock · up to 1m15s"
            " · created by net/http.(*Server).Serve",
            f"    runtime.gopark                {GOSRC}/runtime/proc.go:435",
            f"    runtime.semacquire1           {GOSRC}/runtime/sema.go:160",
            f"    sync.(*Mutex).lockSlow        {GOSRC}/sync/mutex.go:171",
            f"    sync.(*Mutex).Lock (inlined)  {GOSRC}/sync/mutex.go:90",
            f"    main.(*Server).lockAccount    {SRC}/main.go:150",
            f"    main.(*Server).handle         {SRC}/main.go:128",
            "",
            "  2 goroutines · waiting · chan receive · created by main.main",
            f"    runtime.gopark     {GOSRC}/runtime/proc.go:435",
            f"    runtime.chanrecv   {GOSRC}/runtime/chan.go:664",
            f"    runtime.chanrecv2  {GOSRC}/runtime/chan.go:511",
            f"    main.worker        {SRC}/main.go:181",
            "",
            # Ties: the smaller goid first.
            "  1 goroutine · runnable · created by main.main",
            f"    runtime.gopark     {GOSRC}/runtime/proc.go:435",
            f"    runtime.chanrecv   {GOSRC}/runtime/chan.go:664",
            f"    runtime.chanrecv2  {GOSRC}/runtime/chan.go:511",
            f"    main.worker        {SRC}/main.go:181",
            "",
            "  1 goroutine · running · stack truncated",
            f"    main.spin  {SRC}/main.go:40",
            "    ... deeper frames were not captured",
            "",
        ]
    )


def test_top_limits_buckets_per_process(db: str) -> None:
    code, out, _ = summary(db, "--top", "1")
    assert code == 0
    assert "  3 goroutines · waiting · sync.Mutex.Lock" in out
    assert "chan receive" not in out
    assert out.endswith(
        "  ... 3 more groups of identical stacks (4 goroutines); --top 0 shows all\n"
    )
    _, everything, _ = summary(db, "--top", "0")
    _, default, _ = summary(db)
    assert everything == default  # 4 buckets: fewer than the default 10
    assert "more groups" not in everything


def test_latest_by_default_and_snapshot_picks(db: str) -> None:
    later = Snapshot(TAKEN.replace(hour=6), "box", (bank(pid=5000),))
    assert write_snapshot(db, later) == 2
    _, out, _ = summary(db)
    assert out.startswith("snapshot 2 · 2025-03-04 06:06:07 UTC")
    assert f"{db} holds snapshots 1-2; --snapshot ID picks one" in out
    assert "pid 5000 " in out and "pid 4242 " not in out
    _, out, _ = summary(db, "--snapshot", "1")
    assert out.startswith("snapshot 1 · ")
    assert "pid 4242 " in out and "pid 5000 " not in out


def test_buckets_group_in_duckdb_by_stack(db: str) -> None:
    report = load_report(db)
    (ok,) = [p for p in report.processes if p.error is None]
    assert [(b.count, b.status, b.wait_reason) for b in ok.buckets] == [
        (3, "waiting", "sync.Mutex.Lock"),
        (2, "waiting", "chan receive"),
        (1, "runnable", None),
        (1, "running", None),
    ]
    assert ok.bucket_count == 4
    # The bucket's stack_id is the one stored for each of its goroutines.
    con = duckdb.connect(db, read_only=True)
    try:
        stored = con.execute("SELECT stack_id FROM goroutines WHERE goid = 10").fetchall()
    finally:
        con.close()
    assert ok.buckets[0].stack_id == stored[0][0]
    assert ok.buckets[0].max_wait_seconds == pytest.approx(75.2)
    assert [f.inlined for f in ok.buckets[0].frames] == [f.inlined for f in LOCKED]


def test_caveats_of_a_captured_process(tmp_path: Path) -> None:
    path = str(tmp_path / "c.duckdb")
    notes = ("12 records were lost (ring buffer full)", "3 goroutines have more labels")
    write_snapshot(path, Snapshot(TAKEN, "box", (dataclasses.replace(bank(), notes=notes),)))
    _, out, _ = summary(path)
    assert (
        "  go1.22.12 · example.com/bank · build id b1d\n"
        "  warning: 12 records were lost (ring buffer full)\n"
        "  warning: 3 goroutines have more labels\n"
        "  paused 0.42 ms · 4 threads · ebpf backend\n"
        "  7 goroutines: waiting 5, runnable 1, running 1\n"
    ) in out
    assert "  not captured:" not in out


def test_caveat_in_error_of_an_older_file(tmp_path: Path) -> None:
    """Before processes.notes, a caveat about a capture that happened was in error,
    beside a pause: it reads as a caveat, from a file that has no notes column."""
    path = str(tmp_path / "c.duckdb")
    proc = dataclasses.replace(bank(), error="12 records were lost (ring buffer full)")
    write_snapshot(path, Snapshot(TAKEN, "box", (proc,)))
    con = duckdb.connect(path)
    con.execute("ALTER TABLE processes DROP COLUMN notes")
    con.close()
    _, out, _ = summary(path)
    assert (
        "  go1.22.12 · example.com/bank · build id b1d\n"
        "  warning: 12 records were lost (ring buffer full)\n"
        "  paused 0.42 ms · 4 threads · ebpf backend\n"
        "  7 goroutines: waiting 5, runnable 1, running 1\n"
    ) in out
    assert "sync.Mutex.Lock" in out


def test_empty_stack_and_no_process(tmp_path: Path) -> None:
    path = str(tmp_path / "e.duckdb")
    proc = ProcessSnapshot(1, "/x", None, "go1.26.0", "m", 1000, goroutines=(g(1, ()),))
    write_snapshot(path, Snapshot(TAKEN, "", (proc,)))
    write_snapshot(path, Snapshot(TAKEN, "", ()))
    _, out, _ = summary(path, "--snapshot", "1")
    assert "  1 goroutine · waiting · created by main.main\n    (no frames)\n" in out
    assert "host" not in out.splitlines()[0]
    _, out, _ = summary(path)
    assert out.endswith("\nno process in this snapshot\n")


# -- refusals, each one line ----------------------------------------------------------


def test_unknown_snapshot(db: str) -> None:
    assert summary(db, "--snapshot", "9") == (
        1,
        "",
        f"sideeye-tui: {db}: no snapshot 9 (it holds snapshot 1)\n",
    )


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.duckdb")
    assert summary(path) == (1, "", f"sideeye-tui: {path}: no such file\n")
    assert not Path(path).exists()


def test_not_ours(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert summary(str(text)) == (1, "", f"sideeye-tui: {text}: not a sideeye-tui database\n")
    other = str(tmp_path / "other.duckdb")
    con = duckdb.connect(other)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    assert summary(other) == (1, "", f"sideeye-tui: {other}: not a sideeye-tui database\n")
    with pytest.raises(StoreError, match="is a directory"):
        load_report(str(tmp_path))


def test_bad_top_is_a_usage_error(db: str) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["summary", db, "--top", "-1"])
    assert e.value.code == 2


def test_file_left_unchanged(db: str) -> None:
    before = Path(db).read_bytes()
    summary(db)
    assert Path(db).read_bytes() == before
    assert not Path(db + ".wal").exists()


def test_summary_needs_no_capture_layer(db: str) -> None:
    """Reading a file must work where BCC and the capture code cannot load."""
    code = (
        "import sys\n"
        "from sideeye_tui import cli\n"
        f"rc = cli.main(['summary', {db!r}])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('bcc', 'elftools', 'textual')"
        " or m.startswith(('sideeye_tui.capture', 'sideeye_tui.bpf', 'sideeye_tui.dwarf'))]\n"
        "assert rc == 0 and not bad, bad\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert r.returncode == 0, r.stderr


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.0, 0.85, 1, 59.9, 60, 245, 3600, 7830, 90000)] == [
        "0ms",
        "850ms",
        "1s",
        "59s",
        "1m00s",
        "4m05s",
        "1h00m",
        "2h10m",
        "1d01h",
    ]


def test_report_is_plain_data(db: str) -> None:
    lines = format_report(load_report(db, top=2))
    assert all("\n" not in line for line in lines)
    assert lines[0].startswith("snapshot 1 · ")


# ---- wrapper frames --------------------------------------------------------------------

GOWRAP = Frame("main.main.gowrap1", f"{SRC}/main.go", 20, 0x6A4000, wrapper=True)
AUTOGEN = Frame("main.(*Queue).get", "<autogenerated>", 1, 0x6A5000, wrapper=True)
VIA_WRAPPERS = (GOPARK, CHANRECV, CHANRECV2, WORKER, AUTOGEN, GOWRAP)


@pytest.fixture
def wrapped_db(tmp_path: Path) -> str:
    """Workers parked alike, two of them reached through wrappers (the capture marks
    those frames: Frame.wrapper) and one not."""
    gs = (
        g(40, VIA_WRAPPERS, reason="chan receive"),
        g(41, VIA_WRAPPERS, reason="chan receive"),
        g(42, QUEUED, reason="chan receive"),
    )
    proc = dataclasses.replace(bank(), goroutines=gs)
    path = str(tmp_path / "wrapped.duckdb")
    write_snapshot(path, Snapshot(TAKEN, "box", (proc,)))
    return path


def test_wrappers_are_hidden_and_do_not_split_a_group(wrapped_db: str) -> None:
    """Go's default traceback (pprof debug=2) elides wrapper frames: stacks that differ
    only in wrappers are one group, printed without them."""
    code, out, _ = summary(wrapped_db)
    assert code == 0
    assert "3 goroutines · waiting · chan receive" in out
    assert "gowrap" not in out and "<autogenerated>" not in out
    (bucket,) = load_report(wrapped_db).processes[0].buckets
    assert [f.function for f in bucket.frames] == [f.function for f in QUEUED]


def test_wrappers_flag_shows_them_marked(wrapped_db: str) -> None:
    code, out, _ = summary(wrapped_db, "--wrappers")
    assert code == 0
    (bucket,) = load_report(wrapped_db, wrappers=True).processes[0].buckets
    assert bucket.count == 3
    assert [(f.function, f.wrapper) for f in bucket.frames] == [
        (f.function, f.wrapper) for f in VIA_WRAPPERS
    ]
    assert "main.main.gowrap1 (wrapper)" in out
    assert "main.(*Queue).get (wrapper)" in out


def test_file_without_the_wrapper_column_reads(tmp_path: Path) -> None:
    """A file written before frames.wrapper existed, opened read-only, still reports."""
    path = str(tmp_path / "old.duckdb")
    write_snapshot(path, Snapshot(TAKEN, "box", (bank(),)))
    con = duckdb.connect(path)
    con.execute("ALTER TABLE frames DROP COLUMN wrapper")
    con.close()
    for wrappers in (False, True):
        report = load_report(path, wrappers=wrappers)
        assert report.processes[0].buckets[0].frames[0].function == "runtime.gopark"


def test_locked_to_thread_groups_apart_as_go_prints_it(tmp_path: Path) -> None:
    """Go's header says `[select, locked to thread]`: the bucket title follows, and a
    locked goroutine never shares a bucket with an unlocked one of the same stack."""
    path = str(tmp_path / "l.duckdb")
    gs = tuple(
        dataclasses.replace(g(goid, QUEUED, reason="select"), locked_to_thread=goid < 3)
        for goid in (1, 2, 3)
    )
    proc = ProcessSnapshot(1, "/x", None, "go1.26.0", "m", 1000, goroutines=gs)
    write_snapshot(path, Snapshot(TAKEN, "", (proc,)))
    _, out, _ = summary(path)
    assert "  2 goroutines · waiting · select · locked to thread · created by main.main\n" in out
    assert "  1 goroutine · waiting · select · created by main.main\n" in out


def test_locked_to_thread_groups_apart_by_stack_too(tmp_path: Path) -> None:
    """At the "stack" level as well (query/buckets.py): same stack, locked or not, two
    buckets; the most common status of each is still shown."""
    path = str(tmp_path / "l.duckdb")
    gs = tuple(
        dataclasses.replace(g(goid, QUEUED, reason="select"), locked_to_thread=goid < 3)
        for goid in (1, 2, 3)
    )
    proc = ProcessSnapshot(1, "/x", None, "go1.26.0", "m", 1000, goroutines=gs)
    write_snapshot(path, Snapshot(TAKEN, "", (proc,)))
    (p,) = load_report(path, level="stack").processes
    assert [(b.count, b.locked_to_thread) for b in p.buckets] == [(2, True), (1, False)]
    assert p.bucket_count == 2
    _, out, _ = summary(path, "--by", "stack")
    assert "  2 goroutines · waiting · select · locked to thread · created by main.main\n" in out
    assert "  1 goroutine · waiting · select · created by main.main\n" in out


def test_report_of_a_file_without_locked_to_thread(tmp_path: Path) -> None:
    path = str(tmp_path / "o.duckdb")
    write_snapshot(path, Snapshot(TAKEN, "box", (bank(),)))
    con = duckdb.connect(path)
    con.execute("ALTER TABLE goroutines DROP COLUMN locked_to_thread")
    con.close()
    code, out, _ = summary(path)
    assert code == 0 and "locked to thread" not in out and "sync.Mutex.Lock" in out
