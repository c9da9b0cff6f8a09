"""What the explorer asks of a spec'd snapshot: its tables, and the rows linked to a row.

Read-only queries over an open connection; no Textual here, so the explorer and tests
share them. Files written before any spec was applied have none of these tables: the
helpers then answer with empty lists rather than errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

from ..reports.sql import quote, table_columns

_IDENTITY = ("pid", "goid", "depth")


@dataclass(frozen=True)
class SpecTable:
    """One function or derived table, as the registry (spec_tables) describes it."""

    name: str  # the table to query (a function's tables is named by the function)
    kind: str  # "function" or "derived"
    function: str | None  # for a function table
    sql: str | None  # for a derived table: the spec's SQL
    spec_path: str | None  # the spec file(s) it came from
    columns: tuple[str, ...]  # the table's columns, in order
    rows: int  # rows of the asked-for snapshot


@dataclass(frozen=True)
class LinkedRow:
    """A row at the other end of a link, and where in the snapshot it came from."""

    link: str
    table: str
    row: dict[str, object]
    pid: int | None  # None when the table has no such column
    goid: int | None
    depth: int | None


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(table_columns(con, name))


def list_tables(con: duckdb.DuckDBPyConnection, snapshot_id: int) -> list[SpecTable]:
    """The function tables (by name), then the derived tables (in the spec's order).

    rows counts the rows of snapshot_id, so the explorer can grey out empty tables.
    """
    if not _has_table(con, "spec_tables"):
        return []
    registry = con.execute(
        "SELECT name, kind, function, sql, spec_path FROM spec_tables"
        " ORDER BY kind <> 'function', CASE WHEN kind = 'function' THEN name END, rowid"
    ).fetchall()
    out = []
    for name, kind, function, sql, spec_path in registry:
        columns = table_columns(con, name)
        if not columns:
            continue  # registered, then dropped by hand: nothing to show
        count = 0
        if "snapshot_id" in columns:
            row = con.execute(
                f"SELECT count(*) FROM {quote(name)} WHERE snapshot_id = ?", [snapshot_id]
            ).fetchone()
            count = int(row[0]) if row else 0
        out.append(SpecTable(name, kind, function, sql, spec_path, tuple(columns), count))
    return out


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _ends(
    con: duckdb.DuckDBPyConnection, snapshot_id: int, table: str
) -> list[tuple[str, str, list[str], str, list[str]]]:
    """(link, this end's table, its key columns, other table, its key columns) for every
    link touching table in this snapshot, seen from table's side."""
    rows = con.execute(
        """SELECT DISTINCT link, from_table, json_keys(from_key), to_table, json_keys(to_key)
           FROM links WHERE snapshot_id = $sid AND (from_table = $t OR to_table = $t)""",
        {"sid": snapshot_id, "t": table},
    ).fetchall()
    out = []
    for link, ftable, fcols, ttable, tcols in rows:
        if ftable == table:
            out.append((str(link), "from", list(fcols), "to", list(tcols)))
        if ttable == table:
            out.append((str(link), "to", list(tcols), "from", list(fcols)))
    return out


def linked_rows(
    con: duckdb.DuckDBPyConnection, snapshot_id: int, table: str, row: Mapping[str, object]
) -> list[LinkedRow]:
    """The rows linked to row (a row of table, as the explorer fetched it), both ways.

    A link row's key is json_object over its key columns, typed as in the table, so
    row's values are cast back to those types to rebuild the same JSON. When the table
    has pid, goid and depth, only the links of that very row are followed.
    """
    if not _has_table(con, "links"):
        return []
    types = table_columns(con, table)
    out: list[LinkedRow] = []
    for link, side, cols, other_side, other_cols in _ends(con, snapshot_id, table):
        if any(c not in row or c not in types for c in cols):
            continue
        if any(row[c] is None for c in cols):
            continue  # NULL never links
        key_sql = ", ".join(f"'{c}', CAST(? AS {types[c]})" for c in cols)
        params: list[object] = [snapshot_id, link, table, *(row[c] for c in cols)]
        where = [f"{side}_key = json_object({key_sql})"]
        for c in _IDENTITY:
            if c in row and c in types:
                where.append(f"{side}_{c} IS NOT DISTINCT FROM ?")
                params.append(row[c])
        pairs = con.execute(
            f"""SELECT DISTINCT {other_side}_table, {other_side}_key::VARCHAR,
                       {other_side}_pid, {other_side}_goid, {other_side}_depth
                FROM links WHERE snapshot_id = ? AND link = ? AND {side}_table = ?
                  AND {" AND ".join(where)}""",
            params,
        ).fetchall()
        for other, key, pid, goid, depth in pairs:
            out.extend(
                _fetch_other(
                    con, snapshot_id, link, str(other), other_cols, str(key), (pid, goid, depth)
                )
            )
    return out


def _fetch_other(
    con: duckdb.DuckDBPyConnection,
    snapshot_id: int,
    link: str,
    table: str,
    cols: list[str],
    key: str,
    identity: tuple[object, object, object],
) -> list[LinkedRow]:
    columns = table_columns(con, table)
    if not columns or any(c not in columns for c in cols):
        return []  # the table changed since the links were computed
    key_sql = ", ".join(f"'{c}', {quote(c)}" for c in cols)
    where = ["snapshot_id = ?", f"json_object({key_sql})::VARCHAR = ?"]
    params: list[object] = [snapshot_id, key]
    for c, value in zip(_IDENTITY, identity, strict=True):
        if c in columns:
            where.append(f"{quote(c)} IS NOT DISTINCT FROM ?")
            params.append(value)
    cur = con.execute(f"SELECT * FROM {quote(table)} WHERE {' AND '.join(where)}", params)
    names = [d[0] for d in cur.description or ()]
    out = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        out.append(
            LinkedRow(
                link,
                table,
                row,
                _int(row.get("pid")),
                _int(row.get("goid")),
                _int(row.get("depth")),
            )
        )
    return out


def key_json(values: dict[str, object]) -> str:
    """A key as `linked(...)` wants it, from column values (for tests and the UI)."""
    return json.dumps(values)
