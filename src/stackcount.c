/*
 * stackcount.c — allocations and bytes allocated per (scope name, stack), for the report's
 * ALLOCSITE records and the "bytes allocated" flame graph.
 *
 * Owns the per-thread caches of pending counts and the shared table they drain into. The
 * hot path touches only the calling thread's cache; the shared table is written when a cache
 * entry is evicted, when a thread exits and in a fork child, by compare-and-swap and atomic
 * adds, never under a lock. Never allocates through the tracked allocator (caches come from
 * mmap and are recycled, never unmapped) and never calls stdio.
 */
#include "config.h"

#include "cmt.h"

__thread struct cmt_stackcount_cache *cmt_stackcount_mine CMT_TLS;

/* Keys the shared table takes before counting per name only; tests lower it to fill it. */
uint32_t cmt_stackcount_limit = CMT_STACKCOUNT_KEYS;

/* The index has twice as many slots as there are entries, so probe runs stay short; a key
 * that finds no place within INDEX_PROBES slots is counted per name, as when it is full. */
#define INDEX_SLOTS (2 * CMT_STACKCOUNT_KEYS)
#define INDEX_PROBES 64u
#define CACHE_SLOTS (1u << CMT_STACKCOUNT_CACHE_BITS)

/* Entries are handed out in order, so the pages of the table that a small program touches
 * are few; the index holds entry numbers plus one (0: empty). */
struct entry {
    _Atomic uint64_t key, allocs, bytes;
};

static struct {
    atomic_uint index[INDEX_SLOTS];
    struct entry entry[CMT_STACKCOUNT_KEYS];
    atomic_uint used;                       /* entries handed out (may pass the limit) */
    struct { _Atomic uint64_t allocs, bytes; } overflow[CMT_NAME_MAX];
    atomic_int full_said;
    cmt_spinlock lock;                      /* the free list; held across fork */
    struct cmt_stackcount_cache *free;
    _Atomic(struct cmt_stackcount_cache *) all;
} sc;

static uint32_t limit(void)
{
    return cmt_stackcount_limit < CMT_STACKCOUNT_KEYS ? cmt_stackcount_limit
                                                       : CMT_STACKCOUNT_KEYS;
}

static uint32_t index_home(uint64_t key)
{
    return (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 40) & (INDEX_SLOTS - 1);
}

static void count_overflow(uint64_t key, uint64_t allocs, uint64_t bytes)
{
    uint32_t name = cmt_stackcount_key_name(key);
    if (name >= CMT_NAME_MAX)
        name = CMT_NAME_GLOBAL;     /* cannot happen: names are below CMT_NAME_MAX */
    if (!atomic_exchange_explicit(&sc.full_said, 1, memory_order_relaxed))
        cmt_diag("more than %u distinct (scope, stack) pairs allocated; the allocations of "
                 "further ones are counted per scope, without their stacks",
                 (unsigned)limit());
    atomic_fetch_add_explicit(&sc.overflow[name].allocs, allocs, memory_order_relaxed);
    atomic_fetch_add_explicit(&sc.overflow[name].bytes, bytes, memory_order_relaxed);
}

static void count_in(struct entry *e, uint64_t allocs, uint64_t bytes)
{
    atomic_fetch_add_explicit(&e->allocs, allocs, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->bytes, bytes, memory_order_relaxed);
}

/* Adds counts under key to the shared table. Lock-free: two threads adding a new key at once
 * both claim an entry; the one that loses the index slot clears its entry, which stays
 * unused. */
