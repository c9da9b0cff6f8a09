"""Generates the eBPF C program that walks every goroutine of one paused Go process.

The program is a pure function of the runtime's layout (read from the binary's DWARF)
and a few limits, so it is tested without root. It runs in the target's context, on a
uprobe at the Go runtime's signal handler, armed only while we hold the process paused:

- a cursor (one array-map slot) remembers where the walk is: the next index into
  runtime.allgs, the goroutine being unwound, its frame pointer and depth;
- each invocation does at most STEPS steps (a step starts a goroutine or unwinds one
  frame) and tail-calls itself to go on, since the verifier bounds a program's paths;
- several copies of the program are attached to the same uprobe, each with its own
  tail-call budget, so one trigger can walk a very large process;
- goroutines running on a CPU are unwound from their thread's real registers, which
  the tracer reads with PTRACE_GETREGS and stores in `threads` before the trigger;
- records leave through a ring buffer: one header per goroutine, then its return
  addresses in chunks of up to CHUNK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..dwarf.layout import RuntimeLayout

CHUNK = 32  # return addresses per frames record

# Record kinds; the decoder in bpf/records.py mirrors these structs.
REC_GOROUTINE = 1
REC_FRAMES = 2

# Where a goroutine's unwinding started.
SOURCE_SCHED = 0
SOURCE_THREAD = 1
SOURCE_SYSCALL = 2

FRAMES_LAST = 1
FRAMES_TRUNCATED = 2
FRAMES_BAD_FP = 4


@dataclass(frozen=True)
class ProbeLimits:
    max_depth: int = 1024  # frames kept per goroutine; deeper stacks are marked truncated
    steps: int = 96  # steps per program invocation (the verifier bounds this)
    tail_calls: int = 32  # invocations chained by tail calls after the first
    copies: int = 8  # programs attached to the uprobe, each with its own tail-call chain
    ringbuf_pages: int = 8192  # 32 MiB of records

    @property
    def steps_per_trigger(self) -> int:
        return self.steps * (self.tail_calls + 1) * self.copies


def _g_read_size(layout: RuntimeLayout) -> int:
    fields = [
        layout.g_stack_lo,
        layout.g_stack_hi,
        layout.g_sched_sp,
        layout.g_sched_pc,
        layout.g_sched_bp,
        layout.g_atomicstatus,
        layout.g_goid,
        layout.g_waitsince,
        layout.g_waitreason,
        layout.g_gopc,
        layout.g_startpc,
        layout.g_labels,
        layout.g_m,
        layout.g_syscallsp,
        layout.g_syscallpc,
    ]
    for opt in (layout.g_syscallbp, layout.g_parent_goid):
        if opt is not None:
            fields.append(opt)
    return (max(fields) + 8 + 7) // 8 * 8


def generate(layout: RuntimeLayout, limits: ProbeLimits = ProbeLimits()) -> str:
    """The C text of the stack-walking probe for this layout."""
    status_running = _status_code(layout, "running")
    status_syscall = _status_code(layout, "syscall")
    status_dead = _status_code(layout, "dead")
    status_idle = _status_code(layout, "idle")
    g_read = _g_read_size(layout)
    syscallbp = (
        f"*(u64 *)(c->gbuf + {layout.g_syscallbp})" if layout.g_syscallbp is not None else "0"
    )
    parent_goid = (
        f"*(u64 *)(c->gbuf + {layout.g_parent_goid})"
        if layout.g_parent_goid is not None
        else "0"
    )
    return f"""
#include <uapi/linux/ptrace.h>

#define CHUNK {CHUNK}
#define MAX_DEPTH {limits.max_depth}
#define STEPS {limits.steps}
#define G_READ {g_read}

struct goroutine_rec {{
    u32 kind;
    u32 status;
    u64 goid;
    u64 g;
    u64 gopc;
    u64 startpc;
    u64 waitsince;
    u64 labels;
    u64 parent_goid;
    u64 stack_lo;
    u64 stack_hi;
    u64 procid;
    u32 waitreason;
    u32 source;
}};

