"""Where a probe goes: a location as the user wrote it -> the code addresses to probe.

Everything comes from the pclntab (so it works on stripped binaries too) and from
disassembling the function's own bytes:

- a function's entry site is the first pc after its prologue: the stack-growth check
  (which jumps back to the entry after growing the stack, so a probe at the entry
  could fire twice for one call) and the frame set-up are done there. That is the
  first pc where the pcsp table reaches its largest value, the frame size.
- its return sites are its RET instructions (capstone), never uretprobes;
- where the compiler inlined it elsewhere: the first pc of each inlined copy (an
  entry site marked inlined: no return to pair, so no duration);
- a file:line: the first pc of every run of that file and line in the pc-line
  table, inlined copies included (the table gives the innermost position).

Each site carries the SP delta at its pc, so the probe can compute the frame's CFA
(SP + delta + 8) and pair returns with entries by (goid, stack.hi - CFA).
"""

from __future__ import annotations

import difflib
import weakref
from dataclasses import dataclass

from ..dwarf.binary import GoBinary
from ..dwarf.pclntab import FuncRecord, Pclntab, _lookup, print_name
from ..errors import SideEyeError

KIND_ENTRY = "entry"
KIND_RETURN = "return"
KIND_LINE = "line"


class LocationError(SideEyeError):
    """A probe location that matches no code, or several files."""


@dataclass(frozen=True)
class Site:
    """One code address a probe fires at."""

    pc: int
    kind: str  # entry, return, line
    sp_delta: int  # bytes pushed since the physical function's entry, at pc
    inlined: bool  # in an inlined copy (entry: of the probed function; line: of any)


@dataclass(frozen=True)
class Resolved:
    """A location and everything it probes."""

    location: str  # as written
    kind: str  # "function" or "line"
    function: str | None  # the function as the runtime prints it
    file: str | None
    line: int | None
    sites: tuple[Site, ...]


def is_line_location(location: str) -> bool:
    """`PATH:LINE` (a digit string after the last colon) rather than a function name."""
    head, sep, tail = location.rpartition(":")
    return bool(sep) and bool(head) and tail.isdigit()


def resolve(binary: GoBinary, location: str) -> Resolved:
    """The sites of one location; LocationError (one line) if there are none."""
    if is_line_location(location):
        path, _, line = location.rpartition(":")
        return resolve_line(binary, path, int(line), location)
    return resolve_function(binary, location)


# -- runs of pc-value tables ------------------------------------------------------------


def _runs(ends: object, values: object, entry: int) -> list[tuple[int, int, int]]:
    """(start, end, value) of each run of a decoded pc-value table."""
    out = []
    start = entry
    for end, value in zip(ends, values, strict=True):  # type: ignore[call-overload]
        out.append((start, int(end), int(value)))
        start = int(end)
    return out


def _sp_runs(tab: Pclntab, fn: FuncRecord) -> list[tuple[int, int, int]]:
    table = tab.tables(fn).sp
    if table is None:
        return []
    return _runs(table[0], table[1], fn.entry)


def entry_site(tab: Pclntab, fn: FuncRecord) -> Site:
    """The first pc after the prologue (see the module's docstring)."""
    runs = _sp_runs(tab, fn)
    frame = max((v for _s, _e, v in runs), default=0)
    for start, end, value in runs:
        if value == frame and end > start:
            return Site(start, KIND_ENTRY, value, False)
    return Site(fn.entry, KIND_ENTRY, 0, False)


def return_sites(binary: GoBinary, fn: FuncRecord) -> list[Site]:
    """Every RET of the function's code, with the SP delta there (0 in Go's epilogue)."""
    import capstone

    code = binary.read_static(fn.entry, fn.end - fn.entry)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    sites = []
    tab = binary.pclntab
    for insn in md.disasm(code, fn.entry):
        if insn.id == capstone.x86.X86_INS_RET:
            delta = tab.sp_delta(insn.address)
            sites.append(Site(insn.address, KIND_RETURN, delta or 0, False))
    return sites


