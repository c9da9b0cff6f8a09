"""`sideeye-tui trace`: a trace session, its store and its display, tied together.

The session (events/) only produces data; this module hands each batch to the store
and each second to the display, and ends everything cleanly however the trace ends.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from .errors import SideEyeError
from .model import ProbeInfo, ProbeSecond

if TYPE_CHECKING:
    from .events.session import TraceSummary


class _Display(Protocol):
    def second(self, seconds: list[ProbeSecond]) -> None: ...
    def end(
        self, reason: str, kept: int, dropped: int, in_flight: int, evicted: int = 0
    ) -> None: ...
    def close(self) -> None: ...


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _check_output(path: str) -> None:
    """Refuse a bad output file before placing anything."""
    from .store import open_store

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SideEyeError(f"{path}: no such directory: {parent}")
    if os.path.isdir(path):
        raise SideEyeError(f"{path}: is a directory")
    if os.path.exists(path):
        open_store(path, read_only=True).close()  # raises unless it is ours and current


Captures = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
Conditions = dict[str, str]


def _spec_locations(
    spec_path: str | None, targets: list[tuple[str, str | None]]
) -> tuple[list[str], list[str], tuple[Captures, Conditions]]:
    """The probes of the spec (--spec, or those discovered for the targets), and the
    spec files they came from."""
    from .spec import resolve_specs

    spec, warnings = resolve_specs(spec_path, targets)
    for w in warnings:
        if spec_path is not None:
            raise SideEyeError(w)  # a probe spec asked for by name must be right
        _warn(w)
    if spec is None or not spec.probes:
        return [], [], ({}, {})
    paths = sorted({s for p in spec.probes for s in p.sources})
    captures = {p.location: (p.capture, p.on_return) for p in spec.probes}
    conditions = {p.location: p.when for p in spec.probes if p.when is not None}
    return [p.location for p in spec.probes], paths, (captures, conditions)


def _summary(
    trace_id: int, probes: list[ProbeInfo], pids: list[int], kept: int, dropped: int, reason: str
) -> str:
    placed = sum(1 for p in probes if p.error is None)
    procs = f"{len(pids)} process" + ("es" if len(pids) != 1 else "")
    return (
        f"trace {trace_id}: {placed} probes in {procs}, {kept} events kept, {dropped} dropped;"
        f" ended: {reason}"
    )


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _traced(
    args: argparse.Namespace,
    pids: list[int],
    locations: list[str],
    spec_paths: list[str],
    captures: Captures,
    conditions: Conditions,
    duration: float | None,
    stop: threading.Event,
) -> tuple[TraceSummary, int, list[ProbeInfo]]:
    """Places the probes, runs the session into the store and the display, ends it."""
    from .events.display import JsonLines, LiveTable
    from .events.session import TraceSession
    from .store.events import EventWriter

    links = {"auto": None, "link": True, "perf": False}[getattr(args, "uprobes", "auto")]
    session = TraceSession(
        pids,
        locations,
        max_events_per_s=args.max_events_per_s,
        links=links,
        captures=captures,
        conditions=conditions,
    )
    display: _Display | None = None
    writer: EventWriter | None = None
    try:
        for w in session.warnings:
            _warn(w)
        probes = [p.info for p in session.probes]
        writer = EventWriter(args.output)
        trace_id = writer.begin_trace(probes, spec_paths, args.max_events_per_s)
        display = (
            JsonLines(sys.stdout, trace_id, probes) if args.json else LiveTable(sys.stdout, probes)
        )
        summary = session.run(writer.write, display.second, stop, duration)
        writer.end_trace(summary.reason)
        display.end(
            summary.reason,
            summary.events_kept,
            summary.events_dropped,
            summary.in_flight,
            summary.evicted,
        )
    finally:
        session.close()
        if display is not None:
            display.close()
        if writer is not None:
            writer.close()
    return summary, trace_id, probes


def run_trace(args: argparse.Namespace) -> int:
    from .cli import parse_duration
    from .events.targets import lock_targets
    from .procs import check_target

    if os.geteuid() != 0:
        raise SideEyeError("trace needs root (uprobes and eBPF)")
    pids: list[int] = list(dict.fromkeys(args.pids))
    duration = parse_duration(args.duration) if args.duration is not None else None
    targets = [check_target(pid) for pid in pids]
    _check_output(args.output)
    spec_locations, spec_paths, (captures, conditions) = _spec_locations(
        args.spec, [(t.exe, t.main_module) for t in targets]
    )
    locations = list(dict.fromkeys([*args.probe, *spec_locations]))
    if not locations:
        raise SideEyeError("nothing to trace: give --probe LOC, or a --spec with [probes]")

    # From here a SIGINT or SIGTERM ends the trace cleanly, even one that comes while
    # the probes are being placed: the session then stops as soon as it runs.
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    old_handlers = {signum: signal.signal(signum, on_signal) for signum in _STOP_SIGNALS}
    try:
        with lock_targets(pids):
            summary, trace_id, probes = _traced(
                args, pids, locations, spec_paths, captures, conditions, duration, stop
            )
    finally:
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)
    line = _summary(
        trace_id, probes, pids, summary.events_kept, summary.events_dropped, summary.reason
    )
    if summary.in_flight:
        line += f"; {summary.in_flight} calls never returned during the trace"
    if summary.evicted:
        line += f" ({summary.evicted} more were let go of by the bounded in-flight map)"
    print(f"{line}; wrote {args.output}", file=sys.stderr)
    return 0
