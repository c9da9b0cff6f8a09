"""Extra columns: the spec's SQL over a function table's row, stored as real columns.

Real columns (not a view) keep the table users query named exactly as the function,
and let DuckDB clients read them without our macros. `apply` recomputes them, so a
changed definition reaches snapshots taken before it.
"""

from __future__ import annotations

import duckdb

from ..spec.model import Extra
from .sql import check_expression, main_table, quote, table_columns


def column_type_of(con: duckdb.DuckDBPyConnection, table: str, sql: str) -> str:
    """The type DuckDB gives sql over table's rows (binding errors surface here, early)."""
    check_expression(con, sql)
    rows = con.execute(f"DESCRIBE SELECT ({sql}\n) AS v FROM {main_table(con, table)}").fetchall()
    kind = str(rows[0][1])
    return "VARCHAR" if kind == "NULL" else kind  # a bare NULL has no storable type


def compute_extra(
    con: duckdb.DuckDBPyConnection, table: str, extra: Extra, snapshot_id: int | None
) -> None:
    """Set the extra column for one snapshot's rows (all rows when snapshot_id is None).

    A column whose type changed is rebuilt for every row, so one column never mixes
    the results of two definitions' types.
    """
    kind = column_type_of(con, table, extra.sql)
    full = main_table(con, table)
    col = quote(extra.name)
    existing = table_columns(con, table).get(extra.name)
    if existing is not None and existing != kind:
        con.execute(f"ALTER TABLE {full} DROP COLUMN {col}")
        existing = None
        snapshot_id = None
    if existing is None:
        con.execute(f"ALTER TABLE {full} ADD COLUMN {col} {kind}")
    where = "" if snapshot_id is None else f" WHERE snapshot_id = {int(snapshot_id)}"
    con.execute(f"UPDATE {full} SET {col} = ({extra.sql}\n){where}")
