"""The dynamic-events probe: its C source (c/event_probe.c), parameters and records.

The C is a real file shipped with the package; this module only writes the #define
header that sizes it, and mirrors its structs in ctypes once. Records are read by
field name through `Event`, never by position.
"""

from __future__ import annotations

import ctypes as ct
from dataclasses import dataclass
from importlib import resources

from ..values import plan as vp

KIND_ENTRY = 0
KIND_RETURN = 1
KIND_LINE = 2
KIND_CODES = {"entry": KIND_ENTRY, "return": KIND_RETURN, "line": KIND_LINE}
KIND_NAMES = {v: k for k, v in KIND_CODES.items()}

MAX_FRAMES = 64  # a power of two: the C masks indexes with it
BUCKETS = 64  # log2 buckets of nanoseconds: all of u64
SITE_PROBES = 4  # probes sharing one pc (a function's entry and lines there)


# Values (see values/chase.py for the same chase in Python)
MAX_PIECES = vp.MAX_PIECES
MAX_OPS = vp.MAX_OPS
MAX_SLOTS = vp.MAX_SLOTS
MAX_EXPRS = 16  # expressions captured at one probe
VALUE_MAX = 512  # bytes of one copied item (as vp.ITEM_MAX)
QUEUE = 64  # items waiting per event
SCAN = 256  # slots looked at per copied item
CHASE_STEPS = 32  # scan steps or item copies per invocation of `chase`
ROOTS_PER_CALL = 4  # roots without slots resolved per invocation of `values`
MAX_CHASE_CALLS = 30
PIECE_REG = 1
PIECE_STACK = 2
VREC_ROOT = 1
VREC_ITEM = 2
VREC_SMALL = 3
SMALL = 16  # bytes of a small root (no slots), sent with the event's others
ROOT_ASSEMBLED = 5
FLAG_PAIRED_ONLY = 1
MAX_TERMS = 8  # comparisons in one `when`
COND_STR = 32  # bytes of a string literal in a `when` (a power of two)
COND_OPS = {"==": 0, "!=": 1, "<": 2, "<=": 3, ">": 4, ">=": 5}
COND_INT = 1
COND_UINT = 2
COND_STRING = 3


@dataclass(frozen=True)
class EventLimits:
    max_sites: int = 65536
    max_probes: int = 1024
    inflight: int = 65536  # calls in flight at once, all goroutines (LRU beyond)
    ringbuf_pages: int = 8192  # 32 MiB of event records (576 bytes each)
    vals_pages: int = 8192  # 32 MiB of value records
    max_vexprs: int = 16384  # (site, expression) pairs
    max_ctypes: int = 4096
    max_rtypes: int = 8192
    max_vconds: int = 4096

    def header(self) -> str:
        return "".join(
            f"#define {name} {value}\n"
            for name, value in (
                ("MAX_SITES", self.max_sites),
                ("MAX_PROBES", self.max_probes),
                ("MAX_FRAMES", MAX_FRAMES),
                ("INFLIGHT_MAX", self.inflight),
                ("RINGBUF_PAGES", self.ringbuf_pages),
                ("BUCKETS", BUCKETS),
                ("SITE_PROBES", SITE_PROBES),
                ("MAX_PIECES", MAX_PIECES),
                ("MAX_OPS", MAX_OPS),
                ("MAX_SLOTS", MAX_SLOTS),
                ("MAX_EXPRS", MAX_EXPRS),
                ("VALUE_MAX", VALUE_MAX),
                ("QUEUE", QUEUE),
                ("SCAN", SCAN),
                ("CHASE_STEPS", CHASE_STEPS),
                ("ROOTS_PER_CALL", ROOTS_PER_CALL),
                ("MAX_CHASE_CALLS", MAX_CHASE_CALLS),
                ("MAX_PTR_DEPTH", vp.MAX_PTR_DEPTH),
                ("FRAME_BUDGET", vp.FRAME_BUDGET),
                ("MAX_VEXPRS", self.max_vexprs),
                ("MAX_CTYPES", self.max_ctypes),
                ("MAX_RTYPES", self.max_rtypes),
                ("VALS_PAGES", self.vals_pages),
                ("MAX_TERMS", MAX_TERMS),
                ("COND_STR", COND_STR),
                ("SMALL", SMALL),
                ("MAX_VCONDS", self.max_vconds),
            )
        )


def c_source() -> str:
    return resources.files(__package__).joinpath("c/event_probe.c").read_text()


def program_text(limits: EventLimits) -> str:
    """The whole program: the header of parameters, then the C file."""
    return limits.header() + c_source()


class SiteKey(ct.Structure):
    _fields_ = [("tgid", ct.c_uint32), ("pad", ct.c_uint32), ("pc", ct.c_uint64)]


class SiteProbe(ct.Structure):
    _fields_ = [
        ("probe", ct.c_uint32),
        ("kind", ct.c_uint8),
        ("inlined", ct.c_uint8),
        ("nexpr", ct.c_uint8),
        ("flags", ct.c_uint8),
        ("first_expr", ct.c_uint32),
    ]


