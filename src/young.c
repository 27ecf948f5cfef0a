/*
 * young.c — a single-threaded process's newest blocks, kept out of the live table.
 *
 * Owns the young slots (cmt.h says why they exist and who reads them) and every move of a
 * block from them to the table. The hot path that fills and empties them is in hooks.c,
 * inline; this file holds what runs rarely: eviction, the move of every block when a second
 * thread appears, the blocks of a closing scope instance, and the report's walk. Never
 * allocates through the tracked allocator; takes only shard locks, after its own.
 */
#include "config.h"

#include "cmt.h"

struct cmt_young cmt_young = { .target_id = UINT32_MAX };

/* The count of an instance's young blocks changes here, for a flush, on whatever thread
 * first saw a second one; the owner reads it when it closes the instance. */
static void count_out(const struct cmt_block *b)
{
    struct cmt_instance *inst = cmt_instance_get(b->instance);
    __atomic_store_n(&inst->young_blocks, __atomic_load_n(&inst->young_blocks,
                                                          __ATOMIC_RELAXED) - 1,
                     __ATOMIC_RELAXED);
}

void cmt_young_evict(struct cmt_block *b)
{
    count_out(b);
    struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, b->ptr);
    bool moved = cmt_shard_insert(&cmt_live, s, b);
    cmt_shard_unlock(s);
    if (!moved)
        cmt_hooks_untracked_add((void *)b->ptr);
    __atomic_store_n(&b->ptr, 0, __ATOMIC_RELAXED);
}

void cmt_young_drop(struct cmt_block *b)
{
    count_out(b);
    __atomic_store_n(&b->ptr, 0, __ATOMIC_RELAXED);
}

/* Moves the blocks of inst (of every instance for NULL) to the table. */
static void move_blocks(struct cmt_instance *inst)
{
    cmt_spin_lock(&cmt_young.lock);
    for (uint32_t i = 0;
         i < CMT_YOUNG_SLOTS && (!inst || __atomic_load_n(&inst->young_blocks, __ATOMIC_RELAXED));
         i++) {
        struct cmt_block *b = &cmt_young.slot[i];
        if (b->ptr != 0 && (!inst || b->instance == inst->id))
            cmt_young_evict(b);
    }
    if (!inst)
        __atomic_store_n(&cmt_young.any, false, __ATOMIC_RELAXED);
    cmt_spin_unlock(&cmt_young.lock);
}

static void forget_target(void)
{
    cmt_young.target = NULL;
    cmt_young.target_id = UINT32_MAX;
}

void cmt_young_set_target(struct cmt_instance *inst)
{
    cmt_young.target_far =
        atomic_load_explicit(&inst->far_bytes_allocated, memory_order_relaxed) -
        atomic_load_explicit(&inst->far_bytes_freed, memory_order_relaxed);
    cmt_young.target_id = inst->id;
    cmt_young.target = inst;
}

void cmt_young_flush(void)
{
    forget_target();
    if (__atomic_load_n(&cmt_young.any, __ATOMIC_ACQUIRE))
        move_blocks(NULL);
}

void cmt_young_release(struct cmt_instance *inst)
{
    if (cmt_young.target == inst)
        forget_target();
    /* Most instances close with none: a scope that freed what it made closes without a
     * walk of the slots. */
    if (__atomic_load_n(&inst->young_blocks, __ATOMIC_RELAXED))
        move_blocks(inst);
}

void cmt_young_retarget(void)
{
    forget_target();
}

void cmt_young_foreach(void (*fn)(const struct cmt_block *b, void *arg), void *arg)
{
    if (!__atomic_load_n(&cmt_young.any, __ATOMIC_ACQUIRE))
        return;
    /* A slot's other fields are written before its ptr, which is emptied before they are
     * rewritten. A signal handler's walk is whole, then: the writer it interrupted cannot go
     * on meanwhile. (With several threads, the report settles before it walks.) */
    for (uint32_t i = 0; i < CMT_YOUNG_SLOTS; i++) {
        uintptr_t ptr = __atomic_load_n(&cmt_young.slot[i].ptr, __ATOMIC_RELAXED);
        if (!ptr)
            continue;
        atomic_signal_fence(memory_order_acquire);
        struct cmt_block b = cmt_young.slot[i];
        b.ptr = ptr;
        fn(&b, arg);
    }
}

static void count_one(const struct cmt_block *b, void *arg)
{
    (void)b;
    ++*(size_t *)arg;
}

size_t cmt_young_count(void)
{
    size_t n = 0;
    cmt_young_foreach(count_one, &n);
    return n;
}

void cmt_young_lock(void)
{
    cmt_spin_lock(&cmt_young.lock);
}

void cmt_young_unlock(void)
{
    cmt_spin_unlock(&cmt_young.lock);
}
