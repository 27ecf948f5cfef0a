/*
 * check_malloc.c — the interposed malloc family (src/hooks.c), run inside a process that has
 * the library under test preloaded: every function's documented behaviour and edge cases,
 * and exact accounting of each call in the process totals.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cymemtrack.h"

/* Check's assertions allocate: a test measures between cmt_stats_snap() and
 * cmt_stats_delta() (tests/stats-delta.c) with no assertion, and asserts afterwards. */

/* Sizes no allocator can serve; volatile, so the compiler does not warn about them. */
static volatile size_t huge = SIZE_MAX - 4096;
static volatile size_t half = SIZE_MAX / 2;

#define ASSERT_DELTA(d, a, f, lb, lbytes)                                                 \
    do {                                                                                  \
        ck_assert_msg((d).allocations == (a) && (d).frees == (f) &&                        \
                          (d).live_blocks == (uint64_t)(lb) &&                             \
                          (d).live_bytes == (uint64_t)(lbytes),                            \
                      "expected allocations +%d frees +%d live +%d/%ldB, "                 \
                      "got +%lu +%lu +%ld/%ldB",                                           \
                      (a), (f), (int)(lb), (long)(lbytes), (unsigned long)(d).allocations, \
                      (unsigned long)(d).frees, (long)(d).live_blocks,                    \
                      (long)(d).live_bytes);                                               \
    } while (0)

START_TEST(tracker_is_active)
{
    ck_assert_int_eq(cmt_active(), 1);
}
END_TEST

START_TEST(malloc_and_free_are_counted)
{
    cmt_stats_snap();
    char *p = malloc(100);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_ptr_nonnull(p);
    ASSERT_DELTA(d, 1, 0, 1, 100);
    ck_assert_uint_eq(d.bytes_allocated, 100);
    cmt_stats_snap();
    free(p);
    d = cmt_stats_delta();
    ASSERT_DELTA(d, 0, 1, -1, -100);
}
END_TEST

START_TEST(malloc_zero_is_a_unique_block)
{
    cmt_stats_snap();
    void *a = malloc(0), *b = malloc(0);
    struct cmt_process_stats d1 = cmt_stats_delta();
    free(a);
    free(b);
    struct cmt_process_stats d2 = cmt_stats_delta();
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ASSERT_DELTA(d1, 2, 0, 2, 0);
    ASSERT_DELTA(d2, 2, 2, 0, 0);
}
END_TEST

START_TEST(malloc_huge_fails_with_enomem)
{
    cmt_stats_snap();
    errno = 0;
    void *p = malloc(huge);
    int e = errno;
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_ptr_null(p);
    ck_assert_int_eq(e, ENOMEM);
    ASSERT_DELTA(d, 0, 0, 0, 0);
}
END_TEST

START_TEST(free_null_is_nothing)
{
    cmt_stats_snap();
    free(NULL);
    struct cmt_process_stats d = cmt_stats_delta();
    ASSERT_DELTA(d, 0, 0, 0, 0);
    ck_assert_uint_eq(d.invalid_frees, 0);
}
END_TEST

START_TEST(errno_is_kept_on_success)
{
    errno = 1234;
    void *p = malloc(10);
    void *q = calloc(3, 7);
    p = realloc(p, 5000);
    free(q);
    free(p);
    ck_assert_int_eq(errno, 1234);
}
END_TEST

START_TEST(calloc_zeroes_and_counts_product)
{
    cmt_stats_snap();
    unsigned char *p = calloc(17, 13);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 17 * 13; i++)
        ck_assert_uint_eq(p[i], 0);
    ASSERT_DELTA(d, 1, 0, 1, 17 * 13);
    free(p);
}
END_TEST

START_TEST(calloc_overflow_fails_with_enomem)
{
    cmt_stats_snap();
    errno = 0;
    void *a = calloc(half, 3);
    int ea = errno;
    errno = 0;
    void *b = calloc(3, half);
    int eb = errno;
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_ptr_null(a);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(ea, ENOMEM);
    ck_assert_int_eq(eb, ENOMEM);
    ASSERT_DELTA(d, 0, 0, 0, 0);
}
END_TEST

START_TEST(realloc_null_is_malloc)
{
    cmt_stats_snap();
    void *p = realloc(NULL, 64);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_ptr_nonnull(p);
    ASSERT_DELTA(d, 1, 0, 1, 64);
    free(p);
}
END_TEST

START_TEST(realloc_zero_frees)
{
    void *p = malloc(64);
    cmt_stats_snap();
    /* glibc frees the block and returns NULL. */
    void *q = realloc(p, 0);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_ptr_null(q);
    ASSERT_DELTA(d, 0, 1, -1, -64);
    ck_assert_uint_eq(d.invalid_frees + d.double_frees, 0);
}
END_TEST

