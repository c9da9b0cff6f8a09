"""Derived tables (file order, one evaluation per snapshot), links and their helpers."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from sideeye_tui.model import CapturedValue, FrameCapture
from sideeye_tui.query.spec_tables import LinkedRow, key_json, linked_rows, list_tables
from sideeye_tui.reports import write_reports
from sideeye_tui.store import write_snapshot

from .support import HANDLE, process, request, snapshot, spec

DERIVED = """
[functions."main.f"]
capture = ["n"]

[tables.counts]
sql = "SELECT count(*) AS goroutines, (SELECT count(*) FROM \\"main.f\\") AS frames FROM goroutines"

[tables.doubled]
sql = "SELECT goroutines * 2 AS twice FROM counts;"

[tables.broken]
sql = "SELECT nosuch FROM goroutines"

[tables.syntax]
sql = "SELEC 1"

[tables.runtime]
sql = "SELECT CAST('x' AS INTEGER) AS v"

[tables.after]
sql = "SELECT max(snapshot_id) AS seen, count(*) AS n FROM frames"
"""


def f_frame(goid: int, n: int) -> FrameCapture:
    return FrameCapture(goid, 0, "main.f", (CapturedValue("n", n, "BIGINT"),))


def add(db: Path, frames: tuple[FrameCapture, ...], text: str) -> list[str]:
    snap = snapshot(process(10, frames))
    sid = write_snapshot(str(db), snap)
    return [m.text for m in write_reports(str(db), sid, snap, spec(text))]


def test_derived_tables_in_order_per_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    first = add(db, (f_frame(1, 1), f_frame(2, 2)), DERIVED)
    second = add(db, (f_frame(1, 1), f_frame(2, 2), f_frame(3, 3)), DERIVED)
    for messages in (first, second):
        assert len(messages) == 3
        assert messages[0].startswith("derived table 'broken': Binder Error: Referenced column")
        assert messages[1].startswith("derived table 'syntax': Parser Error: syntax error")
        assert messages[2].startswith("derived table 'runtime': Conversion Error:")
    con = duckdb.connect(str(db), read_only=True)
    # Each snapshot sees only its own rows, in every table, function tables included.
    assert con.execute("SELECT * FROM counts ORDER BY 1").fetchall() == [(1, 2, 2), (2, 3, 3)]
    assert con.execute("SELECT * FROM doubled ORDER BY 1").fetchall() == [(1, 4), (2, 6)]
    # The frames table was narrowed too (goroutines here have no frames).
    assert con.execute("SELECT * FROM after ORDER BY 1").fetchall() == [(1, None, 0), (2, None, 0)]
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert not {"broken", "syntax", "runtime"} & tables
    listed = [(t.name, t.kind, t.rows) for t in list_tables(con, 2)]
    assert listed == [
        ("main.f", "function", 3),
        ("counts", "derived", 1),
        ("doubled", "derived", 1),
        ("after", "derived", 1),
    ]


LINKS = """
[functions."main.wait"]
capture = ["txn"]

[functions."main.hold"]
capture = ["txn", "owner"]

[tables.waiters]
sql = 'SELECT pid, goid, depth, txn AS txn_id FROM "main.wait"'

[[links]]
name = "waits on"
from = { table = "waiters", columns = ["txn_id"] }
to   = { table = "main.hold",  columns = ["txn"] }

[[links]]
from = { table = "nosuch", columns = ["a"] }
to   = { table = "main.hold",  columns = ["txn"] }

