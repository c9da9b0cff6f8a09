"""The explorer only queries the store: importing it must not load capture code."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("sideeye_tui.bpf", "sideeye_tui.dwarf", "sideeye_tui.capture", "bcc", "elftools")


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
