"""Captured values of events: compiled per probed pc, sent to BPF maps, decoded back.

The probe resolves each expression's root and chases what it points to (the C in
bpf/c/event_probe.c, the same steps as values/chase.py for snapshots); the records
it sends are assembled here into the FrameMemory the snapshot decoder reads, so
values follow the same JSON conventions, budgets and cut marks as in snapshots.
"""

from __future__ import annotations

import ctypes as ct
from dataclasses import dataclass, field
from typing import Any

from ..bpf import event_probe as ep
from ..model import CapturedValue
from ..values.at_pc import PIECE_REG, EventValues, EventValuesCompiler, PcRoot
from ..values.chase import (
    ASSEMBLED,
    ROOT_OK,
    ROOT_UNAVAILABLE,
    ROOT_UNREADABLE,
    FrameMemory,
)
from ..values.decode import ValueDecoder
from ..values.plan import CompiledExpression
from .locations import KIND_RETURN, Resolved
from .targets import Target

LOST = "lost: the value ring buffer was full"

# struct vsmall, by the names of its mirror's fields.
_SMALL_SIZE = ct.sizeof(ep.VSmall)
_S_N = ep.VSmall.n.offset
_S_EVENT = ep.VSmall.event_id.offset
_S_R = ep.VSmall.r.offset
_SR_SIZE = ct.sizeof(ep.VSmallRoot)
_SR_INDEX = ep.VSmallRoot.index.offset
_SR_STATUS = ep.VSmallRoot.status.offset
_SR_ADDR = ep.VSmallRoot.addr.offset
_SR_LEN = ep.VSmallRoot.len.offset
_SR_DATA = ep.VSmallRoot.data.offset


def _u32(raw: bytes, off: int) -> int:
    return int.from_bytes(raw[off : off + 4], "little")


def _u64(raw: bytes, off: int) -> int:
    return int.from_bytes(raw[off : off + 8], "little")


@dataclass
class TargetValues:
    """One target's compiled values and what the maps got."""

    target: Target
    tag: int
    compiler: EventValuesCompiler
    ctype_base: int = 0
    plan: EventValues | None = None
    decoder: ValueDecoder | None = None
    # (pc, probe_id) -> (first vexpr index, texts, roots)
    at: dict[tuple[int, int], tuple[int, tuple[str, ...], tuple[PcRoot, ...]]] = field(
        default_factory=dict
    )


def compile_probe(
    tv: TargetValues,
    probe_id: int,
    r: Resolved,
    capture: tuple[str, ...],
    on_return: tuple[str, ...],
) -> None:
    for s in r.sites:
        texts = on_return if s.kind == KIND_RETURN else capture
        if not texts:
            continue
        roots = tv.compiler.compile(s.pc, texts, s.kind == KIND_RETURN, s.inlined)
        tv.at[(s.pc, probe_id)] = (-1, texts, roots)


