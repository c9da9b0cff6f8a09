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


class SpecSQLError(Exception):
    """A spec's SQL that is not the single SELECT (or expression) a spec may hold."""


def check_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but exactly one SELECT statement.

    Spec SQL is pasted into larger statements, and DuckDB would run every
    `;`-separated statement of a string; DuckDB's own parser splits them here."""
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        raise SpecSQLError(f"must be one SELECT statement, not {len(statements)} statements")
    kind = statements[0].type.name  # by name: the type stubs misname the members
    if kind != "SELECT":
        raise SpecSQLError(f"must be a SELECT statement, not {kind}")


def check_expression(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse an extra column that is not one expression (it may not close the SELECT
    it is pasted into and start another statement)."""
    statements = con.extract_statements(f"SELECT ({sql}\n) AS v")
    if len(statements) != 1 or statements[0].type.name != "SELECT":
        raise SpecSQLError("must be one SQL expression over the row's columns")
