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
#define FLAG_PAIRED_ONLY 1  // a return kept only when paired (its probe has a condition)

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
    u8 nexpr;       // expressions captured here: vexprs[first_expr, first_expr + nexpr)
    u8 flags;       // FLAG_*
    u32 first_expr;
};

struct site {
    u32 sp_delta;   // bytes pushed since the function's entry: CFA = SP + sp_delta + 8
    u32 goid_off;   // offsetof(g, goid), this binary's
    u32 stack_hi_off;  // offsetof(g, stack.hi)
    u32 n;          // probes[0..n) are used
    u32 tag;        // the target's index: vrtypes keys are runtime type ^ (tag << 56)
    u32 cond_probe; // probes[cond_probe] has a `when` condition: vconds[cond_first, +ncond)
    u32 cond_first;
    u32 ncond;      // 0: no condition at this pc
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
    u64 replaced;   // entries put where an entry that never returned was (panic, Goexit)
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


// -- values: the structs (mirrored in event_probe.py) --------------------------------

#define PROG_VALUES 0
#define PROG_CHASE 1
#define VREC_ROOT 1
#define VREC_ITEM 2
#define VREC_SMALL 3
#define PIECE_REG 1
#define PIECE_STACK 2
#define ROOT_OK 0
#define ROOT_NIL 1
#define ROOT_RANGE 2
#define ROOT_UNREADABLE 3
#define ROOT_UNAVAILABLE 4
#define ROOT_ASSEMBLED 5
#define OP_ADD 1
#define OP_DEREF 2
#define OP_INDEX 3
#define SLOT_PTR 1
#define SLOT_STRING 2
#define SLOT_SLICE 3
#define SLOT_EFACE 4
#define SLOT_IFACE 5
#define SLOT_SWISS_DIR 6
#define SLOT_GROUPS 7
#define SLOT_BUCKETS 8
#define T_RAW 1
#define ITAB_TYPE_OFFSET 8

struct vpiece {
    u16 kind;       // PIECE_REG or PIECE_STACK
    u16 reg;        // DWARF register number (0 ax, 1 dx, 2 cx, 3 bx, 4 si, 5 di, 8-15 r8-r15)
    s32 off;        // stack: offset from the CFA
};

struct vop {
    u32 kind;       // OP_*
    u32 arg;
    u32 elem;
    u32 pad;
};

struct vexpr {
    u32 npieces;
    u32 nops;
    u32 size;       // bytes of the value
    u32 ctype;      // its chase type
    u32 unavailable;  // no location at this pc: the reason is on the Python side
    u32 small;      // no slots and at most SMALL bytes: sent with the others (VREC_SMALL)
    struct vpiece pieces[MAX_PIECES];
    struct vop ops[MAX_OPS];
};

struct vslot {
    u32 off;
    u32 kind;
    u32 target;
    u32 aux;
    u32 cap;
    u32 target2;
};

struct vctype {
    u32 size;
    u32 nslots;
    struct vslot slots[MAX_SLOTS];
};

struct vitem {
    u64 addr;
    u32 ctype;
    u32 count;
    u32 depth;
    u32 pad;
};

struct vsmallroot {
    u32 index;
    u32 status;
    u64 addr;
    u32 len;
    u32 pad;
    u8 data[SMALL];
};

// The small roots of one event in one record: one ring-buffer record (and one callback
// in the tracer) for all of an event's integers rather than one each.
struct vsmall {
    u32 kind;       // VREC_SMALL
    u32 n;
    u64 event_id;
    struct vsmallroot r[MAX_EXPRS];
};

struct vjob {
    u64 event_id;
    u64 cfa;
    u64 regs[16];
    u32 first;
    u32 n;
    u32 head;
    u32 tail;
    u32 budget;
    u32 calls;
    u32 queue_full;
    u32 lost;       // a record did not fit in the ring buffer: stop
    u32 cur_len;    // bytes in cur
    u32 scan_left;  // the scan of cur: steps left, its type, element base and cursor
    u32 scan_ctype;
    u32 scan_base;
    u32 scan_e;
    u32 scan_s;
    u32 scan_depth;
    u32 ei;         // the next expression whose root `values` resolves
    u32 tag;        // the site's
    u32 nsmall;     // small roots gathered in `small`
    struct vsmallroot small[MAX_EXPRS];
    struct vitem q[QUEUE];
    u8 cur[VALUE_MAX];  // the item being scanned
};

struct vrec {
    u32 kind;       // VREC_ROOT or VREC_ITEM
    u32 index;      // roots: the expression's index at its probe
    u64 event_id;
    u64 addr;
    u32 status;     // ROOT_*
    u32 len;        // bytes of data
    u8 data[VALUE_MAX];
};

#define COND_EQ 0
#define COND_NE 1
#define COND_LT 2
#define COND_LE 3
#define COND_GT 4
#define COND_GE 5
#define COND_INT 1
#define COND_UINT 2
#define COND_STRING 3

struct vcond {
    struct vexpr x; // the compared expression's root (a scalar or a string header)
    u32 op;         // COND_EQ ...
    u32 kind;       // COND_INT, COND_UINT (bools too) or COND_STRING
    u32 group;      // terms of one group are joined by &&, groups by ||
    u32 len;        // string literal's length
    s64 ival;       // integer literal
    u8 sval[COND_STR];
};

BPF_ARRAY(vexprs, struct vexpr, MAX_VEXPRS);
BPF_ARRAY(vconds, struct vcond, MAX_VCONDS);
BPF_ARRAY(vctypes, struct vctype, MAX_CTYPES);
BPF_HASH(vrtypes, u64, u32, MAX_RTYPES);
BPF_PERCPU_ARRAY(vjobs, struct vjob, 1);
BPF_PROG_ARRAY(progs, 2);
BPF_RINGBUF_OUTPUT(vals, VALS_PAGES);
BPF_ARRAY(vrec_check, struct vrec, 1);  // for the layout test
BPF_ARRAY(vsmall_check, struct vsmall, 1);

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
static __always_inline u64 hit(struct pt_regs *ctx, struct site *s, struct site_probe *sp,
                                u32 tgid, u64 pc, u64 goid, u64 depth, u64 now, int filtered) {
    u32 probe = sp->probe;
    struct counters *c = counts.lookup(&probe);
    if (!c)
        return 0;
    int zero = 0;
    u64 *seq = seqs.lookup(&zero);
    if (!seq)
        return 0;
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
            if (sp->flags & FLAG_PAIRED_ONLY)
                return 0;  // its entry did not meet the condition
        }
    } else {
        c->hits++;
        if (filtered)
            return 0;  // the `when` condition does not hold: counted, not recorded
        if (kind == KIND_ENTRY && !sp->inlined) {
            struct inflight v = {now, id};
            if (inflight.lookup(&ik))
                c->replaced++;
            inflight.update(&ik, &v);
            c->tracked++;
        }
    }

    if (!within_budget(now)) {
        c->dropped++;
        c->throttled++;
        return 0;
    }
    struct event *e = events.ringbuf_reserve(sizeof(struct event));
    if (!e) {
        c->dropped++;
        return 0;
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
    return id;
}

