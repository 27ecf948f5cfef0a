/*
 * bulk.c — bulk-free of a closing scope, and the quarantine of bulk-freed blocks.
 *
 * Owns the per-instance list of addresses a bulk scope allocated, the walk that frees what
 * is still live in it when it closes (cymem's promise: the pool's memory dies with the
 * pool), and the quarantine: bulk-freed blocks wait there, FIFO, until more than
 * cmt_cfg.quarantine_bytes are waiting, so that a program's later free or realloc of one is
 * recognized as stale instead of corrupting the heap. A quarantined block keeps its record
 * in the live table, marked CMT_BLOCK_QUARANTINED, so that entering the quarantine is one
 * change of one record under one lock, and a racing free finds it wherever it looks. Never
 * allocates through the tracked allocator; never holds a lock while handing memory back to
 * an allocator.
 */
#include "config.h"

#include <string.h>

#include "cmt.h"

/* The quarantine's order: a FIFO ring of the quarantined blocks, for eviction. */
struct q_entry {
    uintptr_t ptr;
    uint64_t size;          /* what the block counts for in the budget: q_cost() */
    cmt_free_fn_t free_fn;
};

/* A block counts for its size in the quarantine's budget, and for at least 16 bytes: without
 * that floor, bulk-freed blocks of size 0 would never fill it, and its ring would grow
 * without bound. (An allocator spends at least that much on any block.) */
static inline uint64_t q_cost(size_t size)
{
    return size < 16 ? 16 : size;
}

static struct {
    cmt_spinlock lock;              /* guards the ring and bytes */
    struct q_entry *ring;
    size_t cap, head, len;          /* cap: 0 or a power of two (an index is masked, never
                                     * divided: a division a block cost 15% of a close);
                                     * head: the oldest entry */
    uint64_t bytes;
    atomic_int oom_said;
} q;

/* Blocks a close handles between two visits to the quarantine's ring, and the most a shard
 * lock is held over (see struct walk): small enough that another thread never waits long for
 * it, large enough that the ring's lock is taken rarely. */
#define BATCH 128
/* How many addresses ahead a walk asks for the memory it will touch: about one memory
 * latency's worth of blocks. */
#define AHEAD 16

#define BULK_MIN_CAP 256

/* Grows inst's address list, first dropping the addresses no longer live in it, so the
 * list stays within twice the live blocks. Called with inst->bulk_lock held. */
static bool bulk_grow(struct cmt_instance *inst)
{
    size_t live = 0;
    for (size_t i = 0; i < inst->bulk_len; i++) {
        struct cmt_block b;
        if (cmt_table_lookup(&cmt_live, inst->bulk_ptrs[i], &b) && b.instance == inst->id)
            inst->bulk_ptrs[live++] = inst->bulk_ptrs[i];
    }
    inst->bulk_len = live;
    if (live * 2 <= inst->bulk_cap && inst->bulk_cap)
        return true;

    size_t cap = inst->bulk_cap ? inst->bulk_cap * 2 : BULK_MIN_CAP;
    uintptr_t *ptrs = cmt_raw_map(cap * sizeof *ptrs);
    if (!ptrs)
        return false;
    if (inst->bulk_ptrs) {
        memcpy(ptrs, inst->bulk_ptrs, live * sizeof *ptrs);
        cmt_raw_unmap(inst->bulk_ptrs, inst->bulk_cap * sizeof *ptrs);
    }
    inst->bulk_ptrs = ptrs;
    inst->bulk_cap = cap;
    return true;
}

void cmt_bulk_note(struct cmt_instance *inst, uintptr_t p)
{
    cmt_spin_lock(&inst->bulk_lock);
    if (cmt_unlikely(inst->bulk_len == inst->bulk_cap) && !bulk_grow(inst)) {
        cmt_spin_unlock(&inst->bulk_lock);
        cmt_diag("out of memory for scope \"%s\"'s bulk-free list; block %p will not be "
                 "bulk-freed", cmt_name_string(inst->name), (void *)p);
        return;
    }
    inst->bulk_ptrs[inst->bulk_len++] = p;
    cmt_spin_unlock(&inst->bulk_lock);
}

