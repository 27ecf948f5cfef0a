/*
 * hooks.c — the interposed malloc family.
 *
 * Owns every exported allocation entry point, the lookup of the next allocator (dlsym with
 * RTLD_NEXT, so another preloaded allocator still serves), the static bootstrap area that
 * serves dlsym's own allocations, and the set of blocks handed out while the tracker itself
 * was busy. Never calls stdio, never allocates through the tracked allocator, and never holds
 * a lock while calling the next allocator.
 *
 * Ordering rules: an allocation is recorded after the next allocator returned it, and a free
 * is recorded before the next allocator sees it, because after that another thread may be
 * handed the same address.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmt.h"

struct cmt_next cmt_next;
atomic_ullong cmt_invalid_frees, cmt_double_frees, cmt_stale_frees;

/* ---- the bootstrap area: dlsym may call calloc before the next allocator is known ----- */

#define BOOTSTRAP_SIZE (64 * 1024)
#define BOOTSTRAP_HEADER 16     /* the block's size, kept for realloc and malloc_usable_size */

static struct {
    _Alignas(4096) char area[BOOTSTRAP_SIZE];
    atomic_size_t used;
} boot;

static bool in_bootstrap(const void *p)
{
    return (const char *)p >= boot.area && (const char *)p < boot.area + BOOTSTRAP_SIZE;
}

static void *bootstrap_alloc(size_t size, size_t align)
{
    if (align < BOOTSTRAP_HEADER)
        align = BOOTSTRAP_HEADER;
    size_t used = atomic_load(&boot.used);
    for (;;) {
        size_t start = (used + BOOTSTRAP_HEADER + align - 1) & ~(align - 1);
        if (size > BOOTSTRAP_SIZE || start + size > BOOTSTRAP_SIZE) {
            static const char msg[] =
                "cymemtrack: bootstrap area exhausted while resolving the allocator\n";
            ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
            (void)ignored;
            errno = ENOMEM;
            return NULL;
        }
        if (atomic_compare_exchange_weak(&boot.used, &used, start + size)) {
            memcpy(boot.area + start - sizeof(size_t), &size, sizeof size);
            return boot.area + start;   /* static storage: already zeroed, fine for calloc */
        }
    }
}

static size_t bootstrap_size(const void *p)
{
    size_t size;
    memcpy(&size, (const char *)p - sizeof size, sizeof size);
    return size;
}

/* ---- resolving the next allocator -------------------------------------------------- */

atomic_int cmt_resolved;

/* Looks every function up before publishing any, so that a nested call made by dlsym itself
 * never finds a half-filled table: until cmt_resolved is set it is served from the bootstrap
 * area. */
void cmt_hooks_resolve(void)
{
    struct cmt_next next;
#define RESOLVE(name) (next.name = (__typeof__(next.name))dlsym(RTLD_NEXT, #name))
    RESOLVE(malloc);
    RESOLVE(calloc);
    RESOLVE(realloc);
    RESOLVE(free);
    RESOLVE(posix_memalign);
    RESOLVE(aligned_alloc);
    RESOLVE(memalign);
    RESOLVE(valloc);
    RESOLVE(pvalloc);
    RESOLVE(malloc_usable_size);
#undef RESOLVE
    if (!next.malloc || !next.calloc || !next.realloc || !next.free || !next.posix_memalign ||
        !next.aligned_alloc || !next.memalign || !next.valloc || !next.pvalloc ||
        !next.malloc_usable_size) {
        static const char msg[] =
            "cymemtrack: cannot find the next allocator with dlsym(RTLD_NEXT); giving up\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(127);     /* without an allocator nothing can run; this cannot be ignored */
    }
    cmt_next = next;
    atomic_store_explicit(&cmt_resolved, 1, memory_order_release);
}

/* ---- blocks handed out while the tracker was busy ----------------------------------- */

/* A nested call (a signal handler allocating inside our hook, or a library we call that
 * allocates) is served by the next allocator without being recorded, because recording
 * could need a lock this thread already holds. The block's address goes here, so that its
 * free is recognized and handed on instead of being reported as invalid. Lock-free. */
#define UNTRACKED_SLOTS 4096u
#define UNTRACKED_GONE ((uintptr_t)1)

static struct {
    atomic_uintptr_t slot[UNTRACKED_SLOTS];
    atomic_int full_said;
} untracked;

