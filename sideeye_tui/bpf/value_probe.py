"""The eBPF side of variable capture: C that runs a capture plan inside the pause.

It mirrors values/chase.py step for step (same budgets, same queue order), so both
backends copy the same bytes. Two parts go into the stack probe's C text:

- while unwinding, a frame whose return pc is a call site of a spec'd function (a key
  of `vsites`; or the pc asyncPreempt interrupted, in range) is queued as a job
  (goid, depth, pc, site, CFA = the caller's frame pointer + 16). An early walk only queues
  (the values are read in the pause: the heap changes without the goroutine running);
  a full queue there counts in vq_lost, and the tracer then walks everything in the
  pause. In the pause a full queue is drained: the walk hands over to the `values`
  program, which reads every queued frame and hands back (so the capacity is no limit);
- the `values` program takes the jobs (an early job of a goroutine the pause walked
  again is read all the same, the tracer drops it: a hash lookup per frame would cost
  more than the few such frames), resolves each
  expression's address (`vroots`), copies the values and what they point to, breadth
  first, using the chase types in `vtypes` and `vrtypes` for interfaces' dynamic
  types. One step copies one item or looks at one slot; each invocation does VSTEPS
  steps and tail-calls itself. The items waiting per frame are a ring of QUEUE; one
  that does not fit is reported (ITEM_DROPPED), never silently left out.

The early walk's jobs are split between the pause's workers (vq_base, vq_len set by
the tracer); the first worker's share is last, so that its own walk queues after it.

Records (kinds 5-7) leave through the same ring buffer, batched; records.py decodes
them. A worker whose value records fill its share of the ring buffer (rb_cap) stops
before the next step; the tracer reads the ring buffer and triggers it again (see
loader.make_room), so no record is lost however many values a pause reads.
"""

from __future__ import annotations

import ctypes as ct
from dataclasses import dataclass
from typing import Any

from ..values import chase as vc
from ..values import plan as vp

REC_VALUE_JOB = 5  # a frame: job id, goid, depth, pc, site (or NO_SITE)
REC_VALUE_ROOT = 6  # an expression's address: job, index, status, address
REC_VALUE_ITEM = 7  # copied memory: job, address, status, bytes
REC_VALUE_BATCH = 8  # u32 kind, u32 length, then records of kinds 5-7, each 8-aligned
VBATCH = 16384  # bytes of value records gathered before one ring-buffer write
NO_SITE = 0xFFFFFFFF
VSTEPS = 128
VALUE_JOBS = 65536  # frames queued for values at least (see jobs_for)
MAX_VALUE_JOBS = 1 << 20  # at most: 40 MiB of kernel memory
VALUE_HEADER = 32  # sizeof(struct vhdr)
EARLY_JOB = 1 << 62  # in a job id: the frame was queued by the early walk
ITEM_DROPPED = 2  # an item record's status: the frame's item queue was full


def jobs_for(goroutines: int) -> int:
    """Slots in vjobs: room for an early walk's spec'd frames (16 a goroutine: the
    queue of the pause drains, that of the early walk cannot), a power of two."""
    want = max(VALUE_JOBS, goroutines * 16)
    n = VALUE_JOBS
    while n < want and n < MAX_VALUE_JOBS:
        n *= 2
    return n


@dataclass(frozen=True)
class ValueDims:
    """What the C text needs to know of a plan: ranges and table sizes."""

    lo: int
    hi: int
    sites: int
    types: int
    rtypes: int
    jobs: int = VALUE_JOBS  # slots in vjobs

    @staticmethod
    def of(plan: vp.CapturePlan, goroutines: int = 0) -> ValueDims | None:
        if not plan.sites:
            return None
        return ValueDims(
            lo=min(f.lo for f in plan.functions),
            hi=max(f.hi for f in plan.functions),
            sites=len(plan.sites),
            types=len(plan.chase_types),
            rtypes=max(1, len(plan.rtypes)),
            jobs=jobs_for(goroutines),
        )


