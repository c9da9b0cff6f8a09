"""SVG snapshots of every explorer screen at 80x24 and 160x48, on the fixture file.

Update after an intended change with:
    .venv/bin/pytest tests/explorer/test_explorer_screens.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from sideeye_tui.explorer.app import ExplorerApp, Options

from .fixture_db import source_reader
from .support import PROCESSES, no_snapshot, open_app, settle

SIZES = [(80, 24), (160, 48)]


def _steady(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Press keys, wait for every worker, and stop the cursors blinking."""

    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_picker(snap_compare: Any, size: tuple[int, int], tmp_path: Any) -> None:
    app = ExplorerApp(
        Options(
            db_path="/var/lib/sideeye/snapshots.duckdb",
            process_source=lambda: list(PROCESSES),
            snapshot_runner=no_snapshot,
            read_source=source_reader,
            keymap_path=tmp_path / "none.toml",
        )
    )
    assert snap_compare(app, terminal_size=size, run_before=_steady("space"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_goroutines(snap_compare: Any, size: tuple[int, int], fixture_db: str) -> None:
    assert snap_compare(
        open_app(fixture_db, snapshot_id=1), terminal_size=size, run_before=_steady()
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_goroutines_expanded(snap_compare: Any, size: tuple[int, int], fixture_db: str) -> None:
    assert snap_compare(
        open_app(fixture_db, snapshot_id=1), terminal_size=size, run_before=_steady("enter", "j")
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail(snap_compare: Any, size: tuple[int, int], fixture_db: str) -> None:
    assert snap_compare(
        open_app(fixture_db, snapshot_id=1),
        terminal_size=size,
        run_before=_steady("enter", "j", "enter", "j"),
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_flame(snap_compare: Any, size: tuple[int, int], fixture_db: str) -> None:
    assert snap_compare(
        open_app(fixture_db, snapshot_id=1),
        terminal_size=size,
        run_before=_steady("2", "down", "down"),
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_diff(snap_compare: Any, size: tuple[int, int], fixture_db: str) -> None:
    assert snap_compare(open_app(fixture_db), terminal_size=size, run_before=_steady("5", "d"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare: Any, size: tuple[int, int], fixture_db: str) -> None:
    assert snap_compare(
        open_app(fixture_db), terminal_size=size, run_before=_steady("question_mark")
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_bad_file(
    snap_compare: Any, size: tuple[int, int], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path: the same text on every run
    (tmp_path / "notes.duckdb").write_text("not a database\n")
    app = open_app("notes.duckdb")
    assert snap_compare(app, terminal_size=size, run_before=_steady())
