"""The sideeye-tui command: one function per subcommand, errors as one line.

To add a subcommand, write add_NAME(subparsers) creating its parser and setting
run=run_NAME, then list add_NAME in SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from .errors import SideEyeError

if TYPE_CHECKING:
    from typing import TypeAlias

    from .model import ProcessSnapshot, Snapshot

    # What add_parser is called on; argparse has no public name for it.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

PROG = "sideeye-tui"
BACKENDS = ("ebpf", "ptrace")


def _error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


# -- ps -------------------------------------------------------------------------------


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain aligned columns: readable on a terminal, greppable in a pipe."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    out = []
    for row in (header, *rows):
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        out.append("  ".join(cells).rstrip())
    return out


def add_ps(sub: Subparsers) -> None:
    p = sub.add_parser("ps", help="list the Go processes on this host")
    p.set_defaults(run=run_ps)


def run_ps(args: argparse.Namespace) -> int:
    from .procs import list_go_processes

    procs = list_go_processes()
    header = ("PID", "COMMAND", "GO", "MODULE", "DWARF", "THREADS")
    rows = [
        (
            str(p.pid),
            p.command,
            p.go_version or "?",
            p.main_module or "?",
            "yes" if p.has_dwarf else "no",
            str(p.threads),
        )
        for p in procs
    ]
    for line in format_table(header, rows):
        print(line)
    if not procs and os.geteuid() != 0:
        _error("no Go process found; run as root to see other users' processes")
    return 0


# -- snapshot -------------------------------------------------------------------------


def _take_snapshot(
    pids: list[int], backend: str, progress: Callable[[str], None] | None
) -> Snapshot:
    """The capture layer, imported only when a capture is asked for (it loads BCC)."""
    from .capture.snapshot import take_snapshot

    return take_snapshot(pids, backend=backend, progress=progress)


def _progress_printer(stream: TextIO) -> Callable[[str], None] | None:
    """Progress on one rewritten line, only when someone is watching."""
    if not stream.isatty():
        return None

    def show(message: str) -> None:
        stream.write(f"\r\x1b[K{message}")
        stream.flush()

    return show


def _clear_progress(stream: TextIO) -> None:
    if stream.isatty():
        stream.write("\r\x1b[K")
        stream.flush()


def _check_output(path: str) -> None:
    """Refuse a bad output file before pausing anything."""
    from .store import open_store

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SideEyeError(f"{path}: no such directory: {parent}")
    if os.path.isdir(path):
        raise SideEyeError(f"{path}: is a directory")
    if os.path.exists(path):
        open_store(path, read_only=True).close()  # raises unless it is ours and current


def summarize(proc: ProcessSnapshot) -> str:
    """One line per process: who it is, its goroutines by status, the pause."""
    name = proc.main_module or os.path.basename(proc.exe) or "?"
    who = f"pid {proc.pid} {name}" + (f" {proc.go_version}" if proc.go_version else "")
    if proc.error is not None:
        return f"{who}: failed: {proc.error}"
    counts = Counter(g.status for g in proc.goroutines)
    by_status = ", ".join(f"{status} {n}" for status, n in counts.most_common())
    line = f"{who}: {len(proc.goroutines)} goroutines"
    if by_status:
        line += f" ({by_status})"
    if proc.pause_ns is not None:
        line += f" pause {proc.pause_ns / 1e6:.2f} ms"
    return line


def add_snapshot(sub: Subparsers) -> None:
    p = sub.add_parser(
        "snapshot",
        help="capture every goroutine of running Go processes into a DuckDB file",
        description="Pause each process for about a millisecond and store the stack of"
        " every goroutine. Needs root.",
        epilog="example: sideeye-tui snapshot 1234 5678 -o /tmp/incident.duckdb",
    )
    p.add_argument("pids", metavar="PID", type=int, nargs="+", help="process to capture")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="DuckDB file to append the snapshot to (created if missing)",
    )
    p.add_argument("--backend", choices=BACKENDS, default="ebpf", help="default: %(default)s")
    p.set_defaults(run=run_snapshot)


def run_snapshot(args: argparse.Namespace) -> int:
    from .procs import check_target
    from .store import write_snapshot

    if os.geteuid() != 0:
        raise SideEyeError("snapshot needs root (ptrace and eBPF)")
    pids: list[int] = list(dict.fromkeys(args.pids))
    for pid in pids:
        check_target(pid)
    _check_output(args.output)

    try:
        snap = _take_snapshot(pids, args.backend, _progress_printer(sys.stderr))
    finally:
        _clear_progress(sys.stderr)
    for proc in snap.processes:
        print(summarize(proc))
    if not any(p.error is None for p in snap.processes):
        _error(f"no process captured; {args.output} not written")
        return 1
    sid = write_snapshot(args.output, snap)
    print(f"wrote snapshot {sid} to {args.output}")
    return 0


# -- summary --------------------------------------------------------------------------


def _count(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return n


def add_summary(sub: Subparsers) -> None:
    p = sub.add_parser(
        "summary",
        help="print a snapshot from a DuckDB file: processes and their largest stack groups",
        description="Print one snapshot (the latest by default): per process, its goroutines"
        " by status, then the largest groups of goroutines with identical stacks, each with"
        " its stack. Reads the file only; needs no root.",
        epilog="example: sideeye-tui summary /tmp/incident.duckdb --snapshot 2 --top 5",
    )
    p.add_argument("file", metavar="FILE", help="DuckDB file written by `sideeye-tui snapshot`")
    p.add_argument(
        "--snapshot",
        metavar="ID",
        type=int,
        default=None,
        help="snapshot to print (default: the latest)",
    )
    p.add_argument(
        "--top",
        metavar="N",
        type=_count,
        default=10,
        help="stack groups shown per process, 0 for all (default: %(default)s)",
    )
    p.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    from .report import format_report, load_report

    report = load_report(args.file, snapshot_id=args.snapshot, top=args.top)
    print("\n".join(format_report(report)))
    return 0


# -- main -----------------------------------------------------------------------------

SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (add_ps, add_snapshot, add_summary)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Snapshots of every goroutine of live Go processes, in the terminal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except SideEyeError as e:
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `sideeye-tui ps | head`: the reader left. Silence the flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as e:
        if os.environ.get("SIDEEYE_DEBUG"):
            traceback.print_exc()
        _error(f"internal error: {type(e).__name__}: {e} (set SIDEEYE_DEBUG=1 for a traceback)")
        return 2
