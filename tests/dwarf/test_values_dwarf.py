"""Types and variable locations from DWARF, on valuesfixture built with each toolchain.

The truth is the fixture's own READY report (which variables each holder function
has, their values) and the Go source (type names). Locations are checked at the
return address of the call each holder is parked in (found by disassembling the
holder), where every variable the fixture keeps alive must be in a stack slot.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import capstone
import pytest

from sideeye_tui.dwarf.binary import GoBinary
from sideeye_tui.dwarf.gotypes import GoType, Location
from sideeye_tui.dwarf.typereader import TypeReader
from sideeye_tui.dwarf.variables import (
    NOT_IN_SCOPE,
    OUTSIDE_FUNCTION,
    FunctionVariables,
    function_variables,
)
from sideeye_tui.errors import BinaryError

from ..go.build import TOOLCHAINS, VALUESFIXTURE, build_go, go_binary, start_fixture

pytestmark = [
    pytest.mark.go,
    pytest.mark.skipif(go_binary() is None, reason="no go command"),
]

# Holder name in the report -> the function's name in DWARF and the symbol table.
DWARF_NAMES = {
    "scalars/a": "main.holdScalars",
    "strings": "main.holdStrings",
    "times": "main.holdTimes",
    "pointers": "main.holdPointers",
    "aggregates": "main.holdAggregates",
    "maps": "main.holdMaps",
    "interfaces": "main.holdInterfaces",
    "chans": "main.holdChans",
    "generic/int": "main.holdGeneric[go.shape.int]",
    "generic/string": "main.holdGeneric[go.shape.string]",
    "method": "main.(*Server).handle",
    "closure": "main.startClosure.func1",
    "outer": "main.holdOuter",
    "inner": "main.holdInner",
    "shadow": "main.holdShadow",
}
# Where each holder waits: the receive that parks it, or (outer) the call down to it.
PARK_CALLS = ("runtime.chanrecv1", "main.nestMid1")
# A variable's name in DWARF when it differs from the report's (captured by reference).
DWARF_VAR = {("closure", "hits"): "&hits"}

# (function, variable) -> (type name, kind), from the fixture's source.
TYPES = {
    ("main.holdScalars", "label"): ("string", "string"),
    ("main.holdScalars", "b"): ("bool", "bool"),
    ("main.holdScalars", "i8"): ("int8", "int"),
    ("main.holdScalars", "i64"): ("int64", "int"),
    ("main.holdScalars", "u16"): ("uint16", "uint"),
    ("main.holdScalars", "u64"): ("uint64", "uint"),
    ("main.holdScalars", "up"): ("uintptr", "uint"),
    ("main.holdScalars", "f32"): ("float32", "float"),
    ("main.holdScalars", "c128"): ("complex128", "complex"),
    ("main.holdScalars", "color"): ("main.Color", "int"),
    ("main.holdScalars", "d"): ("time.Duration", "int"),
    ("main.holdStrings", "raw"): ("[]uint8", "slice"),
    ("main.holdTimes", "utc"): ("time.Time", "struct"),
    ("main.holdStrings", "words"): ("[]string", "slice"),
    ("main.holdPointers", "req"): ("*main.Request", "pointer"),
    ("main.holdPointers", "pp"): ("**main.User", "pointer"),
    ("main.holdPointers", "list"): ("*main.Node", "pointer"),
    ("main.holdPointers", "tagCount"): ("int", "int"),
    ("main.holdAggregates", "settings"): ("main.Settings", "struct"),
    ("main.holdAggregates", "arr"): ("[4]int", "array"),
    ("main.holdAggregates", "points"): ("[2]main.Point", "array"),
    ("main.holdAggregates", "users"): ("[]*main.User", "slice"),
    ("main.holdAggregates", "ids"): ("main.IDs", "slice"),
    ("main.holdMaps", "counts"): ("map[string]int", "map"),
    ("main.holdMaps", "names"): ("map[int]string", "map"),
    ("main.holdMaps", "users"): ("map[string]*main.User", "map"),
    ("main.holdMaps", "labels"): ("main.Labels", "map"),
    ("main.holdInterfaces", "anyInt"): ("interface {}", "eface"),
    ("main.holdInterfaces", "errBoom"): ("error", "interface"),
    ("main.holdInterfaces", "stringer"): ("fmt.Stringer", "interface"),
    ("main.holdChans", "buffered"): ("chan int", "chan"),
    ("main.holdChans", "fn"): ("func() int", "func"),
    ("main.holdGeneric[go.shape.int]", "v"): ("go.shape.int", "int"),
    ("main.holdGeneric[go.shape.string]", "v"): ("go.shape.string", "string"),
    ("main.(*Server).handle", "s"): ("*main.Server", "pointer"),
    ("main.startClosure.func1", "name"): ("string", "string"),
    ("main.startClosure.func1", "&hits"): ("*int", "pointer"),
}


@dataclass
class Built:
    toolchain: str | None
    path: Path
    binary: GoBinary
    report: dict[str, Any]

    @property
    def minor(self) -> int:
        return int(self.binary.go_version.split(".")[1])

    def holder(self, name: str) -> dict[str, Any]:
        return next(h for h in self.report["holders"] if h["name"] == name)

    def variables(self, holder: str) -> FunctionVariables:
        fv = function_variables(self.binary, DWARF_NAMES[holder])
        assert fv is not None, DWARF_NAMES[holder]
        return fv


@pytest.fixture(scope="module", params=TOOLCHAINS, ids=lambda t: t or "local")
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    toolchain = request.param
    path = build_go(VALUESFIXTURE, toolchain)
    with start_fixture(path, "-lifetime", "2m") as fx:
        report = fx.report
    assert report["settled"] is True
    binary = GoBinary.open(str(path), cache_dir=str(tmp_path_factory.mktemp("cache")))
    yield Built(toolchain, path, binary, report)
    binary.close()


def park_pcs(b: Built, fv: FunctionVariables) -> list[int]:
    """Return addresses of the calls in fv's function to the functions it parks in."""
    targets = {b.binary.function_entry(name) for name in PARK_CALLS} - {None}
    lo, hi = fv.pc_range
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    out = []
    for ins in md.disasm(b.binary.read_static(lo, hi - lo), lo):
        if (
            ins.mnemonic == "call"
            and ins.op_str.startswith("0x")
            and int(ins.op_str, 16) in targets
        ):
            out.append(ins.address + ins.size)
    return out


