"""Generates the eBPF C program that walks every goroutine of one Go process.

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

A walk has one of three modes (the cursor's `mode`):
- WALK_PAUSED: every goroutine, inside the pause.
- WALK_EARLY: every goroutine, before the pause, while the process runs, on one idle
  thread, a few hundred microseconds a trigger (the tracer's budget). Meanwhile the
  `track` program, on uprobes at the runtime functions through which a goroutine
  starts or stops running or its stack moves (TRACKED_FUNCTIONS), marks each goroutine
  that goes through them. A goroutine running when the early walk reads it is
  recorded too (from its stale g.sched); it is covered in the pause either way.
- WALK_CHANGED: inside the pause, only the marked goroutines (new ones are marked:
  they pass through casgstatus from dead to runnable) and each M's current goroutine.
  A goroutine that was not marked has not run since the early walk read it, so its
  early record stands; the tracer drops the early record of every goroutine the
  changed walk covers (capture/early_walk.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..rawdata import not_goroutines, status_code
from . import value_probe

if TYPE_CHECKING:
    from ..dwarf.layout import RuntimeLayout

CHUNK = 32  # return addresses per record
GBATCH = 16  # goroutine pointers read from allgs at once
# The stack is copied in windows: FIRST_WINDOW bytes at a goroutine's SP, which holds
# every frame of most parked goroutines, then WINDOW bytes at the first frame pointer
# outside the copy, and so on. Each extra byte of the first copy costs time on every
# goroutine (bench: 256 bytes walk 10,000 parked goroutines 14% faster than 1024).
FIRST_WINDOW = 256  # powers of two, FIRST_WINDOW <= WINDOW
WINDOW = 1024

# Record kinds; the decoder in bpf/records.py mirrors these structs.
REC_GOROUTINE = 1
REC_FRAMES = 2

# Where a goroutine's unwinding started.
SOURCE_SCHED = 0
SOURCE_THREAD = 1
SOURCE_SYSCALL = 2

REC_LABELS = 3
REC_HEAD = 4
HEAD = 512  # bytes of a running goroutine's stack sent with its registers (<= WINDOW)
BATCH = 8192  # bytes of goroutine records gathered before one ring-buffer write
REC_MAX = 120 + 8 * CHUNK  # sizeof(struct rec): its fields, then CHUNK pcs
MAX_LABELS = 8  # labels read per goroutine in the probe
LABEL_BYTES = 64  # bytes kept of each label key and value
LABEL_QUEUE = 65536  # goroutines with labels, read after the stack walk
MAX_WORKERS = 8  # threads walking at once, each on its own CPU

WALK_PAUSED = 0
WALK_EARLY = 1
WALK_CHANGED = 2
MARKS = 65536  # goroutines the tracker can mark; one more and the pause walks them all
MAX_MS = 256  # Ms (threads) followed on runtime.allm; more and the pause walks all
# Where a goroutine starts or stops running (casgstatus: every usual transition;
# preemptPark: running -> preempted; coroswitch_m: coroutine switches, Go 1.23+) or its
# stack moves (copystack). The first argument (AX) of each is the goroutine.
TRACKED_FUNCTIONS = ("runtime.casgstatus", "runtime.preemptPark", "runtime.copystack")
TRACKED_IF_LINKED = ("runtime.coroswitch_m",)

FRAMES_LAST = 1
FRAMES_TRUNCATED = 2
FRAMES_BAD_FP = 4
GOROUTINE_LOCKED = 8  # in the goroutine's first record: g.lockedm != 0


@dataclass(frozen=True)
class ProbeLimits:
    max_depth: int = 1024  # frames kept per goroutine; deeper stacks are marked truncated
    steps: int = (
        128  # steps per program invocation (the verifier: 0.66M of its 1M insns; 192 took 0.98M)
    )
    tail_calls: int = 32  # invocations chained by tail calls after the first
    copies: int = 8  # programs attached to the uprobe, each with its own tail-call chain
    ringbuf_pages: int = 8192  # 32 MiB of records


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
        layout.g_lockedm,
    ]
    for opt in (layout.g_syscallbp, layout.g_parent_goid):
        if opt is not None:
            fields.append(opt)
    return (max(fields) + 8 + 7) // 8 * 8


DEFAULT_LIMITS = ProbeLimits()


def generate(
    layout: RuntimeLayout,
    limits: ProbeLimits = DEFAULT_LIMITS,
    values: value_probe.ValueDims | None = None,
) -> str:
    """The C text of the stack-walking probe for this layout (and a capture plan's
    value program, when given). Programs run in order: walk, labels, values."""
    assert FIRST_WINDOW <= WINDOW and HEAD <= WINDOW, "the stack copy's buffer holds both"
    all_done = "c->done = 1; c->t_done = bpf_ktime_get_ns();"
    after_labels = "chain.call(ctx, 2);" if values is not None else all_done
    # the labels program goes on (or the next copy does)
    finish = "chain.call(ctx, 1);" if layout.labels is not None else after_labels
    status_running = status_code(layout.status_names, "running")
    status_syscall = status_code(layout.status_names, "syscall")
    skip = " || ".join(f"status == {code}" for code in not_goroutines(layout.status_names)) or "0"
    g_read = _g_read_size(layout)
    preempt_lo, preempt_hi = layout.async_preempt
    syscallbp = (
        f"*(u64 *)(c->gbuf + {layout.g_syscallbp})" if layout.g_syscallbp is not None else "0"
    )
    parent_goid = (
        f"*(u64 *)(c->gbuf + {layout.g_parent_goid})" if layout.g_parent_goid is not None else "0"
    )
    return f"""