static __always_inline void fill_regs(struct vjob *job, struct pt_regs *ctx, struct site *s) {
    job->cfa = ctx->sp + s->sp_delta + 8;
    job->regs[0] = ctx->ax;
    job->regs[1] = ctx->dx;
    job->regs[2] = ctx->cx;
    job->regs[3] = ctx->bx;
    job->regs[4] = ctx->si;
    job->regs[5] = ctx->di;
    job->regs[6] = ctx->bp;
    job->regs[7] = ctx->sp;
    job->regs[8] = ctx->r8;
    job->regs[9] = ctx->r9;
    job->regs[10] = ctx->r10;
    job->regs[11] = ctx->r11;
    job->regs[12] = ctx->r12;
    job->regs[13] = ctx->r13;
    job->regs[14] = ctx->r14;
    job->regs[15] = ctx->r15;
}

// Resolves an expression's root: its first bytes from registers or stack pieces, then
// the path operations. Leaves either an address (inbuf 0) or the value assembled in
// buf at byte offset off (inbuf 1). Returns a ROOT_* status.
static __always_inline u32 resolve_root(struct vexpr *x, struct vjob *job, u64 *buf,
                                        u64 *addr_out, u32 *off_out, int *inbuf_out) {
    u64 addr = 0;
    u32 off = 0;
    int inbuf = 1;
    u32 status = x->unavailable ? ROOT_UNAVAILABLE : ROOT_OK;
    for (int p = 0; p < MAX_PIECES; p++) {
        buf[p] = 0;
        if (p >= x->npieces || status != ROOT_OK)
            continue;
        if (x->pieces[p].kind == PIECE_REG) {
            buf[p] = job->regs[x->pieces[p].reg & 15];
        } else {
            u64 at = job->cfa + (s64)x->pieces[p].off;
            if (x->npieces == 1) {
                addr = at;
                inbuf = 0;
            } else {
                bpf_probe_read_user(&buf[p], 8, (void *)at);
            }
        }
    }
    for (int k = 0; k < MAX_OPS; k++) {
        if (k >= x->nops || status != ROOT_OK)
            break;
        struct vop *op = &x->ops[k];
        if (op->kind == OP_ADD) {
            if (inbuf)
                off += op->arg;
            else
                addr += op->arg;
        } else if (op->kind == OP_DEREF) {
            if (inbuf) {
                addr = buf[(off / 8) & (MAX_PIECES - 1)];
                inbuf = 0;
            } else {
                u64 next = 0;
                if (bpf_probe_read_user(&next, 8, (void *)addr))
                    status = ROOT_UNREADABLE;
                else
                    addr = next;
            }
            if (status == ROOT_OK && addr == 0)
                status = ROOT_NIL;
        } else if (op->kind == OP_INDEX) {
            u64 pl[2] = {0, 0};
            if (inbuf) {
                pl[0] = buf[(off / 8) & (MAX_PIECES - 1)];
                pl[1] = buf[(off / 8 + 1) & (MAX_PIECES - 1)];
                inbuf = 0;
            } else if (bpf_probe_read_user(pl, 16, (void *)addr)) {
                status = ROOT_UNREADABLE;
            }
            if (status == ROOT_OK && op->arg >= pl[1]) {
                status = ROOT_RANGE;
                addr = pl[1];
            } else if (status == ROOT_OK) {
                addr = pl[0] + (u64)op->arg * op->elem;
            }
        }
    }
    *addr_out = addr;
    *off_out = off;
    *inbuf_out = inbuf;
    return status;
}

