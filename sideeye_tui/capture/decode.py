"""From raw goroutines to the model: names for codes, symbols for pcs."""

from __future__ import annotations

from ..dwarf.binary import GoBinary
from ..model import Frame, Goroutine
from ..rawdata import SOURCE_NAMES, RawGoroutine


def _frames(binary: GoBinary, pcs: tuple[int, ...]) -> tuple[Frame, ...]:
    out: list[Frame] = []
    for i, pc in enumerate(pcs):
        out.extend(binary.symbolize(pc, return_address=i > 0))
    return tuple(out)


def decode(binary: GoBinary, raw: RawGoroutine, now_ns: int) -> Goroutine:
    lay = binary.layout
    status = lay.status_names.get(raw.status, f"status{raw.status}")
    reason: str | None = None
    if raw.wait_reason and raw.wait_reason < len(lay.wait_reasons):
        reason = lay.wait_reasons[raw.wait_reason] or None
    elif raw.wait_reason:
        reason = f"waitReason{raw.wait_reason}"
    wait_seconds = None
    if raw.wait_since > 0 and now_ns > raw.wait_since and status in ("waiting", "syscall"):
        wait_seconds = (now_ns - raw.wait_since) / 1e9
    # Like the runtime's tracebacks, no creator for the main goroutine (its gopc is in
    # the runtime's start-up code).
    created_by = None
    if raw.gopc and raw.goid != 1:
        created_by = binary.symbolize(raw.gopc, return_address=True)[0].function
    start = binary.function_name(raw.startpc) if raw.startpc else None
    return Goroutine(
        goid=raw.goid,
        status=status,
        wait_reason=reason if status == "waiting" else None,
        wait_seconds=wait_seconds,
        created_by=created_by,
        created_by_goid=raw.parent_goid or None,
        start_function=start,
        labels=raw.labels,
        frames=_frames(binary, raw.pcs),
        truncated=raw.truncated,
        unwound_from=SOURCE_NAMES.get(raw.source, "?"),
    )
