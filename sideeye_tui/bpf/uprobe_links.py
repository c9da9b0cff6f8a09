"""Uprobes attached as one BPF link (BPF_TRACE_UPROBE_MULTI, Linux 6.6+), not perf events.

Why: removing a perf-event uprobe can stall the target. Its close first takes the
event out of the uprobe's filter, then removes the breakpoints while holding the
uprobe's register_rwsem for writing, which waits for an RCU grace period (dup_mmap_sem's
rcu_sync: 20-40 ms here). A thread that hits the breakpoint in that window gets
UPROBE_HANDLER_REMOVE from the perf handler, and the kernel's handler_chain then
takes down_read(register_rwsem): the thread sleeps until the grace period is over.
A link's handler never asks for removal, and its release deletes the consumer before
it removes the breakpoints, so a hit meanwhile finds no consumer and runs on
(kernel/events/uprobes.c: handler_chain, uprobe_unregister_nosync).

A link also filters by pid: the breakpoints go into the target only, not into every
process that maps the same binary. Programs attached this way must be loaded with
expected_attach_type ATTACH_TYPE, as must those they tail-call.
"""

from __future__ import annotations

import ctypes as ct
import functools
import os

from . import program_cache

ATTACH_TYPE = 48  # BPF_TRACE_UPROBE_MULTI in enum bpf_attach_type
_SYS_BPF = 321  # x86_64
_BPF_LINK_CREATE = 28
_KERNEL_SYMBOL = b" bpf_uprobe_multi_link_attach\n"

_libc = ct.CDLL(None, use_errno=True)


class _LinkCreate(ct.Structure):
    """union bpf_attr's link_create, with its uprobe_multi member (include/uapi/linux/bpf.h)."""

    _fields_ = [
        ("prog_fd", ct.c_uint32),
        ("target_fd", ct.c_uint32),
        ("attach_type", ct.c_uint32),
        ("flags", ct.c_uint32),
        ("path", ct.c_uint64),
        ("offsets", ct.c_uint64),
        ("ref_ctr_offsets", ct.c_uint64),
        ("cookies", ct.c_uint64),
        ("cnt", ct.c_uint32),
        ("multi_flags", ct.c_uint32),
        ("pid", ct.c_uint32),
        ("_rest", ct.c_uint32 * 9),  # the rest of union bpf_attr: zero
    ]


@functools.cache
def supported() -> bool:
    """Whether this kernel has uprobe links: one read of /proc/kallsyms (~30 ms of CPU),
    remembered until the next boot (program_cache.boot_facts)."""
    return bool(program_cache.boot_fact("uprobe_multi", _kallsyms_has_uprobe_multi))


def _kallsyms_has_uprobe_multi() -> bool:
    try:
        with open("/proc/kallsyms", "rb") as f:
            return _KERNEL_SYMBOL in f.read()
    except OSError:
        return False


def attach(prog_fd: int, pid: int, path: str, offsets: list[int]) -> int:
    """One link with a uprobe at each file offset of `path` (an offset may repeat: each
    is a consumer of its own, running the program once more per hit), in process `pid`
    only. Returns the link's fd; closing it removes them all. Raises OSError."""
    name = ct.create_string_buffer(path.encode())
    offs = (ct.c_uint64 * len(offsets))(*offsets)
    attr = _LinkCreate(
        prog_fd=prog_fd,
        attach_type=ATTACH_TYPE,
        path=ct.addressof(name),
        offsets=ct.addressof(offs),
        cnt=len(offsets),
        pid=pid,
    )
    fd = int(_libc.syscall(_SYS_BPF, _BPF_LINK_CREATE, ct.byref(attr), ct.sizeof(attr)))
    if fd < 0:
        err = ct.get_errno()
        raise OSError(err, os.strerror(err))
    return fd
