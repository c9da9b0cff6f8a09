"""Small SQL helpers shared by the report builders: quoting and catalog lookups."""

from __future__ import annotations

import duckdb


def quote(name: str) -> str:
    """A DuckDB identifier for any text: function names hold dots, stars, brackets."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """The columns of a table (or view) of the file's main schema, in order, with types.

    Empty when there is no such table. Temp views shadowing the name are not seen.
    """
    rows = con.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_catalog = current_database() AND table_schema = 'main'
             AND table_name = ?
           ORDER BY ordinal_position""",
        [table],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def main_table(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The table's fully qualified name: past any temp view shadowing it."""
    row = con.execute("SELECT current_database()").fetchone()
    assert row is not None
    return f"{quote(str(row[0]))}.main.{quote(table)}"


def first_line(err: BaseException) -> str:
    """DuckDB's message without its multi-line caret excerpt, which breaks one-line output."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
