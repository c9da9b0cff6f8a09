"""The DuckDB snapshot file: schema, writer, opener. Never imports the UI.

Names are loaded on first use, so that a reader (query/, the explorer) importing the
opener does not load the writer and what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "APP": "schema",
    "SCHEMA_VERSION": "schema",
    "SnapshotInfo": "database",
    "check_schema": "database",
    "has_column": "database",
    "list_snapshots": "database",
    "open_store": "database",
    "process_outcome_sql": "database",
    "wrapper_sql": "database",
    "insert_snapshot": "writer",
    "stack_id": "writer",
    "write_snapshot": "writer",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
