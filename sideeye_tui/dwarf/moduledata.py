"""Locating the pclntab and runtime.firstmoduledata in an image, with or without symbols.

The inline trees are funcdata blobs addressed relative to moduledata.gofunc
(go:func.*), a symbol stripped binaries lack. The moduledata itself is always
there: its first word points at the pclntab header and the next slice header at
the function name table, a pattern that finds it in any writable section.
"""

from __future__ import annotations

import struct

from .elfimage import ElfImage
from .pclntab import MAGIC_GO120, MAGICS, Pclntab, PclntabError

# Word indices in runtime.moduledata (runtime/symtab.go), stable from Go 1.20 to
# 1.26: pcHeader, 6 slices, findfunctab, minpc, maxpc, then text at 22. Go 1.20
# added covctrs/ecovctrs before `end`, which shifts gofunc by two.
_TEXT = 22
_GOFUNC_GO120 = 40
_GOFUNC_GO118 = 38


def locate_pclntab(image: ElfImage) -> tuple[Pclntab, int]:
    """The pclntab and its virtual address; PclntabError if there is none."""
    sec = image.sections.get(".gopclntab")
    if sec is not None and not sec.nobits:
        data = image.section_bytes(".gopclntab")
        assert data is not None
        return Pclntab(data), sec.addr
    # External linking or odd linkers: scan read-only data for a plausible header.
    for name in (".rodata", ".data.rel.ro"):
        data = image.section_bytes(name)
        if data is None:
            continue
        base = image.sections[name].addr
        for magic in MAGICS:
            needle = struct.pack("<I", magic) + b"\x00\x00"
            i = data.find(needle)
            while i >= 0:
                if i % 8 == 0 and data[i + 6] in (1, 2, 4) and data[i + 7] == 8:
                    try:
                        return Pclntab(data[i:]), base + i
                    except PclntabError:
                        pass
                i = data.find(needle, i + 1)
    raise PclntabError("no pclntab")


def find_moduledata(image: ElfImage, tab: Pclntab, tab_addr: int) -> tuple[int, int] | None:
    """(moduledata.text, moduledata.gofunc), or None if the moduledata cannot be found.

    Go 1.26 stopped storing the text start in the pclntab header (it is 0 there),
    so the moduledata's copy is the one to trust.
    """
    gofunc_index = _GOFUNC_GO120 if tab.magic == MAGIC_GO120 else _GOFUNC_GO118
    text_sec = image.sections.get(".text")
    hint = tab.text_start or (text_sec.addr if text_sec is not None else 0)
    needle = struct.pack("<QQ", tab_addr, tab_addr + tab.funcname_off)
    for name, sec in image.sections.items():
        if sec.nobits or sec.addr == 0 or name.startswith(".debug"):
            continue
        data = image.section_bytes(name)
        if data is None:
            continue
        i = data.find(needle)
        while i >= 0:
            if i % 8 == 0 and i + 8 * (gofunc_index + 1) <= len(data):
                words = struct.unpack_from(f"<{gofunc_index + 1}Q", data, i)
                text, minpc = words[_TEXT], words[_TEXT - 2]
                if text and (text == hint or (not hint and text == minpc)):
                    return int(text), int(words[gofunc_index])
            i = data.find(needle, i + 1)
    return None