/* ---- shard runs ---------------------------------------------------------------------- */

/* Blocks handed out one after another lie in the same 64 KiB region, and a region's blocks
 * share a shard (cmt.h), so a walk over such addresses keeps one shard locked over a run of
 * them: one lock and unlock a run instead of one a block, and, the shard being locked, the
 * walk may ask for the slots of the addresses it reaches next (run_prefetch). It must: the
 * addresses come in the order the program allocated them, which no hardware prefetcher
 * follows (glibc gives a run of freed small blocks back in reverse, a few at a time in
 * forward order), so every lookup would wait for memory. Both together took a bulk-free of
 * a million blocks from 58 to 32 ms (bench/micro bulk-close). A run ends with its batch. */
struct run {
    struct cmt_shard *s;    /* locked, or NULL */
    uintptr_t region;
};

/* The shard of p, locked: the run's when p is in its region, else a new run's. */
static inline struct cmt_shard *run_shard(struct run *r, uintptr_t p)
{
    if (r->s && p >> CMT_TABLE_REGION_SHIFT == r->region)
        return r->s;
    if (r->s)
        cmt_shard_unlock(r->s);
    r->s = cmt_table_lock_ptr(&cmt_live, p);
    r->region = p >> CMT_TABLE_REGION_SHIFT;
    return r->s;
}

/* Prefetches the slot of `next`, an address the walk will look up soon, when it lies in the
 * run's region: only the locked shard's slots may be read. */
static inline void run_prefetch(const struct run *r, uintptr_t next)
{
    if (next >> CMT_TABLE_REGION_SHIFT == r->region)
        cmt_shard_prefetch(r->s, next);
}

/* Gives blocks back to their allocators, prefetching the memory each allocator's free will
 * touch first (glibc's: the chunk header before the block, the link written at its start). */
static void release_all(struct cmt_thread *t, const struct q_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n) {
            __builtin_prefetch((const char *)e[i + AHEAD].ptr - sizeof(size_t), 1);
            __builtin_prefetch((const void *)e[i + AHEAD].ptr, 1);
        }
        cmt_release(t, (void *)e[i].ptr, e[i].free_fn);
    }
}

static inline void run_end(struct run *r)
{
    if (r->s)
        cmt_shard_unlock(r->s);
    r->s = NULL;
}

/* ---- the quarantine's ring --------------------------------------------------------- */

/* Takes entries off the old end of the ring until the quarantine has room for `incoming`
 * more bytes within its budget (or, with all, until it is empty), into out[] (at most n of
 * them). Called with q.lock held. */
static size_t q_evict(struct q_entry *out, size_t n, bool all, uint64_t incoming)
{
    size_t k = 0;
    while (q.len > 0 && (all || q.bytes + incoming > cmt_cfg.quarantine_bytes) && k < n) {
        out[k] = q.ring[q.head];
        q.head = (q.head + 1) & (q.cap - 1);
        q.len--;
        q.bytes -= out[k].size;
        k++;
    }
    return k;
}

/* Gives evicted blocks back, outside every lock. Their records leave the live table first,
 * all of them before any block is given back: the memory is not reused while they are
 * there. */
static void q_release(struct cmt_thread *t, const struct q_entry *e, size_t n)
{
    struct run r = { NULL, 0 };
    for (size_t i = 0; i < n; i++) {
        struct cmt_block gone;
        struct cmt_shard *s = run_shard(&r, e[i].ptr);
        if (i + AHEAD < n)
            run_prefetch(&r, e[i + AHEAD].ptr);
        if (cmt_shard_remove(s, e[i].ptr, CMT_INSTANCE_QUARANTINE, &gone))
            s->quarantined--;
    }
    run_end(&r);
    release_all(t, e, n);
}

/* Evicts until the quarantine fits its budget, or until it is empty; buf (n entries) holds
 * each batch on its way out. */
