"""The Pilot helper settle: a worker cancelled under it fails the test at once."""

from __future__ import annotations

import threading

import pytest

from sideeye_tui.explorer.goroutines import GoroutinesPane

from .support import open_app, settle, sync


@sync
async def test_settle_fails_when_a_worker_it_waits_for_was_cancelled(fixture_db: str) -> None:
    app = open_app(fixture_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(GoroutinesPane)
        release = threading.Event()
        worker = pane.run_worker(release.wait, thread=True, group="probe")
        worker.cancel()
        release.set()
        with pytest.raises(pytest.fail.Exception, match="group 'probe'.* was cancelled"):
            await settle(pilot)


@sync
async def test_settle_accepts_a_worker_replaced_by_a_newer_one(fixture_db: str) -> None:
    app = open_app(fixture_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(GoroutinesPane)
        release = threading.Event()
        first = pane.run_worker(release.wait, thread=True, group="probe", exclusive=True)
        pane.run_worker(lambda: None, thread=True, group="probe", exclusive=True)
        release.set()
        await settle(pilot)  # the first was cancelled by the second: as it should be
        assert first.is_cancelled
