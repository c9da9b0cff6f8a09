"""Compiling spec expressions at one probed pc (dynamic events), registers included.

A snapshot reads parked frames, where every value lives on the stack (plan.py). A
probe fires at a function's entry (parameters still in their ABI registers), at a
RET (results in registers) or at a line: here a value's location may be registers,
stack slots relative to the CFA, or both. The same path operations, chase types,
budgets and decoder as snapshots are used: only the roots differ.

Results at a RET are often "optimized out" in DWARF's location lists; Go's register
ABI says where they are (results are assigned to registers from the first one, in
order, as arguments are), so that is used instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dwarf.binary import GoBinary
from ..dwarf.gotypes import GoType, Location, Piece, Variable
from ..errors import SideEyeError
from .expr import Expression, ExpressionError, parse
from .plan import (
    MAX_PIECES,
    CapturePlan,
    ChaseType,
    CompiledExpression,
    FunctionPlan,
    PathOp,
    _add_rtypes,
    _ChaseTable,
    _package,
    _path_for,
    sql_type,
)

PIECE_REG = 1
PIECE_STACK = 2

# Go's ABIInternal integer registers on amd64, as DWARF numbers them:
# RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11.
INT_REGISTERS = (0, 3, 2, 5, 4, 8, 9, 10, 11)
FLOAT_REGISTERS = 15  # X0-X14
FIRST_XMM = 17  # DWARF number of XMM0
NO_DWARF = "the binary has no DWARF (built with -ldflags=-w or stripped): values need it"


@dataclass(frozen=True)
class PcRoot:
    """Where one expression's value starts at one pc, or why it is not available."""

    pieces: tuple[tuple[int, int, int], ...] = ()  # (PIECE_REG|PIECE_STACK, register, cfa offset)
    ops: tuple[PathOp, ...] = ()
    size: int = 0
    chase_type: int = 0
    value_type: int = 0
    unavailable: str | None = None