#include <uapi/linux/ptrace.h>

#define CHUNK {CHUNK}
#define MAX_DEPTH {limits.max_depth}
#define STEPS {limits.steps}
#define G_READ {g_read}
#define GBATCH {GBATCH}
#define WIN {WINDOW}
#define WIN0 {FIRST_WINDOW}
#define HEAD {HEAD}
#define BATCH {BATCH}
#define REC_MAX {REC_MAX}
#define REC_HEAD {REC_MAX - 8 * CHUNK}
#define MAX_WORKERS {MAX_WORKERS}
#define QUEUE_SHARE (LABEL_QUEUE / MAX_WORKERS)
#define MAX_LABELS {MAX_LABELS}
#define LABEL_BYTES {LABEL_BYTES}
#define LABEL_QUEUE {LABEL_QUEUE}
#define MARKS {MARKS}
#define MAX_MS {MAX_MS}
#define WALK_PAUSED {WALK_PAUSED}
#define WALK_EARLY {WALK_EARLY}
#define WALK_CHANGED {WALK_CHANGED}
#define PREEMPT_LO {preempt_lo}ULL   /* runtime.asyncPreempt's code: [lo, hi) */
#define PREEMPT_HI {preempt_hi}ULL

/* One record per CHUNK return addresses: the first of a goroutine (kind 1) carries its
   fields, later ones (kind 2) repeat them and carry only more frames. */
struct rec {{
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
    u32 n;
    u32 flags;
    u32 depth;   /* depth of pcs[0] */
    u32 interrupted_depth;     /* runtime.asyncPreempt interrupted the pc at this depth */
    u64 interrupted_sp_word;   /* the word at the SP it interrupted (see step_frame) */
    u64 pcs[CHUNK];
}};

/* The top of a running goroutine's stack with its registers: the innermost function
   may not have set up its frame pointer yet, so the tracer finds the caller's return
   address with the pcsp table, after resuming. */
struct head_rec {{
    u32 kind;
    u32 len;
    u64 goid;
    u64 sp;
    u64 bp;
    u8 data[HEAD];
}};