class SiteValue(ct.Structure):
    _fields_ = [
        ("sp_delta", ct.c_uint32),
        ("goid_off", ct.c_uint32),
        ("stack_hi_off", ct.c_uint32),
        ("n", ct.c_uint32),
        ("tag", ct.c_uint32),
        ("cond_probe", ct.c_uint32),
        ("cond_first", ct.c_uint32),
        ("ncond", ct.c_uint32),
        ("probes", SiteProbe * SITE_PROBES),
    ]


class Counters(ct.Structure):
    _fields_ = [
        ("hits", ct.c_uint64),
        ("returns", ct.c_uint64),
        ("kept", ct.c_uint64),
        ("dropped", ct.c_uint64),
        ("throttled", ct.c_uint64),
        ("unpaired", ct.c_uint64),
        ("tracked", ct.c_uint64),
        ("paired", ct.c_uint64),
        ("replaced", ct.c_uint64),
    ]


class Budget(ct.Structure):
    _fields_ = [("window_ns", ct.c_uint64), ("used", ct.c_uint64), ("cap", ct.c_uint64)]


class Event(ct.Structure):
    """struct event of c/event_probe.c."""

    _fields_ = [
        ("event_id", ct.c_uint64),
        ("entry_id", ct.c_uint64),
        ("ts_ns", ct.c_uint64),
        ("duration_ns", ct.c_uint64),
        ("goid", ct.c_uint64),
        ("pc", ct.c_uint64),
        ("tgid", ct.c_uint32),
        ("tid", ct.c_uint32),
        ("probe", ct.c_uint32),
        ("kind", ct.c_uint8),
        ("inlined", ct.c_uint8),
        ("paired", ct.c_uint8),
        ("truncated", ct.c_uint8),
        ("nframes", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("pcs", ct.c_uint64 * MAX_FRAMES),
    ]


def layout(struct: type[ct.Structure]) -> list[tuple[str, int, int]]:
    """(name, offset, size) of each field: what the layout test compares."""
    out = []
    for name, *_ in struct._fields_:
        f = getattr(struct, name)
        out.append((name, int(f.offset), int(f.size)))
    return out


class VPiece(ct.Structure):
    _fields_ = [("kind", ct.c_uint16), ("reg", ct.c_uint16), ("off", ct.c_int32)]


class VOp(ct.Structure):
    _fields_ = [
        ("kind", ct.c_uint32),
        ("arg", ct.c_uint32),
        ("elem", ct.c_uint32),
        ("pad", ct.c_uint32),
    ]


class VExpr(ct.Structure):
    _fields_ = [
        ("npieces", ct.c_uint32),
        ("nops", ct.c_uint32),
        ("size", ct.c_uint32),
        ("ctype", ct.c_uint32),
        ("unavailable", ct.c_uint32),
        ("small", ct.c_uint32),
        ("pieces", VPiece * MAX_PIECES),
        ("ops", VOp * MAX_OPS),
    ]


class VSlot(ct.Structure):
    _fields_ = [
        ("off", ct.c_uint32),
        ("kind", ct.c_uint32),
        ("target", ct.c_uint32),
        ("aux", ct.c_uint32),
        ("cap", ct.c_uint32),
        ("target2", ct.c_uint32),
    ]


class VCType(ct.Structure):
    _fields_ = [("size", ct.c_uint32), ("nslots", ct.c_uint32), ("slots", VSlot * MAX_SLOTS)]


class VRec(ct.Structure):
    """struct vrec: an expression's root (VREC_ROOT) or a copied item (VREC_ITEM)."""

    _fields_ = [
        ("kind", ct.c_uint32),
        ("index", ct.c_uint32),
        ("event_id", ct.c_uint64),
        ("addr", ct.c_uint64),
        ("status", ct.c_uint32),
        ("len", ct.c_uint32),
        ("data", ct.c_uint8 * VALUE_MAX),
    ]


class VCond(ct.Structure):
    """struct vcond: one comparison of a `when` condition."""

    _fields_ = [
        ("x", VExpr),
        ("op", ct.c_uint32),
        ("kind", ct.c_uint32),
        ("group", ct.c_uint32),
        ("len", ct.c_uint32),
        ("ival", ct.c_int64),
        ("sval", ct.c_uint8 * COND_STR),
    ]


class VSmallRoot(ct.Structure):
    _fields_ = [
        ("index", ct.c_uint32),
        ("status", ct.c_uint32),
        ("addr", ct.c_uint64),
        ("len", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("data", ct.c_uint8 * SMALL),
    ]


class VSmall(ct.Structure):
    """struct vsmall: the small roots of one event."""

    _fields_ = [
        ("kind", ct.c_uint32),
        ("n", ct.c_uint32),
        ("event_id", ct.c_uint64),
        ("r", VSmallRoot * MAX_EXPRS),
    ]
