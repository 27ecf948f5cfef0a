/*
 * bootstrap_prog.c — run by tests/check_bootstrap.c under the tracker with libtestdlsym.so
 * preloaded beside it: looks at the blocks the tracker served from its bootstrap area while
 * its dlsym calls allocated, frees some and reallocs one out of the area, makes allocations
 * of its own in scope "boot", and prints what it found, one NAME=NUMBER a line. Exits 0
 * only when it got that far.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cymemtrack.h"
#include "../testdlsym.h"

/* Weak: without libtestdlsym.so preloaded it is NULL, and the program says so. */
extern const struct testdlsym_state *testdlsym_state(void) __attribute__((weak));

#define MOVED_SIZE 4000
#define GROWN_SIZE 8000
#define OWN_BLOCKS 8

/* The file name of the object whose mapping holds p, or "no object" (the heap). */
static const char *owner(const void *p)
{
    Dl_info info;
    if (!dladdr(p, &info) || !info.dli_fname)
        return "no object";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

int main(void)
{
    if (!testdlsym_state) {
        printf("libtestdlsym.so is not preloaded\n");
        return 2;
    }
    const struct testdlsym_state *st = testdlsym_state();
    int n = st->kept_count, in_tracker = 0, contents = 0, usable = 0;
    for (int i = 0; i < n; i++) {
        in_tracker += strcmp(owner(st->kept[i]), "libcymemtrack.so") == 0;
        contents += strncmp(st->kept[i], "dlsym: ", 7) == 0;
        usable += malloc_usable_size(st->kept[i]) == TESTDLSYM_KEPT_SIZE;
    }
    /* The first output allocates stdout's buffer: before the scope, so that the scope holds
     * only the allocations below. */
    printf("lookups=%d\n", st->allocator_calls);
    printf("failures=%d\n", st->failures);
    printf("kept=%d\n", n);
    printf("in_tracker=%d\n", in_tracker);
    printf("contents=%d\n", contents);
    printf("usable=%d\n", usable);
    if (n < 2)
        return 1;

    char first[TESTDLSYM_KEPT_SIZE];
    memcpy(first, st->kept[0], sizeof first);
    cmt_scope_t scope = cmt_scope_open("boot", 0);
    /* Out of the bootstrap area into the real heap, content and all. */
    char *moved = realloc(st->kept[0], MOVED_SIZE);
    int moved_out = moved && strcmp(owner(moved), "libcymemtrack.so") != 0;
    int moved_kept = moved && memcmp(moved, first, sizeof first) == 0;
    if (!moved)
        return 1;
    memset(moved + sizeof first, 'x', MOVED_SIZE - sizeof first);
    /* Frees of bootstrap blocks: recognized, and never handed to the real free, which would
     * abort on a pointer it never gave out. */
    for (int i = 1; i < n; i++)
        free(st->kept[i]);
    char *own[OWN_BLOCKS];
    for (int i = 0; i < OWN_BLOCKS; i++) {
        own[i] = malloc(100 * (size_t)(i + 1));
        if (!own[i])
            return 1;
        memset(own[i], i, 100 * (size_t)(i + 1));
    }
    for (int i = 0; i < OWN_BLOCKS; i += 2)
        free(own[i]);       /* 100 + 300 + 500 + 700 bytes; the odd ones leak */
    char *grown = realloc(moved, GROWN_SIZE);
    int grown_kept = grown && memcmp(grown, first, sizeof first) == 0 &&
                     grown[MOVED_SIZE - 1] == 'x';
    if (!grown)
        return 1;
    free(grown);
    long long live = cmt_scope_close(scope);

    printf("moved_out=%d\n", moved_out);
    printf("moved_kept=%d\n", moved_kept);
    printf("grown_kept=%d\n", grown_kept);
    printf("live_at_close=%lld\n", live);
    return 0;
}