def columns(tv: TargetValues, texts: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    compiled = tv.compiler.out.expressions.get(texts)
    if compiled is None:
        return tuple((t, "JSON") for t in texts)
    return tuple((c.text, c.sql_type) for c in compiled)


def fill_maps(bpf: Any, tvs: list[TargetValues], limits: ep.EventLimits) -> None:
    """vexprs, vctypes and vrtypes, for every target; sets each site's first index."""
    vexprs = bpf[b"vexprs"]
    vctypes = bpf[b"vctypes"]
    vrtypes = bpf[b"vrtypes"]
    next_expr = 0
    next_ctype = 0
    for tv in tvs:
        tv.plan = tv.compiler.finish()
        plan = tv.plan.plan
        tv.ctype_base = next_ctype
        if next_ctype + len(plan.chase_types) > limits.max_ctypes:
            raise ValueError("too many chase types")
        for i, c in enumerate(plan.chase_types):
            v = ep.VCType(size=c.size, nslots=len(c.slots))
            for j, sl in enumerate(c.slots[: ep.MAX_SLOTS]):
                v.slots[j] = ep.VSlot(
                    sl.off,
                    sl.kind,
                    sl.target + next_ctype,
                    sl.aux,
                    sl.cap,
                    sl.target2 + next_ctype,
                )
            vctypes[ct.c_int(next_ctype + i)] = v
        next_ctype += len(plan.chase_types)
        for addr, ctype in list(plan.rtypes.items())[: limits.max_rtypes]:
            vrtypes[ct.c_uint64(addr ^ (tv.tag << 56))] = ct.c_uint32(ctype + tv.ctype_base)
        for key, (_first, texts, roots) in list(tv.at.items()):
            first = next_expr
            for root in roots[: ep.MAX_EXPRS]:
                if next_expr >= limits.max_vexprs:
                    raise ValueError("too many captured expressions")
                small = not plan.chase_types[root.chase_type].slots and root.size <= ep.SMALL
                x = ep.VExpr(
                    npieces=len(root.pieces),
                    nops=len(root.ops),
                    size=root.size,
                    ctype=root.chase_type + tv.ctype_base,
                    unavailable=int(root.unavailable is not None),
                    small=int(small),
                )
                for i, (kind, reg, off) in enumerate(root.pieces):
                    x.pieces[i] = ep.VPiece(kind, reg if kind == PIECE_REG else 0, off)
                for i, op in enumerate(root.ops):
                    x.ops[i] = ep.VOp(op.kind, op.arg, op.elem_size, 0)
                vexprs[ct.c_int(next_expr)] = x
                next_expr += 1
            tv.at[key] = (first, texts, roots)
        if plan.types is not None:
            binary = tv.target.binary
            tv.decoder = ValueDecoder(plan, binary.function_name, binary.read_static)


@dataclass
class _Pending:
    roots: dict[int, tuple[int, int, bytes]] = field(default_factory=dict)
    items: dict[int, bytes] = field(default_factory=dict)
    unreadable: set[int] = field(default_factory=set)


class ValueRecords:
    """Value records as they come, by event; decoded when their event is written."""

    def __init__(self) -> None:
        self.by_event: dict[int, _Pending] = {}
        self._scalar: dict[int, tuple[int, bool, bool] | None] = {}  # type -> size, signed, bool

    def _scalar_of(self, decoder: ValueDecoder, type_id: int) -> tuple[int, bool, bool] | None:
        """Integers and bools decode from their bytes alone (most captured values)."""
        if type_id not in self._scalar:
            t = decoder.t(type_id)
            found = None
            if t.kind in ("int", "uint") and t.name != "time.Duration" and t.size <= 8:
                found = (t.size, t.kind == "int", False)
            elif t.kind == "bool":
                found = (1, False, True)
            self._scalar[type_id] = found
        return self._scalar[type_id]

    def _scalars(
        self,
        p: _Pending,
        roots: tuple[PcRoot, ...],
        texts: tuple[str, ...],
        compiled: tuple[CompiledExpression, ...],
        decoder: ValueDecoder | None,
    ) -> tuple[CapturedValue, ...] | None:
        """The values when every one is an integer or bool read whole; else None."""
        if decoder is None:
            return None
        out = []
        for i, root in enumerate(roots):
            got = p.roots.get(i)
            if root.unavailable is not None or got is None or not root.value_type:
                return None
            scalar = self._scalar_of(decoder, root.value_type)
            if scalar is None:
                return None
            status, addr, raw = got
            start = addr if status == ep.ROOT_ASSEMBLED else 0
            if status not in (ROOT_OK, ep.ROOT_ASSEMBLED):
                return None
            size, signed, is_bool = scalar
            data = raw[start : start + size]
            if len(data) < size:
                return None
            value: object = (
                data[0] != 0 if is_bool else int.from_bytes(data, "little", signed=signed)
            )
            out.append(CapturedValue(texts[i], value, compiled[i].sql_type))
        return tuple(out)

    def on_record(self, _ctx: Any, data: Any, _size: int) -> int:
        if ct.cast(data, ct.POINTER(ct.c_uint32)).contents.value == ep.VREC_SMALL:
            return self._on_small(ct.string_at(data, _SMALL_SIZE))
        r = ct.cast(data, ct.POINTER(ep.VRec)).contents
        p = self.by_event.get(r.event_id)
        if p is None:
            p = self.by_event[r.event_id] = _Pending()
        n = min(int(r.len), ep.VALUE_MAX)
        raw = ct.string_at(ct.addressof(r.data), n) if n else b""
        if r.kind == ep.VREC_ROOT:
            p.roots[int(r.index)] = (int(r.status), int(r.addr), raw)
        elif r.status == ROOT_UNREADABLE:
            p.unreadable.add(int(r.addr))
        else:
            old = p.items.get(int(r.addr), b"")
            if len(raw) > len(old):
                p.items[int(r.addr)] = raw
        return 0

    def _on_small(self, raw: bytes) -> int:
        """A VREC_SMALL record, read from its bytes at the mirror's field offsets (ctypes
        field access on nested arrays costs tens of microseconds a record)."""
        n = min(_u32(raw, _S_N), ep.MAX_EXPRS)
        event_id = _u64(raw, _S_EVENT)
        p = self.by_event.get(event_id)
        if p is None:
            p = self.by_event[event_id] = _Pending()
        for k in range(n):
            base = _S_R + k * _SR_SIZE
            size = min(_u32(raw, base + _SR_LEN), ep.SMALL)
            data = raw[base + _SR_DATA : base + _SR_DATA + size]
            p.roots[_u32(raw, base + _SR_INDEX)] = (
                _u32(raw, base + _SR_STATUS),
                _u64(raw, base + _SR_ADDR),
                data,
            )
        return 0

    def complete(self, event_id: int, n: int) -> bool:
        p = self.by_event.get(event_id)
        return p is not None and len(p.roots) >= n

    def take(
        self,
        event_id: int,
        goid: int,
        pc: int,
        texts: tuple[str, ...],
        roots: tuple[PcRoot, ...],
        compiled: tuple[CompiledExpression, ...],
        decoder: ValueDecoder | None,
    ) -> tuple[CapturedValue, ...]:
        p = self.by_event.pop(event_id, None) or _Pending()
        fast = self._scalars(p, roots, texts, compiled, decoder)
        if fast is not None:
            return fast
        mem = FrameMemory(goid=goid, depth=0, pc=pc)
        mem.image.update(p.items)
        mem.unreadable |= p.unreadable
        reasons: list[str | None] = []
        for i, root in enumerate(roots):
            got = p.roots.get(i)
            if root.unavailable is not None:
                mem.roots.append((ROOT_UNAVAILABLE, 0))
                reasons.append(root.unavailable)
            elif got is None:
                mem.roots.append((ROOT_UNAVAILABLE, 0))
                reasons.append(LOST)
            else:
                status, addr, raw = got
                if status == ep.ROOT_ASSEMBLED:
                    key = ASSEMBLED | i
                    mem.image[key] = raw[addr:]
                    mem.roots.append((ROOT_OK, key))
                else:
                    if status == ROOT_OK:
                        mem.image[addr] = (
                            raw if len(raw) >= len(mem.image.get(addr, b"")) else mem.image[addr]
                        )
                    mem.roots.append((status, addr))
                reasons.append(None)
        out = []
        for i, (text, c) in enumerate(zip(texts, compiled, strict=True)):
            if decoder is None or roots[i].unavailable is not None or reasons[i] == LOST:
                out.append(CapturedValue(text, None, c.sql_type, reasons[i] or "unavailable"))
                continue
            try:
                out.append(decoder.value(mem, i, c, reasons[i], roots[i].value_type or None))
            except Exception as e:  # noqa: BLE001 - one bad value must not lose the trace
                out.append(CapturedValue(text, None, c.sql_type, f"decode failed: {e}"))
        return tuple(out)
