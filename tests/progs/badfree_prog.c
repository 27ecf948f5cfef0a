/*
 * badfree_prog.c — run by tests/check_badinput.c under the preload: every kind of free the
 * tracker must refuse (invalid, double, stale) and realloc of pointers that are not live
 * blocks, each a known number of times, so that the suite can check the counts in the
 * report's TOTALS and BADFREE records exactly. What the program sees (NULL, errno, a block
 * left intact) is checked here and said on stdout. Most of these calls would crash a plain
 * run, which is why they are made only under the tracker (it refuses them). Uses no stdio
 * streams (their buffers would be blocks of their own).
 *
 *   badfree_prog     prints "expect_invalid=", "expect_double=", "expect_stale=",
 *                    "expect_live_blocks=", "expect_live_bytes=" and one "check: ... ok"
 *                    line per thing it verified itself
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cymemtrack.h"
#include "say.h"


static int failures;

static void check(const char *what, int ok)
{
    say("check: %s %s\n", what, ok ? "ok" : "FAILED");
    failures += !ok;
}

/* Keeps the compiler from proving anything about a pointer it is given. */
static void *launder(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* A scope's own allocator: a bump arena the next allocator never sees. */
static _Alignas(16) char arena[4096];
static size_t arena_used;

static void *arena_malloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size > sizeof arena - arena_used)
        return NULL;
    void *p = arena + arena_used;
    arena_used += size;
    return p;
}

static void arena_free(void *p)
{
    (void)p;
}

static char static_buf[64];

int main(void)
{
    unsigned invalid = 0, dbl = 0, stale = 0;
    unsigned long live_blocks = 0, live_bytes = 0;

    /* Two leaks, so that the accounting of good blocks is checked beside the bad frees. */
    for (int i = 0; i < 2; i++) {
        char *p = malloc(700 + (size_t)i);
        if (!p)
            return 121;
        p[0] = 1;
        live_blocks++;
        live_bytes += 700 + (unsigned long)i;
    }

    /* Invalid: never handed out by any allocator call. */
    int on_stack = 0;
    free(launder(static_buf + 16));
    free(launder(&on_stack));
    invalid += 2;
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 122;
    free(page);
    invalid++;
    char *live = malloc(100);
    if (!live)
        return 121;
    strcpy(live, "intact");
    free(launder(live + 16));       /* inside a live block: the block stays */
    invalid++;
    check("live block untouched by a free of its inside", strcmp(live, "intact") == 0);

    /* Double. */
    char *p = malloc(48);
    if (!p)
        return 121;
    free(p);
    free(launder(p));
    dbl++;
    p = calloc(3, 16);
    if (!p)
        return 121;
    free(p);
    free(launder(p));
    free(launder(p));
    dbl += 2;
    /* realloc released the old block: moved (a size glibc serves from mmap), and size 0. */
    p = malloc(100);
    if (!p)
        return 121;
    char *q = realloc(p, 1u << 20);
    if (!q || q == p)
        return 123;
    free(launder(p));
    dbl++;
    free(q);
    p = malloc(50);
    if (!p)
        return 121;
    q = realloc(p, 0);
    free(q);                        /* NULL from glibc; harmless either way */
    free(launder(p));
    dbl++;

    /* Stale: blocks a CMT_BULK_FREE scope freed at its close. */
    cmt_scope_t pool = cmt_scope_open("pool", CMT_BULK_FREE);
    char *a = malloc(40), *b = malloc(50), *c = malloc(60);
    if (!pool || !a || !b || !c)
        return 124;
    int64_t owned = cmt_scope_close(pool);
    check("the bulk scope owned 3 blocks at its close", owned == 3);
    free(launder(a));
    stale++;

    /* realloc of what is not a live block: NULL with ENOMEM, counted as the free it
     * implies, and the pointer left alone. */
    errno = 0;
    void *r = realloc(launder(static_buf), 10);
    check("realloc of a static buffer: NULL, ENOMEM", r == NULL && errno == ENOMEM);
    invalid++;
    errno = 0;
    r = realloc(launder(live + 8), 200);
    check("realloc inside a live block: NULL, ENOMEM, block intact",
          r == NULL && errno == ENOMEM && strcmp(live, "intact") == 0);
    invalid++;
    p = malloc(30);
    if (!p)
        return 121;
    free(p);
    errno = 0;
    r = realloc(launder(p), 60);
    check("realloc of a freed block: NULL, ENOMEM", r == NULL && errno == ENOMEM);
    dbl++;
    errno = 0;
    r = realloc(launder(b), 80);
    check("realloc of a bulk-freed block: NULL, ENOMEM", r == NULL && errno == ENOMEM);
    stale++;
    free(launder(c));
    stale++;

    /* A block of a scope with its own allocator: realloc cannot move it (the next allocator
     * never saw it), says so, and leaves it; that is no bad free. */
    cmt_scope_t own = cmt_scope_open_with("own", 0, arena_malloc, arena_free);
    char *x = cmt_scope_alloc(own, 1, 64);
    if (!own || !x)
        return 125;
    strcpy(x, "kept");
    errno = 0;
    r = realloc(x, 128);
    check("realloc of a block from a scope's own allocator: NULL, ENOMEM, kept",
          r == NULL && errno == ENOMEM && strcmp(x, "kept") == 0);
    check("cmt_scope_free of it afterwards", cmt_scope_free(own, x) == 0);
    cmt_scope_close(own);

    free(live);
    say("expect_invalid=%u\nexpect_double=%u\nexpect_stale=%u\n", invalid, dbl, stale);
    say("expect_live_blocks=%lu\nexpect_live_bytes=%lu\n", live_blocks, live_bytes);
    return failures ? 1 : 0;
}