struct cursor {{
    u64 armed;      /* set by the tracer while the process is paused */
    u64 tgid;
    u64 allgs;      /* address of runtime.allgs (a slice header: ptr, len, cap) */
    u64 slot;       /* this worker's index, and how many workers share allgs */
    u64 nworkers;
    u64 last_short; /* goroutines fewer for the last worker, which shares the tracer's CPU */
    u64 gptr;       /* allgs' backing array, read at the first invocation */
    u64 gi;         /* next index into allgs */
    u64 glen;       /* end of this worker's share of allgs */
    u64 bp;         /* frame pointer of the goroutine being unwound */
    u64 lo;
    u64 hi;
    u64 done;
    u64 goroutines;
    u64 frames;
    u64 invocations;
    u64 lost;       /* records the ring buffer refused */
    u64 t_first;    /* bpf_ktime_get_ns() at the first invocation */
    u64 t_done;     /* ... when the walk finished */
    u64 chains_ended;   /* copies whose tail-call budget ran out before the end */
    u64 hits;       /* uprobe hits on this worker's thread */
    u64 cpu;        /* the CPU of the first invocation (shows whether walkers overlapped) */
    u64 win_base;   /* the stack window: a copy of [win_base, win_base + win_len) */
    u32 win_len;
    u32 depth;
    u32 in_g;
    u32 walked;     /* stacks done; labels may still be read */
    u64 lq_base;    /* this worker's part of label_jobs */
    u64 lq_len;     /* goroutines queued for their labels */
    u64 lq_next;
    u64 vq_base;    /* this worker's part of vjobs (frames whose values to read) */
    u64 vq_len;
    u64 vq_lost;    /* frames not queued: the share was full (early walk) */
    u64 vq_cap;     /* this worker's part of vjobs: its size */
    u64 vq_drains;  /* times the walk stopped to read the values queued */
    u64 rb_used;    /* bytes of value records this worker put in the ring buffer... */
    u64 rb_cap;     /* ...and its share: at that, it waits for the tracer to read them */
    u64 rb_wait;    /* set: it stopped for that (the tracer resets both, triggers again) */
    u64 rb_waits;
    u64 mode;       /* WALK_PAUSED, WALK_EARLY or WALK_CHANGED (see stack_probe.py) */
    u64 allglen;    /* addresses of runtime.allglen and runtime.allgptr (early walk) */
    u64 allgptr;
    u64 allm;       /* address of runtime.allm (changed walk) */
    u64 pre_len;    /* allgs entries the early walk covered */
    u64 nmarked;    /* marked goroutines the changed walk took */
    u64 fell_back;  /* the changed walk could not trust the marks: it walked all */
    u64 pc;         /* the last pc pushed: that of the frame step_frame unwinds */
    u64 skip_below; /* frame records below this address are skipped (see walk start) */
    u64 gptrs[GBATCH];
    struct rec r;
    u8 gbuf[G_READ];
    u8 win[WIN + 24];   /* + 24: a frame record and a word read at an offset < WIN */
    struct head_rec head;
    u32 boff;
    u32 pad2;
    u8 batch[BATCH + REC_MAX];   /* REC_MAX == sizeof(struct rec) */
}};

struct thread_regs {{   /* PTRACE_GETREGS of a stopped thread */
    u64 sp;
    u64 pc;
    u64 bp;
}};



struct label {{
    u32 klen;
    u32 vlen;
    char key[LABEL_BYTES];
    char value[LABEL_BYTES];
}};

struct labels_rec {{
    u32 kind;
    u32 n;          /* labels in e[]; more may exist (see total) */
    u64 goid;
    u64 total;
    struct label e[MAX_LABELS];
}};

struct label_job {{
    u64 goid;
    u64 ptr;
}};

/* One cursor per worker thread: allgs is split between threads that run the probe at
   the same time on different CPUs. */
BPF_ARRAY(cursors, struct cursor, MAX_WORKERS);
BPF_HASH(worker_of, u32, u32, 4096);
BPF_ARRAY(label_jobs, struct label_job, LABEL_QUEUE);
BPF_PERCPU_ARRAY(label_buf, struct labels_rec, 1);
BPF_HASH(threads, u32, struct thread_regs, 4096);
BPF_PROG_ARRAY(chain, 3);

struct tracker {{
    u64 tgid;
    u64 on;
    u64 count;      /* goroutines marked; the first MARKS of them are in marks[] */
    u64 overflow;   /* a mark was lost: the changed walk must not be trusted */
}};
BPF_ARRAY(tracker, struct tracker, 1);
BPF_ARRAY(marks, u64, MARKS);
BPF_HASH(marked, u64, u8, MARKS);
BPF_ARRAY(early_budget, u64, 1);   /* invocations the early walk may still run */
BPF_RINGBUF_OUTPUT(records, {limits.ringbuf_pages});
{value_probe.definitions(values, MAX_WORKERS) if values is not None else ""}

