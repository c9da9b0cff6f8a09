"""Text from a target process, made safe to print on a terminal.

Function names, file names (a `//line` directive can name anything), command lines,
labels and values are chosen by whoever built or started the target. Printed raw, an
escape sequence among them retitles the terminal, clears the screen or worse."""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls: each shown as a visible escape instead.
_UNSAFE = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def printable(text: str) -> str:
    """text with every control character written as \\xNN (a tab or newline too: one
    field of a line must not break the line)."""
    return text.translate(_UNSAFE)


def printable_lines(lines: list[str]) -> list[str]:
    return [printable(line) for line in lines]


_UNSAFE_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in _UNSAFE) + "]")


def unsafe(text: str) -> bool:
    """Whether printable(text) differs from text (cheaper than computing it)."""
    return _UNSAFE_RE.search(text) is not None