def test_function_names_and_ranges(built: Built) -> None:
    for holder, name in DWARF_NAMES.items():
        fv = built.variables(holder)
        assert fv.name == name
        assert fv.entry_pc == built.binary.function_entry(name)
        lo, hi = fv.pc_range
        bounds = built.binary.function_bounds(name)
        assert bounds is not None and lo == bounds[0] and lo < hi <= bounds[1]
    assert function_variables(built.binary, "main.noSuchFunction") is None
    # A name the runtime prints is not a DWARF name: the generic needs its shape.
    assert function_variables(built.binary, "main.holdGeneric[...]") is None


def test_every_reported_variable_is_found_with_its_type(built: Built) -> None:
    checked = 0
    for holder, fname in DWARF_NAMES.items():
        fv = built.variables(holder)
        names = fv.names()
        assert len(names) == len(set(names))
        for var in built.holder(holder)["values"]:
            assert DWARF_VAR.get((holder, var), var) in names, (holder, var, names)
        vars_at = fv.at(fv.entry_pc)
        for (func, var), (type_name, kind) in TYPES.items():
            if func != fname:
                continue
            t = fv.types[vars_at[var].type]
            assert (t.name, t.kind) == (type_name, kind), (func, var)
            checked += 1
    assert checked == len(TYPES)


def test_roles(built: Built) -> None:
    scalars = built.variables("scalars/a").at(built.variables("scalars/a").entry_pc)
    assert scalars["label"].role == "param" and scalars["h"].role == "local"
    closure = built.variables("closure").at(built.variables("closure").entry_pc)
    assert closure["count"].role == "local"  # captured variables are locals of the closure
    method = built.variables("method").at(built.variables("method").entry_pc)
    assert method["s"].role == "param" and method["req"].role == "param"


def location_size(loc: Location) -> int:
    return sum(p.size for p in loc.pieces)


def test_stack_locations_at_the_park(built: Built) -> None:
    """At the return pc of the parking call, every variable the holder keeps alive is
    on the stack, whole, in distinct slots."""
    for holder in DWARF_NAMES:
        fv = built.variables(holder)
        pcs = park_pcs(built, fv)
        assert len(pcs) == 1, (holder, pcs)
        at = fv.at(pcs[0])
        slots: set[int] = set()
        for var in built.holder(holder)["values"]:
            v = at[DWARF_VAR.get((holder, var), var)]
            assert v.location is not None and v.location.on_stack, (holder, var, v)
            assert location_size(v.location) == fv.types[v.type].size, (holder, var)
            for p in v.location.pieces:
                assert p.cfa_offset is not None
                for b in range(p.cfa_offset, p.cfa_offset + p.size):
                    assert b not in slots, (holder, var, "overlaps another variable")
                    slots.add(b)


def test_registers_at_entry(built: Built) -> None:
    """At the entry pc the register ABI's arguments are in registers: a string in two
    (RAX=0 and RBX=3 in DWARF numbering), the first integer in RAX."""
    fv = built.variables("scalars/a")
    label = fv.at(fv.entry_pc)["label"]
    assert label.location is not None
    assert [(p.register, p.size) for p in label.location.pieces] == [(0, 8), (3, 8)]
    inner = built.variables("inner")
    assert [(p.register, p.size) for p in loc(inner, inner.entry_pc, "innerID").pieces] == [(0, 8)]


def loc(fv: FunctionVariables, pc: int, name: str) -> Location:
    v = fv.at(pc)[name]
    assert v.location is not None, (name, v.reason)
    return v.location


