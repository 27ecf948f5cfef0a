/*
 * check_threads.c — the tracker under load, run inside a process that has the library under
 * test preloaded: 2 to 8 threads making millions of mixed malloc-family calls, blocks handed
 * between threads through queues and freed or reallocated by a thread that did not allocate
 * them, threads that exit while their blocks live on, scopes opened, closed and bulk-freed
 * while other threads free their blocks. No crash, no deadlock (Check's timeout), and the
 * totals must balance exactly against what the program itself counted.
 *
 * A fixed number of calls by default; CMT_STRESS_SECONDS=N runs each test for about N seconds.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cymemtrack.h"

#define MAX_THREADS 8
#define HELD_MAX 256            /* blocks a worker holds at once */
#define INBOX_CAP 256           /* blocks waiting for a worker to take them */
#define STACK_SIZE (256 * 1024) /* small stacks stay in glibc's stack cache: no churn */
#define DEFAULT_OPS 4000000ull  /* operations over all the workers of one test */

static double stress_seconds(void)
{
    const char *v = getenv("CMT_STRESS_SECONDS");
    return v && *v ? strtod(v, NULL) : 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Mostly small blocks, some medium, a few above glibc's mmap threshold, and size 0. */
static size_t pick_size(uint64_t r)
{
    unsigned k = (unsigned)(r % 1000);
    if (k < 5)
        return 0;
    if (k < 850)
        return 1 + (size_t)((r >> 10) % 512);
    if (k < 995)
        return 513 + (size_t)((r >> 10) % 8192);
    return (64 << 10) + (size_t)((r >> 10) % (192 << 10));
}

/* ---- what the program itself knows ---------------------------------------------------- */

/* A block as the program knows it. Its first and last bytes carry a tag, checked before it
 * is freed or moved: a tracker that mixed blocks up, or freed one early, would show here. */
struct blk {
    unsigned char *p;
    size_t size;
    unsigned char tag;
    unsigned char bulk;         /* owned by a bulk-free scope: dies with it */
};

static void tag_block(struct blk *b, unsigned char tag)
{
    b->tag = tag;
    if (b->size) {
        b->p[0] = tag;
        b->p[b->size - 1] = tag;
    }
}

static int tag_ok(const struct blk *b)
{
    return b->size == 0 || (b->p[0] == b->tag && b->p[b->size - 1] == b->tag);
}

/* The calls a worker made, counted the way the tracker counts them: a realloc is one
 * allocation and one free. */
struct counts {
    unsigned long long allocs, bytes, frees, ops;
    unsigned long long free_calls;  /* free() calls, the ignored ones included */
    unsigned long long racy_frees;  /* frees of bulk-scope blocks that may have lost a race */
    unsigned long long bad;         /* broken tags, unaligned or non-zeroed blocks */
};

static void counts_add(struct counts *sum, const struct counts *c)
{
    sum->allocs += c->allocs;
    sum->bytes += c->bytes;
    sum->frees += c->frees;
    sum->ops += c->ops;
    sum->free_calls += c->free_calls;
    sum->racy_frees += c->racy_frees;
    sum->bad += c->bad;
}

/* Blocks handed to one worker by another. */
struct inbox {
    pthread_mutex_t lock;
    struct blk item[INBOX_CAP];
    unsigned head, len;
};

static int inbox_put(struct inbox *q, const struct blk *b)
{
    pthread_mutex_lock(&q->lock);
    int ok = q->len < INBOX_CAP;
    if (ok) {
        q->item[(q->head + q->len) % INBOX_CAP] = *b;
        q->len++;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static int inbox_take(struct inbox *q, struct blk *b)
{
    pthread_mutex_lock(&q->lock);
    int ok = q->len > 0;
    if (ok) {
        *b = q->item[q->head];
        q->head = (q->head + 1) % INBOX_CAP;
        q->len--;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

/* ---- workers, and the measurement around them ----------------------------------------- */

struct stress {
    int nthreads;
    unsigned long long ops_per_thread;
    double seconds;             /* > 0: run for this long instead */
    pthread_barrier_t arrived, go;
    struct inbox inbox[MAX_THREADS];
    struct counts count[MAX_THREADS];
    /* What each worker holds; what it still holds when it exits lives on. */
    struct blk held[MAX_THREADS][HELD_MAX];
    size_t nheld[MAX_THREADS];
};

struct worker_arg {
    struct stress *st;
    int id;
};

/* Check's assertions allocate: a test measures between cmt_stats_snap() and
 * cmt_stats_delta() (tests/stats-delta.c) with no assertion, and asserts afterwards. */

static void stress_init(struct stress *st, int nthreads, unsigned long long total_ops)
{
    memset(st, 0, sizeof *st);
    st->nthreads = nthreads;
    st->ops_per_thread = total_ops / (unsigned)nthreads;
    st->seconds = stress_seconds();
    for (int i = 0; i < nthreads; i++)
        pthread_mutex_init(&st->inbox[i].lock, NULL);
}

/* Starts the workers, lets them all wait, measures, releases them and joins them: the
 * measurement sees what the workers do and not pthread_create's own allocations. */
static void run_workers(struct stress *st, void *(*fn)(void *))
{
    pthread_t th[MAX_THREADS];
    struct worker_arg arg[MAX_THREADS];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK_SIZE);
    pthread_barrier_init(&st->arrived, NULL, (unsigned)st->nthreads + 1);
    pthread_barrier_init(&st->go, NULL, (unsigned)st->nthreads + 1);
    for (int i = 0; i < st->nthreads; i++) {
        arg[i] = (struct worker_arg){ st, i };
        if (pthread_create(&th[i], &attr, fn, &arg[i]) != 0)
            abort();
    }
    pthread_barrier_wait(&st->arrived);
    cmt_stats_snap();
    pthread_barrier_wait(&st->go);
    for (int i = 0; i < st->nthreads; i++)
        pthread_join(th[i], NULL);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&st->arrived);
    pthread_barrier_destroy(&st->go);
}

static void worker_start(struct stress *st)
{
    pthread_barrier_wait(&st->arrived);
    pthread_barrier_wait(&st->go);
}

/* Whether a worker that has made ops operations goes on; *checked is the operation count at
 * its last look at the clock. */
static int keep_going(const struct stress *st, unsigned long long ops,
                      unsigned long long *checked, double start)
{
    if (st->seconds <= 0)
        return ops < st->ops_per_thread;
    if (ops - *checked < 1024)
        return 1;
    *checked = ops;
    return now_seconds() - start < st->seconds;
}

/* The blocks the program still knows after the workers are gone: those each worker held at
 * exit and those still waiting in the inboxes; bulk-scope blocks among them are dead. */
static void survivors(const struct stress *st, unsigned long long *blocks,
                      unsigned long long *bytes)
{
    *blocks = *bytes = 0;
    for (int i = 0; i < st->nthreads; i++) {
        for (size_t k = 0; k < st->nheld[i]; k++) {
            *blocks += !st->held[i][k].bulk;
            *bytes += st->held[i][k].bulk ? 0 : st->held[i][k].size;
        }
        const struct inbox *q = &st->inbox[i];
        for (unsigned k = 0; k < q->len; k++) {
            const struct blk *b = &q->item[(q->head + k) % INBOX_CAP];
            *blocks += !b->bulk;
            *bytes += b->bulk ? 0 : b->size;
        }
    }
}

/* Frees every survivor from the main thread, after the threads that allocated them exited;
 * returns how many it freed, and counts broken tags in *bad. */
static unsigned long long free_survivors(struct stress *st, unsigned long long *bad)
{
    unsigned long long n = 0;
    for (int i = 0; i < st->nthreads; i++) {
        for (size_t k = 0; k < st->nheld[i]; k++) {
            if (st->held[i][k].bulk)
                continue;
            *bad += !tag_ok(&st->held[i][k]);
            free(st->held[i][k].p);
            n++;
        }
        st->nheld[i] = 0;
        struct blk b;
        while (inbox_take(&st->inbox[i], &b)) {
            if (b.bulk)
                continue;
            *bad += !tag_ok(&b);
            free(b.p);
            n++;
        }
    }
    return n;
}

/* ---- mixed calls with cross-thread frees ----------------------------------------------- */

static void *mixed_worker(void *argp)
{
    struct worker_arg *a = argp;
    struct stress *st = a->st;
    struct counts *c = &st->count[a->id];
    struct inbox *mine = &st->inbox[a->id];
    struct inbox *next = &st->inbox[(a->id + 1) % st->nthreads];
    struct blk *held = st->held[a->id];
    size_t nheld = 0;
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(a->id + 1);

    worker_start(st);
    double start = st->seconds > 0 ? now_seconds() : 0;
    unsigned long long checked = 0;
    while (keep_going(st, c->ops, &checked, start)) {
        uint64_t r = next_rand(&x);
        unsigned op = (unsigned)(r % 100);
        struct blk b = { 0 };
        c->ops++;
        if (nheld == HELD_MAX || (op < 30 && nheld > 0)) {
            /* free one of ours */
            size_t i = (size_t)(r >> 32) % nheld;
            c->bad += !tag_ok(&held[i]);
            free(held[i].p);
            c->frees++;
            held[i] = held[--nheld];
        } else if (op < 45) {
            /* malloc, or calloc, posix_memalign, aligned_alloc */
            b.size = pick_size(r >> 8);
            unsigned kind = (unsigned)((r >> 40) % 16);
            if (kind < 3) {
                size_t n = 1 + b.size / 16;
                b.p = calloc(n, 16);
                b.size = n * 16;
                for (size_t k = 0; b.p && k < b.size; k += 61)
                    c->bad += b.p[k] != 0;
            } else if (kind == 3) {
                size_t align = (size_t)64 << ((r >> 48) % 7);
                void *p = NULL;
                if (posix_memalign(&p, align, b.size) != 0)
                    abort();
                b.p = p;
                c->bad += ((uintptr_t)p & (align - 1)) != 0;
            } else if (kind == 4) {
                size_t align = (size_t)16 << ((r >> 48) % 9);
                b.size = (b.size + align - 1) / align * align;
                b.p = aligned_alloc(align, b.size);
                c->bad += ((uintptr_t)b.p & (align - 1)) != 0;
            } else {
                b.p = malloc(b.size);
            }
            if (!b.p)
                abort();
            c->allocs++;
            c->bytes += b.size;
            tag_block(&b, (unsigned char)(r >> 56));
            held[nheld++] = b;
        } else if (op < 55 && nheld > 0) {
            /* realloc one of ours, bigger or smaller */
            size_t i = (size_t)(r >> 32) % nheld;
            c->bad += !tag_ok(&held[i]);
            size_t size = 1 + pick_size(r >> 12);
            unsigned char *q = realloc(held[i].p, size);
            if (!q)
                abort();
            c->bad += held[i].size && q[0] != held[i].tag;
            c->allocs++;
            c->frees++;
            c->bytes += size;
            held[i].p = q;
            held[i].size = size;
            tag_block(&held[i], (unsigned char)(r >> 56));
        } else if (op < 75 && nheld > 0) {
            /* hand one to the next worker */
            size_t i = (size_t)(r >> 32) % nheld;
            if (inbox_put(next, &held[i]))
                held[i] = held[--nheld];
        } else {
            /* take what was handed to us: free most, move some with realloc and keep them */
            for (int k = 0; k < 4 && inbox_take(mine, &b); k++) {
                c->bad += !tag_ok(&b);
                if (k == 0 && nheld < HELD_MAX && (r & 0x100)) {
                    size_t size = 1 + pick_size(r >> 16);
                    unsigned char *q = realloc(b.p, size);
                    if (!q)
                        abort();
                    c->bad += b.size && q[0] != b.tag;
                    c->allocs++;
                    c->frees++;
                    c->bytes += size;
                    b.p = q;
                    b.size = size;
                    tag_block(&b, (unsigned char)(r >> 56));
                    held[nheld++] = b;
                } else {
                    free(b.p);
                    c->frees++;
                }
            }
        }
    }
    /* Exits holding blocks: they stay live, and counted, after this thread is gone. */
    st->nheld[a->id] = nheld;
    return NULL;
}

static void check_balance(const char *what, struct stress *st)
{
    struct cmt_process_stats d = cmt_stats_delta();
    struct counts sum = { 0 };
    for (int i = 0; i < st->nthreads; i++)
        counts_add(&sum, &st->count[i]);
    unsigned long long live, live_bytes;
    survivors(st, &live, &live_bytes);

    /* Free what the dead threads left, from this thread, and measure again. */
    unsigned long long bad = 0;
    cmt_stats_snap();
    unsigned long long freed = free_survivors(st, &bad);
    struct cmt_process_stats after = cmt_stats_delta();

    printf("threads: %-10s %d threads, %llu operations: %llu allocations, %llu frees, "
           "%llu blocks outlived their threads\n", what, st->nthreads, sum.ops, sum.allocs,
           sum.frees, live);
    fflush(stdout);
    ck_assert_msg(sum.bad == 0 && bad == 0,
                  "%s: %llu blocks came back damaged, misaligned or not zeroed", what,
                  sum.bad + bad);
    ck_assert_msg(d.allocations == sum.allocs && d.frees == sum.frees,
                  "%s: the program made %llu allocations and %llu frees, the tracker counted "
                  "%llu and %llu", what, sum.allocs, sum.frees,
                  (unsigned long long)d.allocations, (unsigned long long)d.frees);
    ck_assert_msg(d.bytes_allocated == sum.bytes,
                  "%s: %llu bytes requested, the tracker counted %llu", what, sum.bytes,
                  (unsigned long long)d.bytes_allocated);
    ck_assert_msg(d.live_blocks == live && d.live_bytes == live_bytes,
                  "%s: the program still holds %llu blocks of %llu bytes, the tracker says "
                  "%lld blocks of %lld bytes", what, live, live_bytes, (long long)d.live_blocks,
                  (long long)d.live_bytes);
    ck_assert_msg(d.allocations - d.frees == d.live_blocks,
                  "%s: allocations - frees = %lld, live blocks %lld", what,
                  (long long)(d.allocations - d.frees), (long long)d.live_blocks);
    ck_assert_msg(d.invalid_frees == 0 && d.double_frees == 0 && d.stale_frees == 0,
                  "%s: expected no bad frees, got %llu invalid, %llu double, %llu stale", what,
                  (unsigned long long)d.invalid_frees, (unsigned long long)d.double_frees,
                  (unsigned long long)d.stale_frees);
    ck_assert_msg(after.frees == freed && after.allocations == 0 &&
                      after.live_blocks == (uint64_t)-(int64_t)freed &&
                      after.live_bytes == (uint64_t)-(int64_t)live_bytes,
                  "%s: freeing the %llu blocks of exited threads (%llu bytes) counted %llu "
                  "frees and moved live blocks by %lld and bytes by %lld", what, freed,
                  live_bytes, (unsigned long long)after.frees, (long long)after.live_blocks,
                  (long long)after.live_bytes);
}

START_TEST(mixed_calls_cross_thread)
{
    static const int nthreads[] = { 2, 4, 8 };
    static struct stress st;
    stress_init(&st, nthreads[_i], DEFAULT_OPS);
    run_workers(&st, mixed_worker);
    char what[32];
    snprintf(what, sizeof what, "mixed/%d", nthreads[_i]);
    check_balance(what, &st);
}
END_TEST

/* ---- many short-lived threads --------------------------------------------------------- */

#define SHORT_BATCHES 100
#define SHORT_PER_BATCH 4
#define SHORT_BLOCKS 48

/* Blocks left by the previous batch, freed by the next one: freed after their allocating
 * thread has exited, by a thread that did not exist when they were allocated. */
static struct blk short_left[SHORT_PER_BATCH][SHORT_BLOCKS];
static struct counts short_count[SHORT_PER_BATCH];

struct short_arg {
    int slot;
    int batch;
};

static void *short_worker(void *argp)
{
    struct short_arg *a = argp;
    struct counts *c = &short_count[a->slot];
    struct blk *left = short_left[a->slot];
    uint64_t x = 0x2545F4914F6CDD1Dull * (uint64_t)(a->batch * SHORT_PER_BATCH + a->slot + 1);
    for (int k = 0; k < SHORT_BLOCKS; k++) {
        if (left[k].p) {
            c->bad += !tag_ok(&left[k]);
            free(left[k].p);
            c->frees++;
            left[k].p = NULL;
        }
    }
    struct blk mine[SHORT_BLOCKS * 2];
    for (int k = 0; k < SHORT_BLOCKS * 2; k++) {
        uint64_t r = next_rand(&x);
        mine[k].size = 1 + (size_t)(r % 2000);
        mine[k].p = (r & 1) ? malloc(mine[k].size) : calloc(1, mine[k].size);
        if (!mine[k].p)
            abort();
        c->allocs++;
        c->bytes += mine[k].size;
        tag_block(&mine[k], (unsigned char)r);
    }
    /* Free half, leave half for the next batch. */
    for (int k = 0; k < SHORT_BLOCKS; k++) {
        c->bad += !tag_ok(&mine[2 * k]);
        free(mine[2 * k].p);
        c->frees++;
        left[k] = mine[2 * k + 1];
    }
    return NULL;
}

static void short_batch(int batch, pthread_attr_t *attr)
{
    pthread_t th[SHORT_PER_BATCH];
    struct short_arg arg[SHORT_PER_BATCH];
    for (int i = 0; i < SHORT_PER_BATCH; i++) {
        arg[i] = (struct short_arg){ i, batch };
        if (pthread_create(&th[i], attr, short_worker, &arg[i]) != 0)
            abort();
    }
    for (int i = 0; i < SHORT_PER_BATCH; i++)
        pthread_join(th[i], NULL);
}

START_TEST(short_lived_threads)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK_SIZE);
    /* A first batch outside the measurement fills glibc's stack cache, so that later
     * pthread_creates allocate nothing. */
    short_batch(0, &attr);
    for (int i = 0; i < SHORT_PER_BATCH; i++)
        for (int k = 0; k < SHORT_BLOCKS; k++) {
            free(short_left[i][k].p);
            short_left[i][k].p = NULL;
        }
    memset(short_count, 0, sizeof short_count);

    cmt_stats_snap();
    for (int b = 1; b <= SHORT_BATCHES; b++)
        short_batch(b, &attr);
    struct cmt_process_stats d = cmt_stats_delta();
    unsigned long long live_bytes = 0;
    for (int i = 0; i < SHORT_PER_BATCH; i++)
        for (int k = 0; k < SHORT_BLOCKS; k++)
            live_bytes += short_left[i][k].size;
    cmt_stats_snap();
    unsigned long long bad = 0;
    for (int i = 0; i < SHORT_PER_BATCH; i++)
        for (int k = 0; k < SHORT_BLOCKS; k++) {
            bad += !tag_ok(&short_left[i][k]);
            free(short_left[i][k].p);
        }
    struct cmt_process_stats after = cmt_stats_delta();
    pthread_attr_destroy(&attr);

    struct counts sum = { 0 };
    for (int i = 0; i < SHORT_PER_BATCH; i++)
        counts_add(&sum, &short_count[i]);
    const unsigned long long live = SHORT_PER_BATCH * SHORT_BLOCKS;
    printf("threads: short-lived %d threads: %llu allocations, %llu frees\n",
           SHORT_BATCHES * SHORT_PER_BATCH, sum.allocs, sum.frees);
    fflush(stdout);
    ck_assert_msg(sum.bad == 0 && bad == 0, "%llu blocks came back damaged", sum.bad + bad);
    ck_assert_msg(d.allocations == sum.allocs && d.frees == sum.frees &&
                      d.bytes_allocated == sum.bytes,
                  "expected %llu allocations of %llu bytes and %llu frees, got %llu of %llu "
                  "and %llu", sum.allocs, sum.bytes, sum.frees,
                  (unsigned long long)d.allocations, (unsigned long long)d.bytes_allocated,
                  (unsigned long long)d.frees);
    ck_assert_msg(d.live_blocks == live && d.live_bytes == live_bytes,
                  "the last threads left %llu blocks of %llu bytes, the tracker says %lld of "
                  "%lld", live, live_bytes, (long long)d.live_blocks, (long long)d.live_bytes);
    ck_assert_msg(after.frees == live && after.live_blocks == (uint64_t)-(int64_t)live &&
                      after.live_bytes == (uint64_t)-(int64_t)live_bytes,
                  "freeing %llu blocks of exited threads counted %llu frees, live blocks "
                  "moved by %lld and bytes by %lld", live, (unsigned long long)after.frees,
                  (long long)after.live_blocks, (long long)after.live_bytes);
}
END_TEST

/* ---- scopes opened, closed and bulk-freed while other threads free their blocks ------- */

#define SCOPE_BLOCKS 32

/* Each round a worker opens a scope (every other one bulk-freeing), sometimes a nested one,
 * allocates in it, hands some blocks to the next worker and closes it. The receiver frees
 * what it gets whenever it gets to it: a block of a non-bulk scope is freed normally, even
 * long after its scope closed; a block of a bulk scope is freed normally if the receiver is
 * first, and is a stale free (counted, ignored) if the close was. That race is the
 * program's, and the tracker must keep exact counts through it. The quarantine is large
 * (see main), so a bulk-freed address is never reused while a stale free may still come. */
static void *scope_worker(void *argp)
{
    struct worker_arg *a = argp;
    struct stress *st = a->st;
    struct counts *c = &st->count[a->id];
    struct inbox *mine = &st->inbox[a->id];
    struct inbox *next = &st->inbox[(a->id + 1) % st->nthreads];
    struct blk *held = st->held[a->id];     /* blocks of non-bulk scopes kept past close */
    size_t nheld = 0;
    uint64_t x = 0xD1B54A32D192ED03ull * (uint64_t)(a->id + 1);

    worker_start(st);
    double start = st->seconds > 0 ? now_seconds() : 0;
    unsigned long long checked = 0;
    for (unsigned long long round = 0; keep_going(st, c->ops, &checked, start); round++) {
        int bulk = (int)(round & 1);
        cmt_scope_t s = cmt_scope_open(bulk ? "stress.bulk" : "stress.keep",
                                       bulk ? CMT_BULK_FREE : 0);
        if (s == CMT_SCOPE_NONE)
            abort();
        struct blk mine_now[SCOPE_BLOCKS + 4];
        int n = 0;
        for (int k = 0; k < SCOPE_BLOCKS; k++, n++) {
            uint64_t r = next_rand(&x);
            mine_now[n].size = 1 + (size_t)(r % 700);
            mine_now[n].p = (r & 0x10) ? calloc(1, mine_now[n].size) : malloc(mine_now[n].size);
            if (!mine_now[n].p)
                abort();
            mine_now[n].bulk = (unsigned char)bulk;
            tag_block(&mine_now[n], (unsigned char)(r >> 40));
            c->allocs++;
            c->bytes += mine_now[n].size;
            c->ops++;
        }
        if ((round & 3) == 1) {
            /* A nested scope that keeps its blocks: they outlive it in this thread's hands. */
            cmt_scope_t inner = cmt_scope_open("stress.inner", 0);
            for (int k = 0; k < 4; k++, n++) {
                mine_now[n].size = 24 + (size_t)k * 8;
                mine_now[n].p = malloc(mine_now[n].size);
                if (!mine_now[n].p)
                    abort();
                mine_now[n].bulk = 0;
                tag_block(&mine_now[n], (unsigned char)k);
                c->allocs++;
                c->bytes += mine_now[n].size;
                c->ops++;
            }
            if (cmt_scope_close(inner) != 4)
                c->bad++;
        }
        /* Hand a quarter to the next worker, free a quarter ourselves. */
        for (int k = 0; k < n; k++) {
            struct blk *b = &mine_now[k];
            if (!b->p)
                continue;
            if (k % 4 == 0 && inbox_put(next, b)) {
                b->p = NULL;
            } else if (k % 4 == 1) {
                c->bad += !tag_ok(b);
                free(b->p);
                c->frees++;
                c->free_calls++;
                c->ops++;
                b->p = NULL;
            }
        }
        /* Free what others handed us, some of it from scopes closed (and bulk-freed) by now.
         * A block of a bulk scope is not touched: it may be in quarantine. */
        struct blk in;
        for (int k = 0; k < 16 && inbox_take(mine, &in); k++) {
            if (!in.bulk)
                c->bad += !tag_ok(&in);
            free(in.p);
            c->free_calls++;
            c->ops++;
            if (!in.bulk)
                c->frees++;
            else
                c->racy_frees++;
        }
        int64_t owned = cmt_scope_close(s);
        if (owned < 0)
            c->bad++;
        /* What the scope still owned: bulk-freed with it, or ours to keep and free later. */
        for (int k = 0; k < n; k++) {
            if (!mine_now[k].p || mine_now[k].bulk)
                continue;
            if (nheld == HELD_MAX) {
                size_t i = (size_t)(next_rand(&x) % HELD_MAX);
                c->bad += !tag_ok(&held[i]);
                free(held[i].p);
                c->frees++;
                c->free_calls++;
                c->ops++;
                held[i] = mine_now[k];
            } else {
                held[nheld++] = mine_now[k];
            }
        }
    }
    st->nheld[a->id] = nheld;
    return NULL;
}

START_TEST(scopes_race_with_frees)
{
    static const int nthreads[] = { 2, 4 };
    static struct stress st;
    stress_init(&st, nthreads[_i], DEFAULT_OPS / 2);
    run_workers(&st, scope_worker);
    struct cmt_process_stats d = cmt_stats_delta();

    struct counts sum = { 0 };
    for (int i = 0; i < st.nthreads; i++)
        counts_add(&sum, &st.count[i]);
    unsigned long long live, live_bytes;
    survivors(&st, &live, &live_bytes);
    /* Frees of bulk-scope blocks handed over: each one either counted as a free or, when
     * the close came first, ignored as stale. The program cannot tell which. */
    unsigned long long ignored = d.stale_frees + d.invalid_frees + d.double_frees;
    unsigned long long counted = d.frees;
    unsigned long long bad = 0;
    cmt_stats_snap();
    unsigned long long freed = free_survivors(&st, &bad);
    struct cmt_process_stats after = cmt_stats_delta();

    printf("threads: scopes/%d %llu operations: %llu allocations, %llu frees, %llu "
           "bulk-freed, %llu stale, %llu invalid, %llu double\n", st.nthreads, sum.ops,
           (unsigned long long)d.allocations, (unsigned long long)d.frees,
           (unsigned long long)d.bulk_freed_blocks, (unsigned long long)d.stale_frees,
           (unsigned long long)d.invalid_frees, (unsigned long long)d.double_frees);
    fflush(stdout);
    ck_assert_msg(sum.bad == 0 && bad == 0,
                  "%llu blocks came back damaged or scope calls failed", sum.bad + bad);
    ck_assert_msg(d.allocations == sum.allocs && d.bytes_allocated == sum.bytes,
                  "the program made %llu allocations of %llu bytes, the tracker counted %llu "
                  "of %llu", sum.allocs, sum.bytes, (unsigned long long)d.allocations,
                  (unsigned long long)d.bytes_allocated);
    ck_assert_msg(counted + ignored == sum.free_calls && ignored <= sum.racy_frees,
                  "the program called free %llu times (%llu of them racing a bulk-free); the "
                  "tracker counted %llu frees and ignored %llu", sum.free_calls,
                  sum.racy_frees, counted, ignored);
    ck_assert_msg(d.allocations - d.frees - d.bulk_freed_blocks == d.live_blocks,
                  "allocations - frees - bulk-freed = %lld, live blocks %lld",
                  (long long)(d.allocations - d.frees - d.bulk_freed_blocks),
                  (long long)d.live_blocks);
    ck_assert_msg(d.live_blocks == live && d.live_bytes == live_bytes,
                  "the program still holds %llu blocks of %llu bytes, the tracker says %lld of "
                  "%lld", live, live_bytes, (long long)d.live_blocks, (long long)d.live_bytes);
    ck_assert_msg(after.frees == freed && after.live_blocks == (uint64_t)-(int64_t)freed &&
                      after.live_bytes == (uint64_t)-(int64_t)live_bytes,
                  "freeing the %llu blocks left counted %llu frees, moved live blocks by %lld "
                  "and bytes by %lld", freed, (unsigned long long)after.frees,
                  (long long)after.live_blocks, (long long)after.live_bytes);
    /* Every free the tracker ignored here was of a block its scope had bulk-freed: each one
     * must be reported as stale, none as invalid or double. */
    ck_assert_msg(d.invalid_frees == 0 && d.double_frees == 0,
                  "of %llu frees that lost the race with their scope's bulk-free, %llu were "
                  "reported as invalid and %llu as double instead of stale", ignored,
                  (unsigned long long)d.invalid_frees, (unsigned long long)d.double_frees);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    /* A deadlock fails the test instead of hanging the run. */
    int timeout = 60 + (int)(4 * stress_seconds());

    TCase *tc = tcase_create("cross-thread frees");
    tcase_set_timeout(tc, timeout);
    tcase_add_loop_test(tc, mixed_calls_cross_thread, 0, 3);
    tcase_add_test(tc, short_lived_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("scopes");
    tcase_set_timeout(tc, timeout);
    tcase_add_loop_test(tc, scopes_race_with_frees, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    /* Bulk-freed blocks stay in quarantine for the whole run: a late stale free from
     * another worker is then always recognized, never a free of a reused address. */
    setenv("CYMEMTRACK_QUARANTINE", "4G", 0);
    cmt_reexec_preloaded(argv);
    return cmt_run_suite(threads_suite());
}
