"""A synthetic goroutine stack through runtime.asyncPreempt, for tests without a process.

Laid out as the runtime leaves a goroutine that async preemption caught in a frameless
leaf (main.spinStep, called by main.spinner) and that parked from asyncPreempt2:

    goexit <- func1 <- spinner <- spinStep (frameless) <- asyncPreempt <- asyncPreempt2

asyncPreempt's frame record links to spinner's record (BP was still spinner's), so
the frame-pointer chain skips spinner; spinner's return address is the word at the
interrupted SP, the record's address + 16.
"""

from __future__ import annotations

from dataclasses import dataclass

from sideeye_tui.dwarf.layout import RuntimeLayout

LO, HI = 0x10000, 0x12000  # the goroutine's stack

# Functions: name -> ([lo, hi), sp_delta everywhere inside: 0 for a frameless one).
ASYNC_PREEMPT2 = (0x4000, 0x4100)
ASYNC_PREEMPT = (0x5000, 0x5400)
SIGPANIC = (0x5800, 0x5900)
SPIN_STEP = (0x6000, 0x6020)
SPINNER = (0x7000, 0x7100)
FUNC1 = (0x8000, 0x8100)
GOEXIT = (0x9000, 0x9010)
FUNCTIONS = {
    "runtime.asyncPreempt2": (ASYNC_PREEMPT2, 16),
    "runtime.asyncPreempt": (ASYNC_PREEMPT, 0x188),
    "runtime.sigpanic": (SIGPANIC, 24),
    "main.spinStep": (SPIN_STEP, 0),
    "main.spinner": (SPINNER, 24),
    "main.startSpinners.func1": (FUNC1, 24),
    "runtime.goexit": (GOEXIT, 0),
}

SCHED_PC = ASYNC_PREEMPT2[0] + 0x20  # where mcall saved the goroutine
IN_PREEMPT = ASYNC_PREEMPT[0] + 0x100  # return address of the call to asyncPreempt2
INTERRUPTED = SPIN_STEP[0] + 0x8  # the pc asyncPreempt interrupted
SPINNER_RET = SPINNER[0] + 0x40  # spinStep's return address (skipped by the chain)
FUNC1_RET = FUNC1[0] + 0x50
GOEXIT_RET = GOEXIT[0] + 1


class FakeBinary:
    """What the mend and the decoder ask of a GoBinary, from FUNCTIONS."""

    def _find(self, pc: int) -> tuple[str, int] | None:
        for name, ((lo, hi), delta) in FUNCTIONS.items():
            if lo <= pc < hi:
                return name, delta
        return None

    def sp_delta(self, pc: int) -> int | None:
        found = self._find(pc)
        return None if found is None else found[1]

    def function_name(self, pc: int) -> str | None:
        found = self._find(pc)
        return None if found is None else found[0]


G_FIELDS = (
    "stack_lo",
    "stack_hi",
    "sched_sp",
    "sched_pc",
    "sched_bp",
    "status",
    "goid",
    "waitsince",
    "waitreason",
    "gopc",
    "startpc",
    "labels",
    "m",
    "syscallsp",
    "syscallpc",
    "syscallbp",
    "parent_goid",
    "lockedm",
)


def layout(async_preempt: tuple[int, int] = ASYNC_PREEMPT) -> RuntimeLayout:
    """A runtime layout with a g of consecutive words (see G_FIELDS)."""
    words = {name: 8 * i for i, name in enumerate(G_FIELDS)}
    return RuntimeLayout(
        go_version="go1.26",
        allgs_addr=0x100000,
        g_size=8 * len(G_FIELDS),
        g_stack_lo=words["stack_lo"],
        g_stack_hi=words["stack_hi"],
        g_sched_sp=words["sched_sp"],
        g_sched_pc=words["sched_pc"],
        g_sched_bp=words["sched_bp"],
        g_atomicstatus=words["status"],
        g_goid=words["goid"],
        g_waitsince=words["waitsince"],
        g_waitreason=words["waitreason"],
        g_gopc=words["gopc"],
        g_startpc=words["startpc"],
        g_labels=words["labels"],
        g_m=words["m"],
        g_syscallsp=words["syscallsp"],
        g_syscallpc=words["syscallpc"],
        g_syscallbp=words["syscallbp"],
        g_parent_goid=words["parent_goid"],
        g_lockedm=words["lockedm"],
        m_procid=0,
        m_curg=8,
        m_alllink=16,
        status_names={
            0: "idle",
            1: "runnable",
            2: "running",
            3: "syscall",
            4: "waiting",
            6: "dead",
        },
        wait_reasons=("",),
        labels=None,
        async_preempt=async_preempt,
    )


@dataclass
class PreemptedStack:
    memory: bytearray  # [LO, HI)
    sched_sp: int
    sched_bp: int
    preempt_bp: int  # asyncPreempt's frame record
    interrupted_sp: int

    def read(self, addr: int, size: int) -> bytes:
        if addr < LO or addr + size > HI:
            raise OSError(14, f"unmapped: {addr:#x}")
        return bytes(self.memory[addr - LO : addr - LO + size])

    def g(self, goid: int = 7, status: int = 1) -> bytes:
        """The goroutine's runtime.g, parked with g.sched in asyncPreempt2."""
        values = dict.fromkeys(G_FIELDS, 0)
        values.update(
            stack_lo=LO,
            stack_hi=HI,
            sched_sp=self.sched_sp,
            sched_pc=SCHED_PC,
            sched_bp=self.sched_bp,
            status=status,
            goid=goid,
        )
        return b"".join(values[name].to_bytes(8, "little") for name in G_FIELDS)


def preempted_stack() -> PreemptedStack:
    """The stack, its outermost frame at the top."""
    memory = bytearray(HI - LO)

    def put(addr: int, value: int) -> None:
        memory[addr - LO : addr - LO + 8] = value.to_bytes(8, "little")

    func1_bp = HI - 16
    put(func1_bp, 0)
    put(func1_bp + 8, GOEXIT_RET)
    spinner_bp = func1_bp - 32
    put(spinner_bp, func1_bp)
    put(spinner_bp + 8, FUNC1_RET)
    interrupted_sp = spinner_bp - 24  # spinStep has no frame: SP is at its return address
    put(interrupted_sp, SPINNER_RET)
    preempt_bp = interrupted_sp - 16  # the injected call's return address, then BP
    put(preempt_bp, spinner_bp)
    put(preempt_bp + 8, INTERRUPTED)
    a2_bp = preempt_bp - 0x188
    put(a2_bp, preempt_bp)
    put(a2_bp + 8, IN_PREEMPT)
    return PreemptedStack(memory, a2_bp - 16, a2_bp, preempt_bp, interrupted_sp)
