"""Refusals a user sees as one line, and pure helpers; no Go toolchain needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sideeye_tui.dwarf import GoBinary
from sideeye_tui.dwarf.buildinfo import _strip_sentinels, _uvarint
from sideeye_tui.dwarf.pclntab import print_name
from sideeye_tui.errors import BinaryError


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BinaryError, match="cannot open"):
        GoBinary.open(str(tmp_path / "nope"), cache_dir=str(tmp_path))


def test_not_elf(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b"#!/bin/sh\necho hi\n")
    with pytest.raises(BinaryError, match="not an ELF file"):
        GoBinary.open(str(p), cache_dir=str(tmp_path))


def test_not_go(tmp_path: Path) -> None:
    with pytest.raises(BinaryError, match="not a Go binary"):
        GoBinary.open(sys.executable, cache_dir=str(tmp_path))


@pytest.mark.parametrize(
    ("raw", "printed"),
    [
        ("main.main", "main.main"),
        ("main.(*Server).handle", "main.(*Server).handle"),
        ("main.Map[go.shape.int,go.shape.string]", "main.Map[...]"),
        ("main.(*List[go.shape.int]).Push", "main.(*List[...]).Push"),
        ("main.Map[go.shape.int].func1", "main.Map[...].func1"),
    ],
)
def test_print_name(raw: str, printed: str) -> None:
    assert print_name(raw) == printed


def test_buildinfo_helpers() -> None:
    assert _uvarint(b"\x96\x01rest", 0) == (150, 2)
    sentinel = "0" * 15 + "\n"
    assert _strip_sentinels(sentinel + "path\tx\n" + sentinel[:-1] + "\n") == "path\tx\n"