/* Marks goroutine g: it changed since the early walk read it, or may have. */
static __always_inline void mark(struct tracker *t, u64 g) {{
    u8 one = 1;
    int err = marked.insert(&g, &one);
    if (err == -17)   /* -EEXIST: marked already */
        return;
    if (err) {{
        t->overflow = 1;
        return;
    }}
    u64 i = __sync_fetch_and_add(&t->count, 1);
    u32 k = i;
    u64 *slot = marks.lookup(&k);
    if (i >= MARKS || !slot) {{
        t->overflow = 1;
        return;
    }}
    *slot = g;
}}

/* On the uprobes at TRACKED_FUNCTIONS, in any thread of the target. */
int track(struct pt_regs *ctx) {{
    u32 zero = 0;
    struct tracker *t = tracker.lookup(&zero);
    if (!t || !t->on || (bpf_get_current_pid_tgid() >> 32) != t->tgid)
        return 0;
    mark(t, ctx->ax);
    return 0;
}}

/* Records are batched: one ring-buffer write per BATCH bytes costs far less than one
   per goroutine (the ring buffer's lock is shared by the walking CPUs). */
static __always_inline void flush_batch(struct cursor *c) {{
    u32 n = c->boff;
    if (n == 0)
        return;
    if (n > BATCH)
        n = BATCH;
    void *batch = c->batch;
    if (records.ringbuf_output(batch, n, BPF_RB_NO_WAKEUP))
        c->lost++;
    c->boff = 0;
}}

static __always_inline void emit(struct cursor *c, u32 npcs) {{
    u32 size = REC_HEAD + npcs * 8;
    if (c->boff + size > BATCH)
        flush_batch(c);
    u32 off = c->boff;
    if (off >= BATCH)
        return;
    /* Word by word: clang's memcpy to a variable offset crashes BCC's LLVM 14. The
       fields, then only the pcs in use: most stacks fill a fraction of a chunk. The
       mask changes nothing (off < BATCH, a power of two) but tells the verifier. */
    u64 *dst = (u64 *)(c->batch + (off & (BATCH - 1)));
    u64 *src = (u64 *)&c->r;
#pragma unroll
    for (int i = 0; i < REC_HEAD / 8; i++)
        dst[i] = src[i];
#pragma unroll
    for (int b = 0; b < CHUNK / 8; b++) {{   /* eight pcs at a time */
        if (b * 8 >= npcs)
            break;
#pragma unroll
        for (int j = 0; j < 8; j++)
            dst[REC_HEAD / 8 + b * 8 + j] = src[REC_HEAD / 8 + b * 8 + j];
    }}
    c->boff = off + size;
}}

static __always_inline void flush(struct cursor *c, u32 last) {{
    struct rec *r = &c->r;
    u32 n = r->n;
    if (n > CHUNK)
        n = CHUNK;
    if (last)
        r->flags |= {FRAMES_LAST};
    emit(c, n);
    r->kind = {REC_FRAMES};
    r->depth += n;
    r->n = 0;
    r->flags = 0;
}}

static __always_inline void push(struct cursor *c, u64 pc) {{
    struct rec *r = &c->r;
    u32 n = r->n;
    if (n >= CHUNK)
        return;
    r->pcs[n & (CHUNK - 1)] = pc;
    r->n = n + 1;
    c->pc = pc;
    c->depth++;
    c->frames++;
    if (n + 1 == CHUNK)
        flush(c, 0);
}}

