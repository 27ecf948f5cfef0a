/*
 * scope.c — scope instances, scope names and the counters behind every report row.
 *
 * Owns the instance registry (records from rawmem, recycled through a free list), the name
 * registry (interned, never removed, lock-free to read), and the counting rules: the owner
 * of an open instance counts with plain stores, everybody else with atomics, and a biased
 * reference count decides who retires a closed instance once its last block is gone (see
 * struct cmt_instance in cmt.h). Never allocates through the tracked allocator.
 */
#include "config.h"

#include <string.h>

#include "cmt.h"

/* While open, refs carries this bias so that it cannot reach zero before the owner closes. */
#define REFS_OPEN_BIAS (INT64_C(1) << 62)

#define CHUNK_BITS CMT_INSTANCE_CHUNK_BITS
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS CMT_INSTANCE_MAX_CHUNKS

_Atomic(struct cmt_instance *) cmt_instance_chunk[CMT_INSTANCE_MAX_CHUNKS];

#define NAME_LEN_MAX 127
#define NAME_HASH_SLOTS (CMT_NAME_MAX * 2)

/* A scope name and the counters of its retired instances. */
struct name_rec {
    char str[NAME_LEN_MAX + 1];
    uint8_t kind;
    atomic_ullong instances;
    atomic_ullong allocs, bytes_allocated, frees, bytes_freed;
    atomic_ullong outlived_at_close, bulk_freed_blocks, bulk_freed_bytes;
    atomic_ullong peak_live_bytes;
};

static struct {
    /* instances */
    atomic_uint chunks;             /* chunks published so far */
    cmt_spinlock free_lock;         /* guards free_list, chunk creation and retiring */
    struct cmt_instance *free_list; /* linked through ->parent */
    struct cmt_instance *shared;    /* owner of allocations by threads whose state is gone */
    /* names */
    cmt_spinlock name_lock;         /* guards name insertion */
    struct name_rec *names[CMT_NAME_MAX];
    atomic_uint name_count;
    atomic_uint name_hash[NAME_HASH_SLOTS];   /* name index + 1, 0 when empty */
    atomic_int names_full_said;
} sc;

_Atomic(struct cmt_instance *) cmt_window;

/* ---- names ------------------------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;       /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static uint32_t name_find(const char *name, uint32_t h)
{
    for (uint32_t i = h % NAME_HASH_SLOTS;; i = (i + 1) % NAME_HASH_SLOTS) {
        uint32_t v = atomic_load_explicit(&sc.name_hash[i], memory_order_acquire);
        if (v == 0)
            return UINT32_MAX;
        if (strcmp(sc.names[v - 1]->str, name) == 0)
            return v - 1;
    }
}

uint32_t cmt_name_intern(const char *name, enum cmt_scope_kind kind)
{
    uint32_t h = hash_str(name);
    uint32_t found = name_find(name, h);
    if (found != UINT32_MAX)
        return found;

    cmt_spin_lock(&sc.name_lock);
    found = name_find(name, h);     /* again: another thread may have added it */
    if (found == UINT32_MAX) {
        uint32_t n = atomic_load_explicit(&sc.name_count, memory_order_relaxed);
        struct name_rec *rec = n < CMT_NAME_MAX ? cmt_raw_alloc(sizeof *rec) : NULL;
        if (rec) {
            size_t len = strnlen(name, NAME_LEN_MAX);
            memcpy(rec->str, name, len);
            rec->str[len] = '\0';
            rec->kind = (uint8_t)kind;
            sc.names[n] = rec;
            atomic_store_explicit(&sc.name_count, n + 1, memory_order_release);
            uint32_t i = h % NAME_HASH_SLOTS;
            while (atomic_load_explicit(&sc.name_hash[i], memory_order_relaxed) != 0)
                i = (i + 1) % NAME_HASH_SLOTS;
            atomic_store_explicit(&sc.name_hash[i], n + 1, memory_order_release);
            found = n;
        }
    }
    bool full = atomic_load_explicit(&sc.name_count, memory_order_relaxed) >= CMT_NAME_MAX;
    cmt_spin_unlock(&sc.name_lock);
    if (found == UINT32_MAX) {
        /* "global" itself, at start, finds no memory: cmt_scope_init sees its name missing. */
        if (sc.names[CMT_NAME_GLOBAL] && !atomic_exchange(&sc.names_full_said, 1)) {
            if (full)
                cmt_diag("more than %u scope names; further names are counted as \"global\"",
                         (unsigned)CMT_NAME_MAX);
            else
                cmt_diag("out of memory for scope names; further names are counted as "
                         "\"global\"");
        }
        return CMT_NAME_GLOBAL;
    }
    return found;
}

