"""The Go runtime's data layout, read from the binary's own DWARF.

No table of offsets per Go version: every offset here is a DW_AT_data_member_location
of the runtime's types as this toolchain compiled them, status names are the
runtime's `_G*` constants, and wait reasons are `runtime.waitReasonStrings` as
stored in the binary's data.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo

from .dies import DieIndex, byte_size, die_name, members, resolve, static_address, type_of


class LayoutError(Exception):
    """A runtime type or variable is missing from the DWARF (message says which)."""


@dataclass(frozen=True)
class LabelsLayout:
    """How to read a goroutine's pprof labels from g.labels.

    kind "slice" (Go 1.24+): g.labels points at a labelMap whose slice header
    ([]label: ptr, len, cap) is at list_offset; each label is label_size bytes with
    string headers at key_offset and value_offset.
    kind "map" (older): g.labels points at a labelMap, a word holding *hmap (classic
    bucket map[string]string, 8 slots a bucket).
    """

    kind: str
    list_offset: int = 0
    label_size: int = 0
    key_offset: int = 0
    value_offset: int = 0
    hmap_count: int = 0
    hmap_b: int = 0
    hmap_buckets: int = 0
    bucket_size: int = 0
    bucket_keys: int = 0
    bucket_values: int = 0
    bucket_overflow: int = 0


@dataclass(frozen=True)
class RuntimeLayout:
    go_version: str
    allgs_addr: int  # runtime.allgs slice header ([]*g: ptr, len, cap)
    g_size: int
    g_stack_lo: int
    g_stack_hi: int
    g_sched_sp: int
    g_sched_pc: int
    g_sched_bp: int
    g_atomicstatus: int  # the uint32 inside atomic.Uint32
    g_goid: int
    g_waitsince: int
    g_waitreason: int  # uint8
    g_gopc: int
    g_startpc: int
    g_labels: int  # unsafe.Pointer
    g_m: int
    g_syscallsp: int
    g_syscallpc: int
    g_syscallbp: int | None  # Go 1.23+
    g_parent_goid: int | None  # Go 1.21+
    g_lockedm: int  # muintptr: non-zero while runtime.LockOSThread holds it to its M
    m_procid: int
    m_curg: int
    m_alllink: int  # the next M on runtime.allm
    status_names: dict[int, str]
    wait_reasons: tuple[str, ...]
    labels: LabelsLayout | None
    # [lo, hi) of runtime.asyncPreempt's code, from the pclntab (GoBinary fills it, also
    # for stripped binaries); (0, 0): unknown. The walkers note the frame it interrupted.
    async_preempt: tuple[int, int] = (0, 0)


def layout_to_json(layout: RuntimeLayout) -> dict[str, Any]:
    d = dataclasses.asdict(layout)
    d["status_names"] = {str(k): v for k, v in layout.status_names.items()}
    d["wait_reasons"] = list(layout.wait_reasons)
    return d


def layout_from_json(d: dict[str, Any]) -> RuntimeLayout:
    d = dict(d)
    d["status_names"] = {int(k): str(v) for k, v in d["status_names"].items()}
    d["wait_reasons"] = tuple(str(s) for s in d["wait_reasons"])
    labels = d.get("labels")
    d["labels"] = LabelsLayout(**labels) if labels is not None else None
    lo, hi = d.get("async_preempt") or (0, 0)  # older caches lack it: GoBinary fills it
    d["async_preempt"] = (int(lo), int(hi))
    fields = {f.name for f in dataclasses.fields(RuntimeLayout)}
    missing = fields - d.keys()
    if missing:
        raise ValueError(f"layout lacks {sorted(missing)}")
    return RuntimeLayout(**{k: v for k, v in d.items() if k in fields})


# -- extraction ---------------------------------------------------------------------


def _struct(index: DieIndex, name: str) -> DIE:
    die = index.find(name, ("DW_TAG_structure_type", "DW_TAG_typedef"))
    if die is None:
        raise LayoutError(f"type {name} not in DWARF")
    return resolve(die)


def _offset(struct_die: DIE, path: str, scalar: bool = True) -> int:
    """Offset of a dotted member path; with scalar, descend atomic wrappers' "value"."""
    off = 0
    cur: DIE | None = struct_die
    for part in path.split("."):
        if cur is None:
            raise LayoutError(f"{die_name(struct_die)}.{path}: not a struct")
        ms = members(cur)
        if part not in ms:
            raise LayoutError(f"{die_name(struct_die)} has no member {path}")
        delta, cur = ms[part]
        off += delta
    while scalar and cur is not None and cur.tag == "DW_TAG_structure_type":
        ms = members(cur)
        if "value" not in ms:
            break
        delta, cur = ms["value"]
        off += delta
    return off


def _optional(struct_die: DIE, path: str) -> int | None:
    try:
        return _offset(struct_die, path)
    except LayoutError:
        return None


_STATUS = re.compile(r"runtime\._G([a-z_]+)$")


def _status_names(index: DieIndex) -> dict[int, str]:
    names: dict[int, str] = {}
    for die in index.find_prefix("runtime._G", "DW_TAG_constant"):
        m = _STATUS.match(die_name(die) or "")
        value = die.attributes.get("DW_AT_const_value")
        if m is None or value is None or m.group(1).startswith("scan"):
            continue
        v = int(value.value)
        if 0 <= v < 0x1000:
            names[v] = m.group(1)
    if not names:
        raise LayoutError("runtime._G* status constants not in DWARF")
    return names


def _variable(index: DieIndex, name: str) -> DIE:
    die = index.find(name, ("DW_TAG_variable",))
    if die is None:
        raise LayoutError(f"variable {name} not in DWARF")
    return die