def definitions(d: ValueDims, max_workers: int) -> str:
    """Structs and maps; goes before the walker's functions."""
    return f"""
#define V_LO {d.lo}ULL
#define V_HI {d.hi}ULL
#define VJOBS {d.jobs}
#define VSTEPS {VSTEPS}
#define ITEM_MAX {vp.ITEM_MAX}
#define QUEUE {vp.QUEUE}
#define MAX_SLOTS {vp.MAX_SLOTS}
#define MAX_ROOTS {vp.MAX_ROOTS}
#define MAX_OPS {vp.MAX_OPS}
#define MAX_PIECES {vp.MAX_PIECES}
#define MAX_PTR_DEPTH {vp.MAX_PTR_DEPTH}
#define FRAME_BUDGET {vp.FRAME_BUDGET}
#define ASSEMBLED (1ULL << 63)
#define VBATCH {VBATCH}
#define ITEM_UNREADABLE 1

struct vjob {{ u64 goid; u64 pc; u64 cfa; u32 depth; u32 early; u32 site; u32 nroots; }};
struct vsite {{ u32 index; u32 nroots; }};
struct vroot {{
    u32 unavailable; u32 npieces; u32 nops; u32 ctype;
    s64 poff[MAX_PIECES]; u32 psize[MAX_PIECES];
    u32 okind[MAX_OPS]; u32 oelem[MAX_OPS]; u64 oarg[MAX_OPS];
}};
struct vslot {{ u32 off; u32 kind; u32 target; u32 aux; u32 cap; u32 target2; }};
struct vtype {{ u32 size; u32 nslots; struct vslot s[MAX_SLOTS]; }};
struct vitem {{ u64 addr; u32 ctype; u32 count; u32 depth; u32 pad; }};
struct vhdr {{ u32 kind; u32 len; u64 job; u64 addr; u32 index; u32 status; }};
struct vstate {{
    u64 jnext;
    u64 job;
    u64 cfa;
    u32 in_job; u32 root; u32 nroots; u32 site;
    u32 qhead; u32 qtail;
    s64 budget;
    u32 in_item; u32 elem; u32 slot; u32 elems; u32 ctype; u32 n; u32 idepth; u32 worker;
    u32 early; u32 jobs;          /* the job being read was queued early; jobs started */
    u64 skipped;                  /* early jobs not read: this worker walked everything */
    u64 iaddr;
    struct vitem q[QUEUE];
    struct vhdr small;
    u64 word;
    struct vhdr h;
    u8 data[2 * ITEM_MAX + 16];   /* items are at most ITEM_MAX; the rest keeps the
                                     verifier's bounds simple */
    u32 boff;                     /* bytes used in batch, its 8-byte header included */
    u32 pad2;
    u8 batch[2 * VBATCH + 2 * ITEM_MAX + 128];   /* slack: the verifier's bounds are masks */
}};

BPF_ARRAY(vjobs, struct vjob, VJOBS);
BPF_HASH(vsites, u64, struct vsite, {max(1, d.sites)});
BPF_ARRAY(vroots, struct vroot, {max(1, d.sites) * vp.MAX_ROOTS});
BPF_ARRAY(vtypes, struct vtype, {max(1, d.types)});
BPF_HASH(vrtypes, u64, u32, {d.rtypes});
BPF_ARRAY(vstates, struct vstate, {max_workers});

/* In the pause the walk never gets here with a full queue (see drain_in_walk). */
static __always_inline void queue_value_job(struct cursor *c, u64 pc, u64 cfa, struct vsite *s) {{
    if (c->vq_len >= c->vq_cap) {{
        c->vq_lost++;
        return;
    }}
    u32 qi = c->vq_base + c->vq_len;
    struct vjob *j = vjobs.lookup(&qi);
    if (!j)
        return;
    j->goid = c->r.goid;
    j->pc = pc;
    j->cfa = cfa;
    j->depth = c->depth - 1;
    j->early = c->mode == WALK_EARLY;
    j->site = s ? s->index : {NO_SITE};
    j->nroots = s ? s->nroots : 0;
    c->vq_len++;
}}
"""


