/*
 * bench/micro.c — the micro workloads of the benchmarks: the malloc family in tight loops,
 * run with or without the tracker preloaded, timed from inside so that process start and
 * exit do not count. One run prints one line, "WORKLOAD threads=T ops=N ns_per_op=X ms=M",
 * where X is the wall time over the ops one thread made (with perfect scaling it does not
 * change with T) and M the whole timed wall time in milliseconds. It checks nothing and must
 * never depend on the tracker being there.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cymemtrack.h"

#define LIVE_SET 100000
#define REQUEST_ALLOCS 300
#define MAX_THREADS 64

/* Keeps the compiler from pairing a malloc with its free and removing both. */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

/* xorshift64*: cheap, and each thread has its own, so the workloads share nothing. */
static inline uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* Mostly small sizes, as programs use them: three quarters up to 128 bytes, the rest up
 * to 1 KiB. Drawn ahead of time so that the loop times the allocator, not the generator. */
#define SIZES 4096
static void draw_sizes(uint64_t *rng, uint32_t *sizes)
{
    for (int i = 0; i < SIZES; i++) {
        uint64_t r = next_random(rng);
        sizes[i] = (r & 3) ? 8 + (uint32_t)(r >> 8) % 121 : 129 + (uint32_t)(r >> 8) % 896;
    }
}