def _wait_reasons(index: DieIndex, read: Callable[[int, int], bytes]) -> tuple[str, ...]:
    var = _variable(index, "runtime.waitReasonStrings")
    addr = static_address(var)
    t = type_of(var)
    size = byte_size(t) if t is not None else None
    if addr is None or not size:
        raise LayoutError("runtime.waitReasonStrings has no static address or size")
    raw = read(addr, size)
    out: list[str] = []
    for ptr, length in struct.iter_unpack("<QQ", raw):
        if length > 4096:
            raise LayoutError("runtime.waitReasonStrings holds an implausible string")
        out.append(read(ptr, length).decode("utf-8", "replace") if length else "")
    return tuple(out)


def _is_slice(die: DIE | None) -> bool:
    if die is None or die.tag != "DW_TAG_structure_type":
        return False
    return {"array", "len", "cap"} <= members(die).keys()


def _find_slice(struct_die: DIE, depth: int = 0) -> tuple[int, DIE] | None:
    """The first slice member, looking through embedded structs; (offset, slice type)."""
    for off, t in members(struct_die).values():
        if _is_slice(t):
            assert t is not None
            return off, t
        if t is not None and t.tag == "DW_TAG_structure_type" and depth < 4:
            inner = _find_slice(t, depth + 1)
            if inner is not None:
                return off + inner[0], inner[1]
    return None


def _labels(index: DieIndex) -> LabelsLayout | None:
    die = index.find("runtime/pprof.labelMap", ("DW_TAG_typedef", "DW_TAG_structure_type"))
    if die is None:
        return None  # runtime/pprof not linked in: no goroutine can carry labels
    t = resolve(die)
    if t.tag == "DW_TAG_structure_type":
        found = _find_slice(t)
        if found is None:
            raise LayoutError("runtime/pprof.labelMap has no label slice")
        list_off, slice_t = found
        arr = members(slice_t)["array"][1]
        elem = type_of(arr) if arr is not None else None
        if elem is None:
            raise LayoutError("runtime/pprof label slice has no element type")
        strings = [
            off for off, mt in members(elem).values() if mt is not None and die_name(mt) == "string"
        ]
        size = byte_size(elem)
        if len(strings) < 2 or size is None:
            raise LayoutError("runtime/pprof label is not a key/value pair of strings")
        return LabelsLayout(
            kind="slice",
            list_offset=list_off,
            label_size=size,
            key_offset=strings[0],
            value_offset=strings[1],
        )
    if t.tag == "DW_TAG_pointer_type":
        hmap = type_of(t)
        if hmap is None:
            raise LayoutError("runtime/pprof.labelMap points to nothing")
        hm = members(hmap)
        if not {"count", "B", "buckets"} <= hm.keys():
            raise LayoutError(
                f"runtime/pprof.labelMap is a map of an unknown kind ({die_name(hmap)})"
            )
        bucket_ptr = hm["buckets"][1]
        bucket = type_of(bucket_ptr) if bucket_ptr is not None else None
        if bucket is None:
            raise LayoutError("map bucket type not in DWARF")
        bm = members(bucket)
        size = byte_size(bucket)
        if not {"keys", "values", "overflow"} <= bm.keys() or size is None:
            raise LayoutError("map bucket type lacks keys/values/overflow")
        return LabelsLayout(
            kind="map",
            hmap_count=hm["count"][0],
            hmap_b=hm["B"][0],
            hmap_buckets=hm["buckets"][0],
            bucket_size=size,
            bucket_keys=bm["keys"][0],
            bucket_values=bm["values"][0],
            bucket_overflow=bm["overflow"][0],
        )
    raise LayoutError(f"runtime/pprof.labelMap has an unexpected type ({t.tag})")


def layout_from_dwarf(
    dwarf: DWARFInfo, go_version: str, read: Callable[[int, int], bytes]
) -> RuntimeLayout:
    index = DieIndex(dwarf)
    g = _struct(index, "runtime.g")
    m = _struct(index, "runtime.m")
    g_size = byte_size(g)
    if g_size is None:
        raise LayoutError("runtime.g has no size")
    allgs = static_address(_variable(index, "runtime.allgs"))
    if allgs is None:
        raise LayoutError("runtime.allgs has no static address")
    return RuntimeLayout(
        go_version=go_version,
        allgs_addr=allgs,
        g_size=g_size,
        g_stack_lo=_offset(g, "stack.lo"),
        g_stack_hi=_offset(g, "stack.hi"),
        g_sched_sp=_offset(g, "sched.sp"),
        g_sched_pc=_offset(g, "sched.pc"),
        g_sched_bp=_offset(g, "sched.bp"),
        g_atomicstatus=_offset(g, "atomicstatus"),
        g_goid=_offset(g, "goid"),
        g_waitsince=_offset(g, "waitsince"),
        g_waitreason=_offset(g, "waitreason"),
        g_gopc=_offset(g, "gopc"),
        g_startpc=_offset(g, "startpc"),
        g_labels=_offset(g, "labels"),
        g_m=_offset(g, "m"),
        g_syscallsp=_offset(g, "syscallsp"),
        g_syscallpc=_offset(g, "syscallpc"),
        g_syscallbp=_optional(g, "syscallbp"),
        g_parent_goid=_optional(g, "parentGoid"),
        g_lockedm=_offset(g, "lockedm"),
        m_procid=_offset(m, "procid"),
        m_curg=_offset(m, "curg"),
        m_alllink=_offset(m, "alllink"),
        status_names=_status_names(index),
        wait_reasons=_wait_reasons(index, read),
        labels=_labels(index),
    )
