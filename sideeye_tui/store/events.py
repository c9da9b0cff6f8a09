"""The dynamic-events tables: a trace written batch by batch while it runs.

Each batch (about a second of events, their new backtraces and the per-second
aggregates) is one transaction, so a trace killed with SIGKILL keeps every batch
but the one in progress. Events go through a CSV file in RAM and DuckDB's CSV
reader, as snapshots do (see writer.py): the Python client inserts plain rows one by
one, far below the 100,000 events a second a trace must keep up with.

The tables are created on the first trace, in a new file or in a snapshot file
(whose meta and schema version are checked as for a snapshot).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import duckdb

from ..errors import StoreError
from ..model import EventBatch, Frame, ProbeInfo
from .database import connect, init_schema
from .files import owner_only
from .writer import _csv_out, _read_csv, _scratch_dir, stack_id, tool_version

EVENT_TABLES: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS traces (
        trace_id INTEGER PRIMARY KEY,
        started TIMESTAMPTZ NOT NULL,
        ended TIMESTAMPTZ,
        hostname VARCHAR,
        tool_version VARCHAR,
        spec_paths VARCHAR,
        end_reason VARCHAR,
        max_events_per_s BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS probes (
        trace_id INTEGER NOT NULL,
        probe_id INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        kind VARCHAR,
        location VARCHAR,
        function VARCHAR,
        file VARCHAR,
        line INTEGER,
        pcs INTEGER,
        error VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        trace_id INTEGER NOT NULL,
        event_id BIGINT NOT NULL,
        probe_id INTEGER NOT NULL,
        pid INTEGER,
        tid INTEGER,
        goid BIGINT,
        ts TIMESTAMPTZ,
        ts_ns BIGINT,
        kind VARCHAR,
        duration_ns BIGINT,
        entry_event_id BIGINT,
        stack_id UBIGINT,
        inlined BOOLEAN
    )""",
    """CREATE TABLE IF NOT EXISTS event_stacks (
        trace_id INTEGER NOT NULL,
        stack_id UBIGINT NOT NULL,
        depth INTEGER NOT NULL,
        function VARCHAR,
        file VARCHAR,
        line INTEGER,
        pc UBIGINT,
        inlined BOOLEAN
    )""",
    """CREATE TABLE IF NOT EXISTS probe_rates (
        trace_id INTEGER NOT NULL,
        probe_id INTEGER NOT NULL,
        second TIMESTAMPTZ NOT NULL,
        hits BIGINT,
        kept BIGINT,
        dropped BIGINT,
        returns BIGINT,
        throttled BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS event_capture_errors (
        trace_id INTEGER NOT NULL,
        event_id BIGINT NOT NULL,
        expression VARCHAR,
        reason VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS probe_durations (
        trace_id INTEGER NOT NULL,
        probe_id INTEGER NOT NULL,
        second TIMESTAMPTZ NOT NULL,
        bucket INTEGER NOT NULL,
        count BIGINT
    )""",
)

