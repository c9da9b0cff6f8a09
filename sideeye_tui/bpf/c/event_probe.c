// The dynamic-events probe: one program on every site of every probe of a trace.
//
// Parameters come as #defines from a header the loader prepends (event_probe.py):
// MAX_SITES, MAX_PROBES, MAX_FRAMES (a power of two), INFLIGHT_MAX, RINGBUF_PAGES,
// BUCKETS. Everything that depends on the target (which probe a pc belongs to, the
// offsets of g.goid and g.stack.hi for that binary's Go version) is in the `sites`
// map, keyed by (tgid, pc), so one program serves processes of several Go versions.
//
// The record layout is `struct event` below, mirrored once in Python by a
// ctypes.Structure (event_probe.Event) and read by field name; a test checks the two
// against BCC's own reading of this struct.

#include <uapi/linux/ptrace.h>

#define KIND_ENTRY 0
#define KIND_RETURN 1
#define KIND_LINE 2

struct site_key {
    u32 tgid;
    u32 pad;
    u64 pc;
};

// One probe at a pc; several probes may share one (a function's entry and a line).
struct site_probe {
    u32 probe;      // index into the per-probe counters
    u8 kind;        // KIND_*
    u8 inlined;     // an inlined copy: no pairing
    u16 pad;
};

struct site {
    u32 sp_delta;   // bytes pushed since the function's entry: CFA = SP + sp_delta + 8
    u32 goid_off;   // offsetof(g, goid), this binary's
    u32 stack_hi_off;  // offsetof(g, stack.hi)
    u32 n;          // probes[0..n) are used
    struct site_probe probes[SITE_PROBES];
};

// Per probe, per CPU: read and diffed once a second by the tracer.
struct counters {
    u64 hits;       // entries (function probes) or line hits
    u64 returns;
    u64 kept;       // records written to the ring buffer
    u64 dropped;    // records lost: ring buffer full, or over the cap
    u64 throttled;  // of those, over --max-events-per-s
    u64 unpaired;   // returns with no entry in flight (started before the trace, ...)
    u64 tracked;    // entries put in flight (the LRU may evict the oldest when full)
    u64 paired;     // returns that found their entry
};

struct inflight_key {
    u64 goid;
    u64 depth;      // stack.hi - CFA: survives stack copies and tells recursion levels apart
    u32 tgid;
    u32 probe;
};

struct inflight {
    u64 start_ns;
    u64 entry_id;
};

struct budget {
    u64 window_ns;  // start of the current one-second window
    u64 used;       // records kept in it
    u64 cap;        // 0: no cap
};

struct event {
    u64 event_id;   // (per-CPU sequence << 8) | cpu: unique in a trace
    u64 entry_id;   // returns: the paired entry's event_id, else 0
    u64 ts_ns;      // CLOCK_MONOTONIC
    u64 duration_ns;  // returns paired with an entry, else 0
    u64 goid;
    u64 pc;
    u32 tgid;
    u32 tid;
    u32 probe;
    u8 kind;
    u8 inlined;
    u8 paired;
    u8 truncated;   // the backtrace went deeper than MAX_FRAMES
    u32 nframes;
    u32 pad;
    u64 pcs[MAX_FRAMES];  // pcs[0] = the probed pc, then return addresses
};

BPF_HASH(sites, struct site_key, struct site, MAX_SITES);
BPF_PERCPU_ARRAY(counts, struct counters, MAX_PROBES);
BPF_PERCPU_ARRAY(durations, u64, MAX_PROBES * BUCKETS);
BPF_PERCPU_ARRAY(seqs, u64, 1);
BPF_TABLE("lru_hash", struct inflight_key, struct inflight, inflight, INFLIGHT_MAX);
BPF_ARRAY(budgets, struct budget, 1);
BPF_ARRAY(layout_check, struct event, 1);  // for the layout test: BCC's view of the record
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);

static __always_inline u32 log2_u64(u64 v) {
    u32 r = 0;
    if (v >> 32) { v >>= 32; r += 32; }
    if (v >> 16) { v >>= 16; r += 16; }
    if (v >> 8) { v >>= 8; r += 8; }
    if (v >> 4) { v >>= 4; r += 4; }
    if (v >> 2) { v >>= 2; r += 2; }
    if (v >> 1) { r += 1; }
    return r;
}

