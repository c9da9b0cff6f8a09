"""The DuckDB snapshot file: schema, writer, opener. Never imports the UI."""

from .database import (
    SnapshotInfo,
    check_schema,
    has_column,
    list_snapshots,
    open_store,
    process_outcome_sql,
    wrapper_sql,
)
from .schema import APP, SCHEMA_VERSION
from .writer import insert_snapshot, stack_id, write_snapshot

__all__ = [
    "APP",
    "SCHEMA_VERSION",
    "SnapshotInfo",
    "check_schema",
    "has_column",
    "insert_snapshot",
    "list_snapshots",
    "open_store",
    "process_outcome_sql",
    "stack_id",
    "wrapper_sql",
    "write_snapshot",
]