static void q_trim(struct cmt_thread *t, bool all, struct q_entry *buf, size_t n)
{
    for (;;) {
        cmt_spin_lock(&q.lock);
        size_t k = q_evict(buf, n, all, 0);
        cmt_spin_unlock(&q.lock);
        if (k == 0)
            return;
        q_release(t, buf, k);
    }
}

/* Makes room in the ring for one more entry. Called with q.lock held. */
static bool q_reserve(void)
{
    if (q.len < q.cap)
        return true;
    size_t cap = q.cap ? q.cap * 2 : 1024;
    struct q_entry *ring = cmt_raw_map(cap * sizeof *ring);
    if (!ring)
        return false;
    for (size_t i = 0; i < q.len; i++)
        ring[i] = q.ring[(q.head + i) & (q.cap - 1)];
    if (q.ring)
        cmt_raw_unmap(q.ring, q.cap * sizeof *q.ring);
    q.ring = ring;
    q.cap = cap;
    q.head = 0;
    return true;
}

/* Appends quarantined blocks to the ring; those it has no room for are given back. The
 * oldest blocks make room first, through buf (n entries at least), so that the ring never
 * holds more than the budget's worth and, once grown to that, never grows again. */
static void q_push(struct cmt_thread *t, const struct q_entry *e, size_t n,
                   struct q_entry *buf)
{
    uint64_t incoming = 0;
    for (size_t i = 0; i < n; i++)
        incoming += e[i].size;
    size_t k = 0;
    for (;;) {
        cmt_spin_lock(&q.lock);
        size_t out = q_evict(buf, n, false, incoming);
        if (out == 0)
            break;      /* with the lock held */
        cmt_spin_unlock(&q.lock);
        q_release(t, buf, out);
    }
    for (; k < n && q_reserve(); k++) {
        q.ring[(q.head + q.len) & (q.cap - 1)] = e[k];
        q.len++;
        q.bytes += e[k].size;
    }
    cmt_spin_unlock(&q.lock);
    if (k < n) {
        if (!atomic_exchange(&q.oom_said, 1))
            cmt_diag("out of memory for the quarantine; bulk-freed blocks are given back at "
                     "once and stale frees of them go unrecognized");
        q_release(t, e + k, n - k);
    }
}

/* ---- the walk of a closing bulk instance ------------------------------------------- */

/* One close's walk over its instance's addresses, a batch at a time: the blocks still live
 * in the instance are taken out of it under their shards' locks (shard runs), then, with no
 * lock held, the others go back to their allocator, and the quarantined ones join the ring,
 * the oldest blocks there leaving first to make room for them. */
struct walk {
    struct cmt_instance *inst;
    bool quarantine;
    uint64_t beyond;            /* bytes still to give back at once instead of quarantining */
    struct run run;
    uint64_t run_blocks, run_bytes;     /* taken in this run, not yet counted in inst */
    uint64_t batch_bytes, blocks;
    struct q_entry keep[BATCH]; /* quarantined, for the ring */
    struct q_entry give[BATCH]; /* out of the table, for their allocator */
    size_t nkeep, ngive;
};

/* Ends the shard run, counting its blocks bulk-freed before the unlock: a block's change of
 * record and its count are in one critical section of its shard, so a fork (which takes
 * every shard lock) sees both or neither. */
static void walk_run_end(struct walk *w)
{
    if (w->run_blocks) {
        struct cmt_instance *inst = w->inst;
        inst->own_bulk_freed += w->run_blocks;
        atomic_fetch_add_explicit(&inst->bulk_freed_blocks, w->run_blocks,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&inst->bulk_freed_bytes, w->run_bytes, memory_order_relaxed);
        w->batch_bytes += w->run_bytes;
        w->blocks += w->run_blocks;
        w->run_blocks = w->run_bytes = 0;
    }
    run_end(&w->run);
}

/* Takes p out of the closing instance when it is still one of its live blocks (else it was
 * freed by the program, or its address now belongs elsewhere). Quarantined, its record stays,
 * marked, so that a free racing with this close finds it and is a stale free, never an
 * "invalid" one; otherwise the record goes. */