# (column, type) of what each insert writes; "TS_US" is a TIMESTAMPTZ given in unix
# microseconds (exact: no float on the way).
_EVENT_COLUMNS = (
    ("trace_id", "INTEGER"),
    ("event_id", "BIGINT"),
    ("probe_id", "INTEGER"),
    ("pid", "INTEGER"),
    ("tid", "INTEGER"),
    ("goid", "BIGINT"),
    ("ts", "TS_US"),
    ("ts_ns", "BIGINT"),
    ("kind", "VARCHAR"),
    ("duration_ns", "BIGINT"),
    ("entry_event_id", "BIGINT"),
    ("stack_id", "UBIGINT"),
    ("inlined", "BOOLEAN"),
)
_STACK_COLUMNS = (
    ("trace_id", "INTEGER"),
    ("stack_id", "UBIGINT"),
    ("depth", "INTEGER"),
    ("function", "VARCHAR"),
    ("file", "VARCHAR"),
    ("line", "INTEGER"),
    ("pc", "UBIGINT"),
    ("inlined", "BOOLEAN"),
)
_RATE_COLUMNS = (
    ("trace_id", "INTEGER"),
    ("probe_id", "INTEGER"),
    ("second", "TS_US"),
    ("hits", "BIGINT"),
    ("kept", "BIGINT"),
    ("dropped", "BIGINT"),
    ("returns", "BIGINT"),
    ("throttled", "BIGINT"),
)
_DURATION_COLUMNS = (
    ("trace_id", "INTEGER"),
    ("probe_id", "INTEGER"),
    ("second", "TS_US"),
    ("bucket", "INTEGER"),
    ("count", "BIGINT"),
)
_ERROR_COLUMNS = (
    ("trace_id", "INTEGER"),
    ("event_id", "BIGINT"),
    ("expression", "VARCHAR"),
    ("reason", "VARCHAR"),
)
_KEY_COLUMNS = (
    ("trace_id", "INTEGER"),
    ("event_id", "BIGINT"),
    ("pid", "INTEGER"),
    ("goid", "BIGINT"),
)


def _csv_type(kind: str) -> str:
    return {"BOOLEAN": "TINYINT", "JSON": "VARCHAR", "TS_US": "BIGINT"}.get(kind, kind)


def _from_csv(col: str, kind: str) -> str:
    if kind == "BOOLEAN":
        return f"{col}::BOOLEAN"
    if kind == "JSON":
        return f"{col}::JSON"
    if kind == "TS_US":
        return f"TIMESTAMPTZ '1970-01-01 00:00:00+00' + to_microseconds({col})"
    return col


def _int(v: object) -> str:
    return "" if v is None else str(int(v))  # type: ignore[call-overload]


def _text(v: object) -> str:
    """Every string quoted, so the empty string stays a string (NULL is unquoted)."""
    return "" if v is None else '"' + str(v).replace('"', '""') + '"'


def _bool(v: object) -> str:
    return "" if v is None else ("1" if v else "0")


def _double(v: object) -> str:
    if isinstance(v, float) and v == v and abs(v) != float("inf"):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return _text(v)  # None, or "NaN", "+Inf", "-Inf" as JSON conventions write them


def _json(v: object) -> str:
    if v is None:
        return ""
    if type(v) is int:  # a uint64 column: its JSON text is its digits
        return f'"{v}"'
    return _text(json.dumps(v, ensure_ascii=False))


