"""A compiled eBPF program loaded with raw bpf(2) calls, without BCC's compiler.

What the kernel needs of a program BCC compiled: each function's instructions, each
map's definition, and which `ld_imm64 BPF_PSEUDO_MAP_FD` instruction names which map
(BCC writes the map's fd into that instruction's immediate). `LoadedProgram` creates the
maps, patches their new fds into the instructions and loads (verifies) each function on
demand, and offers the part of `bcc.BPF`'s interface the probes use: tables by name with
`map_fd`, `Key`, `Leaf` and item get/set/delete, `load_func(...).fd`, the ring buffer,
`cleanup`. Map, ring-buffer and attach calls come from libbcc_bpf (BCC's wrappers over
libbpf, no LLVM in it). program_cache.py saves and finds these programs.
"""

from __future__ import annotations

import ctypes as ct
import errno
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

BPF_PROG_TYPE_KPROBE = 2
_BPF_MAP_TYPE_ARRAY = 2
_BPF_MAP_TYPE_PERCPU_HASH = 5
_BPF_MAP_TYPE_PERCPU_ARRAY = 6
_BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
_PERCPU = (_BPF_MAP_TYPE_PERCPU_HASH, _BPF_MAP_TYPE_PERCPU_ARRAY, _BPF_MAP_TYPE_LRU_PERCPU_HASH)
_BPF_MAP_TYPE_RINGBUF = 27
_SYS_BPF = 321  # x86_64
_BPF_MAP_CREATE = 0
_BPF_PROG_LOAD = 5
_LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW: two instruction slots
_PSEUDO_MAP_FD = 1
_OBJ_NAME_LEN = 16
_LOG_SIZE = 1 << 20

_libc = ct.CDLL(None, use_errno=True)


class Uncacheable(Exception):
    """The compiled program holds something this module does not know how to reload."""


class ProgramLoadError(Exception):
    """The kernel refused a map or a program; the first line says why."""


# -- the saved form ------------------------------------------------------------------


@dataclass(frozen=True)
class MapDef:
    name: str
    type: int
    key_size: int
    leaf_size: int
    max_entries: int
    flags: int
    key_desc: Any  # BCC's JSON description of the key type, rebuilt as ctypes
    leaf_desc: Any


@dataclass(frozen=True)
class FunctionDef:
    name: str
    insns: bytes
    # (instruction index, map index): the ld_imm64 whose immediate is that map's fd
    map_refs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Compiled:
    license: str
    kern_version: int
    maps: tuple[MapDef, ...]
    functions: tuple[FunctionDef, ...]


def find_map_refs(insns: bytes, map_of_fd: dict[int, int]) -> tuple[tuple[int, int], ...]:
    """Every ld_imm64 that loads a map fd, as (instruction index, map index).

    Raises Uncacheable for a pseudo source this module does not patch (a map value, a
    BTF id, ...) or an fd that is none of the program's maps."""
    if len(insns) % 8:
        raise Uncacheable("instructions are not a whole number of 8-byte slots")
    refs = []
    i = 0
    n = len(insns) // 8
    while i < n:
        code = insns[8 * i]
        if code != _LD_IMM64:
            i += 1
            continue
        src = insns[8 * i + 1] >> 4
        if src == _PSEUDO_MAP_FD:
            fd = int.from_bytes(insns[8 * i + 4 : 8 * i + 8], "little", signed=True)
            if fd not in map_of_fd:
                raise Uncacheable(f"instruction {i} loads fd {fd}, which is no map of the program")
            refs.append((i, map_of_fd[fd]))
        elif src != 0:
            raise Uncacheable(f"instruction {i} is an ld_imm64 of pseudo source {src}")
        i += 2
    return tuple(refs)


def patch(insns: bytes, refs: Sequence[tuple[int, int]], fds: Sequence[int]) -> bytes:
    """The instructions with each referenced map's new fd in its ld_imm64."""
    out = bytearray(insns)
    for index, map_index in refs:
        at = 8 * index
        if out[at] != _LD_IMM64 or out[at + 1] >> 4 != _PSEUDO_MAP_FD:
            raise ValueError(f"instruction {index} is no ld_imm64 of a map fd")
        out[at + 4 : at + 8] = fds[map_index].to_bytes(4, "little", signed=True)
    return bytes(out)


# -- BCC's type descriptions as ctypes -----------------------------------------------

