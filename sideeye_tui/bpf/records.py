"""Decoding the probe's ring-buffer records into RawGoroutine (mirrors stack_probe.py)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..capture.raw import RawGoroutine
from . import stack_probe as sp

_GOROUTINE = struct.Struct("<IIQQQQQQQQQQII")
_FRAMES_HEAD = struct.Struct("<IIQII")


@dataclass
class _Pending:
    fields: tuple[int, ...]
    pcs: list[int] = field(default_factory=list)
    truncated: bool = False
    bad_fp: bool = False
    complete: bool = False


@dataclass
class RecordDecoder:
    """Feeds on raw records in ring-buffer order; goroutines() returns them decoded."""

    _pending: dict[int, _Pending] = field(default_factory=dict)
    _order: list[int] = field(default_factory=list)
    labels_ptrs: dict[int, int] = field(default_factory=dict)  # goid -> g.labels

    def feed(self, data: bytes) -> None:
        kind = int.from_bytes(data[:4], "little")
        if kind == sp.REC_GOROUTINE:
            f = _GOROUTINE.unpack_from(data)
            goid = f[2]
            if goid not in self._pending:
                self._order.append(goid)
            self._pending[goid] = _Pending(f)
            if f[7]:
                self.labels_ptrs[goid] = f[7]
        elif kind == sp.REC_FRAMES:
            _, n, goid, _depth, flags = _FRAMES_HEAD.unpack_from(data)
            p = self._pending.get(goid)
            if p is None:
                return
            p.pcs.extend(struct.unpack_from(f"<{n}Q", data, _FRAMES_HEAD.size))
            p.truncated |= bool(flags & sp.FRAMES_TRUNCATED)
            p.bad_fp |= bool(flags & sp.FRAMES_BAD_FP)
            p.complete |= bool(flags & sp.FRAMES_LAST)

    def goroutines(self, labels: dict[int, tuple[tuple[str, str], ...]]) -> list[RawGoroutine]:
        out = []
        for goid in self._order:
            p = self._pending[goid]
            (_, status, _goid, _g, gopc, startpc, waitsince, _labels, parent, _lo, _hi,
             _procid, waitreason, source) = p.fields
            out.append(
                RawGoroutine(
                    goid=goid,
                    status=status,
                    wait_reason=waitreason,
                    wait_since=waitsince,
                    gopc=gopc,
                    startpc=startpc,
                    parent_goid=parent,
                    source=source,
                    pcs=tuple(p.pcs),
                    truncated=p.truncated,
                    bad_frame_pointer=p.bad_fp or not p.complete,
                    labels=labels.get(goid, ()),
                )
            )
        return out