// A `when` condition: terms in groups; a group holds when all its terms hold, the
// condition when one group does. A term compares a scalar or a string with a literal.
static __always_inline int eval_cond(struct site *s, struct vjob *job) {
    int pass = 0, group_ok = 1;
    u32 group = 0;
    for (int t = 0; t < MAX_TERMS; t++) {
        if (t >= s->ncond)
            break;
        u32 idx = s->cond_first + t;
        struct vcond *c = vconds.lookup(&idx);
        if (!c)
            return 0;
        if (c->group != group) {
            if (group_ok)
                pass = 1;
            group = c->group;
            group_ok = 1;
        }
        u64 buf[MAX_PIECES];
        u64 addr = 0;
        u32 off = 0;
        int inbuf = 1;
        u32 status = resolve_root(&c->x, job, buf, &addr, &off, &inbuf);
        int ok = 0;
        if (status == ROOT_OK) {
            u64 w[2] = {0, 0};
            if (inbuf) {
                w[0] = buf[(off / 8) & (MAX_PIECES - 1)];
                w[1] = buf[(off / 8 + 1) & (MAX_PIECES - 1)];
            } else {
                bpf_probe_read_user(w, c->x.size > 8 ? 16 : 8, (void *)addr);
            }
            if (c->kind == COND_STRING) {
                int eq = w[1] == c->len;
                if (eq && c->len > 0) {
                    u8 got[COND_STR];
                    __builtin_memset(got, 0, sizeof(got));
                    bpf_probe_read_user(got, c->len & (COND_STR - 1), (void *)w[0]);
                    for (int i = 0; i < COND_STR; i++) {
                        if (i >= c->len)
                            break;
                        if (got[i] != c->sval[i]) {
                            eq = 0;
                            break;
                        }
                    }
                }
                ok = c->op == COND_NE ? !eq : eq;
            } else {
                u32 size = c->x.size;
                u64 v = w[0];
                s64 sv;
                if (size < 8) {
                    u32 shift = (8 - (size & 7)) * 8;
                    v = (v << shift) >> shift;
                    sv = ((s64)(w[0] << shift)) >> shift;
                } else {
                    sv = (s64)v;
                }
                s64 lit = c->ival;
                if (c->kind == COND_INT) {
                    ok = c->op == COND_EQ ? sv == lit : c->op == COND_NE ? sv != lit :
                         c->op == COND_LT ? sv < lit : c->op == COND_LE ? sv <= lit :
                         c->op == COND_GT ? sv > lit : sv >= lit;
                } else {
                    u64 ul = (u64)lit;
                    ok = c->op == COND_EQ ? v == ul : c->op == COND_NE ? v != ul :
                         c->op == COND_LT ? v < ul : c->op == COND_LE ? v <= ul :
                         c->op == COND_GT ? v > ul : v >= ul;
                }
            }
        }
        if (!ok)
            group_ok = 0;
    }
    if (group_ok)
        pass = 1;
    return pass;
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
    int zero = 0;
    struct vjob *job = vjobs.lookup(&zero);
    if (!job)
        return 0;
    u32 skip = SITE_PROBES;  // the probe whose condition does not hold
    if (s->ncond) {
        fill_regs(job, ctx, s);
        if (!eval_cond(s, job))
            skip = s->cond_probe;
    }
    u64 vid = 0;
    u32 vfirst = 0, vn = 0;
    for (int i = 0; i < SITE_PROBES; i++) {
        if (i >= s->n)
            break;
        u64 id = hit(ctx, s, &s->probes[i], tgid, key.pc, goid, depth, now, i == skip);
        if (id && vn == 0 && s->probes[i].nexpr) {
            vid = id;
            vfirst = s->probes[i].first_expr;
            vn = s->probes[i].nexpr;
        }
    }
    if (vn == 0)
        return 0;
    // Values: the job for the `values` program, which the tail call runs at once.
    job->event_id = vid;
    job->first = vfirst;
    job->n = vn;
    job->head = 0;
    job->tail = 0;
    job->budget = FRAME_BUDGET;
    job->calls = 0;
    job->lost = 0;
    job->queue_full = 0;
    job->scan_left = 0;
    job->ei = 0;
    job->nsmall = 0;
    job->tag = s->tag;
    if (!s->ncond)
        fill_regs(job, ctx, s);
    progs.call(ctx, PROG_VALUES);
    return 0;
}

