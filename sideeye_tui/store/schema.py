"""The tables of a snapshot file: a public contract, read by any DuckDB client.

Columns are only ever added. SCHEMA_VERSION rises when a reader of an older version
would misread the file; meta.schema_version records the version that wrote it.
"""

from __future__ import annotations

from typing import Final

APP: Final = "sideeye-tui"
SCHEMA_VERSION: Final = 1

# Indexes and primary keys on the big tables would slow the bulk insert for little gain:
# DuckDB scans columns fast and its zone maps prune by snapshot_id.
TABLES: Final[tuple[str, ...]] = (
    """CREATE TABLE meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    )""",
    """CREATE TABLE snapshots (
        snapshot_id INTEGER PRIMARY KEY,
        taken_at TIMESTAMPTZ NOT NULL,
        hostname VARCHAR,
        tool_version VARCHAR,
        backend VARCHAR
    )""",
    """CREATE TABLE processes (
        snapshot_id INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        exe VARCHAR,
        build_id VARCHAR,
        go_version VARCHAR,
        main_module VARCHAR,
        pause_ns BIGINT,
        threads INTEGER,
        goroutine_count INTEGER,
        error VARCHAR,
        backend VARCHAR
    )""",
    """CREATE TABLE goroutines (
        snapshot_id INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        goid BIGINT NOT NULL,
        status VARCHAR,
        wait_reason VARCHAR,
        wait_seconds DOUBLE,
        created_by VARCHAR,
        created_by_goid BIGINT,
        start_function VARCHAR,
        labels JSON,
        truncated BOOLEAN,
        frame_count INTEGER,
        stack_id BIGINT,
        unwound_from VARCHAR
    )""",
    """CREATE TABLE frames (
        snapshot_id INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        goid BIGINT NOT NULL,
        depth INTEGER NOT NULL,
        function VARCHAR,
        file VARCHAR,
        line INTEGER,
        pc UBIGINT,
        inlined BOOLEAN
    )""",
)

REQUIRED_TABLES: Final = frozenset({"meta", "snapshots", "processes", "goroutines", "frames"})
