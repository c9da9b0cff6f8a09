"""Function tables: one row per frame of a spec'd function, one column per expression.

A table is named exactly as its function and starts with snapshot_id, pid, goid and
depth. A scalar expression gets a typed column; a composite one (or one whose type
varies between frames or snapshots) a JSON column. When a later snapshot brings a new
expression the table grows a column; when it brings a different type for an existing
column, the column widens to JSON, so every value stays queryable. A value missing at
a frame's pc is NULL and its reason a row of capture_errors.

Rows are bulk-loaded from a newline-delimited JSON file: DuckDB's Python client has no
fast path for many small rows, its JSON reader does.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from ..model import CapturedValue, FrameCapture, Snapshot
from ..spec.model import FunctionSpec, Spec
from .sql import literal, quote, table_columns

SCALAR_TYPES = ("BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN")
_INT64 = (-(2**63), 2**63 - 1)
_KEY_COLUMNS = (
    ("snapshot_id", "INTEGER"),
    ("pid", "INTEGER"),
    ("goid", "BIGINT"),
    ("depth", "INTEGER"),
)


def _fits(value: object, sql_type: str) -> bool:
    """Whether value can go into a column of sql_type as is (else it goes as JSON)."""
    if value is None:
        return True
    if sql_type == "BIGINT":
        return type(value) is int and _INT64[0] <= value <= _INT64[1]
    if sql_type == "DOUBLE":
        return type(value) in (int, float)
    if sql_type == "VARCHAR":
        return isinstance(value, str)
    if sql_type == "BOOLEAN":
        return isinstance(value, bool)
    return sql_type == "JSON"


def column_type(values: Iterable[CapturedValue]) -> str | None:
    """The column type for one expression's values in one snapshot; None if unknown.

    The capture layer's sql_type wins when all frames agree on it and every value fits;
    anything else is JSON. Unavailable values only vote when no value is available.
    """
    vals = list(values)
    available = [v for v in vals if v.unavailable is None]
    voters = available or vals
    kinds = {v.sql_type.upper() for v in voters}
    if not kinds:
        return None
    if len(kinds) > 1:
        return "JSON"
    kind = kinds.pop()
    if kind not in SCALAR_TYPES:
        return "JSON"
    if all(_fits(v.value, kind) for v in available):
        return kind
    return "JSON"


def _widen(old: str, new: str | None) -> str:
    if new is None or old == new:
        return old
    return "JSON"


def _scrub(value: object) -> object:
    """JSON that DuckDB's reader accepts: no NaN literal, no lone surrogates."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf": a DOUBLE column casts them back
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {str(_scrub(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


@dataclass(frozen=True)
class FunctionRows:
    """One function's frames in one snapshot, ready to load."""

    spec: FunctionSpec
    expressions: tuple[str, ...]  # the spec's, then any the capture layer added
    types: dict[str, str | None]  # per expression; None when nothing says
    frames: tuple[tuple[int, FrameCapture], ...]  # (pid, frame)


def collect(snap: Snapshot, spec: Spec) -> list[FunctionRows]:
    """Group the snapshot's captured frames by the spec's functions."""
    by_function: dict[str, list[tuple[int, FrameCapture]]] = {f.name: [] for f in spec.functions}
    for proc in snap.processes:
        for fc in proc.captures:
            by_function.setdefault(fc.function, []).append((proc.pid, fc))
    out = []
    for name, frames in by_function.items():
        fspec = spec.function(name) or FunctionSpec(name)
        expressions = list(fspec.capture)
        values: dict[str, list[CapturedValue]] = {e: [] for e in expressions}
        for _, fc in frames:
            for v in fc.values:
                if v.expression not in values:
                    expressions.append(v.expression)
                    values[v.expression] = []
                values[v.expression].append(v)
        types = {e: column_type(values[e]) for e in expressions}
        out.append(FunctionRows(fspec, tuple(expressions), types, tuple(frames)))
    return out


def ensure_function_table(
    con: duckdb.DuckDBPyConnection, name: str, types: dict[str, str | None]
) -> dict[str, str]:
    """Create or grow the function's table so every expression has a column of a type
    holding its values; return the expression columns' types as they now are."""
    existing = table_columns(con, name)
    table = quote(name)
    if not existing:
        cols = [f"{c} {t}" for c, t in _KEY_COLUMNS]
        cols += [f"{quote(e)} {t or 'JSON'}" for e, t in types.items()]
        con.execute(f"CREATE TABLE {table} ({', '.join(cols)})")
        return {e: t or "JSON" for e, t in types.items()}
    out = {}
    for expr, new in types.items():
        old = existing.get(expr)
        if old is None:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {quote(expr)} {new or 'JSON'}")
            out[expr] = new or "JSON"
            continue
        want = old
        if new is not None and new != old:
            row = con.execute(f"SELECT count({quote(expr)}) FROM {table}").fetchone()
            # Only NULLs so far (a column made before any value told its type): retype.
            want = new if row is not None and row[0] == 0 else _widen(old, new)
        if want != old:
            using = "" if want != "JSON" else f" USING to_json({quote(expr)})"
            con.execute(f"ALTER TABLE {table} ALTER {quote(expr)} SET DATA TYPE {want}{using}")
        out[expr] = want
    return out


def _load_ndjson(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[tuple[str, str]],
    rows: Iterable[list[object]],
    directory: str,
) -> int:
    """INSERT rows into table's named columns (name, type) via a private JSON file in
    directory (the one the sandboxed connection may read: store/database.py)."""
    n = 0
    with tempfile.TemporaryDirectory(prefix="rows-", dir=directory) as scratch:
        path = os.path.join(scratch, "rows.ndjson")
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                record = {f"c{i}": _scrub(v) for i, v in enumerate(row)}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
        if not n:
            return 0
        spec = ", ".join(f"c{i}: {literal(t)}" for i, (_, t) in enumerate(columns))
        names = ", ".join(quote(c) for c, _ in columns)
        picks = ", ".join(f"c{i}" for i in range(len(columns)))
        con.execute(
            f"INSERT INTO {table} ({names}) SELECT {picks} FROM read_json({literal(path)},"
            f" format = 'newline_delimited', columns = {{{spec}}})"
        )
    return n


def write_function_rows(
    con: duckdb.DuckDBPyConnection, snapshot_id: int, rows: FunctionRows, scratch: str
) -> None:
    """Create or grow the table, insert this snapshot's frames and their capture errors
    (through JSON files in scratch, a private directory the connection may read)."""
    name = rows.spec.name
    types = ensure_function_table(con, name, rows.types)
    columns = list(_KEY_COLUMNS) + [(e, types[e]) for e in rows.expressions]
    errors: list[list[object]] = []

    def records() -> Iterable[list[object]]:
        for pid, fc in rows.frames:
            by_expr = {v.expression: v for v in fc.values}
            record: list[object] = [snapshot_id, pid, fc.goid, fc.depth]
            for e in rows.expressions:
                v = by_expr.get(e)
                if v is None:
                    record.append(None)
                    errors.append([snapshot_id, pid, fc.goid, fc.depth, name, e, "not captured"])
                elif v.unavailable is not None:
                    record.append(None)
                    errors.append([snapshot_id, pid, fc.goid, fc.depth, name, e, v.unavailable])
                else:
                    record.append(v.value)
            yield record

    _load_ndjson(con, quote(name), columns, records(), scratch)
    _load_ndjson(
        con,
        "capture_errors",
        [
            ("snapshot_id", "INTEGER"),
            ("pid", "INTEGER"),
            ("goid", "BIGINT"),
            ("depth", "INTEGER"),
            ("function", "VARCHAR"),
            ("expression", "VARCHAR"),
            ("reason", "VARCHAR"),
        ],
        errors,
        scratch,
    )


def register_function(con: duckdb.DuckDBPyConnection, fspec: FunctionSpec) -> None:
    """Record the function's table in spec_tables (replacing an earlier entry)."""
    columns = table_columns(con, fspec.name)
    extras = {x.name: x.sql for x in fspec.extra}
    described = []
    for col, kind in columns.items():
        role = "key" if col in dict(_KEY_COLUMNS) else "extra" if col in extras else "capture"
        entry = {"name": col, "type": kind, "role": role}
        if col in extras:
            entry["sql"] = extras[col]
        described.append(entry)
    con.execute("DELETE FROM spec_tables WHERE name = ?", [fspec.name])
    con.execute(
        "INSERT INTO spec_tables VALUES (?, 'function', ?, NULL, ?, ?)",
        [fspec.name, fspec.name, ", ".join(fspec.sources) or None, json.dumps(described)],
    )