// -- values -------------------------------------------------------------------------
//
// The same chase as values/chase.py (snapshots): each expression's root is resolved
// (registers or stack pieces, then path operations) and sent as a VREC_ROOT record;
// what its slots point to is queued and copied breadth first, within FRAME_BUDGET
// bytes and QUEUE items, each copy a VREC_ITEM record; `chase` takes ITEMS_PER_CALL
// items an invocation and tail-calls itself.

static __always_inline void push(struct vjob *job, u64 addr, u32 ctype, u64 count, u32 depth) {
    if (addr == 0 || count == 0 || depth > MAX_PTR_DEPTH)
        return;
    if (job->tail - job->head >= QUEUE) {
        job->queue_full = 1;
        return;
    }
    u32 t = job->tail & (QUEUE - 1);
    job->q[t].addr = addr;
    job->q[t].ctype = ctype;
    job->q[t].count = count > 0xffffffff ? 0xffffffff : (u32)count;
    job->q[t].depth = depth;
    job->tail++;
}

// One slot of the value in job->cur at offset o (its element at base): queue what it
// refers to. Maps are not followed here (their header is copied, not their entries).
static __always_inline void scan_slot(struct vjob *job, struct vslot *sl, u32 o, u32 base,
                                      u32 d) {
    u32 len = job->cur_len;
    if (o > VALUE_MAX - 16 || o + 8 > len)
        return;
    u64 w[2] = {0, 0};
    bpf_probe_read_kernel(w, 16, job->cur + o);
    u32 kind = sl->kind;
    u64 addr = w[0];
    u64 count = 1;
    u32 target = sl->target;
    if (kind == SLOT_STRING || kind == SLOT_SLICE) {
        count = w[1] < sl->cap ? w[1] : sl->cap;
    } else if (kind == SLOT_EFACE || kind == SLOT_IFACE) {
        u64 typ = w[0];
        if (kind == SLOT_IFACE && typ) {
            u64 t2 = 0;
            bpf_probe_read_user(&t2, 8, (void *)(typ + ITAB_TYPE_OFFSET));
            typ = t2;
        }
        addr = typ ? w[1] : 0;
        u64 key = typ ^ ((u64)job->tag << 56);
        u32 *found = vrtypes.lookup(&key);
        target = found ? *found : T_RAW;
    } else if (kind != SLOT_PTR) {
        return;
    }
    if (o + 16 > len && kind != SLOT_PTR)
        return;
    push(job, addr, target, count, d);
}