static __always_inline void start_goroutine(struct cursor *c) {{
    u64 gi = c->gi;
    u32 slot = gi % GBATCH;
    if (slot == 0) {{   /* each worker starts at a multiple of GBATCH */
        u64 left = c->glen - gi;
        if (left > GBATCH)
            left = GBATCH;
        /* bpf_probe_read: from allgs (user memory), or in a changed walk from marks
           (a map: kernel memory), without a branch the verifier would follow */
        if (bpf_probe_read(c->gptrs, (left * 8) & (GBATCH * 8 - 1 + GBATCH * 8), (void *)(c->gptr + gi * 8)))
            __builtin_memset(c->gptrs, 0, sizeof(c->gptrs));
    }}
    c->gi = gi + 1;
    u64 g = c->gptrs[slot & (GBATCH - 1)];
    if (g == 0 || bpf_probe_read_user(c->gbuf, G_READ, (void *)g))
        return;
    u32 status = *(u32 *)(c->gbuf + {layout.g_atomicstatus}) & ~0x1000;
    if ({skip})
        return;
    struct rec *r = &c->r;
    r->kind = {REC_GOROUTINE};
    r->status = status;
    r->g = g;
    r->goid = *(u64 *)(c->gbuf + {layout.g_goid});
    r->gopc = *(u64 *)(c->gbuf + {layout.g_gopc});
    r->startpc = *(u64 *)(c->gbuf + {layout.g_startpc});
    r->waitsince = *(u64 *)(c->gbuf + {layout.g_waitsince});
    r->waitreason = *(u8 *)(c->gbuf + {layout.g_waitreason});
    r->labels = *(u64 *)(c->gbuf + {layout.g_labels});
    r->parent_goid = {parent_goid};
    r->stack_lo = *(u64 *)(c->gbuf + {layout.g_stack_lo});
    r->stack_hi = *(u64 *)(c->gbuf + {layout.g_stack_hi});
    r->procid = 0;
    r->source = {SOURCE_SCHED};
    r->n = 0;
    /* GOROUTINE_LOCKED when g.lockedm != 0, without a branch: the top bit of x | -x
       is set for any non-zero x below 2^63 (an address) */
    u64 lockedm = *(u64 *)(c->gbuf + {layout.g_lockedm});
    r->flags = (u32)(((lockedm | -lockedm) >> 63) * {GOROUTINE_LOCKED});
    r->depth = 0;
    r->interrupted_depth = 0;
    r->interrupted_sp_word = 0;
    c->lo = r->stack_lo;
    c->hi = r->stack_hi;
    c->depth = 0;
    c->in_g = 1;

    u64 pc0 = *(u64 *)(c->gbuf + {layout.g_sched_pc});
    u64 bp = *(u64 *)(c->gbuf + {layout.g_sched_bp});
    u64 sp = *(u64 *)(c->gbuf + {layout.g_sched_sp});
    u64 m = *(u64 *)(c->gbuf + {layout.g_m});
    /* Only a running goroutine is unwound from its thread's registers. One in a system
       call is unwound from g.syscallpc/sp/bp, as the runtime's traceback does (its
       thread, in the kernel, is deeper in the same stack: frames Go does not print). */
    u64 tpc = 0, tbp = 0, tsp = 0;
    c->skip_below = 0;
    if ((status == {status_running} || status == {status_syscall}) && m != 0) {{
        u64 procid = 0;
        bpf_probe_read_user(&procid, sizeof(procid), (void *)(m + {layout.m_procid}));
        r->procid = procid;
        u32 tid = procid;
        struct thread_regs *t = threads.lookup(&tid);
        if (t && t->sp >= c->lo && t->sp < c->hi) {{
            tpc = t->pc;
            tbp = t->bp;
            tsp = t->sp;
        }}
    }}
    if (status == {status_running} && tsp != 0) {{
        r->source = {SOURCE_THREAD};
        pc0 = tpc;
        bp = tbp;
        sp = tsp;
    }}
    if (status == {status_syscall}) {{
        r->source = {SOURCE_SYSCALL};
        pc0 = *(u64 *)(c->gbuf + {layout.g_syscallpc});
        sp = *(u64 *)(c->gbuf + {layout.g_syscallsp});
        bp = {syscallbp};
        /* Before Go 1.23 there is no g.syscallbp: the thread's chain passes through the
           frame of syscallpc's function, the first record at or above syscallsp. */
        if ({0 if layout.g_syscallbp is not None else 1} && tsp != 0 && tsp <= sp) {{
            bp = tbp;
            c->skip_below = sp;
        }}
    }}
    /* Copy the top of the stack: the frame pointers of a parked goroutine usually
       all lie within it, which saves a read per frame (step_frame copies more). */
    c->win_base = sp;
    c->win_len = 0;
    if (sp >= c->lo && sp < c->hi) {{
        u64 len = c->hi - sp;
        /* a running goroutine's copy also goes out whole with its registers */
        u64 most = r->source == {SOURCE_THREAD} ? HEAD : WIN0;
        if (len > most)
            len = most;
        if (bpf_probe_read_user(c->win, len & (2 * WIN - 1), (void *)sp) == 0)
            c->win_len = len;
    }}
    if (r->labels) {{
        u32 qi = c->lq_base + c->lq_len;
        struct label_job *job = label_jobs.lookup(&qi);
        if (job && c->lq_len < QUEUE_SHARE) {{
            job->goid = r->goid;
            job->ptr = r->labels;
            c->lq_len++;
        }}
    }}
    c->goroutines++;
    c->bp = bp;
    push(c, pc0);
    if (r->source == {SOURCE_THREAD}) {{
        struct head_rec *hr = &c->head;
        hr->kind = {REC_HEAD};
        hr->goid = r->goid;
        hr->sp = sp;
        hr->bp = bp;
        u32 hl = c->win_len < HEAD ? c->win_len : HEAD;
        hr->len = hl;
        __builtin_memcpy(hr->data, c->win, HEAD);
        if (records.ringbuf_output(hr, sizeof(*hr), BPF_RB_NO_WAKEUP))
            c->lost++;
    }}
}}

