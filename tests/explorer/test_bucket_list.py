"""The goroutines pane's list: keys, clicks, paging lines, the cursor, stale answers."""

from __future__ import annotations

from textual.widgets import Input

from sideeye_tui.explorer.app import BrowserScreen, ExplorerApp
from sideeye_tui.explorer.detail import DetailScreen
from sideeye_tui.explorer.goroutines import BucketList, GoroutinesPane
from sideeye_tui.query import snapshot as queries
from sideeye_tui.query.reader import SnapshotReader
from sideeye_tui.query.snapshot import ExplorerStore

from .fixture_db import PID, SNAPSHOT_1, WAITERS_1
from .support import open_app, settle, sync


def _pane(screen: object) -> GoroutinesPane:
    assert isinstance(screen, BrowserScreen)
    return screen.query_one(GoroutinesPane)


def _store(app: ExplorerApp) -> ExplorerStore:
    assert isinstance(app.reader, SnapshotReader)
    return app.reader.store


@sync
async def test_enter_expands_and_collapses_a_bucket(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        listing = _pane(app.screen).bucket_list
        assert [r.kind for r in listing.rows] == ["bucket"] * 5
        await pilot.press("enter")
        await settle(pilot)
        # The lock waiters, longest waiting first, the last one drawn with └.
        assert [r.kind for r in listing.rows[:7]] == ["bucket"] + ["goroutine"] * 5 + ["bucket"]
        goids = [r.goroutine.goid for r in listing.rows[1:6] if r.goroutine is not None]
        assert goids == sorted(WAITERS_1, reverse=True)
        assert listing.rows[5].last and not listing.rows[4].last
        assert listing.cursor == 0
        await pilot.press("enter")
        await settle(pilot)
        assert [r.kind for r in listing.rows] == ["bucket"] * 5
        # Space toggles too, and from a goroutine's line it collapses its bucket.
        await pilot.press("space")
        await settle(pilot)
        await pilot.press("j", "j")
        assert listing.cursor == 2
        await pilot.press("shift+left")
        assert listing.cursor == 0
        await pilot.press("j", "j", "space")
        await settle(pilot)
        assert [r.kind for r in listing.rows] == ["bucket"] * 5
        assert listing.cursor == 0


@sync
async def test_j_k_g_G_move_the_cursor_and_the_preview(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = _pane(app.screen)
        listing = pane.bucket_list
        await pilot.press("j", "j")
        await settle(pilot)
        assert listing.cursor == 2
        row = listing.highlighted
        assert row is not None and row.bucket is not None
        assert pane._previewed == row.bucket.stack_id
        await pilot.press("k")
        assert listing.cursor == 1
        await pilot.press("G")
        assert listing.cursor == len(listing.rows) - 1
        await pilot.press("g")
        assert listing.cursor == 0


@sync
async def test_clicks_expand_a_bucket_and_open_a_goroutine(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        listing = _pane(app.screen).bucket_list
        second = listing.rows[1].bucket
        assert second is not None and second.count == 3  # the chan receive workers
        await pilot.click(BucketList, offset=(4, 1))
        await settle(pilot)
        assert listing.cursor == 1
        assert [r.kind for r in listing.rows[1:5]] == ["bucket"] + ["goroutine"] * 3
        first = listing.rows[2].goroutine
        assert first is not None
        await pilot.click(BucketList, offset=(6, 2))
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert (app.screen.pid, app.screen.goid) == (first.pid, first.goid)


@sync
async def test_the_cursor_keeps_its_line_when_goroutines_arrive_above(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = _pane(app.screen)
        listing = pane.bucket_list
        first, second = listing.rows[0].bucket, listing.rows[1].bucket
        assert first is not None and second is not None
        assert listing.toggle(first.stack_id)  # expanded, its goroutines still loading
        listing.move_cursor(1)
        rows, total = queries.bucket_goroutines(_store(app), SNAPSHOT_1, first.stack_id)
        listing.show_goroutines(first.stack_id, tuple(rows), total)
        row = listing.highlighted
        assert row is not None and row.kind == "bucket" and row.bucket == second
        assert listing.cursor == 1 + len(rows)


@sync
async def test_paging_lines(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = _pane(app.screen)
        listing = pane.bucket_list
        page = queries.buckets(_store(app), SNAPSHOT_1, limit=2)
        listing.show_page(page.buckets, page.total_buckets - len(page.buckets))
        assert listing.row_text(len(listing.rows) - 1) == "… 3 more buckets: refine the filter"
        stack_id = page.buckets[0].stack_id
        rows, total = queries.bucket_goroutines(_store(app), SNAPSHOT_1, stack_id, limit=2)
        assert listing.toggle(stack_id)
        listing.show_goroutines(stack_id, tuple(rows), total)
        assert [r.kind for r in listing.rows[:5]] == [
            "bucket",
            "goroutine",
            "goroutine",
            "more",
            "bucket",
        ]
        assert listing.row_text(3) == "… 3 more"
        await pilot.press("enter")  # on the "… 3 more" line: nothing happens
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen)


@sync
async def test_stale_answers_are_dropped(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = _pane(app.screen)
        await pilot.press("slash", *"alice")
        await settle(pilot)
        shown = pane.page
        assert shown is not None and shown.total_goroutines == 3
        stale = queries.buckets(_store(app), SNAPSHOT_1)
        pane._show(pane.shown_generation - 1, stale)
        assert pane.page is shown
        assert [r.kind for r in pane.bucket_list.rows] == ["bucket"]
        # Goroutines answered for an older page are not added under the new one.
        stack_id = shown.buckets[0].stack_id
        pane.bucket_list.toggle(stack_id)
        rows, total = queries.bucket_goroutines(_store(app), SNAPSHOT_1, stack_id)
        pane._add_goroutines(pane.shown_generation - 1, stack_id, rows, total)
        assert pane.bucket_list.expanded[stack_id] is None
        pane._add_goroutines(pane.shown_generation, stack_id, rows, total)
        assert len(pane.bucket_list.rows) == 1 + len(rows)


@sync
async def test_the_highlighted_goroutine_is_read_ahead(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        store = _store(app)
        await pilot.press("enter", "j")  # the longest waiting lock waiter: 14
        await settle(pilot)
        ahead = store.details.get((SNAPSHOT_1, PID, 14))
        assert ahead is not None
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert detail.detail is ahead  # shown as the screen mounted, no query waited for


@sync
async def test_the_filter_keeps_focus_and_enter_leaves_it(fixture_db: str) -> None:
    app = open_app(fixture_db, snapshot_id=SNAPSHOT_1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = _pane(app.screen)
        await pilot.press("slash", *"chan")
        await settle(pilot)
        assert app.screen.query_one("#goroutine-filter", Input).has_focus
        assert pane.page is not None and pane.page.total_goroutines == 3
        await pilot.press("enter")
        assert pane.bucket_list.has_focus
