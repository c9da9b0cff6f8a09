"""One `trace` run: probes placed in every target, then a loop that reads the BPF
aggregates once a second and drains the ring buffer of raw events, until told to stop.

Rates and durations come from per-CPU counters and histograms in BPF, so they are
exact at any hit rate; events (goroutine, time, backtrace) are what the ring buffer
could carry, and what it could not is counted per probe. The session produces plain
data (model.EventBatch) for a sink and per-second rows for a display; it knows
nothing of the store or the terminal.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import dataclasses
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..bpf import event_probe as ep
from ..capture.decode import Decoder
from ..errors import CaptureError, ProcessError, SideEyeError
from ..model import CapturedValue, EventBatch, Frame, ProbeInfo, ProbeSecond, TraceEvent
from ..procs import check_target, process_alive
from ..values.at_pc import EventValuesCompiler
from .conditions import ConditionError, compile_terms, parse_when
from .locations import KIND_RETURN, Resolved
from .targets import Target, open_target, place
from .values import TargetValues, ValueRecords, columns, compile_probe, fill_maps

TICK_S = 1.0  # aggregates read, batch written
DRAIN_S = 0.02  # ring buffer drained

END_DURATION = "duration"
END_INTERRUPTED = "interrupted"
END_EXITED = "targets exited"


@dataclass
class _ProbeState:
    info: ProbeInfo
    function: bool  # entry and return sites: durations to read
    capture: tuple[str, ...] = ()
    on_return: tuple[str, ...] = ()
    last: ep.Counters = field(default_factory=ep.Counters)
    last_buckets: list[int] = field(default_factory=lambda: [0] * ep.BUCKETS)


class _Compile:
    """EventProgram(text) built in a thread of its own."""

    def __init__(self, text: str, links: bool | None) -> None:
        self._program: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            from ..bpf.loader import EventProgram  # loads BCC

            try:
                self._program = EventProgram(text, links=links)
            except BaseException as e:  # noqa: BLE001 - handed to result()
                self._error = e

        self._thread = threading.Thread(target=run, name="sideeye-compile", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._program

    def discard(self) -> None:
        self._thread.join()
        if self._program is not None:
            self._program.close()


@dataclass(frozen=True)
class TraceSummary:
    reason: str
    events_kept: int
    events_dropped: int
    in_flight: int  # entries never paired with a return (still running, panicked, ...)
    evicted: int = 0  # entries the bounded in-flight map let go of (their returns unpaired)


class TraceSession:
    """Placed and attached on construction; run() until stopped; close() always."""

    def __init__(
        self,
        pids: list[int],
        locations: list[str],
        max_events_per_s: int = 0,
        links: bool | None = None,
        limits: ep.EventLimits | None = None,
        captures: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
        conditions: Mapping[str, str] | None = None,
    ) -> None:
        """captures: location -> (expressions at entry or at the line, at return);
        conditions: location -> its `when`."""
        self._terms = {loc: parse_when(loc, text) for loc, text in (conditions or {}).items()}
        self._conds: dict[tuple[int, int, int], list[ep.VCond]] = {}
        self._paired_only: set[tuple[int, int, int]] = set()
        # The program depends on no target: BCC compiles and the kernel verifies it
        # (seconds) while the targets' binaries are analysed (ctypes lets go of the GIL).
        compiling = _Compile(ep.program_text(limits or ep.EventLimits()), links)

        self.limits = limits or ep.EventLimits()
        self.targets: list[Target] = []
        self.probes: list[_ProbeState] = []
        self.warnings: list[str] = []
        self._offsets: dict[int, list[int]] = {}  # pid -> file offsets to probe
        self._values_of: dict[int, TargetValues] = {}
        resolved: list[tuple[Target, _ProbeState, Resolved]] = []
        try:
            for pid in pids:
                check_target(pid)
                self.targets.append(open_target(pid))
            for target in self.targets:
                for location in locations:
                    info, r = place(target, location, len(self.probes) + 1)
                    state = _ProbeState(info, info.kind == "function")
                    self.probes.append(state)
                    if r is None:
                        self.warnings.append(f"pid {target.pid}: {info.error}")
                    else:
                        resolved.append((target, state, r))
            if not resolved:
                first = next((p.info.error for p in self.probes if p.info.error), None)
                raise SideEyeError(first or "no probe to place")
            if len(self.probes) > self.limits.max_probes:
                raise SideEyeError(
                    f"too many probes ({len(self.probes)}; at most {self.limits.max_probes})"
                )
            self._values = self._compile_values(resolved, captures or {})
        except BaseException:
            self._close_binaries()
            compiling.discard()
            raise
        try:
            self.program = compiling.result()
        except BaseException:
            self._close_binaries()
            raise
        try:
            if self._values:
                try:
                    fill_maps(self.program.bpf, self._values, self.limits)
                except ValueError as e:
                    raise SideEyeError(f"values: {e}") from None
            self._fill(resolved, max_events_per_s)
            self._attach_all()
        except BaseException:
            self.close()
            raise
        self._records: list[tuple[Any, ...]] = []
        self._decoders = {t.pid: Decoder(t.binary, 0) for t in self.targets}
        self._stacks: dict[tuple[int, bytes], int] = {}
        self._new_stacks: list[tuple[int, tuple[Frame, ...]]] = []
        self._clock_offset = time.time_ns() - time.monotonic_ns()
        self._kept = 0

        def on_record(_ctx: Any, data: Any, _size: int) -> int:
            e = ct.cast(data, ct.POINTER(ep.Event)).contents
            n = min(int(e.nframes), ep.MAX_FRAMES)
            self._records.append(
                (
                    e.event_id,
                    e.entry_id,
                    e.ts_ns,
                    e.duration_ns,
                    e.goid,
                    e.tgid,
                    e.tid,
                    e.probe,
                    e.kind,
                    e.inlined,
                    e.paired,
                    ct.string_at(ct.addressof(e.pcs), 8 * n),  # a stack's key, cheap to hash
                    e.pc,
                )
            )
            return 0

        self._on_record = on_record  # kept alive: BCC holds only a C pointer to it
        self.program.bpf[b"events"].open_ring_buffer(on_record)
        self._vrecs = ValueRecords()
        self._on_vrec = self._vrecs.on_record
        self.program.bpf[b"vals"].open_ring_buffer(self._on_vrec)
        self._held: list[tuple[Any, ...]] = []  # events whose values are not all in yet
        self._held_once: set[int] = set()

    # -- set-up ----------------------------------------------------------------------

    def _compile_values(
        self,
        resolved: list[tuple[Target, _ProbeState, Resolved]],
        captures: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
    ) -> list[TargetValues]:
        """Compiles every probe's captures at each of its sites; records the columns."""
        out: dict[int, TargetValues] = {}
        for target, state, r in resolved:
            capture, on_return = captures.get(state.info.location, ((), ()))
            terms = self._terms.get(state.info.location)
            if not capture and not on_return and not terms:
                continue
            tv = out.get(target.pid)
            if tv is None:
                tv = out[target.pid] = TargetValues(
                    target, self.targets.index(target), EventValuesCompiler(target.binary)
                )
            if terms:
                if not target.binary.has_dwarf:
                    raise ConditionError(
                        f"probes.{state.info.location}: `when` needs DWARF, which pid"
                        f" {target.pid}'s binary lacks"
                    )
                for site in r.sites:
                    key = (target.pid, site.pc, state.info.probe_id)
                    if site.kind == KIND_RETURN:
                        self._paired_only.add(key)
                    else:
                        self._conds[key] = compile_terms(
                            state.info.location, terms, tv.compiler, site.pc, site.inlined
                        )
            if not capture and not on_return:
                continue
            compile_probe(tv, state.info.probe_id, r, tuple(capture), tuple(on_return))
            state.info = dataclasses.replace(
                state.info,
                captures=columns(tv, tuple(capture)) if capture else (),
                return_captures=columns(tv, tuple(on_return)) if on_return else (),
            )
            state.capture = tuple(capture)
            state.on_return = tuple(on_return)
        for tv in out.values():
            for w in dict.fromkeys(tv.compiler.out.warnings):
                self.warnings.append(f"pid {tv.target.pid}: {w}")
        self._values_of = out
        return list(out.values())

    def _fill(self, resolved: Iterable[tuple[Target, _ProbeState, Resolved]], cap: int) -> None:
        """The sites map: per (pid, pc), the probes there (a function's entry and a line
        may share a pc; one uprobe runs them all)."""
        grouped: dict[tuple[int, int], ep.SiteValue] = {}
        cond_rows: list[ep.VCond] = []
        for target, state, r in resolved:
            for s in r.sites:
                key = (target.pid, s.pc + target.bias)
                value = grouped.get(key)
                if value is None:
                    value = grouped[key] = ep.SiteValue(
                        sp_delta=s.sp_delta,
                        goid_off=target.goid_off,
                        stack_hi_off=target.stack_hi_off,
                        tag=self.targets.index(target),
                    )
                    self._offsets.setdefault(target.pid, []).append(target.binary.file_offset(s.pc))
                if value.n >= ep.SITE_PROBES:
                    raise SideEyeError(
                        f"{state.info.location}: more than {ep.SITE_PROBES} probes at pc {s.pc:#x}"
                    )
                slot = value.probes[value.n]
                slot.probe = state.info.probe_id
                slot.kind = ep.KIND_CODES[s.kind]
                slot.inlined = int(s.inlined)
                tv = self._values_of.get(target.pid)
                at = tv.at.get((s.pc, state.info.probe_id)) if tv is not None else None
                if at is not None and at[0] >= 0:
                    slot.first_expr = at[0]
                    slot.nexpr = min(len(at[1]), ep.MAX_EXPRS)
                ckey = (target.pid, s.pc, state.info.probe_id)
                if ckey in self._paired_only:
                    slot.flags |= ep.FLAG_PAIRED_ONLY
                conds = self._conds.get(ckey)
                if conds:
                    if value.ncond:
                        raise SideEyeError(
                            f"{state.info.location}: two probes with `when` at pc {s.pc:#x}"
                        )
                    value.cond_probe = value.n
                    value.cond_first = len(cond_rows)
                    value.ncond = len(conds)
                    cond_rows.extend(conds)
                value.n += 1
        if len(grouped) > self.limits.max_sites:
            raise SideEyeError(
                f"too many code sites ({len(grouped)}; at most {self.limits.max_sites})"
            )
        if len(cond_rows) > self.limits.max_vconds:
            raise SideEyeError(f"too many `when` comparisons ({len(cond_rows)})")
        vconds = self.program.bpf[b"vconds"]
        for i, c in enumerate(cond_rows):
            vconds[ct.c_int(i)] = c
        sites = self.program.bpf[b"sites"]
        for (pid, pc), v in grouped.items():
            sites[ep.SiteKey(pid, 0, pc)] = v
        budgets = self.program.bpf[b"budgets"]
        budgets[ct.c_int(0)] = ep.Budget(0, 0, max(cap, 0))

    # -- the loop ------------------------------------------------------------------------

    def run(
        self,
        sink: Callable[[EventBatch], None],
        on_second: Callable[[list[ProbeSecond]], None],
        stop: threading.Event,
        duration_s: float | None = None,
    ) -> TraceSummary:
        start = time.monotonic()
        deadline = None if duration_s is None else start + duration_s
        next_tick = start + TICK_S
        reason = END_INTERRUPTED
        while True:
            if stop.wait(DRAIN_S):
                reason = END_INTERRUPTED
                break
            self.program.bpf.ring_buffer_consume()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                reason = END_DURATION
                break
            if now >= next_tick:
                next_tick += TICK_S
                if next_tick < now:
                    next_tick = now + TICK_S
                seconds = self._read_aggregates()
                sink(self._batch(seconds))
                on_second(seconds)
                if not any(process_alive(t.pid) for t in self.targets):
                    reason = END_EXITED
                    break
        # The last interval: probes off first, so what is counted is all written.
        self.program.detach()
        self.program.bpf.ring_buffer_consume()
        seconds = self._read_aggregates()
        sink(self._batch(seconds, final=True))
        on_second(seconds)
        totals = self._totals()
        try:
            in_map = sum(1 for _ in self.program.bpf[b"inflight"])
        except Exception:  # noqa: BLE001 - only the summary's count is at stake
            in_map = max(0, totals.tracked - totals.paired)
        never = max(0, totals.tracked - totals.paired)  # entries never paired
        return TraceSummary(
            reason,
            totals.kept,
            totals.dropped,
            never,
            max(0, never - totals.replaced - in_map),
        )

    def _totals(self) -> ep.Counters:
        out = ep.Counters()
        for p in self.probes:
            for name, *_ in ep.Counters._fields_:
                setattr(out, name, getattr(out, name) + getattr(p.last, name))
        return out

    def _read_aggregates(self) -> list[ProbeSecond]:
        counts = self.program.bpf[b"counts"]
        durations = self.program.bpf[b"durations"]
        t = time.time()
        out = []
        for p in self.probes:
            if p.info.error is not None:
                continue
            pid = p.info.probe_id
            now = ep.Counters()
            for cpu in counts.getvalue(ct.c_int(pid)):
                for name, *_ in ep.Counters._fields_:
                    setattr(now, name, getattr(now, name) + getattr(cpu, name))
            buckets: list[tuple[int, int]] = []
            if p.function:
                for b in range(ep.BUCKETS):
                    total = sum(durations.getvalue(ct.c_int(pid * ep.BUCKETS + b)))
                    if total != p.last_buckets[b]:
                        buckets.append((b, total - p.last_buckets[b]))
                        p.last_buckets[b] = total
            last = p.last
            out.append(
                ProbeSecond(
                    probe_id=pid,
                    pid=p.info.pid,
                    t=t,
                    hits=now.hits - last.hits,
                    returns=now.returns - last.returns,
                    kept=now.kept - last.kept,
                    dropped=now.dropped - last.dropped,
                    throttled=now.throttled - last.throttled,
                    hits_total=now.hits,
                    kept_total=now.kept,
                    dropped_total=now.dropped,
                    durations=tuple(buckets),
                )
            )
            p.last = now
        return out

    def _batch(self, seconds: list[ProbeSecond], final: bool = False) -> EventBatch:
        records, self._records = self._held + self._records, []
        self._held = []
        events = []
        offset = self._clock_offset
        by_id = {p.info.probe_id: p for p in self.probes}
        for rec in records:
            (
                event_id,
                entry_id,
                ts,
                duration,
                goid,
                tgid,
                tid,
                probe,
                kind,
                inlined,
                paired,
                pcs,
                pc,
            ) = rec
            values: tuple[CapturedValue, ...] = ()
            state = by_id.get(probe)
            tv = self._values_of.get(tgid)
            if state is not None and tv is not None:
                target = tv.target
                at = tv.at.get((pc - target.bias, probe))
                if at is not None:
                    _first, texts, roots = at
                    # Values come through a ring buffer of their own: an event whose
                    # values are not all in waits for the next batch, once.
                    if (
                        not final
                        and event_id not in self._held_once
                        and not self._vrecs.complete(event_id, len(roots))
                    ):
                        self._held_once.add(event_id)
                        self._held.append(rec)
                        continue
                    self._held_once.discard(event_id)
                    compiled = tv.compiler.out.expressions[texts]
                    values = self._vrecs.take(
                        event_id, goid, pc - target.bias, texts, roots, compiled, tv.decoder
                    )
            events.append(
                TraceEvent(
                    event_id=event_id,
                    probe_id=probe,
                    pid=tgid,
                    tid=tid,
                    goid=goid,
                    ts_ns=ts + offset,
                    kind=ep.KIND_NAMES.get(kind, "?"),
                    duration_ns=duration if paired else None,
                    entry_event_id=entry_id if paired else None,
                    stack=self._stack(tgid, pcs),
                    inlined=bool(inlined),
                    values=values,
                )
            )
        self._kept += len(events)
        stacks, self._new_stacks = self._new_stacks, []
        return EventBatch(tuple(events), tuple(stacks), tuple(seconds))

    def _stack(self, pid: int, raw: bytes) -> int:
        """The trace's key of this backtrace (its pcs as the probe wrote them)."""
        key = (pid, raw)
        index = self._stacks.get(key)
        if index is None:
            index = self._stacks[key] = len(self._stacks)
            target = next(t for t in self.targets if t.pid == pid)
            pcs = struct.unpack(f"<{len(raw) // 8}Q", raw)
            unbiased = tuple(pc - target.bias for pc in pcs)
            # The innermost pc is where the probe fired: exact, not a return address.
            frames = self._decoders[pid].frames(unbiased, first_exact=True)
            if target.bias:
                frames = tuple(dataclasses.replace(f, pc=f.pc + target.bias) for f in frames)
            self._new_stacks.append((index, frames))
        return index

    def _attach_all(self) -> None:
        """Every target's probes attached; a target that exited meanwhile is said so."""
        for target in self.targets:
            offsets = self._offsets.get(target.pid)
            if not offsets:
                continue
            try:
                self.program.attach(target.pid, offsets)
            except OSError as e:
                if not process_alive(target.pid):
                    raise ProcessError(
                        f"pid {target.pid} exited while probes were placed"
                    ) from None
                raise CaptureError(
                    f"pid {target.pid}: cannot attach the probes: {e.strerror or e}"
                ) from None

    # -- the end --------------------------------------------------------------------

    def _close_binaries(self) -> None:
        for t in self.targets:
            t.binary.close()

    def close(self) -> None:
        program = getattr(self, "program", None)
        if program is not None:
            program.close()
        for t in self.targets:
            with contextlib.suppress(OSError):
                t.binary.save_cache()
        self._close_binaries()
