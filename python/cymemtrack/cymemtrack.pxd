# cymemtrack.pxd -- the C API of cymemtrack.h for Cython code: scopes, the pool calls,
# statistics and snapshots, callable with no Python object in between (cymemtrack(3)).
#
# Declarations only, kept identical to cymemtrack.h; it never adds behaviour. Build the
# extension with `pkg-config --cflags --libs cymemtrack`: it then links libcymemtrack-api.so,
# whose no-ops run without the tracker, and the preloaded library's functions win under it.
#
#     from cymemtrack.cymemtrack cimport cmt_scope_t, cmt_scope_open, cmt_scope_close

from libc.stdint cimport uint64_t, int64_t

cdef extern from "cymemtrack.h" nogil:
    enum: CMT_API_VERSION
    enum: CMT_BULK_FREE
    enum: CMT_SCOPE_NAME_MAX

    ctypedef uint64_t cmt_scope_t
    cmt_scope_t CMT_SCOPE_NONE

    # cymem's malloc_t and free_t have these types: its WrapMalloc functions fit.
    ctypedef void *(*cmt_malloc_fn)(size_t size)
    ctypedef void (*cmt_free_fn)(void *ptr)

    cmt_scope_t cmt_scope_open(const char *name, unsigned flags)
    cmt_scope_t cmt_scope_open_with(const char *name, unsigned flags,
                                    cmt_malloc_fn malloc_fn, cmt_free_fn free_fn)
    int64_t cmt_scope_close(cmt_scope_t scope)

    void *cmt_scope_alloc(cmt_scope_t scope, size_t number, size_t elem_size)
    void *cmt_scope_realloc(cmt_scope_t scope, void *p, size_t new_size)
    int cmt_scope_free(cmt_scope_t scope, void *p)

    # In C the structs and the functions that fill them share their names; Cython has one
    # namespace, so the structs are known here by these names, with the C spelling kept.
    ctypedef struct cmt_scope_stats_t "struct cmt_scope_stats":
        uint64_t allocations
        uint64_t bytes_allocated
        uint64_t frees
        uint64_t live_blocks
        uint64_t live_bytes
        uint64_t peak_live_bytes
        uint64_t bulk_freed_blocks
        uint64_t bulk_freed_bytes

    int cmt_scope_stats(cmt_scope_t scope, cmt_scope_stats_t *stats)

    ctypedef struct cmt_process_stats_t "struct cmt_process_stats":
        uint64_t allocations
        uint64_t bytes_allocated
        uint64_t frees
        uint64_t live_blocks
        uint64_t live_bytes
        uint64_t peak_live_bytes
        uint64_t invalid_frees
        uint64_t double_frees
        uint64_t stale_frees
        uint64_t bulk_freed_blocks
        uint64_t bulk_freed_bytes

    int cmt_snapshot(const char *label)
    int cmt_active()
    int cmt_process_stats(cmt_process_stats_t *stats)
