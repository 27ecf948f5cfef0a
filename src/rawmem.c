/*
 * rawmem.c — the tracker's own memory.
 *
 * Every byte the tracker keeps for itself comes from here, and everything here comes from
 * mmap: the tracked allocator is never asked, so the tracker cannot recurse into itself or
 * disturb the heap it watches. Small permanent objects are carved from 1 MiB arenas under a
 * spinlock (a rare path: scope names, instance records, thread records); large arrays that
 * grow get mappings of their own.
 */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>

#include "cmt.h"

#define ARENA_SIZE ((size_t)1 << 20)
#define RAW_ALIGN 16

static struct {
    cmt_spinlock lock;
    char *next;     /* first free byte of the current arena */
    char *end;
} raw;

void *cmt_raw_map(size_t size)
{
    int saved_errno = errno;
    /* Populated: every mapping here is an array about to be filled (a table shard being
     * rehashed into, a list being copied), and faulting it in page by page costs twice,
     * since the first touch of a fresh page is often a read that maps the zero page. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    errno = saved_errno;
    return p == MAP_FAILED ? NULL : p;
}

void cmt_raw_unmap(void *p, size_t size)
{
    int saved_errno = errno;
    munmap(p, size);
    errno = saved_errno;
}

/* Inaccessible and unaccounted: a kernel that counts commitments strictly (overcommit mode 2)
 * counts a range when it becomes writable, in cmt_raw_commit. */
void *cmt_raw_reserve(size_t size)
{
    int saved_errno = errno;
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    errno = saved_errno;
    return p == MAP_FAILED ? NULL : p;
}

bool cmt_raw_commit(void *p, size_t size)
{
    int saved_errno = errno;
    bool ok = mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
#ifdef MADV_POPULATE_WRITE
    /* As MAP_POPULATE in cmt_raw_map; a kernel older than 5.14 says EINVAL and the pages
     * fault in as they are first written. */
    if (ok)
        madvise(p, size, MADV_POPULATE_WRITE);
#endif
    errno = saved_errno;
    return ok;
}

void *cmt_raw_alloc(size_t size)
{
    size = (size + RAW_ALIGN - 1) & ~(size_t)(RAW_ALIGN - 1);
    if (size > ARENA_SIZE / 4)
        return cmt_raw_map(size);   /* large: a mapping of its own, never returned */

    cmt_spin_lock(&raw.lock);
    if ((size_t)(raw.end - raw.next) < size) {
        /* The tail of the old arena is abandoned: at most a quarter of an arena, once. */
        char *arena = cmt_raw_map(ARENA_SIZE);
        if (!arena) {
            cmt_spin_unlock(&raw.lock);
            return NULL;
        }
        raw.next = arena;
        raw.end = arena + ARENA_SIZE;
    }
    void *p = raw.next;
    raw.next += size;
    cmt_spin_unlock(&raw.lock);
    return p;
}

void cmt_raw_lock(void)
{
    cmt_spin_lock(&raw.lock);
}

void cmt_raw_unlock(void)
{
    cmt_spin_unlock(&raw.lock);
}
