"""A Go function's parameters, locals and results, and where each lives at a pc.

Go's compiler describes a variable's home with a location list (DWARF 4
.debug_loc, or DWARF 5 .debug_loclists from Go 1.25 on): a parameter arrives in a
register and is spilled to the stack before a call, so the answer depends on the
pc. Its frame base is always DW_OP_call_frame_cfa, so every stack location comes
out as an offset from the frame's CFA, which is what the capture reads (CFA = the
caller's SP, known from the pclntab's SP delta). Values split across registers
and stack slots are DW_OP_piece composites.

Locals of inner blocks live in DW_TAG_lexical_block DIEs with their own pc ranges.
Variables of inlined callees (DW_TAG_inlined_subroutine) belong to the callee, not
to this function, and are left out.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from elftools.dwarf.die import DIE
from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.locationlists import BaseAddressEntry, LocationEntry
from elftools.dwarf.ranges import BaseAddressEntry as RangeBaseEntry
from elftools.dwarf.ranges import RangeEntry

from ..errors import BinaryError
from .binary import GoBinary
from .dies import DieIndex, die_name
from .gotypes import Location, Piece, Role, TypeTable, Variable
from .typereader import TypeReader

OP_CALL_FRAME_CFA = 0x9C

NOT_IN_SCOPE = "not in scope at this pc"
OPTIMIZED_OUT = "optimized out at this pc"
OUTSIDE_FUNCTION = "pc outside the function"

_EXPR_FORMS = (
    "DW_FORM_exprloc",
    "DW_FORM_block",
    "DW_FORM_block1",
    "DW_FORM_block2",
    "DW_FORM_block4",
)
_LIST_FORMS = ("DW_FORM_sec_offset", "DW_FORM_data4", "DW_FORM_data8")

Ranges = tuple[tuple[int, int], ...]

_indexes: weakref.WeakKeyDictionary[DWARFInfo, DieIndex] = weakref.WeakKeyDictionary()


def _die_index(dwarf: DWARFInfo) -> DieIndex:
    index = _indexes.get(dwarf)
    if index is None:
        index = _indexes[dwarf] = DieIndex(dwarf)
    return index


@dataclass(frozen=True)
class _Entry:
    """One variable DIE of the function."""

    offset: int
    name: str
    role: Role
    type_offset: int
    scope: Ranges | None  # None: the whole function
    depth: int  # lexical nesting, 0 for the function's own


class FunctionVariables:
    """The variables of one function (one DW_TAG_subprogram) and their locations."""

    def __init__(self, dwarf: DWARFInfo, die: DIE, reader: TypeReader) -> None:
        self.dwarf = dwarf
        self.die = die
        self.reader = reader
        self.name = die_name(die) or ""
        self._cu_base = _cu_base(die)
        low = int(die.attributes["DW_AT_low_pc"].value)
        high_attr = die.attributes["DW_AT_high_pc"]
        high = (
            int(high_attr.value) if high_attr.form == "DW_FORM_addr" else low + int(high_attr.value)
        )
        self.entry_pc = low
        self.pc_range = (low, high)  # [low, high)
        frame_base = die.attributes.get("DW_AT_frame_base")
        self._cfa_frame_base = frame_base is not None and list(frame_base.value) == [
            OP_CALL_FRAME_CFA
        ]
        self._entries: list[_Entry] = []
        self._collect(die, None, 0)
        self._by_name: dict[str, list[_Entry]] = {}
        for e in self._entries:
            self._by_name.setdefault(e.name, []).append(e)
        self._lists: dict[int, list[tuple[int, int, bytes]]] = {}
        self._expr = DWARFExprParser(die.cu.structs)

    @property
    def types(self) -> TypeTable:
        return self.reader.table

    def names(self) -> list[str]:
        """Parameters, locals and named results, each name once, in DWARF order."""
        return list(self._by_name)

    def at(self, pc: int) -> dict[str, Variable]:
        """Every variable's location at pc (the innermost in-scope one for a shadowed name).

        For a caller's frame, pc is the return address; Go's location lists cover it.
        """
        inside = self.pc_range[0] <= pc < self.pc_range[1]
        out: dict[str, Variable] = {}
        for name, entries in self._by_name.items():
            in_scope = [e for e in entries if e.scope is None or _contains(e.scope, pc)]
            if not inside or not in_scope:
                e = min(entries, key=lambda x: x.depth)
                why = NOT_IN_SCOPE if inside else OUTSIDE_FUNCTION
                out[name] = Variable(name, e.role, self.reader.read(e.type_offset), None, why)
                continue
            deepest = max(x.depth for x in in_scope)
            best: Variable | None = None
            for e in in_scope:
                if e.depth != deepest:
                    continue
                type_id = self.reader.read(e.type_offset)
                loc, reason = self._location(e, type_id, pc)
                var = Variable(name, e.role, type_id, loc, reason)
                if best is None or (best.location is None and loc is not None):
                    best = var
            assert best is not None
            out[name] = best
        return out

    # -- collecting -----------------------------------------------------------------

    def _collect(self, parent: DIE, scope: Ranges | None, depth: int) -> None:
        for child in parent.iter_children():
            if child.tag == "DW_TAG_lexical_block":
                self._collect(child, _die_ranges(self.dwarf, child, self._cu_base), depth + 1)
            elif child.tag in ("DW_TAG_formal_parameter", "DW_TAG_variable"):
                name = die_name(child)
                if name is None or "DW_AT_type" not in child.attributes:
                    continue
                role: Role = "local"
                if child.tag == "DW_TAG_formal_parameter":
                    result = child.attributes.get("DW_AT_variable_parameter")
                    role = "result" if result is not None and result.value else "param"
                type_die: DIE = child.get_DIE_from_attribute("DW_AT_type")
                self._entries.append(
                    _Entry(child.offset, name, role, type_die.offset, scope, depth)
                )

    # -- locations ------------------------------------------------------------------

    def _location(self, e: _Entry, type_id: int, pc: int) -> tuple[Location | None, str | None]:
        die = self.dwarf.get_DIE_from_refaddr(e.offset)
        attr = die.attributes.get("DW_AT_location")
        if attr is None:
            return None, "optimized out"
        if attr.form in _EXPR_FORMS:
            expr = bytes(attr.value)
        elif attr.form in _LIST_FORMS:
            expr_at = self._list_expr(die, int(attr.value), pc)
            if expr_at is None:
                return None, OPTIMIZED_OUT
            expr = expr_at
        else:
            return None, f"unsupported location form {attr.form}"
        if not expr:
            return None, OPTIMIZED_OUT
        return self._evaluate(expr, self.types[type_id].size)

    def _list_expr(self, die: DIE, offset: int, pc: int) -> bytes | None:
        entries = self._lists.get(offset)
        if entries is None:
            entries = []
            lists = self.dwarf.location_lists()
            if lists is None:
                raise BinaryError(f"{self.name}: location list without a location list section")
            base = self._cu_base
            for item in lists.get_location_list_at_offset(offset, die):
                if isinstance(item, BaseAddressEntry):
                    base = item.base_address
                elif isinstance(item, LocationEntry):
                    lo, hi = item.begin_offset, item.end_offset
                    if not item.is_absolute:
                        lo, hi = lo + base, hi + base
                    entries.append((lo, hi, bytes(item.loc_expr)))
            self._lists[offset] = entries
        for lo, hi, expr in entries:
            if lo <= pc < hi or lo == -1:
                return expr
        return None

    def _evaluate(self, expr: bytes, size: int) -> tuple[Location | None, str | None]:
        """A location expression -> pieces. Handles what Go emits: fbreg, call_frame_cfa
        with constant arithmetic, regN/regx, and piece."""
        pieces: list[Piece] = []
        stack: list[tuple[str, int]] = []  # ("cfa", offset) or ("const", value)
        reg: int | None = None
        for op in self._expr.parse_expr(expr):
            name, args = op.op_name, op.args
            if name == "DW_OP_call_frame_cfa":
                stack.append(("cfa", 0))
            elif name == "DW_OP_fbreg":
                if not self._cfa_frame_base:
                    return None, "frame base is not the CFA"
                stack.append(("cfa", int(args[0])))
            elif name.startswith("DW_OP_lit"):
                stack.append(("const", int(name[len("DW_OP_lit") :])))
            elif name.startswith("DW_OP_const"):
                stack.append(("const", int(args[0])))
            elif name == "DW_OP_plus_uconst" and stack:
                kind, value = stack.pop()
                stack.append((kind, value + int(args[0])))
            elif name in ("DW_OP_plus", "DW_OP_minus") and len(stack) >= 2:
                (kb, b), (ka, a) = stack.pop(), stack.pop()
                if kb == "cfa" and ka == "cfa":
                    return None, "unsupported location expression"
                sign = 1 if name == "DW_OP_plus" else -1
                kind = "cfa" if "cfa" in (ka, kb) else "const"
                stack.append((kind, a + sign * b))
            elif name.startswith("DW_OP_reg") and name != "DW_OP_regx":
                reg = int(name[len("DW_OP_reg") :])
            elif name == "DW_OP_regx":
                reg = int(args[0])
            elif name == "DW_OP_piece":
                pieces.append(_piece(int(args[0]), stack, reg))
                stack, reg = [], None
            else:
                return None, f"unsupported location expression ({name})"
        if pieces:
            return Location(tuple(pieces)), None
        piece = _piece(size, stack, reg)
        if piece.cfa_offset is None and piece.register is None:
            return None, "unsupported location expression"
        return Location((piece,)), None


def _piece(size: int, stack: list[tuple[str, int]], reg: int | None) -> Piece:
    if reg is not None:
        return Piece(size=size, register=reg)
    if stack and stack[-1][0] == "cfa":
        return Piece(size=size, cfa_offset=stack[-1][1])
    return Piece(size=size)  # an empty piece: this part is optimized out


def _contains(ranges: Ranges, pc: int) -> bool:
    return any(lo <= pc < hi for lo, hi in ranges)


def _cu_base(die: DIE) -> int:
    low = die.cu.get_top_DIE().attributes.get("DW_AT_low_pc")
    return int(low.value) if low is not None else 0


def _die_ranges(dwarf: DWARFInfo, die: DIE, cu_base: int) -> Ranges:
    """The pc ranges of a block: low_pc/high_pc, or a range list (DWARF 4 or 5)."""
    attrs = die.attributes
    if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
        low = int(attrs["DW_AT_low_pc"].value)
        high_attr = attrs["DW_AT_high_pc"]
        high = (
            int(high_attr.value) if high_attr.form == "DW_FORM_addr" else low + int(high_attr.value)
        )
        return ((low, high),)
    if "DW_AT_ranges" not in attrs:
        return ()
    lists = dwarf.range_lists()
    if lists is None:
        raise BinaryError(f"DIE {die.offset:#x}: range list without a range list section")
    out: list[tuple[int, int]] = []
    base = cu_base
    cu: Any = die.cu  # a CompileUnit: Go emits no type units
    for item in lists.get_range_list_at_offset(int(attrs["DW_AT_ranges"].value), cu=cu):
        if isinstance(item, RangeBaseEntry):
            base = item.base_address
        elif isinstance(item, RangeEntry):
            lo, hi = item.begin_offset, item.end_offset
            if not item.is_absolute:
                lo, hi = lo + base, hi + base
            out.append((lo, hi))
    return tuple(out)


def _find_subprogram(dwarf: DWARFInfo, name: str) -> DIE | None:
    for die in _die_index(dwarf).find_prefix(name, "DW_TAG_subprogram"):
        if die_name(die) == name and "DW_AT_low_pc" in die.attributes:
            return die
    return None


def function_variables(
    binary_or_dwarf: GoBinary | DWARFInfo,
    function_name: str,
    reader: TypeReader | None = None,
) -> FunctionVariables | None:
    """The variables of the function named as in DWARF and the symbol table
    (`main.(*Server).handle`, `main.holdGeneric[go.shape.int]`); None if no such
    function has code. Pass `reader` to share one type table between functions.

    Raises BinaryError if the binary has no DWARF.
    """
    if isinstance(binary_or_dwarf, GoBinary):
        dwarf: Any = binary_or_dwarf.dwarf_info()
        types_base = binary_or_dwarf.runtime_types_base()
    else:
        dwarf, types_base = binary_or_dwarf, None
    die = _find_subprogram(dwarf, function_name)
    if die is None:
        return None
    if reader is None:
        reader = TypeReader(dwarf, types_base)
    return FunctionVariables(dwarf, die, reader)
