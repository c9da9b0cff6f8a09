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
from .text import printable

if TYPE_CHECKING:
    from typing import TypeAlias

    from .model import ProcessSnapshot, Snapshot

    # What add_parser is called on; argparse has no public name for it.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

PROG = "sideeye-tui"
EXIT_INTERNAL = 3  # a bug of ours; 1 is a user-facing error, 2 a usage error (argparse)
BACKENDS = ("ebpf", "ptrace")
PRIORITIES = ("idle", "normal")


def _error(message: str) -> None:
    print(f"{PROG}: {printable(message)}", file=sys.stderr)


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
    p.add_argument(
        "--json", action="store_true", help="one JSON object per process (the explorer's picker)"
    )
    p.set_defaults(run=run_ps)


def run_ps(args: argparse.Namespace) -> int:
    from .procs import list_go_processes

    procs = list_go_processes()
    if getattr(args, "json", False):
        import dataclasses
        import json

        for proc in procs:
            print(json.dumps(dataclasses.asdict(proc)))
        return 0
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
        print(printable(line))  # command lines are the target's own
    if not procs and os.geteuid() != 0:
        _error("no Go process found; run as root to see other users' processes")
    return 0


# -- snapshot -------------------------------------------------------------------------


def _take_snapshot(
    pids: list[int],
    backend: str,
    progress: Callable[[str], None] | None,
    captures: dict[str, list[str]] | None = None,
    early_walk: bool = True,
) -> Snapshot:
    """The capture layer, imported only when a capture is asked for (it loads BCC)."""
    from .capture.snapshot import take_snapshot

    return take_snapshot(
        pids, backend=backend, progress=progress, captures=captures, early_walk=early_walk
    )


def _warn(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr)


def _progress_lines(stream: TextIO) -> Callable[[str], None]:
    def show(message: str) -> None:
        stream.write(message + "\n")
        stream.flush()

    return show


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
    from .store.files import check_database_path, check_private

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SideEyeError(f"{path}: no such directory: {parent}")
    if os.path.isdir(path):
        raise SideEyeError(f"{path}: is a directory")
    check_database_path(path, for_writing=True)
    if os.path.exists(path):
        open_store(path, read_only=True).close()  # raises unless it is ours and current
        check_private(path)


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


def process_json(proc: ProcessSnapshot) -> str:
    """`snapshot --json`'s line for one process (README: snapshot --json)."""
    import json

    counts = Counter(g.status or "?" for g in proc.goroutines)
    return json.dumps(
        {
            "kind": "process",
            "pid": proc.pid,
            "exe": proc.exe,
            "go_version": proc.go_version,
            "main_module": proc.main_module,
            "captured": proc.error is None,
            "error": proc.error,
            "notes": list(proc.notes),
            "goroutines": len(proc.goroutines),
            "by_status": dict(counts.most_common()),
            "pause_ns": proc.pause_ns,
            "threads": proc.threads,
            "backend": proc.backend,
            "summary": summarize(proc),
        }
    )


def snapshot_json(snapshot_id: int, path: str, snap: Snapshot) -> str:
    """`snapshot --json`'s last line: the snapshot written."""
    import json

    failed = sum(1 for p in snap.processes if p.error is not None)
    return json.dumps(
        {
            "kind": "snapshot",
            "snapshot_id": snapshot_id,
            "file": path,
            "processes": len(snap.processes),
            "failed": failed,
        }
    )


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
    p.add_argument(
        "--no-early-walk",
        dest="early_walk",
        action="store_false",
        help="read every goroutine inside the pause (longer), without the early walk and"
        " its uprobes on the runtime's scheduler (see README, How it works)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="on stdout, one JSON object per process, then one for the snapshot written"
        " (the explorer's picker reads them)",
    )
    # The explorer runs this command in a pipe and shows its progress, one line each.
    p.add_argument("--progress-lines", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--spec",
        metavar="FILE",
        help="spec of values to capture and tables to build (default: the *.toml in"
        " ./.sideeye/ and ~/.config/sideeye-tui/specs/ that fit the targets)",
    )
    p.add_argument(
        "--priority",
        choices=PRIORITIES,
        default="idle",
        help="CPU priority of the command's own work (default: %(default)s: it runs only"
        " on CPU time the services leave unused; the pause itself is always real-time)",
    )
    p.set_defaults(run=run_snapshot)


def run_snapshot(args: argparse.Namespace) -> int:
    if getattr(args, "priority", "idle") != "idle":
        return _snapshot(args)
    from .capture.priority import background

    with background():  # first: every thread started from here on inherits it
        return _snapshot(args)


