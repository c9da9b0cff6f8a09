"""Writing a Snapshot: columnar CSV files bulk-loaded by DuckDB in one transaction.

DuckDB's Python client has no fast path for plain Python data without numpy, pandas
or pyarrow (a list parameter costs ~100 us per element; executemany is row by row),
but its CSV reader is fast. So the writer interns every string into a table of its
own, writes the goroutines and the frames of each distinct stack as rows of integers
(no quoting, no NULL-versus-empty ambiguity: an empty field is NULL), and lets DuckDB
join them back into the public tables. Goroutines sharing a stack share its frame
rows until that join, so the common case (many goroutines, few stacks) stays cheap.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import metadata
from typing import TextIO

import duckdb

from ..errors import StoreError
from ..model import Frame, Snapshot
from .database import connect, init_schema
from .files import owner_only


def tool_version() -> str:
    try:
        return metadata.version("sideeye-tui")
    except metadata.PackageNotFoundError:
        return "unknown"


def stack_id(frames: tuple[Frame, ...]) -> int:
    """A stable 64-bit hash of the frames' (function, file, line), innermost first,
    wrapper frames left out (Go's default traceback elides them): stacks that differ
    only in wrapper frames share an id.

    Stable across runs and machines (unlike hash()), so equal stacks group across
    snapshots and files.
    """
    text = "\n".join(f"{f.function}\0{f.file}\0{f.line}" for f in frames if not f.wrapper)
    digest = hashlib.blake2b(text.encode("utf-8", "backslashreplace"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class _Columns:
    """The snapshot flattened into three CSV files in a private directory."""

    def __init__(self, snap: Snapshot, directory: str) -> None:
        self.strings_csv = os.path.join(directory, "strings.csv")
        self.goroutines_csv = os.path.join(directory, "goroutines.csv")
        self.frames_csv = os.path.join(directory, "frames.csv")
        self._strings: dict[str, int] = {}
        self._write(snap)

    def _sid(self, s: str | None) -> int | None:
        if s is None:
            return None
        i = self._strings.get(s)
        if i is None:
            i = self._strings[s] = len(self._strings)
        return i

    def _write(self, snap: Snapshot) -> None:
        sid = self._sid
        strings = self._strings
        stacks: dict[tuple[Frame, ...], int] = {}  # frames -> index into stack_ids
        stack_ids: list[int] = []
        with (
            _csv_out(self.goroutines_csv) as gout,
            _csv_out(self.frames_csv) as fout,
        ):
            gw = csv.writer(gout, lineterminator="\n")
            fw = csv.writer(fout, lineterminator="\n")
            row = 0
            for proc in snap.processes:
                pid = proc.pid
                for g in proc.goroutines:
                    frames = g.frames
                    # setdefault hashes the frames once (Frame hashes are Python code).
                    index = stacks.setdefault(frames, len(stack_ids))
                    if index == len(stack_ids):
                        stack_ids.append(stack_id(frames))
                        frame_rows = []
                        for depth, f in enumerate(frames):
                            fn = strings.get(f.function)
                            if fn is None:
                                fn = strings[f.function] = len(strings)
                            fl = strings.get(f.file)
                            if fl is None:
                                fl = strings[f.file] = len(strings)
                            frame_rows.append(
                                (index, depth, fn, fl, f.line, f.pc, int(f.inlined), int(f.wrapper))
                            )
                        fw.writerows(frame_rows)
                    labels = json.dumps(dict(g.labels), ensure_ascii=False) if g.labels else None
                    gw.writerow(
                        (
                            row,
                            pid,
                            g.goid,
                            sid(g.status),
                            sid(g.wait_reason),
                            g.wait_seconds,
                            sid(g.created_by),
                            g.created_by_goid,
                            sid(g.start_function),
                            sid(labels),
                            int(g.truncated),
                            len(frames),
                            index,
                            stack_ids[index],
                            sid(g.unwound_from),
                            int(g.locked_to_thread),
                        )
                    )
                    row += 1
        with _csv_out(self.strings_csv) as sout:
            # Every string quoted, so the empty string stays a string.
            csv.writer(sout, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).writerows(
                (i, s) for s, i in strings.items()
            )


@contextmanager
def _csv_out(path: str) -> Iterator[TextIO]:
    # Strings from a target may hold lone surrogates; DuckDB wants valid UTF-8.
    with open(path, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
        yield f


@contextmanager
def _scratch_dir() -> Iterator[str]:
    """A private directory for the CSV files, in RAM when /dev/shm is usable."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
    path = tempfile.mkdtemp(prefix="sideeye-tui-", dir=base)  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _read_csv(path: str, columns: str) -> str:
    """SQL reading one of our CSV files (the path is ours: no quote inside)."""
    return (
        f"read_csv('{path}', header = false, auto_detect = false, delim = ',',"
        f" quote = '\"', escape = '\"', allow_quoted_nulls = false, columns = {{{columns}}})"
    )


_GOROUTINE_COLUMNS = (
    "'row': 'BIGINT', 'pid': 'INTEGER', 'goid': 'BIGINT', 'status': 'INTEGER',"
    " 'wait_reason': 'INTEGER', 'wait_seconds': 'DOUBLE', 'created_by': 'INTEGER',"
    " 'created_by_goid': 'BIGINT', 'start_function': 'INTEGER', 'labels': 'INTEGER',"
    " 'truncated': 'TINYINT', 'frame_count': 'INTEGER', 'stack': 'INTEGER',"
    " 'stack_id': 'BIGINT', 'unwound_from': 'INTEGER', 'locked_to_thread': 'TINYINT'"
)
_FRAME_COLUMNS = (
    "'stack': 'INTEGER', 'depth': 'INTEGER', 'function': 'INTEGER', 'file': 'INTEGER',"
    " 'line': 'INTEGER', 'pc': 'UBIGINT', 'inlined': 'TINYINT', 'wrapper': 'TINYINT'"
)
_STRING_COLUMNS = "'id': 'INTEGER', 'value': 'VARCHAR'"

_INSERT_GOROUTINES = """
INSERT INTO goroutines
SELECT $sid, g.pid, g.goid, st.value, wr.value, g.wait_seconds, cb.value,
       g.created_by_goid, sf.value, lb.value::JSON, g.truncated::BOOLEAN,
       g.frame_count, g.stack_id, uw.value, g.locked_to_thread::BOOLEAN
FROM _se_goroutines g
LEFT JOIN _se_strings st ON st.id = g.status
LEFT JOIN _se_strings wr ON wr.id = g.wait_reason
LEFT JOIN _se_strings cb ON cb.id = g.created_by
LEFT JOIN _se_strings sf ON sf.id = g.start_function
LEFT JOIN _se_strings lb ON lb.id = g.labels
LEFT JOIN _se_strings uw ON uw.id = g.unwound_from
ORDER BY g.row
"""

_INSERT_FRAMES = """
INSERT INTO frames (snapshot_id, pid, goid, depth, function, file, line, pc, inlined, wrapper)
SELECT $sid, g.pid, g.goid, f.depth, fn.value, fl.value, f.line, f.pc, f.inlined::BOOLEAN,
       f.wrapper::BOOLEAN
FROM _se_goroutines g
JOIN _se_frames f ON f.stack = g.stack
LEFT JOIN _se_strings fn ON fn.id = f.function
LEFT JOIN _se_strings fl ON fl.id = f.file
ORDER BY g.row, f.depth
"""


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.astimezone()


def insert_snapshot(con: duckdb.DuckDBPyConnection, snap: Snapshot, name: str = "") -> int:
    """Append snap to the open database in one transaction; return its snapshot_id.

    Creates the tables in an empty database. name only labels error messages.
    """
    backends = sorted({p.backend for p in snap.processes if p.backend})
    with _scratch_dir() as scratch:
        cols = _Columns(snap, scratch)
        try:
            con.begin()
            try:
                init_schema(con, name)
                row = con.execute(
                    "SELECT coalesce(max(snapshot_id), 0) + 1 FROM snapshots"
                ).fetchone()
                assert row is not None
                sid = int(row[0])
                con.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                    [
                        sid,
                        _aware(snap.taken_at),
                        snap.hostname,
                        tool_version(),
                        ",".join(backends) or None,
                    ],
                )
                if snap.processes:
                    con.executemany(
                        "INSERT INTO processes (snapshot_id, pid, exe, build_id, go_version, "
                        "main_module, pause_ns, threads, goroutine_count, error, backend, walk, notes) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            [
                                sid,
                                p.pid,
                                p.exe,
                                p.build_id,
                                p.go_version,
                                p.main_module,
                                p.pause_ns,
                                p.threads,
                                len(p.goroutines),
                                p.error,
                                p.backend or None,
                                p.walk if p.goroutines else None,
                                list(p.notes) or None,
                            ]
                            for p in snap.processes
                        ],
                    )
                for table, path, columns in (
                    ("_se_strings", cols.strings_csv, _STRING_COLUMNS),
                    ("_se_goroutines", cols.goroutines_csv, _GOROUTINE_COLUMNS),
                    ("_se_frames", cols.frames_csv, _FRAME_COLUMNS),
                ):
                    con.execute(
                        f"CREATE OR REPLACE TEMP TABLE {table} AS"
                        f" SELECT * FROM {_read_csv(path, columns)}"
                    )
                con.execute(_INSERT_GOROUTINES, {"sid": sid})
                con.execute(_INSERT_FRAMES, {"sid": sid})
                for table in ("_se_strings", "_se_goroutines", "_se_frames"):
                    con.execute(f"DROP TABLE {table}")
                con.commit()
            except BaseException:
                con.rollback()
                raise
        except duckdb.Error as e:
            raise StoreError(f"{name or 'database'}: cannot write the snapshot: {e}") from e
    return sid


def write_snapshot(path: str, snap: Snapshot) -> int:
    """Append snap to the file at path (created if missing); return its snapshot_id.

    All or nothing: a crash mid-write leaves the file as it was. New files (and the
    .wal DuckDB writes next to them) are readable by their owner only.
    """
    with owner_only():
        con = connect(path, read_only=False)
        try:
            sid = insert_snapshot(con, snap, path)
        finally:
            try:
                con.close()  # checkpoints: the .wal folds into the file
            except duckdb.Error as e:
                raise StoreError(f"{path}: cannot close: {e}") from e
    return sid
