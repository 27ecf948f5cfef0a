/*
 * table.c — address-keyed tables of blocks: the live-block table and the quarantine.
 *
 * Owns the sharded open-addressing hash tables. Each shard has its own spinlock and grows by
 * doubling on its own, so no lock is shared by all threads and a resize pauses only the
 * threads that touch that shard. Slots come from mmap (rawmem.c), never from the tracked
 * allocator. Never calls stdio; the only system calls are mmap/munmap when a shard grows.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cmt.h"

struct cmt_table cmt_live;

#define SHARD_MIN_SLOTS 256u
/* Grow at 50% load: linear probing stays short and the table stays under 2×32 B a block. */
#define SHARD_MAX_LOAD_NUM 1u
#define SHARD_MAX_LOAD_DEN 2u

/* Where a block goes. Blocks an allocator hands out one after another lie next to each
 * other, so the table keeps them next to each other too: the 64 KiB region of an address
 * picks its shard and a pseudo-random base slot, and within the region slots follow the
 * address (one slot per 16-byte granule). A heap that grows then touches one new cache line
 * of the table every few blocks, not one per block; regions' random bases keep the probe
 * runs of different regions apart. */
#define GRANULE_SHIFT 4

static inline uint32_t slot_of(const struct cmt_shard *s, uintptr_t ptr)
{
    return (uint32_t)((ptr >> GRANULE_SHIFT) + (cmt_table_region_hash(ptr) >> 24)) & s->mask;
}

/* Finds ptr's slot, or the empty slot where it would go. The shard must be locked and have
 * slots. */
static inline uint32_t probe(const struct cmt_shard *s, uintptr_t ptr)
{
    uint32_t i = slot_of(s, ptr);
    while (s->slots[i].ptr != 0 && s->slots[i].ptr != ptr)
        i = (i + 1) & s->mask;
    return i;
}

/* Doubles the shard (or gives it its first slots). Called with the shard locked; on failure
 * the shard is left as it was. */
static CMT_NOINLINE bool shard_grow(struct cmt_shard *s)
{
    uint32_t old_cap = s->slots ? s->mask + 1 : 0;
    uint32_t new_cap = old_cap ? old_cap * 2 : SHARD_MIN_SLOTS;
    if (new_cap == 0)       /* 2^32 slots in one shard: nothing sane is that large */
        return false;
    int saved_errno = errno;
    struct cmt_block *slots = cmt_raw_map((size_t)new_cap * sizeof *slots);
    errno = saved_errno;
    if (!slots)
        return false;

    struct cmt_block *old = s->slots;
    s->slots = slots;
    s->mask = new_cap - 1;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].ptr == 0)
            continue;
        uint32_t j = probe(s, old[i].ptr);
        s->slots[j] = old[i];
    }
    if (old) {
        cmt_raw_unmap(old, (size_t)old_cap * sizeof *old);
        errno = saved_errno;
    }
    return true;
}

bool cmt_shard_insert(struct cmt_table *tab, struct cmt_shard *s, const struct cmt_block *b)
{
    if (cmt_unlikely(!s->slots ||
                     (uint64_t)(s->count + 1) * SHARD_MAX_LOAD_DEN >
                         (uint64_t)(s->mask + 1) * SHARD_MAX_LOAD_NUM)) {
        if (!shard_grow(s) && (!s->slots || s->count + 1 > s->mask)) {
            if (!atomic_exchange(&tab->oom_said, 1))
                cmt_diag("out of memory for the block table; new blocks go untracked");
            return false;
        }
    }
    uint32_t i = probe(s, b->ptr);
    if (s->slots[i].ptr == 0)
        s->count++;
    s->slots[i] = *b;
    return true;
}

/* Deletes slot i by shifting later members of its probe run back, so that no tombstones are
 * needed and lookups stay as short as the load allows. */
static void delete_slot(struct cmt_shard *s, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & s->mask;
        if (s->slots[j].ptr == 0)
            break;
        uint32_t home = slot_of(s, s->slots[j].ptr);
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i].ptr = 0;
    s->count--;
}

void cmt_shard_replace(struct cmt_shard *s, const struct cmt_block *b)
{
    s->slots[probe(s, b->ptr)] = *b;
}

