"""Symbolization against the Go runtime's own tracebacks and `go tool nm`."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from capstone import CS_ARCH_X86, CS_MODE_64, Cs, x86

from sideeye_tui.dwarf import GoBinary

from .conftest import STRIP, TOOLCHAINS, go_command, go_env, go_version

pytestmark = pytest.mark.go


@dataclass(frozen=True)
class TraceFrame:
    function: str
    file: str
    line: int
    offset: int | None  # pc - entry for physical frames; None for inlined ones


def strip_args(head: str) -> str:
    """ "main.(*S).f(0x1, {0x2})" -> "main.(*S).f": drop the trailing balanced argument list."""
    assert head.endswith(")"), head
    depth = 0
    for i in range(len(head) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(head[i], 0)
        if depth == 0:
            return head[:i]
    raise AssertionError(head)


_POS = re.compile(r"^\t(?P<file>.+):(?P<line>\d+)(?: \+0x(?P<off>[0-9a-f]+))?$")


def parse_traceback(text: str) -> tuple[list[TraceFrame], TraceFrame | None]:
    """Frames of one goroutine's traceback, and its "created by" frame."""
    lines = text.splitlines()[1:]  # drop "goroutine N [running]:"
    frames: list[TraceFrame] = []
    created: TraceFrame | None = None
    for head, pos in zip(lines[0::2], lines[1::2], strict=False):
        p = _POS.match(pos)
        assert p is not None, pos
        off = int(p["off"], 16) if p["off"] else None
        if head.startswith("created by "):
            name = head.removeprefix("created by ").split(" in goroutine ")[0]
            created = TraceFrame(name, p["file"], int(p["line"]), off)
            continue
        frames.append(TraceFrame(strip_args(head), p["file"], int(p["line"]), off))
    return frames, created


def physical_groups(frames: list[TraceFrame]) -> Iterator[list[TraceFrame]]:
    """Split into [inlined..., physical] groups, innermost first."""
    group: list[TraceFrame] = []
    for f in frames:
        group.append(f)
        if f.offset is not None:
            yield group
            group = []


@pytest.fixture(
    scope="module",
    params=[(t, s) for t in TOOLCHAINS for s in (False, True)],
    ids=lambda p: f"{p[0]}{'-stripped' if p[1] else ''}",
)
def fixture_bin(
    request: pytest.FixtureRequest, go_build: Callable[..., Path]
) -> tuple[str, Path, bool]:
    toolchain, stripped = request.param
    return toolchain, go_build("fixture", toolchain, STRIP if stripped else ""), stripped


def run_traces(exe: Path) -> dict[str, str]:
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=60)
    traces: dict[str, str] = json.loads(out.stdout)
    return traces


