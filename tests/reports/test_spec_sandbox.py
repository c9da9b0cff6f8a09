"""Spec SQL runs as root on snapshot files: it may read the file's own tables, nothing else.

Each hostile spec below worked before the sandbox: reading a file outside the snapshot
into it, writing a file of its choosing, attaching another database, or smuggling a
second statement in after a derived table's or an extra column's SQL."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from sideeye_tui.reports import apply_spec, write_reports
from sideeye_tui.store import write_snapshot

from .support import HANDLE, process, request, snapshot, spec

SECRET = "TOPSECRET-4c1d"


def _spec(tmp: Path, derived: dict[str, str], extra: dict[str, str] | None = None) -> str:
    text = f'[functions."{HANDLE}"]\ncapture = ["req", "req.User.Name", "s.addr"]\n'
    if extra:
        pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in extra.items())
        text += f"extra = {{ {pairs} }}\n"
    for name, sql in derived.items():
        text += f"\n[tables.{name}]\nsql = {json.dumps(sql)}\n"
    return text


@pytest.fixture
def place(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text(f"line\n{SECRET}\n")
    return tmp_path


def _write(db: Path, text: str) -> list[str]:
    snap = snapshot(process(10, (request(1, 0, "r1", "alice", "2026-01-01"),)))
    sid = write_snapshot(str(db), snap)
    return [m.text for m in write_reports(str(db), sid, snap, spec(text))]


def _everything(db: Path) -> str:
    """Every value of every table in the file, as text: where a leaked secret would be."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return "\n".join(
            str(con.execute(f'SELECT COLUMNS(*)::VARCHAR FROM "{t}"').fetchall()) for t in tables
        )
    finally:
        con.close()


def test_derived_sql_cannot_read_write_or_attach_outside_the_file(place: Path) -> None:
    secret, out, other = place / "secret.txt", place / "owned.csv", place / "other.duckdb"
    text = _spec(
        place,
        {
            "good": "SELECT goid FROM goroutines",
            "leak": f"SELECT * FROM read_csv('{secret}', header = false)",
            "leak_text": f"SELECT content FROM read_text('{secret}')",
            "two": f"SELECT 1 AS a; COPY (SELECT 'x') TO '{out}'",
            "copy": f"COPY (SELECT 'x') TO '{out}'",
            "attach": f"ATTACH '{other}' AS o",
            "globbing": f"SELECT * FROM glob('{place}/*')",
        },
    )
    messages = _write(place / "s.duckdb", text)
    by_table = {m.split("'")[1]: m for m in messages if m.startswith("derived table")}
    assert set(by_table) == {"leak", "leak_text", "two", "copy", "attach", "globbing"}
    assert "file system operations are disabled" in by_table["leak"]
    assert "file system operations are disabled" in by_table["leak_text"]
    assert "file system operations are disabled" in by_table["globbing"]
    assert by_table["two"].endswith("must be one SELECT statement, not 2 statements")
    assert by_table["copy"].endswith("must be a SELECT statement, not COPY")
    assert by_table["attach"].endswith("must be a SELECT statement, not ATTACH")
    assert not out.exists() and not other.exists()
    assert SECRET not in _everything(place / "s.duckdb")
    con = duckdb.connect(str(place / "s.duckdb"), read_only=True)
    assert con.execute("SELECT goid FROM good").fetchall() == [(1,)]  # the rest still works


def test_an_extra_column_is_one_expression_and_reads_nothing_outside(place: Path) -> None:
    secret, out = place / "secret.txt", place / "owned.csv"
    text = _spec(
        place,
        {},
        extra={
            "ok": "\"req.User.Name\" || '!'",
            "escape": f"1) AS v; COPY (SELECT 'x') TO '{out}'; SELECT (1",
            "leak": f"(SELECT content FROM read_text('{secret}'))",
            "comment": "1 --",
        },
    )
    messages = _write(place / "s.duckdb", text)
    failed = {m.split("'")[1] for m in messages}
    assert failed == {"escape", "leak"}, messages
    assert not out.exists()
    assert SECRET not in _everything(place / "s.duckdb")
    con = duckdb.connect(str(place / "s.duckdb"), read_only=True)
    row = con.execute(f'SELECT ok, comment FROM "{HANDLE}"').fetchall()
    assert row == [("alice!", 1)]


def test_apply_runs_in_the_same_sandbox(place: Path) -> None:
    db, out = place / "s.duckdb", place / "owned.csv"
    _write(db, _spec(place, {}))
    hostile = _spec(
        place,
        {
            "leak": f"SELECT * FROM read_csv('{place / 'secret.txt'}', header = false)",
            "two": f"SELECT 1 AS a; COPY (SELECT 'x') TO '{out}'",
        },
    )
    messages = [m.text for m in apply_spec(str(db), spec(hostile))]
    assert any("file system operations are disabled" in m for m in messages), messages
    assert any(m.endswith("not 2 statements") for m in messages), messages
    assert not out.exists()
    assert SECRET not in _everything(db)