struct job {
    const struct workload *w;
    uint64_t ops;
    int index;
    pthread_barrier_t *start;
    double *t0;     /* set: the clock starts here when the job's setup is done */
    double end;     /* when the timed loop ended: teardown after it does not count */
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The job's setup is done: wait for the others, or start the clock when it runs alone. */
static void setup_done(struct job *j)
{
    pthread_barrier_wait(j->start);
    if (j->t0)
        *j->t0 = now_ns();
}

/* ---- the workloads: each does its setup, waits at the barrier, then runs ops ops ----- */

/* Inlined into pairs and scope-pairs alike, so that their stacks are equally deep: with
 * stacks on, a deeper one would cost more to capture. */
static inline __attribute__((always_inline)) void pairs_loop(struct job *j, uint64_t *rng)
{
    uint32_t sizes[SIZES];
    draw_sizes(rng, sizes);
    setup_done(j);
    for (uint64_t i = 0; i < j->ops; i++) {
        char *p = malloc(sizes[i % SIZES]);
        p[0] = 1;
        KEEP(p);
        free(p);
    }
    j->end = now_ns();
}

static void pairs(struct job *j, uint64_t *rng)
{
    pairs_loop(j, rng);
}

static void calloc_pairs(struct job *j, uint64_t *rng)
{
    uint32_t sizes[SIZES];
    draw_sizes(rng, sizes);
    setup_done(j);
    for (uint64_t i = 0; i < j->ops; i++) {
        uint32_t s = sizes[i % SIZES];
        char *p = calloc(1 + (s & 3), s / 4 + 1);
        KEEP(p);
        free(p);
    }
    j->end = now_ns();
}

/* A live set of 100k blocks; each op frees a random one and allocates its replacement. */
static void liveset(struct job *j, uint64_t *rng)
{
    uint32_t sizes[SIZES];
    draw_sizes(rng, sizes);
    char **live = malloc(LIVE_SET * sizeof *live);
    if (!live)
        exit(1);
    for (int i = 0; i < LIVE_SET; i++)
        live[i] = malloc(sizes[i % SIZES]);
    setup_done(j);
    for (uint64_t i = 0; i < j->ops; i++) {
        uint64_t r = next_random(rng);
        uint32_t k = (uint32_t)(r >> 16) % LIVE_SET;
        free(live[k]);
        live[k] = malloc(sizes[r % SIZES]);
        live[k][0] = 1;
    }
    j->end = now_ns();
    for (int i = 0; i < LIVE_SET; i++)
        free(live[i]);
    free(live);
}

/* A buffer grown in small steps, as a string builder does, up to 64 KiB and again; each op
 * is one realloc. */
static void realloc_growth(struct job *j, uint64_t *rng)
{
    setup_done(j);
    size_t n = 16;
    char *p = malloc(n);
    for (uint64_t i = 0; i < j->ops; i++) {
        if (n > 64 * 1024) {
            free(p);
            n = 16;
            p = malloc(n);
        }
        n += 16 + next_random(rng) % 48;
        p = realloc(p, n);
        p[n - 1] = 1;
    }
    j->end = now_ns();
    free(p);
}

/* One request in a scope of its own: REQUEST_ALLOCS allocations, then the scope is closed,
 * the blocks freed one by one before (scope-free) or by the close itself (scope-bulk).
 * Without the tracker the scope calls are no-ops and the blocks are always freed here. An
 * op is one allocation. */
#ifdef CMT_BULK_FREE
static void scope_requests(struct job *j, uint64_t *rng, int bulk)
{
    uint32_t sizes[SIZES];
    void *blocks[REQUEST_ALLOCS];
    draw_sizes(rng, sizes);
    bulk = bulk && cmt_active();
    setup_done(j);
    for (uint64_t done = 0; done < j->ops; done += REQUEST_ALLOCS) {
        cmt_scope_t s = cmt_scope_open("request", bulk ? CMT_BULK_FREE : 0);
        for (int i = 0; i < REQUEST_ALLOCS; i++) {
            blocks[i] = malloc(sizes[(done + (uint64_t)i) % SIZES]);
            KEEP(blocks[i]);
        }
        if (!bulk) {
            for (int i = REQUEST_ALLOCS - 1; i >= 0; i--)
                free(blocks[i]);
        }
        cmt_scope_close(s);
    }
    j->end = now_ns();
}

static void scope_free(struct job *j, uint64_t *rng)
{
    scope_requests(j, rng, 0);
}

static void scope_bulk(struct job *j, uint64_t *rng)
{
    scope_requests(j, rng, 1);
}

/* The cost of a scope itself (issue 5: under 100 ns): an op opens an empty scope and closes
 * it. Without the tracker both calls are the no-ops. */
static void scope_empty(struct job *j, uint64_t *rng)
{
    (void)rng;
    setup_done(j);
    for (uint64_t i = 0; i < j->ops; i++)
        cmt_scope_close(cmt_scope_open("empty", 0));
    j->end = now_ns();
}

/* pairs, inside one open scope (issue 5: allocation inside a scope costs the same as
 * outside it): compare its ns/op with pairs' under the same tool. */
static void scope_pairs(struct job *j, uint64_t *rng)
{
    cmt_scope_t s = cmt_scope_open("pairs", 0);
    pairs_loop(j, rng);
    cmt_scope_close(s);
}

/* One bulk-free of ops blocks of 32 B (issue 5: a million in under 50 ms): only the close is
 * timed. A first round allocates and bulk-frees as many, so that the timed close finds the
 * quarantine full, as in a program that has been closing such scopes for a while, and pays
 * for evicting as much as it brings in. Without the tracker the close is a no-op, and the
 * timed part frees the blocks one by one: what the program would do instead. */
#define BULK_BLOCK 32
static void bulk_round(void **blocks, uint64_t n, int tracked, struct job *timed)
{
    cmt_scope_t s = cmt_scope_open("bulk", CMT_BULK_FREE);
    for (uint64_t i = 0; i < n; i++) {
        blocks[i] = malloc(BULK_BLOCK);
        KEEP(blocks[i]);
    }
    if (timed)
        setup_done(timed);
    cmt_scope_close(s);
    if (!tracked)
        for (uint64_t i = 0; i < n; i++)
            free(blocks[i]);
    if (timed)
        timed->end = now_ns();
}

static void bulk_close(struct job *j, uint64_t *rng)
{
    (void)rng;
    int tracked = cmt_active();
    void **blocks = malloc(j->ops * sizeof *blocks);
    if (!blocks)
        exit(1);
    bulk_round(blocks, j->ops, tracked, NULL);
    bulk_round(blocks, j->ops, tracked, j);
    free(blocks);
}
#else
#define scope_free NULL
#define scope_bulk NULL
#define scope_empty NULL
#define scope_pairs NULL
#define bulk_close NULL
#endif

/* A function that allocates nothing, called in a loop: bench/run puts a func: scope on it
 * (CYMEMTRACK_SCOPES=call=func:cmt_bench_empty_call), so an op is one call with the scope
 * opened at its entry and closed at its return. Long enough to take the entry jump. */
static volatile int call_sink;
int cmt_bench_empty_call(int x);
__attribute__((noinline)) int cmt_bench_empty_call(int x)
{
    call_sink = x;
    return x * 3 + 1;
}

static void func_calls(struct job *j, uint64_t *rng)
{
    int acc = (int)(*rng & 0xff);
    setup_done(j);
    for (uint64_t i = 0; i < j->ops; i++)
        acc = cmt_bench_empty_call(acc) & 0xffff;
    call_sink = acc;
    j->end = now_ns();
}

struct workload {
    const char *name;
    void (*run)(struct job *j, uint64_t *rng);
};

static const struct workload workloads[] = {
    {"pairs", pairs},
    {"liveset", liveset},
    {"realloc", realloc_growth},
    {"calloc", calloc_pairs},
    {"scope-free", scope_free},
    {"scope-bulk", scope_bulk},
    {"scope-empty", scope_empty},
    {"scope-pairs", scope_pairs},
    {"bulk-close", bulk_close},
    {"func-call", func_calls},
};

static void *thread_main(void *arg)
{
    struct job *j = arg;
    uint64_t rng = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(j->index + 1);
    j->w->run(j, &rng);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: micro [--spawn] WORKLOAD THREADS OPS_PER_THREAD\n"
                    "  one thread runs on the main thread, in a process with no other;\n"
                    "  --spawn runs it on a thread of its own, as two or more always are\n"
                    "workloads:");
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
    bool spawn = argc > 1 && strcmp(argv[1], "--spawn") == 0;
    if (spawn) {
        argc--;
        argv++;
    }
    if (argc != 4) {
        usage();
        return 2;
    }
    const struct workload *w = NULL;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (strcmp(argv[1], workloads[i].name) == 0)
            w = &workloads[i];
    int threads = atoi(argv[2]);
    uint64_t ops = strtoull(argv[3], NULL, 10);
    if (!w || threads < 1 || threads > MAX_THREADS || ops == 0) {
        fprintf(stderr, "micro: bad arguments; run it without any to see the usage\n");
        return 2;
    }
    if (!w->run) {
        /* Built against a cymemtrack.h without scopes: the harness reports it as skipped. */
        printf("%s skipped: cymemtrack.h has no scopes API\n", w->name);
        return 0;
    }