static inline void walk_take(struct walk *w, uintptr_t p, uintptr_t ahead)
{
    if (w->run.s && p >> CMT_TABLE_REGION_SHIFT != w->run.region)
        walk_run_end(w);
    struct cmt_shard *s = run_shard(&w->run, p);
    run_prefetch(&w->run, ahead);
    /* One probe: the record is changed, or deleted, where it was found. */
    struct cmt_block *b = cmt_shard_find(s, p);
    if (!b || b->instance != w->inst->id)
        return;
    size_t size = cmt_block_size(b);
    struct q_entry e = { p, q_cost(size),
                         (b->flags & CMT_BLOCK_CUSTOM) ? w->inst->free_fn : NULL };
    if (w->quarantine && w->beyond == 0) {
        b->instance = CMT_INSTANCE_QUARANTINE;
        b->seq = w->inst->name;
        b->flags |= CMT_BLOCK_QUARANTINED;
        s->quarantined++;
        w->keep[w->nkeep++] = e;
    } else {
        cmt_shard_delete(s, b);
        w->beyond = w->beyond > size ? w->beyond - size : 0;
        w->give[w->ngive++] = e;
    }
    w->run_blocks++;
    w->run_bytes += size;
}

/* What a batch took goes where it belongs, with no lock held. */
static void walk_flush(struct cmt_thread *t, struct walk *w)
{
    walk_run_end(w);
    cmt_totals_free(t, w->batch_bytes);
    w->batch_bytes = 0;
    release_all(t, w->give, w->ngive);
    q_push(t, w->keep, w->nkeep, w->give);
    w->nkeep = w->ngive = 0;
}

uint64_t cmt_bulk_free(struct cmt_thread *t, struct cmt_instance *inst)
{
    cmt_spin_lock(&inst->bulk_lock);
    uintptr_t *ptrs = inst->bulk_ptrs;
    size_t len = inst->bulk_len;
    inst->bulk_len = 0;
    cmt_spin_unlock(&inst->bulk_lock);
    /* The quarantine keeps the most recent cmt_cfg.quarantine_bytes, oldest out first: what
     * this close frees beyond that would be evicted before it returns, so it is given back
     * at once instead of passing through. */
    struct cmt_counters c;
    cmt_instance_counters(inst, &c);
    uint64_t live = c.bytes_allocated - c.bytes_freed - c.bulk_freed_bytes;
    struct walk w;
    w.inst = inst;
    w.quarantine = cmt_cfg.quarantine_bytes > 0;
    w.beyond = live > cmt_cfg.quarantine_bytes ? live - cmt_cfg.quarantine_bytes : 0;
    w.run = (struct run){ NULL, 0 };
    w.run_blocks = w.run_bytes = w.batch_bytes = w.blocks = 0;
    w.nkeep = w.ngive = 0;
    /* Only the owner allocates into its open instance through the hooks, and it is here;
     * another thread's pool call racing with this close is the program's own race. */
    for (size_t i = 0; i < len; i += BATCH) {
        size_t end = len - i < BATCH ? len : i + BATCH;
        for (size_t k = i; k < end; k++)
            walk_take(&w, ptrs[k], k + AHEAD < len ? ptrs[k + AHEAD] : 0);
        walk_flush(t, &w);
    }
    /* A batch bigger than the whole budget is let in whole; what it left over goes now. */
    q_trim(t, false, w.keep, BATCH);
    return w.blocks;
}

bool cmt_quarantine_find(uintptr_t p, uint32_t *name)
{
    struct cmt_block b;
    if (!cmt_table_lookup(&cmt_live, p, &b) || !(b.flags & CMT_BLOCK_QUARANTINED))
        return false;
    *name = b.seq;
    return true;
}

void cmt_quarantine_drain(struct cmt_thread *t)
{
    struct q_entry buf[BATCH];
    q_trim(t, true, buf, BATCH);
}

void cmt_bulk_lock_all(void)
{
    cmt_spin_lock(&q.lock);
}

void cmt_bulk_unlock_all(void)
{
    cmt_spin_unlock(&q.lock);
}