bool cmt_shard_remove(struct cmt_shard *s, uintptr_t ptr, uint32_t instance,
                      struct cmt_block *out)
{
    if (cmt_unlikely(!s->slots))
        return false;
    uint32_t i = probe(s, ptr);
    if (s->slots[i].ptr != ptr || (instance != UINT32_MAX && s->slots[i].instance != instance))
        return false;
    *out = s->slots[i];
    delete_slot(s, i);
    return true;
}

bool cmt_table_insert(struct cmt_table *tab, const struct cmt_block *b)
{
    struct cmt_shard *s = cmt_table_lock_ptr(tab, b->ptr);
    bool ok = cmt_shard_insert(tab, s, b);
    cmt_shard_unlock(s);
    return ok;
}

bool cmt_table_remove(struct cmt_table *tab, uintptr_t ptr, struct cmt_block *out)
{
    struct cmt_shard *s = cmt_table_lock_ptr(tab, ptr);
    bool found = cmt_shard_remove(s, ptr, UINT32_MAX, out);
    cmt_shard_unlock(s);
    return found;
}

bool cmt_table_remove_owned(struct cmt_table *tab, uintptr_t ptr, uint32_t instance,
                            struct cmt_block *out)
{
    struct cmt_shard *s = cmt_table_lock_ptr(tab, ptr);
    bool found = cmt_shard_remove(s, ptr, instance, out);
    cmt_shard_unlock(s);
    return found;
}

bool cmt_table_lookup_locked(struct cmt_shard *s, uintptr_t ptr, struct cmt_block *out)
{
    if (!s->slots)
        return false;
    uint32_t i = probe(s, ptr);
    if (s->slots[i].ptr != ptr)
        return false;
    *out = s->slots[i];
    return true;
}

/* For bulk.c's walks (a close's bulk-free, the quarantine's eviction): their addresses come
 * in the order the program allocated them, which no hardware prefetcher follows, so each
 * lookup would wait for memory. The slot after is asked for too: a removal looks at it
 * (delete_slot), and it is in the next cache line for every other slot. The caller holds
 * s's lock. */
void cmt_shard_prefetch(const struct cmt_shard *s, uintptr_t ptr)
{
    if (s->slots) {
        uint32_t i = slot_of(s, ptr);
        __builtin_prefetch(&s->slots[i], 1);
        __builtin_prefetch(&s->slots[(i + 1) & s->mask], 1);
    }
}

bool cmt_table_lookup(struct cmt_table *tab, uintptr_t ptr, struct cmt_block *out)
{
    struct cmt_shard *s = cmt_table_lock_ptr(tab, ptr);
    bool found = cmt_table_lookup_locked(s, ptr, out);
    cmt_shard_unlock(s);
    return found;
}

void cmt_table_foreach(struct cmt_table *tab,
                       void (*fn)(const struct cmt_block *b, void *arg), void *arg)
{
    for (size_t k = 0; k < CMT_TABLE_SHARDS; k++) {
        struct cmt_shard *s = &tab->shard[k];
        cmt_spin_lock(&s->lock);
        if (s->slots)
            for (uint32_t i = 0; i <= s->mask; i++)
                if (s->slots[i].ptr != 0)
                    fn(&s->slots[i], arg);
        cmt_spin_unlock(&s->lock);
    }
}

size_t cmt_table_count_live(struct cmt_table *tab)
{
    size_t n = 0;
    for (size_t k = 0; k < CMT_TABLE_SHARDS; k++)
        n += __atomic_load_n(&tab->shard[k].count, __ATOMIC_RELAXED) -
             __atomic_load_n(&tab->shard[k].quarantined, __ATOMIC_RELAXED);
    return n;
}

size_t cmt_table_count(struct cmt_table *tab)
{
    size_t n = 0;
    for (size_t k = 0; k < CMT_TABLE_SHARDS; k++)
        n += __atomic_load_n(&tab->shard[k].count, __ATOMIC_RELAXED);
    return n;
}

void cmt_table_lock_all(struct cmt_table *tab)
{
    for (size_t k = 0; k < CMT_TABLE_SHARDS; k++)
        cmt_spin_lock(&tab->shard[k].lock);
}

void cmt_table_unlock_all(struct cmt_table *tab)
{
    for (size_t k = 0; k < CMT_TABLE_SHARDS; k++)
        cmt_spin_unlock(&tab->shard[k].lock);
}
