"""Derived tables: the spec's SQL, written for one snapshot, evaluated for each.

A derived table's first column is snapshot_id; the rest are the SQL's own. The SQL
is evaluated once per snapshot with every table that has a snapshot_id column (the
core tables, the function tables, earlier derived tables, capture_errors...) narrowed
to that snapshot by temp views of the same names: DuckDB resolves an unqualified
name in the temp catalog first, so `SELECT * FROM frames` in the spec reads only the
snapshot being evaluated. The tables themselves stay reachable through the database
name (`"incident".main.frames`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import duckdb

from ..spec.model import DerivedTable
from .sql import check_select, main_table, quote, table_columns

CORE_TABLES = ("snapshots", "processes", "goroutines", "frames")
_SIDE_TABLES = ("capture_errors", "spec_messages", "links")


def narrowable_tables(con: duckdb.DuckDBPyConnection, exclude: str) -> list[str]:
    """Tables a derived table's SQL sees narrowed to one snapshot."""
    names = list(CORE_TABLES + _SIDE_TABLES)
    if table_columns(con, "spec_tables"):
        rows = con.execute("SELECT name FROM spec_tables ORDER BY rowid").fetchall()
        names += [str(r[0]) for r in rows]
    return [
        n for n in dict.fromkeys(names) if n != exclude and "snapshot_id" in table_columns(con, n)
    ]


@contextlib.contextmanager
def narrowed(con: duckdb.DuckDBPyConnection, snapshot_id: int, tables: list[str]) -> Iterator[None]:
    """Temp views shadowing tables with only snapshot_id's rows, for the block's length."""
    made = []
    try:
        for t in tables:
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {quote(t)} AS SELECT * FROM {main_table(con, t)}"
                f" WHERE snapshot_id = {int(snapshot_id)}"
            )
            made.append(t)
        yield
    finally:
        for t in made:
            # After an error that aborted the transaction, the rollback removes them.
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DROP VIEW IF EXISTS temp.main.{quote(t)}")


def _body(sql: str) -> str:
    """The SQL as a subquery: a trailing semicolon would end the outer statement, and
    a trailing `--` comment would swallow the closing parenthesis (hence the newline)."""
    return sql.strip().rstrip(";").strip() + "\n"


def build_derived(
    con: duckdb.DuckDBPyConnection,
    table: DerivedTable,
    snapshot_ids: list[int],
    rebuild: bool,
) -> None:
    """Evaluate table's SQL for each snapshot and store the rows.

    rebuild replaces the whole table (apply); otherwise only these snapshots' rows are
    replaced, and the SQL must give the columns the table already has.
    """
    check_select(con, table.sql)
    full = main_table(con, table.name)
    tables = narrowable_tables(con, exclude=table.name)
    exists = bool(table_columns(con, table.name))
    if rebuild and exists:
        con.execute(f"DROP TABLE {full}")
        exists = False
    for sid in snapshot_ids:
        with narrowed(con, sid, tables):
            body = _body(table.sql)
            cur = con.execute(f"SELECT * FROM ({body}) LIMIT 0")
            names = [d[0] for d in cur.description or ()]
            rest = "* EXCLUDE (snapshot_id)" if "snapshot_id" in names else "*"
            select = f"SELECT {int(sid)}::INTEGER AS snapshot_id, {rest} FROM ({body})"
            if not exists:
                con.execute(f"CREATE TABLE {full} AS {select}")
                exists = True
            else:
                con.execute(f"DELETE FROM {full} WHERE snapshot_id = {int(sid)}")
                con.execute(f"INSERT INTO {full} BY NAME {select}")


def register_derived(con: duckdb.DuckDBPyConnection, table: DerivedTable) -> None:
    columns = [{"name": c, "type": t} for c, t in table_columns(con, table.name).items()]
    con.execute("DELETE FROM spec_tables WHERE name = ?", [table.name])
    con.execute(
        "INSERT INTO spec_tables VALUES (?, 'derived', NULL, ?, ?, ?)",
        [table.name, table.sql, table.source or None, json.dumps(columns)],
    )