static __always_inline void step_frame(struct cursor *c) {{
    u64 bp = c->bp;
    u64 next_bp = 0, ret = 0;
    /* In runtime.asyncPreempt's frame record the return address is the pc it
       interrupted, and the word just above the record is at the SP there: a frameless
       function's return address, which the chain skips (the tracer mends it in after
       resuming, capture/running.py). Kept in the record: a second push per step would
       cost the verifier too much. */
    u32 size = 16;
    if (c->pc - PREEMPT_LO < PREEMPT_HI - PREEMPT_LO && bp + 24 <= c->hi)
        size = 24;
    if (c->depth >= MAX_DEPTH) {{
        c->r.flags |= {FRAMES_TRUNCATED};
        goto end;
    }}
    if (bp == 0)
        goto end;
    if (bp < c->lo || bp + 16 > c->hi) {{
        c->r.flags |= {FRAMES_BAD_FP};
        goto end;
    }}
    if (bp < c->win_base || bp - c->win_base + size > c->win_len) {{
        /* The frame lies past the copy: copy the stack again from this frame on. */
        u64 len = c->hi - bp;
        if (len > WIN)
            len = WIN;
        if (bpf_probe_read_user(c->win, len & (2 * WIN - 1), (void *)bp)) {{
            c->r.flags |= {FRAMES_BAD_FP};
            goto end;
        }}
        c->win_base = bp;
        c->win_len = len;
    }}
    /* Read back from the cursor, so that both ways here leave the verifier one state. */
    u32 o = (bp - c->win_base) & (WIN - 1);
    next_bp = *(u64 *)(c->win + o);
    ret = *(u64 *)(c->win + o + 8);
    if (bp < c->skip_below) {{
        /* below the frame the walk starts from: not pushed */
        if (next_bp <= bp) {{
            c->r.flags |= {FRAMES_BAD_FP};
            goto end;
        }}
        c->bp = next_bp;
        return;
    }}
    if (ret == 0)
        goto end;
    if (size == 24) {{
        c->r.interrupted_depth = c->depth;
        c->r.interrupted_sp_word = *(u64 *)(c->win + o + 16);
    }}
    push(c, ret);{value_probe.queue_in_walk() if values is not None else ""}
    if (next_bp != 0 && next_bp <= bp) {{
        c->r.flags |= {FRAMES_BAD_FP};
        goto end;
    }}
    c->bp = next_bp;
    return;
end:
    flush(c, 1);
    c->in_g = 0;
}}

/* This worker's share of allgs, read here rather than by the tracer: the process is
   stopped, so every worker sees the same slice. Shares start at multiples of GBATCH. */
/* Marks the goroutine each M runs (m.curg): running or in a syscall now, it may have
   started to run before the tracker was on. 0 if the list was longer than MAX_MS. */
static __always_inline int mark_current(struct cursor *c, struct tracker *t) {{
    u64 m = 0;
    if (bpf_probe_read_user(&m, sizeof(m), (void *)c->allm))
        return 0;
    for (int i = 0; i < MAX_MS; i++) {{
        if (m == 0)
            return 1;
        u64 curg = 0;
        if (bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + {layout.m_curg})) == 0 && curg)
            mark(t, curg);
        if (bpf_probe_read_user(&m, sizeof(m), (void *)(m + {layout.m_alllink})))
            return 0;
    }}
    return 0;
}}

