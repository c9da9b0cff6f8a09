"""Strings the target chose never reach the terminal raw from the explorer either:
frames, labels, wait reasons, values, table cells and SQL results holding an escape
sequence are painted with a visible \\x1b, on every screen."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from sideeye_tui.explorer.app import BrowserScreen, ExplorerApp
from sideeye_tui.explorer.detail import DetailScreen
from sideeye_tui.explorer.flame import FlameGraph
from sideeye_tui.explorer.goroutines import GoroutinesPane
from sideeye_tui.model import Frame, Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.store import write_snapshot

from .support import open_app, screen_text, settle, sync

TITLE = "\x1b]0;owned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen
EVIL = f"main.evil{TITLE}"
TAKEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _goroutine(goid: int, wait: float) -> Goroutine:
    frames = (
        Frame(EVIL, f"/src/{CLEAR}evil.go", 7, 0x401000),
        Frame("main.main", "/src/main.go", 3, 0x401100),
    )
    return Goroutine(
        goid,
        "waiting",
        f"chan receive{CLEAR}",
        wait,
        f"main.spawn{TITLE}",
        1,
        "main.main",
        labels=(("user", CLEAR),),
        frames=frames,
    )


def _file(tmp_path: Path) -> str:
    db = str(tmp_path / "evil.duckdb")
    for i in range(2):
        gs = (_goroutine(10, 5.0 + 30 * i), _goroutine(11 + i, 1.0))
        proc = ProcessSnapshot(
            42, f"/bin/svc{TITLE}", "b", "go1.26.8", f"example.com/{CLEAR}", 1000, 1, "ebpf", gs
        )
        snap = Snapshot(TAKEN + timedelta(seconds=30 * i), f"host{TITLE}", (proc,))
        assert write_snapshot(db, snap) == i + 1
    con = duckdb.connect(db)
    try:
        con.execute(
            "CREATE TABLE spec_tables (name VARCHAR, kind VARCHAR, function VARCHAR,"
            " sql VARCHAR, spec_path VARCHAR, columns JSON)"
        )
        con.execute(
            "INSERT INTO spec_tables VALUES (?, 'function', ?, NULL, 'evil.toml', NULL)",
            [EVIL, EVIL],
        )
        con.execute(
            f'CREATE TABLE "{EVIL}" (snapshot_id INTEGER, pid INTEGER, goid BIGINT,'
            ' depth INTEGER, req JSON, "name" VARCHAR)'
        )
        req = {f"key{TITLE}": CLEAR, "list": [TITLE]}
        for sid in (1, 2):
            con.execute(
                f'INSERT INTO "{EVIL}" VALUES (?, 42, 10, 0, ?, ?)', [sid, json.dumps(req), CLEAR]
            )
    finally:
        con.close()
    return db


def _assert_safe(app: ExplorerApp, where: str) -> str:
    text = screen_text(app)
    assert "\x1b" not in text and "\x07" not in text, where
    return text


@sync
async def test_no_escape_reaches_the_screen(tmp_path: Path) -> None:
    app = open_app(_file(tmp_path))  # the latest snapshot, 2: d diffs it with 1
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen)
        text = _assert_safe(app, "goroutines")
        assert "chan receive\\x1b[2J" in text
        assert "main.evil\\x1b]0;owned\\x07" in text  # the bucket's function, and the preview
        await pilot.press("enter")  # expand the bucket: its goroutines and their labels
        await settle(pilot)
        text = _assert_safe(app, "expanded bucket")
        assert "\\x1b[2J" in text
        await pilot.press("j", "enter")  # goroutine 10: its frames and captured values
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        text = _assert_safe(app, "detail")
        assert "created by main.spawn\\x1b]0;owned\\x07" in text
        assert "key\\x1b]0;owned\\x07" in text  # a captured value's key, in the tree
        await pilot.press("escape")
        await settle(pilot)
        for tab in ("2", "3", "5"):  # flame graph, tables, snapshots
            await pilot.press(tab)
            await settle(pilot)
            _assert_safe(app, f"tab {tab}")
        await pilot.press("2")
        await settle(pilot)
        flame = app.screen.query_one(FlameGraph)
        await pilot.press("down", "down")  # main.main -> main.evil...
        assert flame.selected[-1] == "main.evil\\x1b]0;owned\\x07"
        await pilot.press("enter")  # filter the goroutines through the escaped name
        await settle(pilot)
        pane = app.screen.query_one(GoroutinesPane)
        assert pane.page is not None and pane.page.total_goroutines == 2
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("tab")  # into the selected table's rows
        await settle(pilot)
        text = _assert_safe(app, "function table")
        assert "\\x1b[2J" in text
        await pilot.press("4")
        await settle(pilot)
        await pilot.press(*"SELECT wait_reason, labels, created_by FROM goroutines", "enter")
        await settle(pilot)
        text = _assert_safe(app, "sql")
        assert "chan receive\\x1b[2J" in text
        await pilot.press("5")
        await settle(pilot)
        text = _assert_safe(app, "snapshots")
        assert "host\\x1b]0;owned\\x07" in text
        await pilot.press("d")  # diff with the previous snapshot
        await settle(pilot)
        text = _assert_safe(app, "diff")
        assert "chan receive\\x1b[2J" in text
