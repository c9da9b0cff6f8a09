"""Go build info: the toolchain version and module list the linker embeds.

Format (debug/buildinfo): a 32-byte header starting with "\\xff Go buildinf:",
pointer size at byte 14, flags at 15 (bit 1: strings are inline, Go 1.18+). Inline
strings are uvarint-length-prefixed: the version, then the module info, which is
wrapped in 16-byte sentinels. Older binaries store two pointers to string headers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .elfimage import ElfImage

MAGIC = b"\xff Go buildinf:"
_FLAG_BIG_ENDIAN = 0x1
_FLAG_INLINE = 0x2


@dataclass(frozen=True)
class BuildInfo:
    go_version: str
    path: str | None  # the main package's import path ("path" line)
    main_module: str | None  # the main module's path ("mod" line), else the package path
    modinfo: str


def _uvarint(data: bytes, p: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if p >= len(data):
            raise ValueError("truncated varint")
        b = data[p]
        p += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, p


def _strip_sentinels(mod: str) -> str:
    if len(mod) >= 33 and mod[-17] == "\n":
        return mod[16:-16]
    return mod


def parse(image: ElfImage) -> BuildInfo | None:
    data = image.section_bytes(".go.buildinfo")
    base: int | None = None
    if data is not None:
        base = image.sections[".go.buildinfo"].addr
    else:
        # Not every linker keeps the section name: look in the writable data.
        for name in (".data", ".noptrdata", ".data.rel.ro"):
            sec_data = image.section_bytes(name)
            if sec_data is None:
                continue
            i = sec_data.find(MAGIC)
            while i >= 0 and i % 16:
                i = sec_data.find(MAGIC, i + 1)
            if i >= 0:
                data = sec_data[i:]
                base = image.sections[name].addr + i
                break
    if data is None or base is None or not data.startswith(MAGIC) or len(data) < 32:
        return None
    ptr_size, flags = data[14], data[15]
    try:
        if flags & _FLAG_INLINE:
            n, p = _uvarint(data, 32)
            version = data[p : p + n].decode("utf-8", "replace")
            n, p = _uvarint(data, p + n)
            mod = data[p : p + n].decode("utf-8", "replace")
        else:
            if ptr_size != 8 or flags & _FLAG_BIG_ENDIAN:
                return None
            vptr, mptr = struct.unpack_from("<QQ", data, 16)
            version = _read_go_string(image, vptr)
            mod = _read_go_string(image, mptr)
    except (ValueError, IndexError):
        return None
    mod = _strip_sentinels(mod)
    path: str | None = None
    main_module: str | None = None
    for line in mod.splitlines():
        fields = line.split("\t")
        if fields[0] == "path" and len(fields) > 1:
            path = fields[1]
        elif fields[0] == "mod" and len(fields) > 1:
            main_module = fields[1]
    return BuildInfo(
        go_version=version,
        path=path,
        main_module=main_module or path,
        modinfo=mod,
    )


def _read_go_string(image: ElfImage, header_addr: int) -> str:
    ptr, length = struct.unpack("<QQ", image.read(header_addr, 16))
    if length > 1 << 20:
        raise ValueError("implausible string length")
    return image.read(ptr, length).decode("utf-8", "replace")
