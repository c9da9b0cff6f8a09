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
    locked_to_thread: bool = False  # wired to its thread (runtime.LockOSThread), as Go prints


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
    error: str | None = None  # set when this process could not be captured (no goroutines)
    captures: tuple[FrameCapture, ...] = ()  # spec'd frames' values, in goroutine order
    spec_errors: tuple[str, ...] = ()  # spec problems for this binary (one line each)
    # "paused": every goroutine read in the pause; "early": read before it, and those
    # that ran since read again in the pause (capture/early_walk.py)
    walk: str = "paused"
    # Caveats about a capture that happened (records lost, a walk left unfinished):
    # the goroutines are kept, the user is warned. Never set together with error.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    hostname: str
    processes: tuple[ProcessSnapshot, ...] = field(default_factory=tuple)
