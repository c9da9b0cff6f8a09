"""Copying the memory of a frame's captured values, breadth first, within budgets.

This is the reference implementation of the chase: the ptrace backend runs it on a
paused process, and bpf/value_probe.py generates C that does the same steps in the
same order, so both backends copy the same bytes (a test compares them).

For one frame, expression after expression: resolve its root address (the frame's CFA
plus a stack offset, then the path operations), queue the value, then take items off
the queue until it is empty: copy the item's bytes, and for each slot of each element
copied queue what the slot refers to. At most QUEUE items wait at once. The result is a FrameMemory: the root addresses and a sparse image of
memory (item address -> bytes) that decode.py reads values from.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from .plan import (
    FRAME_BUDGET,
    ITAB_TYPE_OFFSET,
    ITEM_MAX,
    MAX_PTR_DEPTH,
    OP_ADD,
    OP_DEREF,
    OP_INDEX,
    QUEUE,
    SLOT_BUCKETS,
    SLOT_EFACE,
    SLOT_GROUPS,
    SLOT_IFACE,
    SLOT_PTR,
    SLOT_SLICE,
    SLOT_STRING,
    SLOT_SWISS_DIR,
    T_RAW,
    CapturePlan,
    Site,
)

# Root status: how resolving an expression's address ended.
ROOT_OK = 0
ROOT_NIL = 1  # a nil pointer on the path: the value is null
ROOT_RANGE = 2  # a slice index past its length
ROOT_UNREADABLE = 3
ROOT_UNAVAILABLE = 4  # the plan has no location at this pc (see Root.unavailable)

# A value split over several stack pieces is assembled; it is filed under this address.
ASSEMBLED = 1 << 63

ReadFn = Callable[[int, int], bytes | None]


@dataclass
class FrameMemory:
    goid: int
    depth: int  # physical frame index in the goroutine's pcs
    pc: int
    roots: list[tuple[int, int]] = field(default_factory=list)  # (status, address) per expression
    image: dict[int, bytes] = field(default_factory=dict)
    unreadable: set[int] = field(default_factory=set)
    dropped: set[int] = field(default_factory=set)  # items the full queue turned away
    budget_left: int = FRAME_BUDGET
    queue_full: bool = False  # an item did not fit the queue (see decode: "item queue full")
    early: bool = False  # queued by the early walk (eBPF), its values read in the pause


def slot_width(kind: int) -> int:
    """Bytes of a value a slot reads: two words for strings, slices and interfaces."""
    return 16 if kind in (SLOT_STRING, SLOT_SLICE, SLOT_EFACE, SLOT_IFACE) else 8


def _u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def resolve_root(
    site: Site, index: int, cfa: int, read: ReadFn, mem: FrameMemory
) -> tuple[int, int]:
    root = site.roots[index]
    if root.unavailable is not None:
        return ROOT_UNAVAILABLE, 0
    if len(root.pieces) > 1:
        parts = []
        for off, size in root.pieces:
            data = read(cfa + off, size)
            if data is None:
                return ROOT_UNREADABLE, cfa + off
            parts.append(data)
        mem.image[ASSEMBLED | index] = b"".join(parts)
        return ROOT_OK, ASSEMBLED | index
    addr = cfa + root.pieces[0][0]
    for op in root.ops:
        if op.kind == OP_ADD:
            addr += op.arg
        elif op.kind == OP_DEREF:
            data = read(addr, 8)
            if data is None:
                return ROOT_UNREADABLE, addr
            addr = _u64(data, 0)
            if addr == 0:
                return ROOT_NIL, 0
        elif op.kind == OP_INDEX:
            data = read(addr, 16)
            if data is None:
                return ROOT_UNREADABLE, addr
            ptr, length = _u64(data, 0), _u64(data, 8)
            if op.arg >= length:
                return ROOT_RANGE, length
            addr = ptr + op.arg * op.elem_size
    return ROOT_OK, addr


def chase_frame(
    plan: CapturePlan, site: Site, goid: int, depth: int, cfa: int, read: ReadFn
) -> FrameMemory:
    mem = FrameMemory(goid=goid, depth=depth, pc=site.pc)
    queue: list[tuple[int, int, int, int]] = []  # (address, chase type, count, pointer depth)
    head = 0  # items before it were taken

    def push(addr: int, ctype: int, count: int, ptr_depth: int) -> None:
        if addr == 0 or count <= 0 or ptr_depth > MAX_PTR_DEPTH:
            return
        if len(queue) - head >= QUEUE:  # a ring in the probe: QUEUE items waiting at most
            mem.queue_full = True
            mem.dropped.add(addr)
            return
        queue.append((addr, ctype, count, ptr_depth))

    def drain() -> None:
        nonlocal head
        while head < len(queue):
            addr, ctype, count, ptr_depth = queue[head]
            head += 1
            size = plan.chase_types[ctype].size
            n = min(size * count, ITEM_MAX, mem.budget_left)
            if size <= ITEM_MAX:
                n -= n % size
            if n <= 0:
                continue
            copied = read(addr, n)
            if copied is None:
                mem.unreadable.add(addr)
                continue
            mem.budget_left -= n
            if len(copied) > len(mem.image.get(addr, b"")):
                mem.image[addr] = copied
            elems = max(1, n // size)
            if size <= ITEM_MAX and elems < count:
                push(addr + elems * size, ctype, count - elems, ptr_depth)
            _scan(plan, ctype, copied, elems, ptr_depth, read, push, mem)

    # One expression after the other, each chased to its end before the next is
    # resolved: the probe's order (it takes a queued item before the next root).
    for i in range(len(site.roots)):
        status, addr = resolve_root(site, i, cfa, read, mem)
        mem.roots.append((status, addr))
        if status != ROOT_OK:
            continue
        root = site.roots[i]
        if addr & ASSEMBLED:
            data = mem.image[addr]  # assembled by resolve_root
            _scan(plan, root.chase_type, data, 1, 0, read, push, mem)
        else:
            push(addr, root.chase_type, 1, 0)
        drain()
    return mem


def _scan(  # noqa: C901 - values/ is being changed on another branch: split it after the merge
    plan: CapturePlan,
    ctype: int,
    data: bytes,
    elems: int,
    ptr_depth: int,
    read: ReadFn,
    push: Callable[[int, int, int, int], None],
    mem: FrameMemory,
) -> None:
    ct = plan.chase_types[ctype]
    d = ptr_depth + 1
    for e in range(elems):
        base = e * ct.size
        for s in ct.slots:
            o = base + s.off
            if o + slot_width(s.kind) > len(data):
                continue
            p = _u64(data, o)
            if s.kind == SLOT_PTR:
                push(p, s.target, 1, d)
            elif s.kind == SLOT_STRING or s.kind == SLOT_SLICE:
                push(p, s.target, min(_u64(data, o + 8), s.cap), d)
            elif s.kind in (SLOT_EFACE, SLOT_IFACE):
                typ = p
                if s.kind == SLOT_IFACE and p:
                    word = read(p + ITAB_TYPE_OFFSET, 8)
                    typ = _u64(word, 0) if word else 0
                    if word:
                        mem.image.setdefault(p + ITAB_TYPE_OFFSET, word)
                if typ:
                    push(_u64(data, o + 8), plan.rtypes.get(typ, T_RAW), 1, d)
            elif s.kind == SLOT_SWISS_DIR:
                if base + s.aux + 8 > len(data):
                    continue
                dir_len = _u64(data, base + s.aux)
                if dir_len == 0:
                    push(p, s.target, 1, d)
                else:
                    push(p, s.target2, min(dir_len, s.cap), d)
            elif s.kind == SLOT_GROUPS:
                if base + s.aux + 8 > len(data):
                    continue
                push(p, s.target, min(_u64(data, base + s.aux) + 1, s.cap), d)
            elif s.kind == SLOT_BUCKETS:
                if base + s.aux >= len(data):
                    continue
                b = data[base + s.aux]
                push(p, s.target, min(1 << min(b, 16), s.cap), d)
