"""Go types from DWARF, read on demand into a TypeTable (the model in gotypes.py).

How Go's linker describes types (cmd/link/internal/ld/dwarf.go, checked on Go 1.22,
1.24 and 1.26 binaries):

- Every type DIE carries DW_AT_go_kind (0x2900, a reflect.Kind) and
  DW_AT_go_runtime_type (0x2904); slices, strings and interfaces are structures told
  apart only by that kind. Internal types the linker synthesizes (`hash<K,V>`,
  `map<K,V>`, `hchan<T>`) have kind 0 or struct.
- A named struct is a DW_TAG_typedef "main.T" pointing at a structure "main.T":
  the typedef is only an alias. A named scalar (`type Color int`) is a base type named
  "main.Color". Maps, chans and interfaces are typedefs WITH a kind: the typedef is
  the type (`map[string]int`, `main.Labels`), and its DW_AT_type points at the
  runtime's representation (`*hash<K,V>` before Go 1.24, `*map<K,V>` for Swiss
  maps, `*hchan<T>`, `runtime.eface` / `runtime.iface`). Keys and elements come from
  DW_AT_go_key (0x2901) and DW_AT_go_elem (0x2902).
- In a generic function's shape instantiation, a parameter of type T points at a
  typedef ".paramN" local to the subprogram (with DW_AT_go_dict_index, 0x2906), an
  alias of the shape type (`go.shape.int`).
- DW_AT_go_runtime_type is the offset of the runtime type from `runtime.types` on all
  three versions, except that Go 1.22 writes `uintptr`'s as an absolute address. The
  table stores absolute addresses (what an interface's type word holds).

Reading a type reads the types it reaches (fields, elements, map internals) through a
work list, so recursive types and long chains cost no Python recursion.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo

from ..errors import BinaryError
from .dies import DieIndex, die_name
from .gotypes import Field, GoType, Kind, MapImpl, TypeTable

AT_GO_KIND = 0x2900
AT_GO_KEY = 0x2901
AT_GO_ELEM = 0x2902
AT_GO_EMBEDDED_FIELD = 0x2903
AT_GO_RUNTIME_TYPE = 0x2904
AT_GO_DICT_INDEX = 0x2906

# reflect.Kind numbers -> the model's kinds.
_REFLECT_KINDS: dict[int, Kind] = {
    1: "bool",
    **{k: "int" for k in range(2, 7)},
    **{k: "uint" for k in range(7, 13)},
    13: "float",
    14: "float",
    15: "complex",
    16: "complex",
    17: "array",
    18: "chan",
    19: "func",
    20: "interface",
    21: "map",
    22: "pointer",
    23: "slice",
    24: "string",
    25: "struct",
    26: "unsafe_pointer",
}
_KIND_MASK = 0x1F  # the runtime keeps flags above the kind bits

# DW_ATE_* encodings of base types, for DIEs without a Go kind.
_ENCODINGS: dict[int, Kind] = {
    2: "bool",
    3: "complex",
    4: "float",
    5: "int",
    6: "int",
    7: "uint",
    8: "uint",
}

_TYPE_TAGS = (
    "DW_TAG_typedef",
    "DW_TAG_base_type",
    "DW_TAG_structure_type",
    "DW_TAG_pointer_type",
    "DW_TAG_array_type",
    "DW_TAG_subroutine_type",
)


class TypeReaderError(ValueError):
    """A type DIE this reader does not understand."""


def _attrs(die: DIE) -> dict[Any, Any]:
    """The DIE's attributes; pyelftools keys Go's own attributes by number."""
    attrs: dict[Any, Any] = die.attributes
    return attrs


def _attr(die: DIE, key: int | str) -> Any:
    a = _attrs(die).get(key)
    return None if a is None else a.value


# Package paths in a DWARF type name; the runtime's names carry the package name only,
# and a type local to a function has no "·N" there.
_PATHS = re.compile(r"[A-Za-z0-9_.~%-]*/")
_LOCAL = re.compile(r"·\d+")
_LEAD = re.compile(r"^(?:\*|\[\d*\])+")  # *T, []T, [4]T: T
# Composite types without a package (map[int]string, struct {}), found by these starts too.
COMPOSITES = ("map[", "struct {")
# internal/abi.Type (Go 1.21 on; runtime._type before, same layout since 1.17): the
# TFlag byte and the Str name offset.
_TYPE_TFLAG = 20
_TYPE_STR = 40
_TFLAG_EXTRA_STAR = 2


def runtime_type_name(
    read: Callable[[int, int], bytes], addr: int, types_base: int | None
) -> str | None:
    """The name the runtime gives the type at addr (a leading "*" it stores but does
    not mean, TFlagExtraStar, removed); None if it cannot be read."""
    if types_base is None:
        return None
    try:
        head = read(addr, _TYPE_STR + 4)
        tflag = head[_TYPE_TFLAG]
        at = types_base + int.from_bytes(head[_TYPE_STR : _TYPE_STR + 4], "little", signed=True)
        data = read(at, 12)  # a flag byte, then the length as a varint
        n, shift, i = 0, 0, 1
        while i < len(data):
            b = data[i]
            n |= (b & 0x7F) << shift
            i += 1
            if b < 0x80:
                break
            shift += 7
        name = read(at + i, n).decode("utf-8", "replace")
    except (IndexError, ValueError, OSError, BinaryError):
        return None
    return name[1:] if tflag & _TFLAG_EXTRA_STAR and name.startswith("*") else name


def _go_kind(die: DIE) -> int:
    value = _attr(die, AT_GO_KIND)
    return int(value) & _KIND_MASK if value else 0


class TypeReader:
    """Reads Go types from one binary's DWARF into `self.table`, on demand.

    `types_base` is the address of `runtime.types`: with it, runtime_type fields hold
    absolute addresses; without it they stay None (lookup_runtime_type then finds
    nothing).
    """

    def __init__(self, dwarf: DWARFInfo, types_base: int | None = None) -> None:
        self.dwarf = dwarf
        self.types_base = types_base
        self.table = TypeTable()
        self._dies: DieIndex | None = None
        self._by_runtime_type: dict[int, int] | None = None
        self._all_indexed = False
        self.index_seconds: float | None = None  # time spent indexing runtime types so far

    # -- public ---------------------------------------------------------------------

    def read(self, die_offset: int) -> int:
        """The type id of the type DIE at die_offset, reading it (and what it reaches)."""
        first = self._canonical(self._die(die_offset))
        pending = [first]
        while pending:
            die = pending.pop()
            if die.offset in self.table.types:
                continue
            t = self._build(die, pending)
            self.table.types[t.id] = t
            if t.runtime_type is not None:
                self.table.by_runtime_type.setdefault(t.runtime_type, t.id)
        return first.offset

    def type_by_name(self, name: str) -> int | None:
        """The type named `name` as Go spells it ("time.Time", "*main.User", "[]int")."""
        if self._dies is None:
            self._dies = DieIndex(self.dwarf)
        die = self._dies.find(name, _TYPE_TAGS)
        return None if die is None else self.read(die.offset)

    def lookup_runtime_type(self, addr: int) -> int | None:
        """The type whose runtime type (`*_type`, as in an interface's type word) is at addr.

        The first call indexes every top-level type DIE that has a runtime type: the
        "runtime" unit first (where Go's linker puts the types), the rest only if needed.
        """
        if addr in self.table.by_runtime_type:
            return self.table.by_runtime_type[addr]
        if self.types_base is None:
            return None
        if self._by_runtime_type is None:
            self._by_runtime_type = {}
            self._index_units(lambda name: name == "runtime")
        offset = self._by_runtime_type.get(addr)
        if offset is None and not self._all_indexed:
            self._index_units(lambda name: name != "runtime")
            self._all_indexed = True
            offset = self._by_runtime_type.get(addr)
        return None if offset is None else self.read(offset)

    def named_types(self) -> list[tuple[str, int]]:
        """(name, DIE offset) of every type with a runtime type in the "runtime" unit
        (where the linker puts them), without reading the types themselves."""
        if self.types_base is None:
            return []
        if self._by_runtime_type is None:
            self._by_runtime_type = {}
            self._index_units(lambda name: name == "runtime")
        out = []
        for offset in self._by_runtime_type.values():
            name = die_name(self._die(offset))
            if name:
                out.append((name, offset))
        return out

    def index_packages(self, packages: set[str]) -> None:
        """Index the runtime types of the "runtime" unit and of these packages' units,
        then look no further: lookup_runtime_type answers None for other types rather
        than walking every unit at the first miss. For dynamic events, whose decoding
        runs while events keep coming and must not stall for seconds."""
        if self.types_base is None:
            return
        if self._by_runtime_type is None:
            self._by_runtime_type = {}
            self._index_units(lambda name: name == "runtime")
        if not self._all_indexed:
            self._index_units(lambda name: name in packages)
            self._all_indexed = True

    def named_types_like(
        self,
        prefixes: tuple[str, ...],
        names: tuple[str, ...],
        limit: int,
        read: Callable[[int, int], bytes],
    ) -> list[tuple[str, int]]:
        """(name, DIE offset) of the types with a runtime type, in the "runtime" units,
        whose name less its leading `*`, `[]`, `[N]` starts with one of `prefixes` or is
        one of `names`; at most `limit`. Found by searching .debug_info's bytes for
        the names (inline strings in Go's DWARF, see dies.py): only the DIEs of those
        types are parsed, not the ~100,000 of the units (named_types). A name found
        in the middle of another ("bool" in "func() bool", whose abbreviation code
        may read as a space) parses as a DIE of that other type: its runtime type,
        read from the binary's image with `read`, has the other's name, so it is
        left out."""
        if self.types_base is None:
            return []
        if self._dies is None:
            self._dies = DieIndex(self.dwarf)
        units = self._runtime_units()
        out: list[tuple[str, int]] = []
        seen: set[int] = set()

        def accept(die: DIE) -> bool:
            name = die_name(die) or ""
            base = _LEAD.sub("", name)
            raw = _attr(die, AT_GO_RUNTIME_TYPE)
            composite = base.startswith(COMPOSITES) and "." not in base
            if not raw or not (base.startswith(prefixes) or base in names or composite):
                return False
            rname = runtime_type_name(read, self._runtime_address(int(raw)), self.types_base)
            return rname == _LOCAL.sub("", _PATHS.sub("", name))

        for word in (*prefixes, *(n + "\x00" for n in names), *COMPOSITES):
            for die in self._dies.named_in(word, units, accept, lead=b"*[]0123456789"):
                if die.offset not in seen:
                    seen.add(die.offset)
                    out.append((die_name(die) or "", die.offset))
                    if len(out) >= limit:
                        return out
        return out

    def _runtime_units(self) -> list[tuple[int, int]]:
        """[start, end) in .debug_info of the units named "runtime" (the linker's
        types are there)."""
        out = []
        for cu in self.dwarf.iter_CUs():
            if die_name(cu.get_top_DIE()) == "runtime":
                out.append((cu.cu_offset, cu.cu_offset + cu.size))
        return out

    # -- internals ------------------------------------------------------------------

    def _index_units(self, wanted: Callable[[str], bool]) -> None:
        assert self._by_runtime_type is not None
        t0 = time.perf_counter()
        for cu in self.dwarf.iter_CUs():
            top = cu.get_top_DIE()
            if not wanted(die_name(top) or ""):
                continue
            for die in top.iter_children():
                raw = _attr(die, AT_GO_RUNTIME_TYPE)
                if raw:
                    self._by_runtime_type.setdefault(self._runtime_address(int(raw)), die.offset)
        self.index_seconds = (self.index_seconds or 0.0) + time.perf_counter() - t0

    def _runtime_address(self, raw: int) -> int:
        assert self.types_base is not None
        # An offset from runtime.types, or already an address (Go 1.22's uintptr).
        return raw if raw >= self.types_base else self.types_base + raw

    def _die(self, offset: int) -> DIE:
        die: DIE = self.dwarf.get_DIE_from_refaddr(offset)
        return die

    def _target(self, die: DIE) -> DIE | None:
        if "DW_AT_type" not in die.attributes:
            return None
        target: DIE = die.get_DIE_from_attribute("DW_AT_type")
        return target

    def _canonical(self, die: DIE) -> DIE:
        """Follow typedefs that are mere aliases: same name as their target (named
        structs), or a generic dictionary parameter (".paramN" -> the shape type)."""
        for _ in range(64):
            if die.tag != "DW_TAG_typedef" or _go_kind(die):
                return die
            target = self._target(die)
            if target is None:
                return die
            if (
                die_name(die) == die_name(target)
                or AT_GO_DICT_INDEX in _attrs(die)
                or (die_name(die) or "").startswith(".")
            ):
                die = target
                continue
            return die
        raise TypeReaderError(f"typedef loop at DIE {die.offset:#x}")

    def _shape(self, die: DIE) -> DIE:
        """The DIE that describes the layout: below every kind-less typedef."""
        for _ in range(64):
            if die.tag != "DW_TAG_typedef" or _go_kind(die):
                return die
            target = self._target(die)
            if target is None:
                return die
            die = target
        raise TypeReaderError(f"typedef loop at DIE {die.offset:#x}")

    def _ref(self, die: DIE | None, pending: list[DIE]) -> int | None:
        if die is None:
            return None
        c = self._canonical(die)
        if c.offset not in self.table.types:
            pending.append(c)
        return c.offset

    def _ref_attr(self, die: DIE, key: int | str, pending: list[DIE]) -> int | None:
        attr = _attrs(die).get(key)
        if attr is None:
            return None
        if key == "DW_AT_type":
            return self._ref(self._target(die), pending)
        offset = int(attr.value)
        if attr.form in (
            "DW_FORM_ref1",
            "DW_FORM_ref2",
            "DW_FORM_ref4",
            "DW_FORM_ref8",
            "DW_FORM_ref_udata",
        ):
            offset += die.cu.cu_offset
        return self._ref(self._die(offset), pending)

    def _kind(self, shape: DIE, name: str) -> Kind:
        k = _go_kind(shape)
        if k in _REFLECT_KINDS:
            return _REFLECT_KINDS[k]
        tag = shape.tag
        if tag == "DW_TAG_base_type":
            enc = _attr(shape, "DW_AT_encoding")
            if enc in _ENCODINGS:
                return _ENCODINGS[enc]
        elif tag == "DW_TAG_pointer_type":
            return (
                "unsafe_pointer"
                if name == "unsafe.Pointer" or self._target(shape) is None
                else "pointer"
            )
        elif tag == "DW_TAG_structure_type":
            return "struct"
        elif tag == "DW_TAG_array_type":
            return "array"
        elif tag == "DW_TAG_subroutine_type":
            return "func"
        raise TypeReaderError(
            f"DIE {shape.offset:#x} ({shape.tag} {name!r}) is not a Go type this reader knows"
        )

    def _build(self, die: DIE, pending: list[DIE]) -> GoType:
        shape = self._shape(die)
        name = die_name(die) or die_name(shape) or f"<type {die.offset:#x}>"
        kind = self._kind(shape, name)
        raw_rt = _attr(die, AT_GO_RUNTIME_TYPE) or _attr(shape, AT_GO_RUNTIME_TYPE)
        runtime_type = (
            self._runtime_address(int(raw_rt)) if raw_rt and self.types_base is not None else None
        )
        size = _attr(shape, "DW_AT_byte_size")
        fields: tuple[Field, ...] = ()
        elem = key = map_header = None
        map_impl: MapImpl | None = None
        count = 0
        if kind == "struct":
            fields = self._fields(shape, pending)
        elif kind == "pointer":
            elem = self._ref_attr(shape, "DW_AT_type", pending)
        elif kind == "slice":
            elem = self._ref_attr(shape, AT_GO_ELEM, pending)
            if elem is None:  # from the `array` member's pointer type
                for child in shape.iter_children():
                    if die_name(child) == "array":
                        ptr = self._target(child)
                        elem = None if ptr is None else self._ref(self._target(ptr), pending)
        elif kind == "array":
            elem = self._ref_attr(shape, "DW_AT_type", pending)
            count = self._array_count(shape)
        elif kind == "chan":
            elem = self._ref_attr(shape, AT_GO_ELEM, pending)
            size = 8
        elif kind == "map":
            key = self._ref_attr(shape, AT_GO_KEY, pending)
            elem = self._ref_attr(shape, AT_GO_ELEM, pending)
            ptr = self._target(shape)
            header = None if ptr is None else self._target(ptr)
            if header is not None:
                header = self._canonical(header)
                map_header = self._ref(header, pending)
                hname = die_name(header) or ""
                map_impl = (
                    "swiss"
                    if hname.startswith("map<")
                    else "buckets"
                    if hname.startswith("hash<")
                    else None
                )
            size = 8
        elif kind == "interface":
            size = 16
            rep = self._shape(self._target(shape) or shape)
            rep_name = die_name(rep) or ""
            kind = (
                "eface"
                if rep_name == "runtime.eface" or name in ("interface {}", "any")
                else "interface"
            )
        elif kind == "func":
            size = 8
        return GoType(
            id=die.offset,
            name=name,
            kind=kind,
            size=int(size) if size is not None else 8,
            fields=fields,
            elem=elem,
            key=key,
            count=count,
            runtime_type=runtime_type,
            map_header=map_header,
            map_impl=map_impl,
        )

    def _fields(self, struct: DIE, pending: list[DIE]) -> tuple[Field, ...]:
        out: list[Field] = []
        for child in struct.iter_children():
            if child.tag != "DW_TAG_member":
                continue
            loc = _attr(child, "DW_AT_data_member_location")
            type_id = self._ref_attr(child, "DW_AT_type", pending)
            if not isinstance(loc, int) or type_id is None:
                raise TypeReaderError(
                    f"member {die_name(child)!r} at {child.offset:#x} has no offset or type"
                )
            out.append(
                Field(
                    name=die_name(child) or "",
                    offset=loc,
                    type=type_id,
                    embedded=bool(_attr(child, AT_GO_EMBEDDED_FIELD)),
                )
            )
        return tuple(out)

    @staticmethod
    def _array_count(array: DIE) -> int:
        for child in array.iter_children():
            if child.tag != "DW_TAG_subrange_type":
                continue
            count = _attr(child, "DW_AT_count")
            if isinstance(count, int):
                return count
            upper = _attr(child, "DW_AT_upper_bound")
            if isinstance(upper, int):
                return upper + 1
        return 0
