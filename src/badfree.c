/*
 * badfree.c — the frees the tracker refused (invalid, double, stale), counted by kind, stack
 * and scope, for the report's BADFREE records and totals.
 *
 * Owns one fixed table in static storage, filled by compare-and-swap only: recording never
 * takes a lock, never allocates and never waits, so it is safe inside the hooks and from a
 * signal handler. When the table is full or a probe run is too long, the free is still
 * counted, in a per-kind overflow bucket without a stack.
 */
#include "config.h"

#include "cmt.h"

/* Distinct (kind, stack, scope) keys kept; a program with more kinds of bad frees than this
 * has a problem the first thousand will show. */
#define BADFREE_SLOTS 1024u
/* Probes before a key gives up and counts in the overflow bucket: keeps a full table cheap. */
#define BADFREE_PROBES 32u
#define BADFREE_KINDS 3u

/* A key packs the kind, the scope name and the stack id into one word, so that a slot is
 * claimed by a single compare-and-swap. Bit 63 marks a used slot; names are below
 * CMT_NAME_MAX, so 16 bits hold them, with 0xffff standing for "no scope". */
#define KEY_USED (UINT64_C(1) << 63)
#define KEY_NO_NAME 0xffffu

struct slot {
    atomic_ullong key;          /* 0 while empty */
    atomic_ullong count;        /* 0 until the first free under this key is counted */
    atomic_uintptr_t sample;    /* the address of the first such free */
};

static struct {
    struct slot slot[BADFREE_SLOTS];
    struct slot overflow[BADFREE_KINDS];
    atomic_ullong total[BADFREE_KINDS];
} bf;

static uint64_t make_key(enum cmt_badfree_kind kind, uint32_t stack, uint32_t name)
{
    uint64_t n = name < KEY_NO_NAME ? name : KEY_NO_NAME;
    return KEY_USED | ((uint64_t)kind << 48) | (n << 32) | stack;
}

static void count_in(struct slot *s, uintptr_t ptr)
{
    /* The sample is stored before the count is published, so a reader that sees a count
     * sees an address with it (or an address from a concurrent free of the same key). */
    uintptr_t none = 0;
    atomic_compare_exchange_strong_explicit(&s->sample, &none, ptr, memory_order_relaxed,
                                            memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_release);
}

void cmt_badfree_record(enum cmt_badfree_kind kind, uintptr_t ptr, uint32_t stack,
                        uint32_t name)
{
    if ((unsigned)kind >= BADFREE_KINDS)
        return;
    atomic_fetch_add_explicit(&bf.total[kind], 1, memory_order_relaxed);
    uint64_t key = make_key(kind, stack, name);
    uint32_t home = (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 54) &
                    (BADFREE_SLOTS - 1);
    for (uint32_t n = 0; n < BADFREE_PROBES; n++) {
        struct slot *s = &bf.slot[(home + n) & (BADFREE_SLOTS - 1)];
        /* The type of the atomic (unsigned long long), not uint64_t (unsigned long). */
        unsigned long long seen = atomic_load_explicit(&s->key, memory_order_acquire);
        if (seen == 0) {
            if (atomic_compare_exchange_strong_explicit(&s->key, &seen, key,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                count_in(s, ptr);
                return;
            }
            /* Another free claimed it first: seen now holds its key. */
        }
        if (seen == key) {
            count_in(s, ptr);
            return;
        }
    }
    count_in(&bf.overflow[kind], ptr);
}

uint64_t cmt_badfree_total(enum cmt_badfree_kind kind)
{
    if ((unsigned)kind >= BADFREE_KINDS)
        return 0;
    return atomic_load_explicit(&bf.total[kind], memory_order_relaxed);
}

void cmt_badfree_foreach(void (*fn)(const struct cmt_badfree_entry *e, void *arg), void *arg)
{
    uint64_t extra[BADFREE_KINDS];
    uintptr_t extra_sample[BADFREE_KINDS];
    for (uint32_t k = 0; k < BADFREE_KINDS; k++) {
        extra[k] = atomic_load_explicit(&bf.overflow[k].count, memory_order_acquire);
        extra_sample[k] = atomic_load_explicit(&bf.overflow[k].sample, memory_order_relaxed);
    }
    /* The overflow of a kind joins that kind's (no stack, no scope) entry when there is one,
     * so that a reader never sees one key twice. */
    for (uint32_t i = 0; i < BADFREE_SLOTS; i++) {
        const struct slot *s = &bf.slot[i];
        uint64_t key = atomic_load_explicit(&s->key, memory_order_acquire);
        uint64_t count = atomic_load_explicit(&s->count, memory_order_acquire);
        if (key == 0 || count == 0)
            continue;
        struct cmt_badfree_entry e = {
            .kind = (enum cmt_badfree_kind)((key >> 48) & 0xff),
            .stack = (uint32_t)key,
            .name = ((key >> 32) & 0xffff) == KEY_NO_NAME ? UINT32_MAX
                                                           : (uint32_t)((key >> 32) & 0xffff),
            .count = count,
            .sample = atomic_load_explicit(&s->sample, memory_order_relaxed),
        };
        if (e.stack == 0 && e.name == UINT32_MAX && extra[e.kind]) {
            e.count += extra[e.kind];
            extra[e.kind] = 0;
        }
        fn(&e, arg);
    }
    for (uint32_t k = 0; k < BADFREE_KINDS; k++) {
        if (!extra[k])
            continue;
        struct cmt_badfree_entry e = {
            .kind = (enum cmt_badfree_kind)k,
            .stack = 0,
            .name = UINT32_MAX,
            .count = extra[k],
            .sample = extra_sample[k],
        };
        fn(&e, arg);
    }
}