// Whether one more record fits under the cap of this second (racy across CPUs by a
// few records, which is what a cap needs).
static __always_inline int within_budget(u64 now) {
    int zero = 0;
    struct budget *b = budgets.lookup(&zero);
    if (!b || b->cap == 0)
        return 1;
    if (now - b->window_ns >= 1000000000ULL) {
        b->window_ns = now;
        b->used = 0;
    }
    u64 used = __sync_fetch_and_add(&b->used, 1);
    return used < b->cap;
}

// One probe's work at a hit: counters, pairing, and a record with the backtrace.
static __always_inline void hit(struct pt_regs *ctx, struct site *s, struct site_probe *sp,
                                u32 tgid, u64 pc, u64 goid, u64 depth, u64 now) {
    u32 probe = sp->probe;
    struct counters *c = counts.lookup(&probe);
    if (!c)
        return;
    int zero = 0;
    u64 *seq = seqs.lookup(&zero);
    if (!seq)
        return;
    u64 id = ((*seq)++ << 8) | (bpf_get_smp_processor_id() & 0xff);
    id += 256;  // never 0: 0 means "no entry"

    u8 kind = sp->kind;
    u64 duration = 0, entry_id = 0;
    u8 paired = 0;
    struct inflight_key ik = {};
    ik.goid = goid;
    ik.depth = depth;
    ik.tgid = tgid;
    ik.probe = probe;
    if (kind == KIND_RETURN) {
        c->returns++;
        struct inflight *in = inflight.lookup(&ik);
        if (in) {
            duration = now - in->start_ns;
            entry_id = in->entry_id;
            paired = 1;
            c->paired++;
            inflight.delete(&ik);
            u32 slot = probe * BUCKETS + log2_u64(duration | 1);
            u64 *n = durations.lookup(&slot);
            if (n)
                (*n)++;
        } else {
            c->unpaired++;
        }
    } else {
        c->hits++;
        if (kind == KIND_ENTRY && !sp->inlined) {
            struct inflight v = {now, id};
            inflight.update(&ik, &v);
            c->tracked++;
        }
    }

    if (!within_budget(now)) {
        c->dropped++;
        c->throttled++;
        return;
    }
    struct event *e = events.ringbuf_reserve(sizeof(struct event));
    if (!e) {
        c->dropped++;
        return;
    }
    e->event_id = id;
    e->entry_id = entry_id;
    e->ts_ns = now;
    e->duration_ns = duration;
    e->goid = goid;
    e->pc = pc;
    e->tgid = tgid;
    e->tid = (u32)bpf_get_current_pid_tgid();
    e->probe = probe;
    e->kind = kind;
    e->inlined = sp->inlined;
    e->paired = paired;
    e->truncated = 0;
    e->pad = 0;

    // The backtrace by frame pointers. At a site where no frame is set up yet or
    // any more (SP delta 0: a frameless function, or a RET after the epilogue), the
    // return address is at SP and BP is still the caller's.
    u32 n = 1;
    e->pcs[0] = pc;
    u64 bp = ctx->bp;
    if (s->sp_delta == 0) {
        u64 ret = 0;
        bpf_probe_read_user(&ret, sizeof(ret), (void *)ctx->sp);
        e->pcs[1] = ret;
        n = 2;
    }
    for (int i = 0; i < MAX_FRAMES; i++) {
        if (n >= MAX_FRAMES || bp == 0)
            break;
        u64 pair[2] = {0, 0};
        if (bpf_probe_read_user(pair, sizeof(pair), (void *)bp))
            break;
        if (pair[1] == 0)
            break;
        e->pcs[n & (MAX_FRAMES - 1)] = pair[1];
        n++;
        bp = pair[0];
    }
    if (n >= MAX_FRAMES && bp != 0)
        e->truncated = 1;
    e->nframes = n;
    events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    c->kept++;
}

int on_site(struct pt_regs *ctx) {
    struct site_key key = {};
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    key.tgid = tgid;
    key.pc = PT_REGS_IP(ctx);
    struct site *s = sites.lookup(&key);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    u64 g = ctx->r14;
    u64 goid = 0, stack_hi = 0;
    bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + s->goid_off));
    bpf_probe_read_user(&stack_hi, sizeof(stack_hi), (void *)(g + s->stack_hi_off));
    u64 depth = stack_hi - (ctx->sp + s->sp_delta + 8);
    for (int i = 0; i < SITE_PROBES; i++) {
        if (i >= s->n)
            break;
        hit(ctx, s, &s->probes[i], tgid, key.pc, goid, depth, now);
    }
    return 0;
}
