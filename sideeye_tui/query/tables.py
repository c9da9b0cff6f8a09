"""The queries behind the Tables pane: which tables to list, a page of one of them.

Plain functions over a DuckDB cursor, no Textual, so the pane's workers call them
and tests exercise them directly. Registered tables come from the reports layer
(`spec_tables`, which also follows links); tables a spec did not
register but that hold per-snapshot rows (made by hand, by an older spec, and
`capture_errors`) come from `information_schema`, so nothing in the file is hidden.
Pages are read in the table's own order (DuckDB keeps insertion order for scans
without ORDER BY), so a derived table's "oldest first" survives paging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from ..reports.sql import quote
from .spec_tables import list_tables

# Tables of the core schema and the report bookkeeping: they have screens of their
# own (or are plumbing), so the Tables pane does not list them.
CORE_TABLES = frozenset({"meta", "snapshots", "processes", "goroutines", "frames"})
BOOKKEEPING_TABLES = frozenset({"spec_tables", "links"})
# Per-snapshot tables the reports layer keeps about itself: listed last, by kind.
SPECIAL_KINDS = {"spec_messages": "messages", "capture_errors": "errors"}
KIND_ORDER = {"table": 0, "messages": 1, "errors": 2}


@dataclass(frozen=True)
class ReportTable:
    """One table the pane lists, with its row count in the snapshot shown."""

    name: str
    kind: str  # function | derived | table | messages | errors
    rows: int


@dataclass(frozen=True)
class Page:
    """A window of a table's rows for one snapshot."""

    table: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    offset: int
    total: int


@dataclass(frozen=True)
class GoroutineRef:
    """Where a row points: the goroutine (and frame) it was captured in."""

    snapshot_id: int
    pid: int
    goid: int
    depth: int | None


def _main_tables(cur: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Every table and view of the file's main schema, with its column names."""
    rows = cur.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'main'"
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(str(table), set()).add(str(column))
    return tables


def list_report_tables(cur: duckdb.DuckDBPyConnection, snapshot_id: int) -> list[ReportTable]:
    """The registered function and derived tables (the reports layer's order), then any
    other per-snapshot table, then capture_errors; each with its rows in snapshot_id."""
    out = [
        ReportTable(t.name, "function" if t.kind == "function" else "derived", t.rows)
        for t in list_tables(cur, snapshot_id)
    ]
    listed = {t.name for t in out}
    tables = _main_tables(cur)
    others = sorted(
        n
        for n, columns in tables.items()
        if n not in listed
        and n not in CORE_TABLES
        and n not in BOOKKEEPING_TABLES
        and "snapshot_id" in columns
    )
    if others:
        # One statement for all of them: scans DuckDB prunes by snapshot_id.
        union = " UNION ALL ".join(
            f"SELECT ? AS name, count(*) AS n FROM {quote(n)} WHERE snapshot_id = ?" for n in others
        )
        params: list[object] = []
        for n in others:
            params += [n, snapshot_id]
        counts = {str(n): int(c) for n, c in cur.execute(union, params).fetchall()}
        extra = [ReportTable(n, SPECIAL_KINDS.get(n, "table"), counts.get(n, 0)) for n in others]
        out += sorted(extra, key=lambda t: KIND_ORDER[t.kind])
    return out


def _snapshot_filter(cur: duckdb.DuckDBPyConnection, table: str) -> bool:
    return "snapshot_id" in _main_tables(cur).get(table, set())


def fetch_page(
    cur: duckdb.DuckDBPyConnection, table: str, snapshot_id: int, offset: int, limit: int
) -> Page:
    """limit rows of table in snapshot_id from offset, and how many there are in all."""
    where = " WHERE snapshot_id = ?" if _snapshot_filter(cur, table) else ""
    params: list[object] = [snapshot_id] if where else []
    row = cur.execute(f"SELECT count(*) FROM {quote(table)}{where}", params).fetchone()
    total = int(row[0]) if row else 0
    offset = max(0, min(offset, max(0, total - 1)))
    rel = cur.sql(
        f"SELECT * FROM {quote(table)}{where} LIMIT {int(limit)} OFFSET {int(offset)}",
        params=params,
    )
    return Page(
        table=table,
        columns=tuple(rel.columns),
        types=tuple(str(t) for t in rel.types),
        rows=tuple(tuple(r) for r in rel.fetchall()),
        offset=offset,
        total=total,
    )


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def goroutine_of(
    columns: tuple[str, ...] | list[str], row: tuple[Any, ...] | list[Any], snapshot_id: int
) -> GoroutineRef | None:
    """The goroutine a row names through pid/goid(/depth/snapshot_id) columns, if any."""
    by_name: dict[str, Any] = {}
    for name, value in zip(columns, row, strict=False):
        by_name.setdefault(name.lower(), value)
    pid, goid = _as_int(by_name.get("pid")), _as_int(by_name.get("goid"))
    if pid is None or goid is None:
        return None
    sid = _as_int(by_name.get("snapshot_id"))
    return GoroutineRef(
        snapshot_id=snapshot_id if sid is None else sid,
        pid=pid,
        goid=goid,
        depth=_as_int(by_name.get("depth")),
    )
