"""Go's pclntab (Go 1.18+): functions, files, lines, SP deltas and inlining by PC.

The runtime reads this table to print its own tracebacks, so it survives
`-ldflags='-s -w'`. Layout (runtime/symtab.go, cmd/link/internal/ld/pcln.go):
a pcHeader, then funcnametab, cutab, filetab, pctab and the functab of
(entryoff, funcoff) pairs pointing at `_func` records. Each `_func` names its
pc-value tables (pcsp, pcfile, pcln, pcdata[]) as offsets into pctab; the inline
tree is a funcdata blob relative to moduledata.gofunc. Nothing is decoded until a
PC of that function is asked for.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAGIC_GO118 = 0xFFFFFFF0  # Go 1.18, 1.19
MAGIC_GO120 = 0xFFFFFFF1  # Go 1.20 and later (same layout up to 1.26 at least)
MAGICS = (MAGIC_GO118, MAGIC_GO120)

PCDATA_INL_TREE_INDEX = 2
FUNCDATA_INL_TREE = 3
_NO_FUNCDATA = 0xFFFFFFFF

# One decoded pc-value table: ends[i] is the first pc after the run whose value is
# values[i]; runs are contiguous from the function's entry.
_Table = tuple["array[int]", "array[int]"]

# A logical frame: (function as printed, file, line, inlined, wrapper): wrapper when its
# funcID (the _func's, or the inline tree entry's) is FuncIDWrapper.
RawFrame = tuple[str, str, int, bool, bool]

# Reads `size` bytes of the binary's image at a virtual address.
ReadFn = Callable[[int, int], bytes]


class PclntabError(Exception):
    """The bytes are not a pclntab this module understands."""


def print_name(name: str) -> str:
    """The runtime's funcNameForPrint: generic shape arguments become "[...]"."""
    i = name.find("[")
    if i < 0:
        return name
    j = name.rfind("]")
    if j <= i:
        return name
    return name[:i] + "[...]" + name[j + 1 :]


@dataclass(frozen=True)
class FuncRecord:
    """The fixed part of one `_func` record, plus where its arrays start."""

    entry: int
    end: int
    name_off: int
    pcsp: int
    pcfile: int
    pcln: int
    npcdata: int
    cu_offset: int
    func_id: int
    nfuncdata: int
    arrays_off: int  # offset in the pclntab of pcdata[0]

    def pcdata(self, tab: Pclntab, index: int) -> int:
        if index >= self.npcdata:
            return 0
        return tab._u32(self.arrays_off + 4 * index)

    def funcdata(self, tab: Pclntab, index: int) -> int:
        if index >= self.nfuncdata:
            return _NO_FUNCDATA
        return tab._u32(self.arrays_off + 4 * self.npcdata + 4 * index)


class _FuncTables:
    """The decoded pc-value tables of one function (decoded on first use)."""

    __slots__ = ("sp", "file", "line", "inl")

    def __init__(self, tab: Pclntab, fn: FuncRecord) -> None:
        self.sp = tab._decode(fn.pcsp, fn.entry)
        self.file = tab._decode(fn.pcfile, fn.entry)
        self.line = tab._decode(fn.pcln, fn.entry)
        self.inl = tab._decode(fn.pcdata(tab, PCDATA_INL_TREE_INDEX), fn.entry)


def _lookup(table: _Table | None, pc: int) -> int | None:
    if table is None:
        return None
    ends, values = table
    i = bisect.bisect_right(ends, pc)
    if i >= len(ends):
        return None
    return int(values[i])


