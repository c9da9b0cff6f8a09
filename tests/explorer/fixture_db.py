"""A small, deterministic snapshot file for the explorer's tests (E1's and E2's).

Two snapshots of a fictional bank service (pid 1001) thirty seconds apart, with a
second process (pid 1002) that failed to be captured in the first. Handlers wait on an
account lock held by a transfer: the function tables, a derived table and a link follow
the issue-3 contract (function tables named after the Go function, `spec_tables`,
`capture_errors`, `links`), written here with plain SQL so the tests do not depend on
the reports layer.

Everything is fixed: snapshot ids (1, 2), times, goids, hostnames, so screenshots of
the explorer are stable. Frames point at `SOURCE_PATH`, whose text is
`testdata/server.go`; tests hand the app a reader that maps one to the other.

    from tests.explorer.fixture_db import build_fixture_db
    path = build_fixture_db(tmp_path / "fixture.duckdb")
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from sideeye_tui.model import Frame, Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.store import write_snapshot

SNAPSHOT_1 = 1
SNAPSHOT_2 = 2
TAKEN_1 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TAKEN_2 = TAKEN_1 + timedelta(seconds=30)
PID = 1001
FAILED_PID = 1002
FAILED_ERROR = "pid 1002: permission denied, even to root (it holds privileges we lack)"
HOSTNAME = "fixture-host"

SOURCE_PATH = "/src/shop/server.go"
SOURCE_FILE = Path(__file__).resolve().parent / "testdata" / "server.go"

HANDLE = "main.(*Server).handle"
LOCK_ACCOUNT = "main.(*Server).lockAccount"
TRANSFER = "main.(*Server).transfer"
DERIVED = "inflight_requests"
LINK = "waits_on"

# Goroutines of snapshot 1 waiting on the lock; 10-12 are still there in snapshot 2.
WAITERS_1 = (10, 11, 12, 13, 14)
WAITERS_2 = (10, 11, 12, 60, 61)
HOLDER = 20  # holds the lock in transfer, in snapshot 1 only
WORKERS = (30, 31, 32)
HANDLE_DEPTH = 6
LOCK_DEPTH = 5
TRANSFER_DEPTH = 0


def _f(function: str, file: str, line: int, pc: int, inlined: bool = False) -> Frame:
    return Frame(function=function, file=file, line=line, pc=pc, inlined=inlined)


_RT = "/usr/local/go/src/runtime"
_SYNC = "/usr/local/go/src/sync"
_HTTP = "/usr/local/go/src/net/http/server.go"

WAITER_STACK = (
    _f("runtime.gopark", f"{_RT}/proc.go", 425, 0x43A1F0),
    _f("runtime.semacquire1", f"{_RT}/sema.go", 160, 0x44B2A0),
    _f("sync.runtime_SemacquireMutex", f"{_RT}/sema.go", 95, 0x4702C4),
    _f("sync.(*Mutex).lockSlow", f"{_SYNC}/mutex.go", 173, 0x47F3D1),
    _f("sync.(*Mutex).Lock", f"{_SYNC}/mutex.go", 92, 0x6A1B33, inlined=True),
    _f(LOCK_ACCOUNT, SOURCE_PATH, 31, 0x6A1B33),
    _f(HANDLE, SOURCE_PATH, 23, 0x6A1A87),
    _f("net/http.HandlerFunc.ServeHTTP", _HTTP, 2171, 0x65F0E9),
    _f("net/http.(*conn).serve", _HTTP, 2099, 0x65C2B4),
    _f("runtime.goexit", f"{_RT}/asm_amd64.s", 1700, 0x470E41),
)
HOLDER_STACK = (
    _f(TRANSFER, SOURCE_PATH, 38, 0x6A1C40),
    _f(HANDLE, SOURCE_PATH, 25, 0x6A1AC2),
    _f("net/http.HandlerFunc.ServeHTTP", _HTTP, 2171, 0x65F0E9),
    _f("net/http.(*conn).serve", _HTTP, 2099, 0x65C2B4),
    _f("runtime.goexit", f"{_RT}/asm_amd64.s", 1700, 0x470E41),
)
WORKER_STACK = (
    _f("runtime.gopark", f"{_RT}/proc.go", 425, 0x43A1F0),
    _f("runtime.chanrecv", f"{_RT}/chan.go", 664, 0x4091C5),
    _f("runtime.chanrecv2", f"{_RT}/chan.go", 511, 0x408D52),
    _f("main.worker", "/src/shop/worker.go", 18, 0x6A2011),
    _f("runtime.goexit", f"{_RT}/asm_amd64.s", 1700, 0x470E41),
)
MAIN_STACK = (
    _f("runtime.gopark", f"{_RT}/proc.go", 425, 0x43A1F0),
    _f("runtime.selectgo", f"{_RT}/select.go", 335, 0x44F0A1),
    _f("main.main", "/src/shop/main.go", 44, 0x6A0F10),
    _f("runtime.main", f"{_RT}/proc.go", 283, 0x43A0B2),
    _f("runtime.goexit", f"{_RT}/asm_amd64.s", 1700, 0x470E41),
)


def _syscall_stack(line: int) -> tuple[Frame, ...]:
    return (
        _f("syscall.Syscall", "/usr/local/go/src/syscall/syscall_linux.go", 73, 0x48C1A5),
        _f("syscall.read", "/usr/local/go/src/syscall/zsyscall_linux_amd64.go", 736, 0x48A0C9),
        _f("os.(*File).Read", "/usr/local/go/src/os/file.go", 124, 0x49D112),
        _f("main.tailLog", "/src/shop/log.go", line, 0x6A2302),
        _f("runtime.goexit", f"{_RT}/asm_amd64.s", 1700, 0x470E41),
    )


def _g(
    goid: int,
    status: str,
    frames: tuple[Frame, ...],
    wait_reason: str | None = None,
    wait_seconds: float | None = None,
    created_by: str | None = "main.main",
    labels: tuple[tuple[str, str], ...] = (),
) -> Goroutine:
    return Goroutine(
        goid=goid,
        status=status,
        wait_reason=wait_reason,
        wait_seconds=wait_seconds,
        created_by=created_by,
        created_by_goid=1 if created_by == "main.main" else None,
        start_function=frames[-2].function if len(frames) > 1 else None,
        labels=labels,
        frames=frames,
        truncated=False,
        unwound_from={"running": "thread", "syscall": "syscall"}.get(status, "sched"),
    )


def _waiter(goid: int, seconds: float) -> Goroutine:
    return _g(
        goid,
        "waiting",
        WAITER_STACK,
        "sync.Mutex.Lock",
        seconds,
        created_by="net/http.(*Server).Serve",
        labels=(("request_id", f"r{goid}"), ("user", "alice" if goid % 2 == 0 else "bob")),
    )


def _process(goroutines: tuple[Goroutine, ...], pause_ns: int) -> ProcessSnapshot:
    return ProcessSnapshot(
        pid=PID,
        exe="/usr/local/bin/shop",
        build_id="5f1e0c2a9b",
        go_version="go1.22.12",
        main_module="example.com/shop",
        pause_ns=pause_ns,
        threads=6,
        backend="ebpf",
        goroutines=goroutines,
    )


def snapshot_1() -> Snapshot:
    gs = (
        _g(1, "waiting", MAIN_STACK, "select", 120.0, created_by=None),
        *(_waiter(goid, 2.0 + i) for i, goid in enumerate(WAITERS_1)),
        _g(HOLDER, "running", HOLDER_STACK, created_by="net/http.(*Server).Serve"),
        *(_g(goid, "waiting", WORKER_STACK, "chan receive", 300.0) for goid in WORKERS),
        _g(40, "syscall", _syscall_stack(27), wait_seconds=1.5),
        _g(50, "runnable", HOLDER_STACK, created_by="net/http.(*Server).Serve"),
    )
    failed = ProcessSnapshot(
        pid=FAILED_PID,
        exe="/usr/local/bin/ledger",
        build_id=None,
        go_version="go1.24.13",
        main_module="example.com/ledger",
        pause_ns=None,
        error=FAILED_ERROR,
    )
    return Snapshot(TAKEN_1, HOSTNAME, (_process(gs, 412_000), failed))


def snapshot_2() -> Snapshot:
    gs = (
        _g(1, "waiting", MAIN_STACK, "select", 150.0, created_by=None),
        *(_waiter(goid, 32.0 + i) for i, goid in enumerate(WAITERS_2[:3])),
        *(_waiter(goid, 0.5) for goid in WAITERS_2[3:]),
        *(_g(goid, "waiting", WORKER_STACK, "chan receive", 330.0) for goid in WORKERS),
        _g(40, "syscall", _syscall_stack(31), wait_seconds=0.2),
    )
    return Snapshot(TAKEN_2, HOSTNAME, (_process(gs, 388_000),))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _add_report_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The issue-3 tables, as the contract in the brief describes them."""
    con.execute(
        """CREATE TABLE spec_tables (name VARCHAR, kind VARCHAR, function VARCHAR,
           sql VARCHAR, spec_path VARCHAR, columns JSON)"""
    )
    con.execute(
        """CREATE TABLE capture_errors (snapshot_id INTEGER, pid INTEGER, goid BIGINT,
           depth INTEGER, function VARCHAR, expression VARCHAR, reason VARCHAR)"""
    )
    con.execute(
        """CREATE TABLE links (snapshot_id INTEGER, link VARCHAR, from_table VARCHAR,
           from_key JSON, to_table VARCHAR, to_key JSON, from_pid INTEGER, from_goid BIGINT,
           from_depth INTEGER, to_pid INTEGER, to_goid BIGINT, to_depth INTEGER)"""
    )
    key = "snapshot_id INTEGER, pid INTEGER, goid BIGINT, depth INTEGER"
    con.execute(f'CREATE TABLE {_q(HANDLE)} ({key}, req JSON, "req.User" VARCHAR, path VARCHAR)')
    con.execute(f"CREATE TABLE {_q(LOCK_ACCOUNT)} ({key}, account BIGINT)")
    con.execute(f'CREATE TABLE {_q(TRANSFER)} ({key}, "fromAccount" BIGINT, amount DOUBLE)')

    handle_rows = []
    lock_rows = []
    for sid, waiters in ((SNAPSHOT_1, WAITERS_1), (SNAPSHOT_2, WAITERS_2)):
        for goid in waiters:
            user = "alice" if goid % 2 == 0 else "bob"
            path = f"/transfer/{goid}"
            req = {
                "Path": path,
                "User": {"Name": user, "ID": 100 + goid},
                "Body": None if goid == 14 else {"len": 42, "data": '{"amount":12.5}'},
                "Headers": {"X-Request-Id": f"r{goid}", "Accept": "*/*"},
            }
            handle_rows.append([sid, PID, goid, HANDLE_DEPTH, json.dumps(req), user, path])
            lock_rows.append([sid, PID, goid, LOCK_DEPTH, 7])
    con.executemany(f"INSERT INTO {_q(HANDLE)} VALUES (?, ?, ?, ?, ?, ?, ?)", handle_rows)
    con.executemany(f"INSERT INTO {_q(LOCK_ACCOUNT)} VALUES (?, ?, ?, ?, ?)", lock_rows)
    con.execute(
        f"INSERT INTO {_q(TRANSFER)} VALUES (?, ?, ?, ?, ?, ?)",
        [SNAPSHOT_1, PID, HOLDER, TRANSFER_DEPTH, 7, 12.5],
    )

    derived_sql = (
        f'SELECT h.snapshot_id, h.pid, h.goid, h."req.User" AS user, h.path,'
        f" g.wait_seconds AS waited_s FROM {_q(HANDLE)} h JOIN goroutines g"
        f" USING (snapshot_id, pid, goid) ORDER BY waited_s DESC"
    )
    con.execute(f"CREATE TABLE {DERIVED} AS {derived_sql}")

    def cols(*items: tuple[str, str, str]) -> str:
        return json.dumps([{"name": n, "type": t, "kind": k} for n, t, k in items])

    spec = "specs/shop.toml"
    con.executemany(
        "INSERT INTO spec_tables VALUES (?, ?, ?, ?, ?, ?)",
        [
            [
                HANDLE,
                "function",
                HANDLE,
                None,
                spec,
                cols(
                    ("req", "JSON", "capture"),
                    ("req.User", "VARCHAR", "capture"),
                    ("path", "VARCHAR", "extra"),
                ),
            ],
            [
                LOCK_ACCOUNT,
                "function",
                LOCK_ACCOUNT,
                None,
                spec,
                cols(("account", "BIGINT", "capture")),
            ],
            [
                TRANSFER,
                "function",
                TRANSFER,
                None,
                spec,
                cols(("fromAccount", "BIGINT", "capture"), ("amount", "DOUBLE", "capture")),
            ],
            [
                DERIVED,
                "derived",
                None,
                derived_sql,
                spec,
                cols(
                    ("user", "VARCHAR", "derived"),
                    ("path", "VARCHAR", "derived"),
                    ("waited_s", "DOUBLE", "derived"),
                ),
            ],
        ],
    )
    con.execute(
        "INSERT INTO capture_errors VALUES (?, ?, ?, ?, ?, ?, ?)",
        [SNAPSHOT_1, PID, 14, HANDLE_DEPTH, HANDLE, "req.Body", "nil pointer"],
    )
    con.executemany(
        "INSERT INTO links VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                SNAPSHOT_1,
                LINK,
                LOCK_ACCOUNT,
                json.dumps({"account": 7}),
                TRANSFER,
                json.dumps({"fromAccount": 7}),
                PID,
                goid,
                LOCK_DEPTH,
                PID,
                HOLDER,
                TRANSFER_DEPTH,
            ]
            for goid in WAITERS_1
        ],
    )


def build_fixture_db(path: str | os.PathLike[str], reports: bool = True) -> str:
    """Write the two snapshots (and, with reports, the issue-3 tables) to a new file."""
    path = os.fspath(path)
    if os.path.exists(path):
        raise FileExistsError(path)
    assert write_snapshot(path, snapshot_1()) == SNAPSHOT_1
    assert write_snapshot(path, snapshot_2()) == SNAPSHOT_2
    if reports:
        con = duckdb.connect(path)
        try:
            _add_report_tables(con)
        finally:
            con.close()
    return path


def source_reader(path: str) -> str | None:
    """The fixture's stand-in for reading a source file from disk."""
    if path == SOURCE_PATH:
        return SOURCE_FILE.read_text()
    return None


if __name__ == "__main__":
    import sys

    print(build_fixture_db(sys.argv[1] if len(sys.argv) > 1 else "fixture.duckdb"))
