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
    s->room = (uint32_t)((uint64_t)new_cap * CMT_SHARD_MAX_LOAD_NUM / CMT_SHARD_MAX_LOAD_DEN);
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].ptr == 0)
            continue;
        uint32_t j = cmt_shard_probe(s, old[i].ptr);
        s->slots[j] = old[i];
    }
    if (old) {
        cmt_raw_unmap(old, (size_t)old_cap * sizeof *old);
        errno = saved_errno;
    }
    return true;
}

bool cmt_shard_make_room(struct cmt_table *tab, struct cmt_shard *s)
{
    if (shard_grow(s))
        return true;
    if (s->slots && s->count + 1 <= s->mask) {
        s->room = s->count + 1;     /* fuller than the limit, and growing again next time */
        return true;
    }
    if (!atomic_exchange(&tab->oom_said, 1))
        cmt_diag("out of memory for the block table; new blocks go untracked");
    return false;
}

bool cmt_shard_insert(struct cmt_table *tab, struct cmt_shard *s, const struct cmt_block *b)
{
    struct cmt_block *slot = cmt_shard_claim(tab, s, b->ptr);
    if (!slot)
        return false;
    *slot = *b;
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
        uint32_t home = cmt_shard_home(s, s->slots[j].ptr);
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

void cmt_shard_delete(struct cmt_shard *s, const struct cmt_block *slot)
{
    delete_slot(s, (uint32_t)(slot - s->slots));
}

bool cmt_shard_remove(struct cmt_shard *s, uintptr_t ptr, uint32_t instance,
                      struct cmt_block *out)
{
    struct cmt_block *slot = cmt_shard_find(s, ptr);
    if (!slot || (instance != UINT32_MAX && slot->instance != instance))
        return false;
    *out = *slot;
    cmt_shard_delete(s, slot);
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

/* For bulk.c's walks (a close's bulk-free, the quarantine's eviction): their addresses come
 * in the order the program allocated them, which no hardware prefetcher follows, so each
 * lookup would wait for memory. The slot after is asked for too: a removal looks at it
 * (delete_slot), and it is in the next cache line for every other slot. The caller holds
 * s's lock. */
void cmt_shard_prefetch(const struct cmt_shard *s, uintptr_t ptr)
{
    if (s->slots) {
        uint32_t i = cmt_shard_home(s, ptr);
        __builtin_prefetch(&s->slots[i], 1);
        __builtin_prefetch(&s->slots[(i + 1) & s->mask], 1);
    }
}

bool cmt_table_lookup(struct cmt_table *tab, uintptr_t ptr, struct cmt_block *out)
{
    struct cmt_shard *s = cmt_table_lock_ptr(tab, ptr);
    const struct cmt_block *slot = cmt_shard_find(s, ptr);
    if (slot)
        *out = *slot;
    cmt_shard_unlock(s);
    return slot != NULL;
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
