"""Strings a target chose never reach the terminal raw: every control character of a
function or file name (a //line directive can name anything), a label, a command line
is printed as a visible \\xNN escape."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sideeye_tui import cli, procs
from sideeye_tui.model import Frame, Goroutine, ProcessSnapshot, Snapshot
from sideeye_tui.report import format_report, load_report
from sideeye_tui.store import write_snapshot
from sideeye_tui.text import printable

TITLE = "\x1b]0;owned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J\x1b[H"  # clears the screen


def test_printable_escapes_every_control_character() -> None:
    assert printable(f"a{TITLE}b") == "a\\x1b]0;owned\\x07b"
    assert printable("tab\there\nnl\x7f\x9b") == "tab\\x09here\\x0anl\\x7f\\x9b"
    assert printable("héllo ☃ main.(*S).f[...]") == "héllo ☃ main.(*S).f[...]"


def test_summary_escapes_names_and_labels(tmp_path: Path) -> None:
    frames = (
        Frame(f"main.evil{TITLE}", f"/src/{CLEAR}main.go", 7, 0x401000),
        Frame("main.main", "/src/main.go", 3, 0x401100),
    )
    g = Goroutine(
        1,
        "waiting",
        f"chan receive{CLEAR}",
        None,
        f"main.spawn{TITLE}",
        None,
        None,
        labels=(("user", CLEAR),),
        frames=frames,
    )
    proc = ProcessSnapshot(
        42, f"/bin/svc{TITLE}", "b", "go1.26.8", f"example.com/{CLEAR}", 1000, 1, "ebpf", (g,)
    )
    db = tmp_path / "s.duckdb"
    write_snapshot(str(db), Snapshot(datetime(2026, 1, 1, tzinfo=UTC), f"host{TITLE}", (proc,)))
    text = "\n".join(format_report(load_report(str(db))))
    assert "\x1b" not in text and "\x07" not in text
    assert "main.evil\\x1b]0;owned\\x07" in text


def test_ps_and_errors_escape_the_targets_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = procs.GoProcess(7, f"svc {TITLE}{CLEAR}", "/bin/svc", "go1.26.8", None, True, 1, 1.0)
    monkeypatch.setattr(procs, "list_go_processes", lambda: [fake])
    assert cli.main(["ps"]) == 0
    cli._error(f"pid 7 ({TITLE}) is not a Go program")
    cli._warn(f"{CLEAR}")
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "svc \\x1b]0;owned\\x07" in out
