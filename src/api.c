/*
 * api.c — the public cmt_* functions of cymemtrack.h, as the preloaded library has them.
 *
 * Thin: each checks its arguments, says what is wrong in one "cymemtrack:" line (misuse never
 * crashes the program), and calls into scope.c and bulk.c. api-noop.c has the same functions
 * as cheap no-ops for a program running without the preload; keep the two in step.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmt.h"
#include "cymemtrack.h"
#include "report-format.h"

static atomic_int misuse_budget = 50;
#define misuse(...) cmt_diag_limited(&misuse_budget, __VA_ARGS__)

CMT_EXPORT int cmt_active(void)
{
    return (atomic_load_explicit(&cmt_ready, memory_order_acquire) & CMT_READY) != 0;
}

/* A usable name for a scope: NULL and over-long names are said once and mended. */
static const char *checked_name(const char *fn, const char *name, char *buf, size_t size)
{
    if (!name) {
        misuse("%s: the scope name is NULL; using \"(null)\"", fn);
        return "(null)";
    }
    size_t len = strnlen(name, CMT_SCOPE_NAME_MAX + 1);
    if (len > CMT_SCOPE_NAME_MAX) {
        memcpy(buf, name, size - 1);
        buf[size - 1] = '\0';
        misuse("%s: scope name longer than %d bytes; cut to \"%s\"", fn, CMT_SCOPE_NAME_MAX,
               buf);
        return buf;
    }
    return name;
}

static cmt_scope_t open_scope(const char *fn, const char *name, unsigned flags,
                              cmt_malloc_fn malloc_fn, cmt_free_fn free_fn)
{
    if (!cmt_active())
        return CMT_SCOPE_NONE;
    if (!malloc_fn != !free_fn) {
        misuse("%s: give both malloc_fn and free_fn, or neither; scope not opened", fn);
        return CMT_SCOPE_NONE;
    }
    if (flags & ~CMT_BULK_FREE)
        misuse("%s: unknown flags %#x ignored", fn, flags & ~CMT_BULK_FREE);
    struct cmt_thread *t = cmt_thread_self();
    if (t->state != CMT_THREAD_LIVE) {
        misuse("%s: called by a thread that is exiting; scope not opened", fn);
        return CMT_SCOPE_NONE;
    }
    t->busy++;
    char buf[CMT_SCOPE_NAME_MAX + 1];
    name = checked_name(fn, name, buf, sizeof buf);
    uint32_t id = cmt_name_intern(name, CMT_KIND_API);
    struct cmt_instance *inst = NULL;
    if (cmt_name_kind(id) != CMT_KIND_API)
        misuse("%s: \"%s\" names a scope of another kind; scope not opened", fn, name);
    else
        inst = cmt_instance_open(t, id, (flags & CMT_BULK_FREE) ? CMT_INST_BULK : 0);
    if (inst) {
        inst->malloc_fn = malloc_fn;
        inst->free_fn = free_fn;
    }
    t->busy--;
    return inst ? cmt_instance_handle(inst) : CMT_SCOPE_NONE;
}

CMT_EXPORT cmt_scope_t cmt_scope_open(const char *name, unsigned flags)
{
    return open_scope("cmt_scope_open", name, flags, NULL, NULL);
}

CMT_EXPORT cmt_scope_t cmt_scope_open_with(const char *name, unsigned flags,
                                           cmt_malloc_fn malloc_fn, cmt_free_fn free_fn)
{
    return open_scope("cmt_scope_open_with", name, flags, malloc_fn, free_fn);
}

/* The instance behind a handle, or NULL after saying why it is not usable. */
static struct cmt_instance *scope_of(const char *fn, cmt_scope_t scope, bool must_be_open)
{
    struct cmt_instance *inst = cmt_instance_from_handle(scope);
    if (!inst) {
        if (scope == CMT_SCOPE_NONE)
            misuse("%s: no scope (CMT_SCOPE_NONE)", fn);
        else
            misuse("%s: %#llx is not a scope, or one closed and gone", fn,
                   (unsigned long long)scope);
        return NULL;
    }
    if (must_be_open &&
        atomic_load_explicit(&inst->state, memory_order_acquire) != CMT_STATE_OPEN) {
        misuse("%s: scope \"%s\" is closed", fn, cmt_name_string(inst->name));
        return NULL;
    }
    return inst;
}

