"""Reading a goroutine's pprof labels from user space (the ptrace backend's way).

Two shapes, told apart by the binary's DWARF: a slice of {key, value string} pairs
(Go 1.24+) or a classic bucket map[string]string (older releases).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..dwarf.layout import LabelsLayout

MAX_LABELS = 16
MAX_STRING = 256

Reader = Callable[[int, int], bytes]


def _string(read: Reader, header: bytes) -> str:
    ptr, length = struct.unpack("<QQ", header)
    if ptr == 0 or length == 0:
        return ""
    raw = read(ptr, min(length, MAX_STRING))
    return raw.decode("utf-8", "replace")


def read_labels(read: Reader, layout: LabelsLayout, labels_ptr: int) -> tuple[tuple[str, str], ...]:
    if labels_ptr == 0:
        return ()
    if layout.kind == "slice":
        ptr, length = struct.unpack("<QQ", read(labels_ptr + layout.list_offset, 16))
        out = []
        for i in range(min(length, MAX_LABELS)):
            entry = read(ptr + i * layout.label_size, layout.label_size)
            key = _string(read, entry[layout.key_offset : layout.key_offset + 16])
            value = _string(read, entry[layout.value_offset : layout.value_offset + 16])
            out.append((key, value))
        return tuple(out)
    (hmap,) = struct.unpack("<Q", read(labels_ptr, 8))
    if hmap == 0:
        return ()
    header = read(hmap, max(layout.hmap_buckets, layout.hmap_b, layout.hmap_count) + 8)
    count = struct.unpack_from("<Q", header, layout.hmap_count)[0]
    b = header[layout.hmap_b]
    (buckets,) = struct.unpack_from("<Q", header, layout.hmap_buckets)
    out = []
    for bi in range(min(1 << b, 64)):
        bucket = buckets + bi * layout.bucket_size
        while bucket and len(out) < min(count, MAX_LABELS):
            raw = read(bucket, layout.bucket_size)
            for slot in range(8):
                if raw[slot] < 5:  # empty or evacuated slot (tophash below minTopHash)
                    continue
                k = layout.bucket_keys + slot * 16
                v = layout.bucket_values + slot * 16
                out.append((_string(read, raw[k : k + 16]), _string(read, raw[v : v + 16])))
            (bucket,) = struct.unpack_from("<Q", raw, layout.bucket_overflow)
    return tuple(sorted(out))
