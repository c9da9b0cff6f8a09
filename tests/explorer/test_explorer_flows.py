"""Pilot tests of the explorer's flows on the deterministic fixture file."""

from __future__ import annotations

import io

import duckdb
import pytest
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from textual.widgets import Input, Static, Tree

from sideeye_tui.explorer.app import BrowserScreen, ExplorerApp, MessageScreen, Options
from sideeye_tui.explorer.detail import DetailScreen
from sideeye_tui.explorer.flame import FlameGraph
from sideeye_tui.explorer.goroutines import GoroutinesPane
from sideeye_tui.explorer.picker import PickerScreen, SnapshotResult
from sideeye_tui.explorer.snapshots import DiffPane
from sideeye_tui.store import write_snapshot

from .fixture_db import HANDLE_DEPTH, LOCK_DEPTH, snapshot_1, source_reader
from .support import PROCESSES, open_app, settle, sync


def _tree_text(tree: Tree[object]) -> str:
    lines = []

    def walk(node: object) -> None:
        for child in node.children:  # type: ignore[attr-defined]
            lines.append(str(child.label))
            walk(child)

    walk(tree.root)
    return "\n".join(lines)


@sync
async def test_pick_and_snapshot(tmp_path: pytest.TempPathFactory) -> None:
    db = str(tmp_path / "picked.duckdb")  # type: ignore[operator]
    asked: list[list[int]] = []
    progress_seen: list[str] = []

    def fake_snapshot(pids: list[int], path: str, progress: object) -> SnapshotResult:
        asked.append(pids)
        progress("pid 1001: pausing")  # type: ignore[operator]
        progress_seen.append("sent")
        sid = write_snapshot(path, snapshot_1())
        return SnapshotResult(True, sid, ("pid 1002: failed: permission denied",))

    app = ExplorerApp(
        Options(
            db_path=db,
            mode="pick",
            process_source=lambda: list(PROCESSES),
            snapshot_runner=fake_snapshot,
            read_source=source_reader,
            keymap_path=tmp_path / "none.toml",  # type: ignore[operator]
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, PickerScreen)
        # Filter to the two example.com/shop-or-ledger processes, mark both, snapshot.
        await pilot.press("slash", *"ledger", "enter")
        assert [p.pid for p in app.screen.shown] == [1002]
        await pilot.press("space")
        app.screen.query_one("#picker-filter", Input).value = ""
        await pilot.pause()
        await pilot.press("space")  # the cursor is on 1001 again after clearing the filter
        assert app.screen.marked == {1001, 1002}
        await pilot.press("s")
        await settle(pilot, 8)
        assert asked == [[1001, 1002]]
        assert progress_seen == ["sent"]
        assert isinstance(app.screen, BrowserScreen)
        pane = app.screen.query_one(GoroutinesPane)
        assert pane.page is not None and pane.page.total_goroutines == 12


@sync
async def test_snapshot_failure_is_shown_in_the_picker(tmp_path: pytest.TempPathFactory) -> None:
    def failing(pids: list[int], path: str, progress: object) -> SnapshotResult:
        return SnapshotResult(False, None, ("no process with pid 2001",))

    app = ExplorerApp(
        Options(
            db_path=str(tmp_path / "x.duckdb"),  # type: ignore[operator]
            process_source=lambda: list(PROCESSES),
            snapshot_runner=failing,
            keymap_path=tmp_path / "none.toml",  # type: ignore[operator]
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PickerScreen)
        status = str(app.screen.query_one("#picker-status", Static).render())
        assert "no process with pid 2001" in status


@sync
async def test_filter_updates_buckets(fixture_db: str) -> None:
    app = open_app(fixture_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(GoroutinesPane)
        assert pane.page is not None and pane.page.total_goroutines == 10  # snapshot 2
        await pilot.press("slash", *"alice")
        await settle(pilot)
        assert pane.page.total_goroutines == 3  # goids 10, 12, 60 carry user=alice
        await pilot.press("escape", "escape")  # leave the input, then drop the filter
        await settle(pilot)
        assert pane.page.total_goroutines == 10
        await pilot.press("slash", *"61")  # a goid
        await settle(pilot)
        assert pane.page.total_goroutines == 1
        assert "sync.Mutex.Lock" in pane.bucket_list.row_text(0)


@sync
async def test_drill_to_frame_variables(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=1)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # expand the largest bucket: the lock waiters
        await settle(pilot)
        await pilot.press("j", "enter")  # its first goroutine (longest waiting: 14)
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert detail.goid == 14
        variables = detail.query_one("#variables", Tree)
        # The first captured frame is selected: lockAccount's account.
        assert detail.query_one("#frames").cursor_row == LOCK_DEPTH  # type: ignore[attr-defined]
        assert "account = 7" in _tree_text(variables)
        await pilot.press("j")  # handle: the request as a tree, and its capture error
        await settle(pilot)
        text = _tree_text(variables)
        assert detail.query_one("#frames").cursor_row == HANDLE_DEPTH  # type: ignore[attr-defined]
        assert "Name = 'alice'" in text
        assert "req.Body: nil pointer" in text
        source = detail.query_one("#source", Static).content
        assert isinstance(source, Syntax)
        assert source.line_range == (17, 29)  # six lines either side of server.go:23
        assert "s.lockAccount(account)" in source.code.splitlines()[22]
        await pilot.press("escape")
        assert isinstance(app.screen, BrowserScreen)


@sync
async def test_flame_node_filters_goroutines(fixture_db: str) -> None:
    app = open_app(fixture_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        flame = app.screen.query_one(FlameGraph)
        await pilot.press("down", "down", "right")  # goexit -> conn.serve -> main.worker
        assert flame.selected == ("runtime.goexit", "main.worker")
        await pilot.press("enter")
        await settle(pilot)
        pane = app.screen.query_one(GoroutinesPane)
        assert pane.flt.path == ("runtime.goexit", "main.worker")
        assert pane.page is not None and pane.page.total_goroutines == 3


@sync
async def test_diff_two_snapshots(fixture_db: str) -> None:
    app = open_app(fixture_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        diff = app.screen.query_one(DiffPane)
        assert (diff.old, diff.new) == (1, 2)
        title = str(diff.query_one("#diff-title", Static).render())
        assert "stuck 7 · moved 1 · new 2 · gone 4" in title
        await pilot.press("down", "down", "enter")  # open the stuck waiters' bucket
        await pilot.press("down", "enter")  # goroutine 10, in the newer snapshot
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert (app.screen.snapshot_id, app.screen.goid) == (2, 10)


@sync
async def test_switch_snapshots_with_brackets(fixture_db: str) -> None:
    app = open_app(fixture_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(GoroutinesPane)
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert pane.snapshot_id == 1 and pane.page is not None
        assert pane.page.total_goroutines == 12
        header = str(app.screen.query_one("#header", Static).render())
        assert "pid 1002 example.com/ledger failed" in header


@sync
async def test_bad_file_is_a_message(tmp_path: pytest.TempPathFactory) -> None:
    bad = tmp_path / "notes.duckdb"  # type: ignore[operator]
    bad.write_text("not a database\n")
    app = open_app(str(bad))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MessageScreen)
        assert "not a sideeye-tui database" in app.screen.message
        await pilot.press("q")
    assert app.return_code == 0


@sync
async def test_newer_schema_is_a_message(fixture_db: str) -> None:
    con = duckdb.connect(fixture_db)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    app = open_app(fixture_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MessageScreen)
        assert "newer than this sideeye-tui supports" in app.screen.message


@sync
async def test_help_lists_every_binding_and_user_keymap(
    fixture_db: str, tmp_path: pytest.TempPathFactory
) -> None:
    keymap = tmp_path / "keymap.toml"  # type: ignore[operator]
    keymap.write_text('"goroutines.filter" = "ctrl+f"\n')
    app = open_app(fixture_db, keymap_path=keymap)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+f", *"tail")
        await settle(pilot)
        pane = app.screen.query_one(GoroutinesPane)
        assert pane.page is not None and pane.page.total_goroutines == 1
        await pilot.press("escape", "question_mark")
        await settle(pilot)
        from sideeye_tui.explorer import keymap as registry
        from sideeye_tui.explorer.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-keys", Static).content
        assert isinstance(table, Table)
        console = Console(width=240, record=True, file=io.StringIO())
        console.print(table)
        lines = console.export_text().splitlines()
        ids = {k.id for k in registry.all_keys()}
        assert len(ids) == len(registry.all_keys())  # ids are unique
        for k in registry.all_keys():
            # Each binding's row: its description and its id, on one line.
            row = [line for line in lines if f" {k.id}" in f"{line} " and k.description in line]
            assert row, f"{k.id}: {k.description!r} not in the help screen"
        (remapped,) = [line for line in lines if "goroutines.filter" in line]
        assert "ctrl+f" in remapped
        await pilot.press("escape")
        assert isinstance(app.screen, BrowserScreen)
