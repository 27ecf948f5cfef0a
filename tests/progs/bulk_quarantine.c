/*
 * bulk_quarantine.c — run by tests/check_scope.c under the tracker with a small
 * CYMEMTRACK_QUARANTINE: bulk-frees scopes whose blocks come from an arena allocator of its
 * own (cmt_scope_open_with), so that each block's return to the allocator, at close or when
 * the quarantine evicts it, is counted, and a later free of any of them is safe. Then frees
 * every block again and prints how the tracker took those frees.
 *
 * usage: bulk_quarantine SIZE COUNT CLOSES — CLOSES scopes of COUNT blocks of SIZE bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cymemtrack.h"

/* A bump allocator: it never reuses memory, so a block stays recognizable after the
 * tracker gave it back, and its free only counts. Each block takes at least 16 bytes, so
 * that blocks of size 0 have addresses of their own. */
static _Alignas(16) unsigned char arena[4 << 20];
static size_t arena_used;
static unsigned long arena_frees;

static void *arena_malloc(size_t n)
{
    size_t take = n < 16 ? 16 : (n + 15) & ~(size_t)15;
    if (take > sizeof arena - arena_used)
        return NULL;
    void *p = arena + arena_used;
    arena_used += take;
    return p;
}

static void arena_free(void *p)
{
    (void)p;
    arena_frees++;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bulk_quarantine SIZE COUNT CLOSES\n");
        return 2;
    }
    size_t size = strtoul(argv[1], NULL, 10);
    int count = atoi(argv[2]), closes = atoi(argv[3]);
    void **blocks = calloc((size_t)count * (size_t)closes, sizeof *blocks);
    if (!blocks || count < 1 || closes < 1)
        return 2;
    printf("tracked: %d\n", cmt_active());
    if (!cmt_active())
        return 2;   /* untracked, the blocks would go to free() at the end: not the arena's */
    for (int c = 0; c < closes; c++) {
        cmt_scope_t s = cmt_scope_open_with("quarantined", CMT_BULK_FREE, arena_malloc,
                                            arena_free);
        for (int i = 0; i < count; i++)
            if (!(blocks[c * count + i] = cmt_scope_alloc(s, 1, size)))
                return 1;
        long long live = cmt_scope_close(s);
        printf("close %d: %lld blocks, given back so far: %lu\n", c + 1, live, arena_frees);
    }
    /* Every block again, oldest first: the ones still in quarantine are stale frees, the
     * ones the tracker gave back are unknown to it (invalid frees); none reaches a free. */
    struct cmt_process_stats before, after;
    cmt_process_stats(&before);
    for (int i = 0; i < count * closes; i++)
        free(blocks[i]);
    cmt_process_stats(&after);
    printf("stale frees: %llu\n", (unsigned long long)(after.stale_frees - before.stale_frees));
    printf("invalid frees: %llu\n",
           (unsigned long long)(after.invalid_frees - before.invalid_frees));
    printf("given back in all: %lu\n", arena_frees);
    free(blocks);
    return 0;
}
