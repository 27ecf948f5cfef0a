/*
 * check_table.c — the live-block table (src/table.c): exact contents under inserts, removals
 * and growth, checked against a plain reference array.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cmt.h"

static struct cmt_table tab;

static void reset(void)
{
    memset(&tab, 0, sizeof tab);
}

static struct cmt_block block(uintptr_t ptr, size_t size)
{
    struct cmt_block b = { .ptr = ptr, .size_thread = size | ((uint64_t)7 << CMT_SIZE_BITS),
                           .instance = (uint32_t)(ptr >> 4), .stack = 3, .seq = 9 };
    return b;
}

START_TEST(insert_lookup_remove)
{
    struct cmt_block b = block(0x1000, 48), got;
    ck_assert(cmt_table_insert(&tab, &b));
    ck_assert_uint_eq(cmt_table_count(&tab), 1);
    ck_assert(cmt_table_lookup(&tab, 0x1000, &got));
    ck_assert_uint_eq(cmt_block_size(&got), 48);
    ck_assert_uint_eq(cmt_block_thread(&got), 7);
    ck_assert_uint_eq(got.instance, 0x100);
    ck_assert(!cmt_table_lookup(&tab, 0x1010, &got));
    ck_assert(cmt_table_remove(&tab, 0x1000, &got));
    ck_assert_uint_eq(got.stack, 3);
    ck_assert(!cmt_table_remove(&tab, 0x1000, &got));
    ck_assert_uint_eq(cmt_table_count(&tab), 0);
}
END_TEST

START_TEST(empty_table_answers_no)
{
    struct cmt_block got;
    ck_assert(!cmt_table_lookup(&tab, 0x1000, &got));
    ck_assert(!cmt_table_remove(&tab, 0x1000, &got));
    ck_assert_uint_eq(cmt_table_count(&tab), 0);
}
END_TEST

START_TEST(size_uses_forty_bits)
{
    uint64_t big = (UINT64_C(1) << 40) - 1;
    struct cmt_block b = block(0x2000, 0), got;
    b.size_thread = big | ((uint64_t)0xABCDEF << CMT_SIZE_BITS);
    ck_assert(cmt_table_insert(&tab, &b));
    ck_assert(cmt_table_lookup(&tab, 0x2000, &got));
    ck_assert_uint_eq(cmt_block_size(&got), big);
    ck_assert_uint_eq(cmt_block_thread(&got), 0xABCDEF);
}
END_TEST

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

struct walk { uintptr_t *seen; size_t n; };

static void collect(const struct cmt_block *b, void *arg)
{
    struct walk *w = arg;
    w->seen[w->n++] = b->ptr;
}

/* Random inserts and removals over a million operations, many shards growing several times,
 * checked against a reference set: this catches a wrong backward shift on delete. */
START_TEST(random_ops_match_reference)
{
    enum { N = 200000, OPS = 1000000 };
    uintptr_t *ref = calloc(N, sizeof *ref);    /* slot i: live pointer or 0 */
    ck_assert_ptr_nonnull(ref);
    size_t live = 0;
    srand(12345);
    for (int op = 0; op < OPS; op++) {
        size_t i = (size_t)rand() % N;
        struct cmt_block got;
        if (ref[i] == 0) {
            /* Addresses 16 apart, as an allocator hands them out, in clustered runs. */
            uintptr_t p = 0x10000000 + ((uintptr_t)i << 4);
            struct cmt_block b = block(p, i);
            ck_assert(cmt_table_insert(&tab, &b));
            ref[i] = p;
            live++;
        } else {
            ck_assert_msg(cmt_table_remove(&tab, ref[i], &got), "live %#lx not found at op %d",
                          (unsigned long)ref[i], op);
            ck_assert_uint_eq(cmt_block_size(&got), i);
            ref[i] = 0;
            live--;
        }
    }
    ck_assert_uint_eq(cmt_table_count(&tab), live);
    struct walk w = { calloc(live + 1, sizeof(uintptr_t)), 0 };
    cmt_table_foreach(&tab, collect, &w);
    ck_assert_uint_eq(w.n, live);
    qsort(w.seen, w.n, sizeof *w.seen, cmp_uintptr);
    size_t k = 0;
    for (size_t i = 0; i < N; i++) {
        if (ref[i] == 0)
            continue;
        ck_assert_uint_eq(w.seen[k], ref[i]);
        k++;
        struct cmt_block got;
        ck_assert(cmt_table_lookup(&tab, ref[i], &got));
    }
    free(w.seen);
    free(ref);
}
END_TEST

