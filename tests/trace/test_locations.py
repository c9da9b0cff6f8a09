"""Where probes go, checked against Go's own disassembler (`go tool objdump`) and the
eventfixture's report of its functions and lines (tests/go/README.md).

- an entry probe sits right after the frame set-up (PUSHQ BP; MOVQ SP, BP; SUBQ $n, SP),
  past the stack-growth check, whose morestack path jumps back to the function's entry;
- return probes are exactly the function's RET instructions;
- a file:line resolves by path suffix, refuses an ambiguous or code-less line by name.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.events.locations import (
    KIND_ENTRY,
    KIND_LINE,
    KIND_RETURN,
    LocationError,
    is_line_location,
    resolve,
)
from tests.go.build import EVENTFIXTURE, build_go, go_binary, go_env, start_fixture

pytestmark = [pytest.mark.go]

TOOLCHAINS = [None, "go1.22.12"]
_INSN = re.compile(r"^\s+\S+:\d+\s+0x([0-9a-f]+)\s+[0-9a-f]+\s+(.*?)\s*$")


@dataclass(frozen=True)
class Built:
    path: Path
    report: dict[str, object]


@functools.cache
def built(toolchain: str | None) -> Built:
    path = build_go(EVENTFIXTURE, toolchain=toolchain, stripped=False)
    with start_fixture(path, "-lifetime", "30s") as fx:
        return Built(path, fx.report)


def objdump(binary: Path, symbol: str, toolchain: str | None) -> list[tuple[int, str]]:
    """(address, instruction) of one function, as the Go toolchain disassembles it."""
    go = go_binary()
    assert go is not None
    env = go_env(toolchain)
    out = subprocess.run(
        [go, "tool", "objdump", "-s", "^" + re.escape(symbol) + "$", str(binary)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=EVENTFIXTURE,
    ).stdout
    return [(int(m[1], 16), m[2]) for m in map(_INSN.match, out.splitlines()) if m]


def truth_entry(insns: list[tuple[int, str]]) -> int:
    """The address after `SUBQ $n, SP` (or ADDQ $-n) that follows `MOVQ SP, BP`."""
    for i, (_addr, text) in enumerate(insns):
        if text.startswith("MOVQ SP, BP"):
            for j in range(i + 1, len(insns)):
                if re.match(r"(SUBQ \$0x[0-9a-f]+|ADDQ \$-0x[0-9a-f]+), SP", insns[j][1]):
                    return insns[j + 1][0]
    return insns[0][0]  # frameless


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
@pytest.mark.parametrize("role", ["handle", "recurse", "panic", "grow"])
def test_entry_after_prologue_and_every_ret(toolchain: str | None, role: str) -> None:
    b = built(toolchain)
    name = b.report["functions"][role]  # type: ignore[index]
    with GoBinary.open(str(b.path)) as go:
        r = resolve(go, name)
        insns = objdump(b.path, name, toolchain)
    entries = [s for s in r.sites if s.kind == KIND_ENTRY]
    returns = [s for s in r.sites if s.kind == KIND_RETURN]
    assert [s.pc for s in entries] == [truth_entry(insns)]
    # The stack check's morestack path jumps back to the function's first instruction:
    # the probe must be past it, or a call that grows its stack would fire twice.
    assert any(t == f"JMP {name}(SB)" or t == f"JMP 0x{insns[0][0]:x}" for _a, t in insns)
    assert entries[0].pc > insns[0][0]
    assert sorted(s.pc for s in returns) == [a for a, t in insns if t == "RET"]
    assert all(s.sp_delta == 0 for s in returns)
    assert entries[0].sp_delta > 0  # the frame's size plus the saved BP


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_generic_probes_every_instantiation(toolchain: str | None) -> None:
    b = built(toolchain)
    symbols = b.report["generic_symbols"]
    with GoBinary.open(str(b.path)) as go:
        r = resolve(go, b.report["functions"]["generic"])  # type: ignore[index]
        entries = {go.function_name(s.pc) for s in r.sites if s.kind == KIND_ENTRY}
        bounds = [go.function_bounds(s) for s in symbols]  # type: ignore[attr-defined]
    assert entries == {b.report["functions"]["generic"]}  # type: ignore[index]
    assert len([s for s in r.sites if s.kind == KIND_ENTRY]) == len(symbols)  # type: ignore[arg-type]
    for lo_hi in bounds:
        assert lo_hi is not None
        lo, hi = lo_hi
        assert any(lo < s.pc < hi and s.kind == KIND_ENTRY for s in r.sites)
        assert any(lo < s.pc < hi and s.kind == KIND_RETURN for s in r.sites)


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_inlined_function_fires_in_its_copies(toolchain: str | None) -> None:
    b = built(toolchain)
    small = b.report["functions"]["inlined"]  # type: ignore[index]
    inliner = b.report["functions"]["inliner"]  # type: ignore[index]
    assert b.report["inlined"][small]  # type: ignore[index]
    with GoBinary.open(str(b.path)) as go:
        r = resolve(go, small)
        assert r.sites, "an inlined function still gets probes"
        for s in r.sites:
            assert s.kind == KIND_ENTRY and s.inlined
            frames = go.symbolize(s.pc, False)
            assert frames[0].function == small and frames[0].inlined
            assert frames[-1].function == inliner


@pytest.mark.parametrize("toolchain", TOOLCHAINS, ids=lambda t: t or "local")
def test_lines(toolchain: str | None) -> None:
    b = built(toolchain)
    lines = b.report["lines"]
    loop = lines["loop"]  # type: ignore[index]
    with GoBinary.open(str(b.path)) as go:
        r = resolve(go, f"eventfixture/workload.go:{loop['line']}")
        assert r.kind == "line" and r.file == loop["file"] and r.line == loop["line"]
        assert r.function == b.report["functions"]["loop"]  # type: ignore[index]
        assert r.sites and all(s.kind == KIND_LINE for s in r.sites)
        for s in r.sites:
            f = go.symbolize(s.pc, False)[0]
            assert (f.file, f.line) == (loop["file"], loop["line"])
        sub = lines["sub"]  # type: ignore[index]
        rs = resolve(go, f"sub/workload.go:{sub['line']}")
        assert rs.file == sub["file"]
        with pytest.raises(
            LocationError, match="ambiguous.*sub/workload.go.*eventfixture/workload.go"
        ):
            resolve(go, f"workload.go:{loop['line']}")
        nocode = lines["nocode"]  # type: ignore[index]
        with pytest.raises(LocationError, match=f"no code at line {nocode['line']}"):
            resolve(go, f"eventfixture/workload.go:{nocode['line']}")
        with pytest.raises(LocationError, match="no source file"):
            resolve(go, "nosuchfile.go:10")


def test_unknown_function_suggests_close_names() -> None:
    b = built(None)
    with GoBinary.open(str(b.path)) as go, pytest.raises(LocationError) as e:
        resolve(go, "main.handel")
    assert "no such function" in str(e.value) and "main.handle" in str(e.value)
    assert "\n" not in str(e.value)


def test_line_or_function() -> None:
    assert is_line_location("main.go:151")
    assert is_line_location("demo/service/main.go:151")
    assert not is_line_location("main.(*Server).handle")
    assert not is_line_location("main.Map[...]")
    assert not is_line_location(":12")


def _stmt_rows(binary: Path, line: int, lo: int, hi: int) -> dict[int, bool]:
    """DWARF line-table rows of `line` in [lo, hi): address -> is_stmt (pyelftools)."""
    from elftools.elf.elffile import ELFFile

    out: dict[int, bool] = {}
    with binary.open("rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(cu)
            if program is None:
                continue
            for entry in program.get_entries():
                st = entry.state
                if st is not None and st.line == line and lo <= st.address < hi:
                    out[st.address] = out.get(st.address, False) or bool(st.is_stmt)
    return out


@pytest.mark.parametrize("toolchain", [None, "go1.24.13", "go1.22.12"], ids=lambda t: t or "local")
def test_line_probe_once_per_statement(toolchain: str | None) -> None:
    """Go 1.22 and 1.24 split the loop line's statement in two runs (around the loop's
    increment): only the run DWARF marks as the statement start is probed, so one
    execution is one hit."""
    b = built(toolchain)
    loop = b.report["lines"]["loop"]  # type: ignore[index]
    with GoBinary.open(str(b.path)) as go:
        r = resolve(go, f"eventfixture/workload.go:{loop['line']}")
        bounds = go.function_bounds(b.report["functions"]["loop"])  # type: ignore[index]
    assert bounds is not None
    rows = _stmt_rows(b.path, loop["line"], *bounds)
    stmts = sorted(a for a, is_stmt in rows.items() if is_stmt)
    assert stmts, rows
    assert sorted(s.pc for s in r.sites) == stmts
