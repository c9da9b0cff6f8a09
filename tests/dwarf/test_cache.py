"""The on-disk cache: a second open of the same binary re-parses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sideeye_tui.dwarf import GoBinary
from sideeye_tui.dwarf import binary as binary_mod

from .conftest import STRIP, generated_types

pytestmark = pytest.mark.go


def test_second_open_uses_cache(
    go_build: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = str(go_build("fixture", "local"))
    first = GoBinary.open(exe, cache_dir=str(tmp_path))
    layout = first.layout
    entry = first.function_entry("main.outer")
    assert entry is not None
    frames = {pc: first.symbolize(pc, True) for pc in range(entry + 1, entry + 0x40)}
    first.save_cache()

    def boom(*_: object, **__: object) -> None:
        raise AssertionError("re-parsed")

    monkeypatch.setattr(binary_mod, "layout_from_dwarf", boom)
    monkeypatch.setattr(binary_mod, "symbolize", boom)
    second = GoBinary.open(exe, cache_dir=str(tmp_path))
    assert second.layout == layout
    assert {pc: second.symbolize(pc, True) for pc in frames} == frames


def test_corrupt_cache_is_ignored(go_build: Callable[..., Path], tmp_path: Path) -> None:
    exe = str(go_build("fixture", "local", STRIP))
    b = GoBinary.open(exe, cache_dir=str(tmp_path))
    b.symbolize(b.text_range[0], False)
    b.save_cache()
    (path,) = (tmp_path / "binaries").iterdir()
    path.write_text("{not json")
    again = GoBinary.open(exe, cache_dir=str(tmp_path))
    assert again.symbolize(b.text_range[0], False) == b.symbolize(b.text_range[0], False)
    path.write_text(json.dumps({"format": 1, "build_id": b.build_id, "frames": {"10": [[1]]}}))
    assert GoBinary.open(exe, cache_dir=str(tmp_path)).function_name(b.text_range[0])


_OPEN = """
import json, sys
from sideeye_tui.dwarf import GoBinary
b = GoBinary.open(sys.argv[1], cache_dir=sys.argv[2])
from_cache = b._layout is not None  # read with the cache entry, before any DWARF
print(json.dumps({"from_cache": from_cache, "layout": repr(b.layout)}))
b.save_cache()
"""


def _open_in_a_new_process(exe: Path, cache: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _OPEN, str(exe), str(cache)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


@pytest.mark.slow
@pytest.mark.parametrize("ldflags", ["", STRIP], ids=["dwarf", "stripped"])
def test_big_binary_layout_from_the_cache(
    ldflags: str, go_build: Callable[..., Path], tmp_path: Path
) -> None:
    """open()+layout on a >=30 MB binary, then again in a new process: the second comes
    from the cache, equal. How fast each is: bench.analysis (targets 5 s and 0.5 s)."""
    exe = go_build("big", "local", ldflags, generated={"gen.go": generated_types(8000)})
    if not ldflags:
        assert exe.stat().st_size >= 30_000_000
    # Stripped: learn from the reference build first, as a fresh machine would.
    cold = _open_in_a_new_process(exe, tmp_path)
    cached = _open_in_a_new_process(exe, tmp_path)
    assert not cold["from_cache"] and cached["from_cache"]
    assert cached["layout"] == cold["layout"]


def test_a_borrowed_build_id_does_not_reuse_another_binarys_cache(
    go_build: Callable[..., Path], tmp_path: Path
) -> None:
    """Anyone can give a binary any GNU build id (-ldflags=-B): the cache entry of one
    binary must not be taken for another that claims the same id."""
    same_id = "-B 0x5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed"
    one = str(go_build("fixture", "local", same_id))
    other = str(go_build("fixture", "go1.24.13", same_id))
    first = GoBinary.open(one, cache_dir=str(tmp_path))
    second = GoBinary.open(other, cache_dir=str(tmp_path))
    assert first.build_id == second.build_id  # the premise
    _ = first.layout
    first.save_cache()
    truth = GoBinary.open(other, cache_dir=str(tmp_path / "fresh")).layout
    assert GoBinary.open(other, cache_dir=str(tmp_path)).layout == truth
    assert truth != first.layout


def test_a_copy_of_a_binary_still_uses_its_cache(
    go_build: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = go_build("fixture", "local")
    first = GoBinary.open(str(exe), cache_dir=str(tmp_path / "cache"))
    layout = first.layout
    first.save_cache()
    copy = tmp_path / "copy"
    copy.write_bytes(exe.read_bytes())

    def boom(*_: object, **__: object) -> None:
        raise AssertionError("re-parsed")

    monkeypatch.setattr(binary_mod, "layout_from_dwarf", boom)
    assert GoBinary.open(str(copy), cache_dir=str(tmp_path / "cache")).layout == layout
