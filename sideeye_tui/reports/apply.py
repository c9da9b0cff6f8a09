"""Applying a spec to a snapshot file: after a snapshot, and again with `apply`.

Everything one run writes lands in one transaction, so a crash leaves the file as it
was. The spec's own SQL (extra columns, derived tables, links) may fail; each piece is
a step whose failure is reported (spec_messages, and the returned lines) without
stopping the others. DuckDB keeps a transaction usable after a parse or binding error
but not after a runtime error (a failed cast): then the whole transaction is rolled
back and run again without the failing step, so what is committed is always whole.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from ..errors import StoreError
from ..model import Snapshot
from ..spec.model import DerivedTable, Extra, FunctionSpec, Link, Spec
from ..store.database import connect, open_store, sandbox
from ..store.files import owner_only
from ..store.schema import SPEC_TABLES
from .derived import build_derived, register_derived
from .extras import compute_extra
from .functions import collect, register_function, write_function_rows
from .links import LinkProblem, build_link
from .sql import SpecSQLError, first_line, table_columns

Action = Callable[[duckdb.DuckDBPyConnection], None]


@dataclass(frozen=True)
class Step:
    """One piece of the spec's SQL; what names it in a message."""

    what: str
    run: Action


@dataclass(frozen=True)
class Message:
    snapshot_id: int | None  # None: about the whole file (from `apply`)
    pid: int | None  # set for a process's own problems (the capture's spec_errors)
    text: str