def inline_index(binary: GoBinary) -> dict[str, list[int]]:
    """Every inlined copy in the binary: the callee's symbol name -> the first pc of
    each copy (the lowest pc whose inline chain holds that call). One pass over every
    function's inline tree, kept on disk under the build id: a large binary takes
    seconds, and every function probe needs it."""

    def compute() -> dict[str, list[int]]:
        out: dict[str, set[int]] = {}
        if binary.inline_trees.gofunc is None:
            return {}
        for fn in binary.pclntab.iter_funcs():
            for name, pc in _inlined_in(binary, fn):
                out.setdefault(name, set()).add(pc)
        return {name: sorted(pcs) for name, pcs in out.items()}

    found = _indexes.get(binary)
    if found is None:
        raw: dict[str, list[int]] = binary.analysis("inline-index", compute)
        found = {}
        for name, pcs in raw.items():  # by symbol and as printed (all instantiations)
            found.setdefault(name, []).extend(pcs)
            printed = print_name(name)
            if printed != name:
                found.setdefault(printed, []).extend(pcs)
        _indexes[binary] = found
    return found


_indexes: weakref.WeakKeyDictionary[GoBinary, dict[str, list[int]]] = weakref.WeakKeyDictionary()


def _inlined_in(binary: GoBinary, fn: FuncRecord) -> list[tuple[str, int]]:
    """(callee symbol, first pc) of each inlined call in one function's code."""
    tab = binary.pclntab
    inl = binary.inline_trees
    table = tab.tables(fn).inl
    if table is None:
        return []
    chains: dict[int, list[int]] = {}  # inline index -> it and its callers' indexes
    names: dict[int, str] = {}

    def chain(index: int) -> list[int]:
        found = chains.get(index)
        if found is not None:
            return found
        out: list[int] = []
        cur = index
        while cur >= 0 and len(out) < 100:
            if cur in chains:
                out += chains[cur]
                break
            call = inl.entry(fn, cur)
            if call is None:
                break
            names[cur] = tab.func_name(call.name_off)
            out.append(cur)
            nxt = _lookup(table, fn.entry + call.parent_pc)
            cur = -1 if nxt is None else nxt
        chains[index] = out
        return out

    first: dict[int, int] = {}
    for start, end, index in _runs(table[0], table[1], fn.entry):
        if index < 0 or end <= start:
            continue
        for i in chain(index):
            if i not in first or start < first[i]:
                first[i] = start
    return [(names[i], pc) for i, pc in first.items() if i in names]


def _inlined_entries(binary: GoBinary, names: set[str]) -> list[Site]:
    """The first pc of each inlined copy of a function named in `names` (a symbol name,
    or as the runtime prints it: every instantiation of a generic)."""
    index = inline_index(binary)
    pcs: set[int] = set()
    for name in names:
        pcs.update(index.get(name, ()))
    tab = binary.pclntab
    return [Site(pc, KIND_ENTRY, tab.sp_delta(pc) or 0, True) for pc in sorted(pcs)]