static uint32_t untracked_home(uintptr_t p)
{
    return (uint32_t)(((uint64_t)(p >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 52) &
           (UNTRACKED_SLOTS - 1);
}

void cmt_hooks_untracked_add(void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    uint32_t home = untracked_home(p);
    for (uint32_t n = 0; n < UNTRACKED_SLOTS; n++) {
        atomic_uintptr_t *s = &untracked.slot[(home + n) & (UNTRACKED_SLOTS - 1)];
        uintptr_t v = atomic_load_explicit(s, memory_order_relaxed);
        if ((v == 0 || v == UNTRACKED_GONE) && atomic_compare_exchange_strong(s, &v, p))
            return;
    }
    if (!atomic_exchange(&untracked.full_said, 1))
        cmt_diag("too many blocks allocated from inside the tracker; some of their frees "
                 "will be reported as invalid");
}

static bool untracked_find(void *ptr, bool take)
{
    uintptr_t p = (uintptr_t)ptr;
    uint32_t home = untracked_home(p);
    for (uint32_t n = 0; n < UNTRACKED_SLOTS; n++) {
        atomic_uintptr_t *s = &untracked.slot[(home + n) & (UNTRACKED_SLOTS - 1)];
        uintptr_t v = atomic_load_explicit(s, memory_order_relaxed);
        if (v == 0)
            return false;
        if (v == p && (!take || atomic_compare_exchange_strong(s, &v, UNTRACKED_GONE)))
            return true;
    }
    return false;
}

static bool untracked_take(void *ptr)
{
    return untracked_find(ptr, true);
}

/* ---- recently freed addresses, to tell a double free from an invalid one ------------- */

#define GRAVEYARD_SLOTS 16384u
static atomic_uintptr_t graveyard[GRAVEYARD_SLOTS];

static inline atomic_uintptr_t *grave_of(uintptr_t p)
{
    return &graveyard[((uint64_t)(p >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 50];
}

/* ---- recording ---------------------------------------------------------------------- */

static atomic_int bad_free_budget = 20;
static atomic_int custom_free_budget = 5;

static CMT_NOINLINE struct cmt_instance *owner_slow(struct cmt_thread *t)
{
    if (t->state == CMT_THREAD_NEW)
        cmt_thread_attach(t);
    struct cmt_instance *inst = t->state == CMT_THREAD_LIVE ? t->top : cmt_instance_shared();
    /* func: entries whose function could not be hooked: their calls are found on the stack. */
    if (atomic_load_explicit(&cmt_envscope_inspect, memory_order_relaxed) &&
        t->state == CMT_THREAD_LIVE)
        inst = cmt_envscope_owner(t, inst);
    struct cmt_instance *w = atomic_load_explicit(&cmt_window, memory_order_relaxed);
    return w && inst->kind == CMT_KIND_GLOBAL ? w : inst;
}

/* Records p, just returned by an allocator for size bytes, in inst. The table entry, the
 * scope's counters and the per-stack count change in one critical section of p's shard, so
 * that fork, which holds every shard lock, never sees one without the others. */
static inline __attribute__((always_inline)) bool record_alloc_in(struct cmt_thread *t,
                                                                  struct cmt_instance *inst,
                                                                  void *p, size_t size,
                                                                  uint32_t flags)
{
    uint64_t size_thread =
        ((uint64_t)size & CMT_SIZE_MASK) | ((uint64_t)t->number << CMT_SIZE_BITS);
    uint32_t stack = cmt_cfg.stack_depth ? cmt_stack_capture() : 0;
    uint32_t seq = ++t->seq;
    struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, (uintptr_t)p);
    struct cmt_block *b = cmt_shard_claim(&cmt_live, s, (uintptr_t)p);
    if (cmt_likely(b != NULL)) {
        b->ptr = (uintptr_t)p;
        b->size_thread = size_thread;
        b->instance = inst->id;
        b->stack = stack;
        b->seq = seq;
        b->flags = flags;
        cmt_instance_count_alloc(t, inst, size);
        cmt_stackcount_note(t, inst, stack, size);
    }
    cmt_shard_unlock(s);
    if (cmt_unlikely(b == NULL))
        return false;
    cmt_totals_alloc(t, size);
    if (cmt_unlikely(inst->flags & CMT_INST_BULK))
        cmt_bulk_note(inst, (uintptr_t)p);
    cmt_checkpoint_poll();
    return true;
}

bool cmt_record_alloc_in(struct cmt_thread *t, struct cmt_instance *inst, void *p, size_t size)
{
    return record_alloc_in(t, inst, p, size, inst->malloc_fn ? CMT_BLOCK_CUSTOM : 0);
}

/* ---- the young sets (young.c): each thread's newest blocks ------------------------- */

/* Fills slot b of t's young set, empty, with p's record in the target instance and counts
 * the allocation, per stack too when stacks are on (with stack 0 when none could be taken).
 * t is busy, has entered y, and the target is its innermost instance. */
static inline __attribute__((always_inline)) void young_fill(struct cmt_thread *t,
                                                             struct cmt_instance *inst,
                                                             struct cmt_block *b, uintptr_t p,
                                                             size_t size, uint32_t stack,
                                                             bool stacks_on)
{
    b->size_thread = ((uint64_t)size & CMT_SIZE_MASK) | ((uint64_t)t->number << CMT_SIZE_BITS);
    b->instance = inst->id;
    b->stack = stack;
    b->seq = ++t->seq;
    b->flags = 0;
    /* Published last: whoever sees p here sees the record whole. */
    __atomic_store_n(&b->ptr, p, __ATOMIC_RELEASE);
    /* A young block's instance is owned by this thread and open: checked when it became the
     * target, and a closing instance takes its blocks to the table. */
    inst->young_blocks++;
    cmt_instance_count_alloc_own(
        inst, size,
        atomic_load_explicit(&inst->far_bytes_allocated, memory_order_relaxed) -
            atomic_load_explicit(&inst->far_bytes_freed, memory_order_relaxed));
    if (stacks_on)
        cmt_stackcount_note(t, inst, stack, size);
    cmt_totals_alloc(t, size);
}

static void record_alloc_slow(struct cmt_thread *t, void *p, size_t size);

/* young_record's less common cases: a stack to capture, a slot that holds another block, or
 * a target that changed since the caller looked (a signal handler opened and closed a scope
 * meanwhile, or another thread forgot the target). */
static CMT_NOINLINE void young_record_hard(struct cmt_thread *t, struct cmt_young_set *y,
                                           void *p, size_t size)
{
    bool stacks_on = cmt_cfg.stack_depth != 0;
    uint32_t stack = 0;
    if (stacks_on) {
        /* Outside the change: an unwinder may wait on a lock that fork() holds. */
        cmt_young_leave(y);
        stack = cmt_stack_capture();
        cmt_young_enter(y);
    }
    struct cmt_instance *inst = atomic_load_explicit(&y->target, memory_order_relaxed);
    if (inst == NULL || inst != t->top) {
        cmt_young_leave(y);
        record_alloc_slow(t, p, size);
        cmt_young_enter(y);     /* the caller leaves */
        return;
    }
    uintptr_t u = (uintptr_t)p;
    struct cmt_block *b = cmt_young_slot(y, u);
    uintptr_t old = __atomic_load_n(&b->ptr, __ATOMIC_ACQUIRE);
    if (old != 0) {
        /* The same address again is a stale record (its block was freed while the tracker
         * was busy), dropped as the table would; another block goes to the table, and a
         * claimed slot is emptied. */
        if (old != u)
            cmt_young_evict(b);
        else
            cmt_young_drop(b);
    }
    young_fill(t, inst, b, u, size, stack, stacks_on);
}

/* Records p, just allocated for size bytes, in t's young set y, in its target instance. t
 * is busy and has entered y. */
static inline __attribute__((always_inline)) void young_record(struct cmt_thread *t,
                                                               struct cmt_young_set *y,
                                                               void *p, size_t size)
{
    uintptr_t u = (uintptr_t)p;
    struct cmt_block *b = cmt_young_slot(y, u);
    struct cmt_instance *inst = atomic_load_explicit(&y->target, memory_order_relaxed);
    /* t->top is not NULL: the caller saw it equal the target. */
    if (cmt_likely(b->ptr == 0 && cmt_cfg.stack_depth == 0 && inst == t->top))
        young_fill(t, inst, b, u, size, 0, false);
    else
        young_record_hard(t, y, p, size);
}

/* p's slot in t's young set when p is a young block this call may take (not a call made
 * from a signal handler that interrupted the tracker); else NULL. */
static inline struct cmt_block *young_find(const struct cmt_thread *t, uintptr_t p)
{
    struct cmt_young_set *y = t->young;
    if (!y || t->busy != 1)
        return NULL;
    struct cmt_block *b = cmt_young_slot(y, p);
    return __atomic_load_n(&b->ptr, __ATOMIC_RELAXED) == p ? b : NULL;
}

/* Empties slot b of t's young set, entered, and counts the free of its block. */
static inline __attribute__((always_inline)) void young_take(struct cmt_thread *t,
                                                             struct cmt_young_set *y,
                                                             struct cmt_block *b)
{
    uintptr_t p = b->ptr;
    size_t size = cmt_block_size(b);
    uint32_t id = b->instance;
    struct cmt_instance *inst = atomic_load_explicit(&y->target, memory_order_relaxed);
    if (cmt_unlikely(inst == NULL || inst->id != id))
        inst = cmt_instance_get(id);
    __atomic_store_n(&b->ptr, 0, __ATOMIC_RELEASE);
    /* Owned by this thread and open, as every young block's instance (see young_fill). */
    inst->young_blocks--;
    inst->own_frees++;
    inst->own_bytes_freed += size;
    cmt_totals_free(t, size);
    atomic_store_explicit(grave_of(p), p, memory_order_relaxed);
}

/* Ends t's change of its young set y, then polls the clocks: a checkpoint may write a
 * report, which is better done outside a change that fork() waits for. */
static inline __attribute__((always_inline)) void young_done(struct cmt_young_set *y)
{
    cmt_young_leave(y);
    cmt_checkpoint_poll();
}

/* Can the hot path record into inst, t's allocation owner? */
static bool young_eligible(const struct cmt_thread *t, const struct cmt_instance *inst)
{
    return t->busy == 1 && t->state == CMT_THREAD_LIVE && inst == t->top &&
           cmt_counts_as_owner(t, inst) && !(inst->flags & CMT_INST_BULK) &&
           !inst->malloc_fn &&
           !atomic_load_explicit(&cmt_envscope_inspect, memory_order_relaxed) &&
           !atomic_load_explicit(&cmt_window, memory_order_relaxed);
}

static CMT_NOINLINE void record_alloc_slow(struct cmt_thread *t, void *p, size_t size)
{
    /* A signal: window takes what would go to the global scope, so a global-scope
     * allocation looks at the window too. */
    struct cmt_instance *inst = t->top;
    if (t->state != CMT_THREAD_LIVE ||
        atomic_load_explicit(&cmt_envscope_inspect, memory_order_relaxed) ||
        (inst->kind == CMT_KIND_GLOBAL && atomic_load_explicit(&cmt_window, memory_order_relaxed)))
        inst = owner_slow(t);
    struct cmt_young_set *y;
    if (young_eligible(t, inst) && (y = cmt_young_acquire(t)) != NULL) {
        cmt_young_set_target(y, inst);
        cmt_young_enter(y);
        young_record(t, y, p, size);
        young_done(y);
        return;
    }
    if (cmt_unlikely(!record_alloc_in(t, inst, p, size, 0)))
        cmt_hooks_untracked_add(p);     /* no memory for the table: keep its free working */
}

static inline __attribute__((always_inline)) void record_alloc(struct cmt_thread *t, void *p,
                                                               size_t size)
{
    /* The common case: allocating in the scope this thread allocated in last time. */
    struct cmt_young_set *y = t->young;
    struct cmt_instance *inst = t->top;
    if (cmt_likely(y != NULL && inst != NULL &&
                   inst == atomic_load_explicit(&y->target, memory_order_relaxed))) {
        cmt_young_enter(y);
        young_record(t, y, p, size);
        young_done(y);
        return;
    }
    record_alloc_slow(t, p, size);
}

bool cmt_lookup_block(struct cmt_thread *t, void *p, struct cmt_block *out)
{
    uintptr_t u = (uintptr_t)p;
    struct cmt_block *yb = young_find(t, u);
    if (yb) {
        *out = *yb;
        return true;
    }
    /* Under the shard lock, which a move from a young set to the table takes too. */
    struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, u);
    struct cmt_block *b = cmt_shard_find(s, u);
    bool found = b != NULL;
    if (found)
        *out = *b;
    else
        found = cmt_young_peek(t, u, out);
    cmt_shard_unlock(s);
    return found;
}

/* Takes p out of the table, or claims it from another thread's young set, and counts its
 * free, in one critical section of its shard (see record_alloc_in), when p is a live block
 * of `instance` (of any, for UINT32_MAX). *free_fn gets the allocator the block goes back
 * to: NULL for the next allocator, else its scope's own. False when p is no such block. */
static inline __attribute__((always_inline)) bool take_table_block(struct cmt_thread *t,
                                                                   uintptr_t p,
                                                                   uint32_t instance,
                                                                   cmt_free_fn_t *free_fn)
{
    struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, p);
    struct cmt_block *b = cmt_shard_find(s, p);
    size_t size;
    struct cmt_instance *inst;
    if (cmt_likely(b != NULL)) {
        /* A quarantined block stays: the caller reports a stale free. */
        if ((instance != UINT32_MAX && b->instance != instance) ||
            cmt_unlikely(b->flags & CMT_BLOCK_QUARANTINED)) {
            cmt_shard_unlock(s);
            return false;
        }
        /* Read from the slot itself, not from a copy (see cmt_shard_claim). */
        size = cmt_block_size(b);
        inst = cmt_instance_get(b->instance);
        /* Read before the count: the last free of a closed instance lets it be reused. */
        *free_fn = cmt_unlikely(b->flags & CMT_BLOCK_CUSTOM) ? inst->free_fn : NULL;
        cmt_shard_delete(s, b);
    } else {
        /* Another thread's young block, handed over soon after it was made? */
        struct cmt_block rec;
        if (!cmt_young_claim(t, p, instance, &rec)) {
            cmt_shard_unlock(s);
            return false;
        }
        size = cmt_block_size(&rec);
        inst = cmt_instance_get(rec.instance);
        *free_fn = NULL;    /* young blocks come from the next allocator */
    }
    bool retire = cmt_instance_count_free(t, inst, size);
    cmt_shard_unlock(s);
    if (cmt_unlikely(retire))
        cmt_instance_retire(inst);
    cmt_totals_free(t, size);
    atomic_store_explicit(grave_of(p), p, memory_order_relaxed);
    cmt_checkpoint_poll();
    return true;
}

/* As take_table_block, for a block wherever it is: in t's young set, in the table or in
 * another thread's young set. */
static inline bool take_block(struct cmt_thread *t, uintptr_t p, uint32_t instance,
                              cmt_free_fn_t *free_fn)
{
    struct cmt_block *yb = young_find(t, p);
    if (cmt_likely(yb != NULL)) {
        if (instance != UINT32_MAX && yb->instance != instance)
            return false;
        *free_fn = NULL;    /* young blocks come from the next allocator */
        cmt_young_enter(t->young);
        young_take(t, t->young, yb);
        young_done(t->young);
        return true;
    }
    return take_table_block(t, p, instance, free_fn);
}

bool cmt_take_block(struct cmt_thread *t, void *p, uint32_t instance, cmt_free_fn_t *free_fn)
{
    return take_block(t, (uintptr_t)p, instance, free_fn);
}

void cmt_release(struct cmt_thread *t, void *p, cmt_free_fn_t free_fn)
{
    if (!free_fn) {
        cmt_next.free(p);
        return;
    }
    /* The scope's allocator may well call free(p) itself: that free must go through. */
    int busy = t->busy;
    void *expected = t->expect_free;
    t->busy = 0;
    t->expect_free = p;
    free_fn(p);
    t->expect_free = expected;
    t->busy = busy;
}

/* A block from a scope's own allocator, freed with plain free: it goes back to that
 * allocator, since the next allocator never saw it. */
static CMT_NOINLINE void free_custom(struct cmt_thread *t, void *p, cmt_free_fn_t free_fn)
{
    cmt_diag_limited(&custom_free_budget, "free of %p, a block from a scope's own allocator; "
                     "handed to that allocator (use cmt_scope_free)", p);
    cmt_release(t, p, free_fn);
}

/* A free or realloc of p that is not a live block. Returns true when p must be handed to the
 * next allocator after all (it was handed out while the tracker was busy, or a scope's own
 * allocator is giving it back). */
static CMT_NOINLINE bool free_unknown(struct cmt_thread *t, void *p, const char *what)
{
    if (in_bootstrap(p))
        return false;       /* served from the bootstrap area: nothing to give back */
    if (p == t->expect_free)
        return true;
    if (untracked_take(p))
        return true;
    uintptr_t u = (uintptr_t)p;
    uint32_t name;
    if (cmt_quarantine_find(u, &name)) {
        atomic_fetch_add_explicit(&cmt_stale_frees, 1, memory_order_relaxed);
        cmt_badfree_record(CMT_BADFREE_STALE, u, cmt_stack_capture(), name);
        cmt_diag_limited(&bad_free_budget, "%s of %p, which scope \"%s\" bulk-freed when it "
                         "closed; ignored", what, p, cmt_name_string(name));
    } else if (atomic_load_explicit(grave_of(u), memory_order_relaxed) == u) {
        atomic_fetch_add_explicit(&cmt_double_frees, 1, memory_order_relaxed);
        cmt_badfree_record(CMT_BADFREE_DOUBLE, u, cmt_stack_capture(), UINT32_MAX);
        cmt_diag_limited(&bad_free_budget, "double %s of %p; ignored", what, p);
    } else {
        atomic_fetch_add_explicit(&cmt_invalid_frees, 1, memory_order_relaxed);
        cmt_badfree_record(CMT_BADFREE_INVALID, u, cmt_stack_capture(), UINT32_MAX);
        cmt_diag_limited(&bad_free_budget, "%s of %p, which was never allocated; ignored",
                         what, p);
    }
    return false;
}

/* ---- slow paths: before init, during dlsym, and nested calls ------------------------ */

/* How a call that cannot be recorded is served. */
enum route { ROUTE_TRACK, ROUTE_BOOTSTRAP, ROUTE_FORWARD };

static CMT_NOINLINE enum route route_slow(struct cmt_thread *t)
{
    bool resolved = atomic_load_explicit(&cmt_resolved, memory_order_acquire);
    if (t->busy)
        return resolved ? ROUTE_FORWARD : ROUTE_BOOTSTRAP;
    int ready = atomic_load_explicit(&cmt_ready, memory_order_acquire);
    if (ready & CMT_READY_PENDING) {
        atomic_fetch_and(&cmt_ready, ~CMT_READY_PENDING);
        t->busy++;
        cmt_envscope_pending(cmt_thread_self());
        t->busy--;
        return ROUTE_TRACK;
    }
    if (!ready) {
        t->busy++;
        cmt_init();     /* resolves the next allocator; nested calls take the busy route */
        t->busy--;
        if (!atomic_load_explicit(&cmt_ready, memory_order_acquire))
            return atomic_load_explicit(&cmt_resolved, memory_order_acquire) ? ROUTE_FORWARD
                                                                             : ROUTE_BOOTSTRAP;
    }
    return ROUTE_TRACK;
}

static inline enum route route(struct cmt_thread *t)
{
    if (cmt_likely(!t->busy &&
                   atomic_load_explicit(&cmt_ready, memory_order_relaxed) == CMT_READY))
        return ROUTE_TRACK;
    return route_slow(t);
}

static void *forwarded(void *p)
{
    if (p)
        cmt_hooks_untracked_add(p);
    return p;
}

/* ---- the interposed entry points ---------------------------------------------------- */

/* Calls are recorded: the tracker is ready with nothing pending, and t is not inside it
 * already. route()'s common case, inline in the entry points that run most. */
static inline bool tracking(const struct cmt_thread *t)
{
    return cmt_likely(!t->busy &&
                      atomic_load_explicit(&cmt_ready, memory_order_relaxed) == CMT_READY);
}

/* malloc(size), recorded: t is not busy, and the tracker is ready. */
static inline __attribute__((always_inline)) void *malloc_tracked(struct cmt_thread *t,
                                                                  size_t size)
{
    t->busy = 1;
    void *p = cmt_next.malloc(size);
    if (cmt_likely(p != NULL))
        record_alloc(t, p, size);
    t->busy = 0;
    return p;
}

static CMT_NOINLINE void *malloc_slow(struct cmt_thread *t, size_t size)
{
    switch (route(t)) {
    case ROUTE_TRACK:
        break;
    case ROUTE_BOOTSTRAP:
        return bootstrap_alloc(size, 16);
    case ROUTE_FORWARD:
        return forwarded(cmt_next.malloc(size));
    }
    return malloc_tracked(t, size);
}

CMT_EXPORT void *malloc(size_t size)
{
    struct cmt_thread *t = &cmt_self;
    if (tracking(t))
        return malloc_tracked(t, size);
    return malloc_slow(t, size);
}

CMT_EXPORT void *calloc(size_t n, size_t size)
{
    struct cmt_thread *t = &cmt_self;
    size_t bytes;
    bool overflow = __builtin_mul_overflow(n, size, &bytes);
    switch (route(t)) {
    case ROUTE_TRACK:
        break;
    case ROUTE_BOOTSTRAP:
        if (overflow) {
            errno = ENOMEM;
            return NULL;
        }
        return bootstrap_alloc(bytes, 16);
    case ROUTE_FORWARD:
        return forwarded(cmt_next.calloc(n, size));
    }
    t->busy = 1;
    void *p = cmt_next.calloc(n, size);     /* the next allocator reports the overflow */
    if (cmt_likely(p != NULL))
        record_alloc(t, p, bytes);
    t->busy = 0;
    return p;
}

/* The rest of a free(p) whose p is not a live block of the next allocator: a block of a
 * scope's own allocator (found), or no live block at all (see free_unknown). t is busy. */
static CMT_NOINLINE void free_rest(struct cmt_thread *t, void *p, bool found,
                                   cmt_free_fn_t free_fn)
{
    if (found)
        free_custom(t, p, free_fn);
    else if (free_unknown(t, p, "free"))
        cmt_next.free(p);
}

/* free(p) of a p, not NULL, that is in no young slot t may take; t is busy, and is not
 * when this returns. The table's blocks and other threads' young blocks take this way. */
static CMT_NOINLINE void free_table(struct cmt_thread *t, void *p)
{
    cmt_free_fn_t free_fn = NULL;
    bool found = take_table_block(t, (uintptr_t)p, UINT32_MAX, &free_fn);
    if (cmt_likely(found && !free_fn)) {
        t->busy = 0;
        cmt_next.free(p);
        return;
    }
    free_rest(t, p, found, free_fn);
    t->busy = 0;
}

static CMT_NOINLINE void free_slow(struct cmt_thread *t, void *p)
{
    if (!p)
        return;
    switch (route(t)) {
    case ROUTE_TRACK:
        break;
    case ROUTE_BOOTSTRAP:
        return;     /* nothing can be freed before the allocator is known */
    case ROUTE_FORWARD:
        /* Nested free: the table may be locked by this very thread, so it is not touched.
         * A tracked block freed here keeps its record until its address is handed out
         * again; only a signal handler that frees inside malloc, itself undefined, does
         * that. */
        if (in_bootstrap(p))
            return;
        untracked_take(p);
        cmt_next.free(p);
        return;
    }
    t->busy = 1;
    cmt_free_fn_t free_fn = NULL;
    bool found = take_block(t, (uintptr_t)p, UINT32_MAX, &free_fn);
    if (cmt_likely(found && !free_fn))
        cmt_next.free(p);
    else
        free_rest(t, p, found, free_fn);
    t->busy = 0;
}

CMT_EXPORT void free(void *p)
{
    struct cmt_thread *t = &cmt_self;
    if (tracking(t) && cmt_likely(p != NULL)) {
        /* Busy before the young slot is looked at: a signal handler's call can then no
         * longer change it between the look and the take. */
        t->busy = 1;
        struct cmt_young_set *y = t->young;
        if (cmt_likely(y != NULL)) {
            struct cmt_block *b = cmt_young_slot(y, (uintptr_t)p);
            if (cmt_likely(__atomic_load_n(&b->ptr, __ATOMIC_RELAXED) == (uintptr_t)p)) {
                cmt_young_enter(y);
                young_take(t, y, b);
                young_done(y);
                /* The record is gone: the next allocator's free is the program's own
                 * again. */
                t->busy = 0;
                cmt_next.free(p);
                return;
            }
        }
        free_table(t, p);
        return;
    }
    free_slow(t, p);
}

/* realloc of a block the table does not know. */
static CMT_NOINLINE void *realloc_unknown(struct cmt_thread *t, void *p, size_t size)
{
    if (in_bootstrap(p)) {
        /* Move it out of the bootstrap area into the real heap; the old copy stays. */
        size_t old = bootstrap_size(p);
        if (size == 0)
            return NULL;
        void *q = cmt_next.malloc(size);
        if (q) {
            memcpy(q, p, old < size ? old : size);
            record_alloc(t, q, size);
        }
        return q;
    }
    if (free_unknown(t, p, "realloc")) {
        void *q = cmt_next.realloc(p, size);
        if (q)
            record_alloc(t, q, size);
        return q;
    }
    /* Like glibc's failed realloc: NULL, and the pointer (not ours to touch) is left alone. */
    errno = ENOMEM;
    return NULL;
}

/* realloc of young block p, in slot yb of t's young set: as the table's path below, with
 * nobody else to take the block meanwhile. */
static void *realloc_young(struct cmt_thread *t, struct cmt_block *yb, void *p, size_t size)
{
    struct cmt_young_set *y = t->young;
    cmt_young_enter(y);
    struct cmt_block b = *yb;
    size_t old_size = cmt_block_size(&b);
    struct cmt_instance *inst = cmt_instance_get(b.instance);
    __atomic_store_n(&yb->ptr, 0, __ATOMIC_RELEASE);
    inst->young_blocks--;
    cmt_instance_count_free(t, inst, old_size);     /* open: never the last of a closed one */
    cmt_young_leave(y);
    void *q = cmt_next.realloc(p, size);
    if (q == NULL && size != 0) {
        /* Failed: p is untouched and still live. Its slot is still empty: only its owner
         * fills it, and calls nested in the next allocator's are forwarded. */
        cmt_young_enter(y);
        *yb = b;
        inst->young_blocks++;
        cmt_instance_undo_free(t, inst, old_size);
        cmt_young_leave(y);
        return NULL;
    }
    cmt_totals_free(t, old_size);
    if (q != p)
        atomic_store_explicit(grave_of((uintptr_t)p), (uintptr_t)p, memory_order_relaxed);
    if (q != NULL) {
        /* The target only while it is the innermost scope: young_record records in that. */
        if (inst == atomic_load_explicit(&y->target, memory_order_relaxed) && inst == t->top) {
            cmt_young_enter(y);
            young_record(t, y, q, size);
            young_done(y);
        } else if (!record_alloc_in(t, inst, q, size, 0)) {
            cmt_hooks_untracked_add(q);
        }
    }
    return q;
}

CMT_EXPORT void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    struct cmt_thread *t = &cmt_self;
    switch (route(t)) {
    case ROUTE_TRACK:
        break;
    case ROUTE_BOOTSTRAP: {
        if (!in_bootstrap(p)) {
            errno = ENOMEM;
            return NULL;
        }
        void *q = bootstrap_alloc(size, 16);
        if (q) {
            size_t old = bootstrap_size(p);
            memcpy(q, p, old < size ? old : size);
        }
        return q;
    }
    case ROUTE_FORWARD:
        if (in_bootstrap(p)) {
            void *q = cmt_next.malloc(size);
            if (q)
                memcpy(q, p, bootstrap_size(p) < size ? bootstrap_size(p) : size);
            return forwarded(q);
        }
        untracked_take(p);
        return forwarded(cmt_next.realloc(p, size));
    }
    t->busy = 1;
    void *q;
    struct cmt_block *yb = young_find(t, (uintptr_t)p);
    if (yb) {
        q = realloc_young(t, yb, p, size);
        t->busy = 0;
        return q;
    }
    struct cmt_block b;
    struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, (uintptr_t)p);
    /* Looked at where it is, and taken out only when this realloc goes ahead (a quarantined
     * block stays: realloc_unknown reports the stale realloc). Another thread's young block
     * is claimed, and goes on as if it had been taken out of the table. */
    struct cmt_block *slot = cmt_shard_find(s, (uintptr_t)p);
    bool claimed = !slot && cmt_young_claim(t, (uintptr_t)p, UINT32_MAX, &b);
    if (cmt_unlikely(!claimed && (!slot || (slot->flags & CMT_BLOCK_QUARANTINED)))) {
        cmt_shard_unlock(s);
        q = realloc_unknown(t, p, size);
        t->busy = 0;
        return q;
    }
    if (cmt_unlikely(!claimed && (slot->flags & CMT_BLOCK_CUSTOM))) {
        /* The next allocator never saw this block; its scope's allocator has no realloc. */
        cmt_shard_unlock(s);
        cmt_diag_limited(&custom_free_budget, "realloc of %p, a block of a scope with its own "
                         "allocator; use cmt_scope_realloc", p);
        t->busy = 0;
        errno = ENOMEM;
        return NULL;
    }
    /* A realloc is a free of the old block and an allocation of the new one, which keeps the
     * old one's scope. The free is counted now, with the record taken out before the next
     * allocator may release p; a hold on the instance keeps it from being retired until the
     * new block is counted in it. */
    if (!claimed) {
        b = *slot;
        cmt_shard_delete(s, slot);
    }
    size_t old_size = cmt_block_size(&b);
    struct cmt_instance *inst = cmt_instance_get(b.instance);
    cmt_instance_hold(inst);
    cmt_instance_count_free(t, inst, old_size);
    cmt_shard_unlock(s);

    q = cmt_next.realloc(p, size);
    if (q == NULL && size != 0) {
        /* Failed: p is untouched and still live, with its record and counts as they were. */
        s = cmt_table_lock_ptr(&cmt_live, (uintptr_t)p);
        cmt_shard_insert(&cmt_live, s, &b);
        cmt_instance_undo_free(t, inst, old_size);
        cmt_shard_unlock(s);
    } else {
        cmt_totals_free(t, old_size);
        /* p is gone (moved, or freed by realloc(p, 0)): a later free of it is a double free,
         * as after free(p). */
        if (q != p)
            atomic_store_explicit(grave_of((uintptr_t)p), (uintptr_t)p, memory_order_relaxed);
        if (q != NULL && !record_alloc_in(t, inst, q, size, 0))
            cmt_hooks_untracked_add(q);
    }
    if (cmt_instance_unhold(inst))
        cmt_instance_retire(inst);
    t->busy = 0;
    return q;
}

