"""Decoding the probe's ring-buffer records into RawGoroutine (mirrors stack_probe.py)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..rawdata import RawGoroutine, StackHead
from ..values.chase import ROOT_UNAVAILABLE, FrameMemory
from . import stack_probe as sp
from . import value_probe as vp

_LABELS_HEAD = struct.Struct("<IIQQ")
_HEAD = struct.Struct("<IIQQQ")
_LABEL_LENS = struct.Struct("<II")
_LABEL_SIZE = _LABEL_LENS.size + 2 * sp.LABEL_BYTES
_REC = struct.Struct("<IIQQQQQQQQQQIIIIIIQ")  # header of struct rec, then n pcs
_VHDR = struct.Struct("<IIQQII")  # struct vhdr: kind, len, job, addr, index, status


@dataclass
class _Pending:
    fields: tuple[int, ...]
    pcs: list[int] = field(default_factory=list)
    truncated: bool = False
    bad_fp: bool = False
    complete: bool = False
    locked: bool = False  # GOROUTINE_LOCKED, set in the goroutine's first record
    interrupted: tuple[int, int] = (0, 0)  # (depth, SP word): see RawGoroutine


@dataclass
class RecordDecoder:
    """Feeds on raw records in ring-buffer order; goroutines() returns them decoded."""

    _pending: dict[int, _Pending] = field(default_factory=dict)
    _order: list[int] = field(default_factory=list)
    labels: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    labels_cut: set[int] = field(default_factory=set)  # more labels than the probe reads
    heads: dict[int, StackHead] = field(default_factory=dict)  # running goroutines
    value_frames: dict[int, FrameMemory] = field(default_factory=dict)  # by job id

    def feed(self, data: bytes) -> None:
        kind = int.from_bytes(data[:4], "little")
        if kind == vp.REC_VALUE_BATCH:
            end = min(len(data), int.from_bytes(data[4:8], "little"))
            off = 8
            while off + _VHDR.size <= end:
                length = int.from_bytes(data[off + 4 : off + 8], "little")
                stride = _VHDR.size + ((max(length, 8) + 7) & ~7)
                self._feed_value(
                    int.from_bytes(data[off : off + 4], "little"), data[off : off + stride]
                )
                off += stride
            return
        if kind == sp.REC_LABELS:
            self._feed_labels(data)
            return
        if kind == sp.REC_HEAD:
            _, length, goid, head_sp, head_bp = _HEAD.unpack_from(data)
            start = _HEAD.size
            self.heads[goid] = StackHead(head_sp, head_bp, data[start : start + length])
            return
        # A batch of goroutine records, each its header and n pcs.
        off = 0
        while off + _REC.size <= len(data):
            off = self._feed_goroutine(data, off)

    def _feed_goroutine(self, data: bytes, off: int) -> int:
        f = _REC.unpack_from(data, off)
        kind, goid, n, flags = f[0], f[2], f[14], f[15]
        interrupted_depth, interrupted_sp_word = f[17], f[18]
        pcs = struct.unpack_from(f"<{n}Q", data, off + _REC.size)
        end: int = off + _REC.size + 8 * n
        if kind == sp.REC_GOROUTINE:
            if goid not in self._pending:
                self._order.append(goid)
            self._pending[goid] = p = _Pending(f[:14])
        else:
            pending = self._pending.get(goid)
            if pending is None:
                return end
            p = pending
        p.pcs.extend(pcs)
        p.truncated |= bool(flags & sp.FRAMES_TRUNCATED)
        p.bad_fp |= bool(flags & sp.FRAMES_BAD_FP)
        p.complete |= bool(flags & sp.FRAMES_LAST)
        p.locked |= bool(flags & sp.GOROUTINE_LOCKED)
        # Found while unwinding: in the chunk holding that frame and every later one,
        # not in the earlier ones.
        if interrupted_depth:
            p.interrupted = (interrupted_depth, interrupted_sp_word)
        return end

    def _feed_value(self, kind: int, data: bytes) -> None:
        _, length, job, addr, index, status = _VHDR.unpack_from(data)
        body = data[_VHDR.size : _VHDR.size + length]
        if kind == vp.REC_VALUE_JOB:
            pc = int.from_bytes(data[_VHDR.size : _VHDR.size + 8], "little")
            mem = FrameMemory(goid=addr, depth=index, pc=pc, early=bool(job & vp.EARLY_JOB))
            if status == vp.NO_SITE:
                mem.roots = []
            self.value_frames[job] = mem
            return
        frame = self.value_frames.get(job)
        if frame is None:
            return
        if kind == vp.REC_VALUE_ROOT:
            while len(frame.roots) < index:
                frame.roots.append((ROOT_UNAVAILABLE, 0))
            frame.roots[index : index + 1] = [(status, addr)]
        elif status == vp.ITEM_DROPPED:
            frame.queue_full = True
            frame.dropped.add(addr)
        elif status:
            frame.unreadable.add(addr)
        elif len(body) > len(frame.image.get(addr, b"")):
            frame.image[addr] = body

    def _feed_labels(self, data: bytes) -> None:
        _, n, goid, total = _LABELS_HEAD.unpack_from(data)
        out = []
        for i in range(min(n, sp.MAX_LABELS)):
            klen, vlen = _LABEL_LENS.unpack_from(data, _LABELS_HEAD.size + i * _LABEL_SIZE)
            base = _LABELS_HEAD.size + i * _LABEL_SIZE + _LABEL_LENS.size
            key = data[base : base + min(klen, sp.LABEL_BYTES)]
            value = data[base + sp.LABEL_BYTES : base + sp.LABEL_BYTES + min(vlen, sp.LABEL_BYTES)]
            out.append((key.decode("utf-8", "replace"), value.decode("utf-8", "replace")))
        self.labels[goid] = tuple(sorted(out))
        if total > len(out):
            self.labels_cut.add(goid)

    def goroutines(self) -> list[RawGoroutine]:
        out = []
        for goid in self._order:
            p = self._pending[goid]
            (
                _,
                status,
                _goid,
                g,
                gopc,
                startpc,
                waitsince,
                _labels,
                parent,
                _lo,
                _hi,
                _procid,
                waitreason,
                source,
            ) = p.fields
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
                    labels=self.labels.get(goid, ()),
                    locked_to_thread=p.locked,
                    g=g,
                    interrupted_depth=p.interrupted[0],
                    interrupted_sp_word=p.interrupted[1],
                )
            )
        return out