_SCALARS: dict[str, Any] = {
    "_Bool": ct.c_bool,
    "char": ct.c_char,
    "signed char": ct.c_byte,
    "unsigned char": ct.c_ubyte,
    "short": ct.c_short,
    "unsigned short": ct.c_ushort,
    "int": ct.c_int,
    "unsigned int": ct.c_uint,
    "long": ct.c_long,
    "unsigned long": ct.c_ulong,
    "long long": ct.c_longlong,
    "unsigned long long": ct.c_ulonglong,
    "__int128": ct.c_int64 * 2,
    "unsigned __int128": ct.c_uint64 * 2,
}
_AGGREGATES = ("struct", "struct_packed", "union")


def ctype_of(desc: Any) -> Any:
    """The ctypes type for one of BCC's key/leaf descriptions: a scalar's C name, or
    [name, [[field, type], [field, type, [count]], [field, type, bits]], kind]."""
    if isinstance(desc, str):
        if desc not in _SCALARS:
            raise Uncacheable(f"no ctypes type for {desc!r}")
        return _SCALARS[desc]
    if not (isinstance(desc, list) and len(desc) >= 2 and isinstance(desc[1], list)):
        raise Uncacheable(f"unknown type description {desc!r}")
    kind = desc[2] if len(desc) > 2 else "struct"
    if kind not in _AGGREGATES:
        raise Uncacheable(f"unknown aggregate {kind!r}")
    fields: list[tuple[Any, ...]] = []
    anonymous: list[str] = []
    for field in desc[1]:
        if not isinstance(field, list) or len(field) not in (2, 3):
            raise Uncacheable(f"unknown field description {field!r}")
        if len(field) == 2:
            fields.append((field[0], ctype_of(field[1])))
        elif isinstance(field[2], list) and field[2] and isinstance(field[2][0], int):
            fields.append((field[0], ctype_of(field[1]) * field[2][0]))
        elif isinstance(field[2], int):
            fields.append((field[0], ctype_of(field[1]), field[2]))  # a bit field
        elif field[2] in _AGGREGATES:  # a nested struct or union, perhaps unnamed
            name = field[0] or f"__anon{len(anonymous)}"
            if not field[0]:
                anonymous.append(name)
            fields.append((name, ctype_of(field)))
        else:
            raise Uncacheable(f"unknown field description {field!r}")
    base = ct.Union if kind == "union" else ct.Structure
    body: dict[str, Any] = {"_anonymous_": anonymous, "_fields_": fields}
    if kind == "struct_packed":
        body["_pack_"] = 1
    return type(str(desc[0]), (base,), body)


# -- loading (raw bpf(2) calls) ------------------------------------------------------


class _MapCreate(ct.Structure):
    """union bpf_attr for BPF_MAP_CREATE (include/uapi/linux/bpf.h)."""

    _fields_ = [
        ("map_type", ct.c_uint32),
        ("key_size", ct.c_uint32),
        ("value_size", ct.c_uint32),
        ("max_entries", ct.c_uint32),
        ("map_flags", ct.c_uint32),
        ("inner_map_fd", ct.c_uint32),
        ("numa_node", ct.c_uint32),
        ("map_name", ct.c_char * _OBJ_NAME_LEN),
        ("map_ifindex", ct.c_uint32),
        ("btf_fd", ct.c_uint32),
        ("btf_key_type_id", ct.c_uint32),
        ("btf_value_type_id", ct.c_uint32),
        ("btf_vmlinux_value_type_id", ct.c_uint32),
        ("map_extra", ct.c_uint64),
    ]


class _ProgLoad(ct.Structure):
    """union bpf_attr for BPF_PROG_LOAD, up to expected_attach_type."""

    _fields_ = [
        ("prog_type", ct.c_uint32),
        ("insn_cnt", ct.c_uint32),
        ("insns", ct.c_uint64),
        ("license", ct.c_uint64),
        ("log_level", ct.c_uint32),
        ("log_size", ct.c_uint32),
        ("log_buf", ct.c_uint64),
        ("kern_version", ct.c_uint32),
        ("prog_flags", ct.c_uint32),
        ("prog_name", ct.c_char * _OBJ_NAME_LEN),
        ("prog_ifindex", ct.c_uint32),
        ("expected_attach_type", ct.c_uint32),
    ]


def _sys_bpf(cmd: int, attr: ct.Structure) -> int:
    """bpf(2); OSError on failure (EINTR/EAGAIN retried, as libbpf does)."""
    for _ in range(5):
        fd = int(_libc.syscall(_SYS_BPF, cmd, ct.byref(attr), ct.sizeof(attr)))
        if fd >= 0:
            return fd
        err = ct.get_errno()
        if err not in (errno.EINTR, errno.EAGAIN):
            break
    raise OSError(err, os.strerror(err))


