"""Turning the memory a backend copied for a frame into JSON values.

The conventions (a public contract, in README.md "Captured values"):
structs are objects keyed by field name; pointers are the value they point to (nil is
null); strings, numbers and bools are themselves (NaN and infinities as strings,
complex numbers as [re, im]); slices and arrays are lists (a nil slice is null); maps
with string keys are objects, other maps lists of [key, value] pairs sorted by the
key's JSON; interfaces are {"$type": name, "$value": value}; channels are
{"len", "cap", "closed"}; functions their name; time.Time an RFC 3339 UTC string and
time.Duration Go's own rendering ("1.5s").

What was not copied is marked in place: {"$cut": why, "$value": the part that was}
for a string, slice or map longer than its budget, and {"$cut": why} for a value
behind the pointer depth limit, past the frame's byte budget, or in unreadable memory.
"""

from __future__ import annotations

import bisect
import json
import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..model import CapturedValue
from .chase import (
    ASSEMBLED,
    ROOT_NIL,
    ROOT_OK,
    ROOT_RANGE,
    ROOT_UNAVAILABLE,
    ROOT_UNREADABLE,
    FrameMemory,
)
from .plan import (
    ITAB_TYPE_OFFSET,
    MAP_BUDGET,
    MAX_PTR_DEPTH,
    SLICE_BUDGET,
    STRING_BUDGET,
    CapturePlan,
    CompiledExpression,
    swiss_layout,
)

if TYPE_CHECKING:
    from ..dwarf.gotypes import GoType, TypeTable

Json = object
SymbolizeFn = Callable[[int], str | None]

_UNIX_TO_INTERNAL = 62135596800  # seconds from year 1 to 1970
_WALL_TO_INTERNAL = 59453308800  # seconds from year 1 to 1885
_HAS_MONOTONIC = 1 << 63
_NSEC_MASK = (1 << 30) - 1


def cut(why: str, value: Json = None) -> Json:
    out: dict[str, Json] = {"$cut": why}
    if value is not None:
        out["$value"] = value
    return out


def format_duration(ns: int) -> str:
    """time.Duration.String(): "1h2m3.5s", "1.5ms", "0s"."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                return sign + _fraction(u, scale) + unit
    secs, frac = divmod(u, 1_000_000_000)
    hours, rest = divmod(secs, 3600)
    minutes, seconds = divmod(rest, 60)
    text = _fraction(seconds * 1_000_000_000 + frac, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _fraction(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    if frac == 0:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def format_time(wall: int, ext: int) -> str:
    """A time.Time's instant as time.RFC3339Nano in UTC."""
    nsec = wall & _NSEC_MASK
    if wall & _HAS_MONOTONIC:
        sec = ((wall << 1) & ((1 << 64) - 1)) >> 31
        sec += _WALL_TO_INTERNAL
    else:
        sec = ext
    unix = sec - _UNIX_TO_INTERNAL
    try:
        t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=unix)
    except OverflowError:
        return f"time {unix}s since 1970"
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if nsec:
        text += "." + f"{nsec:09d}".rstrip("0")
    return text + "Z"


def _float(v: float) -> Json:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


class _Memory:
    """A frame's copied memory: reads of [addr, addr+n) served from the items."""

    def __init__(self, mem: FrameMemory) -> None:
        self.mem = mem
        self.keys = sorted(mem.image)

    def read(self, addr: int, n: int) -> bytes | None:
        data = self.mem.image.get(addr)
        if data is not None and len(data) >= n:
            return data[:n]
        i = bisect.bisect_right(self.keys, addr) - 1
        out = b""
        at = addr
        while i < len(self.keys) and len(out) < n:
            if i < 0:
                return None
            start = self.keys[i]
            chunk = self.mem.image[start]
            if not start <= at < start + len(chunk):
                return None
            piece = chunk[at - start : at - start + n - len(out)]
            out += piece
            at += len(piece)
            i += 1
        return out if len(out) >= n else None

    def missing(self, addr: int, depth: int) -> Json:
        if depth > MAX_PTR_DEPTH:
            return cut("depth limit")
        if addr in self.mem.unreadable:
            return cut(f"unreadable memory at {addr:#x}")
        if addr in self.mem.dropped:
            return cut("item queue full")
        return cut("frame budget")