const char *cmt_name_string(uint32_t name)
{
    return name < cmt_name_count() ? sc.names[name]->str : "?";
}

enum cmt_scope_kind cmt_name_kind(uint32_t name)
{
    return name < cmt_name_count() ? (enum cmt_scope_kind)sc.names[name]->kind : CMT_KIND_GLOBAL;
}

uint32_t cmt_name_count(void)
{
    return atomic_load_explicit(&sc.name_count, memory_order_acquire);
}

/* ---- instance registry ------------------------------------------------------------- */

/* Takes a free record, making a new chunk of them when none is left. NULL when out of
 * memory or past MAX_CHUNKS. */
static struct cmt_instance *instance_take(void)
{
    cmt_spin_lock(&sc.free_lock);
    if (!sc.free_list) {
        uint32_t c = atomic_load_explicit(&sc.chunks, memory_order_relaxed);
        struct cmt_instance *chunk =
            c < MAX_CHUNKS ? cmt_raw_map(CHUNK_SIZE * sizeof *chunk) : NULL;
        if (!chunk) {
            cmt_spin_unlock(&sc.free_lock);
            return NULL;
        }
        for (uint32_t i = CHUNK_SIZE; i-- > 0;) {
            chunk[i].id = (c << CHUNK_BITS) | i;
            chunk[i].parent = sc.free_list;
            sc.free_list = &chunk[i];
        }
        atomic_store_explicit(&cmt_instance_chunk[c], chunk, memory_order_release);
        atomic_store_explicit(&sc.chunks, c + 1, memory_order_release);
    }
    struct cmt_instance *inst = sc.free_list;
    sc.free_list = inst->parent;
    cmt_spin_unlock(&sc.free_lock);
    return inst;
}

/* Folds a closed instance whose last block is gone into its name, and recycles it. The fold
 * and the state change are one critical section of free_lock, which fork holds: a child
 * forked in between would count the instance twice, in its name and as an instance not yet
 * free. */
void cmt_instance_retire(struct cmt_instance *inst)
{
    struct cmt_counters c;
    cmt_instance_counters(inst, &c);
    struct name_rec *n = sc.names[inst->name];
    cmt_spin_lock(&sc.free_lock);
    /* An instance that never allocated (a func: scope's call that allocates nothing: a
     * million a second in some programs) has nothing to fold: eight locked adds of zero
     * were most of its cost. Its blocks' counts are all zero exactly when allocs is. */
    if (c.allocs) {
        atomic_fetch_add_explicit(&n->allocs, c.allocs, memory_order_relaxed);
        atomic_fetch_add_explicit(&n->bytes_allocated, c.bytes_allocated,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&n->frees, c.frees, memory_order_relaxed);
        atomic_fetch_add_explicit(&n->bytes_freed, c.bytes_freed, memory_order_relaxed);
        atomic_fetch_add_explicit(&n->outlived_at_close, c.outlived_at_close,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&n->bulk_freed_blocks, c.bulk_freed_blocks,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&n->bulk_freed_bytes, c.bulk_freed_bytes,
                                  memory_order_relaxed);
    }
    unsigned long long peak = atomic_load_explicit(&n->peak_live_bytes, memory_order_relaxed);
    while (c.peak_live_bytes > peak &&
           !atomic_compare_exchange_weak(&n->peak_live_bytes, &peak, c.peak_live_bytes))
        ;

    inst->generation++;
    atomic_store_explicit(&inst->state, CMT_STATE_FREE, memory_order_release);
    inst->parent = sc.free_list;
    sc.free_list = inst;
    cmt_spin_unlock(&sc.free_lock);
}

