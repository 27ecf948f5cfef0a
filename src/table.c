/*
 * table.c — address-keyed tables of blocks: the live-block table and the quarantine.
 *
 * Owns the sharded open-addressing hash tables. Each shard has its own spinlock and grows by
 * doubling on its own, so no lock is shared by all threads and a resize pauses only the
 * threads that touch that shard. Slots come from mmap (rawmem.c), never from the tracked
 * allocator. Never calls stdio; the only system calls are the memory mapping calls of a
 * shard's growth (mmap, mprotect, madvise, munmap).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "cmt.h"

struct cmt_table cmt_live;

#define SHARD_MIN_SLOTS 256u

/* Growing in place. A shard that moved to a new mapping at each doubling, as it once did,
 * gave the old one back with munmap, whose TLB flush made it the dearest system call the
 * tracker makes: 6178 of them took 0.75 s of a 7 s run of xmllint over 6 million blocks
 * (strace -c). So a shard that moves reserves address space for SPAN_GROWTH times the
 * slots it needs, and doubles in place until it has filled them: the new half is committed,
 * the old half copied to the table's scratch array and rehashed back from there. A shard
 * then moves once in four doublings; the reserve costs address space, never memory, at most
 * SPAN_GROWTH times the table's size (8: a factor of 16 moved no less often in that run of
 * xmllint, whose shards end at 16384 slots). Where the address space is limited (RLIMIT_AS) or
 * refused, the shard takes a mapping of exactly its size, as before. */
#define SPAN_GROWTH 8u

/* Copies the old_cap slots of s to the scratch array and empties them; NULL, with nothing
 * changed, when the scratch array cannot grow to old_cap. Returns with the scratch lock
 * held when it succeeds. */
static struct cmt_block *to_scratch(struct cmt_table *tab, struct cmt_shard *s,
                                    uint32_t old_cap)
{
    cmt_spin_lock(&tab->scratch_lock);
    if (tab->scratch_cap < old_cap) {
        struct cmt_block *bigger = cmt_raw_map((size_t)old_cap * sizeof *bigger);
        if (!bigger) {
            cmt_spin_unlock(&tab->scratch_lock);
            return NULL;
        }
        if (tab->scratch)
            cmt_raw_unmap(tab->scratch, (size_t)tab->scratch_cap * sizeof *bigger);
        tab->scratch = bigger;
        tab->scratch_cap = old_cap;
    }
    memcpy(tab->scratch, s->slots, (size_t)old_cap * sizeof *s->slots);
    memset(s->slots, 0, (size_t)old_cap * sizeof *s->slots);
    return tab->scratch;
}

/* Puts every block of from[0, n) in s, whose slots are empty. */
static void rehash_from(struct cmt_shard *s, const struct cmt_block *from, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (from[i].ptr != 0)
            s->slots[cmt_shard_probe(s, from[i].ptr)] = from[i];
}

/* Doubles s in its span; false, with s as it was, when the span is full or no memory. */
static bool grow_in_span(struct cmt_table *tab, struct cmt_shard *s, uint32_t old_cap,
                         uint32_t new_cap)
{
    if (!s->slots || new_cap > s->span)
        return false;
    if (!cmt_raw_commit(s->slots + old_cap, (size_t)(new_cap - old_cap) * sizeof *s->slots))
        return false;
    struct cmt_block *old = to_scratch(tab, s, old_cap);
    if (!old)
        return false;   /* the committed half stays, unused until the next try */
    s->mask = new_cap - 1;
    rehash_from(s, old, old_cap);
    cmt_spin_unlock(&tab->scratch_lock);
    return true;
}

/* Under a limit on the address space, a reserve would take room the program may need: with
 * the old library, xmllint over 6 million blocks ran under `ulimit -v 2500000`; with reserves
 * it ran out of memory at 438 MB. */
static bool address_space_limited(void)
{
    int saved_errno = errno;
    struct rlimit lim;
    bool limited = getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur != RLIM_INFINITY;
    errno = saved_errno;
    return limited;
}

/* Moves s, doubled (or with its first slots), to a new span. */
static bool grow_moving(struct cmt_shard *s, uint32_t old_cap, uint32_t new_cap)
{
    uint32_t span = new_cap <= UINT32_MAX / SPAN_GROWTH && !address_space_limited()
                        ? new_cap * SPAN_GROWTH
                        : new_cap;
    size_t slot_size = sizeof *s->slots;
    struct cmt_block *slots = span > new_cap ? cmt_raw_reserve((size_t)span * slot_size) : NULL;
    if (slots && !cmt_raw_commit(slots, (size_t)new_cap * slot_size)) {
        cmt_raw_unmap(slots, (size_t)span * slot_size);
        slots = NULL;
    }
    if (!slots) {
        span = new_cap;
        slots = cmt_raw_map((size_t)new_cap * slot_size);
        if (!slots)
            return false;
    }
    struct cmt_block *old = s->slots;
    uint32_t old_span = s->span;
    s->slots = slots;
    s->span = span;
    s->mask = new_cap - 1;
    rehash_from(s, old, old_cap);
    if (old)
        cmt_raw_unmap(old, (size_t)old_span * slot_size);
    return true;
}

/* Doubles the shard (or gives it its first slots). Called with the shard locked; on failure
 * the shard is left as it was. */
static CMT_NOINLINE bool shard_grow(struct cmt_table *tab, struct cmt_shard *s)
{
    uint32_t old_cap = s->slots ? s->mask + 1 : 0;
    uint32_t new_cap = old_cap ? old_cap * 2 : SHARD_MIN_SLOTS;
    if (new_cap == 0)       /* 2^32 slots in one shard: nothing sane is that large */
        return false;
    if (!grow_in_span(tab, s, old_cap, new_cap) && !grow_moving(s, old_cap, new_cap))
        return false;
    s->room = (uint32_t)((uint64_t)new_cap * CMT_SHARD_MAX_LOAD_NUM / CMT_SHARD_MAX_LOAD_DEN);
    return true;
}

bool cmt_shard_make_room(struct cmt_table *tab, struct cmt_shard *s)
{
    if (shard_grow(tab, s))
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
