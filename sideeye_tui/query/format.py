"""How every reader writes what it read: durations, counts, snapshot ranges.

One definition each, so the summary and the explorer print the same wait the same way.
"""

from __future__ import annotations


def format_duration(seconds: float | None) -> str:
    """Short and human: 850ms, 12s, 4m05s, 2h10m, 3d04h; "?" when unknown."""
    if seconds is None:
        return "?"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def id_ranges(ids: tuple[int, ...]) -> str:
    """'snapshot 1' or 'snapshots 1-3, 5'."""
    parts: list[str] = []
    start = prev = ids[0]
    for i in (*ids[1:], None):
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ("snapshot " if len(ids) == 1 else "snapshots ") + ", ".join(parts)
