"""Finding a handful of named DIEs in Go's DWARF without walking every unit.

Go's linker writes names as inline strings (DW_FORM_string) and puts DW_AT_name
first in every abbreviation it uses for top-level entries, with one-byte abbrev
codes. So the DIE of `runtime.g` starts one byte before the bytes "runtime.g\\0"
in .debug_info: find the bytes, parse the DIE there, and keep it only if its name
and tag say it is the one. That turns "parse 100k DIEs" into a few memory
searches. If a future toolchain breaks that assumption, the fallback walks the
top-level entries of the units named for the package (and the "runtime" units,
which hold the types).
"""

from __future__ import annotations

from typing import Any

from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo

ABBREV_MAX = 0x30  # Go's linker uses about 50 abbreviation codes (cmd/internal/dwarf)


def die_name(die: DIE) -> str | None:
    attr = die.attributes.get("DW_AT_name")
    if attr is None:
        return None
    value: Any = attr.value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _package_of(name: str) -> str:
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return name[:dot] if dot >= 0 else name


class DieIndex:
    def __init__(self, dwarf: DWARFInfo) -> None:
        self.dwarf = dwarf
        sec = dwarf.debug_info_sec
        stream: Any = sec.stream if sec is not None else None
        self._info: bytes = stream.getvalue() if hasattr(stream, "getvalue") else b""
        if not self._info and stream is not None:
            stream.seek(0)
            self._info = stream.read()
        self._walked: dict[str, list[DIE]] = {}
        self._walked_units: set[int] = set()

    def _at(self, offset: int) -> DIE | None:
        try:
            die: DIE = self.dwarf.get_DIE_from_refaddr(offset)
        except Exception:  # a wrong guess can fail in many ways inside pyelftools
            return None
        return die

    def _scan(self, needle: bytes, accept: Any) -> list[DIE]:
        out: list[DIE] = []
        seen: set[int] = set()
        pos = self._info.find(needle)
        while pos >= 0:
            for back in (1, 2):
                die = self._at(pos - back)
                if die is not None and die.offset not in seen and accept(die):
                    seen.add(die.offset)
                    out.append(die)
                    break
            pos = self._info.find(needle, pos + 1)
        return out

    def find(self, name: str, tags: tuple[str, ...]) -> DIE | None:
        """The first top-level DIE with this exact name and one of these tags."""
        hits = self._scan(name.encode() + b"\x00", lambda d: d.tag in tags and die_name(d) == name)
        if hits:
            return hits[0]
        for die in self._walk(_package_of(name)):
            if die.tag in tags and die_name(die) == name:
                return die
        return None

    def named_in(
        self, prefix: str, units: list[tuple[int, int]], accept: Any, lead: bytes = b""
    ) -> list[DIE]:
        """DIEs in these units ([start, end) offsets of .debug_info) whose name starts
        with prefix, or with prefix after any run of the `lead` bytes (b"*[]" finds
        "*pkg.T" and "[]pkg.T" too), and that `accept` takes. A hit outside the units
        costs no parse."""
        out: list[DIE] = []
        seen: set[int] = set()
        needle = prefix.encode()
        info = self._info
        pos = info.find(needle)
        while pos >= 0:
            start = pos
            while start > 0 and info[start - 1] in lead:
                start -= 1
            if start >= 2 and any(lo <= start < hi for lo, hi in units):
                # An abbreviation code before the name: Go's are below 0x30, one byte
                # (a byte of text there is another name's middle: no parse).
                code1, code0 = info[start - 1], info[start - 2]
                backs = [1] if 0 < code1 < ABBREV_MAX else []
                if code0 >= 0x80 and code1 < 0x80:
                    backs.append(2)
                name = info[start : info.find(b"\x00", start)]
                for back in backs:
                    die = self._peek(start - back)
                    if (
                        die is not None
                        and die.offset not in seen
                        and (die_name(die) or "").encode() == name
                        and accept(die)
                    ):
                        seen.add(die.offset)
                        out.append(die)
                        break
            pos = info.find(needle, pos + 1)
        return out

    def _peek(self, offset: int) -> DIE | None:
        """The DIE that would start at offset, parsed outside pyelftools' cache of its
        unit: a wrong guess left in that cache breaks later walks of the unit."""
        sec = self.dwarf.debug_info_sec
        if sec is None:
            return None
        try:
            cu = self.dwarf.get_CU_containing(offset)
            return DIE(cu=cu, stream=sec.stream, offset=offset)
        except Exception:  # a wrong guess can fail in many ways inside pyelftools
            return None

    def find_prefix(self, prefix: str, tag: str) -> list[DIE]:
        """All DIEs with this tag whose name starts with prefix."""
        hits = self._scan(
            prefix.encode(),
            lambda d: d.tag == tag and (die_name(d) or "").startswith(prefix),
        )
        if hits:
            return hits
        return [
            d
            for d in self._walk(_package_of(prefix))
            if d.tag == tag and (die_name(d) or "").startswith(prefix)
        ]

    def _walk(self, package: str) -> list[DIE]:
        """Top-level DIEs of the units named package or "runtime" (slow path)."""
        if package in self._walked:
            return self._walked[package]
        out: list[DIE] = []
        for cu in self.dwarf.iter_CUs():
            top = cu.get_top_DIE()
            if die_name(top) not in (package, "runtime"):
                continue
            out.extend(top.iter_children())
        self._walked[package] = out
        return out


def resolve(die: DIE) -> DIE:
    """Follow typedefs to the underlying type."""
    for _ in range(32):
        if die.tag != "DW_TAG_typedef" or "DW_AT_type" not in die.attributes:
            return die
        die = die.get_DIE_from_attribute("DW_AT_type")
    return die


def type_of(die: DIE) -> DIE | None:
    if "DW_AT_type" not in die.attributes:
        return None
    t: DIE = die.get_DIE_from_attribute("DW_AT_type")
    return resolve(t)


def members(struct: DIE) -> dict[str, tuple[int, DIE | None]]:
    """Member name -> (offset, resolved type) of a structure type."""
    out: dict[str, tuple[int, DIE | None]] = {}
    for child in struct.iter_children():
        if child.tag != "DW_TAG_member":
            continue
        name = die_name(child)
        loc = child.attributes.get("DW_AT_data_member_location")
        if name is None or loc is None or not isinstance(loc.value, int):
            continue
        out[name] = (loc.value, type_of(child))
    return out


def byte_size(die: DIE) -> int | None:
    attr = die.attributes.get("DW_AT_byte_size")
    return int(attr.value) if attr is not None else None


def static_address(die: DIE) -> int | None:
    """The address of a variable whose location is a single DW_OP_addr."""
    attr = die.attributes.get("DW_AT_location")
    if attr is None:
        return None
    expr = attr.value
    if isinstance(expr, list) and len(expr) == 9 and expr[0] == 0x03:
        return int.from_bytes(bytes(expr[1:9]), "little")
    return None
