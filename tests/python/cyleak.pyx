# cyleak.pyx -- a Cython extension that tests/check_python.c builds at test time: it opens its
# scopes through cymemtrack.pxd and allocates through malloc and through cymem.Pool, in
# amounts the suite knows, so that the report's numbers can be checked exactly.
#
# Between opening and closing a scope these functions run C only (no Python object is made),
# except where a Pool is involved, whose Python side is accounted in a scope of its own.

from libc.stdlib cimport malloc, free
from cpython.ref cimport Py_INCREF
from cymem.cymem cimport Pool, WrapMalloc, WrapFree
from cymemtrack.cymemtrack cimport (cmt_scope_t, cmt_scope_open, cmt_scope_close,
                                    cmt_scope_alloc, cmt_scope_free, cmt_scope_stats,
                                    cmt_scope_stats_t, cmt_active, CMT_BULK_FREE)


def active():
    return cmt_active()


def malloc_blocks(const char *name, int n, int keep, bint bulk=False):
    """Opens scope name, mallocs n blocks of 100, 101, ... bytes, frees all but the last
    keep of them, closes it. Returns what cmt_scope_close returned."""
    cdef void *p[256]
    cdef int i
    assert 0 <= keep <= n <= 256
    cdef cmt_scope_t s = cmt_scope_open(name, CMT_BULK_FREE if bulk else 0)
    for i in range(n):
        p[i] = malloc(100 + i)
    for i in range(n - keep):
        free(p[i])
    return cmt_scope_close(s)


def leak_in_current(int n):
    """mallocs n blocks of 300, 301, ... bytes in whatever scope is innermost, and keeps them."""
    cdef int i
    for i in range(n):
        malloc(300 + i)


# The scope whose pool calls back routed_malloc and routed_free: a Pool built on them has its
# blocks recorded there, whatever scope is innermost when it allocates or frees.
cdef cmt_scope_t pool_scope = 0

cdef void *routed_malloc(size_t n) nogil:
    return cmt_scope_alloc(pool_scope, 1, n)

cdef void routed_free(void *p) nogil:
    cmt_scope_free(pool_scope, p)

_routed_malloc = WrapMalloc(routed_malloc)
_routed_free = WrapFree(routed_free)
_kept = []


def routed_pool(const char *blocks_name, const char *python_name, int n, bint keep_pool):
    """A Pool whose n blocks (64, 65, ... bytes) are recorded in scope blocks_name through
    the pool calls, while its Python objects go to scope python_name, opened inside it. With
    keep_pool the Pool is never freed. Returns (blocks scope's live blocks at close,
    python scope's close result)."""
    global pool_scope
    cdef int i
    cdef cmt_scope_stats_t st
    pool_scope = cmt_scope_open(blocks_name, 0)
    cdef cmt_scope_t py = cmt_scope_open(python_name, 0)
    mem = Pool(_routed_malloc, _routed_free)
    for i in range(n):
        (<Pool>mem).alloc(1, 64 + i)
    if keep_pool:
        Py_INCREF(mem)          # a reference nobody will drop: the Pool leaks
    mem = None
    cdef long long py_left = cmt_scope_close(py)
    cmt_scope_stats(pool_scope, &st)
    cmt_scope_close(pool_scope)
    return st.live_blocks, py_left


def default_pool(const char *name, int n):
    """A Pool with cymem's default allocator (PyMem_Malloc, which is malloc under
    PYTHONMALLOC=malloc), n blocks of 64, 65, ... bytes, made and dropped inside scope name.
    Returns what cmt_scope_close returned."""
    cdef int i
    # A Pool made and dropped first leaves the interpreter's free lists holding the dict and
    # list a Pool takes, so that the measured one returns what it took and the scope's
    # numbers are its own.
    Pool()
    cdef cmt_scope_t s = cmt_scope_open(name, 0)
    mem = Pool()
    for i in range(n):
        (<Pool>mem).alloc(1, 64 + i)
    mem = None
    return cmt_scope_close(s)
