"""The processes of a trace: their binary, where it is loaded, its probes' sites."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..dwarf.binary import GoBinary
from ..errors import BinaryError, ProcessError
from ..model import ProbeInfo
from .locations import LocationError, Resolved, is_line_location, resolve


@dataclass
class Target:
    pid: int
    binary: GoBinary
    bias: int  # runtime address - the binary's virtual address (0 unless PIE)
    goid_off: int
    stack_hi_off: int


def load_bias(pid: int, binary: GoBinary) -> int:
    """Where the text the pclntab covers is mapped, relative to its link address.

    Found through /proc/PID/maps: the mapping of the executable that holds the file
    offset of the text's start (by inode, so a deleted or re-mounted file works)."""
    text = binary.text_range[0]
    want = binary.file_offset(text)
    st = os.stat(f"/proc/{pid}/exe")
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ProcessError(f"pid {pid}: cannot read its memory map: {e.strerror or e}") from None
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or int(parts[4]) != st.st_ino:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        off = int(parts[2], 16)
        if off <= want < off + (hi - lo):
            return lo + (want - off) - text
    raise ProcessError(f"pid {pid}: its executable's code is not mapped")


def open_target(pid: int) -> Target:
    binary = GoBinary.open(f"/proc/{pid}/exe")
    try:
        layout = binary.layout
        bias = load_bias(pid, binary)
    except (BinaryError, ProcessError):
        binary.close()
        raise
    return Target(pid, binary, bias, layout.g_goid, layout.g_stack_hi)


def place(target: Target, location: str, probe_id: int) -> tuple[ProbeInfo, Resolved | None]:
    """A probe's row and its sites; a location that matches nothing is recorded with
    its one-line reason (the other probes still run)."""
    kind = "line" if is_line_location(location) else "function"
    try:
        r = resolve(target.binary, location)
    except LocationError as e:
        return ProbeInfo(probe_id, target.pid, kind, location, error=str(e)), None
    info = ProbeInfo(
        probe_id,
        target.pid,
        r.kind,
        location,
        function=r.function,
        file=r.file,
        line=r.line,
        pcs=len(r.sites),
    )
    return info, r


LOCK_DIR = "/run/sideeye-tui"


@contextlib.contextmanager
def lock_targets(pids: list[int]) -> Iterator[None]:
    """One trace per process at a time: an flock per pid, which the kernel releases
    when this process ends, however it ends."""
    try:
        os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
    except OSError:
        yield  # no lock directory: traces are not serialized, nothing else changes
        return
    fds: list[int] = []
    try:
        for pid in pids:
            fd = os.open(f"{LOCK_DIR}/trace-{pid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ProcessError(
                    f"pid {pid} is already being traced by another sideeye-tui"
                ) from None
        yield
    finally:
        for fd in fds:
            os.close(fd)
