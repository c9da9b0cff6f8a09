"""Snapshots with captured values, built by hand: the reports never see a process."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sideeye_tui.model import CapturedValue, FrameCapture, Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.spec import Spec, parse_spec

HANDLE = "main.(*Server).handle"

SPEC = '''
[functions."main.(*Server).handle"]
capture = ["req", "req.User.Name", "s.addr"]
extra = { user = "\\"req.User.Name\\"", started = "req->>'$.Start'" }

[tables.inflight]
sql = """SELECT goid, req->>'$.ID' AS id, user FROM "main.(*Server).handle" ORDER BY started"""
'''


def spec(text: str = SPEC, path: str = "test.toml") -> Spec:
    return parse_spec(text, path)


def request(goid: int, depth: int, ident: str, user: str | None, start: str) -> FrameCapture:
    name = (
        CapturedValue("req.User.Name", user, "VARCHAR")
        if user is not None
        else CapturedValue("req.User.Name", None, "VARCHAR", "nil pointer dereference")
    )
    return FrameCapture(
        goid,
        depth,
        HANDLE,
        (
            CapturedValue("req", {"ID": ident, "Start": start, "User": {"Name": user}}, "JSON"),
            name,
            CapturedValue("s.addr", ":8080", "VARCHAR"),
        ),
    )


def process(
    pid: int, captures: tuple[FrameCapture, ...], errors: tuple[str, ...] = ()
) -> ProcessSnapshot:
    goids = sorted({c.goid for c in captures})
    return ProcessSnapshot(
        pid,
        "/bin/svc",
        "b",
        "go1.26.8",
        "example.com/svc",
        1000,
        4,
        "ebpf",
        tuple(Goroutine(g, "waiting", "select", None, None, None, None) for g in goids),
        captures=captures,
        spec_errors=errors,
    )


def snapshot(*procs: ProcessSnapshot) -> Snapshot:
    return Snapshot(datetime(2026, 11, 23, 12, 0, tzinfo=UTC), "host", procs)


def write_spec(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)
