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
    uint64_t size;
    void (*free_fn)(void *);
};

static struct {
    cmt_spinlock lock;              /* guards the ring and bytes */
    struct q_entry *ring;
    size_t cap, head, len;          /* head: oldest entry */
    uint64_t bytes;
    atomic_int oom_said;
} q;


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

/* Takes entries off the old end of the ring until the quarantine fits its budget (or, with
 * all, until it is empty), into out[] (at most n of them). Called with q.lock held. */
static size_t q_evict(struct q_entry *out, size_t n, bool all)
{
    size_t k = 0;
    while (q.len > 0 && (all || q.bytes > cmt_cfg.quarantine_bytes) && k < n) {
        out[k] = q.ring[q.head];
        q.head = (q.head + 1) % q.cap;
        q.len--;
        q.bytes -= out[k].size;
        k++;
    }
    return k;
}

/* Gives evicted blocks back, outside every lock but their shard's. Their records leave the
 * live table first: the memory is not reused while they are there. */
static void q_release(struct cmt_thread *t, const struct q_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct cmt_block gone;
        struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, e[i].ptr);
        if (cmt_shard_remove(s, e[i].ptr, CMT_INSTANCE_QUARANTINE, &gone))
            s->quarantined--;
        cmt_shard_unlock(s);
        cmt_release(t, (void *)e[i].ptr, e[i].free_fn);
    }
}

/* Evicts until the quarantine fits its budget, or until it is empty. */
static void q_trim(struct cmt_thread *t, bool all)
{
    struct q_entry batch[64];
    for (;;) {
        cmt_spin_lock(&q.lock);
        size_t n = q_evict(batch, CMT_ARRAY_LEN(batch), all);
        cmt_spin_unlock(&q.lock);
        if (n == 0)
            return;
        q_release(t, batch, n);
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
        ring[i] = q.ring[(q.head + i) % q.cap];
    if (q.ring)
        cmt_raw_unmap(q.ring, q.cap * sizeof *q.ring);
    q.ring = ring;
    q.cap = cap;
    q.head = 0;
    return true;
}

/* Takes one block of inst out of its scope and counts it bulk-freed, in one critical
 * section of its shard: quarantined, its record stays, marked, so that a free racing with
 * this close finds it and is a stale free, never an "invalid" one; otherwise the record goes.
 * False when p is no longer a live block of inst. */
static bool bulk_take(struct cmt_instance *inst, uintptr_t p, bool quarantined,
                      struct cmt_block *b)
{
    struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, p);
    if (!cmt_table_lookup_locked(s, p, b) || b->instance != inst->id) {
        cmt_shard_unlock(s);
        return false;
    }
    if (quarantined) {
        struct cmt_block rec = *b;
        rec.instance = CMT_INSTANCE_QUARANTINE;
        rec.seq = inst->name;
        rec.flags |= CMT_BLOCK_QUARANTINED;
        cmt_shard_replace(s, &rec);
        s->quarantined++;   /* with the change, under its lock: a fork sees both or neither */
    } else {
        cmt_shard_remove(s, p, inst->id, b);
    }
    size_t size = cmt_block_size(b);
    inst->own_bulk_freed++;
    atomic_fetch_add_explicit(&inst->bulk_freed_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&inst->bulk_freed_bytes, size, memory_order_relaxed);
    cmt_shard_unlock(s);
    return true;
}

/* Appends quarantined blocks to the ring; those it has no room for are given back. */
static void q_push(struct cmt_thread *t, const struct q_entry *e, size_t n)
{
    size_t k = 0;
    cmt_spin_lock(&q.lock);
    for (; k < n && q_reserve(); k++) {
        q.ring[(q.head + q.len) % q.cap] = e[k];
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

uint64_t cmt_bulk_free(struct cmt_thread *t, struct cmt_instance *inst)
{
    uint64_t blocks = 0;
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
    uint64_t beyond = live > cmt_cfg.quarantine_bytes ? live - cmt_cfg.quarantine_bytes : 0;
    struct q_entry pending[256];   /* quarantined, not yet in the ring: pushed in batches */
    size_t npending = 0;
    /* Only the owner allocates into its open instance through the hooks, and it is here;
     * another thread's pool call racing with this close is the program's own race. */
    for (size_t i = 0; i < len; i++) {
        struct cmt_block b;
        bool quarantined = cmt_cfg.quarantine_bytes > 0 && beyond == 0;
        if (!bulk_take(inst, ptrs[i], quarantined, &b))
            continue;   /* freed by the program, or the address now belongs elsewhere */
        if (!quarantined) {
            size_t size = cmt_block_size(&b);
            beyond = beyond > size ? beyond - size : 0;
            blocks++;
            cmt_totals_free(t, size);
            cmt_release(t, (void *)b.ptr,
                        (b.flags & CMT_BLOCK_CUSTOM) ? inst->free_fn : NULL);
            continue;
        }
        blocks++;
        size_t size = cmt_block_size(&b);
        cmt_totals_free(t, size);
        pending[npending++] = (struct q_entry){ b.ptr, size,
                                                (b.flags & CMT_BLOCK_CUSTOM) ? inst->free_fn
                                                                             : NULL };
        if (npending == CMT_ARRAY_LEN(pending)) {
            q_push(t, pending, npending);
            npending = 0;
        }
    }
    q_push(t, pending, npending);
    q_trim(t, false);
    return blocks;
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
    q_trim(t, true);
}

void cmt_bulk_lock_all(void)
{
    cmt_spin_lock(&q.lock);
}

void cmt_bulk_unlock_all(void)
{
    cmt_spin_unlock(&q.lock);
}