struct frames_rec {{
    u32 kind;
    u32 n;
    u64 goid;
    u32 depth;   /* depth of pcs[0] */
    u32 flags;
    u64 pcs[CHUNK];
}};

struct cursor {{
    u64 armed;      /* set by the tracer while the process is paused */
    u64 tgid;
    u64 allgs;      /* address of the allgs slice header */
    u64 gi;         /* next index into allgs */
    u64 glen;
    u64 gptr;
    u64 bp;         /* frame pointer of the goroutine being unwound, 0 = none */
    u64 lo;
    u64 hi;
    u64 done;
    u64 goroutines;
    u64 frames;
    u64 invocations;
    u64 lost;       /* records the ring buffer refused */
    u64 t_first;    /* bpf_ktime_get_ns() at the first invocation */
    u64 t_done;     /* ... when the walk finished */
    u32 depth;
    u32 in_g;
    struct goroutine_rec hdr;
    struct frames_rec fr;
    u8 gbuf[G_READ];
}};

struct thread_regs {{
    u64 sp;         /* the thread's SP, to tell its goroutine's stack from g0's */
    u64 pc0;        /* innermost pc */
    u64 pc1;        /* caller's return address, 0 if unknown */
    u64 bp1;        /* frame pointer to go on from after pc1 (or after pc0) */
}};

BPF_ARRAY(cursors, struct cursor, 1);
BPF_HASH(threads, u32, struct thread_regs, 4096);
BPF_PROG_ARRAY(chain, 1);
BPF_RINGBUF_OUTPUT(records, {limits.ringbuf_pages});

static __always_inline void flush(struct cursor *c, u32 last) {{
    struct frames_rec *fr = &c->fr;
    fr->kind = {REC_FRAMES};
    fr->goid = c->hdr.goid;
    fr->flags |= last ? {FRAMES_LAST} : 0;
    u32 n = fr->n;
    if (n > CHUNK)
        n = CHUNK;
    u64 size = sizeof(*fr) - sizeof(fr->pcs) + n * sizeof(u64);
    if (records.ringbuf_output(fr, size & 0x1ff, 0))
        c->lost++;
    fr->depth += n;
    fr->n = 0;
    fr->flags = 0;
}}

static __always_inline void push(struct cursor *c, u64 pc) {{
    struct frames_rec *fr = &c->fr;
    u32 n = fr->n;
    if (n >= CHUNK)
        return;
    fr->pcs[n & (CHUNK - 1)] = pc;
    fr->n = n + 1;
    c->depth++;
    c->frames++;
    if (n + 1 == CHUNK)
        flush(c, 0);
}}

