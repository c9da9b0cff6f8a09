"""Go types and variables as the value capture needs them, read from the binary's DWARF.

This module is the model only (plain dataclasses); `typereader.py` fills a TypeTable
from DWARF lazily, `variables.py` finds a function's variables and where each lives
at a pc. The capture plan (capture/values/) and the decoder only use this model.

A type is identified by the offset of its DIE in .debug_info (after following
typedefs that Go emits only as aliases). Recursive types (a linked list) are fine:
fields and elements refer to types by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal[
    "bool",
    "int",  # signed integers of any size
    "uint",  # unsigned integers, uintptr
    "float",
    "complex",
    "string",
    "pointer",
    "unsafe_pointer",
    "struct",
    "array",
    "slice",
    "map",
    "chan",
    "interface",  # non-empty interface: (itab, data)
    "eface",  # empty interface `any`: (type, data)
    "func",
]

MapImpl = Literal["swiss", "buckets"]


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    type: int  # type id
    embedded: bool = False


@dataclass(frozen=True)
class GoType:
    id: int  # DIE offset
    name: str  # Go's spelling: "main.Request", "*main.Request", "[]string", "map[string]int"
    kind: Kind
    size: int
    fields: tuple[Field, ...] = ()  # struct
    elem: int | None = None  # pointer, slice, array, chan: element type; map: value type
    key: int | None = None  # map: key type
    count: int = 0  # array: number of elements
    runtime_type: int | None = None  # address of its runtime type (DW_AT_go_runtime_type)
    # map: the struct a map value points to (Swiss `map<K,V>` from Go 1.24, else
    # `hash<K,V>`); the linker synthesizes these with concrete key/value types.
    map_header: int | None = None
    map_impl: MapImpl | None = None


@dataclass
class TypeTable:
    """Types read so far, by id; typereader adds to it on demand."""

    types: dict[int, GoType] = field(default_factory=dict)
    by_runtime_type: dict[int, int] = field(default_factory=dict)  # rtype address -> id

    def __getitem__(self, type_id: int) -> GoType:
        return self.types[type_id]


@dataclass(frozen=True)
class Piece:
    """Part of a variable's value: `size` bytes at CFA + cfa_offset, or in a register
    (register is a DWARF register number), or nowhere (optimized out)."""

    size: int
    cfa_offset: int | None = None
    register: int | None = None


@dataclass(frozen=True)
class Location:
    """Where a variable lives at one pc: one piece covering the whole value, or several."""

    pieces: tuple[Piece, ...]

    @property
    def on_stack(self) -> bool:
        return all(p.cfa_offset is not None for p in self.pieces)


Role = Literal["param", "local", "result"]


@dataclass(frozen=True)
class Variable:
    name: str
    role: Role
    type: int  # type id
    location: Location | None  # None: no value at this pc
    reason: str | None = (
        None  # why location is None ("optimized out", "not in scope at this pc", ...)
    )
