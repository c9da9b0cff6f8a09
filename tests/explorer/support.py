"""Helpers of the explorer tests: an app on the fixture file, waiting for workers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.worker import Worker, WorkerCancelled, WorkerState

from sideeye_tui.explorer.app import ExplorerApp, Options
from sideeye_tui.explorer.picker import PickerProcess, SnapshotResult

from .fixture_db import source_reader

P = ParamSpec("P")

PROCESSES = [
    PickerProcess(1001, "shop -listen :8080", "go1.22.12", "example.com/shop", 3723.0, 6),
    PickerProcess(
        1002, "ledger -db /var/lib/ledger", "go1.24.13", "example.com/ledger", 86400.0, 12
    ),
    PickerProcess(2001, "cache-warmer", "go1.26.0", "example.com/warmer", 42.0, 3),
]


def no_snapshot(pids: list[int], db: str, progress: object) -> SnapshotResult:
    raise AssertionError("no snapshot expected")


def open_app(db: str, tmp_path: Path | None = None, **kw: object) -> ExplorerApp:
    """The explorer in `open` mode on db, with the fixture's source files and no keymap."""
    keymap = (tmp_path / "keymap.toml") if tmp_path else Path("/nonexistent/keymap.toml")
    options = Options(
        db_path=db,
        mode="open",
        read_source=source_reader,
        keymap_path=keymap,
        process_source=lambda: list(PROCESSES),
        snapshot_runner=no_snapshot,
        can_snapshot=False,
    )
    return ExplorerApp(replace(options, **kw))  # type: ignore[arg-type]


async def settle(pilot: Pilot[None], rounds: int = 4) -> None:
    """Let workers finish and their answers be painted (they post back to the loop).

    Fails the test when a worker it waited for was cancelled, not replaced by a newer
    one of its group: its answer will never come, and the test would otherwise go on
    to fail further on, saying less (or pass without checking what it meant to)."""
    for _ in range(rounds):
        created = tracked_workers(pilot.app)
        await wait_for_workers(pilot.app)
        await pilot.pause()
        fail_on_cancelled(created)


async def wait_for_workers(app: App[Any]) -> None:
    """Wait for every worker running now. Unlike workers.wait_for_complete, which
    raises WorkerCancelled at the first cancelled one (an exclusive worker replaced by
    a newer request is cancelled, rightly) and stops waiting for the others, this waits
    for all; fail_on_cancelled then judges the cancellations. A worker's own error
    still fails the test (WorkerFailed)."""
    for worker in list(app.workers):
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()


def tracked_workers(app: App[Any]) -> list[Worker[Any]]:
    """Every worker app starts from now on (and those running now), in order."""
    created: list[Worker[Any]] | None = getattr(app, "_settle_workers", None)
    if created is None:
        created = list(app.workers)
        manager = app.workers
        start = manager._new_worker

        def new_worker(*args: Any, **kwargs: Any) -> Worker[Any]:
            worker = start(*args, **kwargs)
            created.append(worker)
            return worker

        manager._new_worker = new_worker  # type: ignore[method-assign]
        app._settle_workers = created  # type: ignore[attr-defined]
    return created


def fail_on_cancelled(created: list[Worker[Any]]) -> None:
    for i, worker in enumerate(created):
        if worker.state != WorkerState.CANCELLED:
            continue
        replaced = any(
            later.node is worker.node and later.group == worker.group for later in created[i + 1 :]
        )
        if not replaced and getattr(worker.node, "is_attached", True):
            pytest.fail(
                f"worker {worker.name!r} (group {worker.group!r}) of {worker.node!r} was"
                " cancelled: its answer never came"
            )


def sync(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async Pilot test with asyncio.run (no async plugin in the dev deps)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def screen_text(app: ExplorerApp) -> str:
    """The text of every line the compositor would paint now, controls included."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