// Starts scanning `elems` elements of chase type `ctype` now in job->cur, from `base`.
static __always_inline void begin_scan(struct vjob *job, u32 ctype, u32 base, u32 elems,
                                       u32 depth) {
    struct vctype *ct = vctypes.lookup(&ctype);
    if (!ct || ct->nslots == 0)
        return;
    u64 steps = (u64)elems * ct->nslots;
    job->scan_left = steps > SCAN ? SCAN : steps;
    job->scan_ctype = ctype;
    job->scan_base = base;
    job->scan_e = 0;
    job->scan_s = 0;
    job->scan_depth = depth;
}

// One step of a scan: one slot of one element. The cursor lives in the job (map
// memory), so the verifier sees every iteration alike and prunes them.
static __always_inline void scan_step(struct vjob *job) {
    u32 ctype = job->scan_ctype;
    struct vctype *ct = vctypes.lookup(&ctype);
    if (!ct) {
        job->scan_left = 0;
        return;
    }
    u32 si = job->scan_s & (MAX_SLOTS - 1);
    struct vslot *sl = &ct->slots[si];
    u32 base = job->scan_base + job->scan_e * ct->size;
    scan_slot(job, sl, base + sl->off, base, job->scan_depth + 1);
    job->scan_left--;
    job->scan_s++;
    if (job->scan_s >= ct->nslots) {
        job->scan_s = 0;
        job->scan_e++;
    }
}

// Copies the next queued item into job->cur and sends it; starts its scan.
static __always_inline void copy_item(struct vjob *job) {
    u32 h = job->head & (QUEUE - 1);
    job->head++;
    u64 addr = job->q[h].addr;
    u32 ctype = job->q[h].ctype;
    u64 count = job->q[h].count;
    u32 depth = job->q[h].depth;
    struct vctype *ct = vctypes.lookup(&ctype);
    if (!ct || ct->size == 0)
        return;
    u64 size = ct->size;
    u64 n = size * count;
    if (n > VALUE_MAX)
        n = VALUE_MAX;
    if (n > job->budget)
        n = job->budget;
    if (size <= VALUE_MAX)
        n -= n % size;
    if (n == 0 || n > VALUE_MAX)
        return;
    struct vrec *r = vals.ringbuf_reserve(sizeof(struct vrec));
    if (!r) {
        job->lost = 1;
        return;
    }
    r->kind = VREC_ITEM;
    r->index = 0;
    r->event_id = job->event_id;
    r->addr = addr;
    r->len = 0;
    r->status = ROOT_OK;
    job->cur_len = 0;
    if (bpf_probe_read_user(job->cur, n, (void *)addr)) {
        r->status = ROOT_UNREADABLE;
        vals.ringbuf_submit(r, 0);
        return;
    }
    bpf_probe_read_kernel(r->data, n, job->cur);
    r->len = n;
    job->cur_len = n;
    vals.ringbuf_submit(r, 0);
    job->budget -= n;
    u64 elems = n / size;
    if (elems == 0)
        elems = 1;
    if (size <= VALUE_MAX && elems < count)
        push(job, addr + elems * size, ctype, count - elems, depth);
    begin_scan(job, ctype, 0, elems, depth);
}