    /* A single-threaded program and one thread of a multi-threaded one are different
     * cases for an allocator (glibc's and the tracker's skip work for the first): one
     * thread runs where the program would, on the main thread, unless asked otherwise. */
    bool on_main = threads == 1 && !spawn;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, on_main ? 1u : (unsigned)threads + 1);
    pthread_t tid[MAX_THREADS];
    struct job jobs[MAX_THREADS];
    double t0;
    if (on_main) {
        jobs[0] = (struct job){.w = w, .ops = ops, .index = 0, .start = &start};
        /* The workload's setup runs before its barrier, which starts the clock here. */
        jobs[0].t0 = &t0;
        thread_main(&jobs[0]);
    } else {
        for (int i = 0; i < threads; i++) {
            jobs[i] = (struct job){.w = w, .ops = ops, .index = i, .start = &start};
            int err = pthread_create(&tid[i], NULL, thread_main, &jobs[i]);
            if (err) {
                fprintf(stderr, "micro: pthread_create: %s\n", strerror(err));
                return 1;
            }
        }
        /* The clock starts when every thread has done its setup. */
        pthread_barrier_wait(&start);
        t0 = now_ns();
        for (int i = 0; i < threads; i++)
            pthread_join(tid[i], NULL);
    }
    double end = t0;
    for (int i = 0; i < threads; i++)
        if (jobs[i].end > end)
            end = jobs[i].end;
    printf("%s threads=%d ops=%llu ns_per_op=%.2f ms=%.3f\n", w->name, threads,
           (unsigned long long)ops, (end - t0) / (double)ops, (end - t0) / 1e6);
    return 0;
}
