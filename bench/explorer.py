"""How fast the explorer is on a 100,000-goroutine snapshot.

    .venv/bin/python -m bench.explorer [--goroutines 100000] [--distinct 500,0] [--keys 8]

For each stack mix (`--distinct N`: N distinct stacks; 0: every stack distinct), a child
process writes a synthetic snapshot (tests/store/synth.py, 10 frames a goroutine) to a
new file; then, in this process, the real app runs headless (Textual's test driver, 160x48)
and we measure:

- first paint: from creating the app to the goroutine buckets being on screen;
- filter keystroke: from a key typed into the `/` filter to the list answering it,
  one key at a time (the word is a function name fragment every key narrows);
- detail open: from Enter on a goroutine to its frames on screen;
- peak RSS of this process (the file is written by the child, so not counted).

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
from datetime import UTC, datetime
from pathlib import Path

from . import BENCH_DIR, PROJECT_ROOT, git_revision, loadavg, machine_lines, maximum, median

DEFAULT_OUT = BENCH_DIR / "results-explorer.md"
FILTER_WORD = "method12"


def make_file(path: str, goroutines: int, distinct: int) -> None:
    code = (
        "import sys; from tests.store.synth import synthetic;"
        " from sideeye_tui.store import write_snapshot;"
        f" write_snapshot(sys.argv[1], synthetic({goroutines}, 10, {distinct or None}))"
    )
    subprocess.run([sys.executable, "-c", code, path], check=True, cwd=PROJECT_ROOT)


async def measure(path: str) -> dict[str, object]:
    from textual.pilot import Pilot
    from textual.widgets import Input

    from sideeye_tui.explorer.app import BrowserScreen, ExplorerApp, Options
    from sideeye_tui.explorer.detail import DetailScreen
    from sideeye_tui.explorer.goroutines import GoroutinesPane

    pilot: Pilot[None]

    async def until(check: object, timeout: float = 60.0) -> None:
        deadline = time.perf_counter() + timeout
        while not check():  # type: ignore[operator]
            if time.perf_counter() > deadline:
                raise TimeoutError("the app did not answer")
            await pilot.pause(0.001)

    t0 = time.perf_counter()
    app = ExplorerApp(Options(db_path=path, mode="open", keymap_path=Path("/nonexistent")))
    async with app.run_test(size=(160, 48)) as pilot:

        def painted() -> bool:
            screen = app.screen
            if not isinstance(screen, BrowserScreen):
                return False
            panes = screen.query(GoroutinesPane)  # empty while the screen mounts
            return bool(panes) and panes.first().page is not None

        await until(painted)
        await pilot.pause()
        first_paint = time.perf_counter() - t0
        pane = app.screen.query_one(GoroutinesPane)

        keys: list[float] = []
        await pilot.press("slash")
        for ch in FILTER_WORD:
            t = time.perf_counter()
            await pilot.press(ch)
            wanted = pane._generation
            await until(lambda w=wanted: pane.shown_generation == w)  # type: ignore[misc]
            await pilot.pause()
            keys.append(time.perf_counter() - t)
        shown = pane.page.total_goroutines if pane.page else 0
        app.screen.query_one("#goroutine-filter", Input).blur()
        pane.bucket_tree.focus()
        await pilot.press("enter")  # expand the first bucket
        await until(lambda: bool(pane.bucket_tree.root.children[0].children))
        await pilot.press("down")
        t = time.perf_counter()
        await pilot.press("enter")

        def detail_shown() -> bool:
            screen = app.screen
            return isinstance(screen, DetailScreen) and screen.detail is not None

        await until(detail_shown)
        await pilot.pause()
        detail = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "first_paint": first_paint,
        "keys": keys,
        "detail": detail,
        "rss_mb": rss_mb,
        "filtered": shown,
    }


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1000:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.explorer", description=__doc__.splitlines()[0])
    parser.add_argument("--goroutines", type=int, default=100_000)
    parser.add_argument("--distinct", default="500,0", help="stack mixes; 0 = all distinct")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--one", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a fresh process per measurement: its RSS is the app's alone
        print(repr(asyncio.run(measure(args.one))))
        return 0

    load_before = loadavg()
    rows = []
    for distinct in (int(d) for d in args.distinct.split(",")):
        with tempfile.TemporaryDirectory() as d:
            path = str(Path(d) / "bench.duckdb")
            make_file(path, args.goroutines, distinct)
            out = subprocess.run(
                [sys.executable, "-m", "bench.explorer", "--one", path],
                capture_output=True,
                text=True,
                cwd=PROJECT_ROOT,
            )
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            result = eval(out.stdout.strip().splitlines()[-1])  # our own repr of a dict
        keys = result["keys"]
        rows.append(
            f"| {args.goroutines:,} | {distinct or 'all'} | {_ms(result['first_paint'])} |"
            f" {_ms(median(keys))} / {_ms(maximum(keys))} | {_ms(result['detail'])} |"
            f" {result['rss_mb']:.0f} |"
        )
        print(rows[-1], flush=True)
    report = [
        "# Explorer speed",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at {git_revision()}, with"
        f" `.venv/bin/python -m bench.explorer --goroutines {args.goroutines}"
        f" --distinct {args.distinct}`. Headless app at 160x48; times in ms.",
        "",
        *machine_lines(),
        f"- load average before: {load_before}, after: {loadavg()}",
        "",
        "| goroutines | distinct stacks | first paint | filter key, median / max |"
        " detail open | peak RSS MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Targets: first paint ≤1000 ms, each filter key ≤100 ms (typing `{FILTER_WORD}`"
        " one key at a time), detail ≤100 ms, RSS <500 MB.",
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if not args.no_write:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