class ValueDecoder:
    def __init__(
        self, plan: CapturePlan, symbolize: SymbolizeFn, read_static: Callable[[int, int], bytes]
    ) -> None:
        if plan.types is None:
            raise ValueError("a plan without types decodes nothing")
        self.plan = plan
        self.types: TypeTable = plan.types
        self.symbolize = symbolize
        self.read_static = read_static
        self._hchan_known = False
        self._hchan_type: GoType | None = None

    @property
    def _hchan(self) -> GoType | None:
        """runtime.hchan: from the plan's types (a plan with a channel has it), else
        from DWARF; looked up at the first channel."""
        if not self._hchan_known:
            self._hchan_known = True
            self._hchan_type = next(
                (t for t in self.types.types.values() if t.name == "runtime.hchan"), None
            )
            reader = self.plan.type_reader() if self._hchan_type is None else None
            hchan = reader.type_by_name("runtime.hchan") if reader is not None else None
            if hchan is not None:
                self._hchan_type = self.types[hchan]
        return self._hchan_type

    def t(self, type_id: int) -> GoType:
        t = self.types.types.get(type_id)
        reader = self.plan.type_reader() if t is None else None
        if t is None and reader is not None:
            t = self.types[reader.read(type_id)]
        if t is None:
            raise KeyError(type_id)
        return t

    # -- one expression ---------------------------------------------------------------

    def value(
        self,
        mem: FrameMemory,
        index: int,
        expr: CompiledExpression,
        reason: str | None,
        value_type: int | None = None,
    ) -> CapturedValue:
        status, addr = mem.roots[index]
        if expr.unavailable is not None:
            return CapturedValue(expr.text, None, expr.sql_type, expr.unavailable)
        if status == ROOT_UNAVAILABLE:
            return CapturedValue(
                expr.text, None, expr.sql_type, reason or "not available at this pc"
            )
        if status == ROOT_NIL:
            return CapturedValue(
                expr.text, None, expr.sql_type
            )  # nil on the way: Go would panic; null
        if status == ROOT_RANGE:
            return CapturedValue(
                expr.text, None, expr.sql_type, f"index out of range (length {addr})"
            )
        if status == ROOT_UNREADABLE:
            return CapturedValue(expr.text, None, expr.sql_type, f"unreadable memory at {addr:#x}")
        assert status == ROOT_OK
        view = _Memory(mem)
        t = self.t(value_type or expr.type)
        data = view.read(addr, t.size) if not addr & ASSEMBLED else mem.image.get(addr)
        if data is None or len(data) < t.size:
            v: Json = view.missing(addr, 0)
        else:
            v = self.decode(t, data, 0, view, 0, frozenset())
        return CapturedValue(expr.text, _to_sql(v, expr.sql_type), expr.sql_type)

    # -- any type ---------------------------------------------------------------------

    def decode(  # noqa: C901 - values/ is being changed on another branch: split it after the merge
        self, t: GoType, buf: bytes, off: int, view: _Memory, depth: int, path: frozenset[int]
    ) -> Json:
        k = t.kind
        if k == "bool":
            return buf[off] != 0
        if k in ("int", "uint"):
            v = int.from_bytes(buf[off : off + t.size], "little", signed=k == "int")
            if t.name == "time.Duration":
                return format_duration(v)
            return v
        if k == "float":
            fmt = "<f" if t.size == 4 else "<d"
            return _float(struct.unpack_from(fmt, buf, off)[0])
        if k == "complex":
            fmt = "<ff" if t.size == 8 else "<dd"
            re_, im = struct.unpack_from(fmt, buf, off)
            return [_float(re_), _float(im)]
        if k == "unsafe_pointer":
            return self._word(buf, off)
        if k == "string":
            return self._string(buf, off, view, depth)
        if k == "pointer":
            return self._pointer(t, self._word(buf, off), view, depth, path)
        if k == "struct":
            if t.name == "time.Time":
                return self._time(t, buf, off)
            return {
                f.name: self.decode(self.t(f.type), buf, off + f.offset, view, depth, path)
                for f in t.fields
            }
        if k == "array":
            if t.elem is None:
                return []
            elem = self.t(t.elem)
            return [
                self.decode(elem, buf, off + i * elem.size, view, depth, path)
                for i in range(t.count)
            ]
        if k == "slice":
            return self._slice(t, buf, off, view, depth, path)
        if k == "map":
            return self._map(t, self._word(buf, off), view, depth, path)
        if k == "chan":
            return self._chan(self._word(buf, off), view, depth)
        if k in ("eface", "interface"):
            return self._interface(k, buf, off, view, depth, path)
        if k == "func":
            return self._func(self._word(buf, off), view, depth)
        return None

    @staticmethod
    def _word(buf: bytes, off: int) -> int:
        return int.from_bytes(buf[off : off + 8], "little")

    def _string(self, buf: bytes, off: int, view: _Memory, depth: int) -> Json:
        ptr, length = self._word(buf, off), self._word(buf, off + 8)
        if length == 0:
            return ""
        keep = min(length, STRING_BUDGET)
        data = view.read(ptr, keep)
        if data is None:
            return view.missing(ptr, depth + 1)
        text = data.decode("utf-8", "replace")
        if length > keep:
            return cut(f"string of {length} bytes, first {keep} kept", text)
        return text

    def _pointer(
        self, t: GoType, ptr: int, view: _Memory, depth: int, path: frozenset[int]
    ) -> Json:
        if ptr == 0:
            return None
        if t.elem is None:
            return ptr
        elem = self.t(t.elem)
        if elem.size == 0:
            return {}
        key = ptr ^ (elem.id << 1)
        if key in path:
            return cut(f"cycle back to {ptr:#x}")
        data = view.read(ptr, elem.size)
        if data is None:
            return view.missing(ptr, depth + 1)
        return self.decode(elem, data, 0, view, depth + 1, path | {key})

    def _slice(
        self, t: GoType, buf: bytes, off: int, view: _Memory, depth: int, path: frozenset[int]
    ) -> Json:
        ptr, length = self._word(buf, off), self._word(buf, off + 8)
        if ptr == 0:
            return None
        if length == 0 or t.elem is None:
            return []
        elem = self.t(t.elem)
        size = max(elem.size, 1)
        keep = min(length, max(1, SLICE_BUDGET // size))
        data = view.read(ptr, keep * size) if elem.size else b""
        if data is None:
            return view.missing(ptr, depth + 1)
        items = (
            [self.decode(elem, data, i * size, view, depth + 1, path) for i in range(keep)]
            if elem.size
            else [{}] * keep
        )
        if length > keep:
            return cut(f"{length} elements, first {keep} kept", items)
        return items

    def _time(self, t: GoType, buf: bytes, off: int) -> Json:
        fields = {f.name: f.offset for f in t.fields}
        if "wall" not in fields or "ext" not in fields:
            return None
        wall = self._word(buf, off + fields["wall"])
        ext = int.from_bytes(
            buf[off + fields["ext"] : off + fields["ext"] + 8], "little", signed=True
        )
        return format_time(wall, ext)

    def _chan(self, ptr: int, view: _Memory, depth: int) -> Json:
        if ptr == 0:
            return None
        h = self._hchan
        if h is None:
            return {"address": ptr}
        data = view.read(ptr, h.size)
        if data is None:
            return view.missing(ptr, depth + 1)
        f = {x.name: x.offset for x in h.fields}
        qcount = self._word(data, f["qcount"]) if "qcount" in f else None
        cap_ = self._word(data, f["dataqsiz"]) if "dataqsiz" in f else None
        closed = (
            int.from_bytes(data[f["closed"] : f["closed"] + 4], "little") != 0
            if "closed" in f
            else None
        )
        return {"len": qcount, "cap": cap_, "closed": closed}

    def _func(self, ptr: int, view: _Memory, depth: int) -> Json:
        if ptr == 0:
            return None
        data = view.read(ptr, 8)
        if data is None:
            return view.missing(ptr, depth + 1)
        pc = self._word(data, 0)
        return self.symbolize(pc) or f"{pc:#x}"

    def _interface(
        self, kind: str, buf: bytes, off: int, view: _Memory, depth: int, path: frozenset[int]
    ) -> Json:
        first, data = self._word(buf, off), self._word(buf, off + 8)
        if first == 0:
            return None
        typ = first
        if kind == "interface":
            word = view.read(first + ITAB_TYPE_OFFSET, 8)
            if word is None:
                try:
                    word = self.read_static(first + ITAB_TYPE_OFFSET, 8)
                except Exception:  # an itab made at run time is not in the binary
                    word = None
            if word is None:
                return {"$type": None, "$value": cut("itab not copied")}
            typ = self._word(word, 0)
        type_id = self.types.by_runtime_type.get(typ)
        reader = self.plan.type_reader() if type_id is None else None
        if reader is not None:
            type_id = reader.lookup_runtime_type(typ)
        if type_id is None:
            return {"$type": f"type at {typ:#x}", "$value": cut("dynamic type not in DWARF")}
        dyn = self.t(type_id)
        if is_direct(self, dyn):
            word_buf = data.to_bytes(8, "little")
            value = self.decode(dyn, word_buf, 0, view, depth, path)
        else:
            raw = view.read(data, dyn.size)
            value = (
                view.missing(data, depth + 1)
                if raw is None
                else self.decode(dyn, raw, 0, view, depth + 1, path)
            )
        return {"$type": dyn.name, "$value": value}

    # -- maps --------------------------------------------------------------------------

    def _map(self, t: GoType, ptr: int, view: _Memory, depth: int, path: frozenset[int]) -> Json:
        if ptr == 0:
            return None
        if t.map_header is None or t.key is None or t.elem is None:
            return cut("map layout unknown")
        header = self.t(t.map_header)
        hdata = view.read(ptr, header.size)
        if hdata is None:
            return view.missing(ptr, depth + 1)
        key_t, val_t = self.t(t.key), self.t(t.elem)
        f = {x.name: x for x in header.fields}
        entries: list[tuple[Json, Json]] = []
        total = 0
        complete = True
        if t.map_impl == "swiss":
            total = self._word(hdata, f["used"].offset) if "used" in f else 0
            complete = self._swiss_entries(
                header, hdata, view, depth + 1, path, key_t, val_t, entries
            )
        else:
            total = self._word(hdata, f["count"].offset) if "count" in f else 0
            complete = self._bucket_entries(
                header, hdata, view, depth + 1, path, key_t, val_t, entries
            )
        if key_t.kind == "string":
            obj: dict[str, Json] = {}
            for k, v in entries:
                obj[k if isinstance(k, str) else json.dumps(k)] = v
            result: Json = obj
        else:
            result = [
                [k, v] for k, v in sorted(entries, key=lambda kv: json.dumps(kv[0], sort_keys=True))
            ]
        if len(entries) < total or not complete:
            return cut(
                f"map of {total} entries, {len(entries)} kept (budget {MAP_BUDGET} bytes)", result
            )
        return result

    def _slot_kv(self, slot_t: GoType) -> tuple[int, int, GoType, GoType] | None:
        f = {x.name: x for x in slot_t.fields}
        if "key" not in f or "elem" not in f:
            return None
        return f["key"].offset, f["elem"].offset, self.t(f["key"].type), self.t(f["elem"].type)

    def _kv(
        self,
        kt: GoType,
        vt: GoType,
        key_t: GoType,
        val_t: GoType,
        buf: bytes,
        ko: int,
        vo: int,
        view: _Memory,
        depth: int,
        path: frozenset[int],
    ) -> tuple[Json, Json]:
        # Keys or values over 128 bytes are stored indirectly: the slot holds a pointer.
        k = (
            self._pointer(kt, self._word(buf, ko), view, depth, path)
            if kt.kind == "pointer" and key_t.kind != "pointer"
            else self.decode(key_t, buf, ko, view, depth, path)
        )
        v = (
            self._pointer(vt, self._word(buf, vo), view, depth, path)
            if vt.kind == "pointer" and val_t.kind != "pointer"
            else self.decode(val_t, buf, vo, view, depth, path)
        )
        return k, v

    def _group_entries(
        self,
        group: GoType,
        gdata: bytes,
        view: _Memory,
        depth: int,
        path: frozenset[int],
        key_t: GoType,
        val_t: GoType,
        out: list[tuple[Json, Json]],
    ) -> None:
        f = {x.name: x for x in group.fields}
        if "ctrl" not in f or "slots" not in f:
            return
        ctrl = self._word(gdata, f["ctrl"].offset)
        slots_t = self.t(f["slots"].type)
        if slots_t.elem is None:
            return
        slot_t = self.t(slots_t.elem)
        kv = self._slot_kv(slot_t)
        if kv is None:
            return
        ko, vo, kt, vt = kv
        for i in range(slots_t.count):
            if (ctrl >> (8 * i)) & 0x80:
                continue  # empty or deleted
            base = f["slots"].offset + i * slot_t.size
            out.append(
                self._kv(kt, vt, key_t, val_t, gdata, base + ko, base + vo, view, depth, path)
            )

    def _swiss_entries(
        self,
        header: GoType,
        hdata: bytes,
        view: _Memory,
        depth: int,
        path: frozenset[int],
        key_t: GoType,
        val_t: GoType,
        out: list[tuple[Json, Json]],
    ) -> bool:
        f = {x.name: x for x in header.fields}
        dir_ptr = self._word(hdata, f["dirPtr"].offset)
        dir_len = self._word(hdata, f["dirLen"].offset)
        swiss = swiss_layout(self.t, header)
        if swiss is None or dir_ptr == 0:
            return dir_ptr == 0
        group_t = swiss.group
        if dir_len == 0:
            g = view.read(dir_ptr, group_t.size)
            if g is None:
                return False
            self._group_entries(group_t, g, view, depth + 1, path, key_t, val_t, out)
            return True
        complete = True
        ptrs = view.read(dir_ptr, 8 * dir_len)
        if ptrs is None:
            ptrs = b""
            complete = False
        seen: set[int] = set()
        for i in range(len(ptrs) // 8):
            tp = self._word(ptrs, 8 * i)
            if tp in seen or tp == 0:
                continue  # several directory entries may share a table
            seen.add(tp)
            tdata = view.read(tp, swiss.table.size)
            if tdata is None:
                complete = False
                continue
            data = self._word(tdata, swiss.groups_data)
            ngroups = self._word(tdata, swiss.groups_mask) + 1
            for gi in range(ngroups):
                g = view.read(data + gi * group_t.size, group_t.size)
                if g is None:
                    complete = False
                    break
                self._group_entries(group_t, g, view, depth + 3, path, key_t, val_t, out)
        return complete

    def _bucket_entries(
        self,
        header: GoType,
        hdata: bytes,
        view: _Memory,
        depth: int,
        path: frozenset[int],
        key_t: GoType,
        val_t: GoType,
        out: list[tuple[Json, Json]],
    ) -> bool:
        f = {x.name: x for x in header.fields}
        buckets = self._word(hdata, f["buckets"].offset)
        b = hdata[f["B"].offset]
        bptr_t = self.t(f["buckets"].type)
        if buckets == 0 or bptr_t.elem is None:
            return True
        bucket_t = self.t(bptr_t.elem)
        bf = {x.name: x for x in bucket_t.fields}
        keys_t, vals_t = self.t(bf["keys"].type), self.t(bf["values"].type)
        if keys_t.elem is None or vals_t.elem is None:
            return False
        kt, vt = self.t(keys_t.elem), self.t(vals_t.elem)
        complete = True
        for i in range(1 << min(b, 16)):
            at = buckets + i * bucket_t.size
            hops = 0
            while at and hops < 64:
                data = view.read(at, bucket_t.size)
                if data is None:
                    complete = False
                    break
                for s in range(8):
                    if data[bf["tophash"].offset + s] < 5:
                        continue  # empty or evacuated
                    ko = bf["keys"].offset + s * kt.size
                    vo = bf["values"].offset + s * vt.size
                    out.append(self._kv(kt, vt, key_t, val_t, data, ko, vo, view, depth + 1, path))
                at = self._word(data, bf["overflow"].offset) if "overflow" in bf else 0
                hops += 1
        return complete


def is_direct(dec: ValueDecoder, t: GoType) -> bool:
    """Pointer-shaped types live in an interface's data word itself."""
    if t.kind in ("pointer", "map", "chan", "func", "unsafe_pointer"):
        return True
    if t.kind == "struct" and t.size == 8:
        inner = [f for f in t.fields if dec.t(f.type).size > 0]
        return len(inner) == 1 and is_direct(dec, dec.t(inner[0].type))
    if t.kind == "array" and t.count == 1 and t.elem is not None:
        return is_direct(dec, dec.t(t.elem))
    return False


def _to_sql(v: Json, sql_type: str) -> Json:
    """A typed column holds a scalar: a cut string keeps its prefix, marked with '…'."""
    if sql_type == "VARCHAR" and isinstance(v, dict) and "$cut" in v:
        prefix = v.get("$value")
        return (prefix + "…") if isinstance(prefix, str) else None
    if sql_type in ("BIGINT", "DOUBLE", "BOOLEAN") and isinstance(v, dict):
        return None
    return v
