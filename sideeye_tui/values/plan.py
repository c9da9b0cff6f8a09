"""Compiling a spec's expressions for one binary into a capture plan.

A backend runs the plan inside the pause, for every frame whose pc lies in a spec'd
function. The plan has three parts:

- sites: for each call-return pc of a spec'd function (a parked caller's frame sits
  at one), where each expression's value starts: stack pieces relative to the frame's
  CFA, then path operations (add an offset, follow a pointer, index a slice);
- chase types: for each type reached, its size and its "slots", the places in one
  value that refer to more memory (string and slice data, pointers, maps,
  interfaces' dynamic values); the backend copies the value, then queues what its
  slots point to, breadth first, within byte budgets;
- rtypes: runtime type address -> chase type, to follow an interface's dynamic value.

The backends copy memory only; decode.py turns that memory into JSON with the full
DWARF types, so the plan carries just what copying needs.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from capstone import CS_ARCH_X86, CS_MODE_64, Cs, CsError

from ..dwarf.gotypes import GoType, TypeTable, Variable
from ..errors import SideEyeError
from .expr import Expression, ExpressionError, Field, Index, parse

if TYPE_CHECKING:
    from ..dwarf.binary import GoBinary
    from ..dwarf.typereader import TypeReader
    from ..dwarf.variables import FunctionVariables

# Budgets, after Side-Eye's: bytes of one string or slice, of one map's data, pointer
# hops from a root, and bytes per frame in all.
STRING_BUDGET = 512
SLICE_BUDGET = 512
MAP_BUDGET = 2048
MAX_PTR_DEPTH = 8
FRAME_BUDGET = 16384
ITEM_MAX = 512  # bytes copied by one read; longer arrays continue in another item
QUEUE = 64  # items waiting per frame
MAX_SLOTS = 16  # slots kept per chase type
MAX_ROOTS = 32  # expressions per function (a power of two)
MAX_OPS = 8  # path operations per expression
MAX_PIECES = 4

# Path operations, applied to an address.
OP_ADD = 1  # addr += arg
OP_DEREF = 2  # addr = *(u64 *)addr; nil ends the path with a null value
OP_INDEX = 3  # (ptr, len) at addr; arg < len or out of range; addr = ptr + arg * elem

# Slot kinds: what sits at `off` in a value, and what to copy for it.
SLOT_PTR = 1  # *T: one T
SLOT_STRING = 2  # (ptr, len): len bytes, at most STRING_BUDGET
SLOT_SLICE = 3  # (ptr, len, cap): len elements, at most SLICE_BUDGET bytes
SLOT_EFACE = 4  # (type, data): the dynamic value
SLOT_IFACE = 5  # (itab, data): the dynamic type is at itab + 8
SLOT_SWISS_DIR = 6  # Swiss map: dirPtr at off, dirLen at aux
SLOT_GROUPS = 7  # Swiss table's groups: data at off, lengthMask at aux
SLOT_BUCKETS = 8  # bucket map: buckets at off, B (a byte) at aux

# Chase types every plan has.
T_BYTES = 0  # string data
T_RAW = 1  # the first RAW_SIZE bytes behind an interface whose type is not in the plan
RAW_SIZE = 64

ITAB_TYPE_OFFSET = 8  # runtime.itab{inter, _type, ...} on every Go release since 1.18


class PlanError(SideEyeError):
    pass


@dataclass(frozen=True)
class Slot:
    off: int
    kind: int
    target: int = 0  # chase type copied for it
    aux: int = 0  # offset of the length / mask / B field, when the kind has one
    cap: int = 0  # most elements copied
    target2: int = 0  # Swiss directory: chase type of the table pointers' array


@dataclass(frozen=True)
class ChaseType:
    size: int
    slots: tuple[Slot, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class PathOp:
    kind: int
    arg: int = 0
    elem_size: int = 0


@dataclass(frozen=True)
class Root:
    """Where one expression's value is at one pc, or why it is not available."""

    pieces: tuple[tuple[int, int], ...] = ()  # (cfa_offset, size); several for a split value
    ops: tuple[PathOp, ...] = ()
    chase_type: int = T_BYTES
    unavailable: str | None = None
    value_type: int = 0  # DWARF type id of the value at this pc (shadowing may change it)


@dataclass(frozen=True)
class CompiledExpression:
    text: str
    type: int  # DWARF type id of the value
    sql_type: str
    unavailable: str | None = None  # for every pc (e.g. the binary has no DWARF)