def ensure_spec_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the spec tables in a file that lacks them (files written before specs)."""
    for ddl in SPEC_TABLES:
        con.execute(ddl)


def _usable(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("SELECT 1").fetchall()
    except duckdb.Error:
        return False
    return True


def run_steps(
    con: duckdb.DuckDBPyConnection,
    base: Action,
    steps: list[Step],
    finish: Callable[[duckdb.DuckDBPyConnection, list[str]], None],
) -> list[str]:
    """base, then every step, then finish(failures), in one transaction; the failures.

    A step that breaks the transaction is dropped and the transaction run again
    (at most once per step).
    """
    dropped: dict[int, str] = {}
    while True:
        con.begin()
        try:
            base(con)
            failures: list[str] = []
            broken = False
            for i, step in enumerate(steps):
                if i in dropped:
                    failures.append(dropped[i])
                    continue
                try:
                    step.run(con)
                except LinkProblem as e:
                    failures.append(str(e))
                except SpecSQLError as e:
                    failures.append(f"{step.what}: {e}")
                except duckdb.Error as e:
                    failure = f"{step.what}: {first_line(e)}"
                    if not _usable(con):
                        dropped[i] = failure
                        broken = True
                        break
                    failures.append(failure)
            if broken:
                con.rollback()
                continue
            finish(con, failures)
            con.commit()
            return failures
        except BaseException:
            if _usable(con):
                con.rollback()
            else:
                con.execute("ROLLBACK")
            raise


def _snapshot_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [
        int(r[0]) for r in con.execute("SELECT snapshot_id FROM snapshots ORDER BY 1").fetchall()
    ]


def _extra_step(f: FunctionSpec, x: Extra, snapshot_id: int | None) -> Step:
    def run(con: duckdb.DuckDBPyConnection) -> None:
        compute_extra(con, f.name, x, snapshot_id)

    return Step(f"{f.name}: extra column {x.name!r}", run)


def _derived_step(t: DerivedTable, snapshot_id: int | None) -> Step:
    def run(con: duckdb.DuckDBPyConnection) -> None:
        if snapshot_id is None:
            build_derived(con, t, _snapshot_ids(con), rebuild=True)
        else:
            build_derived(con, t, [snapshot_id], rebuild=False)
        register_derived(con, t)

    return Step(f"derived table {t.name!r}", run)


def _link_step(link: Link, snapshot_id: int | None) -> Step:
    def run(con: duckdb.DuckDBPyConnection) -> None:
        build_link(con, link, None if snapshot_id is None else [snapshot_id])

    return Step(f"link {link.name!r}", run)


def _sql_steps(spec: Spec, snapshot_id: int | None) -> list[Step]:
    """Extra columns, then derived tables in file order, then links: for one snapshot,
    or (None) rebuilt for every snapshot in the file."""
    steps = [_extra_step(f, x, snapshot_id) for f in spec.functions for x in f.extra]
    steps += [_derived_step(t, snapshot_id) for t in spec.tables]
    steps += [_link_step(link, snapshot_id) for link in spec.links]
    return steps


def _insert_messages(con: duckdb.DuckDBPyConnection, messages: list[Message]) -> None:
    if messages:
        con.executemany(
            "INSERT INTO spec_messages VALUES (?, ?, ?)",
            [[m.snapshot_id, m.pid, m.text] for m in messages],
        )


def write_reports(
    path: str,
    snapshot_id: int,
    snap: Snapshot,
    spec: Spec | None,
    warnings: list[str] | tuple[str, ...] = (),
) -> list[Message]:
    """Store what the spec made of snapshot snapshot_id, already in the file at path.

    Returns every problem (the specs' warnings, the capture's spec_errors, failed SQL),
    also stored in spec_messages. Writes nothing when there is nothing to say.
    """
    messages = [Message(snapshot_id, None, w) for w in warnings]
    for proc in snap.processes:
        messages += [Message(snapshot_id, proc.pid, e) for e in proc.spec_errors]
    if (spec is None or spec.is_empty) and not messages:
        return []
    spec = spec or Spec("")
    groups = collect(snap, spec)

    def base(con: duckdb.DuckDBPyConnection) -> None:
        ensure_spec_tables(con)
        for rows in groups:
            write_function_rows(con, snapshot_id, rows, scratch)

    def finish(con: duckdb.DuckDBPyConnection, failures: list[str]) -> None:
        for rows in groups:
            register_function(con, rows.spec)
        _insert_messages(con, messages + [Message(snapshot_id, None, f) for f in failures])

    scratch = tempfile.mkdtemp(prefix="sideeye-tui-")  # mode 0700: ours alone
    try:
        with owner_only():
            con = connect(path, read_only=False)
            try:
                sandbox(con, scratch)
                failures = run_steps(con, base, _sql_steps(spec, snapshot_id), finish)
            except duckdb.Error as e:
                raise StoreError(f"{path}: cannot write the spec's tables: {first_line(e)}") from e
            finally:
                con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return messages + [Message(snapshot_id, None, f) for f in failures]


def _not_captured(con: duckdb.DuckDBPyConnection, spec: Spec) -> list[str]:
    """What apply cannot do: read values that no snapshot in the file captured."""
    out = []
    for f in spec.functions:
        columns = table_columns(con, f.name)
        if not columns:
            if f.capture:
                out.append(
                    f"{f.name}: no captured values in this file; values are read when a"
                    " snapshot is taken and cannot be added afterwards"
                )
            continue
        for e in f.capture:
            if e not in columns:
                out.append(
                    f"{f.name}: expression {e!r} was not captured in this file; values are"
                    " read when a snapshot is taken and cannot be added afterwards"
                )
    return out


def apply_spec(path: str, spec: Spec) -> list[Message]:
    """Recompute the spec's extra columns, derived tables and links for every snapshot.

    Earlier file-wide messages (snapshot_id NULL) are replaced by this run's.
    """
    with owner_only():
        con = open_store(path, read_only=False)
        try:
            sandbox(con)
            notes: list[str] = []

            def base(con: duckdb.DuckDBPyConnection) -> None:
                ensure_spec_tables(con)
                notes[:] = _not_captured(con, spec)

            def finish(con: duckdb.DuckDBPyConnection, failures: list[str]) -> None:
                for f in spec.functions:
                    if table_columns(con, f.name):
                        register_function(con, f)
                con.execute("DELETE FROM spec_messages WHERE snapshot_id IS NULL")
                _insert_messages(con, [Message(None, None, t) for t in notes + failures])

            try:
                failures = run_steps(con, base, _sql_steps(spec, None), finish)
            except duckdb.Error as e:
                raise StoreError(f"{path}: cannot apply the spec: {first_line(e)}") from e
        finally:
            con.close()
    return [Message(None, None, t) for t in notes + failures]