START_TEST(realloc_keeps_contents_and_counts_free_and_alloc)
{
    char *p = malloc(16);
    memcpy(p, "0123456789abcde", 16);
    cmt_stats_snap();
    char *q = realloc(p, 100000);
    struct cmt_process_stats d1 = cmt_stats_delta();
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q, "0123456789abcde");
    ASSERT_DELTA(d1, 1, 1, 0, 100000 - 16);
    cmt_stats_snap();
    q = realloc(q, 8);
    struct cmt_process_stats d2 = cmt_stats_delta();
    ck_assert_int_eq(memcmp(q, "01234567", 8), 0);
    ASSERT_DELTA(d2, 1, 1, 0, 8 - 100000);
    free(q);
}
END_TEST

START_TEST(realloc_failure_leaves_block_alone)
{
    char *p = malloc(32);
    strcpy(p, "still here");
    cmt_stats_snap();
    errno = 0;
    void *q = realloc(p, huge);
    int e = errno;
    struct cmt_process_stats d1 = cmt_stats_delta();
    cmt_stats_snap();
    free(p);
    struct cmt_process_stats d2 = cmt_stats_delta();
    ck_assert_ptr_null(q);
    ck_assert_int_eq(e, ENOMEM);
    ASSERT_DELTA(d1, 0, 0, 0, 0);
    ASSERT_DELTA(d2, 0, 1, -1, -32);
}
END_TEST

START_TEST(reallocarray_checks_overflow)
{
    /* p goes through a volatile: GCC cannot know that the failed call below left it alone. */
    int *volatile p = reallocarray(NULL, 10, sizeof(int));
    ck_assert_ptr_nonnull(p);
    p[9] = 42;
    cmt_stats_snap();
    errno = 0;
    int *q = reallocarray(p, half, 4);
    int e = errno;
    struct cmt_process_stats d1 = cmt_stats_delta();
    cmt_stats_snap();
    int *grown = reallocarray(p, 20, sizeof(int));
    struct cmt_process_stats d2 = cmt_stats_delta();
    ck_assert_ptr_null(q);
    ck_assert_int_eq(e, ENOMEM);
    ASSERT_DELTA(d1, 0, 0, 0, 0);
    ck_assert_int_eq(grown[9], 42);
    ASSERT_DELTA(d2, 1, 1, 0, 10 * sizeof(int));
    free(grown);
}
END_TEST

START_TEST(posix_memalign_every_alignment)
{
    for (size_t align = sizeof(void *); align <= 65536; align *= 2) {
        cmt_stats_snap();
        void *p = NULL;
        int rc = posix_memalign(&p, align, 100);
        struct cmt_process_stats d1 = cmt_stats_delta();
        free(p);
        struct cmt_process_stats d2 = cmt_stats_delta();
        ck_assert_int_eq(rc, 0);
        ck_assert_msg(((uintptr_t)p & (align - 1)) == 0, "%p not aligned to %zu", p, align);
        ASSERT_DELTA(d1, 1, 0, 1, 100);
        ASSERT_DELTA(d2, 1, 1, 0, 0);
    }
}
END_TEST

START_TEST(posix_memalign_errors_leave_memptr)
{
    void *sentinel = (void *)0x5151, *p = sentinel;
    cmt_stats_snap();
    int rc[5] = {
        posix_memalign(&p, 0, 16),
        posix_memalign(&p, 3, 16),
        posix_memalign(&p, 24, 16),
        posix_memalign(&p, sizeof(void *) / 2, 16),
        posix_memalign(&p, 64, huge),
    };
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_int_eq(rc[0], EINVAL);
    ck_assert_int_eq(rc[1], EINVAL);
    ck_assert_int_eq(rc[2], EINVAL);
    ck_assert_int_eq(rc[3], EINVAL);
    ck_assert_int_eq(rc[4], ENOMEM);
    ck_assert_ptr_eq(p, sentinel);
    ASSERT_DELTA(d, 0, 0, 0, 0);
}
END_TEST

START_TEST(aligned_alloc_every_alignment)
{
    for (size_t align = 1; align <= 65536; align *= 2) {
        cmt_stats_snap();
        void *p = aligned_alloc(align, align * 2);
        struct cmt_process_stats d = cmt_stats_delta();
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(((uintptr_t)p & (align - 1)) == 0, "%p not aligned to %zu", p, align);
        ASSERT_DELTA(d, 1, 0, 1, align * 2);
        free(p);
    }
}
END_TEST

START_TEST(memalign_valloc_pvalloc)
{
    long page = sysconf(_SC_PAGESIZE);
    cmt_stats_snap();
    void *a = memalign(4096, 10);
    void *b = valloc(10);
    void *c = pvalloc(10);
    struct cmt_process_stats d1 = cmt_stats_delta();
    cmt_stats_snap();
    size_t usable = malloc_usable_size(c);
    free(a);
    free(b);
    free(c);
    struct cmt_process_stats d2 = cmt_stats_delta();
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq((uintptr_t)a % 4096, 0);
    ck_assert_uint_eq((uintptr_t)b % (uintptr_t)page, 0);
    ck_assert_uint_eq((uintptr_t)c % (uintptr_t)page, 0);
    ck_assert_uint_ge(usable, (size_t)page);
    ASSERT_DELTA(d1, 3, 0, 3, 30);
    ASSERT_DELTA(d2, 0, 3, -3, -30);
}
END_TEST