class Pclntab:
    """A pclntab held in memory; `text_start` comes from its own header."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8 + 8 * 8:
            raise PclntabError("pclntab too short")
        magic, _pad1, _pad2, quantum, ptr_size = struct.unpack_from("<IBBBB", data, 0)
        if magic not in MAGICS:
            raise PclntabError(f"unsupported pclntab magic {magic:#x} (Go older than 1.18?)")
        if ptr_size != 8:
            raise PclntabError(f"unsupported pointer size {ptr_size}")
        words = struct.unpack_from("<8Q", data, 8)
        self.data = data
        self.magic: int = magic
        self.quantum: int = quantum
        self.nfunc: int = words[0]
        self.nfiles: int = words[1]
        self.text_start: int = words[2]
        self.funcname_off: int = words[3]
        self.cu_off: int = words[4]
        self.filetab_off: int = words[5]
        self.pctab_off: int = words[6]
        self.pcln_off: int = words[7]
        self._func_header = 44 if magic == MAGIC_GO120 else 40
        ftab_end = self.pcln_off + 8 * (self.nfunc + 1)
        if ftab_end > len(data):
            raise PclntabError("functab extends past the pclntab")
        raw = array("I")
        raw.frombytes(data[self.pcln_off : ftab_end])
        self._entries = raw[0::2]  # text-relative entry offsets, sorted; last = end of text
        self._funcoffs = raw[1::2]
        self._tables: OrderedDict[int, _FuncTables] = OrderedDict()
        self._names: dict[str, int] | None = None
        self._inl_size = 16 if magic == MAGIC_GO120 else 20

    # -- raw access ---------------------------------------------------------------

    def _u32(self, off: int) -> int:
        value: int = struct.unpack_from("<I", self.data, off)[0]
        return value

    def _cstring(self, off: int) -> str:
        end = self.data.index(b"\x00", off)
        return self.data[off:end].decode("utf-8", "replace")

    def _decode(self, off: int, entry: int) -> _Table | None:
        """Decode a whole pc-value table (zig-zag value deltas, pc deltas in quanta)."""
        if off == 0:
            return None
        data = self.data
        p = self.pctab_off + off
        pc = entry
        val = -1
        ends = array("Q")
        values = array("q")
        first = True
        while True:
            b = data[p]
            if b == 0 and not first:
                break
            first = False
            uv, shift = 0, 0
            while True:
                b = data[p]
                p += 1
                uv |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            val += -(uv >> 1) - 1 if uv & 1 else uv >> 1
            pcd, shift = 0, 0
            while True:
                b = data[p]
                p += 1
                pcd |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            pc += pcd * self.quantum
            ends.append(pc)
            values.append(val)
        return ends, values

    # -- functions ----------------------------------------------------------------

    @property
    def text_end(self) -> int:
        return self.text_start + int(self._entries[-1])

    def func_index(self, pc: int) -> int | None:
        off = pc - self.text_start
        if off < 0 or off >= self._entries[-1]:
            return None
        i = bisect.bisect_right(self._entries, off) - 1
        if i < 0 or i >= self.nfunc:
            return None
        return i

    def func_at(self, index: int) -> FuncRecord:
        base = self.pcln_off + int(self._funcoffs[index])
        (entry_off, name_off, _args, _defer, pcsp, pcfile, pcln, npcdata, cu_offset) = (
            struct.unpack_from("<IiiIIIIII", self.data, base)
        )
        tail = base + self._func_header - 4
        func_id, _flag, _pad, nfuncdata = struct.unpack_from("<BBBB", self.data, tail)
        return FuncRecord(
            entry=self.text_start + entry_off,
            end=self.text_start + int(self._entries[index + 1]),
            name_off=name_off,
            pcsp=pcsp,
            pcfile=pcfile,
            pcln=pcln,
            npcdata=npcdata,
            cu_offset=cu_offset,
            func_id=func_id,
            nfuncdata=nfuncdata,
            arrays_off=base + self._func_header,
        )

    def find_func(self, pc: int) -> FuncRecord | None:
        i = self.func_index(pc)
        return None if i is None else self.func_at(i)

    def func_name(self, name_off: int) -> str:
        return self._cstring(self.funcname_off + name_off)

    def file_name(self, fn: FuncRecord, fileno: int) -> str:
        if fileno < 0:
            return "?"
        slot = self.cu_off + 4 * (fn.cu_offset + fileno)
        if slot + 4 > self.filetab_off:
            return "?"
        off = self._u32(slot)
        if off == 0xFFFFFFFF:
            return "?"
        return self._cstring(self.filetab_off + off)

    def iter_funcs(self) -> Iterator[FuncRecord]:
        for i in range(self.nfunc):
            yield self.func_at(i)

    def names(self) -> dict[str, int]:
        """Raw symbol name and printed name -> function index (first wins)."""
        if self._names is None:
            names: dict[str, int] = {}
            data = self.data
            fo = self.funcname_off
            for i in range(self.nfunc):
                base = self.pcln_off + int(self._funcoffs[i])
                name_off = struct.unpack_from("<i", data, base + 4)[0]
                start = fo + name_off
                name = data[start : data.index(b"\x00", start)].decode("utf-8", "replace")
                names.setdefault(name, i)
                names.setdefault(print_name(name), i)
            self._names = names
        return self._names

    def tables(self, fn: FuncRecord) -> _FuncTables:
        t = self._tables.get(fn.entry)
        if t is None:
            t = _FuncTables(self, fn)
            self._tables[fn.entry] = t
            if len(self._tables) > 4096:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(fn.entry)
        return t

    def sp_delta(self, pc: int) -> int | None:
        fn = self.find_func(pc)
        if fn is None:
            return None
        return _lookup(self.tables(fn).sp, pc)

    def file_line(self, fn: FuncRecord, pc: int) -> tuple[str, int]:
        t = self.tables(fn)
        fileno = _lookup(t.file, pc)
        line = _lookup(t.line, pc)
        file = "?" if fileno is None else self.file_name(fn, fileno)
        return file, 0 if line is None else line


@dataclass(frozen=True)
class InlinedCall:
    func_id: int
    name_off: int
    parent_pc: int  # offset from the physical function's entry


class InlineTrees:
    """Reads inline-tree entries at moduledata.gofunc + funcdata offset.

    `gofunc` is the address of go:func.* (None: inlining unknown, physical frames only).
    """

    def __init__(self, tab: Pclntab, gofunc: int | None, read: ReadFn) -> None:
        self.tab = tab
        self.gofunc = gofunc
        self.read = read

    def entry(self, fn: FuncRecord, index: int) -> InlinedCall | None:
        if self.gofunc is None:
            return None
        off = fn.funcdata(self.tab, FUNCDATA_INL_TREE)
        if off == _NO_FUNCDATA:
            return None
        size = self.tab._inl_size
        raw = self.read(self.gofunc + off + index * size, size)
        if self.tab.magic == MAGIC_GO120:
            func_id, name_off, parent_pc, _start_line = struct.unpack("<B3xiii", raw)
        else:
            _parent, func_id, _file, _line, name_off, parent_pc = struct.unpack("<hBxiiii", raw)
        return InlinedCall(func_id, name_off, parent_pc)


def symbolize(
    tab: Pclntab,
    inl: InlineTrees,
    pc: int,
    return_address: bool,
    wrapper_id: int | None,
) -> tuple[RawFrame, ...] | None:
    """Logical frames at pc, innermost first, as the runtime's inlineUnwinder sees them.

    Frames of compiler-made wrappers (funcID `wrapper_id`: `<autogenerated>` methods,
    generic dictionary wrappers, `go` statement wrappers) are kept and marked, inlined
    or not: whether a traceback shows one also depends on its callee (decode.py)."""
    fn = tab.find_func(pc)
    if fn is None:
        return None
    look = pc - 1 if return_address and pc > fn.entry else pc
    tables = tab.tables(fn)
    frames: list[RawFrame] = []
    index = _lookup(tables.inl, look)
    cur = look
    depth = 0
    while index is not None and index >= 0 and depth < 1000:
        call = inl.entry(fn, index)
        if call is None:
            break
        file, line = tab.file_line(fn, cur)
        wrapper = wrapper_id is not None and call.func_id == wrapper_id
        frames.append((print_name(tab.func_name(call.name_off)), file, line, True, wrapper))
        cur = fn.entry + call.parent_pc
        index = _lookup(tables.inl, cur)
        depth += 1
    file, line = tab.file_line(fn, cur)
    wrapper = wrapper_id is not None and fn.func_id == wrapper_id
    frames.append((print_name(tab.func_name(fn.name_off)), file, line, False, wrapper))
    return tuple(frames)


def wrapper_func_id(tab: Pclntab) -> int | None:
    """FuncIDWrapper's value: the only non-zero funcID shared by many functions.

    Every other FuncID names one special runtime function, and their numbering
    changes between Go versions, so count instead of hard-coding.
    """
    counts: dict[int, int] = {}
    data = tab.data
    tail = tab._func_header - 4
    for i in range(tab.nfunc):
        fid = data[tab.pcln_off + int(tab._funcoffs[i]) + tail]
        if fid:
            counts[fid] = counts.get(fid, 0) + 1
    if not counts:
        return None
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] > 3 else None
