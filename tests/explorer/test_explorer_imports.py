"""The explorer only reads: importing it must load neither capture code nor the write
path (the writer, the spec loader, applying specs)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "sideeye_tui.bpf",
    "sideeye_tui.dwarf",
    "sideeye_tui.capture",
    "sideeye_tui.values",
    "sideeye_tui.store.writer",
    "sideeye_tui.reports.apply",
    "sideeye_tui.spec",
    "bcc",
    "elftools",
    "capstone",
)


def test_explorer_imports_no_capture_layer() -> None:
    code = (
        "import sys\n"
        "import sideeye_tui.explorer.app, sideeye_tui.cli\n"
        "from sideeye_tui.cli import explorer_parser\n"
        "explorer_parser()\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}"
        f" or any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})]\n"
        "print(','.join(sorted(bad)))\n"
        "assert 'sideeye_tui.explorer.app' in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


def test_read_side_imports_no_textual_and_no_write_path() -> None:
    """The read side serves the CLI's summary as well as the UI: no Textual in it."""
    code = (
        "import sys\n"
        "import sideeye_tui.query.snapshot, sideeye_tui.query.summary\n"
        "import sideeye_tui.query.tables, sideeye_tui.query.spec_tables, sideeye_tui.report\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} + ('textual',)"
        f" or any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