def test_identity(fixture_bin: tuple[str, Path, bool], tmp_path: Path) -> None:
    toolchain, exe, stripped = fixture_bin
    b = GoBinary.open(str(exe), cache_dir=str(tmp_path))
    assert b.go_version == go_version(toolchain)
    assert b.main_module == "example.com/fixture"
    assert b.has_dwarf is not stripped
    go_id = subprocess.run(
        [go_command(), "tool", "buildid", str(exe)],
        env=go_env(toolchain),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    gnu = subprocess.run(["readelf", "-n", str(exe)], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", gnu)
    assert b.build_id == (m[1] if m else go_id)


def test_matches_runtime_tracebacks(fixture_bin: tuple[str, Path, bool], tmp_path: Path) -> None:
    _, exe, _ = fixture_bin
    b = GoBinary.open(str(exe), cache_dir=str(tmp_path))
    traces = run_traces(exe)
    assert set(traces) == {"method", "inlined", "generic", "closure", "labels"}
    seen_inlined = False
    for name, text in traces.items():
        frames, created = parse_traceback(text)
        for group in physical_groups(frames):
            phys = group[-1]
            entry = b.function_entry(phys.function)
            assert entry is not None, (name, phys.function)
            assert phys.offset is not None
            pc = entry + phys.offset
            got = b.symbolize(pc, return_address=True)
            assert [(f.function, f.file, f.line) for f in got] == [
                (f.function, f.file, f.line) for f in group
            ], name
            assert [f.inlined for f in got] == [True] * (len(group) - 1) + [False]
            assert all(f.pc == pc for f in got)
            assert b.function_name(pc) == phys.function
            seen_inlined |= len(group) > 1
        if created is not None:
            entry = b.function_entry(created.function)
            assert entry is not None and created.offset is not None
            got = b.symbolize(entry + created.offset, return_address=True)
            assert (got[-1].function, got[-1].file, got[-1].line) == (
                created.function,
                created.file,
                created.line,
            )
    assert seen_inlined
    names = {g.function for t in traces.values() for g in parse_traceback(t)[0]}
    assert {"main.(*Server).handle", "main.worker.func1", "main.Map[...]", "main.inner"} <= names


def test_unknown_pc(fixture_bin: tuple[str, Path, bool], tmp_path: Path) -> None:
    _, exe, _ = fixture_bin
    b = GoBinary.open(str(exe), cache_dir=str(tmp_path))
    (f,) = b.symbolize(0x10, return_address=True)
    assert (f.function, f.file, f.line, f.pc, f.inlined) == ("?", "?", 0, 0x10, False)
    assert b.function_name(0x10) is None
    assert b.sp_delta(0x10) is None
    assert b.function_entry("main.nope") is None
    assert b.function_bounds("main.nope") is None


def nm_symbols(exe: Path, toolchain: str) -> list[tuple[int, int, str]]:
    out = subprocess.run(
        [go_command(), "tool", "nm", "-size", "-sort", "address", str(exe)],
        env=go_env(toolchain),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in ("T", "t"):
            syms.append((int(parts[0], 16), int(parts[1]), parts[3]))
    return syms


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_entries_match_nm(toolchain: str, go_build: Callable[..., Path], tmp_path: Path) -> None:
    exe = go_build("fixture", toolchain)
    stripped = GoBinary.open(str(go_build("fixture", toolchain, STRIP)), cache_dir=str(tmp_path))
    b = GoBinary.open(str(exe), cache_dir=str(tmp_path))
    matched = 0
    syms = nm_symbols(exe, toolchain)
    # An assembly function and its ABI wrapper share one name in the pclntab
    # (foo.abi0 and foo in the symbol table): either entry is right for the name.
    by_name: dict[str, set[int]] = {}
    for addr, _, name in syms:
        by_name.setdefault(name.removesuffix(".abi0"), set()).add(addr)
    for addr, size, full in syms:
        name = full.removesuffix(".abi0")
        entry = b.function_entry(name)
        if entry is None:
            continue  # linker-defined labels such as runtime.text
        assert b.function_name(addr) == name or "[" in name, full
        assert entry in by_name[name], name
        assert b.function_name(addr) is not None
        bounds = b.function_bounds(name)
        assert bounds is not None and bounds[0] == entry, name
        if entry == addr:
            assert bounds[1] >= addr + size, name
        # The stripped twin's text is laid out identically.
        assert stripped.function_entry(name) == entry, name
        matched += 1
    assert matched > 0.9 * len(syms)


def expected_sp_deltas(code: bytes, entry: int) -> dict[int, int]:
    """SP delta before each instruction of the straight-line path to the first RET."""
    md = Cs(CS_ARCH_X86, CS_MODE_64)
    md.detail = True
    delta = 0
    out: dict[int, int] = {}
    for ins in md.disasm(code, entry):
        out[ins.address] = delta
        if ins.mnemonic == "ret":
            break
        if ins.mnemonic == "push":
            delta += 8
        elif ins.mnemonic == "pop":
            delta -= 8
        elif (
            ins.mnemonic in ("sub", "add")
            and ins.operands[0].type == x86.X86_OP_REG
            and ins.operands[0].reg == x86.X86_REG_RSP
            and ins.operands[1].type == x86.X86_OP_IMM
        ):
            imm = ins.operands[1].imm
            delta += imm if ins.mnemonic == "sub" else -imm
    return out


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
@pytest.mark.parametrize(
    "function",
    ["main.outer", "main.(*Server).handle", "main.main", "main.record", "runtime.forEachG"],
)
def test_sp_delta_matches_code(
    toolchain: str, function: str, go_build: Callable[..., Path], tmp_path: Path
) -> None:
    b = GoBinary.open(str(go_build("fixture", toolchain, STRIP)), cache_dir=str(tmp_path))
    bounds = b.function_bounds(function)
    assert bounds is not None
    entry, end = bounds
    expected = expected_sp_deltas(b.read_static(entry, end - entry), entry)
    assert expected[entry] == 0
    assert max(expected.values()) > 0
    for pc, delta in expected.items():
        assert b.sp_delta(pc) == delta, (function, hex(pc))