@dataclass(frozen=True)
class Site:
    pc: int
    function: int  # index into CapturePlan.functions
    roots: tuple[Root, ...]


@dataclass
class FunctionPlan:
    name: str
    lo: int
    hi: int
    expressions: tuple[CompiledExpression, ...]


@dataclass
class CapturePlan:
    functions: list[FunctionPlan] = field(default_factory=list)
    sites: dict[int, Site] = field(default_factory=dict)
    chase_types: list[ChaseType] = field(default_factory=list)
    rtypes: dict[int, int] = field(default_factory=dict)  # runtime type address -> chase type
    types: TypeTable | None = None
    reader: TypeReader | None = None
    errors: list[str] = field(default_factory=list)
    # A plan from the cache (plan_cache.py) has no reader: this makes one on first use.
    reader_factory: Callable[[], TypeReader] | None = None

    def type_reader(self) -> TypeReader | None:
        """The reader of the binary's types, sharing this plan's table."""
        if self.reader is None and self.reader_factory is not None:
            self.reader = self.reader_factory()
            self.reader_factory = None
            if self.types is not None:
                self.reader.table = self.types
        return self.reader

    def function_at(self, pc: int) -> FunctionPlan | None:
        for f in self.functions:
            if f.lo <= pc < f.hi:
                return f
        return None


SCALAR_SQL = {
    "bool": "BOOLEAN",
    "int": "BIGINT",
    "uint": "BIGINT",
    "float": "DOUBLE",
    "string": "VARCHAR",
}


def sql_type(t: GoType) -> str:
    if t.kind == "uint" and t.size == 8:
        return "JSON"  # a uint64 may not fit a BIGINT
    if t.name in ("time.Time", "time.Duration"):
        return "VARCHAR"
    return SCALAR_SQL.get(t.kind, "JSON")


# -- chase types -----------------------------------------------------------------------


