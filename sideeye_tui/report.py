"""A snapshot as plain text: per process, the largest groups of identical stacks.

The terminal report of `sideeye-tui summary`: the read side (query.summary) reads the
buckets, this module only formats them.
"""

from __future__ import annotations

from .query.format import format_duration, id_ranges, plural
from .query.summary import Bucket, ProcessReport, SnapshotReport, StackFrame, load_report
from .text import printable_lines

__all__ = ["bucket_title", "format_report", "format_stack", "load_report"]

SEP = " · "
_FUNCTION_WIDTH = 64  # function column, beyond which file:line just follows


def bucket_title(b: Bucket) -> str:
    """N goroutines · status · wait reason · locked to thread · up to max wait · created
    by fn (in the order of Go's goroutine header: `[select, locked to thread]`)."""
    parts = [plural(b.count, "goroutine"), b.status or "?"]
    if b.wait_reason:
        parts.append(b.wait_reason)
    if b.locked_to_thread:
        parts.append("locked to thread")
    if b.max_wait_seconds is not None:
        parts.append(f"up to {format_duration(b.max_wait_seconds)}")
    if b.created_by:
        parts.append(f"created by {b.created_by}")
    if b.truncated:
        parts.append("stack truncated")
    return SEP.join(parts)


def format_stack(frames: tuple[StackFrame, ...], indent: str = "    ") -> list[str]:
    """One line per frame, innermost first: function, then file:line."""
    if not frames:
        return [f"{indent}(no frames)"]
    names = [
        f.function + (" (inlined)" if f.inlined else "") + (" (wrapper)" if f.wrapper else "")
        for f in frames
    ]
    width = min(max(len(n) for n in names), _FUNCTION_WIDTH)
    return [
        f"{indent}{name.ljust(width)}  {f.file}:{f.line}"
        for name, f in zip(names, frames, strict=True)
    ]


def _process_lines(p: ProcessReport) -> list[str]:
    lines = [f"pid {p.pid}{SEP}{p.exe or '?'}"]
    about = [p.go_version or "Go version unknown", p.main_module or "module unknown"]
    if p.build_id:
        about.append(f"build id {p.build_id}")
    lines.append("  " + SEP.join(about))
    if p.error is not None:
        lines.append(f"  not captured: {p.error}")
        return lines
    # Caveats about a capture that happened (lost records, a walk left unfinished).
    lines.extend(f"  warning: {note}" for note in p.notes)
    capture = []
    if p.pause_ns is not None:
        capture.append(f"paused {p.pause_ns / 1e6:.2f} ms")
    if p.threads:
        capture.append(plural(p.threads, "thread"))
    if p.backend:
        capture.append(f"{p.backend} backend")
    if capture:
        lines.append("  " + SEP.join(capture))
    counts = ", ".join(f"{status} {n}" for status, n in p.by_status)
    lines.append(f"  {plural(p.goroutine_count, 'goroutine')}" + (f": {counts}" if counts else ""))
    for b in p.buckets:
        lines.append("")
        lines.append("  " + bucket_title(b))
        lines.extend(format_stack(b.frames))
        if b.truncated:
            lines.append("    ... deeper frames were not captured")
    hidden = p.bucket_count - len(p.buckets)
    if hidden > 0:
        rest = p.goroutine_count - sum(b.count for b in p.buckets)
        lines.append("")
        lines.append(
            f"  ... {plural(hidden, 'more group')} of identical stacks"
            f" ({plural(rest, 'goroutine')}); --top 0 shows all"
        )
    return lines


def format_report(r: SnapshotReport) -> list[str]:
    s = r.snapshot
    head = [
        f"snapshot {s.snapshot_id}",
        s.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    ]
    if s.hostname:
        head.append(f"host {s.hostname}")
    if s.tool_version:
        head.append(f"sideeye-tui {s.tool_version}")
    lines = [SEP.join(head)]
    others = f"{r.path} holds {id_ranges(r.snapshot_ids)}"
    lines.append(f"{others}; --snapshot ID picks one" if len(r.snapshot_ids) > 1 else others)
    if not r.processes:
        lines.append("")
        lines.append("no process in this snapshot")
    for p in r.processes:
        lines.append("")
        lines.extend(_process_lines(p))
    return printable_lines(lines)  # names and labels come from the target
