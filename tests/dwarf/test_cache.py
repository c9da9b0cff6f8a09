"""The on-disk cache: a second open of the same binary re-parses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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


_TIMING = """
import json, sys, time
t = time.perf_counter()
from sideeye_tui.dwarf import GoBinary
b = GoBinary.open(sys.argv[1], cache_dir=sys.argv[2])
b.layout
print(json.dumps(time.perf_counter() - t))
"""


def _timed_open(exe: Path, cache: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _TIMING, str(exe), str(cache)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    seconds: float = json.loads(out.stdout)
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize("ldflags", ["", STRIP], ids=["dwarf", "stripped"])
def test_big_binary_timing(ldflags: str, go_build: Callable[..., Path], tmp_path: Path) -> None:
    """open()+layout on a >=30 MB binary: <=5 s cold, <=0.5 s from the cache (new process)."""
    exe = go_build("big", "local", ldflags, generated={"gen.go": generated_types(8000)})
    if not ldflags:
        assert exe.stat().st_size >= 30_000_000
    # Stripped: learn from the reference build first, as a fresh machine would.
    cold = _timed_open(exe, tmp_path)
    cached = _timed_open(exe, tmp_path)
    print(
        f"\n{exe.name} {exe.stat().st_size / 1e6:.1f} MB: cold {cold:.3f} s, cached {cached:.3f} s"
    )
    assert cold <= 5.0
    assert cached <= 0.5


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
