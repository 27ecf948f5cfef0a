/*
 * cymemtrack.h — the public interface of cymemtrack.
 *
 * Every function here is safe to call whether or not libcymemtrack.so is preloaded: a program
 * linked with `pkg-config --libs cymemtrack` gets cheap no-op versions that the preloaded
 * library overrides. See cymemtrack(3).
 */
#ifndef CYMEMTRACK_H
#define CYMEMTRACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CMT_API_VERSION 1

/* A scope: a named pool that owns every block allocated while it is the innermost open scope
 * of a thread, and every block its pool calls hand out. 0 is never a scope. */
typedef uint64_t cmt_scope_t;
#define CMT_SCOPE_NONE ((cmt_scope_t)0)

/* cmt_scope_open flags. */
#define CMT_BULK_FREE 0x1u      /* at close, free every block the scope still owns */

/* Scope names are at most this many bytes; longer ones are cut, with a diagnostic. */
#define CMT_SCOPE_NAME_MAX 127

/* An allocator for a scope's pool calls and its bulk-free, as cymem's WrapMalloc/WrapFree. */
typedef void *(*cmt_malloc_fn)(size_t size);
typedef void (*cmt_free_fn)(void *ptr);

/* Opens a scope on the calling thread, inside the scope that is innermost now (scopes nest
 * per thread). Every allocation the thread makes until the scope closes is recorded in it.
 * Returns the scope, or CMT_SCOPE_NONE when out of memory or not tracking. */
cmt_scope_t cmt_scope_open(const char *name, unsigned flags);

/* The same, for a scope whose pool calls (and bulk-free) go through malloc_fn and free_fn.
 * Both must be given, or neither. */
cmt_scope_t cmt_scope_open_with(const char *name, unsigned flags, cmt_malloc_fn malloc_fn,
                                cmt_free_fn free_fn);

/* Closes a scope opened by the calling thread; scopes opened inside it and still open close
 * first. With CMT_BULK_FREE, every block it still owns is freed now. Returns the number of
 * blocks the scope owned when it closed (bulk-freed ones included), or -1 for a scope that
 * is not open, was opened by another thread, or is not a scope. */
int64_t cmt_scope_close(cmt_scope_t scope);

/* Pool calls, as cymem's Pool has them. */
/* number * elem_size zeroed bytes, recorded in scope whatever the thread's innermost scope
 * is; NULL with errno ENOMEM on overflow or when memory is exhausted. */
void *cmt_scope_alloc(cmt_scope_t scope, size_t number, size_t elem_size);
/* Moves p, a block of scope, to a new block of new_size bytes: contents kept up to the
 * smaller size, the rest zeroed. NULL (p untouched) when p is not the scope's or memory is
 * exhausted. p == NULL allocates. */
void *cmt_scope_realloc(cmt_scope_t scope, void *p, size_t new_size);
/* Frees p, a block of scope. Returns 0, or -1 (p untouched, one diagnostic line) when p is
 * not a live block of scope. */
int cmt_scope_free(cmt_scope_t scope, void *p);

/* A scope's counters. */
struct cmt_scope_stats {
    uint64_t allocations;       /* blocks recorded in the scope */
    uint64_t bytes_allocated;
    uint64_t frees;             /* blocks of the scope the program freed */
    uint64_t live_blocks;       /* blocks it owns now */
    uint64_t live_bytes;
    uint64_t peak_live_bytes;   /* highest live bytes of the scope while open */
    uint64_t bulk_freed_blocks; /* blocks freed by its close (CMT_BULK_FREE) */
    uint64_t bulk_freed_bytes;
};

/* Fills *stats for a scope that is open, or closed and still owning blocks; returns 0. Returns
 * -1 and zeroes *stats otherwise. */
int cmt_scope_stats(cmt_scope_t scope, struct cmt_scope_stats *stats);

/* Process-wide totals, as the tracker sees them now. */
struct cmt_process_stats {
    uint64_t allocations;       /* blocks handed out (a realloc counts as one, and one free) */
    uint64_t bytes_allocated;   /* bytes requested over all those allocations */
    uint64_t frees;             /* blocks given back by the program */
    uint64_t live_blocks;       /* blocks live now */
    uint64_t live_bytes;        /* bytes live now */
    uint64_t peak_live_bytes;   /* highest live bytes seen (see cymemtrack(3) for threads) */
    uint64_t invalid_frees;     /* frees of pointers never handed out: ignored */
    uint64_t double_frees;      /* frees of blocks already freed: ignored */
    uint64_t stale_frees;       /* frees of blocks a scope bulk-freed: ignored */
    uint64_t bulk_freed_blocks; /* blocks freed by closing CMT_BULK_FREE scopes */
    uint64_t bulk_freed_bytes;
};

/* Writes a report of the process as it is now, beside the final one, and returns 0 (-1 when
 * not tracking). label (at most 127 bytes; may be NULL) is shown by cymem-report. See
 * cymemtrack-report(5) for the file's name. */
int cmt_snapshot(const char *label);

/* 1 when the tracker is recording this process, 0 when the calls are no-ops. */
int cmt_active(void);

/* Fills *stats and returns 0; returns -1 and zeroes *stats when the tracker is not active. */
int cmt_process_stats(struct cmt_process_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* CYMEMTRACK_H */
