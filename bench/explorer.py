"""How fast the explorer is on a 100,000-goroutine snapshot.

    .venv/bin/python -m bench.explorer [--goroutines 100000] [--distinct 500,0] [--runs 1]

For each stack mix (`--distinct N`: N distinct stacks; 0: every stack distinct), a child
process writes a synthetic snapshot (tests/store/synth.py, 10 frames a goroutine) to a
new file; then a fresh process per run starts the real app headless (Textual's test
driver, 160x48) and measures:

- first paint: from creating the app to the first frame that shows the goroutine buckets;
- filter keystroke: from a key typed into the `/` filter to the first frame that shows
  the list answering it, one key at a time, each from a quiet app (the word is a
  function name fragment every key narrows); then "typed": the same word typed at 10
  keys a second without waiting, each key timed to the first frame showing its answer
  or a newer one that replaced it (a stale answer is dropped, never shown);
- detail open: from Enter on a goroutine to the first frame that shows its frames, the
  cursor having rested on the goroutine first (the pane reads its detail ahead, as it
  does while a user looks at the line); then "cold": Esc and Enter again with that
  read-ahead forgotten, so the query runs after Enter (the screen's second opening);
- peak RSS of that process (the file is written by the child, so not counted).

"A frame that shows X": the app hands the driver a screen update (App._display) in which
the widget holding X was repainted after X was in it. Keys are posted to the app
directly and the driver polls every millisecond, so the test pilot's own waits (each
`pilot.press` sleeps at least 40 ms, waiting for the CPU to go idle) are not counted.
Headless, the update is not encoded into terminal escapes: a real terminal adds that.

Targets: first paint ≤1 s, each keystroke ≤100 ms, detail ≤100 ms, RSS <500 MB.
Prints a markdown report and writes it to bench/results-explorer.md (see --out).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import BENCH_DIR, PROJECT_ROOT, git_revision, loadavg, machine_lines, maximum, median

DEFAULT_OUT = BENCH_DIR / "results-explorer.md"
FILTER_WORD = "method12"
QUIET_S = 0.15  # between two keys, once every worker is done: a typist's pace
TYPING_RATE = 10  # keys a second, for the word typed without waiting for answers


def make_file(path: str, goroutines: int, distinct: int) -> None:
    code = (
        "import sys; from tests.store.synth import synthetic;"
        " from sideeye_tui.store import write_snapshot;"
        f" write_snapshot(sys.argv[1], synthetic({goroutines}, 10, {distinct or None}))"
    )
    subprocess.run([sys.executable, "-c", code, path], check=True, cwd=PROJECT_ROOT)


class Frames:
    """Which answers reached the screen, and when: a widget's repaint is recorded with
    what it showed (a generation), and counted as on screen at the next update the app
    hands its driver."""

    def __init__(self) -> None:
        self.rendered: dict[str, int] = {}  # since the last update
        self.shown: dict[str, tuple[int, float]] = {}  # what -> (generation, when)
        self.history: dict[str, list[tuple[int, float]]] = {}  # every newer generation shown

    def rendered_now(self, what: str, generation: int) -> None:
        self.rendered[what] = max(generation, self.rendered.get(what, 0))

    def displayed(self) -> None:
        now = time.perf_counter()
        for what, generation in self.rendered.items():
            if generation > self.shown.get(what, (0, 0.0))[0]:
                self.shown[what] = (generation, now)
                self.history.setdefault(what, []).append((generation, now))
        self.rendered.clear()

    def first_shown(self, what: str, generation: int) -> float:
        """When generation, or a newer answer that replaced it, was first on screen."""
        return next(t for g, t in self.history[what] if g >= generation)

    async def until(self, what: str, generation: int, timeout: float = 60.0) -> float:
        """When the answer `generation` of what was first on screen."""
        deadline = time.perf_counter() + timeout
        while self.shown.get(what, (0, 0.0))[0] < generation:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{what} {generation} never reached the screen")
            await asyncio.sleep(0.001)
        return self.shown[what][1]


def _hook(cls: type, name: str, after: Callable[[Any], None]) -> None:
    original = getattr(cls, name)

    def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        after(self)
        return result

    setattr(cls, name, hooked)


async def measure(path: str) -> dict[str, object]:  # noqa: C901 - one scripted session, step after step, reads best whole
    from textual import events
    from textual.widgets import DataTable, Input
    from textual.worker import WorkerState

    from sideeye_tui.explorer.app import BrowserScreen, ExplorerApp, Options
    from sideeye_tui.explorer.detail import DetailScreen
    from sideeye_tui.explorer.goroutines import BucketList, GoroutinesPane
    from sideeye_tui.query.reader import SnapshotReader
    from sideeye_tui.query.snapshot import DETAILS_REMEMBERED, PAGES_REMEMBERED, Memo

    frames = Frames()
    opened = 0  # details opened: the answer a frames table shows

    def list_rendered(widget: BucketList) -> None:
        pane = widget.parent.parent if widget.parent else None
        if isinstance(pane, GoroutinesPane) and pane.page is not None:
            frames.rendered_now("buckets", pane.shown_generation)

    def table_rendered(widget: DataTable[Any]) -> None:
        screen = widget.screen
        shown = isinstance(screen, DetailScreen) and screen.detail is not None
        if widget.id == "frames" and shown and widget.row_count:
            frames.rendered_now("detail", opened)

    _hook(BucketList, "render_lines", list_rendered)
    _hook(DataTable, "render_lines", table_rendered)

    t0 = time.perf_counter()
    app = ExplorerApp(Options(db_path=path, mode="open", keymap_path=Path("/nonexistent")))
    display = app._display

    def displayed(screen: Any, update: Any) -> None:
        display(screen, update)
        if update is not None:
            frames.displayed()

    app._display = displayed  # type: ignore[method-assign,assignment]

    async def quiet() -> None:
        """Every worker done, then a typist's pause."""
        for pause in (0.0, QUIET_S):
            await asyncio.sleep(pause)
            while any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers):
                await asyncio.sleep(0.005)

    def key(name: str, char: str | None = None) -> float:
        app.post_message(events.Key(name, char))
        return time.perf_counter()

    async with app.run_test(size=(160, 48)):
        first_paint = await frames.until("buckets", 1) - t0
        screen = app.screen
        assert isinstance(screen, BrowserScreen)
        pane = screen.query_one(GoroutinesPane)
        await quiet()

        keys: list[float] = []
        key("slash")
        await quiet()
        for ch in FILTER_WORD:
            wanted = pane._generation + 1
            sent = key(ch, ch)
            keys.append(await frames.until("buckets", wanted) - sent)
            if pane._generation != wanted:
                raise RuntimeError(f"key {ch!r} started {pane._generation - wanted + 1} queries")
            await quiet()
        shown = pane.page.total_goroutines if pane.page else 0

        # The same word at a typist's speed: each key's answer, or a newer one that
        # replaced it, on screen.
        filter_input = screen.query_one("#goroutine-filter", Input)
        filter_input.value = ""
        await frames.until("buckets", pane._generation)
        await quiet()
        assert isinstance(app.reader, SnapshotReader)
        store = app.reader.store
        store.pages = Memo(PAGES_REMEMBERED)  # forget the answers to the first typing
        sent_at: dict[int, float] = {}
        for ch in FILTER_WORD:
            sent_at[pane._generation + 1] = key(ch, ch)
            await asyncio.sleep(1 / TYPING_RATE)
        await frames.until("buckets", max(sent_at))
        typed = [frames.first_shown("buckets", g) - t for g, t in sent_at.items()]
        await quiet()

        key("enter")  # leave the filter for the list
        await quiet()
        key("enter")  # expand the first bucket
        listing = pane.bucket_list
        deadline = time.perf_counter() + 60
        while len(listing.rows) < 2 or listing.rows[1].kind != "goroutine":
            if time.perf_counter() > deadline:
                raise TimeoutError("the bucket did not expand")
            await asyncio.sleep(0.001)
        await quiet()
        key("down")
        await quiet()
        opened = 1
        sent = key("enter")
        detail = await frames.until("detail", opened) - sent
        if not isinstance(app.screen, DetailScreen):
            raise RuntimeError("Enter did not open the detail")
        await quiet()
        key("escape")
        await quiet()
        store.details = Memo(DETAILS_REMEMBERED)  # forget what was read ahead
        opened = 2
        sent = key("enter")
        cold = await frames.until("detail", opened) - sent
        await quiet()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "first_paint": first_paint,
        "keys": keys,
        "typed": typed,
        "detail": detail,
        "cold": cold,
        "rss_mb": rss_mb,
        "filtered": shown,
    }


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1000:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.explorer", description=__doc__.splitlines()[0])
    parser.add_argument("--goroutines", type=int, default=100_000)
    parser.add_argument("--distinct", default="500,0", help="stack mixes; 0 = all distinct")
    parser.add_argument("--runs", type=int, default=1, help="fresh app processes per mix")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--one", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a fresh process per measurement: its RSS is the app's alone
        print(repr(asyncio.run(measure(args.one))))
        return 0

    load_before = loadavg()
    rows = []
    details = []
    for distinct in (int(d) for d in args.distinct.split(",")):
        results = []
        with tempfile.TemporaryDirectory() as d:
            path = str(Path(d) / "bench.duckdb")
            make_file(path, args.goroutines, distinct)
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, "-m", "bench.explorer", "--one", path],
                    capture_output=True,
                    text=True,
                    cwd=PROJECT_ROOT,
                )
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    return 1
                results.append(eval(out.stdout.strip().splitlines()[-1]))  # our own repr
        paints = [r["first_paint"] for r in results]
        keys = [k for r in results for k in r["keys"]]
        typed = [k for r in results for k in r["typed"]]
        opens = [r["detail"] for r in results]
        colds = [r["cold"] for r in results]
        rss = max(r["rss_mb"] for r in results)
        mix = distinct or "all"
        rows.append(
            f"| {args.goroutines:,} | {mix} | {_ms(median(paints))} / {_ms(maximum(paints))} |"
            f" {_ms(median(keys))} / {_ms(maximum(keys))} |"
            f" {_ms(median(typed))} / {_ms(maximum(typed))} |"
            f" {_ms(median(opens))} / {_ms(maximum(opens))} |"
            f" {_ms(median(colds))} / {_ms(maximum(colds))} | {rss:.0f} |"
        )
        for i, r in enumerate(results, 1):
            per_key = ", ".join(
                f"`{ch}` {_ms(k)}" for ch, k in zip(FILTER_WORD, r["keys"], strict=True)
            )
            details.append(
                f"- {mix} distinct, run {i}: {per_key}; {r['filtered']:,} goroutines left"
            )
        print(rows[-1], flush=True)
    report = [
        "# Explorer speed",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at {git_revision()}, with"
        f" `.venv/bin/python -m bench.explorer --goroutines {args.goroutines}"
        f" --distinct {args.distinct} --runs {args.runs}`. Headless app at 160x48; times in ms,"
        f" median / max over {args.runs} run(s) (keys: over every key of every run).",
        "",
        *machine_lines(),
        f"- load average before: {load_before}, after: {loadavg()}",
        "",
        "| goroutines | distinct stacks | first paint | filter key | typed at"
        f" {TYPING_RATE}/s | detail open | detail, cold | peak RSS MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Targets: first paint ≤1000 ms, each filter key ≤100 ms (typing `{FILTER_WORD}`"
        " one key at a time), detail ≤100 ms, RSS <500 MB. Each time runs from the"
        " action to the first screen update showing its answer (see bench/explorer.py).",
        "",
        "Each key:",
        "",
        *details,
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if not args.no_write:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