static __always_inline void take_share(struct cursor *c) {{
    u64 hdr[2] = {{0, 0}};
    c->gi = 0;
    c->glen = 0;
    if (c->mode == WALK_EARLY) {{
        /* The process runs: allgs may be growing. allglen first, then allgptr, which
           the runtime stores before allglen: the array then has allglen entries. */
        if (bpf_probe_read_user(&hdr[1], 8, (void *)c->allglen) ||
            bpf_probe_read_user(&hdr[0], 8, (void *)c->allgptr))
            return;
        c->gptr = hdr[0];
        c->glen = hdr[1];
        c->pre_len = hdr[1];
        return;
    }}
    if (c->mode == WALK_CHANGED && c->slot > 0)
        return;   /* the first worker walks what changed; the others read values only */
    if (bpf_probe_read_user(hdr, sizeof(hdr), (void *)c->allgs))
        return;
    if (c->mode == WALK_CHANGED) {{
        u32 zero = 0;
        struct tracker *t = tracker.lookup(&zero);
        /* Goroutines born since the tracker went on are marked: their casgstatus
           from dead to runnable. So the marks are all there is to walk. */
        u64 *first = marks.lookup(&zero);
        if (t && first && mark_current(c, t) && !t->overflow) {{
            c->gptr = (u64)first;
            c->nmarked = t->count;
            c->glen = t->count;
            return;
        }}
        c->mode = WALK_PAUSED;   /* a mark may be missing: trust nothing, walk all */
        c->fell_back = 1;
        c->nworkers = 1;
    }}
    u64 n = c->nworkers ? c->nworkers : 1;
    u64 short_by = n > 1 ? c->last_short : 0;
    u64 share = (hdr[1] + short_by + n - 1) / n;
    share = (share + GBATCH - 1) / GBATCH * GBATCH;
    u64 lo = c->slot * share;
    u64 hi = c->slot + 1 == n ? hdr[1] : lo + share;
    c->gptr = hdr[0];
    c->gi = lo < hdr[1] ? lo : hdr[1];
    c->glen = hi < hdr[1] ? hi : hdr[1];
}}