CMT_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, bytes);
}

/* The aligned allocators share one shape: forward, then record a success. */
#define ALIGNED_ENTRY(call, bootstrap_align, size_expr)                     \
    struct cmt_thread *t = &cmt_self;                                       \
    switch (route(t)) {                                                     \
    case ROUTE_TRACK:                                                       \
        break;                                                              \
    case ROUTE_BOOTSTRAP:                                                   \
        return bootstrap_alloc((size_expr), (bootstrap_align));             \
    case ROUTE_FORWARD:                                                     \
        return forwarded(call);                                             \
    }                                                                       \
    t->busy = 1;                                                            \
    void *p = (call);                                                       \
    if (p)                                                                  \
        record_alloc(t, p, (size_expr));                                    \
    t->busy = 0;                                                            \
    return p

static bool valid_alignment(size_t align)
{
    return align != 0 && (align & (align - 1)) == 0;
}

CMT_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    ALIGNED_ENTRY(cmt_next.aligned_alloc(align, size),
                  valid_alignment(align) ? align : 16, size);
}

CMT_EXPORT void *memalign(size_t align, size_t size)
{
    ALIGNED_ENTRY(cmt_next.memalign(align, size), valid_alignment(align) ? align : 16, size);
}

CMT_EXPORT void *valloc(size_t size)
{
    ALIGNED_ENTRY(cmt_next.valloc(size), 4096, size);
}

