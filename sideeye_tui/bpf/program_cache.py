"""Compiled eBPF programs kept on disk, so that a snapshot does not run LLVM every time.

`bcc.BPF(text=...)` compiles the C with clang/LLVM and reads kernel symbols: about a
second of CPU for the stack probe, two thirds of a whole `snapshot` command whose
binary analysis is cached. What the kernel needs is much smaller (raw_program.py). So
on a miss BCC compiles as before, and what it compiled is saved; on a hit the file is
loaded with raw bpf(2) calls, without loading BCC's compiler at all. Either way the
caller gets a `raw_program.LoadedProgram`, so a cold and a warm run take the same path
after the compile.

    <cache dir>/programs/<sha256(format, BCC version, kernel release, C text)>.json

Files are written atomically (temp file + rename, mode 0600: this runs as root); one
that is corrupt, foreign or stale is ignored and rebuilt. SIDEEYE_BPF_CACHE overrides
the directory; `off` compiles every time (still loading through this module) and
stores nothing. The attach type is not part of the key: the instructions do not depend
on it, it is given when a program is loaded, as with BCC.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes as ct
import hashlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Callable
from typing import Any

from ..dwarf.cache import default_dir
from .raw_program import (
    Compiled,
    FunctionDef,
    LoadedProgram,
    MapDef,
    Uncacheable,
    ctype_of,
    find_map_refs,
    patch,
)

FORMAT = 2
MAX_ENTRIES = 64  # files kept; the least recently used go first
ENV = "SIDEEYE_BPF_CACHE"


# -- the file ------------------------------------------------------------------------


def _bcc_version() -> str:
    """BCC's version, read from its package without importing it (that loads LLVM)."""
    try:
        spec = importlib.util.find_spec("bcc")
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.submodule_search_locations:
        return ""
    for where in spec.submodule_search_locations:
        try:
            with open(os.path.join(where, "version.py"), encoding="utf-8") as f:
                m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read())
        except OSError:
            continue
        if m:
            return m.group(1)
    return ""


def cache_key(text: bytes) -> str:
    h = hashlib.sha256()
    for part in (str(FORMAT), _bcc_version(), os.uname().release):
        h.update(part.encode() + b"\0")
    h.update(text)
    return h.hexdigest()


def cache_dir() -> str | None:
    """Where programs are kept; None: not kept (SIDEEYE_BPF_CACHE=off)."""
    env = os.environ.get(ENV)
    if env == "off":
        return None
    return env or os.path.join(default_dir(), "programs")


def to_json(compiled: Compiled, key: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "key": key,
        "license": compiled.license,
        "kern_version": compiled.kern_version,
        "maps": [
            {
                "name": m.name,
                "type": m.type,
                "key_size": m.key_size,
                "leaf_size": m.leaf_size,
                "max_entries": m.max_entries,
                "flags": m.flags,
                "key_desc": m.key_desc,
                "leaf_desc": m.leaf_desc,
            }
            for m in compiled.maps
        ],
        "functions": [
            {
                "name": f.name,
                "insns": base64.b64encode(f.insns).decode(),
                "sha256": hashlib.sha256(f.insns).hexdigest(),
                "map_refs": [list(r) for r in f.map_refs],
            }
            for f in compiled.functions
        ],
    }


def from_json(data: Any, key: str) -> Compiled | None:
    """The saved program, or None if `data` is not one for `key` (wrong shape, another
    format, refs that do not point at map loads)."""
    try:
        if data["format"] != FORMAT or data["key"] != key:
            return None
        maps = tuple(
            MapDef(
                name=str(m["name"]),
                type=int(m["type"]),
                key_size=int(m["key_size"]),
                leaf_size=int(m["leaf_size"]),
                max_entries=int(m["max_entries"]),
                flags=int(m["flags"]),
                key_desc=m["key_desc"],
                leaf_desc=m["leaf_desc"],
            )
            for m in data["maps"]
        )
        functions = []
        for f in data["functions"]:
            insns = base64.b64decode(f["insns"], validate=True)
            if hashlib.sha256(insns).hexdigest() != f["sha256"]:
                return None  # damaged: a program the verifier might refuse at every run
            refs = tuple((int(i), int(m)) for i, m in f["map_refs"])
            if len(insns) % 8 or any(not 0 <= m < len(maps) for _, m in refs):
                return None
            patch(insns, refs, [0] * len(maps))  # raises if a ref is no map load
            functions.append(FunctionDef(str(f["name"]), insns, refs))
        for m in maps:
            ctype_of(m.key_desc)
            ctype_of(m.leaf_desc)
        return Compiled(str(data["license"]), int(data["kern_version"]), maps, tuple(functions))
    except (KeyError, TypeError, ValueError, Uncacheable):
        return None


def read(path: str, key: str) -> Compiled | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return from_json(data, key)


def write(path: str, compiled: Compiled, key: str) -> None:
    """Best effort, atomic, 0600; keeps at most MAX_ENTRIES programs in the directory."""
    if _write_json(path, to_json(compiled, key)):
        with contextlib.suppress(OSError):
            _prune(os.path.dirname(path))


