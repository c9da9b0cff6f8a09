"""Go processes on this host, read from /proc.

Deciding whether a process is Go costs an ELF open, so the answer is cached per
executable file (device, inode, mtime, size): a host with hundreds of processes
runs a few dozen distinct binaries.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .errors import BinaryError, ProcessError

PROC = "/proc"
COMMAND_WIDTH = 60

# Sections only a Go linker writes; one of them is enough to call a binary Go.


@dataclass(frozen=True)
class GoProcess:
    pid: int
    command: str  # argv, the program without its directory, at most COMMAND_WIDTH long
    exe: str  # as /proc/PID/exe names it; may end in " (deleted)"
    go_version: str | None
    main_module: str | None
    has_dwarf: bool
    threads: int
    uptime_seconds: float


@dataclass(frozen=True)
class ExeInfo:
    """What a binary says about itself; error is set for a Go binary we cannot read."""

    go_version: str | None
    main_module: str | None
    has_dwarf: bool
    error: str | None = None


class _NotGo(Exception):
    pass


_cache: dict[tuple[int, int, int, int], ExeInfo | None] = {}
_cache_lock = threading.Lock()


def inspect_exe(path: str) -> ExeInfo | None:
    """None for a binary that is not Go; ExeInfo otherwise. Uncached."""
    from .dwarf.binary import GoBinary
    from .dwarf.elfimage import GO_SECTIONS, ElfImage, ForeignGoBinary

    try:
        image = ElfImage(path)
    except ForeignGoBinary as e:
        return ExeInfo(None, None, False, error=str(e))
    except BinaryError:
        return None
    try:
        if not any(name in image.sections for name in GO_SECTIONS):
            return None
    finally:
        image.close()
    try:
        with GoBinary.open(path) as binary:
            return ExeInfo(binary.go_version, binary.main_module, binary.has_dwarf)
    except BinaryError as e:
        return ExeInfo(None, None, False, error=str(e))


def _exe_info(pid: int) -> ExeInfo | None:
    """ExeInfo of the process's executable, through the cache.

    Opens /proc/PID/exe rather than the path it names: that works for deleted
    binaries and for processes in another mount namespace (containers).
    """
    path = f"{PROC}/{pid}/exe"
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    info = inspect_exe(path)
    with _cache_lock:
        _cache[key] = info
    return info


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _command(pid: int) -> str:
    try:
        argv = [a for a in _read(f"{PROC}/{pid}/cmdline").split(b"\0") if a]
    except OSError:
        argv = []
    if argv:
        # The program's name without its directory: the exe field has the full path.
        argv[0] = os.path.basename(argv[0]) or argv[0]
        text = " ".join(a.decode("utf-8", "replace") for a in argv)
    else:
        try:
            text = "[" + _read(f"{PROC}/{pid}/comm").decode("utf-8", "replace").strip() + "]"
        except OSError:
            text = "?"
    return text if len(text) <= COMMAND_WIDTH else text[: COMMAND_WIDTH - 1] + "…"


def _threads(pid: int) -> int:
    try:
        for line in _read(f"{PROC}/{pid}/status").splitlines():
            if line.startswith(b"Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _uptime_seconds(pid: int) -> float:
    try:
        stat = _read(f"{PROC}/{pid}/stat")
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        start_ticks = int(fields[19])  # field 22 of stat(5), counted from field 3
        boot = float(_read(f"{PROC}/uptime").split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, boot - start_ticks / os.sysconf("SC_CLK_TCK"))


def _is_zombie(pid: int) -> bool:
    try:
        stat = _read(f"{PROC}/{pid}/stat")
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] in (b"Z", b"X")
    except (OSError, ValueError):
        return False


def _go_process(pid: int, exe: str, info: ExeInfo) -> GoProcess:
    return GoProcess(
        pid=pid,
        command=_command(pid),
        exe=exe,
        go_version=info.go_version,
        main_module=info.main_module,
        has_dwarf=info.has_dwarf,
        threads=_threads(pid),
        uptime_seconds=_uptime_seconds(pid),
    )


def list_go_processes() -> list[GoProcess]:
    """Every Go process we can inspect, by pid; kernel threads, others and us skipped."""
    me = os.getpid()
    found: list[GoProcess] = []
    for name in os.listdir(PROC):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            exe = os.readlink(f"{PROC}/{pid}/exe")  # fails for kernel threads and zombies
            info = _exe_info(pid)
        except OSError:
            continue  # gone, a kernel thread, or not ours to read
        if info is None or info.error is not None:
            continue
        found.append(_go_process(pid, exe, info))
    found.sort(key=lambda p: p.pid)
    return found


def check_target(pid: int) -> GoProcess:
    """The Go process with this pid, or a ProcessError saying in one line why not."""
    base = f"{PROC}/{pid}"
    if pid <= 0 or not os.path.isdir(base):
        raise ProcessError(f"no process with pid {pid}")
    if pid == os.getpid():
        raise ProcessError(f"pid {pid} is sideeye-tui itself")
    try:
        exe = os.readlink(f"{base}/exe")
        info = _exe_info(pid)
    except PermissionError:
        if os.geteuid() != 0:
            raise ProcessError(f"pid {pid}: permission denied (run as root)") from None
        raise ProcessError(
            f"pid {pid}: permission denied, even to root (it holds privileges we lack)"
        ) from None
    except FileNotFoundError:
        if not os.path.isdir(base):
            raise ProcessError(f"no process with pid {pid}") from None
        if _is_zombie(pid):
            raise ProcessError(f"pid {pid} ({_command(pid)}) has exited") from None
        raise ProcessError(f"pid {pid} ({_command(pid)}) is not a Go program") from None
    except OSError as e:
        raise ProcessError(f"pid {pid}: cannot read its executable: {e.strerror or e}") from None
    if info is None:
        if not process_alive(pid):  # it died while its executable was being read
            raise ProcessError(f"pid {pid} has exited")
        raise ProcessError(f"pid {pid} ({_command(pid)}) is not a Go program")
    if info.error is not None:
        raise ProcessError(f"pid {pid} ({_command(pid)}): {info.error}")
    tracer = tracer_of(pid)
    if tracer is not None:
        raise ProcessError(
            f"pid {pid} ({_command(pid)}) is already traced by {tracer}; detach it first"
        )
    return _go_process(pid, exe, info)


def tracer_of(pid: int) -> str | None:
    """Who already ptraces pid ("pid 123 (gdb)"), or None: a process has one tracer."""
    try:
        with open(f"{PROC}/{pid}/status", "rb") as f:
            status = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("TracerPid:"):
            tracer = int(line.split()[1])
            return f"pid {tracer} ({_command(tracer)})" if tracer else None
    return None


def process_alive(pid: int) -> bool:
    """False once the process is gone or a zombie (its threads can't be traced)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3]
    return state not in (b"Z", b"X")