CMT_EXPORT void *pvalloc(size_t size)
{
    ALIGNED_ENTRY(cmt_next.pvalloc(size), 4096, size);
}

CMT_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    struct cmt_thread *t = &cmt_self;
    switch (route(t)) {
    case ROUTE_TRACK:
        break;
    case ROUTE_BOOTSTRAP:
        if (!valid_alignment(align) || align % sizeof(void *) != 0)
            return EINVAL;
        *out = bootstrap_alloc(size, align);
        return *out ? 0 : ENOMEM;
    case ROUTE_FORWARD: {
        int rc = cmt_next.posix_memalign(out, align, size);
        if (rc == 0)
            forwarded(*out);
        return rc;
    }
    }
    t->busy = 1;
    void *p = NULL;
    int rc = cmt_next.posix_memalign(&p, align, size);
    if (rc == 0) {
        record_alloc(t, p, size);
        *out = p;   /* written only on success, as documented */
    }
    t->busy = 0;
    return rc;
}

CMT_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (in_bootstrap(p))
        return bootstrap_size(p);
    struct cmt_thread *t = &cmt_self;
    if (route(t) != ROUTE_TRACK)
        return atomic_load(&cmt_resolved) ? cmt_next.malloc_usable_size(p) : 0;
    /* Only a block the tracker knows is asked about: for any other pointer the allocator
     * could read garbage. */
    t->busy = 1;
    struct cmt_block b;
    bool known = cmt_lookup_block(t, p, &b) && !(b.flags & CMT_BLOCK_QUARANTINED);
    t->busy = 0;
    if (!known && !untracked_find(p, false))
        return 0;
    return cmt_next.malloc_usable_size(p);
}
