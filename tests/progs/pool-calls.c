/*
 * pool-calls.c — uses every scope and pool call, with the default allocator and with a
 * custom one, and prints what it computed: the output must be the same with the tracker
 * preloaded and without it (linked with libcymemtrack-api only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cymemtrack.h"

static int custom_calls;

static void *counting_malloc(size_t n)
{
    custom_calls++;
    return malloc(n);
}

static void counting_free(void *p)
{
    custom_calls++;
    free(p);
}

static unsigned sum(const unsigned char *p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

int main(void)
{
    cmt_scope_t outer = cmt_scope_open("outer", 0);
    cmt_scope_t pool = cmt_scope_open("pool", CMT_BULK_FREE);
    unsigned char *a = cmt_scope_alloc(pool, 16, 4);
    memset(a, 7, 32);
    a = cmt_scope_realloc(pool, a, 100);
    /* (The tail beyond the old size is zeroed only with the tracker: without it the call is
     * plain realloc, which cannot know the old size.) */
    printf("pool: kept head %u\n", sum(a, 32));
    char *s = strdup("in the pool scope");
    printf("strdup: %s\n", s);
    cmt_scope_close(pool);   /* a and s are freed here when tracked; leaked otherwise */

    cmt_scope_t custom = cmt_scope_open_with("custom", 0, counting_malloc, counting_free);
    int *v = cmt_scope_alloc(custom, 10, sizeof(int));
    for (int i = 0; i < 10; i++)
        v[i] = i * i;
    printf("custom: v[9] = %d, free rc %d\n", v[9], cmt_scope_free(custom, v));
    cmt_scope_close(custom);
    printf("custom allocator calls: %d\n", custom_calls);
    cmt_scope_close(outer);
    return 0;
}