@dataclass
class EventValues:
    """The values plan of one binary: shared types, then roots per (pc, list of texts)."""

    plan: CapturePlan
    roots: dict[tuple[int, tuple[str, ...]], tuple[PcRoot, ...]] = field(default_factory=dict)
    expressions: dict[tuple[str, ...], tuple[CompiledExpression, ...]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _abi_parts(table: _ChaseTable, t: GoType) -> list[str] | None:
    """The register classes ("int" or "float", a word each) of a value, or None when
    the ABI puts it on the stack whatever the registers left (arrays of 2+ elements)."""
    k = t.kind
    if t.size == 0:
        return []
    if k in ("bool", "int", "uint", "pointer", "unsafe_pointer", "chan", "map", "func"):
        return ["int"]
    if k == "float":
        return ["float"]
    if k == "complex":
        return ["float", "float"]
    if k == "string":
        return ["int", "int"]
    if k == "slice":
        return ["int", "int", "int"]
    if k in ("interface", "eface"):
        return ["int", "int"]
    if k == "struct":
        out: list[str] = []
        for f in t.fields:
            parts = _abi_parts(table, table.go(f.type))
            if parts is None:
                return None
            out += parts
        return out
    if k == "array" and t.elem is not None:
        if t.count == 0:
            return []
        if t.count == 1:
            return _abi_parts(table, table.go(t.elem))
    return None


def result_locations(table: _ChaseTable, results: list[Variable]) -> dict[str, Location | str]:
    """Each result's registers at a RET, by the register ABI (or why not)."""
    out: dict[str, Location | str] = {}
    ints = floats = 0
    for var in results:
        t = table.go(var.type)
        parts = _abi_parts(table, t)
        if parts is None:
            out[var.name] = "returned on the stack (not read by event probes yet)"
            continue
        n_int = parts.count("int")
        n_float = parts.count("float")
        if ints + n_int > len(INT_REGISTERS) or floats + n_float > FLOAT_REGISTERS:
            out[var.name] = "returned on the stack (not read by event probes yet)"
            continue
        if n_float:
            floats += n_float
            ints += n_int
            out[var.name] = "in a floating-point register, which a uprobe cannot read"
            continue
        pieces = []
        for _ in parts:
            pieces.append(Piece(8, None, INT_REGISTERS[ints]))
            ints += 1
        if t.kind == "struct" and not all(table.go(f.type).size in (0, 8) for f in t.fields):
            out[var.name] = "a struct of sub-word fields in registers (not read yet)"
            continue
        out[var.name] = Location(tuple(pieces))
    return out


def _root(
    table: _ChaseTable, expr: Expression, var: Variable, location: Location | None, why: str | None
) -> PcRoot:
    try:
        ops, vtype = _path_for(table, expr, var)
    except ExpressionError as e:
        return PcRoot(unavailable=str(e))
    t = table.go(vtype)
    if location is None:
        return PcRoot(unavailable=why or var.reason or "not available at this pc", value_type=vtype)
    if len(location.pieces) > MAX_PIECES:
        return PcRoot(unavailable=f"split in more than {MAX_PIECES} pieces", value_type=vtype)
    pieces = []
    for i, p in enumerate(location.pieces):
        if p.register is not None:
            if p.register >= FIRST_XMM:
                return PcRoot(
                    unavailable="in a floating-point register, which a uprobe cannot read",
                    value_type=vtype,
                )
            if p.register > 15:
                return PcRoot(unavailable=f"in register {p.register}", value_type=vtype)
            pieces.append((PIECE_REG, p.register, 0))
        elif p.cfa_offset is not None:
            pieces.append((PIECE_STACK, 0, p.cfa_offset))
        else:
            return PcRoot(unavailable="optimized out at this pc (in part)", value_type=vtype)
        if len(location.pieces) > 1 and i < len(location.pieces) - 1 and p.size != 8:
            return PcRoot(unavailable="split in pieces smaller than a word", value_type=vtype)
    return PcRoot(
        pieces=tuple(pieces),
        ops=ops,
        size=max(t.size, 1),
        chase_type=table.chase_type(vtype),
        value_type=vtype,
    )


class EventValuesCompiler:
    """Compiles (pc, expressions) pairs for one binary, sharing its type table."""

    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self.out = EventValues(CapturePlan())
        self._table: _ChaseTable | None = None
        self._fvs: dict[str, object] = {}

    def _variables(self, symbol: str) -> object:
        from ..dwarf.variables import function_variables

        if symbol not in self._fvs:
            reader = self._table.reader if self._table is not None else None
            fv = function_variables(self.binary, symbol, reader)
            if fv is not None and self._table is None:
                self._table = _ChaseTable(fv.types, fv.reader)
                self.out.plan.types, self.out.plan.reader = fv.types, fv.reader
            self._fvs[symbol] = fv
        return self._fvs[symbol]

    def compile(
        self, pc: int, texts: tuple[str, ...], at_return: bool, inlined: bool
    ) -> tuple[PcRoot, ...]:
        key = (pc, texts)
        if key in self.out.roots:
            return self.out.roots[key]
        roots = self._compile(pc, texts, at_return, inlined)
        self.out.roots[key] = roots
        known = self.out.expressions.get(texts)
        compiled = []
        for i, (text, r) in enumerate(zip(texts, roots, strict=True)):
            if known is not None and known[i].type:
                compiled.append(known[i])
            elif r.value_type and self._table is not None:
                t = self._table.go(r.value_type)
                compiled.append(CompiledExpression(text, r.value_type, sql_type(t)))
            else:
                compiled.append(CompiledExpression(text, 0, "JSON", None))
        self.out.expressions[texts] = tuple(compiled)
        return roots

    def _compile(
        self, pc: int, texts: tuple[str, ...], at_return: bool, inlined: bool
    ) -> tuple[PcRoot, ...]:
        exprs: list[Expression | None] = []
        for text in texts:
            try:
                exprs.append(parse(text))
            except ExpressionError as e:
                self.out.warnings.append(str(e))
                exprs.append(None)
        if not self.binary.has_dwarf:
            return tuple(PcRoot(unavailable=NO_DWARF) for _ in texts)
        if inlined:
            inl = "in an inlined copy: its variables are not read yet"
            return tuple(PcRoot(unavailable=inl) for _ in texts)
        tab = self.binary.pclntab
        fn = tab.find_func(pc)
        if fn is None:
            return tuple(PcRoot(unavailable="no function at this pc") for _ in texts)
        symbol = tab.func_name(fn.name_off)
        if not any(f.name == symbol for f in self.out.plan.functions):
            # _add_rtypes looks for interfaces' dynamic types in these packages
            self.out.plan.functions.append(FunctionPlan(symbol, fn.entry, fn.end, ()))
        try:
            fv = self._variables(symbol)
        except SideEyeError as e:
            return tuple(PcRoot(unavailable=str(e)) for _ in texts)
        if fv is None or self._table is None:
            return tuple(PcRoot(unavailable=f"no DWARF entry for {symbol}") for _ in texts)
        at: dict[str, Variable] = fv.at(pc)  # type: ignore[attr-defined]
        abi: dict[str, Location | str] = {}
        if at_return:
            abi = result_locations(self._table, [v for v in at.values() if v.role == "result"])
        roots = []
        for text, expr in zip(texts, exprs, strict=True):
            if expr is None:
                roots.append(PcRoot(unavailable=f"cannot parse {text!r}"))
                continue
            var = at.get(expr.root) or at.get("&" + expr.root)
            if var is None:
                names = ", ".join(n.lstrip("&") for n in at if not n.startswith("&~")) or "none"
                msg = f"{symbol} has no variable {expr.root!r} (it has: {names})"
                self.out.warnings.append(msg)
                roots.append(PcRoot(unavailable=msg))
                continue
            location: Location | None = var.location
            why: str | None = var.reason
            if location is None and var.role == "result" and var.name in abi:
                found = abi[var.name]
                if isinstance(found, str):
                    location, why = None, found
                else:
                    location, why = found, None
            roots.append(_root(self._table, expr, var, location, why))
        return tuple(roots)

    def finish(self) -> EventValues:
        """The plan's chase types and interfaces' dynamic types, once all is compiled."""
        if self._table is not None:
            reader = self._table.reader
            if reader is not None:
                packages = {_package(f.name) for f in self.out.plan.functions}
                reader.index_packages(packages)
            self.out.plan.chase_types = self._table.out
            _add_rtypes(self.out.plan, self._table, self.binary.read_static)
        else:
            self.out.plan.chase_types = [ChaseType(1, name="bytes"), ChaseType(64, name="raw")]
        return self.out
