"""`when` conditions (parsed and type-checked before anything is attached) and where
values live at a probed pc: parameters in registers at an entry, results in the
registers Go's ABI gives them at a RET (DWARF often says "optimized out" there).
The truth is the eventfixture's own signatures (tests/go/README.md) and DWARF."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from sideeye_tui.bpf import event_probe as ep
from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.events.conditions import ConditionError, Term, compile_terms, parse_when
from sideeye_tui.events.locations import KIND_ENTRY, KIND_RETURN, resolve
from sideeye_tui.values.at_pc import INT_REGISTERS, PIECE_REG, EventValuesCompiler
from tests.go.build import EVENTFIXTURE, build_go


def test_parse_groups_and_literals() -> None:
    assert parse_when("p", 'name == "call-3" || n > 40 && req.ID <= -2') == [
        Term("name", "==", "call-3", 0),
        Term("n", ">", 40, 1),
        Term("req.ID", "<=", -2, 1),
    ]
    assert parse_when("p", 'ok != false && s == "a || b && c"') == [
        Term("ok", "!=", False, 0),
        Term("s", "==", "a || b && c", 0),
    ]


@pytest.mark.parametrize(
    "bad",
    ["len(tags) > n", "n > m", "n", "n >> 3", "1 == n", 'name == "x', "n == 1 ||", "a.b( == 1"],
)
def test_unsupported_is_one_line(bad: str) -> None:
    with pytest.raises(ConditionError) as e:
        parse_when("main.handle", bad)
    assert "\n" not in str(e.value) and "main.handle" in str(e.value)


@functools.cache
def fixture() -> Path:
    return build_go(EVENTFIXTURE, toolchain=None, stripped=False)


@pytest.mark.go
def test_condition_types_checked_against_dwarf() -> None:
    with GoBinary.open(str(fixture())) as go:
        entry = next(s for s in resolve(go, "main.handle").sites if s.kind == KIND_ENTRY)
        comp = EventValuesCompiler(go)
        ok = compile_terms("h", parse_when("h", 'n >= 0 && name != "x"'), comp, entry.pc, False)
        assert [c.kind for c in ok] == [ep.COND_INT, ep.COND_STRING]
        assert ok[1].len == 1 and ok[1].sval[0] == ord("x")
        for bad in ('name < "b"', 'n == "3"', "name == 3", "req.User == 1"):
            with pytest.raises(ConditionError):
                compile_terms("h", parse_when("h", bad), comp, entry.pc, False)


@pytest.mark.go
def test_parameters_in_abi_registers_at_entry() -> None:
    """handle(req *Request, name string, n int, tags []string): req in RAX, name in
    RBX:RCX, n in RDI, tags in RSI:R8:R9, the ABI's order."""
    with GoBinary.open(str(fixture())) as go:
        entry = next(s for s in resolve(go, "main.handle").sites if s.kind == KIND_ENTRY)
        roots = EventValuesCompiler(go).compile(
            entry.pc, ("req", "name", "n", "tags"), False, False
        )
    regs = [[reg for kind, reg, _off in r.pieces if kind == PIECE_REG] for r in roots]
    assert regs == [
        [INT_REGISTERS[0]],
        list(INT_REGISTERS[1:3]),
        [INT_REGISTERS[3]],
        list(INT_REGISTERS[4:7]),
    ]
    assert all(r.unavailable is None for r in roots)


@pytest.mark.go
def test_results_by_the_abi_at_every_ret() -> None:
    """handle returns (int, error): ~r0 in RAX, ~r1 (itab, data) in RBX:RCX at each RET,
    whatever DWARF's location lists say there."""
    with GoBinary.open(str(fixture())) as go:
        rets = [s for s in resolve(go, "main.handle").sites if s.kind == KIND_RETURN]
        comp = EventValuesCompiler(go)
        assert rets
        for s in rets:
            r0, r1 = comp.compile(s.pc, ("~r0", "~r1"), True, False)
            assert r0.unavailable is None and r1.unavailable is None
            assert [p[1] for p in r0.pieces] == [INT_REGISTERS[0]]
            assert [p[1] for p in r1.pieces] == list(INT_REGISTERS[1:3])
            assert r0.size == 8 and r1.size == 16


@pytest.mark.go
def test_values_of_a_stripped_binary_say_dwarf() -> None:
    stripped = build_go(EVENTFIXTURE, toolchain=None, stripped=True)
    with GoBinary.open(str(stripped)) as go:
        entry = next(s for s in resolve(go, "main.handle").sites if s.kind == KIND_ENTRY)
        (root,) = EventValuesCompiler(go).compile(entry.pc, ("n",), False, False)
    assert root.unavailable is not None and "DWARF" in root.unavailable