class _ChaseTable:
    """Chase types by DWARF type id, built on demand (recursive types included)."""

    def __init__(self, types: TypeTable, reader: TypeReader | None) -> None:
        self.types = types
        self.reader = reader
        self.out: list[ChaseType] = [ChaseType(1, name="bytes"), ChaseType(RAW_SIZE, name="raw")]
        self.by_id: dict[int, int] = {}
        self.table_ptrs: dict[int, int] = {}

    def go(self, type_id: int) -> GoType:
        t = self.types.types.get(type_id)
        if t is None and self.reader is not None:
            t = self.types[self.reader.read(type_id)]
        if t is None:
            raise PlanError(f"type {type_id:#x} not read")
        return t

    def chase_type(self, type_id: int) -> int:
        if type_id in self.by_id:
            return self.by_id[type_id]
        t = self.go(type_id)
        index = len(self.out)
        self.by_id[type_id] = index
        self.out.append(ChaseType(max(t.size, 1), name=t.name))  # placeholder for recursion
        slots: list[Slot] = []
        self._slots(t, 0, slots)
        self.out[index] = ChaseType(max(t.size, 1), tuple(slots[:MAX_SLOTS]), t.name)
        return index

    def _pointee(self, elem: int | None) -> int | None:
        if elem is None:
            return None
        t = self.go(elem)
        return None if t.size == 0 else self.chase_type(elem)

    def _slots(self, t: GoType, base: int, out: list[Slot]) -> None:  # noqa: C901 - values/ is being changed on another branch: split it after the merge
        if len(out) >= MAX_SLOTS:
            return
        k = t.kind
        if t.name == "time.Time":
            return  # decoded from wall and ext; its *Location is not worth copying
        if k == "string":
            out.append(Slot(base, SLOT_STRING, T_BYTES, cap=STRING_BUDGET))
        elif k == "slice" and t.elem is not None:
            elem = self.go(t.elem)
            target = self.chase_type(t.elem) if elem.size else T_BYTES
            size = max(elem.size, 1)
            out.append(Slot(base, SLOT_SLICE, target, cap=max(1, SLICE_BUDGET // size)))
        elif k == "pointer":
            pointee = self._pointee(t.elem)
            if pointee is not None:
                out.append(Slot(base, SLOT_PTR, pointee, cap=1))
        elif k == "chan":
            # A channel is a *runtime.hchan; the decoder reads its counters.
            hchan = self._hchan()
            if hchan is not None:
                out.append(Slot(base, SLOT_PTR, hchan, cap=1))
        elif k == "map":
            self._map_slot(t, base, out)
        elif k == "eface":
            out.append(Slot(base, SLOT_EFACE))
        elif k == "interface":
            out.append(Slot(base, SLOT_IFACE))
        elif k == "func":
            out.append(Slot(base, SLOT_PTR, self._word(), cap=1))
        elif k == "struct":
            for f in t.fields:
                self._slots(self.go(f.type), base + f.offset, out)
        elif k == "array" and t.elem is not None:
            elem = self.go(t.elem)
            for i in range(min(t.count, MAX_SLOTS)):
                before = len(out)
                self._slots(elem, base + i * elem.size, out)
                if len(out) == before:
                    break  # an element without slots: none of them has any

    def _word(self) -> int:
        key = -1
        if key not in self.by_id:
            self.by_id[key] = len(self.out)
            self.out.append(ChaseType(8, name="word"))
        return self.by_id[key]

    def _hchan(self) -> int | None:
        if self.reader is None:
            return None
        hchan = self.reader.type_by_name("runtime.hchan")
        return None if hchan is None else self.chase_type(hchan)

    def _map_slot(self, t: GoType, base: int, out: list[Slot]) -> None:
        if t.map_header is None:
            return
        header_id = len(self.out)
        header = self.go(t.map_header)
        if t.map_header in self.by_id:
            out.append(Slot(base, SLOT_PTR, self.by_id[t.map_header], cap=1))
            return
        self.by_id[t.map_header] = header_id
        self.out.append(ChaseType(header.size, name=header.name))
        fields = {f.name: f for f in header.fields}
        slots: list[Slot] = []
        swiss = swiss_layout(self.go, header) if t.map_impl == "swiss" else None
        if swiss is not None and "dirLen" in fields:
            group = self.chase_type(swiss.group.id)
            slots.append(
                Slot(
                    fields["dirPtr"].offset,
                    SLOT_SWISS_DIR,
                    group,
                    aux=fields["dirLen"].offset,
                    cap=max(1, MAP_BUDGET // self.out[group].size),
                    target2=self._table_ptr_array(swiss, group),
                )
            )
        elif "buckets" in fields and "B" in fields:
            bucket_ptr = self.go(fields["buckets"].type)
            if bucket_ptr.kind == "pointer" and bucket_ptr.elem is not None:
                bucket = self.chase_type(bucket_ptr.elem)
                size = self.out[bucket].size
                slots.append(
                    Slot(
                        fields["buckets"].offset,
                        SLOT_BUCKETS,
                        bucket,
                        aux=fields["B"].offset,
                        cap=max(1, MAP_BUDGET // size),
                    )
                )
        self.out[header_id] = ChaseType(header.size, tuple(slots), header.name)
        out.append(Slot(base, SLOT_PTR, header_id, cap=1))

    def _table_ptr_array(self, swiss: SwissLayout, group: int) -> int:
        """An 8-byte chase type whose one slot points to a table, whose groups slot
        points to the groups."""
        if swiss.table.id in self.table_ptrs:
            return self.table_ptrs[swiss.table.id]
        table_chase = len(self.out)
        self.out.append(
            ChaseType(
                swiss.table.size,
                (
                    Slot(
                        swiss.groups_data,
                        SLOT_GROUPS,
                        group,
                        aux=swiss.groups_mask,
                        cap=max(1, MAP_BUDGET // self.out[group].size),
                    ),
                ),
                swiss.table.name,
            )
        )
        ptrs = len(self.out)
        self.out.append(ChaseType(8, (Slot(0, SLOT_PTR, table_chase, cap=1),), "*table"))
        self.table_ptrs[swiss.table.id] = ptrs
        return ptrs


@dataclass(frozen=True)
class SwissLayout:
    """The linker's synthesized types behind a Swiss-table map (Go 1.24+)."""

    table: GoType  # table<K,V>
    group: GoType  # group<K,V>: a control word, then 8 slots of key and value
    groups_data: int  # offset in a table of groups.data (*group<K,V>)
    groups_mask: int  # offset in a table of groups.lengthMask (groups - 1)


def swiss_layout(go: Callable[[int], GoType], header: GoType) -> SwissLayout | None:
    """From the map header `map<K,V>`: dirPtr is a `**table<K,V>`."""
    fields = {f.name: f for f in header.fields}
    if "dirPtr" not in fields:
        return None
    table = go(fields["dirPtr"].type)
    for _ in range(2):
        if table.kind != "pointer" or table.elem is None:
            return None
        table = go(table.elem)
    tf = {f.name: f for f in table.fields}
    if "groups" not in tf:
        return None
    rf = {f.name: f for f in go(tf["groups"].type).fields}
    if "data" not in rf or "lengthMask" not in rf:
        return None
    data = go(rf["data"].type)
    if data.kind != "pointer" or data.elem is None:
        return None
    base = tf["groups"].offset
    return SwissLayout(
        table, go(data.elem), base + rf["data"].offset, base + rf["lengthMask"].offset
    )


# -- expressions -------------------------------------------------------------------------


def _find_field(table: _ChaseTable, t: GoType, name: str) -> tuple[int, int] | None:
    """(offset, type id) of a field, promoted fields of embedded structs included."""
    for f in t.fields:
        if f.name == name:
            return f.offset, f.type
    for f in t.fields:
        if f.embedded:
            inner = table.go(f.type)
            if inner.kind == "pointer":
                continue  # promotion through an embedded pointer needs a deref: not done
            found = _find_field(table, inner, name)
            if found is not None:
                return f.offset + found[0], found[1]
    return None


def compile_path(
    table: _ChaseTable, expr: Expression, var_type: int
) -> tuple[tuple[PathOp, ...], int]:
    """Path operations from the variable's address to the value's, and its type."""
    ops: list[PathOp] = []
    t = table.go(var_type)
    walked = expr.root
    for access in expr.accesses:
        if isinstance(access, Field):
            while t.kind == "pointer" and t.elem is not None:
                ops.append(PathOp(OP_DEREF))
                t = table.go(t.elem)
            if t.kind != "struct":
                raise ExpressionError(
                    f"capture {expr.text!r}: {walked} is a {t.name}, which has no field {access.name!r}"
                )
            found = _find_field(table, t, access.name)
            if found is None:
                names = ", ".join(f.name for f in t.fields) or "none"
                raise ExpressionError(
                    f"capture {expr.text!r}: {t.name} has no field {access.name!r} (fields: {names})"
                )
            ops.append(PathOp(OP_ADD, found[0]))
            t = table.go(found[1])
            walked += "." + access.name
        elif isinstance(access, Index):
            if t.kind == "pointer" and t.elem is not None and table.go(t.elem).kind == "array":
                ops.append(PathOp(OP_DEREF))
                t = table.go(t.elem)
            if t.kind == "array" and t.elem is not None:
                if access.index >= t.count:
                    raise ExpressionError(
                        f"capture {expr.text!r}: index {access.index} out of range for {t.name}"
                    )
                elem = table.go(t.elem)
                ops.append(PathOp(OP_ADD, access.index * elem.size))
                t = elem
            elif t.kind == "slice" and t.elem is not None:
                elem = table.go(t.elem)
                ops.append(PathOp(OP_INDEX, access.index, elem.size))
                t = elem
            else:
                raise ExpressionError(
                    f"capture {expr.text!r}: {walked} is a {t.name}, which cannot be indexed"
                    " (slices and arrays can)"
                )
            walked += f"[{access.index}]"
    for _ in range(expr.derefs):
        if t.kind != "pointer" or t.elem is None:
            raise ExpressionError(f"capture {expr.text!r}: {walked} is a {t.name}, not a pointer")
        ops.append(PathOp(OP_DEREF))
        t = table.go(t.elem)
    if len(ops) > MAX_OPS:
        raise ExpressionError(f"capture {expr.text!r}: more than {MAX_OPS} steps")
    return tuple(_merge_adds(ops)), t.id


def _merge_adds(ops: list[PathOp]) -> list[PathOp]:
    out: list[PathOp] = []
    for op in ops:
        if op.kind == OP_ADD and out and out[-1].kind == OP_ADD:
            out[-1] = PathOp(OP_ADD, out[-1].arg + op.arg)
        elif op.kind == OP_ADD and op.arg == 0:
            continue
        else:
            out.append(op)
    return out


def _root_at(var: Variable | None, ops: tuple[PathOp, ...], chase: int, size: int) -> Root:
    if var is None or var.location is None:
        return Root(
            unavailable=(var.reason if var is not None else None) or "not available at this pc"
        )
    pieces = var.location.pieces
    if any(p.cfa_offset is None for p in pieces):
        where = "in a register" if any(p.register is not None for p in pieces) else "optimized out"
        return Root(unavailable=f"{where} at this pc")
    stack = [(p.cfa_offset or 0, p.size) for p in pieces]
    contiguous = all(stack[i][0] + stack[i][1] == stack[i + 1][0] for i in range(len(stack) - 1))
    if contiguous:
        return Root(pieces=((stack[0][0], max(size, 1)),), ops=ops, chase_type=chase)
    if ops and ops[0].kind == OP_ADD:
        # Field access into a split struct: find the piece holding the field.
        at = 0
        for off, psize in stack:
            if at <= ops[0].arg < at + psize:
                first = ((off + ops[0].arg - at, max(size, 1)),)
                return Root(pieces=first, ops=ops[1:], chase_type=chase)
            at += psize
    if ops or len(stack) > MAX_PIECES:
        return Root(unavailable="split across the stack at this pc")
    return Root(pieces=tuple(stack), ops=ops, chase_type=chase)


def call_return_pcs(binary: GoBinary, lo: int, hi: int) -> list[int]:
    """Return addresses of the calls in [lo, hi): where a caller's frame is parked."""
    code = binary.read_static(lo, hi - lo)
    md = Cs(CS_ARCH_X86, CS_MODE_64)
    out: list[int] = []
    try:
        for address, size, mnemonic, _ in md.disasm_lite(code, lo):
            if mnemonic == "call":
                out.append(address + size)
    except CsError:
        pass
    return out


def _suggest(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def compile_plan(binary: GoBinary, captures: Mapping[str, Sequence[str]]) -> CapturePlan:
    """The plan for these {function: expressions}; problems go to plan.errors, one line
    each, and the expressions they concern are unavailable in every frame.

    A generic function named as the runtime prints it (`main.Map[...]`) stands for
    all its instantiations: each gets a plan of its own under the spec's name."""
    plan = CapturePlan()
    state: list[_ChaseTable] = []
    for fname, texts in captures.items():
        texts = list(texts)
        if len(texts) > MAX_ROOTS:
            plan.errors.append(f"{fname}: only the first {MAX_ROOTS} expressions are captured")
            texts = texts[:MAX_ROOTS]
        symbols = binary.functions_named(fname)
        if not symbols:
            plan.errors.append(
                f"unknown function {fname!r}{_suggest(fname, binary.function_names())}"
            )
            continue
        for symbol, lo, hi in symbols:
            _compile_function(plan, state, binary, fname, symbol, lo, hi, texts)
    if state:
        plan.chase_types = state[0].out
        _add_rtypes(plan, state[0], binary.read_static)
    else:
        plan.chase_types = [ChaseType(1, name="bytes"), ChaseType(RAW_SIZE, name="raw")]
    return plan


def _compile_function(  # noqa: C901 - values/ is being changed on another branch: split it after the merge
    plan: CapturePlan,
    state: list[_ChaseTable],
    binary: GoBinary,
    fname: str,
    symbol: str,
    lo: int,
    hi: int,
    texts: list[str],
) -> None:
    fv: FunctionVariables | None = None
    reason: str | None = None
    if not binary.has_dwarf:
        reason = "the binary has no DWARF (built with -ldflags=-s -w)"
    else:
        from ..dwarf.variables import function_variables

        try:
            fv = function_variables(binary, symbol, state[0].reader if state else None)
        except SideEyeError as e:
            reason = str(e)
        if fv is None and reason is None:
            reason = f"no DWARF entry for {symbol}"
    if reason is not None:
        plan.errors.append(f"{fname}: variables unavailable: {reason}")
    if fv is not None and not state:
        state.append(_ChaseTable(fv.types, fv.reader))
        plan.types, plan.reader = fv.types, fv.reader
    table = state[0] if state else None
    exprs: list[Expression | None] = []
    compiled: list[CompiledExpression] = []
    declared = {v.name: v for v in fv.at(fv.pc_range[0]).values()} if fv is not None else {}
    for text in texts:
        try:
            expr: Expression | None = parse(text)
        except ExpressionError as e:
            plan.errors.append(f"{fname}: {e}")
            compiled.append(CompiledExpression(text, 0, "JSON", str(e)))
            exprs.append(None)
            continue
        assert expr is not None
        if fv is None or table is None:
            compiled.append(CompiledExpression(text, 0, "JSON", reason))
            exprs.append(None)
            continue
        var = declared.get(expr.root) or declared.get("&" + expr.root)
        if var is None:
            names = ", ".join(n.lstrip("&") for n in fv.names() if not n.startswith("~")) or "none"
            msg = f"{fname} has no variable {expr.root!r} (it has: {names})"
            plan.errors.append(msg)
            compiled.append(CompiledExpression(text, 0, "JSON", msg))
            exprs.append(None)
            continue
        try:
            _, vtype = _path_for(table, expr, var)
        except ExpressionError as e:
            plan.errors.append(f"{fname}: {e}")
            compiled.append(CompiledExpression(text, 0, "JSON", str(e)))
            exprs.append(None)
            continue
        t = table.go(vtype)
        compiled.append(CompiledExpression(text, vtype, sql_type(t)))
        exprs.append(expr)
    index = len(plan.functions)
    plan.functions.append(FunctionPlan(fname, lo, hi, tuple(compiled)))
    if fv is None or table is None:
        return
    for pc in call_return_pcs(binary, lo, hi):
        at = fv.at(pc)
        roots = []
        for c, expr in zip(compiled, exprs, strict=True):
            if expr is None:
                roots.append(Root(unavailable=c.unavailable or "not compiled"))
                continue
            var = at.get(expr.root) or at.get("&" + expr.root)
            if var is None:
                roots.append(Root(unavailable="not in scope at this pc"))
                continue
            try:
                ops, vtype = _path_for(table, expr, var)  # a shadowing variable may differ
            except ExpressionError as e:
                roots.append(Root(unavailable=str(e)))
                continue
            t = table.go(vtype)
            root = _root_at(var, ops, table.chase_type(vtype), t.size)
            roots.append(dataclasses.replace(root, value_type=vtype))
        plan.sites[pc] = Site(pc, index, tuple(roots))


def _path_for(
    table: _ChaseTable, expr: Expression, var: Variable
) -> tuple[tuple[PathOp, ...], int]:
    """A variable a closure captured by reference is `&name`, a pointer: follow it."""
    if var.name.startswith("&"):
        ptr = table.go(var.type)
        if ptr.kind != "pointer" or ptr.elem is None:
            raise ExpressionError(f"capture {expr.text!r}: {var.name} is not a pointer")
        ops, vtype = compile_path(table, expr, ptr.elem)
        return (PathOp(OP_DEREF), *ops), vtype
    return compile_path(table, expr, var.type)


def _add_rtypes(plan: CapturePlan, table: _ChaseTable, read: Callable[[int, int], bytes]) -> None:
    """Interfaces' dynamic types the probe can follow: every type the plan reached,
    pointers to them, and the types named in the spec'd functions' packages."""
    reader = table.reader
    if reader is None:
        return
    wanted: set[int] = set(table.by_id)
    packages = {_package(f.name) for f in plan.functions}
    wanted.update(_dynamic_candidates(reader, packages, read))
    for type_id in sorted(wanted):
        if type_id < 0:
            continue
        t = table.go(type_id)
        if t.runtime_type is None:
            continue
        plan.rtypes[t.runtime_type] = _dynamic_target(table, t)


DYNAMIC_TYPES_MAX = 4096
_ALWAYS = ("errors.", "fmt.", "time.", "strconv.", "context.", "net.", "os.", "io.", "sync.")
# Types without a package an interface often holds (also as *T and []T).
_PREDECLARED = (
    "bool",
    "string",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "uintptr",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "error",
    "interface {}",
    "map[string]string",
    "map[string]int",
    "map[string]interface {}",
)


def _dynamic_candidates(
    reader: TypeReader, packages: set[str], read: Callable[[int, int], bytes]
) -> list[int]:
    """Types an interface in a spec'd function may plausibly hold: those of the
    functions' packages, of a few standard packages, and the predeclared ones. Found
    by their names (TypeReader.named_types_like), so a spec costs what its packages
    hold, not a parse of every type of the binary."""
    prefixes = tuple(sorted(p + "." for p in packages)) + _ALWAYS
    found = reader.named_types_like(prefixes, _PREDECLARED, DYNAMIC_TYPES_MAX, read)
    return [type_id for _, type_id in found]


def _dynamic_target(table: _ChaseTable, t: GoType) -> int:
    """What an interface's data word leads to for dynamic type t: for pointer-shaped
    types the word is the value itself, so the chase goes to what it points at."""
    if t.kind == "pointer":
        target = table._pointee(t.elem)
        return target if target is not None else T_RAW
    if t.kind == "map" and t.map_header is not None:
        slots: list[Slot] = []
        table._map_slot(t, 0, slots)
        return slots[0].target if slots else T_RAW
    if t.kind in ("chan", "func", "unsafe_pointer"):
        return T_RAW
    return table.chase_type(t.id)


def _package(function: str) -> str:
    slash = function.rfind("/")
    dot = function.find(".", slash + 1)
    return function[:dot] if dot >= 0 else function