CMT_EXPORT int64_t cmt_scope_close(cmt_scope_t scope)
{
    if (!cmt_active())
        return -1;
    struct cmt_thread *t = cmt_thread_self();
    t->busy++;
    int64_t live = -1;
    struct cmt_instance *inst = scope_of("cmt_scope_close", scope, true);
    if (!inst) {
        /* said */
    } else if (inst->owner != t->number || t->state != CMT_THREAD_LIVE) {
        misuse("cmt_scope_close: scope \"%s\" was opened by another thread; not closed",
               cmt_name_string(inst->name));
    } else if (inst->kind != CMT_KIND_API) {
        misuse("cmt_scope_close: scope \"%s\" is not one cmt_scope_open opened; not closed",
               cmt_name_string(inst->name));
    } else {
        /* Scopes opened inside this one and still open close first, innermost first. */
        while (t->top && t->top != inst && t->top->kind != CMT_KIND_GLOBAL) {
            misuse("cmt_scope_close: closing \"%s\" first: it was opened inside \"%s\" and is "
                   "still open", cmt_name_string(t->top->name), cmt_name_string(inst->name));
            cmt_instance_close(t, t->top);
        }
        if (t->top == inst)
            live = (int64_t)cmt_instance_close(t, inst);
    }
    t->busy--;
    return live;
}

/* Allocation through a scope's own allocator: the block is recorded in the scope, marked to
 * go back to that allocator. If the allocator used malloc, the hooks recorded the block in
 * the scope already (it is the innermost scope meanwhile); it is marked, not counted twice. */
static void *alloc_custom(struct cmt_thread *t, struct cmt_instance *inst, size_t bytes)
{
    struct cmt_instance *saved = t->top;
    t->top = inst;
    void *p = inst->malloc_fn(bytes);
    t->top = saved;
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    memset(p, 0, bytes);
    t->busy++;
    struct cmt_block b;
    if (cmt_table_remove_owned(&cmt_live, (uintptr_t)p, inst->id, &b)) {
        b.flags |= CMT_BLOCK_CUSTOM;
        cmt_table_insert(&cmt_live, &b);
    } else {
        cmt_record_alloc_in(t, inst, p, bytes);
    }
    t->busy--;
    return p;
}

