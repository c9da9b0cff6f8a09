"""Function tables and extra columns, from snapshots built by hand."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sideeye_tui.model import CapturedValue, FrameCapture, ProcessSnapshot
from sideeye_tui.reports import write_reports
from sideeye_tui.reports.functions import column_type
from sideeye_tui.store import write_snapshot

from .support import HANDLE, process, request, snapshot, spec


def columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in con.execute(f'DESCRIBE "{table}"').fetchall()}


def take(
    path: Path, snap_procs: tuple[ProcessSnapshot, ...], text: str | None = None
) -> tuple[int, list[str]]:
    snap = snapshot(*snap_procs)
    sid = write_snapshot(str(path), snap)
    messages = write_reports(str(path), sid, snap, spec() if text is None else spec(text))
    return sid, [m.text for m in messages]


def test_typed_and_json_columns_nulls_and_reasons(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    procs = (
        process(10, (request(1, 2, "a", "alice", "t2"), request(2, 0, "b", None, "t1"))),
        process(20, (request(7, 1, "c", "carol", "t3"),), ("unknown variable: s",)),
    )
    sid, messages = take(db, procs)
    assert messages == ["unknown variable: s"]
    con = duckdb.connect(str(db), read_only=True)
    assert columns(con, HANDLE) == {
        "snapshot_id": "INTEGER",
        "pid": "INTEGER",
        "goid": "BIGINT",
        "depth": "INTEGER",
        "req": "JSON",
        "req.User.Name": "VARCHAR",
        "s.addr": "VARCHAR",
        "user": "VARCHAR",
        "started": "VARCHAR",
    }
    rows = con.execute(
        f'SELECT pid, goid, depth, req->>\'$.ID\', "req.User.Name", user, started FROM "{HANDLE}"'
        " ORDER BY pid, goid"
    ).fetchall()
    assert rows == [
        (10, 1, 2, "a", "alice", "alice", "t2"),
        (10, 2, 0, "b", None, None, "t1"),
        (20, 7, 1, "c", "carol", "carol", "t3"),
    ]
    assert con.execute("SELECT * FROM capture_errors").fetchall() == [
        (sid, 10, 2, 0, HANDLE, "req.User.Name", "nil pointer dereference")
    ]
    assert con.execute("SELECT * FROM spec_messages").fetchall() == [
        (sid, 20, "unknown variable: s")
    ]


def test_column_types() -> None:
    assert (
        column_type([CapturedValue("x", 5, "BIGINT"), CapturedValue("x", -1, "BIGINT")]) == "BIGINT"
    )
    assert column_type([CapturedValue("x", 2**64 - 1, "BIGINT")]) == "JSON"  # a uint64 too big
    assert column_type([CapturedValue("x", True, "BIGINT")]) == "JSON"
    assert (
        column_type([CapturedValue("x", 1, "BIGINT"), CapturedValue("x", "a", "VARCHAR")]) == "JSON"
    )
    assert (
        column_type([CapturedValue("x", 1.5, "DOUBLE"), CapturedValue("x", 2, "DOUBLE")])
        == "DOUBLE"
    )
    assert column_type([CapturedValue("x", None, "BOOLEAN", "optimized away")]) == "BOOLEAN"
    # An unavailable value's type does not outvote the available ones.
    assert (
        column_type([CapturedValue("x", None, "JSON", "gone"), CapturedValue("x", 3, "BIGINT")])
        == "BIGINT"
    )
    assert column_type([]) is None


SCALARS = '[functions."main.f"]\ncapture = ["n", "ok", "ratio"]\n'


def frame(goid: int, *values: CapturedValue) -> FrameCapture:
    return FrameCapture(goid, 0, "main.f", values)


def test_new_expressions_add_columns_and_types_widen(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    first = frame(1, CapturedValue("n", 5, "BIGINT"), CapturedValue("ok", True, "BOOLEAN"))
    take(db, (process(10, (first,)),), SCALARS)
    con = duckdb.connect(str(db), read_only=True)
    # ratio had no value at all: a JSON column until a value tells its type.
    assert columns(con, "main.f")["ratio"] == "JSON"
    con.close()

    second = frame(
        2,
        CapturedValue("n", "five", "VARCHAR"),
        CapturedValue("ok", False, "BOOLEAN"),
        CapturedValue("ratio", float("nan"), "DOUBLE"),
        CapturedValue("extra.expr", [1, 2], "JSON"),
    )
    take(db, (process(10, (second,)),), SCALARS)
    con = duckdb.connect(str(db), read_only=True)
    cols = columns(con, "main.f")
    assert cols["n"] == "JSON"  # BIGINT then VARCHAR
    assert cols["ok"] == "BOOLEAN"
    assert cols["ratio"] == "DOUBLE"  # was all NULL: retyped
    assert cols["extra.expr"] == "JSON"  # an expression the capture layer added
    rows = con.execute(
        'SELECT snapshot_id, n, ok, isnan(ratio), "extra.expr" FROM "main.f" ORDER BY 1'
    ).fetchall()
    assert rows == [(1, "5", True, None, None), (2, '"five"', False, True, "[1,2]")]
    # the first snapshot had no value of ratio or extra.expr at all
    reasons = con.execute(
        "SELECT snapshot_id, expression, reason FROM capture_errors ORDER BY ALL"
    ).fetchall()
    assert reasons == [(1, "ratio", "not captured")]


def test_function_without_frames_gets_an_empty_table(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    take(db, (process(10, ()),))
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(f'SELECT count(*) FROM "{HANDLE}"').fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM inflight").fetchone() == (0,)


EXTRAS = """
[functions."main.f"]
capture = ["n"]
extra = { double = "n * 2", quad = "double * 2", bad = "nosuch + 1", cast = "'x' || n::VARCHAR", boom = "CAST('x' || n AS INTEGER)" }
"""


def test_extra_columns_and_their_failures(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    frames = tuple(frame(g, CapturedValue("n", g * 10, "BIGINT")) for g in (1, 2))
    sid, messages = take(db, (process(10, frames),), EXTRAS)
    assert len(messages) == 2
    assert messages[0].startswith("main.f: extra column 'bad': Binder Error: Referenced column")
    assert messages[1].startswith("main.f: extra column 'boom': Conversion Error:")
    con = duckdb.connect(str(db), read_only=True)
    cols = columns(con, "main.f")
    assert "bad" not in cols and "boom" not in cols
    assert con.execute('SELECT n, double, quad, "cast" FROM "main.f" ORDER BY n').fetchall() == [
        (10, 20, 40, "x10"),
        (20, 40, 80, "x20"),
    ]
    stored = [r[0] for r in con.execute("SELECT message FROM spec_messages").fetchall()]
    assert stored == messages
    # The snapshot itself is whole.
    assert con.execute("SELECT count(*) FROM goroutines").fetchone() == (2,)


def test_older_file_without_spec_tables_gets_them(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    plain = snapshot(process(10, ()))
    write_snapshot(str(db), plain)
    assert write_reports(str(db), 1, plain, None) == []  # nothing to say: nothing written
    con = duckdb.connect(str(db), read_only=True)
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert "spec_tables" not in tables
    con.close()
    take(db, (process(10, (request(1, 0, "a", "u", "t"),)),))
    con = duckdb.connect(str(db), read_only=True)
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert {"spec_tables", "capture_errors", "spec_messages", "links", HANDLE} <= tables


@pytest.mark.parametrize("value", ["\udcff bad surrogate", "quote \" and ' and \\"])
def test_awkward_strings(tmp_path: Path, value: str) -> None:
    db = tmp_path / "s.duckdb"
    f = frame(1, CapturedValue("n", value, "VARCHAR"))
    take(db, (process(10, (f,)),), '[functions."main.f"]\ncapture = ["n"]\n')
    con = duckdb.connect(str(db), read_only=True)
    (got,) = con.execute('SELECT n FROM "main.f"').fetchone() or (None,)
    assert got == value.encode("utf-8", "replace").decode("utf-8")