static void instance_reset(struct cmt_instance *inst, uint32_t name, uint32_t owner,
                           uint32_t flags)
{
    inst->own_allocs = inst->own_bytes_allocated = 0;
    inst->own_frees = inst->own_bytes_freed = 0;
    inst->peak_live_bytes = 0;
    inst->name = name;
    inst->owner = owner;
    inst->flags = flags;
    inst->kind = (uint8_t)cmt_name_kind(name);
    inst->bulk_len = 0;
    inst->own_bulk_freed = 0;
    inst->young_blocks = 0;
    inst->malloc_fn = NULL;
    inst->free_fn = NULL;
    inst->outlived_at_close = 0;
    atomic_store_explicit(&inst->refs, REFS_OPEN_BIAS, memory_order_relaxed);
    atomic_store_explicit(&inst->far_allocs, 0, memory_order_relaxed);
    atomic_store_explicit(&inst->far_bytes_allocated, 0, memory_order_relaxed);
    atomic_store_explicit(&inst->far_frees, 0, memory_order_relaxed);
    atomic_store_explicit(&inst->far_bytes_freed, 0, memory_order_relaxed);
    atomic_store_explicit(&inst->bulk_freed_blocks, 0, memory_order_relaxed);
    atomic_store_explicit(&inst->bulk_freed_bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&inst->state, CMT_STATE_OPEN, memory_order_release);
}

struct cmt_instance *cmt_instance_open(struct cmt_thread *t, uint32_t name, uint32_t flags)
{
    struct cmt_instance *inst = instance_take();
    if (!inst)
        return NULL;
    instance_reset(inst, name, t->number, flags);
    /* The global scope is one scope made of one instance a thread; it counts as one. */
    if (name != CMT_NAME_GLOBAL)
        atomic_fetch_add_explicit(&sc.names[name]->instances, 1, memory_order_relaxed);
    inst->parent = t->top;
    t->top = inst;
    return inst;
}

/* Closes inst: bulk-frees it if it is a bulk instance, then hands its live count to the
 * shared reference count. Returns the blocks it owned at close, bulk-freed ones included. */
static uint64_t instance_finish(struct cmt_thread *t, struct cmt_instance *inst)
{
    cmt_young_release(t, inst); /* its young blocks are counted like the others from now on */
    uint64_t bulk_freed = (inst->flags & CMT_INST_BULK) ? cmt_bulk_free(t, inst) : 0;
    int64_t own_live = (int64_t)(inst->own_allocs - inst->own_frees - inst->own_bulk_freed);
    atomic_store_explicit(&inst->state, CMT_STATE_CLOSED, memory_order_release);
    /* From here on the owner counts like everybody else: through the atomics. */
    int64_t live = atomic_fetch_add_explicit(&inst->refs, own_live - REFS_OPEN_BIAS,
                                             memory_order_acq_rel) +
                   own_live - REFS_OPEN_BIAS;
    /* The reader derives "outlived" from this: live at close, bulk-freed ones included. */
    inst->outlived_at_close = (uint64_t)live + bulk_freed;
    if (live == 0)
        cmt_instance_retire(inst);
    return (uint64_t)live + bulk_freed;
}

uint64_t cmt_instance_close(struct cmt_thread *t, struct cmt_instance *inst)
{
    t->top = inst->parent;
    inst->parent = NULL;
    return instance_finish(t, inst);
}