def test_shadowing_and_scope(built: Built) -> None:
    fv = built.variables("shadow")
    (park,) = park_pcs(built, fv)
    inner = fv.at(park)["x"]
    assert fv.types[inner.type].name == "string" and inner.role == "local"
    outer = fv.at(fv.entry_pc)["x"]
    assert fv.types[outer.type].name == "int" and outer.role == "param"
    # The range loop's variable of holdAggregates is out of scope at its park.
    agg = built.variables("aggregates")
    (agg_park,) = park_pcs(built, agg)
    n = agg.at(agg_park)["n"]
    assert n.location is None and n.reason == NOT_IN_SCOPE
    assert all(v.reason == OUTSIDE_FUNCTION for v in agg.at(agg.pc_range[1] + 16).values())


def test_dwarf_versions(built: Built) -> None:
    """Go 1.22 and 1.24 emit DWARF 4; 1.25 on, DWARF 5 (.debug_loclists, .debug_rnglists)."""
    fv = built.variables("scalars/a")
    assert fv.die.cu.header.version == (5 if built.minor >= 25 else 4)


def field_map(table_get: Any, t: GoType) -> dict[str, tuple[int, str, bool]]:
    return {f.name: (f.offset, table_get(f.type).name, f.embedded) for f in t.fields}


def test_struct_pointer_and_named_types(built: Built) -> None:
    r = TypeReader(built.binary.dwarf_info(), built.binary.runtime_types_base())
    get = r.table.__getitem__
    req_ptr = get(must(r.type_by_name("*main.Request")))
    assert (req_ptr.kind, req_ptr.size) == ("pointer", 8)
    req = get(must(req_ptr.elem))
    assert req.name == "main.Request" and req.kind == "struct" and req.size == 80
    assert field_map(get, req) == {
        "ID": (0, "string", False),
        "User": (16, "*main.User", False),
        "Start": (24, "time.Time", False),
        "Tags": (48, "[]string", False),
        "Meta": (72, "map[string]string", False),
    }
    settings = get(must(r.type_by_name("main.Settings")))
    assert field_map(get, settings)["Base"] == (0, "main.Base", True)
    assert field_map(get, settings)["limit"] == (40, "int", False)
    node = get(must(r.type_by_name("main.Node")))
    next_ptr = get(node.fields[1].type)
    assert next_ptr.elem == node.id  # a recursive type refers to itself by id
    arr = get(must(r.type_by_name("[2]main.Point")))
    assert (arr.count, arr.size, get(must(arr.elem)).name) == (2, 32, "main.Point")
    color = get(must(r.type_by_name("main.Color")))
    assert (color.kind, color.size) == ("int", 8)
    ids = get(must(r.type_by_name("main.IDs")))
    assert (ids.kind, get(must(ids.elem)).name) == ("slice", "int")
    ch = get(must(r.type_by_name("chan int")))
    assert (ch.kind, get(must(ch.elem)).name) == ("chan", "int")


def must(x: int | None) -> int:
    assert x is not None
    return x


def test_maps(built: Built) -> None:
    r = TypeReader(built.binary.dwarf_info(), built.binary.runtime_types_base())
    get = r.table.__getitem__
    swiss = built.minor >= 24
    for name, key, value in (
        ("map[string]int", "string", "int"),
        ("map[int]string", "int", "string"),
        ("main.Labels", "string", "string"),
    ):
        m = get(must(r.type_by_name(name)))
        assert (m.kind, m.size) == ("map", 8)
        assert (get(must(m.key)).name, get(must(m.elem)).name) == (key, value)
        header = get(must(m.map_header))
        assert m.map_impl == ("swiss" if swiss else "buckets")
        assert header.name == (f"map<{key},{value}>" if swiss else f"hash<{key},{value}>")
        fields = {f.name for f in header.fields}
        assert ({"used", "dirPtr", "dirLen"} if swiss else {"count", "B", "buckets"}) <= fields


def read_rtype(b: GoBinary, addr: int) -> tuple[int, int]:
    """(size, reflect kind) of the runtime type at addr, from the binary's image."""
    raw = b.read_static(addr, 24)
    return struct.unpack_from("<Q", raw)[0], raw[23] & 0x1F


def test_runtime_types(built: Built) -> None:
    """runtime_type is the absolute address of the type's descriptor, and maps back."""
    b = built.binary
    r = TypeReader(b.dwarf_info(), b.runtime_types_base())
    kinds = {
        "main.User": 25,
        "*main.MyErr": 22,
        "int": 2,
        "uintptr": 12,
        "string": 24,
        "main.Color": 2,
    }
    addrs = {}
    for name, kind in kinds.items():
        t = r.table[must(r.type_by_name(name))]
        assert t.runtime_type is not None, name
        assert read_rtype(b, t.runtime_type) == (t.size, kind), name
        addrs[name] = t.runtime_type
    fresh = TypeReader(b.dwarf_info(), b.runtime_types_base())
    for name, addr in addrs.items():
        found = fresh.lookup_runtime_type(addr)
        assert found is not None and fresh.table[found].name == name
    assert fresh.index_seconds is not None
    assert fresh.lookup_runtime_type(1) is None


def test_stripped_binary_has_no_dwarf() -> None:
    with (
        GoBinary.open(str(build_go(VALUESFIXTURE, stripped=True))) as b,
        pytest.raises(BinaryError, match="no DWARF"),
    ):
        function_variables(b, "main.holdScalars")