def _any(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return _bool(v)
    if isinstance(v, int):
        return str(v)
    return _text(v)


# One CSV field per column type: NULL is an empty unquoted field.
_FORMAT = {
    "INTEGER": _int,
    "BIGINT": _int,
    "UBIGINT": _int,
    "TS_US": _int,
    "VARCHAR": _text,
    "BOOLEAN": _bool,
    "DOUBLE": _double,
    "JSON": _json,
}


class EventWriter:
    """One trace in one DuckDB file, open for the whole run."""

    def __init__(self, path: str) -> None:
        self.path = path
        with owner_only():
            self.con = connect(path, read_only=False)
        try:
            self._in_transaction(self._create)
        except BaseException:
            self.con.close()
            raise
        self.trace_id = 0
        # (probe_id, kind) -> (table, ((expression, SQL type), ...))
        self._tables: dict[tuple[int, str], tuple[str, tuple[tuple[str, str], ...]]] = {}
        self._formats: dict[tuple[int, str], list[Callable[[object], str]]] = {}
        self._stack_ids: dict[int, int] = {}  # the session's stack keys -> stack_id
        self._written: set[int] = set()  # stack_ids with rows in event_stacks

    def _in_transaction(self, work: object, *args: object) -> None:
        assert callable(work)
        try:
            with owner_only():
                self.con.begin()
                try:
                    work(*args)
                    self.con.commit()
                except BaseException:
                    self.con.rollback()
                    raise
        except duckdb.Error as e:
            raise StoreError(f"{self.path}: cannot write the trace: {e}") from e

    def _create(self) -> None:
        init_schema(self.con, self.path)
        for ddl in EVENT_TABLES:
            self.con.execute(ddl)

    def begin_trace(
        self,
        probes: Sequence[ProbeInfo],
        spec_paths: Sequence[str] = (),
        max_events_per_s: int = 0,
        started: datetime | None = None,
    ) -> int:
        """A new row of traces and the probes' rows; returns the trace_id."""

        def work() -> None:
            row = self.con.execute("SELECT coalesce(max(trace_id), 0) + 1 FROM traces").fetchone()
            assert row is not None
            self.trace_id = int(row[0])
            self.con.execute(
                "INSERT INTO traces VALUES (?, ?, NULL, ?, ?, ?, NULL, ?)",
                [
                    self.trace_id,
                    started or datetime.now(UTC),
                    socket.gethostname(),
                    tool_version(),
                    ", ".join(spec_paths) or None,
                    max_events_per_s or None,
                ],
            )
            if probes:
                self.con.executemany(
                    "INSERT INTO probes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [
                            self.trace_id,
                            p.probe_id,
                            p.pid,
                            p.kind,
                            p.location,
                            p.function,
                            p.file,
                            p.line,
                            p.pcs,
                            p.error,
                        ]
                        for p in probes
                    ],
                )

        self._in_transaction(work)
        self._tables = {}
        for p in probes:
            if p.error is not None:
                continue
            if p.kind == "line":
                if p.captures:
                    self._tables[(p.probe_id, "line")] = (p.location, p.captures)
            else:
                if p.captures:
                    self._tables[(p.probe_id, "entry")] = (f"{p.location}@entry", p.captures)
                if p.return_captures:
                    self._tables[(p.probe_id, "return")] = (
                        f"{p.location}@return",
                        p.return_captures,
                    )
        if self._tables:
            self._in_transaction(self._create_capture_tables)
        return self.trace_id

    def _create_capture_tables(self) -> None:
        """One table per probe and kind with captures, as function tables are: the key
        columns, then one column per expression (typed, or JSON). An existing table
        (an earlier trace) gets the columns it lacks."""
        for name, cols in {v[0]: v[1] for v in self._tables.values()}.items():
            q = _quote(name)
            defs = ", ".join(f"{_quote(text)} {kind}" for text, kind in cols)
            self.con.execute(
                f"CREATE TABLE IF NOT EXISTS {q} (trace_id INTEGER NOT NULL,"
                f" event_id BIGINT NOT NULL, pid INTEGER, goid BIGINT, {defs})"
            )
            for text, kind in cols:
                self.con.execute(f"ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {_quote(text)} {kind}")

    def write(self, batch: EventBatch) -> None:
        """One batch, in one transaction."""
        if not (batch.events or batch.stacks or batch.seconds):
            return
        self._in_transaction(self._write, batch)

    def _write(self, batch: EventBatch) -> None:
        tid = self.trace_id
        stack_rows = []
        for key, frames in batch.stacks:
            sid = stack_id(frames) & 0xFFFFFFFFFFFFFFFF
            self._stack_ids[key] = sid
            if sid not in self._written:
                self._written.add(sid)
                stack_rows.extend(_frame_rows(tid, sid, frames))
        with _scratch_dir() as scratch:
            self._scratch = scratch
            self._insert("event_stacks", _STACK_COLUMNS, stack_rows)
            ids = self._stack_ids
            # The bulk of a trace: one f-string a row rather than a formatter a field.
            self._insert_lines(
                "events",
                _EVENT_COLUMNS,
                [
                    f"{tid},{e.event_id},{e.probe_id},{e.pid},{e.tid},{e.goid},"
                    f'{e.ts_ns // 1000},{e.ts_ns},"{e.kind}",'
                    f"{'' if e.duration_ns is None else e.duration_ns},"
                    f"{'' if e.entry_event_id is None else e.entry_event_id},"
                    f"{ids.get(e.stack, '')},{1 if e.inlined else 0}\n"
                    for e in batch.events
                ],
            )
            self._write_values(batch)
            self._insert(
                "probe_rates",
                _RATE_COLUMNS,
                [
                    (
                        tid,
                        s.probe_id,
                        int(s.t * 1e6),
                        s.hits,
                        s.kept,
                        s.dropped,
                        s.returns,
                        s.throttled,
                    )
                    for s in batch.seconds
                ],
            )
            self._insert(
                "probe_durations",
                _DURATION_COLUMNS,
                [
                    (tid, s.probe_id, int(s.t * 1e6), bucket, count)
                    for s in batch.seconds
                    for bucket, count in s.durations
                ],
            )

    def _insert(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
    ) -> None:
        """Rows through a CSV file and DuckDB's CSV reader: its Python client inserts
        parameters one by one, with an import attempt of numpy and pandas each time.
        Strings are quoted and NULL is an empty unquoted field, so both survive."""
        if not rows:
            return
        formats = [_FORMAT.get(kind, _any) for _n, kind in columns]
        self._insert_lines(
            table,
            columns,
            [",".join([f(v) for f, v in zip(formats, row, strict=True)]) + "\n" for row in rows],
        )

    def _insert_lines(
        self, table: str, columns: Sequence[tuple[str, str]], lines: Sequence[str]
    ) -> None:
        """CSV lines already formatted (see _insert) into the table."""
        if not lines:
            return
        self._files = getattr(self, "_files", 0) + 1
        path = os.path.join(self._scratch, f"t{self._files}.csv")
        with _csv_out(path) as out:
            out.writelines(lines)
        spec = ", ".join(f"'c{i}': '{_csv_type(kind)}'" for i, (_n, kind) in enumerate(columns))
        names = ", ".join(_quote(n) for n, _k in columns)
        select = ", ".join(_from_csv(f"c{i}", kind) for i, (_n, kind) in enumerate(columns))
        self.con.execute(
            f"INSERT INTO {_quote(table)} ({names}) SELECT {select} FROM {_read_csv(path, spec)}"
        )

    def _write_values(self, batch: EventBatch) -> None:
        """Each probe table's rows as CSV lines, formatted as they are gathered."""
        lines: dict[tuple[int, str], list[str]] = {}
        errors: list[tuple[object, ...]] = []
        tid = self.trace_id
        tables = self._tables
        formats = self._formats
        for e in batch.events:
            values = e.values
            if not values:
                continue
            key = (e.probe_id, e.kind)
            fmts = formats.get(key)
            if fmts is None:
                if key not in tables:
                    continue
                fmts = formats[key] = [_FORMAT.get(kind, _any) for _t, kind in tables[key][1]]
            cells = [f(v.value) for f, v in zip(fmts, values, strict=True)]
            lines.setdefault(key, []).append(
                f"{tid},{e.event_id},{e.pid},{e.goid}," + ",".join(cells) + "\n"
            )
            for v in values:
                if v.unavailable is not None:
                    errors.append((tid, e.event_id, v.expression, v.unavailable))
        for key, table_lines in lines.items():
            name, cols = tables[key]
            self._insert_lines(name, _KEY_COLUMNS + tuple(cols), table_lines)
        self._insert("event_capture_errors", _ERROR_COLUMNS, errors)

    def end_trace(self, reason: str, ended: datetime | None = None) -> None:
        def work() -> None:
            self.con.execute(
                "UPDATE traces SET ended = ?, end_reason = ? WHERE trace_id = ?",
                [ended or datetime.now(UTC), reason, self.trace_id],
            )

        self._in_transaction(work)

    def close(self) -> None:
        try:
            self.con.close()
        except duckdb.Error as e:
            raise StoreError(f"{self.path}: cannot close: {e}") from e


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _frame_rows(trace_id: int, sid: int, frames: tuple[Frame, ...]) -> list[list[object]]:
    return [
        [trace_id, sid, depth, f.function, f.file, f.line, f.pc, f.inlined]
        for depth, f in enumerate(frames)
    ]