/* Every pointer in one shard (same top hash bits) still works: a worst case for probing. */
START_TEST(reinsert_after_remove_all)
{
    enum { N = 50000 };
    for (int round = 0; round < 3; round++) {
        for (uintptr_t i = 1; i <= N; i++) {
            struct cmt_block b = block(i << 5, (size_t)i);
            ck_assert(cmt_table_insert(&tab, &b));
        }
        ck_assert_uint_eq(cmt_table_count(&tab), N);
        for (uintptr_t i = N; i >= 1; i--) {
            struct cmt_block got;
            ck_assert(cmt_table_remove(&tab, i << 5, &got));
            ck_assert_uint_eq(cmt_block_size(&got), (size_t)i);
        }
        ck_assert_uint_eq(cmt_table_count(&tab), 0);
    }
}
END_TEST

/* A shard doubles in place in the span it reserved when it moved (src/table.c): its slots
 * stay where they are for three doublings, then move, and no block is lost either way. */
START_TEST(shard_grows_in_place_then_moves)
{
    enum { N = 1500 };      /* past 1024 blocks: capacity 4096, the fourth doubling */
    const uintptr_t base = (uintptr_t)0x5a5a << 16;     /* one 64 KiB region: one shard */
    struct cmt_shard *s = &tab.shard[cmt_table_region_hash(base) >> 54];
    struct cmt_block *first = NULL;
    for (uintptr_t i = 0; i < N; i++) {
        struct cmt_block b = block(base + (i << 4), (size_t)i + 1);
        ck_assert(cmt_table_insert(&tab, &b));
        if (i == 0) {
            first = s->slots;
            ck_assert_uint_eq(s->mask + 1, 256);
            ck_assert_uint_eq(s->span, 256 * 8);
        }
        if (i < 1024)
            ck_assert_msg(s->slots == first, "moved at block %lu, capacity %u",
                          (unsigned long)i, s->mask + 1);
        if (i == 1023)
            ck_assert_uint_eq(s->mask + 1, 2048);
    }
    ck_assert_uint_eq(s->mask + 1, 4096);
    ck_assert_ptr_ne(s->slots, first);
    ck_assert_uint_eq(s->span, 4096 * 8);
    ck_assert_uint_eq(s->count, N);
    for (uintptr_t i = 0; i < N; i++) {
        struct cmt_block got;
        ck_assert_msg(cmt_table_remove(&tab, base + (i << 4), &got), "block %lu lost",
                      (unsigned long)i);
        ck_assert_uint_eq(cmt_block_size(&got), (size_t)i + 1);
    }
    ck_assert_uint_eq(cmt_table_count(&tab), 0);
}
END_TEST

/* Under a limit on the address space a shard reserves nothing ahead: the reserve could take
 * room the program needs. */
START_TEST(no_reserve_under_an_address_space_limit)
{
    struct rlimit was, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &was), 0);
    lim = was;
    lim.rlim_cur = (rlim_t)1 << 40;     /* finite, and far above what this test uses */
    if (was.rlim_max != RLIM_INFINITY && was.rlim_max < lim.rlim_cur)
        lim.rlim_cur = was.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    const uintptr_t base = (uintptr_t)0x5a5a << 16;
    struct cmt_shard *s = &tab.shard[cmt_table_region_hash(base) >> 54];
    for (uintptr_t i = 0; i < 300; i++) {       /* a first mapping, then a move */
        struct cmt_block b = block(base + (i << 4), (size_t)i + 1);
        ck_assert(cmt_table_insert(&tab, &b));
        ck_assert_uint_eq(s->span, s->mask + 1);
    }
    ck_assert_uint_eq(s->mask + 1, 1024);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &was), 0);
    for (uintptr_t i = 0; i < 300; i++) {
        struct cmt_block got;
        ck_assert(cmt_table_lookup(&tab, base + (i << 4), &got));
        ck_assert_uint_eq(cmt_block_size(&got), (size_t)i + 1);
    }
}
END_TEST

static Suite *table_suite(void)
{
    Suite *s = suite_create("table");
    TCase *basic = tcase_create("basic");
    tcase_add_checked_fixture(basic, reset, NULL);
    tcase_add_test(basic, insert_lookup_remove);
    tcase_add_test(basic, empty_table_answers_no);
    tcase_add_test(basic, size_uses_forty_bits);
    suite_add_tcase(s, basic);
    TCase *bulk = tcase_create("growth");
    tcase_add_checked_fixture(bulk, reset, NULL);
    tcase_set_timeout(bulk, 60);
    tcase_add_test(bulk, random_ops_match_reference);
    tcase_add_test(bulk, reinsert_after_remove_all);
    tcase_add_test(bulk, shard_grows_in_place_then_moves);
    tcase_add_test(bulk, no_reserve_under_an_address_space_limit);
    suite_add_tcase(s, bulk);
    return s;
}

int main(void)
{
    return cmt_run_suite(table_suite());
}