struct cmt_instance *cmt_instance_open_detached(uint32_t name, uint32_t flags)
{
    struct cmt_instance *inst = instance_take();
    if (!inst)
        return NULL;
    instance_reset(inst, name, CMT_NO_OWNER, flags);
    atomic_fetch_add_explicit(&sc.names[name]->instances, 1, memory_order_relaxed);
    inst->parent = NULL;
    return inst;
}

uint64_t cmt_instance_close_detached(struct cmt_thread *t, struct cmt_instance *inst)
{
    return instance_finish(t, inst);
}

void cmt_instance_count_alloc_far(struct cmt_instance *inst, size_t size)
{
    atomic_fetch_add_explicit(&inst->refs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&inst->far_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&inst->far_bytes_allocated, size, memory_order_relaxed);
}

bool cmt_instance_count_free_far(struct cmt_instance *inst, size_t size)
{
    atomic_fetch_add_explicit(&inst->far_frees, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&inst->far_bytes_freed, size, memory_order_relaxed);
    return atomic_fetch_sub_explicit(&inst->refs, 1, memory_order_acq_rel) == 1;
}

void cmt_instance_hold(struct cmt_instance *inst)
{
    atomic_fetch_add_explicit(&inst->refs, 1, memory_order_relaxed);
}

bool cmt_instance_unhold(struct cmt_instance *inst)
{
    return atomic_fetch_sub_explicit(&inst->refs, 1, memory_order_acq_rel) == 1;
}

void cmt_instance_undo_free(struct cmt_thread *t, struct cmt_instance *inst, size_t size)
{
    if (cmt_counts_as_owner(t, inst)) {
        inst->own_frees--;
        inst->own_bytes_freed -= size;
        return;
    }
    atomic_fetch_sub_explicit(&inst->far_frees, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&inst->far_bytes_freed, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&inst->refs, 1, memory_order_relaxed);
}

void cmt_instance_counters(const struct cmt_instance *inst, struct cmt_counters *out)
{
    out->allocs = inst->own_allocs +
                  atomic_load_explicit(&inst->far_allocs, memory_order_relaxed);
    out->bytes_allocated = inst->own_bytes_allocated +
                           atomic_load_explicit(&inst->far_bytes_allocated,
                                                memory_order_relaxed);
    out->frees = inst->own_frees + atomic_load_explicit(&inst->far_frees, memory_order_relaxed);
    out->bytes_freed = inst->own_bytes_freed +
                       atomic_load_explicit(&inst->far_bytes_freed, memory_order_relaxed);
    out->outlived_at_close = inst->outlived_at_close;
    out->bulk_freed_blocks = atomic_load_explicit(&inst->bulk_freed_blocks,
                                                  memory_order_relaxed);
    out->bulk_freed_bytes = atomic_load_explicit(&inst->bulk_freed_bytes, memory_order_relaxed);
    out->peak_live_bytes = inst->peak_live_bytes;
}

static void counters_add(struct cmt_counters *sum, const struct cmt_counters *c)
{
    sum->allocs += c->allocs;
    sum->bytes_allocated += c->bytes_allocated;
    sum->frees += c->frees;
    sum->bytes_freed += c->bytes_freed;
    sum->outlived_at_close += c->outlived_at_close;
    sum->bulk_freed_blocks += c->bulk_freed_blocks;
    sum->bulk_freed_bytes += c->bulk_freed_bytes;
    if (c->peak_live_bytes > sum->peak_live_bytes)
        sum->peak_live_bytes = c->peak_live_bytes;
}

/* Sums retired and live instances. An instance retiring while this runs may be seen twice
 * or not at all; reports taken while other threads run are a snapshot, not a barrier. */