def resolve_function(binary: GoBinary, name: str, inlined: bool = True) -> Resolved:
    """Entry and return sites of every instantiation of `name`, plus its inlined copies."""
    tab = binary.pclntab
    found = binary.functions_named(name)
    sites: list[Site] = []
    symbols: set[str] = {name}
    for symbol, entry, _end in found:
        symbols.add(symbol)
        fn = tab.find_func(entry)
        if fn is None:
            continue
        sites.append(entry_site(tab, fn))
        sites.extend(return_sites(binary, fn))
    if inlined:
        sites.extend(_inlined_entries(binary, symbols))
    if not sites:
        close = difflib.get_close_matches(name, binary.function_names(), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise LocationError(f"{name}: no such function in {binary.path}{hint}")
    file, line = (None, None)
    if found:
        fn = tab.find_func(found[0][1])
        if fn is not None:
            file, line = tab.file_line(fn, fn.entry)
    return Resolved(name, "function", name, file, line, tuple(sites))


# -- file:line ---------------------------------------------------------------------------


def _statement_starts(binary: GoBinary, sites: list[Site], line: int) -> list[Site]:
    """Of the pcs where a run of the line starts, those DWARF's line table marks as a
    statement start (is_stmt): the compiler may schedule a statement's code in two
    runs (Go 1.22 splits `acc ^= step(i)` around the loop's increment), and a probe at
    both would count each execution twice. Without DWARF, every run start stays."""
    if not binary.has_dwarf:
        return sites
    try:
        stmt = _is_stmt_rows(binary, {binary.function_name(s.pc) or "" for s in sites}, line)
    except Exception:  # noqa: BLE001 - unreadable DWARF: keep the pclntab's answer
        return sites
    kept = [s for s in sites if stmt.get(s.pc, True)]
    return kept or sites


def _is_stmt_rows(binary: GoBinary, functions: set[str], line: int) -> dict[int, bool]:
    """address -> whether a row of `line` there is a statement start, from the line
    programs of the units (packages) of these functions."""
    from ..values.plan import _package

    packages = {_package(f) for f in functions}
    dwarf = binary.dwarf_info()
    out: dict[int, bool] = {}
    for cu in dwarf.iter_CUs():
        name = cu.get_top_DIE().attributes.get("DW_AT_name")
        if name is None or name.value.decode("utf-8", "replace") not in packages:
            continue
        program = dwarf.line_program_for_CU(cu)
        if program is None:
            continue
        for entry in program.get_entries():
            st = entry.state
            if st is not None and st.line == line:
                out[st.address] = out.get(st.address, False) or bool(st.is_stmt)
    return out


def source_files(tab: Pclntab) -> list[str]:
    """Every file name in the pclntab's file table."""
    raw = tab.data[tab.filetab_off : tab.pctab_off]
    return sorted({s.decode("utf-8", "replace") for s in raw.split(b"\x00") if s})


def match_file(tab: Pclntab, path: str) -> str:
    """The one file whose path ends with `path` (on a / boundary)."""
    files = source_files(tab)
    hits = [f for f in files if f == path or f.endswith("/" + path)]
    if not hits:
        base = path.rsplit("/", 1)[-1]
        close = [f for f in files if f.rsplit("/", 1)[-1] == base][:3]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise LocationError(f"{path}: no source file of the binary ends with this path{hint}")
    if len(hits) > 1:
        shown = ", ".join(hits[:5]) + (", ..." if len(hits) > 5 else "")
        raise LocationError(f"{path}: ambiguous, {len(hits)} files match: {shown}")
    return hits[0]


def resolve_line(binary: GoBinary, path: str, line: int, location: str | None = None) -> Resolved:
    """Every pc where a run of (file, line) starts, in every function."""
    tab = binary.pclntab
    file = match_file(tab, path)
    sites: list[Site] = []
    functions: list[str] = []
    for fn in tab.iter_funcs():
        tables = tab.tables(fn)
        if tables.file is None or tables.line is None:
            continue
        file_runs = _runs(tables.file[0], tables.file[1], fn.entry)
        wanted = {v for _s, _e, v in file_runs if tab.file_name(fn, v) == file}
        if not wanted:
            continue
        # Merge both tables' boundaries into runs of (file, line).
        cuts = sorted(
            {fn.entry} | {s for s, _e, _v in file_runs} | {int(e) for e in tables.line[0]}
        )
        prev: tuple[int, int] | None = None
        for i, pc in enumerate(cuts):
            if pc >= fn.end:
                break
            end = cuts[i + 1] if i + 1 < len(cuts) else fn.end
            if end <= pc:
                continue
            fno = _lookup(tables.file, pc)
            ln = _lookup(tables.line, pc)
            key = (-1 if fno is None else fno, -1 if ln is None else ln)
            if key != prev and fno in wanted and ln == line:
                inl = _lookup(tables.inl, pc) if tables.inl is not None else None
                sites.append(
                    Site(pc, KIND_LINE, tab.sp_delta(pc) or 0, inl is not None and inl >= 0)
                )
                if not functions or functions[-1] != print_name(tab.func_name(fn.name_off)):
                    functions.append(print_name(tab.func_name(fn.name_off)))
            prev = key
    if not sites:
        raise LocationError(f"{location or f'{path}:{line}'}: no code at line {line} of {file}")
    sites = _statement_starts(binary, sites, line)
    inner = binary.symbolize(sites[0].pc, False)[0].function
    return Resolved(location or f"{path}:{line}", "line", inner, file, line, tuple(sites))