def _snapshot(args: argparse.Namespace) -> int:
    from .procs import check_target
    from .reports import write_reports
    from .spec import resolve_specs
    from .store import write_snapshot

    if os.geteuid() != 0:
        raise SideEyeError("snapshot needs root (ptrace and eBPF)")
    pids: list[int] = list(dict.fromkeys(args.pids))
    targets = [check_target(pid) for pid in pids]
    _check_output(args.output)
    spec, spec_warnings = resolve_specs(args.spec, [(t.exe, t.main_module) for t in targets])

    progress = _progress_printer(sys.stderr)
    if progress is None and getattr(args, "progress_lines", False):
        progress = _progress_lines(sys.stderr)
    try:
        captures = spec.captures if spec is not None and spec.captures else None
        snap = _take_snapshot(
            pids, args.backend, progress, captures=captures, early_walk=args.early_walk
        )
    finally:
        _clear_progress(sys.stderr)
    as_json = getattr(args, "json", False)
    for proc in snap.processes:
        if as_json:
            print(process_json(proc))
        else:
            print(printable(summarize(proc)))  # names come from the target
    if not any(p.error is None for p in snap.processes):
        for w in spec_warnings:
            _warn(w)
        _error(f"no process captured; {args.output} not written")
        return 1
    sid = write_snapshot(args.output, snap)
    if as_json:
        print(snapshot_json(sid, args.output, snap))
    else:
        print(f"wrote snapshot {sid} to {args.output}")
    # A caveat is no failure: the capture is written and the exit code stays 0.
    for proc in snap.processes:
        for note in proc.notes:
            _warn(f"pid {proc.pid}: {note}")
    try:
        messages = write_reports(args.output, sid, snap, spec, spec_warnings)
    except SideEyeError as e:  # the snapshot is written: say what is missing, exit 0
        _warn(str(e))
        return 0
    if spec is not None:
        print(f"applied spec {spec.path}")
    for m in messages:
        _warn(m.text if m.pid is None else f"pid {m.pid}: {m.text}")
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
    p.add_argument(
        "--by",
        choices=("group", "stack"),
        default="group",
        help="what a group is: `group`, the same stack, status, wait reason and creator;"
        " `stack`, the same stack alone, as the explorer's list (default: %(default)s)",
    )
    p.add_argument(
        "--wrappers",
        action="store_true",
        help="also show the wrapper frames (<autogenerated> methods, generic dictionary"
        " and `go` statement wrappers) that Go's default traceback leaves out",
    )
    p.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    from .report import format_report, load_report

    report = load_report(
        args.file, snapshot_id=args.snapshot, top=args.top, wrappers=args.wrappers, level=args.by
    )
    print("\n".join(format_report(report)))
    return 0


# -- apply ----------------------------------------------------------------------------


def add_apply(sub: Subparsers) -> None:
    p = sub.add_parser(
        "apply",
        help="recompute a spec's extra columns, derived tables and links in a DuckDB file",
        description="Re-apply a spec to every snapshot already in the file: extra columns,"
        " derived tables and links are rebuilt. Captured values cannot be added after the"
        " fact: expressions no snapshot captured are reported. Needs no root.",
        epilog="example: sideeye-tui apply /tmp/incident.duckdb --spec .sideeye/server.toml",
    )
    p.add_argument("file", metavar="FILE", help="DuckDB file written by `sideeye-tui snapshot`")
    p.add_argument("--spec", metavar="SPEC", required=True, help="the spec file (TOML)")
    p.set_defaults(run=run_apply)


def run_apply(args: argparse.Namespace) -> int:
    """Exit 1 when some part of the spec could not be applied (the rest is)."""
    from .reports import apply_spec
    from .spec import load_spec
    from .store import open_store

    spec = load_spec(args.spec)
    open_store(args.file, read_only=True).close()  # a one-line error before any work
    messages = apply_spec(args.file, spec)
    for m in messages:
        _warn(m.text)
    tables = len(spec.functions) + len(spec.tables)
    print(f"applied {args.spec} to {args.file}: {tables} tables, {len(spec.links)} links")
    return 1 if messages else 0


# -- trace ----------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """`30s`, `500ms`, `2m`, `1h` or plain seconds -> seconds."""
    units = (("ms", 0.001), ("us", 1e-6), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    t = text.strip()
    for suffix, scale in units:
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], scale
            break
    else:
        mult = 1.0
    try:
        value = float(t) * mult
    except ValueError:
        raise SideEyeError(f"--for {text}: not a duration (examples: 30s, 500ms, 2m)") from None
    if not value > 0 or value == float("inf"):
        raise SideEyeError(f"--for {text}: must be more than 0")
    return value