void cmt_name_counters(uint32_t name, struct cmt_counters *out, uint64_t *instances)
{
    memset(out, 0, sizeof *out);
    *instances = 0;
    if (name >= cmt_name_count())
        return;
    const struct name_rec *n = sc.names[name];
    *instances = atomic_load_explicit(&n->instances, memory_order_relaxed);
    out->allocs = atomic_load_explicit(&n->allocs, memory_order_relaxed);
    out->bytes_allocated = atomic_load_explicit(&n->bytes_allocated, memory_order_relaxed);
    out->frees = atomic_load_explicit(&n->frees, memory_order_relaxed);
    out->bytes_freed = atomic_load_explicit(&n->bytes_freed, memory_order_relaxed);
    out->outlived_at_close = atomic_load_explicit(&n->outlived_at_close, memory_order_relaxed);
    out->bulk_freed_blocks = atomic_load_explicit(&n->bulk_freed_blocks, memory_order_relaxed);
    out->bulk_freed_bytes = atomic_load_explicit(&n->bulk_freed_bytes, memory_order_relaxed);
    out->peak_live_bytes = atomic_load_explicit(&n->peak_live_bytes, memory_order_relaxed);

    uint32_t chunks = atomic_load_explicit(&sc.chunks, memory_order_acquire);
    for (uint32_t c = 0; c < chunks; c++) {
        struct cmt_instance *chunk = atomic_load_explicit(&cmt_instance_chunk[c], memory_order_acquire);
        for (uint32_t i = 0; i < CHUNK_SIZE; i++) {
            const struct cmt_instance *inst = &chunk[i];
            if (atomic_load_explicit(&inst->state, memory_order_acquire) == CMT_STATE_FREE ||
                inst->name != name)
                continue;
            struct cmt_counters ic;
            cmt_instance_counters(inst, &ic);
            counters_add(out, &ic);
        }
    }
}

/* A handle is (generation << 32) | (id + 1): never 0, and stale once the instance has been
 * retired and reused, since retiring bumps the generation. */
uint64_t cmt_instance_handle(const struct cmt_instance *inst)
{
    return ((uint64_t)inst->generation << 32) | ((uint64_t)inst->id + 1);
}

struct cmt_instance *cmt_instance_from_handle(uint64_t handle)
{
    uint32_t low = (uint32_t)handle;
    if (low == 0 || (low - 1) >> CHUNK_BITS >= atomic_load(&sc.chunks))
        return NULL;
    struct cmt_instance *inst = cmt_instance_get(low - 1);
    if (!inst || inst->generation != (uint32_t)(handle >> 32) ||
        atomic_load_explicit(&inst->state, memory_order_acquire) == CMT_STATE_FREE)
        return NULL;
    return inst;
}

struct cmt_instance *cmt_instance_shared(void)
{
    return sc.shared;
}

void cmt_scope_init(void)
{
    cmt_name_intern("global", CMT_KIND_GLOBAL);
    if (!sc.names[CMT_NAME_GLOBAL])
        return;     /* out of memory at start: no shared instance, and cmt_init says so */
    struct cmt_thread nobody = { .number = CMT_NO_OWNER };
    sc.shared = cmt_instance_open(&nobody, CMT_NAME_GLOBAL, 0);
    if (sc.shared)
        atomic_store_explicit(&sc.names[CMT_NAME_GLOBAL]->instances, 1, memory_order_relaxed);
}

void cmt_scope_after_fork_child(void)
{
    /* A thread that no longer exists may have held an instance's bulk-list lock. */
    uint32_t chunks = atomic_load_explicit(&sc.chunks, memory_order_acquire);
    for (uint32_t c = 0; c < chunks; c++) {
        struct cmt_instance *chunk = atomic_load_explicit(&cmt_instance_chunk[c], memory_order_acquire);
        for (uint32_t i = 0; i < CHUNK_SIZE; i++)
            cmt_spin_unlock(&chunk[i].bulk_lock);
    }
}

void cmt_scope_lock_all(void)
{
    cmt_spin_lock(&sc.name_lock);
    cmt_spin_lock(&sc.free_lock);
}

void cmt_scope_unlock_all(void)
{
    cmt_spin_unlock(&sc.free_lock);
    cmt_spin_unlock(&sc.name_lock);
}
