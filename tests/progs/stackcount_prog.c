/*
 * stackcount_prog.c — allocations from many threads and many distinct stacks, for
 * check_stackcount: THREADS threads each make ROUNDS allocations, each from one of 1024
 * stacks (a path of ten calls, each through one of two functions) so that every thread's
 * cache of per-stack counts keeps evicting, in scopes "even" and "odd" (round by round) and
 * outside them. Allocation i of a thread asks for 1 + i % 97 bytes: malloc, calloc, malloc(1)
 * then realloc, or posix_memalign, in turn. Half of them are freed at once.
 *
 * Modes: "threads" (the threads run and are joined, then the process exits); "fork" (the
 * threads run, then wait, alive, while the main thread forks a child that exits at once;
 * then they go on and are joined); "skewed" (no threads: in scope "skew", SKEW_BIG blocks of
 * 64 bytes from one stack, then one block of 1 byte from each of SKEW_SMALL other stacks; all
 * freed). Uses no stdio.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cymemtrack.h>

#if defined(__clang__)
#define CMT_NOIPA __attribute__((noinline))
#else
#define CMT_NOIPA __attribute__((noipa))
#endif

#define THREADS 4
#define ROUNDS 20000
#define LEVELS 10

void *volatile cmt_sink;

CMT_NOIPA static void *leaf(unsigned i)
{
    size_t size = 1 + i % 97;
    void *p = NULL;
    switch (i % 4) {
    case 0: p = malloc(size); break;
    case 1: p = calloc(1, size); break;
    case 2: {
        /* Two allocations: 1 byte, and size bytes by realloc, which counts the block it
         * returns as a new allocation whether it moved or not. */
        void *q = malloc(1);
        p = q ? realloc(q, size) : NULL;
        break;
    }
    default:
        if (posix_memalign(&p, 16, size) != 0)
            p = NULL;
        break;
    }
    cmt_sink = p;
    return p;
}

CMT_NOIPA static void *step_a(unsigned path, int level, unsigned i);
CMT_NOIPA static void *step_b(unsigned path, int level, unsigned i);

CMT_NOIPA static void *step_a(unsigned path, int level, unsigned i)
{
    void *p = level == 0 ? leaf(i)
              : (path & 1) ? step_b(path >> 1, level - 1, i) : step_a(path >> 1, level - 1, i);
    cmt_sink = p;   /* work after the call: it cannot become a jump */
    return p;
}

CMT_NOIPA static void *step_b(unsigned path, int level, unsigned i)
{
    void *p = level == 0 ? leaf(i)
              : (path & 1) ? step_b(path >> 1, level - 1, i) : step_a(path >> 1, level - 1, i);
    cmt_sink = p;
    return p;
}

#define SKEW_BIG 30000
#define SKEW_SMALL 20

CMT_NOIPA static void *big_site(void)
{
    void *p = malloc(64);
    cmt_sink = p;
    return p;
}

/* One site far larger than the others, which are each under a ten-thousandth of the
 * scope's allocations and bytes. */
static int skewed(void)
{
    void **keep = calloc(SKEW_BIG + SKEW_SMALL, sizeof *keep);
    if (!keep)
        return 1;
    cmt_scope_t s = cmt_scope_open("skew", 0);
    for (unsigned i = 0; i < SKEW_BIG; i++)
        keep[i] = big_site();
    for (unsigned path = 0; path < SKEW_SMALL; path++)
        keep[SKEW_BIG + path] = step_a(path, LEVELS, 0);    /* leaf(0): malloc(1) */
    cmt_scope_close(s);
    for (unsigned i = 0; i < SKEW_BIG + SKEW_SMALL; i++)
        free(keep[i]);
    free(keep);
    return 0;
}

static pthread_barrier_t ran, forked;
static int fork_mode;

static void *worker(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 0x9E3779B97F4A7C15u + 1;
    void **keep = calloc(ROUNDS, sizeof *keep);
    for (unsigned i = 0; i < ROUNDS; i++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        unsigned path = (unsigned)(rng >> 40) & 1023;
        unsigned round = i / 1000;
        cmt_scope_t s = 0;
        if (round % 4 == 1)
            s = cmt_scope_open("odd", 0);
        else if (round % 4 == 3)
            s = cmt_scope_open("even", 0);
        void *p = step_a(path, LEVELS, i);
        if (s)
            cmt_scope_close(s);
        if (i % 2)
            free(p);
        else
            keep[i] = p;
    }
    if (fork_mode) {
        pthread_barrier_wait(&ran);
        pthread_barrier_wait(&forked);
    }
    for (unsigned i = 0; i < ROUNDS; i++)
        free(keep[i]);
    free(keep);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "skewed") == 0)
        return skewed();
    fork_mode = argc > 1 && strcmp(argv[1], "fork") == 0;
    pthread_barrier_init(&ran, NULL, THREADS + 1);
    pthread_barrier_init(&forked, NULL, THREADS + 1);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(i + 1)) != 0)
            return 1;
    if (fork_mode) {
        pthread_barrier_wait(&ran);
        /* The workers are alive with their caches full: the child counts them too. */
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
            return 1;
        pthread_barrier_wait(&forked);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}
