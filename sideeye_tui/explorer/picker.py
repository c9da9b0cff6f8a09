"""The process picker: Go processes on this host, marked and snapshotted with one key.

Both the process list and the snapshot are subprocesses of sideeye-tui itself
(`ps --json`, `snapshot`), so the UI never imports the capture layer; both are
injectable so tests feed a fixed list and a fake capture.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, LoadingIndicator, Static

from ..query.format import format_duration
from ..text import printable
from . import keymap
from .messages import Answering


@dataclass(frozen=True)
class PickerProcess:
    pid: int
    command: str
    go_version: str | None
    main_module: str | None
    uptime_seconds: float
    threads: int


@dataclass(frozen=True)
class SnapshotResult:
    ok: bool
    snapshot_id: int | None
    lines: tuple[str, ...]  # what the snapshot command said, per process and errors


ProcessSource = Callable[[], list[PickerProcess]]
Progress = Callable[[str], None]
SnapshotRunner = Callable[[list[int], str, Progress], SnapshotResult]


def list_processes_subprocess() -> list[PickerProcess]:
    """`sideeye-tui ps --json`, one JSON object a line."""
    out = subprocess.run(
        [sys.executable, "-m", "sideeye_tui", "ps", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError((out.stderr.strip() or f"ps exited {out.returncode}").splitlines()[-1])
    procs = []
    for line in out.stdout.splitlines():
        d = json.loads(line)
        procs.append(
            PickerProcess(
                pid=int(d["pid"]),
                command=str(d["command"]),
                go_version=d.get("go_version"),
                main_module=d.get("main_module"),
                uptime_seconds=float(d.get("uptime_seconds") or 0.0),
                threads=int(d.get("threads") or 0),
            )
        )
    return procs


def snapshot_subprocess(pids: list[int], db_path: str, progress: Progress) -> SnapshotResult:
    """`sideeye-tui snapshot PIDS -o DB --json`: progress on stderr, one line at a time,
    and the result as JSON lines on stdout (read by a thread of its own, so that
    neither pipe can fill up while the other is waited on)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sideeye_tui",
            "snapshot",
            *map(str, pids),
            "-o",
            db_path,
            "--json",
            "--progress-lines",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None and proc.stdout is not None
    stdout = proc.stdout
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(stdout), daemon=True)
    reader.start()
    errors = []
    for line in proc.stderr:
        line = line.rstrip("\n")
        if line:
            progress(line)
            if line.startswith("sideeye-tui:"):
                errors.append(line.removeprefix("sideeye-tui:").strip())
            elif line.startswith("warning: pid "):  # a caveat about a capture
                errors.append(line)
    reader.join()
    rc = proc.wait()
    return parse_snapshot_json(out, rc, errors)


def parse_snapshot_json(out: list[str], rc: int, errors: list[str]) -> SnapshotResult:
    """The result of `snapshot --json` from its stdout lines (README: snapshot --json)."""
    sid = None
    lines: list[str] = []
    for line in out:
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError:
            lines.append(line.rstrip("\n"))  # not ours: shown as it is
            continue
        if d.get("kind") == "snapshot":
            sid = int(d["snapshot_id"])
        elif d.get("kind") == "process":
            lines.append(str(d.get("summary") or f"pid {d.get('pid')}"))
    return SnapshotResult(rc == 0 and sid is not None, sid, (*lines, *errors))