CMT_EXPORT void *cmt_scope_alloc(cmt_scope_t scope, size_t number, size_t elem_size)
{
    size_t bytes;
    if (__builtin_mul_overflow(number, elem_size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!cmt_active())
        return calloc(number, elem_size);
    struct cmt_thread *t = cmt_thread_self();
    struct cmt_instance *inst = scope_of("cmt_scope_alloc", scope, true);
    if (!inst) {
        errno = EINVAL;
        return NULL;
    }
    if (t->state != CMT_THREAD_LIVE) {
        misuse("cmt_scope_alloc: called by a thread that is exiting; not allocated");
        errno = EINVAL;
        return NULL;
    }
    if (inst->malloc_fn)
        return alloc_custom(t, inst, bytes);
    /* The hooks record it: in this scope, since it is made the innermost for the call. The
     * compiler knows calloc as a builtin that touches no memory of ours and would drop the
     * first store to t->top as dead: the barriers keep both. */
    struct cmt_instance *saved = t->top;
    t->top = inst;
    __asm__ volatile("" ::: "memory");
    void *p = calloc(number, elem_size);
    __asm__ volatile("" ::: "memory");
    t->top = saved;
    return p;
}

CMT_EXPORT int cmt_scope_free(cmt_scope_t scope, void *p)
{
    if (!p)
        return 0;
    if (!cmt_active()) {
        free(p);
        return 0;
    }
    struct cmt_thread *t = cmt_thread_self();
    struct cmt_instance *inst = scope_of("cmt_scope_free", scope, false);
    if (!inst)
        return -1;
    t->busy++;
    int rc = 0;
    cmt_free_fn_t free_fn;
    if (cmt_take_block(t, p, inst->id, &free_fn)) {
        cmt_release(t, p, free_fn);
    } else {
        misuse("cmt_scope_free: %p is not a live block of scope \"%s\"; not freed", p,
               cmt_name_string(inst->name));
        rc = -1;
    }
    t->busy--;
    return rc;
}

CMT_EXPORT void *cmt_scope_realloc(cmt_scope_t scope, void *p, size_t new_size)
{
    if (!p)
        return cmt_scope_alloc(scope, 1, new_size);
    if (!cmt_active())
        return realloc(p, new_size);
    struct cmt_instance *inst = scope_of("cmt_scope_realloc", scope, true);
    if (!inst) {
        errno = EINVAL;
        return NULL;
    }
    struct cmt_thread *t = cmt_thread_self();
    t->busy++;
    struct cmt_block b;
    bool owned = cmt_lookup_block(t, p, &b) && b.instance == inst->id;
    t->busy--;
    if (!owned) {
        misuse("cmt_scope_realloc: %p is not a live block of scope \"%s\"", p,
               cmt_name_string(inst->name));
        errno = EINVAL;
        return NULL;
    }
    /* As cymem does it: a new zeroed block, the old contents copied, the old block freed. */
    void *q = cmt_scope_alloc(scope, 1, new_size);
    if (!q)
        return NULL;
    size_t old = cmt_block_size(&b);
    memcpy(q, p, old < new_size ? old : new_size);
    cmt_scope_free(scope, p);
    return q;
}

CMT_EXPORT int cmt_scope_stats(cmt_scope_t scope, struct cmt_scope_stats *stats)
{
    if (!stats)
        return -1;
    memset(stats, 0, sizeof *stats);
    if (!cmt_active())
        return -1;
    struct cmt_instance *inst = scope_of("cmt_scope_stats", scope, false);
    if (!inst)
        return -1;
    struct cmt_counters c;
    cmt_instance_counters(inst, &c);
    stats->allocations = c.allocs;
    stats->bytes_allocated = c.bytes_allocated;
    stats->frees = c.frees;
    stats->bulk_freed_blocks = c.bulk_freed_blocks;
    stats->bulk_freed_bytes = c.bulk_freed_bytes;
    stats->live_blocks = c.allocs - c.frees - c.bulk_freed_blocks;
    stats->live_bytes = c.bytes_allocated - c.bytes_freed - c.bulk_freed_bytes;
    stats->peak_live_bytes = c.peak_live_bytes;
    return 0;
}

CMT_EXPORT int cmt_snapshot(const char *label)
{
    if (!cmt_active())
        return -1;
    if (label && strnlen(label, CMT_SCOPE_NAME_MAX + 1) > CMT_SCOPE_NAME_MAX) {
        misuse("cmt_snapshot: label longer than %d bytes; not written", CMT_SCOPE_NAME_MAX);
        return -1;
    }
    cmt_report_write(CMT_END_SNAPSHOT, 0, label ? label : "");
    return 0;
}

CMT_EXPORT int cmt_process_stats(struct cmt_process_stats *stats)
{
    if (!stats)
        return -1;
    memset(stats, 0, sizeof *stats);
    if (!cmt_active())
        return -1;
    struct cmt_thread *t = &cmt_self;
    t->busy++;
    cmt_totals_flush(t);
    for (uint32_t n = 0; n < cmt_name_count(); n++) {
        struct cmt_counters c;
        uint64_t instances;
        cmt_name_counters(n, &c, &instances);
        stats->allocations += c.allocs;
        stats->bytes_allocated += c.bytes_allocated;
        stats->frees += c.frees;
        stats->bulk_freed_blocks += c.bulk_freed_blocks;
        stats->bulk_freed_bytes += c.bulk_freed_bytes;
        stats->live_bytes += c.bytes_allocated - c.bytes_freed - c.bulk_freed_bytes;
    }
    stats->live_blocks = cmt_table_count_live(&cmt_live) + cmt_young_count();
    stats->peak_live_bytes = atomic_load(&cmt_peak_live_bytes);
    stats->invalid_frees = atomic_load(&cmt_invalid_frees);
    stats->double_frees = atomic_load(&cmt_double_frees);
    stats->stale_frees = atomic_load(&cmt_stale_frees);
    t->busy--;
    return 0;
}
