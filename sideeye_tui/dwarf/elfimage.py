"""The ELF file as a memory image: sections, static bytes by address, notes, symbols.

The file is memory-mapped, so opening a 100 MB binary costs nothing until a byte
is read. pyelftools parses the headers; hot paths (symbol lookup, reading bytes)
go straight to the mapping.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from dataclasses import dataclass
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import BinaryError


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    offset: int
    size: int
    nobits: bool  # .bss-like: occupies memory, not file

    def contains(self, addr: int) -> bool:
        return self.addr <= addr < self.addr + self.size


@dataclass(frozen=True)
class _Segment:
    vaddr: int
    offset: int
    filesz: int
    memsz: int


# Sections only the Go linker writes.
GO_SECTIONS = (".go.buildinfo", ".note.go.buildid", ".gopclntab")


class ForeignGoBinary(BinaryError):
    """A Go binary for an architecture sideeye-tui does not read (a 386 build)."""


class ElfImage:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - lives as long as self
        except OSError as e:
            raise BinaryError(f"{path}: cannot open: {e.strerror or e}") from e
        try:
            self.map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            self._file.close()
            raise BinaryError(f"{path}: cannot read: {e}") from e
        if self.map[:4] != b"\x7fELF":
            self.close()
            raise BinaryError(f"{path}: not an ELF file")
        try:
            self.elf = ELFFile(self._file)
        except ELFError as e:
            self.close()
            raise BinaryError(f"{path}: malformed ELF: {e}") from e
        if self.elf.elfclass != 64 or not self.elf.little_endian:
            kind = f"{self.elf.elfclass}-bit {self.elf['e_machine'].removeprefix('EM_')}"
            is_go = any(sec.name in GO_SECTIONS for sec in self.elf.iter_sections())
            self.close()
            if is_go:
                raise ForeignGoBinary(
                    f"{path}: a {kind} Go program: only 64-bit x86 (amd64) is supported"
                )
            raise BinaryError(f"{path}: only 64-bit little-endian binaries are supported")
        self.machine: str = str(self.elf["e_machine"])
        self.sections: dict[str, Section] = {}
        for sec in self.elf.iter_sections():
            if sec.name and sec.name not in self.sections:
                self.sections[sec.name] = Section(
                    name=sec.name,
                    addr=sec["sh_addr"],
                    offset=sec["sh_offset"],
                    size=sec["sh_size"],
                    nobits=sec["sh_type"] == "SHT_NOBITS",
                )
        self._segments = [
            _Segment(seg["p_vaddr"], seg["p_offset"], seg["p_filesz"], seg["p_memsz"])
            for seg in self.elf.iter_segments()
            if seg["p_type"] == "PT_LOAD"
        ]
        self._symbols: tuple[bytes, bytes] | None = None

    @property
    def arch(self) -> str:
        return {"EM_X86_64": "amd64", "EM_AARCH64": "arm64"}.get(self.machine, self.machine)

    def close(self) -> None:
        with contextlib.suppress(AttributeError, BufferError):
            self.map.close()
        self._file.close()

    # -- bytes --------------------------------------------------------------------

    def section_bytes(self, name: str) -> bytes | None:
        sec = self.sections.get(name)
        if sec is None or sec.nobits:
            return None
        return self.map[sec.offset : sec.offset + sec.size]

    def file_offset(self, addr: int) -> int:
        """The file offset of a virtual address (what a uprobe is placed by)."""
        for seg in self._segments:
            if seg.vaddr <= addr < seg.vaddr + seg.filesz:
                return seg.offset + (addr - seg.vaddr)
        raise BinaryError(f"{self.path}: address {addr:#x} is not in the file")

    def read(self, addr: int, size: int) -> bytes:
        """Bytes of the loaded image at a virtual address (zeros for .bss)."""
        if size < 0:
            raise BinaryError(f"{self.path}: negative read size {size}")
        for seg in self._segments:
            if seg.vaddr <= addr and addr + size <= seg.vaddr + seg.memsz:
                rel = addr - seg.vaddr
                in_file = max(0, min(size, seg.filesz - rel))
                start = seg.offset + rel
                data = self.map[start : start + in_file] if in_file else b""
                return data + bytes(size - len(data))
        raise BinaryError(f"{self.path}: address {addr:#x}+{size} is not in the file image")

    def u64(self, addr: int) -> int:
        return int(struct.unpack("<Q", self.read(addr, 8))[0])

    # -- notes --------------------------------------------------------------------

    def note(self, section: str, owner: bytes, note_type: int) -> bytes | None:
        data = self.section_bytes(section)
        if not data:
            return None
        p = 0
        while p + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, p)
            p += 12
            name = data[p : p + namesz].rstrip(b"\x00")
            p += (namesz + 3) & ~3
            desc = data[p : p + descsz]
            p += (descsz + 3) & ~3
            if name == owner and ntype == note_type:
                return desc
        return None

    def gnu_build_id(self) -> str | None:
        desc = self.note(".note.gnu.build-id", b"GNU", 3)
        return desc.hex() if desc else None

    def go_build_id(self) -> str | None:
        desc = self.note(".note.go.buildid", b"Go", 4)
        return desc.decode("utf-8", "replace") if desc else None

    # -- symbols ------------------------------------------------------------------

    @property
    def has_symtab(self) -> bool:
        return ".symtab" in self.sections

    def symbol(self, name: str) -> int | None:
        """Value of a symbol in .symtab, by exact name; None if absent or stripped."""
        if self._symbols is None:
            symtab = self.section_bytes(".symtab")
            strtab = self.section_bytes(".strtab")
            if symtab is None or strtab is None:
                return None
            self._symbols = (symtab, strtab)
        symtab, strtab = self._symbols
        needle = b"\x00" + name.encode() + b"\x00"
        pos = strtab.find(needle)
        offsets = set()
        while pos >= 0:
            offsets.add(pos + 1)
            pos = strtab.find(needle, pos + 1)
        if not offsets:
            return None
        for st_name, _info, _other, _shndx, value, _size in struct.iter_unpack("<IBBHQQ", symtab):
            if st_name in offsets:
                return int(value)
        return None
