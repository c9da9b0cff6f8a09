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
        backend VARCHAR,
        walk VARCHAR,
        notes VARCHAR[]
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
        unwound_from VARCHAR,
        locked_to_thread BOOLEAN
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
        inlined BOOLEAN,
        wrapper BOOLEAN
    )""",
)

# Columns added after a table's first version, added to older files on the next write.
ADDED_COLUMNS: Final[tuple[tuple[str, str, str], ...]] = (
    ("processes", "walk", "VARCHAR"),
    ("frames", "wrapper", "BOOLEAN"),
    ("processes", "notes", "VARCHAR[]"),
    ("goroutines", "locked_to_thread", "BOOLEAN"),
)

REQUIRED_TABLES: Final = frozenset({"meta", "snapshots", "processes", "goroutines", "frames"})

# Tables a spec adds (see README, "Specs"), created on first use, older files included.
# Function and derived tables themselves are named by the spec, so they are not here.
SPEC_TABLES: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS spec_tables (
        name VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        function VARCHAR,
        sql VARCHAR,
        spec_path VARCHAR,
        columns JSON
    )""",
    """CREATE TABLE IF NOT EXISTS capture_errors (
        snapshot_id INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        goid BIGINT NOT NULL,
        depth INTEGER NOT NULL,
        function VARCHAR,
        expression VARCHAR,
        reason VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS spec_messages (
        snapshot_id INTEGER,
        pid INTEGER,
        message VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS links (
        snapshot_id INTEGER NOT NULL,
        link VARCHAR,
        from_table VARCHAR,
        from_key JSON,
        to_table VARCHAR,
        to_key JSON,
        from_pid INTEGER,
        from_goid BIGINT,
        from_depth INTEGER,
        to_pid INTEGER,
        to_goid BIGINT,
        to_depth INTEGER
    )""",
    # linked(snapshot, table, key): the other end of every link from or to that key.
    """CREATE OR REPLACE MACRO linked(sid, tbl, k) AS TABLE
        SELECT link, to_table AS "table", to_key AS key,
               to_pid AS pid, to_goid AS goid, to_depth AS depth
        FROM links
        WHERE snapshot_id = sid AND from_table = tbl AND from_key = json(k)
        UNION ALL
        SELECT link, from_table, from_key, from_pid, from_goid, from_depth
        FROM links
        WHERE snapshot_id = sid AND to_table = tbl AND to_key = json(k)""",
)