def add_trace(sub: Subparsers) -> None:
    p = sub.add_parser(
        "trace",
        help="probe functions and lines of running Go processes: events, rates, durations",
        description="Place probes at function entry and return (a function name) or at a"
        " source line (PATH:LINE, any unambiguous suffix of the file's path) in running Go"
        " processes, and record every hit (goroutine, time, backtrace, durations) into a"
        " DuckDB file, until --for has passed, Ctrl-C, or the targets exit. Needs root.",
        epilog="example: sideeye-tui trace 1234 --probe 'main.(*Server).handle'"
        " --probe main.go:151 --for 30s -o /tmp/incident.duckdb",
    )
    p.add_argument("pids", metavar="PID", type=int, nargs="+", help="process to trace")
    p.add_argument(
        "--probe",
        metavar="LOC",
        action="append",
        default=[],
        help="a function as the runtime prints it (entry and return), or PATH:LINE",
    )
    p.add_argument("--spec", metavar="FILE", help='spec whose [probes."LOC"] to place')
    p.add_argument("--for", dest="duration", metavar="DURATION", help="stop after (30s, 2m)")
    p.add_argument(
        "-o", "--output", metavar="FILE", required=True, help="DuckDB file (created if missing)"
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per probe per second on stdout"
    )
    p.add_argument(
        "--max-events-per-s",
        metavar="N",
        type=_count,
        default=0,
        help="keep at most N events a second (the rest are counted as dropped); 0: no cap",
    )
    # How uprobes are attached: BPF links where the kernel has them, else perf events
    # (older kernels). For the tests and benches that check both.
    p.add_argument(
        "--uprobes", choices=("auto", "link", "perf"), default="auto", help=argparse.SUPPRESS
    )
    p.set_defaults(run=run_trace)


def run_trace(args: argparse.Namespace) -> int:
    from .trace import run_trace as run

    return run(args)


# -- main -----------------------------------------------------------------------------

# -- the explorer -----------------------------------------------------------------


def add_open(sub: Subparsers) -> None:
    p = sub.add_parser(
        "open",
        help="browse the snapshots of a DuckDB file in the explorer (no root needed)",
        epilog="example: sideeye-tui open /tmp/incident.duckdb",
    )
    p.add_argument("file", metavar="FILE", help="DuckDB file written by sideeye-tui")
    p.add_argument("--snapshot", metavar="ID", type=int, default=None, help="default: latest")
    p.set_defaults(run=run_open)


def run_open(args: argparse.Namespace) -> int:
    from .explorer.app import Options, run_explorer

    return run_explorer(Options(db_path=args.file, mode="open", snapshot_id=args.snapshot))


def explorer_parser() -> argparse.ArgumentParser:
    """`sideeye-tui [--db FILE] [PID ...]`: the process picker, or a snapshot of PIDs."""
    from .explorer.app import default_db_path

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The explorer: pick Go processes, snapshot them, browse the snapshots."
        " Subcommands: ps, snapshot, trace, summary, apply, open (see sideeye-tui COMMAND -h).",
    )
    parser.add_argument("pids", metavar="PID", type=int, nargs="*", help="snapshot at once")
    parser.add_argument(
        "--db",
        metavar="FILE",
        default=default_db_path(),
        help="DuckDB file the snapshots are appended to (default: %(default)s)",
    )
    parser.set_defaults(run=run_explore)
    return parser


def run_explore(args: argparse.Namespace) -> int:
    from .explorer.app import Options, run_explorer

    if os.geteuid() != 0:
        raise SideEyeError("taking snapshots needs root; `sideeye-tui open FILE` browses without")
    os.makedirs(os.path.dirname(os.path.abspath(args.db)), mode=0o700, exist_ok=True)
    pids = tuple(dict.fromkeys(args.pids))
    return run_explorer(Options(db_path=args.db, mode="capture" if pids else "pick", pids=pids))


def _is_explorer_argv(argv: Sequence[str]) -> bool:
    """No subcommand: bare, PIDs, or --db first."""
    return not argv or argv[0].isdigit() or argv[0] == "--db" or argv[0].startswith("--db=")


SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_open,
    add_ps,
    add_snapshot,
    add_summary,
    add_apply,
    add_trace,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Snapshots of every goroutine of live Go processes, in the terminal.",
        epilog="Without a COMMAND, `sideeye-tui [--db FILE] [PID ...]` starts the explorer"
        " (a process picker, or a snapshot of the PIDs, then the browser); `sideeye-tui open"
        " FILE` browses a file without root. Keys can be remapped in"
        " ~/.config/sideeye-tui/keymap.toml. README.md has the rest.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = explorer_parser() if _is_explorer_argv(argv) else build_parser()
    args = parser.parse_args(argv)
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
        return EXIT_INTERNAL