def _obj_name(name: str) -> bytes:
    """A kernel object name: at most 15 characters of [A-Za-z0-9_.]."""
    return re.sub(rb"[^A-Za-z0-9_.]", b"_", name.encode())[: _OBJ_NAME_LEN - 1]


_RINGBUF_CB = ct.CFUNCTYPE(ct.c_int, ct.c_void_p, ct.c_void_p, ct.c_size_t)
_bpflib: Any = None


def bpflib() -> Any:
    """libbcc_bpf: BCC's map and ring-buffer calls (over libbpf), without its compiler."""
    global _bpflib
    if _bpflib is None:
        lib = ct.CDLL("libbcc_bpf.so.0", use_errno=True)
        for name, restype, argtypes in (
            ("bpf_lookup_elem", ct.c_int, [ct.c_int, ct.c_void_p, ct.c_void_p]),
            ("bpf_update_elem", ct.c_int, [ct.c_int, ct.c_void_p, ct.c_void_p, ct.c_ulonglong]),
            ("bpf_delete_elem", ct.c_int, [ct.c_int, ct.c_void_p]),
            (
                "bpf_update_batch",
                ct.c_int,
                [ct.c_int, ct.c_void_p, ct.c_void_p, ct.POINTER(ct.c_uint32)],
            ),
            ("bpf_new_ringbuf", ct.c_void_p, [ct.c_int, _RINGBUF_CB, ct.c_void_p]),
            ("bpf_add_ringbuf", ct.c_int, [ct.c_void_p, ct.c_int, _RINGBUF_CB, ct.c_void_p]),
            ("bpf_consume_ringbuf", ct.c_int, [ct.c_void_p]),
            ("bpf_poll_ringbuf", ct.c_int, [ct.c_void_p, ct.c_int]),
            ("bpf_free_ringbuf", None, [ct.c_void_p]),
        ):
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _bpflib = lib
    return _bpflib


@dataclass(frozen=True)
class Function:
    name: bytes
    fd: int


def _possible_cpus() -> int:
    """How many values a per-CPU map holds for each key (the kernel's possible CPUs)."""
    try:
        with open("/sys/devices/system/cpu/possible", encoding="ascii") as f:
            spans = f.read().strip().split(",")
        count = 0
        for span in spans:
            first, _, last = span.partition("-")
            count += int(last or first) - int(first) + 1
        return count
    except (OSError, ValueError):
        return os.cpu_count() or 1


class Table:
    """One map: `map_fd`, `Key`, `Leaf`, and item get/set/delete as BCC's tables do
    (a per-CPU map's Leaf holds every CPU's value, its sLeaf one)."""

    def __init__(self, program: LoadedProgram, definition: MapDef, fd: int) -> None:
        self._program = program
        self.name = definition.name.encode()
        self.type = definition.type
        self.map_fd = fd
        self._lib = bpflib()
        self.Key: Any = ctype_of(definition.key_desc)
        self.sLeaf: Any = ctype_of(definition.leaf_desc)
        self.Leaf: Any = self.sLeaf
        if self.type in _PERCPU:
            self.Leaf = self.sLeaf * _possible_cpus()

    def _key(self, key: Any) -> Any:
        return self.Key(key) if isinstance(key, int) else key

    def __getitem__(self, key: Any) -> Any:
        leaf = self.Leaf()
        if self._lib.bpf_lookup_elem(self.map_fd, ct.byref(self._key(key)), ct.byref(leaf)) < 0:
            raise KeyError(key)
        return leaf

    def __setitem__(self, key: Any, leaf: Any) -> None:
        if isinstance(leaf, int):
            leaf = self.Leaf(leaf)
        if self._lib.bpf_update_elem(self.map_fd, ct.byref(self._key(key)), ct.byref(leaf), 0) < 0:
            err = ct.get_errno()
            raise OSError(err, f"could not update map {self.name.decode()}: {os.strerror(err)}")

    def __delitem__(self, key: Any) -> None:
        """A hash entry is removed; an array's cannot be, so it is zeroed (as BCC does)."""
        if self.type in (_BPF_MAP_TYPE_ARRAY, _BPF_MAP_TYPE_PERCPU_ARRAY):
            self[key] = self.Leaf()
        elif self._lib.bpf_delete_elem(self.map_fd, ct.byref(self._key(key))) < 0:
            raise KeyError(key)

    def open_ring_buffer(self, callback: Callable[[Any, Any, int], Any]) -> None:
        if self.type != _BPF_MAP_TYPE_RINGBUF:
            raise TypeError(f"map {self.name.decode()} is not a ring buffer")
        self._program.open_ring_buffer(self.map_fd, callback)


