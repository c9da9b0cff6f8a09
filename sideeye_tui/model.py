"""The plain data every layer shares: what a snapshot holds once decoded.

Frozen dataclasses, no behaviour: the capture layer produces them, the store writes
them, the UI reads rows shaped like them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Frame:
    """One frame of a goroutine's stack; inlined calls are frames of their own."""

    function: str  # as the runtime prints it: main.(*Server).handle
    file: str
    line: int
    pc: int
    inlined: bool = False  # True for a call that the compiler inlined into the frame below


@dataclass(frozen=True)
class Goroutine:
    goid: int
    status: str  # runtime status name without "_G": running, runnable, waiting, syscall, ...
    wait_reason: str | None  # the runtime's own string ("chan receive") or None
    wait_seconds: float | None  # only known once a GC has stamped g.waitsince
    created_by: str | None  # function holding the go statement
    created_by_goid: int | None  # parent goroutine, when the runtime records it (Go 1.21+)
    start_function: str | None
    labels: tuple[tuple[str, str], ...] = ()
    frames: tuple[Frame, ...] = ()
    truncated: bool = False  # the stack was deeper than the capture limit
    unwound_from: str = "sched"  # where the walk started: sched, thread, syscall


@dataclass(frozen=True)
class CapturedValue:
    """One spec expression's value in one frame.

    `value` is plain JSON data (dict, list, str, int, float, bool, None) following the
    conventions in README.md ("Captured values"); `unavailable` says why there is no
    value (then `value` is None)."""

    expression: str  # the spec's text, e.g. "req.User.Name"; the column name
    value: object = None
    sql_type: str = "JSON"  # BIGINT, DOUBLE, VARCHAR, BOOLEAN or JSON
    unavailable: str | None = None


@dataclass(frozen=True)
class FrameCapture:
    """The captured values of one frame of a spec'd function."""

    goid: int
    depth: int  # the frame's depth in frames (inlined frames counted), 0 = innermost
    function: str
    values: tuple[CapturedValue, ...] = ()


@dataclass(frozen=True)
class ProcessSnapshot:
    pid: int
    exe: str
    build_id: str | None
    go_version: str | None
    main_module: str | None
    pause_ns: int | None  # first thread stopped to last thread resumed
    threads: int = 0
    backend: str = ""
    goroutines: tuple[Goroutine, ...] = ()
    error: str | None = None  # set when this process could not be captured
    captures: tuple[FrameCapture, ...] = ()  # spec'd frames' values, in goroutine order
    spec_errors: tuple[str, ...] = ()  # spec problems for this binary (one line each)
    # "paused": every goroutine read in the pause; "early": read before it, and those
    # that ran since read again in the pause (capture/early_walk.py)
    walk: str = "paused"


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    hostname: str
    processes: tuple[ProcessSnapshot, ...] = field(default_factory=tuple)


# -- dynamic events (sideeye-tui trace) ---------------------------------------------------


@dataclass(frozen=True)
class ProbeInfo:
    """One probe placed in one process (a row of `probes`)."""

    probe_id: int  # unique in a trace
    pid: int
    kind: str  # "function" (entry and return) or "line"
    location: str  # as written
    function: str | None = None
    file: str | None = None
    line: int | None = None
    pcs: int = 0  # code addresses attached
    error: str | None = None  # why it could not be placed (then pcs == 0)
    # Captured expressions and their SQL types: at entry (or at the line), at return.
    captures: tuple[tuple[str, str], ...] = ()
    return_captures: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TraceEvent:
    """One kept hit of a probe (a row of `events`)."""

    event_id: int  # unique in a trace
    probe_id: int
    pid: int
    tid: int
    goid: int
    ts_ns: int  # wall clock, unix nanoseconds
    kind: str  # entry, return, line
    duration_ns: int | None  # returns paired with their entry
    entry_event_id: int | None  # returns paired with their entry: that entry's event_id
    stack: int  # key of its backtrace in EventBatch.stacks (this trace's numbering)
    inlined: bool = False
    values: tuple[CapturedValue, ...] = ()  # its probe's captures at this kind of site


@dataclass(frozen=True)
class ProbeSecond:
    """One probe over one interval of about a second, from the BPF aggregates."""

    probe_id: int
    pid: int
    t: float  # end of the interval, unix seconds
    hits: int  # in the interval: calls (function probes) or line hits
    returns: int
    kept: int
    dropped: int
    throttled: int  # of the dropped: over --max-events-per-s
    hits_total: int
    kept_total: int
    dropped_total: int
    durations: tuple[tuple[int, int], ...] = ()  # (log2 bucket, count) in the interval


@dataclass(frozen=True)
class EventBatch:
    """What a trace produced since the last batch: written in one transaction."""

    events: tuple[TraceEvent, ...] = ()
    stacks: tuple[tuple[int, tuple[Frame, ...]], ...] = ()  # new backtraces: (key, frames)
    seconds: tuple[ProbeSecond, ...] = ()