static void shared_add(uint64_t key, uint64_t allocs, uint64_t bytes)
{
    uint32_t home = index_home(key);
    for (uint32_t n = 0; n < INDEX_PROBES; n++) {
        atomic_uint *slot = &sc.index[(home + n) & (INDEX_SLOTS - 1)];
        unsigned v = atomic_load_explicit(slot, memory_order_acquire);
        if (v == 0) {
            /* Checked before the claim too, so that a full table's count stops growing. */
            if (atomic_load_explicit(&sc.used, memory_order_relaxed) >= limit())
                break;
            uint32_t claim = atomic_fetch_add_explicit(&sc.used, 1, memory_order_relaxed);
            if (claim >= limit())
                break;
            /* The key before the index slot: whoever finds the slot finds the key. */
            atomic_store_explicit(&sc.entry[claim].key, key, memory_order_release);
            if (atomic_compare_exchange_strong_explicit(slot, &v, claim + 1,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                count_in(&sc.entry[claim], allocs, bytes);
                return;
            }
            atomic_store_explicit(&sc.entry[claim].key, 0, memory_order_relaxed);
            /* v is the entry that won the slot: it may be this very key. */
        }
        struct entry *e = &sc.entry[v - 1];
        if (atomic_load_explicit(&e->key, memory_order_acquire) == key) {
            count_in(e, allocs, bytes);
            return;
        }
    }
    count_overflow(key, allocs, bytes);
}

/* Moves a slot's counts to the shared table and empties it. The key goes first, so that a
 * report written in between (a fatal signal on this thread) leaves the entry out rather
 * than counting it twice. */
static void slot_drain(struct cmt_stackcount_slot *s)
{
    uint64_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
    if (!key)
        return;
    atomic_store_explicit(&s->key, 0, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    shared_add(key, atomic_load_explicit(&s->allocs, memory_order_relaxed),
               atomic_load_explicit(&s->bytes, memory_order_relaxed));
    atomic_store_explicit(&s->allocs, 0, memory_order_relaxed);
    atomic_store_explicit(&s->bytes, 0, memory_order_relaxed);
}

static void cache_drain(struct cmt_stackcount_cache *c)
{
    for (uint32_t i = 0; i < CACHE_SLOTS; i++)
        slot_drain(&c->slot[i]);
}

/* A cache for a thread's first counted allocation: a recycled one, else a new mapping. */
static struct cmt_stackcount_cache *cache_get(void)
{
    cmt_spin_lock(&sc.lock);
    struct cmt_stackcount_cache *c = sc.free;
    if (c)
        sc.free = c->free_next;
    cmt_spin_unlock(&sc.lock);
    if (c)
        return c;
    c = cmt_raw_map(sizeof *c);
    if (!c)
        return NULL;    /* out of memory: this thread counts straight into the shared table */
    cmt_spin_lock(&sc.lock);
    c->all_next = atomic_load_explicit(&sc.all, memory_order_relaxed);
    atomic_store_explicit(&sc.all, c, memory_order_release);
    cmt_spin_unlock(&sc.lock);
    return c;
}

/* A miss: the thread's first allocation, or another key in the slot. */
void cmt_stackcount_note_slow(struct cmt_thread *t, uint64_t key, size_t size)
{
    struct cmt_stackcount_cache *c = cmt_stackcount_mine;
    if (!c) {
        /* A thread past its exit keeps no cache: nobody would drain it. */
        if (t->state != CMT_THREAD_LIVE || !(c = cache_get())) {
            shared_add(key, 1, size);
            return;
        }
        cmt_stackcount_mine = c;
    }
    struct cmt_stackcount_slot *s = cmt_stackcount_slot_of(c, key);
    slot_drain(s);
    atomic_store_explicit(&s->allocs, 1, memory_order_relaxed);
    atomic_store_explicit(&s->bytes, size, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&s->key, key, memory_order_release);
}

void cmt_stackcount_thread_exit(void)
{
    struct cmt_stackcount_cache *c = cmt_stackcount_mine;
    if (!c)
        return;
    cache_drain(c);
    cmt_stackcount_mine = NULL;
    cmt_spin_lock(&sc.lock);
    c->free_next = sc.free;
    sc.free = c;
    cmt_spin_unlock(&sc.lock);
}

void cmt_stackcount_lock(void)
{
    cmt_spin_lock(&sc.lock);
}

void cmt_stackcount_unlock(void)
{
    cmt_spin_unlock(&sc.lock);
}

/* The child has one thread, which holds the lock (fork_prepare took it). The other caches
 * belong to threads that did not follow: their counts are the child's too, since the scope
 * counters it inherited include those allocations. Caches on the free list are empty. */
void cmt_stackcount_after_fork_child(void)
{
    struct cmt_stackcount_cache *mine = cmt_stackcount_mine;
    sc.free = NULL;
    for (struct cmt_stackcount_cache *c = atomic_load_explicit(&sc.all, memory_order_acquire);
         c; c = c->all_next) {
        if (c == mine)
            continue;
        cache_drain(c);
        c->free_next = sc.free;
        sc.free = c;
    }
    cmt_spin_unlock(&sc.lock);
}

void cmt_stackcount_foreach(void (*fn)(const struct cmt_stackcount_entry *e, void *arg),
                            void *arg)
{
    uint32_t used = atomic_load_explicit(&sc.used, memory_order_acquire);
    if (used > CMT_STACKCOUNT_KEYS)
        used = CMT_STACKCOUNT_KEYS;
    for (uint32_t i = 0; i < used; i++) {
        const struct entry *e = &sc.entry[i];
        uint64_t key = atomic_load_explicit(&e->key, memory_order_acquire);
        struct cmt_stackcount_entry out = {
            .name = cmt_stackcount_key_name(key),
            .stack = (uint32_t)key,
            .allocs = atomic_load_explicit(&e->allocs, memory_order_relaxed),
            .bytes = atomic_load_explicit(&e->bytes, memory_order_relaxed),
        };
        if (key && out.allocs)
            fn(&out, arg);
    }
    for (uint32_t n = 0; n < CMT_NAME_MAX; n++) {
        struct cmt_stackcount_entry out = {
            .name = n,
            .stack = 0,
            .allocs = atomic_load_explicit(&sc.overflow[n].allocs, memory_order_relaxed),
            .bytes = atomic_load_explicit(&sc.overflow[n].bytes, memory_order_relaxed),
        };
        if (out.allocs)
            fn(&out, arg);
    }
    for (const struct cmt_stackcount_cache *c =
             atomic_load_explicit(&sc.all, memory_order_acquire);
         c; c = c->all_next) {
        for (uint32_t i = 0; i < CACHE_SLOTS; i++) {
            const struct cmt_stackcount_slot *s = &c->slot[i];
            uint64_t key = atomic_load_explicit(&s->key, memory_order_acquire);
            if (!key)
                continue;
            struct cmt_stackcount_entry out = {
                .name = cmt_stackcount_key_name(key),
                .stack = (uint32_t)key,
                .allocs = atomic_load_explicit(&s->allocs, memory_order_relaxed),
                .bytes = atomic_load_explicit(&s->bytes, memory_order_relaxed),
            };
            /* The owner moved on to another key meanwhile: these counts may be its. */
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&s->key, memory_order_relaxed) != key || !out.allocs)
                continue;
            fn(&out, arg);
        }
    }
}
