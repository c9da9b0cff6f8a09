"""What `trace` shows while it runs: a live table (rich) or one JSON object per probe
per second (--json, the contract the explorer reads; README "Dynamic events")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from ..model import ProbeInfo, ProbeSecond


def quantile_ns(buckets: Sequence[tuple[int, int]], q: float) -> int | None:
    """The upper bound of the log2 bucket holding the q-quantile (bucket b holds
    durations in [2^b, 2^(b+1)) ns): at most twice the true value. None: no duration."""
    total = sum(c for _b, c in buckets)
    if total == 0:
        return None
    want = q * total
    seen = 0
    for b, c in sorted(buckets):
        seen += c
        if seen >= want:
            return int(2 ** (b + 1))
    return int(2 ** (max(b for b, _c in buckets) + 1))


def max_ns(buckets: Sequence[tuple[int, int]]) -> int | None:
    nonzero = [b for b, c in buckets if c]
    return int(2 ** (max(nonzero) + 1)) if nonzero else None


def json_record(trace_id: int, probe: ProbeInfo, s: ProbeSecond) -> dict[str, Any]:
    """One line of --json for one probe and one interval."""
    d = s.durations
    return {
        "type": "probe",
        "trace_id": trace_id,
        "pid": s.pid,
        "probe_id": s.probe_id,
        "location": probe.location,
        "kind": probe.kind,
        "t": round(s.t, 6),
        "hits": s.hits,
        "returns": s.returns,
        "kept": s.kept,
        "dropped": s.dropped,
        "hits_total": s.hits_total,
        "kept_total": s.kept_total,
        "dropped_total": s.dropped_total,
        "p50_ns": quantile_ns(d, 0.5),
        "p90_ns": quantile_ns(d, 0.9),
        "p99_ns": quantile_ns(d, 0.99),
        "max_ns": max_ns(d),
        "durations": {str(b): c for b, c in d},
    }


def end_record(
    trace_id: int, reason: str, kept: int, dropped: int, in_flight: int, evicted: int = 0
) -> dict[str, Any]:
    return {
        "type": "end",
        "trace_id": trace_id,
        "reason": reason,
        "events_kept": kept,
        "events_dropped": dropped,
        "in_flight": in_flight,
        "inflight_evicted": evicted,
    }


class JsonLines:
    def __init__(self, out: TextIO, trace_id: int, probes: Sequence[ProbeInfo]) -> None:
        self.out = out
        self.trace_id = trace_id
        self.probes = {p.probe_id: p for p in probes}

    def second(self, seconds: Sequence[ProbeSecond]) -> None:
        for s in seconds:
            self.out.write(json.dumps(json_record(self.trace_id, self.probes[s.probe_id], s)))
            self.out.write("\n")
        self.out.flush()

    def end(self, reason: str, kept: int, dropped: int, in_flight: int, evicted: int = 0) -> None:
        record = end_record(self.trace_id, reason, kept, dropped, in_flight, evicted)
        self.out.write(json.dumps(record))
        self.out.write("\n")
        self.out.flush()

    def close(self) -> None:
        pass


def _duration(ns: int | None) -> str:
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g}{unit}"
    return f"{ns}ns"


class LiveTable:
    """One line per probe, redrawn about once a second."""

    def __init__(self, out: TextIO, probes: Sequence[ProbeInfo]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.probes = [p for p in probes if p.error is None]
        self.last: dict[int, ProbeSecond] = {}
        self.console = Console(file=out)
        self.live = Live(self._table(), console=self.console, auto_refresh=False)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for name in ("pid", "probe", "hits/s", "p50", "p99", "kept", "dropped"):
            table.add_column(name, justify="left" if name == "probe" else "right")
        for p in self.probes:
            s = self.last.get(p.probe_id)
            if s is None:
                table.add_row(str(p.pid), p.location, "-", "-", "-", "0", "0")
                continue
            table.add_row(
                str(p.pid),
                p.location,
                str(s.hits),
                _duration(quantile_ns(s.durations, 0.5)) if p.kind == "function" else "",
                _duration(quantile_ns(s.durations, 0.99)) if p.kind == "function" else "",
                str(s.kept_total),
                str(s.dropped_total),
            )
        return table

    def second(self, seconds: Sequence[ProbeSecond]) -> None:
        for s in seconds:
            self.last[s.probe_id] = s
        self.live.update(self._table(), refresh=True)

    def end(self, reason: str, kept: int, dropped: int, in_flight: int, evicted: int = 0) -> None:
        pass

    def close(self) -> None:
        self.live.stop()