// The root of expression job->ei: sent as a record, its slots' scan started.
static __always_inline void one_root(struct vjob *job) {
    u32 i = job->ei;
    if (i >= job->n || i >= MAX_EXPRS)
        return;
    job->ei = i + 1;
    u32 idx = job->first + i;
    struct vexpr *x = vexprs.lookup(&idx);
    if (!x)
        return;
    u64 buf[MAX_PIECES];
    u64 addr = 0;
    u32 off = 0;
    int inbuf = 1;
    u32 status = resolve_root(x, job, buf, &addr, &off, &inbuf);
    // The value into job->cur: the assembled buffer (addr = where it starts in it), or
    // its bytes in memory.
    u32 len = 0;
    u32 base = 0;
    job->cur_len = 0;
    if (status == ROOT_OK && inbuf) {
        bpf_probe_read_kernel(job->cur, 8 * MAX_PIECES, buf);
        len = 8 * MAX_PIECES;
        base = off < 8 * MAX_PIECES ? off : 0;
        addr = base;
        status = ROOT_ASSEMBLED;
    } else if (status == ROOT_OK) {
        len = x->size;
        if (len > VALUE_MAX)
            len = VALUE_MAX;
        if (len > 0 && bpf_probe_read_user(job->cur, len & (VALUE_MAX * 2 - 1), (void *)addr))
            status = ROOT_UNREADABLE;
    }
    if (status != ROOT_OK && status != ROOT_ASSEMBLED)
        len = 0;
    job->cur_len = len;
    if (x->small) {
        u32 k = job->nsmall;
        if (k < MAX_EXPRS) {
            struct vsmallroot *sr = &job->small[k & (MAX_EXPRS - 1)];
            sr->index = i;
            sr->status = status;
            sr->addr = status == ROOT_ASSEMBLED ? 0 : addr;
            sr->len = len < SMALL ? len : SMALL;
            bpf_probe_read_kernel(sr->data, SMALL, job->cur + (base & (8 * MAX_PIECES - 1)));
            job->nsmall = k + 1;
        }
        return;
    }
    struct vrec *r = vals.ringbuf_reserve(sizeof(struct vrec));
    if (r) {
        r->kind = VREC_ROOT;
        r->index = i;
        r->event_id = job->event_id;
        r->addr = addr;
        r->status = status;
        r->len = len;
        if (len > 0 && len <= VALUE_MAX)
            bpf_probe_read_kernel(r->data, len, job->cur);
        vals.ringbuf_submit(r, 0);
    } else {
        job->lost = 1;
    }
    // The root's own slots are scanned by `chase` (job->cur is reused by the next root).
    if (len > 0)
        begin_scan(job, x->ctype, base, 1, 0);
}

// Roots, several an invocation while they have nothing to scan (scalars); `chase`
// scans and copies, and comes back here for the next root.
int values(struct pt_regs *ctx) {
    int zero = 0;
    struct vjob *job = vjobs.lookup(&zero);
    if (!job)
        return 0;
    for (int k = 0; k < ROOTS_PER_CALL; k++) {
        if (job->ei >= job->n)
            break;
        one_root(job);
        if (job->scan_left)
            break;
    }
    if (job->ei >= job->n && job->nsmall) {
        struct vsmall *r = vals.ringbuf_reserve(sizeof(struct vsmall));
        if (r) {
            r->kind = VREC_SMALL;
            r->n = job->nsmall;
            r->event_id = job->event_id;
            bpf_probe_read_kernel(r->r, sizeof(r->r), job->small);
            vals.ringbuf_submit(r, 0);
        } else {
            job->lost = 1;
        }
        job->nsmall = 0;
    }
    if (job->scan_left || job->ei < job->n || (job->head < job->tail && !job->lost))
        progs.call(ctx, PROG_CHASE);
    return 0;
}

int chase(struct pt_regs *ctx) {
    int zero = 0;
    struct vjob *job = vjobs.lookup(&zero);
    if (!job)
        return 0;
    for (int k = 0; k < CHASE_STEPS; k++) {
        if (job->scan_left > 0) {
            scan_step(job);
        } else if (job->ei < job->n) {
            job->calls++;
            progs.call(ctx, PROG_VALUES);  // the next expression's root
            return 0;
        } else if (job->head < job->tail && !job->lost) {
            copy_item(job);
        } else {
            return 0;
        }
    }
    job->calls++;
    progs.call(ctx, PROG_CHASE);
    return 0;
}
