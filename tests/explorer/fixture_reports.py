"""Extras on top of E1's fixture file for the Tables pane and SQL console tests.

The fixture (fixture_db.py) writes its link keys with json.dumps, spaces included;
the reports layer writes them with DuckDB's json_object and finds them again by
exact text, so `normalise_links` stores them the way the real writer does. The rest
adds what the small fixture lacks: a function table long enough to page through, a
table no spec registered, and a per-snapshot table without goroutine columns.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec

import duckdb
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widget import Widget

from sideeye_tui.explorer.messages import ShowGoroutine

from .fixture_db import PID, SNAPSHOT_1
from .support import fail_on_cancelled, tracked_workers, wait_for_workers

P = ParamSpec("P")

BIG = "main.(*Server).poll"  # a function table of BIG_ROWS rows in snapshot 1
BIG_ROWS = 250
SCRATCH = "scratch_notes"  # per-snapshot, not registered, no goroutine columns


def normalise_links(path: str) -> None:
    """Link keys as the reports layer writes them: DuckDB's compact JSON."""
    con = duckdb.connect(path)
    try:
        con.execute("UPDATE links SET from_key = json(from_key), to_key = json(to_key)")
    finally:
        con.close()


def add_extra_tables(path: str) -> None:
    """A registered function table of BIG_ROWS rows and an unregistered table."""
    con = duckdb.connect(path)
    try:
        con.execute(
            f"""CREATE TABLE "{BIG}" (snapshot_id INTEGER, pid INTEGER, goid BIGINT,
                depth INTEGER, attempt BIGINT, payload JSON)"""
        )
        con.execute(
            f"""INSERT INTO "{BIG}"
                SELECT {SNAPSHOT_1}, {PID}, 1000 + i, 3, i,
                       json_object('seq', i, 'note', repeat('x', 60))
                FROM range({BIG_ROWS}) t(i)"""
        )
        con.execute(
            "INSERT INTO spec_tables VALUES (?, 'function', ?, NULL, 'specs/shop.toml', ?)",
            [BIG, BIG, json.dumps([{"name": "attempt"}, {"name": "payload"}])],
        )
        con.execute(f"CREATE TABLE {SCRATCH} (snapshot_id INTEGER, note VARCHAR)")
        con.execute(f"INSERT INTO {SCRATCH} VALUES (1, 'looked at the lock'), (2, 'still stuck')")
    finally:
        con.close()


class PaneHost(App[None]):
    """A bare app around one explorer widget that records the ShowGoroutine it posts."""

    def __init__(self, make: Callable[[], Widget]) -> None:
        super().__init__()
        self._make = make
        self.shown: list[tuple[int, int, int, int | None]] = []

    def compose(self) -> ComposeResult:
        yield self._make()

    def on_show_goroutine(self, message: ShowGoroutine) -> None:
        self.shown.append((message.snapshot_id, message.pid, message.goid, message.depth))


async def settle(pilot: Pilot[Any]) -> None:
    """Let every worker finish and its answer reach the screen (answers start workers)."""
    for _ in range(20):
        created = tracked_workers(pilot.app)
        await wait_for_workers(pilot.app)
        await pilot.pause()
        fail_on_cancelled(created)
        if not any(w.is_running for w in pilot.app.workers):
            break
    await pilot.pause()


@asynccontextmanager
async def hosted(
    make: Callable[[], Widget], size: tuple[int, int] = (100, 30)
) -> AsyncIterator[tuple[PaneHost, Pilot[None]]]:
    app = PaneHost(make)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        yield app, pilot


def sync(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async Pilot test under plain pytest (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run