static __always_inline void start_goroutine(struct cursor *c) {{
    u64 g = 0;
    c->gi++;
    if (bpf_probe_read_user(&g, sizeof(g), (void *)(c->gptr + (c->gi - 1) * 8)) || g == 0)
        return;
    if (bpf_probe_read_user(c->gbuf, G_READ, (void *)g))
        return;
    u32 status = *(u32 *)(c->gbuf + {layout.g_atomicstatus}) & ~0x1000;
    if (status == {status_dead} || status == {status_idle})
        return;
    struct goroutine_rec *h = &c->hdr;
    h->kind = {REC_GOROUTINE};
    h->status = status;
    h->g = g;
    h->goid = *(u64 *)(c->gbuf + {layout.g_goid});
    h->gopc = *(u64 *)(c->gbuf + {layout.g_gopc});
    h->startpc = *(u64 *)(c->gbuf + {layout.g_startpc});
    h->waitsince = *(u64 *)(c->gbuf + {layout.g_waitsince});
    h->waitreason = *(u8 *)(c->gbuf + {layout.g_waitreason});
    h->labels = *(u64 *)(c->gbuf + {layout.g_labels});
    h->parent_goid = {parent_goid};
    h->stack_lo = *(u64 *)(c->gbuf + {layout.g_stack_lo});
    h->stack_hi = *(u64 *)(c->gbuf + {layout.g_stack_hi});
    h->procid = 0;
    h->source = {SOURCE_SCHED};
    c->lo = h->stack_lo;
    c->hi = h->stack_hi;
    c->depth = 0;
    c->in_g = 1;
    c->fr.n = 0;
    c->fr.depth = 0;
    c->fr.flags = 0;

    u64 pc0 = *(u64 *)(c->gbuf + {layout.g_sched_pc});
    u64 pc1 = 0;
    u64 bp = *(u64 *)(c->gbuf + {layout.g_sched_bp});
    u64 m = *(u64 *)(c->gbuf + {layout.g_m});
    if ((status == {status_running} || status == {status_syscall}) && m != 0) {{
        u64 procid = 0;
        bpf_probe_read_user(&procid, sizeof(procid), (void *)(m + {layout.m_procid}));
        h->procid = procid;
        u32 tid = procid;
        struct thread_regs *r = threads.lookup(&tid);
        if (r && r->sp >= c->lo && r->sp < c->hi) {{
            h->source = {SOURCE_THREAD};
            pc0 = r->pc0;
            pc1 = r->pc1;
            bp = r->bp1;
        }}
    }}
    if (h->source == {SOURCE_SCHED} && status == {status_syscall}) {{
        h->source = {SOURCE_SYSCALL};
        pc0 = *(u64 *)(c->gbuf + {layout.g_syscallpc});
        bp = {syscallbp};
    }}
    if (records.ringbuf_output(h, sizeof(*h), 0))
        c->lost++;
    c->goroutines++;
    c->bp = bp;
    push(c, pc0);
    if (pc1)
        push(c, pc1);
}}

static __always_inline void step_frame(struct cursor *c) {{
    u64 bp = c->bp;
    u64 pair[2] = {{0, 0}};   /* saved bp, return address */
    if (c->depth >= MAX_DEPTH) {{
        c->fr.flags |= {FRAMES_TRUNCATED};
        goto end;
    }}
    if (bp == 0)
        goto end;
    if (bp < c->lo || bp + 16 > c->hi) {{
        c->fr.flags |= {FRAMES_BAD_FP};
        goto end;
    }}
    if (bpf_probe_read_user(pair, sizeof(pair), (void *)bp)) {{
        c->fr.flags |= {FRAMES_BAD_FP};
        goto end;
    }}
    if (pair[1] == 0)
        goto end;
    push(c, pair[1]);
    if (pair[0] != 0 && pair[0] <= bp) {{
        c->fr.flags |= {FRAMES_BAD_FP};
        goto end;
    }}
    c->bp = pair[0];
    return;
end:
    flush(c, 1);
    c->in_g = 0;
}}

int walk(struct pt_regs *ctx) {{
    u32 zero = 0;
    struct cursor *c = cursors.lookup(&zero);
    if (!c || !c->armed || c->done)
        return 0;
    if ((bpf_get_current_pid_tgid() >> 32) != c->tgid)
        return 0;
    if (c->invocations++ == 0)
        c->t_first = bpf_ktime_get_ns();
    if (c->glen == 0 && c->gi == 0) {{
        u64 slice[2] = {{0, 0}};
        bpf_probe_read_user(slice, sizeof(slice), (void *)c->allgs);
        c->gptr = slice[0];
        c->glen = slice[1];
    }}
    for (int i = 0; i < STEPS; i++) {{
        if (c->in_g) {{
            step_frame(c);
        }} else if (c->gi < c->glen) {{
            start_goroutine(c);
        }} else {{
            c->done = 1;
            c->t_done = bpf_ktime_get_ns();
            return 0;
        }}
    }}
    chain.call(ctx, 0);
    return 0;
}}
"""


def _status_code(layout: RuntimeLayout, name: str) -> int:
    for code, status in layout.status_names.items():
        if status == name:
            return code
    raise KeyError(f"runtime status {name!r} not in the binary's constants")