START_TEST(usable_size_is_at_least_requested)
{
    for (size_t n = 1; n < 5000; n += 97) {
        void *p = malloc(n);
        ck_assert_uint_ge(malloc_usable_size(p), n);
        free(p);
    }
    ck_assert_uint_eq(malloc_usable_size(NULL), 0);
}
END_TEST

START_TEST(library_internals_are_tracked)
{
    cmt_stats_snap();
    char *s = strdup("hello");
    char *f = NULL;
    int n = asprintf(&f, "%d-%s", 42, s);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_int_eq(n, 8);
    ck_assert_str_eq(f, "42-hello");
    /* strdup's block and the final asprintf buffer stay live; asprintf may use and free
     * scratch blocks on the way. */
    ck_assert_uint_eq(d.live_blocks, 2);
    ck_assert_uint_eq(d.live_blocks, d.allocations - d.frees);
    free(s);
    free(f);
}
END_TEST

START_TEST(invalid_free_is_counted_and_ignored)
{
    static char not_heap[64];
    cmt_stats_snap();
    free(not_heap + 16);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_uint_eq(d.invalid_frees, 1);
    ck_assert_uint_eq(d.double_frees, 0);
    ASSERT_DELTA(d, 0, 0, 0, 0);
}
END_TEST

START_TEST(double_free_is_counted_and_ignored)
{
    void *p = malloc(48);
    cmt_stats_snap();
    free(p);
    free(p);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_uint_eq(d.double_frees, 1);
    ck_assert_uint_eq(d.invalid_frees, 0);
    ASSERT_DELTA(d, 0, 1, -1, -48);
    /* The heap is intact: allocation goes on normally. */
    void *q = malloc(48);
    ck_assert_ptr_nonnull(q);
    free(q);
}
END_TEST

START_TEST(realloc_of_foreign_pointer_fails_safely)
{
    static char not_heap[64] = "abc";
    cmt_stats_snap();
    errno = 0;
    void *q = realloc(not_heap, 128);
    int e = errno;
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_ptr_null(q);
    ck_assert_int_eq(e, ENOMEM);
    ck_assert_str_eq(not_heap, "abc");
    ck_assert_uint_eq(d.invalid_frees, 1);
    ASSERT_DELTA(d, 0, 0, 0, 0);
}
END_TEST

START_TEST(peak_follows_live_bytes)
{
    struct cmt_process_stats s0;
    cmt_process_stats(&s0);
    void *p = malloc(8 << 20);
    memset(p, 0, 8 << 20);
    free(p);
    struct cmt_process_stats s1;
    cmt_process_stats(&s1);
    ck_assert_uint_ge(s1.peak_live_bytes, s0.live_bytes + (8u << 20));
    ck_assert_uint_eq(s1.live_bytes, s0.live_bytes);
}
END_TEST

START_TEST(totals_balance)
{
    struct cmt_process_stats s;
    for (int i = 0; i < 10000; i++)
        free(malloc((size_t)i % 700));
    ck_assert_int_eq(cmt_process_stats(&s), 0);
    ck_assert_uint_eq(s.allocations - s.frees, s.live_blocks);
}
END_TEST

static Suite *malloc_suite(void)
{
    Suite *s = suite_create("malloc");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, tracker_is_active);
    tcase_add_test(tc, malloc_and_free_are_counted);
    tcase_add_test(tc, malloc_zero_is_a_unique_block);
    tcase_add_test(tc, malloc_huge_fails_with_enomem);
    tcase_add_test(tc, free_null_is_nothing);
    tcase_add_test(tc, errno_is_kept_on_success);
    tcase_add_test(tc, totals_balance);
    tcase_add_test(tc, peak_follows_live_bytes);
    tcase_add_test(tc, library_internals_are_tracked);
    suite_add_tcase(s, tc);

    tc = tcase_create("calloc-realloc");
    tcase_add_test(tc, calloc_zeroes_and_counts_product);
    tcase_add_test(tc, calloc_overflow_fails_with_enomem);
    tcase_add_test(tc, realloc_null_is_malloc);
    tcase_add_test(tc, realloc_zero_frees);
    tcase_add_test(tc, realloc_keeps_contents_and_counts_free_and_alloc);
    tcase_add_test(tc, realloc_failure_leaves_block_alone);
    tcase_add_test(tc, reallocarray_checks_overflow);
    suite_add_tcase(s, tc);

    tc = tcase_create("aligned");
    tcase_add_test(tc, posix_memalign_every_alignment);
    tcase_add_test(tc, posix_memalign_errors_leave_memptr);
    tcase_add_test(tc, aligned_alloc_every_alignment);
    tcase_add_test(tc, memalign_valloc_pvalloc);
    tcase_add_test(tc, usable_size_is_at_least_requested);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad-frees");
    tcase_add_test(tc, invalid_free_is_counted_and_ignored);
    tcase_add_test(tc, double_free_is_counted_and_ignored);
    tcase_add_test(tc, realloc_of_foreign_pointer_fails_safely);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    cmt_reexec_preloaded(argv);
    return cmt_run_suite(malloc_suite());
}
