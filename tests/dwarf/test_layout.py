"""Runtime layouts from DWARF, and from a reference for stripped binaries."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sideeye_tui.dwarf import GoBinary, RuntimeLayout
from sideeye_tui.dwarf import reference as ref
from sideeye_tui.dwarf.cache import Cache
from sideeye_tui.dwarf.elfimage import ElfImage
from sideeye_tui.dwarf.layout import LayoutError, layout_from_json, layout_to_json
from sideeye_tui.dwarf.moduledata import locate_pclntab
from sideeye_tui.errors import BinaryError

from .conftest import STRIP, TOOLCHAINS, go_command, go_env

pytestmark = pytest.mark.go


def nm_address(exe: Path, toolchain: str, symbol: str) -> int:
    out = subprocess.run(
        [go_command(), "tool", "nm", str(exe)],
        env=go_env(toolchain),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts[-1] == symbol:
            return int(parts[0], 16)
    raise AssertionError(f"{symbol} not in {exe}")


def section_addr(exe: Path, name: str) -> int:
    image = ElfImage(str(exe))
    try:
        return image.sections[name].addr
    finally:
        image.close()


def check_sane(layout: RuntimeLayout) -> None:
    g_fields = {
        f.name: getattr(layout, f.name)
        for f in dataclasses.fields(layout)
        if f.name.startswith("g_") and f.name != "g_size"
    }
    offsets = [v for v in g_fields.values() if v is not None]
    assert len(set(offsets)) == len(offsets), g_fields  # no two fields share an offset
    assert all(0 <= v < layout.g_size for v in offsets)
    assert layout.g_stack_hi == layout.g_stack_lo + 8
    assert layout.g_sched_pc == layout.g_sched_sp + 8
    assert layout.g_sched_sp < layout.g_sched_bp < layout.g_sched_sp + 64
    assert layout.m_procid != layout.m_curg
    assert {
        0: "idle",
        1: "runnable",
        2: "running",
        3: "syscall",
        4: "waiting",
        6: "dead",
        8: "copystack",
        9: "preempted",
    }.items() <= layout.status_names.items()
    assert layout.wait_reasons[0] == ""
    assert {"chan receive", "sleep", "select", "IO wait", "semacquire"} <= set(layout.wait_reasons)


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_layout_from_dwarf(toolchain: str, go_build: Callable[..., Path], tmp_path: Path) -> None:
    exe = go_build("fixture", toolchain)
    b = GoBinary.open(str(exe), cache_dir=str(tmp_path))
    layout = b.layout
    assert layout.go_version == b.go_version
    assert layout.allgs_addr == nm_address(exe, toolchain, "runtime.allgs")
    check_sane(layout)
    minor = int(b.go_version.split(".")[1])
    assert (layout.g_syscallbp is None) == (minor < 23)
    assert layout.g_parent_goid is not None
    assert layout.labels is not None
    if minor < 24:
        assert layout.labels.kind == "map"
        assert layout.labels.bucket_keys == 8 and layout.labels.bucket_overflow > 0
    else:
        assert layout.labels.kind == "slice"
        assert (layout.labels.label_size, layout.labels.key_offset, layout.labels.value_offset) == (
            32,
            0,
            16,
        )
    # Round trip through the cache's JSON.
    assert layout_from_json(layout_to_json(layout)) == layout


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_allgs_by_disassembly(toolchain: str, go_build: Callable[..., Path]) -> None:
    exe = go_build("fixture", toolchain)
    image = ElfImage(str(exe))
    try:
        tab, _ = locate_pclntab(image)
        if not tab.text_start:
            tab.text_start = image.sections[".text"].addr
        assert ref.allgs_by_disassembly(image, tab) == nm_address(exe, toolchain, "runtime.allgs")
    finally:
        image.close()


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_stripped_twin_learns_from_unstripped(
    toolchain: str, go_build: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = go_build("fixture", toolchain)
    stripped = go_build("fixture", toolchain, STRIP)
    expected = GoBinary.open(str(full), cache_dir=str(tmp_path)).layout  # learns the layout

    def no_build(*_: object) -> str:
        raise AssertionError("a learned layout must not need a reference build")

    monkeypatch.setattr(ref, "build_reference", no_build)
    monkeypatch.setattr(ref.reference_layout, "__defaults__", (no_build,))
    b = GoBinary.open(str(stripped), cache_dir=str(tmp_path))
    assert not b.has_dwarf
    layout = b.layout
    # The same source and toolchain lay out data identically up to a shift of the
    # data segment (the stripped build's buildinfo records other flags).
    nm_allgs = nm_address(full, toolchain, "runtime.allgs")
    assert layout.allgs_addr - section_addr(stripped, ".bss") == nm_allgs - section_addr(
        full, ".bss"
    )
    assert dataclasses.replace(layout, allgs_addr=nm_allgs) == expected


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_stripped_builds_reference(
    toolchain: str, go_build: Callable[..., Path], tmp_path: Path
) -> None:
    expected = GoBinary.open(
        str(go_build("fixture", toolchain)), cache_dir=str(tmp_path / "a")
    ).layout
    b = GoBinary.open(str(go_build("fixture", toolchain, STRIP)), cache_dir=str(tmp_path / "b"))
    layout = b.layout
    assert dataclasses.replace(layout, allgs_addr=expected.allgs_addr) == expected
    # The reference program is kept, and the layout learned for the next binary.
    cache = Cache(str(tmp_path / "b"))
    assert Path(cache.reference_dir(b.go_version, "amd64"), "reference").exists()
    assert Path(cache.layout_path(b.go_version, "amd64")).exists()


def test_stripped_without_reference_fails_clearly(
    go_build: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*_: object) -> str:
        raise LayoutError("no `go` command to build a reference program")

    monkeypatch.setattr(ref.reference_layout, "__defaults__", (failing,))
    b = GoBinary.open(str(go_build("fixture", "local", STRIP)), cache_dir=str(tmp_path))
    with pytest.raises(BinaryError, match=r"has no DWARF and no reference layout for go1\.\d+"):
        _ = b.layout
    with pytest.raises(BinaryError):  # remembered, not retried in this process
        _ = b.layout
    # Symbolization does not need the layout.
    assert b.function_entry("main.main") is not None
