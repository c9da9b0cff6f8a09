"""Helpers of the explorer tests: an app on the fixture file, waiting for workers."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec

from textual.pilot import Pilot

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
    """Let workers finish and their answers be painted (they post back to the loop)."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def sync(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async Pilot test with asyncio.run (no async plugin in the dev deps)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def screen_text(app: ExplorerApp) -> str:
    """The text of every line the compositor would paint now, controls included."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