def queue_in_walk() -> str:
    """C for step_frame, after the caller's pc `ret` and frame pointer `next_bp` are
    known: a call site of a spec'd function, or the pc asyncPreempt interrupted (its
    frame is recorded with "no location plan")."""
    return """
    if (ret >= V_LO && ret < V_HI && next_bp != 0) {
        struct vsite *vs = vsites.lookup(&ret);
        if (vs || size == 24)
            queue_value_job(c, ret, next_bp + 16, vs);
    }"""


def drain_in_walk() -> str:
    """C at the top of the walk's loop: in the pause, a full queue is read (the values
    program hands back to the walk when it is empty) before the walk goes on."""
    return """
        if (c->vq_len >= c->vq_cap && c->mode != WALK_EARLY) {
            chain.call(ctx, 2);
            c->chains_ended++;
            return 0;
        }"""


def program() -> str:
    """The `values` program (tail-call slot 2)."""
    k = vp
    return f"""
/* Records are gathered in v->batch (one ring-buffer write per VBATCH bytes); each is
   its header and max(len, 8) bytes rounded up to 8. */
static __always_inline void vflush(struct cursor *c, struct vstate *v) {{
    u32 n = v->boff;
    if (n <= 8)
        return;
    n &= 2 * VBATCH - 1;   /* never above VBATCH: vappend flushes first */
    *(u32 *)v->batch = {REC_VALUE_BATCH};
    *(u32 *)(v->batch + 4) = n;
    void *b = v->batch;
    if (records.ringbuf_output(b, n, BPF_RB_NO_WAKEUP))
        c->lost++;
    c->rb_used += n;
    v->boff = 8;
}}

static __always_inline void vappend(struct cursor *c, struct vstate *v, void *src, u32 len) {{
    u32 size = sizeof(struct vhdr) + (((len < 8 ? 8 : len) + 7) & ~7);
    if (size > sizeof(struct vhdr) + ITEM_MAX)
        size = sizeof(struct vhdr) + ITEM_MAX;
    if (v->boff < 8)
        v->boff = 8;
    if (v->boff + size > VBATCH)
        vflush(c, v);
    u32 off = v->boff & (2 * VBATCH - 1);   /* a mask the verifier keeps (off <= VBATCH) */
    bpf_probe_read_kernel(v->batch + off, size, src);
    v->boff = off + size;
}}

/* A header and one word (v->word), stored word by word: no helper call. */
static __always_inline void vemit_small(struct cursor *c, struct vstate *v, u32 kind, u64 addr,
                                        u32 index, u32 status, u32 len) {{
    u32 size = sizeof(struct vhdr) + 8;
    if (v->boff < 8)
        v->boff = 8;
    if (v->boff + size > VBATCH)
        vflush(c, v);
    u32 off = v->boff & (2 * VBATCH - 1);   /* 8-aligned: every record is */
    u64 *dst = (u64 *)(v->batch + off);
    dst[0] = kind | ((u64)len << 32);
    dst[1] = v->job;
    dst[2] = addr;
    dst[3] = index | ((u64)status << 32);
    dst[4] = v->word;
    v->boff = off + size;
}}

static __always_inline void vpush(struct cursor *c, struct vstate *v, u64 addr, u32 ctype, u64 count,
                                  u32 depth) {{
    if (addr == 0 || count == 0 || depth > MAX_PTR_DEPTH)
        return;
    u32 t = v->qtail;
    if (t - v->qhead >= QUEUE) {{   /* a ring: QUEUE items waiting at most */
        vemit_small(c, v, {REC_VALUE_ITEM}, addr, 0, {ITEM_DROPPED}, 0);
        return;
    }}
    struct vitem *it = &v->q[t & (QUEUE - 1)];
    it->addr = addr;
    it->ctype = ctype;
    it->count = count;
    it->depth = depth;
    v->qtail = t + 1;
}}

static __always_inline u64 vword(struct vstate *v, u64 o) {{
    return *(u64 *)(v->data + (o & (2 * ITEM_MAX - 1)));
}}

static __always_inline void vemit_item(struct cursor *c, struct vstate *v, u64 addr, u32 n) {{
    v->h.kind = {REC_VALUE_ITEM};
    v->h.len = n;
    v->h.job = v->job;
    v->h.addr = addr;
    v->h.index = 0;
    v->h.status = 0;
    vappend(c, v, &v->h, n);
}}

static __always_inline void vstart_job(struct cursor *c, struct vstate *v) {{
    u32 qi = c->vq_base + v->jnext;
    v->jnext++;
    v->jobs++;
    struct vjob *j = vjobs.lookup(&qi);
    if (!j)
        return;
    v->early = j->early;
    v->job = ((u64)v->worker << 32) | v->jobs | (j->early ? {EARLY_JOB}ULL : 0);
    if (j->early && c->fell_back) {{   /* this worker walks everything again */
        v->skipped++;
        return;
    }}
    v->word = j->pc;
    u32 site = j->site;
    vemit_small(c, v, {REC_VALUE_JOB}, j->goid, j->depth, site, 0);
    if (site == {NO_SITE})
        return;
    v->in_job = 1;
    v->root = 0;
    v->nroots = j->nroots;
    v->site = site;
    v->cfa = j->cfa;
    v->qhead = 0;
    v->qtail = 0;
    v->budget = FRAME_BUDGET;
}}

static __always_inline void vresolve_root(struct cursor *c, struct vstate *v) {{
    u32 ri = v->site * MAX_ROOTS + (v->root & (MAX_ROOTS - 1));
    u32 index = v->root;
    v->root++;
    struct vroot *r = vroots.lookup(&ri);
    if (!r)
        return;
    u32 status = {vc.ROOT_OK};
    u64 addr = 0;
    if (r->unavailable) {{
        vemit_small(c, v, {REC_VALUE_ROOT}, 0, index, {vc.ROOT_UNAVAILABLE}, 0);
        return;
    }}
    if (r->npieces > 1) {{
        u32 at = 0;
        for (int p = 0; p < MAX_PIECES; p++) {{
            if (p >= r->npieces)
                break;
            u32 size = r->psize[p] & (ITEM_MAX - 1);
            u64 from = v->cfa + r->poff[p];
            if (bpf_probe_read_user(v->data + (at & (ITEM_MAX - 1)), size, (void *)from)) {{
                vemit_small(c, v, {REC_VALUE_ROOT}, from, index, {vc.ROOT_UNREADABLE}, 0);
                return;
            }}
            at += size;
        }}
        addr = ASSEMBLED | index;
        vemit_small(c, v, {REC_VALUE_ROOT}, addr, index, {vc.ROOT_OK}, 0);
        vemit_item(c, v, addr, at & (ITEM_MAX - 1));
        v->in_item = 1;
        v->elem = 0;
        v->slot = 0;
        v->elems = 1;
        v->ctype = r->ctype;
        v->n = at & (ITEM_MAX - 1);
        v->idepth = 0;
        return;
    }}
    addr = v->cfa + r->poff[0];
    for (int i = 0; i < MAX_OPS; i++) {{
        if (i >= r->nops)
            break;
        u32 kind = r->okind[i];
        u64 arg = r->oarg[i];
        if (kind == {k.OP_ADD}) {{
            addr += arg;
        }} else if (kind == {k.OP_DEREF}) {{
            u64 next = 0;
            if (bpf_probe_read_user(&next, 8, (void *)addr)) {{
                status = {vc.ROOT_UNREADABLE};
                break;
            }}
            addr = next;
            if (addr == 0) {{
                status = {vc.ROOT_NIL};
                break;
            }}
        }} else if (kind == {k.OP_INDEX}) {{
            u64 hdr[2] = {{0, 0}};
            if (bpf_probe_read_user(hdr, 16, (void *)addr)) {{
                status = {vc.ROOT_UNREADABLE};
                break;
            }}
            if (arg >= hdr[1]) {{
                status = {vc.ROOT_RANGE};
                addr = hdr[1];
                break;
            }}
            addr = hdr[0] + arg * r->oelem[i];
        }}
    }}
    vemit_small(c, v, {REC_VALUE_ROOT}, addr, index, status, 0);
    if (status == {vc.ROOT_OK})
        vpush(c, v, addr, r->ctype, 1, 0);
}}

static __always_inline void vtake_item(struct cursor *c, struct vstate *v) {{
    struct vitem it = v->q[v->qhead & (QUEUE - 1)];
    v->qhead++;
    u32 ct = it.ctype;
    struct vtype *t = vtypes.lookup(&ct);
    if (!t || t->size == 0)
        return;
    u64 size = t->size;
    u64 n = size * it.count;
    if (n > ITEM_MAX)
        n = ITEM_MAX;
    if (v->budget <= 0)
        return;
    if (n > (u64)v->budget)
        n = v->budget;
    if (size <= ITEM_MAX)
        n -= n % size;
    if (n == 0 || n > ITEM_MAX)
        return;
    if (bpf_probe_read_user(v->data, n, (void *)it.addr)) {{
        vemit_small(c, v, {REC_VALUE_ITEM}, it.addr, 0, ITEM_UNREADABLE, 0);
        return;
    }}
    v->budget -= n;
    vemit_item(c, v, it.addr, n);
    u64 elems = size <= ITEM_MAX ? n / size : 1;
    if (size <= ITEM_MAX && elems < it.count)
        vpush(c, v, it.addr + elems * size, ct, it.count - elems, it.depth);
    if (t->nslots == 0)
        return;
    v->in_item = 1;
    v->elem = 0;
    v->slot = 0;
    v->elems = elems;
    v->ctype = ct;
    v->n = n;
    v->idepth = it.depth;
}}

static __always_inline void vscan_slot(struct cursor *c, struct vstate *v) {{
    u32 ct = v->ctype;
    struct vtype *t = vtypes.lookup(&ct);
    if (!t) {{
        v->in_item = 0;
        return;
    }}
    if (v->slot >= t->nslots || v->slot >= MAX_SLOTS) {{
        v->slot = 0;
        v->elem++;
    }}
    if (v->elem >= v->elems) {{
        v->in_item = 0;
        return;
    }}
    struct vslot s = t->s[v->slot & (MAX_SLOTS - 1)];
    v->slot++;
    if (v->slot >= t->nslots && v->elem + 1 >= v->elems)
        v->in_item = 0;   /* the last slot: the next step takes the next item */
    u64 base = (u64)v->elem * t->size;
    u64 o = base + s.off;
    u32 wide = s.kind == {k.SLOT_STRING} || s.kind == {k.SLOT_SLICE} || s.kind == {k.SLOT_EFACE} ||
               s.kind == {k.SLOT_IFACE};
    if (o + (wide ? 16 : 8) > v->n)
        return;
    u64 p = vword(v, o);
    u32 d = v->idepth + 1;
    if (s.kind == {k.SLOT_PTR}) {{
        vpush(c, v, p, s.target, 1, d);
    }} else if (s.kind == {k.SLOT_STRING} || s.kind == {k.SLOT_SLICE}) {{
        u64 len = vword(v, o + 8);
        vpush(c, v, p, s.target, len < s.cap ? len : s.cap, d);
    }} else if (s.kind == {k.SLOT_EFACE} || s.kind == {k.SLOT_IFACE}) {{
        u64 typ = p;
        if (s.kind == {k.SLOT_IFACE} && p) {{
            u64 word = 0;
            if (bpf_probe_read_user(&word, 8, (void *)(p + {k.ITAB_TYPE_OFFSET})) == 0) {{
                v->word = word;
                vemit_small(c, v, {REC_VALUE_ITEM}, p + {k.ITAB_TYPE_OFFSET}, 0, 0, 8);
            }}
            typ = word;
        }}
        if (typ) {{
            u32 target = {k.T_RAW};
            u32 *tt = vrtypes.lookup(&typ);
            if (tt)
                target = *tt;
            vpush(c, v, vword(v, o + 8), target, 1, d);
        }}
    }} else if (s.kind == {k.SLOT_SWISS_DIR}) {{
        u64 ao = base + s.aux;
        if (ao + 8 > v->n)
            return;
        u64 dir_len = vword(v, ao);
        if (dir_len == 0)
            vpush(c, v, p, s.target, 1, d);
        else
            vpush(c, v, p, s.target2, dir_len < s.cap ? dir_len : s.cap, d);
    }} else if (s.kind == {k.SLOT_GROUPS}) {{
        u64 ao = base + s.aux;
        if (ao + 8 > v->n)
            return;
        u64 groups = vword(v, ao) + 1;
        vpush(c, v, p, s.target, groups < s.cap ? groups : s.cap, d);
    }} else if (s.kind == {k.SLOT_BUCKETS}) {{
        u64 ao = base + s.aux;
        if (ao >= v->n)
            return;
        u8 b = v->data[ao & (2 * ITEM_MAX - 1)];
        if (b > 16)
            b = 16;
        u64 buckets = 1ULL << b;
        vpush(c, v, p, s.target, buckets < s.cap ? buckets : s.cap, d);
    }}
}}

int values(struct pt_regs *ctx) {{
    u32 tid = bpf_get_current_pid_tgid();
    u32 *w = worker_of.lookup(&tid);
    if (!w)
        return 0;
    u32 slot = *w;
    struct cursor *c = cursors.lookup(&slot);
    struct vstate *v = vstates.lookup(&slot);
    if (!c || !v || !c->armed || c->done)
        return 0;
    c->invocations++;
    if (c->mode == WALK_EARLY) {{   /* values are read in the pause only */
        c->done = 1;
        c->t_done = bpf_ktime_get_ns();
        return 0;
    }}
    for (int i = 0; i < VSTEPS; i++) {{
        if (c->rb_used + VBATCH > c->rb_cap) {{
            /* the ring buffer's share is full: the tracer reads it and triggers again */
            c->rb_wait = 1;
            c->rb_waits++;
            return 0;
        }}
        if (v->in_item) {{
            vscan_slot(c, v);
        }} else if (v->qhead < v->qtail) {{
            vtake_item(c, v);
        }} else if (v->in_job && v->root < v->nroots) {{
            vresolve_root(c, v);
        }} else if (v->jnext < c->vq_len) {{
            v->in_job = 0;
            vstart_job(c, v);
        }} else if (!c->walked) {{
            /* drained in the middle of the walk (drain_in_walk): back to it */
            v->jnext = 0;
            c->vq_len = 0;
            c->vq_drains++;
            chain.call(ctx, 0);
            c->chains_ended++;
            return 0;
        }} else {{
            vflush(c, v);
            c->done = 1;
            c->t_done = bpf_ktime_get_ns();
            return 0;
        }}
    }}
    chain.call(ctx, 2);
    c->chains_ended++;
    return 0;
}}
"""