[[links]]
from = { table = "waiters", columns = ["missing"] }
to   = { table = "main.hold",  columns = ["txn"] }
"""


def lock_frames(offset: int) -> tuple[FrameCapture, ...]:
    def wait(goid: int, txn: int) -> FrameCapture:
        return FrameCapture(goid, 3, "main.wait", (CapturedValue("txn", txn, "BIGINT"),))

    def hold(goid: int, txn: int | None, owner: str) -> FrameCapture:
        value = (
            CapturedValue("txn", txn, "BIGINT")
            if txn is not None
            else CapturedValue("txn", None, "BIGINT", "optimized away")
        )
        return FrameCapture(goid, 1, "main.hold", (value, CapturedValue("owner", owner, "VARCHAR")))

    return (
        wait(1, 100 + offset),
        wait(2, 100 + offset),
        wait(3, 200 + offset),
        hold(8, 100 + offset, "alice"),
        hold(9, None, "nobody"),
    )


def test_links_and_linked_rows(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    for offset in (0, 1):
        messages = add(db, lock_frames(offset), LINKS)
        assert messages == [
            "link 'nosuch(a) -> main.hold(txn)': no table 'nosuch'",
            "link 'waiters(missing) -> main.hold(txn)': table 'waiters' has no column 'missing'",
        ]
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT snapshot_id, link, from_table, from_key, to_table, to_key, from_pid, from_goid,"
        " from_depth, to_pid, to_goid, to_depth FROM links ORDER BY ALL"
    ).fetchall()
    assert rows == [
        (
            sid,
            "waits on",
            "waiters",
            f'{{"txn_id":{txn}}}',
            "main.hold",
            f'{{"txn":{txn}}}',
            10,
            g,
            3,
            10,
            8,
            1,
        )
        for sid, txn in ((1, 100), (2, 101))
        for g in (1, 2)
    ]

    # From a waiter to the holder, with the goroutine and frame to jump to.
    waiter = {"snapshot_id": 2, "pid": 10, "goid": 2, "depth": 3, "txn_id": 101}
    (holder,) = linked_rows(con, 2, "waiters", waiter)
    assert holder == LinkedRow(
        "waits on",
        "main.hold",
        {"snapshot_id": 2, "pid": 10, "goid": 8, "depth": 1, "txn": 101, "owner": "alice"},
        10,
        8,
        1,
    )
    # And back: both waiters.
    back = linked_rows(con, 2, "main.hold", holder.row)
    assert sorted((r.table, r.goid, r.depth) for r in back) == [
        ("waiters", 1, 3),
        ("waiters", 2, 3),
    ]
    # A waiter on a transaction nobody holds, a NULL key, a table without links.
    assert linked_rows(con, 2, "waiters", {**waiter, "goid": 3, "txn_id": 201}) == []
    assert linked_rows(con, 2, "main.hold", {"pid": 10, "goid": 9, "depth": 1, "txn": None}) == []
    assert linked_rows(con, 2, "main.f", {"goid": 1}) == []
    # Snapshots are kept apart.
    assert linked_rows(con, 1, "waiters", waiter) == []

    # The SQL macro for any DuckDB client.
    got = con.execute(
        "SELECT link, \"table\", key, pid, goid, depth FROM linked(2, 'waiters', ?)",
        [key_json({"txn_id": 101})],
    ).fetchall()
    assert got == [("waits on", "main.hold", '{"txn":101}', 10, 8, 1)] * 2
    got = con.execute(
        "SELECT DISTINCT goid FROM linked(1, 'main.hold', '{\"txn\": 100}') ORDER BY 1"
    ).fetchall()
    assert got == [(1,), (2,)]


SELF = """
[functions."main.wait"]
capture = ["txn"]

[[links]]
name = "same txn"
from = { table = "main.wait", columns = ["txn"] }
to   = { table = "main.wait", columns = ["txn"] }
"""


def test_link_of_a_table_to_itself_skips_the_row_itself(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    add(db, lock_frames(0)[:3], SELF)
    con = duckdb.connect(str(db), read_only=True)
    pairs = con.execute("SELECT from_goid, to_goid FROM links ORDER BY ALL").fetchall()
    assert pairs == [(1, 2), (2, 1)]


def test_list_tables_on_a_file_without_specs(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    write_snapshot(str(db), snapshot(process(10, ())))
    con = duckdb.connect(str(db), read_only=True)
    assert list_tables(con, 1) == []
    assert linked_rows(con, 1, "goroutines", {"goid": 1}) == []


def test_example_spec_end_to_end(tmp_path: Path) -> None:
    """The README's example: the derived table sorts by an extra column."""
    db = tmp_path / "s.duckdb"
    snap = snapshot(
        process(10, (request(1, 0, "late", "bob", "2026-01-01T00:00:09"),)),
        process(11, (request(5, 2, "early", "ann", "2026-01-01T00:00:01"),)),
    )
    sid = write_snapshot(str(db), snap)
    assert write_reports(str(db), sid, snap, spec()) == []
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT * FROM inflight").fetchall() == [
        (1, 5, "early", "ann"),
        (1, 1, "late", "bob"),
    ]
    (table,) = [t for t in list_tables(con, 1) if t.kind == "function"]
    assert table.name == HANDLE and table.rows == 2
    described = json.loads(
        con.execute("SELECT columns FROM spec_tables WHERE name = ?", [HANDLE]).fetchone()[0]  # type: ignore[index]
    )
    assert [c["role"] for c in described] == ["key"] * 4 + ["capture"] * 3 + ["extra"] * 2
