"""Links: every pair of rows of two tables that share values, stored in `links`.

A pair is found within one snapshot. Each end keeps its key (json_object over its key
columns, so the UI and the `linked` macro can find it again) and, when its table has
them, the pid, goid and depth its row came from, so the explorer can jump to that
goroutine and frame. NULL keys never link, and in a link from a table to itself a
row is not linked to itself.
"""

from __future__ import annotations

import duckdb

from ..spec.model import Link, LinkEnd
from .sql import literal, main_table, quote, table_columns

_IDENTITY = ("pid", "goid", "depth")


class LinkProblem(Exception):
    """A link that cannot be computed, said in one line (a missing table or column)."""


def _check_end(con: duckdb.DuckDBPyConnection, link: Link, end: LinkEnd) -> dict[str, str]:
    columns = table_columns(con, end.table)
    if not columns:
        raise LinkProblem(f"link {link.name!r}: no table {end.table!r}")
    for c in (*end.columns, "snapshot_id"):
        if c not in columns:
            raise LinkProblem(f"link {link.name!r}: table {end.table!r} has no column {c!r}")
    return columns


def _key(alias: str, end: LinkEnd) -> str:
    return (
        "json_object(" + ", ".join(f"{literal(c)}, {alias}.{quote(c)}" for c in end.columns) + ")"
    )


def _identity(alias: str, columns: dict[str, str]) -> list[str]:
    return [f"{alias}.{quote(c)}" if c in columns else "NULL" for c in _IDENTITY]


def build_link(con: duckdb.DuckDBPyConnection, link: Link, snapshot_ids: list[int] | None) -> None:
    """Replace the link's rows for these snapshots (all of them when None)."""
    a_cols = _check_end(con, link, link.source)
    b_cols = _check_end(con, link, link.target)
    scope = "" if snapshot_ids is None else f" AND snapshot_id IN ({_ids(snapshot_ids)})"
    con.execute(f"DELETE FROM links WHERE link = ?{scope}", [link.name])
    on = ["a.snapshot_id = b.snapshot_id"]
    on += [
        f"a.{quote(x)} = b.{quote(y)}"
        for x, y in zip(link.source.columns, link.target.columns, strict=True)
    ]
    if link.source.table == link.target.table:
        on.append("a.rowid <> b.rowid")
    where = "" if snapshot_ids is None else f" WHERE a.snapshot_id IN ({_ids(snapshot_ids)})"
    con.execute(
        f"""INSERT INTO links
            SELECT a.snapshot_id, {literal(link.name)},
                   {literal(link.source.table)}, {_key("a", link.source)},
                   {literal(link.target.table)}, {_key("b", link.target)},
                   {", ".join(_identity("a", a_cols))}, {", ".join(_identity("b", b_cols))}
            FROM {main_table(con, link.source.table)} a
            JOIN {main_table(con, link.target.table)} b ON {" AND ".join(on)}{where}"""
    )


def _ids(snapshot_ids: list[int]) -> str:
    return ", ".join(str(int(s)) for s in snapshot_ids) or "NULL"