class PickerScreen(Answering, Screen[None]):
    BINDINGS = keymap.bindings("picker")

    class Taken(Message):
        """A snapshot was written: open it."""

        def __init__(self, snapshot_id: int, lines: tuple[str, ...]) -> None:
            super().__init__()
            self.snapshot_id = snapshot_id
            self.lines = lines

    def __init__(
        self,
        db_path: str,
        source: ProcessSource,
        runner: SnapshotRunner,
        capture: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.capture = capture  # snapshot these at once (`sideeye-tui PID...`)
        self.db_path = db_path
        self.source = source
        self.runner = runner
        self.procs: list[PickerProcess] = []
        self.shown: list[PickerProcess] = []
        self.marked: set[int] = set()
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Static(
            f"Go processes on this host · snapshots go to {self.db_path}", id="picker-title"
        )
        yield Input(placeholder="/ filter by pid, command, module, Go version", id="picker-filter")
        table: DataTable[str | Text] = DataTable(id="process-table", cursor_type="row")
        yield table
        yield LoadingIndicator(id="picker-busy")
        yield Static("", id="picker-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#process-table", DataTable)
        table.add_columns(" ", "pid", "command", "go", "main module", "uptime", "threads")
        self.query_one("#picker-busy").display = False
        self.action_refresh()
        table.focus()
        if self.capture:
            self.marked = set(self.capture)
            self.action_snapshot()

    @work(thread=True, exclusive=True, group="ps")
    def action_refresh(self) -> None:
        try:
            procs = self.source()
        except Exception as e:  # the ps subprocess: shown in place
            self.answer(self._status, f"cannot list processes: {e}", "red")
            return
        self.answer(self._show, procs)

    def _show(self, procs: list[PickerProcess]) -> None:
        self.procs = procs
        self.marked &= {p.pid for p in procs}  # processes that vanished lose their mark
        self._fill()
        if not procs:
            self._status("no Go process found (run as root to see every user's)", "yellow")

    def _fill(self) -> None:
        words = self.query_one("#picker-filter", Input).value.lower().split()
        table = self.query_one("#process-table", DataTable)
        table.clear()
        self.shown = []
        for p in self.procs:
            hay = f"{p.pid} {p.command} {p.main_module or ''} {p.go_version or ''}".lower()
            if all(w in hay for w in words):
                self.shown.append(p)
                table.add_row(
                    Text("●", style="bold green") if p.pid in self.marked else "",
                    str(p.pid),
                    printable(p.command),
                    printable(p.go_version or "?"),
                    printable(p.main_module or "?"),
                    format_duration(p.uptime_seconds),
                    str(p.threads),
                    key=str(p.pid),
                )

    def _status(self, message: str, style: str = "") -> None:
        self.query_one("#picker-status", Static).update(Text(printable(message), style=style))

    @on(Input.Changed, "#picker-filter")
    def _filter(self) -> None:
        self._fill()

    @on(Input.Submitted, "#picker-filter")
    def _filter_done(self) -> None:
        self.query_one("#process-table", DataTable).focus()

    @on(DataTable.RowSelected, "#process-table")
    def _row_selected(self) -> None:
        self.action_snapshot()

    def action_focus_filter(self) -> None:
        self.query_one("#picker-filter", Input).focus()

    def action_cursor_down(self) -> None:
        self.query_one("#process-table", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#process-table", DataTable).action_cursor_up()

    def _cursor_pid(self) -> int | None:
        table = self.query_one("#process-table", DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row].pid

    def action_mark(self) -> None:
        pid = self._cursor_pid()
        if pid is None:
            return
        self.marked.symmetric_difference_update({pid})
        row = self.query_one("#process-table", DataTable).cursor_row
        self._fill()
        self.query_one("#process-table", DataTable).move_cursor(row=row + 1)

    def action_snapshot(self) -> None:
        if self.busy:
            return
        pids = sorted(self.marked) or ([p] if (p := self._cursor_pid()) is not None else [])
        if not pids:
            self._status("nothing to snapshot: mark processes with space", "yellow")
            return
        self.busy = True
        self.query_one("#picker-busy").display = True
        self._status(f"snapshot of {', '.join(map(str, pids))}…")
        self._run_snapshot(pids)

    @work(thread=True, exclusive=True, group="snapshot")
    def _run_snapshot(self, pids: list[int]) -> None:
        def progress(line: str) -> None:
            self.answer(self._status, line)

        try:
            result = self.runner(pids, self.db_path, progress)
        except Exception as e:
            result = SnapshotResult(False, None, (f"snapshot failed: {e}",))
        self.answer(self._done, result)

    def _done(self, result: SnapshotResult) -> None:
        self.busy = False
        self.query_one("#picker-busy").display = False
        if result.ok and result.snapshot_id is not None:
            self.post_message(self.Taken(result.snapshot_id, result.lines))
            return
        self._status("\n".join(result.lines) or "snapshot failed", "red")
        self.action_refresh()