int walk(struct pt_regs *ctx) {{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    u32 *w = worker_of.lookup(&tid);
    if (!w)
        return 0;
    u32 slot = *w;
    struct cursor *c = cursors.lookup(&slot);
    if (!c)
        return 0;
    c->hits++;   /* the tracer's sign that the probe fired on this thread */
    if (!c->armed || c->done || (id >> 32) != c->tgid)
        return 0;
    /* An early walk (the process runs) works a budget of invocations per trigger.
       Without branches but the returns: a fork here would have the verifier check the
       walk loop below twice, past its limit. */
    u32 zero = 0;
    u64 *budget = early_budget.lookup(&zero);
    if (!budget)
        return 0;
    u64 early = c->mode & WALK_EARLY;   /* 1 in an early walk, else 0 */
    if ((*budget | (early ^ 1)) == 0)
        return 0;
    *budget -= early;
    if (c->walked) {{
        {finish}
        return 0;
    }}
    if (c->invocations++ == 0) {{
        c->t_first = bpf_ktime_get_ns();
        c->cpu = bpf_get_smp_processor_id();
        take_share(c);
        /* The walk goes on in the next invocation: the verifier then checks the loop
           below once, not once per way out of take_share. */
        chain.call(ctx, 0);
        c->chains_ended++;
        return 0;
    }}
    for (int i = 0; i < STEPS; i++) {{{value_probe.drain_in_walk() if values is not None else ""}
        if (c->in_g) {{
            step_frame(c);
        }} else if (c->gi < c->glen) {{
            start_goroutine(c);
        }} else {{
            c->walked = 1;
            flush_batch(c);
            {finish}
            return 0;
        }}
    }}
    chain.call(ctx, 0);
    c->chains_ended++;   /* reached only when this copy's tail-call budget is spent */
    return 0;
}}
{labels_program(layout, after_labels)}
{value_probe.program() if values is not None else ""}
"""


def labels_program(layout: RuntimeLayout, after: str) -> str:
    """The second program: reads the pprof labels of the goroutines queued by the walk.

    Apart from the stack walk so that each program stays within the verifier's bounds."""
    lab = layout.labels
    if lab is None:
        return ""
    if lab.kind == "slice":
        locate = f"""
    u64 hdr[2] = {{0, 0}};
    if (bpf_probe_read_user(hdr, sizeof(hdr), (void *)(job->ptr + {lab.list_offset})))
        return;
    L->total = hdr[1];
    for (int i = 0; i < MAX_LABELS; i++) {{
        if (i >= hdr[1])
            break;
        u64 kv[4] = {{0, 0, 0, 0}};
        u64 at = hdr[0] + i * {lab.label_size};
        if (bpf_probe_read_user(&kv[0], 16, (void *)(at + {lab.key_offset})) ||
            bpf_probe_read_user(&kv[2], 16, (void *)(at + {lab.value_offset})))
            break;
        copy_label(L, i, kv);
    }}"""
    else:
        locate = f"""
    u64 hmap = 0;
    if (bpf_probe_read_user(&hmap, sizeof(hmap), (void *)job->ptr) || hmap == 0)
        return;
    u64 count = 0, buckets = 0;
    u8 b = 0;
    bpf_probe_read_user(&count, sizeof(count), (void *)(hmap + {lab.hmap_count}));
    bpf_probe_read_user(&b, sizeof(b), (void *)(hmap + {lab.hmap_b}));
    bpf_probe_read_user(&buckets, sizeof(buckets), (void *)(hmap + {lab.hmap_buckets}));
    L->total = count;
    if (b != 0 || buckets == 0)
        return;   /* more than one bucket: the tracer says labels were not read */
    u8 tophash[8] = {{0}};
    if (bpf_probe_read_user(tophash, sizeof(tophash), (void *)buckets))
        return;
    u32 n = 0;
    for (int i = 0; i < 8; i++) {{
        if (tophash[i] < 5)   /* empty or evacuated slot */
            continue;
        u64 kv[4] = {{0, 0, 0, 0}};
        if (bpf_probe_read_user(&kv[0], 16, (void *)(buckets + {lab.bucket_keys} + i * 16)) ||
            bpf_probe_read_user(&kv[2], 16, (void *)(buckets + {lab.bucket_values} + i * 16)))
            break;
        copy_label(L, n, kv);
        n++;
    }}"""
    return f"""
static __always_inline void copy_label(struct labels_rec *L, u32 i, u64 *kv) {{
    if (i >= MAX_LABELS)
        return;
    struct label *e = &L->e[i & (MAX_LABELS - 1)];
    u64 kl = kv[1] < LABEL_BYTES ? kv[1] : LABEL_BYTES;
    u64 vl = kv[3] < LABEL_BYTES ? kv[3] : LABEL_BYTES;
    e->klen = kv[1];
    e->vlen = kv[3];
    if (kl)
        bpf_probe_read_user(e->key, kl & (LABEL_BYTES * 2 - 1), (void *)kv[0]);
    if (vl)
        bpf_probe_read_user(e->value, vl & (LABEL_BYTES * 2 - 1), (void *)kv[2]);
    L->n = i + 1;
}}

static __always_inline void read_labels(struct label_job *job, struct labels_rec *L) {{
    L->kind = {REC_LABELS};
    L->goid = job->goid;
    L->n = 0;
    L->total = 0;
{locate}
}}

int labels(struct pt_regs *ctx) {{
    u32 zero = 0;
    u32 tid = bpf_get_current_pid_tgid();
    u32 *w = worker_of.lookup(&tid);
    if (!w)
        return 0;
    u32 slot = *w;
    struct cursor *c = cursors.lookup(&slot);
    struct labels_rec *L = label_buf.lookup(&zero);
    if (!c || !L || !c->armed || c->done)
        return 0;
    c->invocations++;
    for (int i = 0; i < 8; i++) {{
        u32 qi = c->lq_base + c->lq_next;
        if (c->lq_next >= c->lq_len) {{
            {after}
            return 0;
        }}
        c->lq_next++;
        struct label_job *job = label_jobs.lookup(&qi);
        if (!job)
            continue;
        read_labels(job, L);
        if (records.ringbuf_output(L, sizeof(*L), BPF_RB_NO_WAKEUP))
            c->lost++;
    }}
    chain.call(ctx, 1);
    c->chains_ended++;
    return 0;
}}
"""