class LoadedProgram:
    """A compiled program's maps, created; its functions loaded on demand. The subset
    of `bcc.BPF` the probes use."""

    KPROBE = BPF_PROG_TYPE_KPROBE

    def __init__(self, compiled: Compiled) -> None:
        self._compiled = compiled
        self._fds: list[int] = []
        self._functions: dict[bytes, Function] = {}
        self._tables: dict[bytes, Table] = {}
        self._ringbuf: int | None = None
        self._callbacks: list[Any] = []  # ctypes callbacks live as long as the buffer
        try:
            for m in compiled.maps:
                attr = _MapCreate(
                    map_type=m.type,
                    key_size=m.key_size,
                    value_size=m.leaf_size,
                    max_entries=m.max_entries,
                    map_flags=m.flags,
                    map_name=_obj_name(m.name),
                )
                try:
                    self._fds.append(_sys_bpf(_BPF_MAP_CREATE, attr))
                except OSError as e:
                    raise ProgramLoadError(f"could not create map {m.name}: {e.strerror}") from None
        except BaseException:
            self.cleanup()
            raise

    def __getitem__(self, name: bytes) -> Table:
        table = self._tables.get(name)
        if table is None:
            for i, m in enumerate(self._compiled.maps):
                if m.name.encode() == name:
                    table = self._tables[name] = Table(self, m, self._fds[i])
                    break
            else:
                raise KeyError(name)
        return table

    def load_func(self, name: bytes, prog_type: int, attach_type: int = -1) -> Function:
        """Loads (verifies) one function as a program, once: later calls return it."""
        loaded = self._functions.get(name)
        if loaded is not None:
            return loaded
        for f in self._compiled.functions:
            if f.name.encode() == name:
                break
        else:
            raise KeyError(name)
        insns = patch(f.insns, f.map_refs, self._fds)
        fd = self._load(f.name, insns, prog_type, attach_type)
        loaded = self._functions[name] = Function(name, fd)
        return loaded

    def _load(self, name: str, insns: bytes, prog_type: int, attach_type: int) -> int:
        code = ct.create_string_buffer(insns, len(insns))
        license = ct.create_string_buffer(self._compiled.license.encode())
        attr = _ProgLoad(
            prog_type=prog_type,
            insn_cnt=len(insns) // 8,
            insns=ct.addressof(code),
            license=ct.addressof(license),
            kern_version=self._compiled.kern_version,
            prog_name=_obj_name(name),
            expected_attach_type=max(attach_type, 0),
        )
        try:
            return _sys_bpf(_BPF_PROG_LOAD, attr)
        except OSError as e:
            first = e
        # Again with the verifier's log, for its verdict (the last line it wrote).
        log = ct.create_string_buffer(_LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, _LOG_SIZE, ct.addressof(log)
        try:
            return _sys_bpf(_BPF_PROG_LOAD, attr)  # it may pass this time (a transient)
        except OSError:
            pass
        lines = [line for line in log.value.decode(errors="replace").splitlines() if line.strip()]
        verdict = f" ({lines[-1].strip()})" if lines else ""
        raise ProgramLoadError(f"could not load program {name}: {first.strerror}{verdict}")

    def open_ring_buffer(self, map_fd: int, callback: Callable[[Any, Any, int], Any]) -> None:
        def on_sample(ctx: Any, data: Any, size: int) -> int:
            ret = callback(ctx, data, size)
            return int(ret) if ret is not None else 0

        cb = _RINGBUF_CB(on_sample)
        lib = bpflib()
        if self._ringbuf is None:
            manager = lib.bpf_new_ringbuf(map_fd, cb, None)
            if not manager:
                raise ProgramLoadError("could not open the ring buffer")
            self._ringbuf = manager
        elif lib.bpf_add_ringbuf(self._ringbuf, map_fd, cb, None) < 0:
            raise ProgramLoadError("could not open the ring buffer")
        self._callbacks.append(cb)

    def ring_buffer_consume(self) -> None:
        if self._ringbuf is not None:
            bpflib().bpf_consume_ringbuf(self._ringbuf)

    def ring_buffer_poll(self, timeout: int = -1) -> None:
        if self._ringbuf is not None:
            bpflib().bpf_poll_ringbuf(self._ringbuf, timeout)

    def cleanup(self) -> None:
        """Frees the ring buffer, closes the programs and the maps (idempotent)."""
        if self._ringbuf is not None:
            bpflib().bpf_free_ringbuf(self._ringbuf)
            self._ringbuf = None
        self._callbacks.clear()
        functions, self._functions = self._functions, {}
        for fn in functions.values():
            os.close(fn.fd)
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)
