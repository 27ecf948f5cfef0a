/*
 * api-noop.c — libcymemtrack-api.so: the cymemtrack.h functions for a process that runs
 * without the tracker.
 *
 * A program links this (`pkg-config --libs cymemtrack`) and runs unchanged: each call is a
 * cheap no-op, and the pool calls fall back to calloc, realloc and free (or to a scope's own
 * allocator). When libcymemtrack.so is preloaded, the dynamic linker finds its definitions
 * first and these are never called. Keep every signature here identical to api.c's.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cymemtrack.h"

#define CMT_EXPORT __attribute__((visibility("default")))

/* A scope with its own allocator must keep using it without the tracker: its handle points
 * to this record. Every other scope is the handle 1 (odd, so never such a pointer). */
struct noop_scope {
    cmt_malloc_fn malloc_fn;
    cmt_free_fn free_fn;
};
#define NOOP_PLAIN ((cmt_scope_t)1)

static const struct noop_scope *custom(cmt_scope_t scope)
{
    return (scope & 1) || scope == 0 ? NULL : (const struct noop_scope *)(uintptr_t)scope;
}

CMT_EXPORT int cmt_active(void)
{
    return 0;
}

CMT_EXPORT cmt_scope_t cmt_scope_open(const char *name, unsigned flags)
{
    (void)name;
    (void)flags;
    return NOOP_PLAIN;
}

CMT_EXPORT cmt_scope_t cmt_scope_open_with(const char *name, unsigned flags,
                                           cmt_malloc_fn malloc_fn, cmt_free_fn free_fn)
{
    (void)name;
    (void)flags;
    if (!malloc_fn || !free_fn)
        return NOOP_PLAIN;
    struct noop_scope *s = malloc(sizeof *s);
    if (!s)
        return CMT_SCOPE_NONE;
    s->malloc_fn = malloc_fn;
    s->free_fn = free_fn;
    return (cmt_scope_t)(uintptr_t)s;
}

CMT_EXPORT int64_t cmt_scope_close(cmt_scope_t scope)
{
    free((void *)custom(scope));
    return 0;
}

CMT_EXPORT void *cmt_scope_alloc(cmt_scope_t scope, size_t number, size_t elem_size)
{
    const struct noop_scope *s = custom(scope);
    size_t bytes;
    if (__builtin_mul_overflow(number, elem_size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!s)
        return calloc(number, elem_size);
    void *p = s->malloc_fn(bytes);
    if (p)
        memset(p, 0, bytes);
    else
        errno = ENOMEM;
    return p;
}

CMT_EXPORT void *cmt_scope_realloc(cmt_scope_t scope, void *p, size_t new_size)
{
    /* Plain realloc: without the tracker the old size, and so the tail to zero, is unknown. */
    if (!custom(scope))
        return realloc(p, new_size);
    /* Without the tracker the old size is unknown, so a custom scope cannot move a block. */
    if (p) {
        errno = ENOSYS;
        return NULL;
    }
    return cmt_scope_alloc(scope, 1, new_size);
}

CMT_EXPORT int cmt_scope_free(cmt_scope_t scope, void *p)
{
    const struct noop_scope *s = custom(scope);
    if (s)
        s->free_fn(p);
    else
        free(p);
    return 0;
}

CMT_EXPORT int cmt_scope_stats(cmt_scope_t scope, struct cmt_scope_stats *stats)
{
    (void)scope;
    if (stats)
        memset(stats, 0, sizeof *stats);
    return -1;
}

CMT_EXPORT int cmt_snapshot(const char *label)
{
    (void)label;
    return -1;
}

CMT_EXPORT int cmt_process_stats(struct cmt_process_stats *stats)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    return -1;
}
