"""Opening a snapshot file: DuckDB's failures turned into one-line StoreErrors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from ..errors import StoreError
from .files import check_database_path, check_private, create_private, owner_only
from .schema import ADDED_COLUMNS, APP, REQUIRED_TABLES, SCHEMA_VERSION, TABLES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SnapshotInfo:
    """One row of the snapshot list: what a picker shows before loading anything."""

    snapshot_id: int
    taken_at: datetime  # aware, UTC
    hostname: str | None
    tool_version: str | None
    backend: str | None
    processes: int
    failed_processes: int
    goroutines: int


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _explain(path: str, err: duckdb.Error) -> StoreError:
    msg = str(err)
    if "not a valid DuckDB database file" in msg:
        return StoreError(f"{path}: not a sideeye-tui database")
    if "Could not set lock" in msg or "Conflicting lock" in msg:
        return StoreError(f"{path}: in use by another process")
    if "different configuration" in msg:
        return StoreError(f"{path}: already open in this process in another mode")
    if "Permission denied" in msg:
        return StoreError(f"{path}: permission denied")
    if "version number" in msg or "storage version" in msg:
        return StoreError(f"{path}: written by a newer DuckDB than this sideeye-tui uses")
    return StoreError(f"{path}: {_first_line(err)}")


def connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection, or a StoreError saying in one line why not."""
    if os.path.isdir(path):
        raise StoreError(f"{path}: is a directory")
    check_database_path(path, for_writing=not read_only)
    try:
        with owner_only():
            if not read_only and not os.path.lexists(path):
                create_private(path, lambda fresh: duckdb.connect(fresh).close())
            con = duckdb.connect(path, read_only=read_only)
    except duckdb.Error as e:
        raise _explain(path, e) from e
    except OSError as e:
        raise StoreError(f"{path}: {e.strerror or e}") from e
    if not read_only and "meta" in _tables(con):
        # Ours (another file is refused by check_schema with a message of its own).
        try:
            check_private(path)
        except BaseException:
            con.close()
            raise
    return con


def sandbox(con: duckdb.DuckDBPyConnection, scratch: str | None = None) -> None:
    """Lock con to its own database: no other file is read or written, no ATTACH, no
    extension installed or loaded, and the settings cannot be changed back.

    A spec's SQL runs on such a connection: specs are files that other people write,
    and sideeye-tui runs as root. `scratch`: a private directory of ours that stays
    readable (the function tables are loaded from JSON files written there)."""
    if scratch is not None:
        con.execute("SET allowed_directories = [?]", [os.path.join(scratch, "")])
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'main'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def wrapper_sql(con: duckdb.DuckDBPyConnection, alias: str = "") -> str:
    """SQL for frames.wrapper that also reads a file written before the column existed
    (opened read-only, it never got it): false there. `alias`: the frames table's."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_catalog ="
        " current_database() AND table_schema = 'main' AND table_name = 'frames'"
        " AND column_name = 'wrapper'"
    ).fetchone()
    if found is None or not found[0]:
        return "false"
    return f"coalesce({alias + '.' if alias else ''}wrapper, false)"


def check_schema(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Refuse a DuckDB file that sideeye-tui did not write, or a newer one."""
    if not _tables(con) >= REQUIRED_TABLES:
        raise StoreError(f"{path}: not a sideeye-tui database")
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except duckdb.Error as e:
        raise StoreError(f"{path}: not a sideeye-tui database") from e
    if meta.get("app") != APP:
        raise StoreError(f"{path}: not a sideeye-tui database")
    raw = meta.get("schema_version")
    try:
        version = int(str(raw))
    except ValueError:
        raise StoreError(f"{path}: bad schema version {raw!r}") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this sideeye-tui supports"
            f" ({SCHEMA_VERSION}); upgrade sideeye-tui"
        )
    if version < 1:
        raise StoreError(f"{path}: bad schema version {version}")


def init_schema(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Create the tables in an empty database; check them in any other."""
    if _tables(con):
        check_schema(con, path)
        for table, column, kind in ADDED_COLUMNS:
            con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        return
    for ddl in TABLES:
        con.execute(ddl)
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [["app", APP], ["schema_version", str(SCHEMA_VERSION)]],
    )


def open_store(path: str, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open an existing snapshot file for queries.

    Never creates a file (write_snapshot does). With read_only=False, files DuckDB
    creates later (a .wal on the first write) follow the caller's umask.
    """
    if not os.path.exists(path):
        raise StoreError(f"{path}: no such file")
    con = connect(path, read_only)
    try:
        check_schema(con, path)
    except BaseException:
        con.close()
        raise
    return con


def has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_catalog ="
        " current_database() AND table_schema = 'main' AND table_name = ? AND column_name = ?",
        [table, column],
    ).fetchone()
    return bool(row and row[0])


def process_outcome_sql(con: duckdb.DuckDBPyConnection, alias: str = "") -> str:
    """`error, notes` of the processes table for a file of any version: error only for
    a process that was not captured, notes (a list, NULL if none) for the caveats
    about one that was. Before processes.notes existed, such a caveat was in error,
    beside a pause: it is read as a note."""
    p = f"{alias}." if alias else ""
    legacy = f"CASE WHEN {p}pause_ns IS NOT NULL AND {p}error IS NOT NULL THEN [{p}error] END"
    notes = f"coalesce({p}notes, {legacy})" if has_column(con, "processes", "notes") else legacy
    return f"CASE WHEN {p}pause_ns IS NULL THEN {p}error END AS error, {notes} AS notes"


def list_snapshots(con: duckdb.DuckDBPyConnection) -> list[SnapshotInfo]:
    """Every snapshot in the file, oldest first, with its counts."""
    # epoch_us rather than the TIMESTAMPTZ itself: an aware UTC datetime without the
    # client's conversion to the local zone (through pytz).
    rows = con.execute(
        """
        SELECT s.snapshot_id, epoch_us(s.taken_at), s.hostname, s.tool_version, s.backend,
               count(p.pid), count(p.error) FILTER (WHERE p.pause_ns IS NULL),
               coalesce(sum(p.goroutine_count), 0)
        FROM snapshots s LEFT JOIN processes p USING (snapshot_id)
        GROUP BY ALL
        ORDER BY s.snapshot_id
        """
    ).fetchall()
    return [
        SnapshotInfo(
            snapshot_id=int(r[0]),
            taken_at=_EPOCH + timedelta(microseconds=int(r[1])),
            hostname=r[2],
            tool_version=r[3],
            backend=r[4],
            processes=int(r[5]),
            failed_processes=int(r[6]),
            goroutines=int(r[7]),
        )
        for r in rows
    ]