def fill_maps(bpf: Any, plan: vp.CapturePlan) -> None:
    """Loads the plan's tables into the probe's maps (before the pause)."""
    sites = bpf[b"vsites"]
    roots = bpf[b"vroots"]
    for index, (pc, site) in enumerate(sorted(plan.sites.items())):
        leaf = sites.Leaf()
        leaf.index = index
        leaf.nroots = len(site.roots)
        sites[sites.Key(pc)] = leaf
        for r, root in enumerate(site.roots):
            rl = roots.Leaf()
            rl.unavailable = 1 if root.unavailable is not None else 0
            rl.npieces = len(root.pieces)
            rl.nops = len(root.ops)
            rl.ctype = root.chase_type
            for p, (off, size) in enumerate(root.pieces):
                rl.poff[p] = off
                rl.psize[p] = size
            for o, op in enumerate(root.ops):
                rl.okind[o] = op.kind
                rl.oarg[o] = op.arg
                rl.oelem[o] = op.elem_size
            roots[ct.c_int(index * vp.MAX_ROOTS + r)] = rl
    types = bpf[b"vtypes"]
    for i, t in enumerate(plan.chase_types):
        tl = types.Leaf()
        tl.size = t.size
        tl.nslots = len(t.slots)
        for j, s in enumerate(t.slots):
            tl.s[j].off = s.off
            tl.s[j].kind = s.kind
            tl.s[j].target = s.target
            tl.s[j].aux = s.aux
            tl.s[j].cap = s.cap
            tl.s[j].target2 = s.target2
        types[ct.c_int(i)] = tl
    rtypes = bpf[b"vrtypes"]
    for addr, target in plan.rtypes.items():
        rtypes[rtypes.Key(addr)] = rtypes.Leaf(target)