def _write_json(path: str, data: Any) -> bool:
    """Atomically (temp file + rename), mode 0600; False if it could not be written (a
    read-only or full disk only costs the next run some time)."""
    where = os.path.dirname(path)
    try:
        os.makedirs(where, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


_ENTRY = re.compile(r"[0-9a-f]{64}\.json")


def _prune(where: str) -> None:
    entries = []
    for name in os.listdir(where):
        if _ENTRY.fullmatch(name):
            try:
                entries.append((os.stat(os.path.join(where, name)).st_mtime, name))
            except OSError:
                continue
    entries.sort(reverse=True)
    for _, name in entries[MAX_ENTRIES:]:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(where, name))


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def boot_fact(name: str, compute: Callable[[], bool | int | str]) -> bool | int | str:
    """A fact about the running kernel, computed once per boot and kept in
    <cache dir>/boot-<boot id>.json (with SIDEEYE_BPF_CACHE=off: computed every time)."""
    where, boot = cache_dir(), _boot_id()
    if where is None or boot is None:
        return compute()
    path = os.path.join(where, f"boot-{re.sub(r'[^0-9a-f-]', '', boot)}.json")
    facts: dict[str, Any] = {}
    try:
        with open(path, encoding="utf-8") as f:
            loaded = json.load(f)
        if isinstance(loaded, dict):
            facts = loaded
    except (OSError, ValueError):
        pass
    value = facts.get(name)
    if isinstance(value, bool | int | str):
        return value
    value = compute()
    _write_json(path, {**facts, name: value})
    return value


# -- compiling (a miss) --------------------------------------------------------------


def _libbcc() -> Any:
    """libbcc with the module accessors bcc's own binding does not declare."""
    lib = ct.CDLL("libbcc.so.0", use_errno=True)
    for name, restype, argtypes in (
        ("bpf_num_tables", ct.c_ulonglong, [ct.c_void_p]),
        ("bpf_table_name", ct.c_char_p, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_fd_id", ct.c_int, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_type_id", ct.c_int, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_max_entries_id", ct.c_ulonglong, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_flags_id", ct.c_int, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_key_size_id", ct.c_size_t, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_leaf_size_id", ct.c_size_t, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_key_desc_id", ct.c_char_p, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_table_leaf_desc_id", ct.c_char_p, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_num_functions", ct.c_ulonglong, [ct.c_void_p]),
        ("bpf_function_name", ct.c_char_p, [ct.c_void_p, ct.c_ulonglong]),
        ("bpf_function_start", ct.c_void_p, [ct.c_void_p, ct.c_char_p]),
        ("bpf_function_size", ct.c_size_t, [ct.c_void_p, ct.c_char_p]),
        ("bpf_module_license", ct.c_char_p, [ct.c_void_p]),
        ("bpf_module_kern_version", ct.c_uint, [ct.c_void_p]),
    ):
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def extract(module: Any) -> Compiled:
    """What BCC compiled (`bcc.BPF(...).module`), with the map fds it created."""
    lib = _libbcc()
    maps = []
    map_of_fd: dict[int, int] = {}
    for i in range(lib.bpf_num_tables(module)):
        maps.append(
            MapDef(
                name=lib.bpf_table_name(module, i).decode(),
                type=lib.bpf_table_type_id(module, i),
                key_size=lib.bpf_table_key_size_id(module, i),
                leaf_size=lib.bpf_table_leaf_size_id(module, i),
                max_entries=lib.bpf_table_max_entries_id(module, i),
                flags=lib.bpf_table_flags_id(module, i),
                key_desc=json.loads(lib.bpf_table_key_desc_id(module, i) or b'"int"'),
                leaf_desc=json.loads(lib.bpf_table_leaf_desc_id(module, i) or b'"int"'),
            )
        )
        map_of_fd[lib.bpf_table_fd_id(module, i)] = i
    for m in maps:
        ctype_of(m.key_desc)  # raises Uncacheable now rather than on a hit
        ctype_of(m.leaf_desc)
    functions = []
    for i in range(lib.bpf_num_functions(module)):
        name = lib.bpf_function_name(module, i)
        insns = ct.string_at(
            lib.bpf_function_start(module, name), lib.bpf_function_size(module, name)
        )
        functions.append(FunctionDef(name.decode(), insns, find_map_refs(insns, map_of_fd)))
    return Compiled(
        license=(lib.bpf_module_license(module) or b"GPL").decode(),
        kern_version=lib.bpf_module_kern_version(module),
        maps=tuple(maps),
        functions=tuple(functions),
    )


def load(text: bytes, compile_with: Callable[[bytes], Any]) -> Any:
    """The program for this C text: from the cache, or compiled by `compile_with`
    (`bcc.BPF(text=...)`), saved, and loaded the same way. A program this module cannot
    reload is returned as BCC's own object (same interface, nothing cached)."""
    where = cache_dir()
    key = cache_key(text)
    path = os.path.join(where, key + ".json") if where is not None else None
    compiled = read(path, key) if path is not None else None
    if compiled is not None and path is not None:
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by _prune
    else:
        bpf = compile_with(text)
        try:
            compiled = extract(bpf.module)
        except Uncacheable:
            return bpf
        bpf.cleanup()
        if path is not None:
            write(path, compiled, key)
    return LoadedProgram(compiled)
