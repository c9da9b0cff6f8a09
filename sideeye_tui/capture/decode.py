"""From raw goroutines to the model: names for codes, symbols for pcs.

Thousands of goroutines share a handful of stacks, so symbolization is memoized per
stack and per pc: a 100,000-goroutine snapshot costs a few distinct lookups, not a
million.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..dwarf.binary import GoBinary
from ..model import Frame, Goroutine
from ..rawdata import SOURCE_NAMES, SOURCE_THREAD, RawGoroutine

# Functions the runtime makes a goroutine call as if from the pc it stopped at (a
# fault, async preemption, a debugger's call): the frame after one of them is at that
# pc itself, not after a call.
TRAP_FUNCTIONS = frozenset({"runtime.sigpanic", "runtime.asyncPreempt", "runtime.debugCallV2"})

# A wrapper that called one of these instead of the function it wraps is shown by Go's
# traceback (runtime/traceback.go, elideWrapperCalling: FuncID_gopanic, _sigpanic,
# _panicwrap; the linker gives those funcIDs by these names).
_PANICS = frozenset({"runtime.gopanic", "runtime.sigpanic", "runtime.panicwrap"})


def elide_wrappers(frames: tuple[Frame, ...]) -> tuple[Frame, ...]:
    """Frame.wrapper as Go's default traceback decides it (showfuncinfo): a frame whose
    funcID is FuncIDWrapper (pclntab.symbolize marks those), unless the frame it called,
    the logical frame just inside it, is a panic."""
    out = list(frames)
    for i in range(1, len(out)):
        if out[i].wrapper and out[i - 1].function in _PANICS:
            out[i] = replace(out[i], wrapper=False)
    return tuple(out)


@dataclass
class Decoder:
    binary: GoBinary
    now_ns: int
    _stacks: dict[tuple[tuple[int, ...], bool], tuple[Frame, ...]] = field(default_factory=dict)
    _pcs: dict[tuple[int, bool], tuple[Frame, ...]] = field(default_factory=dict)
    _names: dict[int, str | None] = field(default_factory=dict)

    def symbolize(self, pc: int, return_address: bool) -> tuple[Frame, ...]:
        """The frames of one pc (its inlined calls first), memoized."""
        key = (pc, return_address)
        frames = self._pcs.get(key)
        if frames is None:
            frames = self._pcs[key] = self.binary.symbolize(pc, return_address)
        return frames

    def physical_frames(
        self, pcs: tuple[int, ...], first_exact: bool = False
    ) -> list[tuple[Frame, ...]]:
        """The frames of each pc, symbolized as the runtime's unwinder does (traceback.go,
        symPC): a return address at its call (pc-1), the first pc of a parked goroutine
        (g.sched.pc) and of one in a system call (g.syscallpc) included. Exact are only
        a pc a thread was stopped at (`first_exact`: a running goroutine's registers)
        and the one after a call the runtime injected (TRAP_FUNCTIONS): the goroutine
        stopped at that very instruction (unwindTrap)."""
        out = []
        exact = first_exact
        for pc in pcs:
            frames = self.symbolize(pc, not exact)
            out.append(frames)
            exact = self._function(pc if exact else pc - 1) in TRAP_FUNCTIONS
        return out

    def frames(self, pcs: tuple[int, ...], first_exact: bool = False) -> tuple[Frame, ...]:
        key = (pcs, first_exact)
        stack = self._stacks.get(key)
        if stack is None:
            stack = self._stacks[key] = elide_wrappers(
                tuple(f for frames in self.physical_frames(pcs, first_exact) for f in frames)
            )
        return stack

    def _function(self, pc: int) -> str | None:
        if pc not in self._names:
            self._names[pc] = self.binary.function_name(pc)
        return self._names[pc]

    def decode(self, raw: RawGoroutine) -> Goroutine:
        lay = self.binary.layout
        status = lay.status_names.get(raw.status, f"status{raw.status}")
        reason: str | None = None
        if status == "waiting" and raw.wait_reason:
            if raw.wait_reason < len(lay.wait_reasons):
                reason = lay.wait_reasons[raw.wait_reason] or None
            else:
                reason = f"waitReason{raw.wait_reason}"
        wait_seconds = None
        if raw.wait_since > 0 and self.now_ns > raw.wait_since and status in ("waiting", "syscall"):
            wait_seconds = (self.now_ns - raw.wait_since) / 1e9
        # Like the runtime's tracebacks, no creator for the main goroutine (its gopc is
        # in the runtime's start-up code).
        created_by = None
        if raw.gopc and raw.goid != 1:
            created_by = self.symbolize(raw.gopc, True)[0].function
        return Goroutine(
            goid=raw.goid,
            status=status,
            wait_reason=reason,
            wait_seconds=wait_seconds,
            created_by=created_by,
            created_by_goid=raw.parent_goid or None,
            start_function=self._function(raw.startpc) if raw.startpc else None,
            labels=raw.labels,
            frames=self.frames(raw.pcs, raw.source == SOURCE_THREAD),
            truncated=raw.truncated,
            unwound_from=SOURCE_NAMES.get(raw.source, "?"),
            locked_to_thread=raw.locked_to_thread,
        )
