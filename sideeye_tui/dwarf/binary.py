"""A Go executable, as the capture layer needs it: identity, symbols, runtime layout.

Opening is cheap (ELF headers, notes, build info, pclntab header). Everything else
is computed on first use and remembered on disk under the build id: the runtime
layout as soon as it is known, memoized symbolization when save_cache() is called.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from typing import Any

from elftools.common.exceptions import DWARFError, ELFError

from ..errors import BinaryError
from ..model import Frame
from . import buildinfo, reference
from .cache import Cache, default_dir
from .elfimage import ElfImage
from .layout import LayoutError, RuntimeLayout, layout_from_dwarf, layout_from_json, layout_to_json
from .moduledata import find_moduledata, locate_pclntab
from .pclntab import (
    InlineTrees,
    Pclntab,
    PclntabError,
    RawFrame,
    print_name,
    symbolize,
    wrapper_func_id,
)

_UNKNOWN = "?"
# Memoized symbols in the cache file; renamed when their shape changes (older files'
# entries are then ignored, not misread): "frames" held no wrapper flag.
_FRAMES_KEY = "frames_v2"
ASYNC_PREEMPT = "runtime.asyncPreempt"


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class GoBinary:
    path: str
    build_id: str  # GNU build id hex if present, else the Go build id string
    go_version: str  # e.g. "go1.22.12", from buildinfo
    main_module: str | None  # e.g. "example.com/fixture"
    has_dwarf: bool

    def __init__(self, path: str, image: ElfImage, cache: Cache) -> None:
        self.path = path
        self._image = image
        self._cache = cache
        self._lock = threading.RLock()
        try:
            self._tab, tab_addr = locate_pclntab(image)
        except PclntabError as e:
            if ".go.buildinfo" in image.sections or ".note.go.buildid" in image.sections:
                raise BinaryError(f"{path}: unsupported Go binary: {e}") from e
            raise BinaryError(f"{path}: not a Go binary") from e
        info = buildinfo.parse(image)
        if info is None:
            raise BinaryError(f"{path}: no Go build info (not a Go binary, or Go older than 1.18)")
        self.go_version = info.go_version
        self.main_module = info.main_module
        self.build_id = image.gnu_build_id() or image.go_build_id() or _file_digest(path)
        self.has_dwarf = ".debug_info" in image.sections or ".zdebug_info" in image.sections

        md = find_moduledata(image, self._tab, tab_addr)
        gofunc: int | None = None
        if md is not None:
            text, gofunc = md
            if not self._tab.text_start:
                self._tab.text_start = text
        if not self._tab.text_start and ".text" in image.sections:
            self._tab.text_start = image.sections[".text"].addr
        if gofunc is None:
            gofunc = image.symbol("go:func.*") or image.symbol("go.func.*")
        self._inl = InlineTrees(self._tab, gofunc, image.read)
        self._wrapper_id: int | None = None
        self._by_print_name: dict[str, list[tuple[str, int, int]]] | None = None
        self._wrapper_known = False

        self._layout: RuntimeLayout | None = None
        self._layout_error: str | None = None
        self._frames: dict[str, tuple[RawFrame, ...]] = {}
        self._new_frames = False
        self._digest: str | None = None
        self._load_cache()

    @classmethod
    def open(cls, path: str, cache_dir: str | None = None) -> GoBinary:
        image = ElfImage(path)
        try:
            return cls(path, image, Cache(cache_dir or default_dir()))
        except BaseException:
            image.close()
            raise

    def close(self) -> None:
        self._image.close()

    def __enter__(self) -> GoBinary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cache --------------------------------------------------------------------

    def _cache_path(self) -> str:
        return self._cache.binary_path(self.build_id)

    def _identity(self) -> list[int]:
        """Which file this is, cheaply: a cache entry made for another file that claims
        the same build id (anyone can set one: -ldflags=-B) must not be trusted."""
        st = os.stat(self.path)
        return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]

    def _content_digest(self) -> str:
        if self._digest is None:
            self._digest = _file_digest(self.path)
        return self._digest

    def _same_file(self, data: dict[str, Any]) -> bool:
        """Whether a cache entry describes this very binary: the same file as when it was
        written, or failing that (a copy, a redeploy) the same bytes."""
        if data.get("build_id") != self.build_id:
            return False
        if data.get("identity") == self._identity():
            if self._digest is None and isinstance(data.get("digest"), str):
                self._digest = data["digest"]  # the same file: no need to hash it again
            return True
        return data.get("digest") is not None and data.get("digest") == self._content_digest()

    def _load_cache(self) -> None:
        data = self._cache.load(self._cache_path())
        if data is None or not self._same_file(data):
            return
        try:
            if data.get("layout") is not None:
                self._layout = layout_from_json(data["layout"])
            for key, frames in (data.get(_FRAMES_KEY) or {}).items():
                self._frames[key] = tuple(
                    (str(f), str(fl), int(ln), bool(inl), bool(wr)) for f, fl, ln, inl, wr in frames
                )
        except (KeyError, TypeError, ValueError):
            self._layout = None
            self._frames.clear()

    def _store_cache(self, merge_frames: bool) -> None:
        path = self._cache_path()
        frames: dict[str, Any] = {}
        if merge_frames:
            old = self._cache.load(path)
            if old is not None and self._same_file(old):
                frames.update(old.get(_FRAMES_KEY) or {})
        frames.update({k: [list(f) for f in v] for k, v in self._frames.items()})
        self._cache.store(
            path,
            {
                "build_id": self.build_id,
                "identity": self._identity(),
                "digest": self._content_digest(),
                "path": self.path,
                "go_version": self.go_version,
                "layout": layout_to_json(self._layout) if self._layout else None,
                _FRAMES_KEY: frames,
            },
        )

    def save_cache(self) -> None:
        """Persist memoized symbolization (call after a snapshot)."""
        with self._lock:
            if self._new_frames:
                self._store_cache(merge_frames=True)
                self._new_frames = False

    # -- runtime layout -------------------------------------------------------------

    @property
    def layout(self) -> RuntimeLayout:
        with self._lock:
            if self._layout is not None:
                if self._layout.async_preempt == (0, 0):  # from an older cache
                    self._layout = self._with_code_ranges(self._layout)
                return self._layout
            if self._layout_error is not None:
                raise BinaryError(self._layout_error)
            try:
                self._layout = self._with_code_ranges(self._compute_layout())
            except BinaryError as e:
                self._layout_error = str(e)
                raise
            self._store_cache(merge_frames=True)
            return self._layout

    def _with_code_ranges(self, layout: RuntimeLayout) -> RuntimeLayout:
        """The layout with the code ranges the walkers need, from this binary's pclntab."""
        bounds = self.function_bounds(ASYNC_PREEMPT) or (0, 0)
        return dataclasses.replace(layout, async_preempt=bounds)

    def _compute_layout(self) -> RuntimeLayout:
        if not self.has_dwarf:
            return reference.stripped_layout(self._image, self._tab, self._cache, self.go_version)
        try:
            layout = layout_from_dwarf(
                self._image.elf.get_dwarf_info(), self.go_version, self._image.read
            )
        except (LayoutError, DWARFError, ELFError, ValueError) as e:
            raise BinaryError(f"{self.path}: cannot read the runtime layout from DWARF: {e}") from e
        reference.learn(self._cache, layout, self._image.arch)
        return layout

    # -- DWARF ----------------------------------------------------------------------

    def dwarf_info(self) -> Any:
        """pyelftools' DWARFInfo of the binary (parsed once); BinaryError without DWARF."""
        with self._lock:
            cached = getattr(self, "_dwarf", None)
            if cached is not None:
                return cached
            if not self.has_dwarf:
                raise BinaryError(f"{self.path}: no DWARF (built with -ldflags=-w or stripped)")
            try:
                self._dwarf: Any = self._image.elf.get_dwarf_info()
            except (DWARFError, ELFError, ValueError) as e:
                raise BinaryError(f"{self.path}: unreadable DWARF: {e}") from e
            return self._dwarf

    def runtime_types_base(self) -> int | None:
        """Address of `runtime.types`, the base of DW_AT_go_runtime_type offsets."""
        return self._image.symbol("runtime.types")

    # -- symbols --------------------------------------------------------------------

    def _wrapper(self) -> int | None:
        if not self._wrapper_known:
            self._wrapper_id = wrapper_func_id(self._tab)
            self._wrapper_known = True
        return self._wrapper_id

    def symbolize(self, pc: int, return_address: bool) -> tuple[Frame, ...]:
        """Logical frames at pc, innermost first; inlined calls are frames of their own.

        With return_address, the line and inlining are those of the CALL (pc-1), as
        the runtime's traceback does; every Frame.pc is the pc given.
        """
        key = f"{pc:x}{'r' if return_address else ''}"
        with self._lock:
            raw = self._frames.get(key)
            if raw is None:
                try:
                    found = symbolize(self._tab, self._inl, pc, return_address, self._wrapper())
                except (BinaryError, IndexError, ValueError):
                    found = None  # corrupt tables for this function: report it unknown
                raw = found if found is not None else ((_UNKNOWN, _UNKNOWN, 0, False, False),)
                self._frames[key] = raw
                self._new_frames = True
        return tuple(Frame(f, file, line, pc, inl, wr) for f, file, line, inl, wr in raw)

    def function_name(self, pc: int) -> str | None:
        """The physical function containing pc, named as the runtime prints it."""
        with self._lock:
            fn = self._tab.find_func(pc)
            return None if fn is None else print_name(self._tab.func_name(fn.name_off))

    def _func_by_name(self, name: str) -> int | None:
        with self._lock:
            return self._tab.names().get(name)

    def function_entry(self, name: str) -> int | None:
        """Entry pc by symbol name ("main.Map[go.shape.int]") or printed name ("main.Map[...]")."""
        i = self._func_by_name(name)
        return None if i is None else self._tab.func_at(i).entry

    def function_names(self) -> list[str]:
        """Every function's name, as the symbol table and as the runtime prints it."""
        with self._lock:
            return list(self._tab.names())

    def functions_named(self, name: str) -> list[tuple[str, int, int]]:
        """(symbol name, entry, end) of every function with this symbol or printed name:
        one per instantiation for a generic function printed as `main.Map[...]`."""
        with self._lock:
            if self._by_print_name is None:
                groups: dict[str, list[tuple[str, int, int]]] = {}
                for fn in self._tab.iter_funcs():
                    symbol = self._tab.func_name(fn.name_off)
                    entry = (symbol, fn.entry, fn.end)
                    groups.setdefault(symbol, []).append(entry)
                    printed = print_name(symbol)
                    if printed != symbol:
                        groups.setdefault(printed, []).append(entry)
                self._by_print_name = groups
            return list(self._by_print_name.get(name, ()))

    def function_bounds(self, name: str) -> tuple[int, int] | None:
        """[entry, end) of a function; end is the next function's entry (padding included)."""
        i = self._func_by_name(name)
        if i is None:
            return None
        fn = self._tab.func_at(i)
        return fn.entry, fn.end

    def sp_delta(self, pc: int) -> int | None:
        """Bytes pushed since entry at pc: the return address is at SP + sp_delta(pc)."""
        with self._lock:
            try:
                return self._tab.sp_delta(pc)
            except (IndexError, ValueError):
                return None

    def file_offset(self, addr: int) -> int:
        return self._image.file_offset(addr)

    def data_symbol(self, name: str) -> int | None:
        """A variable's address from the ELF symbol table (None when stripped)."""
        return self._image.symbol(name)

    def read_static(self, addr: int, size: int) -> bytes:
        """Bytes of the file image at a virtual address (zeros in .bss)."""
        return self._image.read(addr, size)

    def analysis(self, name: str, compute: Any) -> Any:
        """A JSON-able analysis of this binary, computed once and kept on disk under
        the build id (next to the layout cache), e.g. the events' inline index."""
        path = self._cache_path()[: -len(".json")] + f".{name}.json"
        data = self._cache.load(path)
        if data is not None and data.get("build_id") == self.build_id and name in data:
            return data[name]
        value = compute()
        self._cache.store(path, {"build_id": self.build_id, name: value})
        return value

    @property
    def pclntab(self) -> Pclntab:
        """The parsed pclntab, for analyses of code sites (events/locations.py)."""
        return self._tab

    @property
    def inline_trees(self) -> InlineTrees:
        return self._inl

    @property
    def text_range(self) -> tuple[int, int]:
        """[start, end) of the text the pclntab covers."""
        return self._tab.text_start, self._tab.text_end
