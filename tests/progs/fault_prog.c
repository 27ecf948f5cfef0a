/*
 * fault_prog.c — run by tests/check_faults.c, plain and under the preload: one fault a mode,
 * injected from inside the program, so that the suite can check that the program's own
 * output and exit status are those of a plain run and what the report says about it. Uses no
 * stdio streams (their buffers would be blocks of their own): every line goes out with one
 * write(2). Lines on stdout must not differ between plain and tracked runs; numbers that
 * may differ (how many signals came, how many blocks fitted) go to stderr as "stat: k=v".
 *
 *   fault_prog sigalloc ROUNDS     a SIGALRM handler mallocs and frees while the main loop
 *                                  hammers the malloc family
 *   fault_prog nomem [ckpt]        RLIMIT_AS exhausted: every way of allocating fails with
 *                                  ENOMEM and keeps failing; with ckpt, a checkpoint is
 *                                  due while nothing can be mapped
 *   fault_prog segv-scope          crashes with SIGSEGV inside an open scope
 *   fault_prog ckpt-kill PATH      killed by SIGKILL while a checkpoint is half written to
 *                                  PATH.tmp (PATH: its report file, %p for the pid)
 *   fault_prog diskfill DIR CODE   fills the file system of DIR once a checkpoint has been
 *                                  taken, then exits with CODE
 *   fault_prog fifo-stuck PATH     once a checkpoint is written, puts a FIFO that nobody
 *                                  reads at PATH.tmp, where the next write goes, then
 *                                  allocates in two more seconds and exits 0
 *   fault_prog mapcount            maps one page at a time until mmap fails (the count of
 *                                  mappings, vm.max_map_count, used up), then exits 0
 *   fault_prog basic CODE          the common part only, then exit CODE
 *   fault_prog fan CODE            1024 more leaks from as many stacks (a report of about
 *                                  250 KiB), then exit CODE
 *
 * Every mode first leaks LEAK_BLOCKS blocks of LEAK_SIZE + i bytes (say()s "leaked=").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cymemtrack.h"

#define LEAK_BLOCKS 3
#define LEAK_SIZE 3000

static void put(int fd, const char *fmt, va_list ap)
{
    char line[512];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n > 0 && write(fd, line, (size_t)n) < 0)
        _exit(120);
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put(STDOUT_FILENO, fmt, ap);
    va_end(ap);
}

static void stat_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put(STDERR_FILENO, fmt, ap);
    va_end(ap);
}

/* The main thread's successful calls, for the modes that count them: a realloc counts as an
 * allocation and a free, as the tracker counts it. */
static uint64_t allocs, frees;

static void base(void)
{
    allocs += LEAK_BLOCKS;
    for (int i = 0; i < LEAK_BLOCKS; i++) {
        char *p = malloc(LEAK_SIZE + (size_t)i);
        if (!p)
            _exit(121);
        p[0] = 1;
    }
    say("leaked=%d\n", LEAK_BLOCKS);
}

/* The most tracked calls that can pass between two looks at the clock
 * (EVENTS_PER_LOOK_MAX in src/timeline.c). */
#define CALLS_PER_LOOK 256

/* Returns once the wall-clock second has just changed, after enough calls in the new second
 * that under the tracker one of them has looked at the clock and taken the checkpoint this
 * second is owed, so that nothing else is written for almost a second. Each of them, a
 * realloc, looks with one 1-byte block of this call's live: the checkpoint holds that
 * block, whichever call took it. */
static void fresh_second(void)
{
    time_t now = time(NULL);
    struct timespec pause = { 0, 1000 * 1000 };
    while (time(NULL) == now)
        nanosleep(&pause, NULL);
    char *p = malloc(1);
    for (int i = 0; i < CALLS_PER_LOOK && p; i++)
        p = realloc(p, 1);
    free(p);
}

/* ---- sigalloc ------------------------------------------------------------------------ */

/* The handler's blocks are of a size the main loop never asks for, and glibc's per-thread
 * cache for that size is filled before the timer starts: the handler's malloc and free then
 * never take an arena lock that the interrupted code may hold, so the program is sound
 * without the tracker (glibc itself is not async-signal-safe), and any hang or crash under
 * it is the tracker's. */
#define HANDLER_SIZE 1000
#define HANDLER_BLOCKS 2
#define SLOTS 256

static volatile sig_atomic_t handled, handler_failed, timer_stop;
static volatile uint64_t handler_allocs;

/* The timer is one-shot, armed again by the handler as it ends: a periodic one starves the
 * main loop when a handler takes longer than the period (a stack captured in a signal
 * frame goes through libunwind, whose locks mask signals: tens of microseconds a call on a
 * virtual machine where each system call is slow). */
static const struct itimerval timer_once = { { 0, 0 }, { 0, 50 } };

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    void *p[HANDLER_BLOCKS];
    for (int i = 0; i < HANDLER_BLOCKS; i++) {
        p[i] = malloc(HANDLER_SIZE);
        if (!p[i])
            handler_failed = 1;
        else
            memset(p[i], i, 16);
    }
    for (int i = HANDLER_BLOCKS - 1; i >= 0; i--) {
        if (p[i]) {
            handler_allocs++;
            free(p[i]);
        }
    }
    handled++;
    if (!timer_stop)
        setitimer(ITIMER_REAL, &timer_once, NULL);
    errno = saved;
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static int sigalloc(long rounds)
{
    void *warm[7];
    for (int i = 0; i < 7; i++)
        if (!(warm[i] = malloc(HANDLER_SIZE)))
            return 121;
    for (int i = 0; i < 7; i++)
        free(warm[i]);
    allocs += 7;
    frees += 7;

    struct sigaction sa = { 0 };
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0)
        return 122;
    if (setitimer(ITIMER_REAL, &timer_once, NULL) != 0)
        return 123;

    static void *slot[SLOTS];
    static size_t size[SLOTS];
    uint64_t nested = 0;
    uint32_t seed = 12345;
    long done = 0;
    /* Under the tracker, go on (up to ten times as long) until handlers are known to have
     * run inside the tracker, which forwards their calls untracked: the case under test. */
    for (long limit = rounds; done < limit; done++) {
        uint32_t r = lcg(&seed), i = r % SLOTS;
        size_t want = 16 + (r >> 9) % 496;
        if (slot[i] && (r & 0x300) == 0x100) {
            void *q = realloc(slot[i], want);
            if (!q)
                return 124;
            allocs++;
            frees++;
            slot[i] = q;
            size[i] = want;
        } else if (slot[i]) {
            if (((char *)slot[i])[0] != (char)size[i])
                return 125;
            free(slot[i]);
            frees++;
            slot[i] = NULL;
        } else {
            slot[i] = (r & 0x400) ? calloc(1, want) : malloc(want);
            if (!slot[i])
                return 126;
            allocs++;
            size[i] = want;
        }
        if (slot[i])
            ((char *)slot[i])[0] = (char)size[i];
        if (done + 1 == limit && limit < rounds * 10) {
            struct cmt_process_stats st;
            uint64_t h = handler_allocs;
            if (cmt_process_stats(&st) == 0) {
                /* Read in this order, a handler running meanwhile makes this an
                 * underestimate, never an overestimate. */
                nested = allocs + h - st.allocations;
                if (nested < 100)
                    limit += rounds / 4;
            }
        }
    }
    timer_stop = 1;
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i]) {
            free(slot[i]);
            frees++;
        }
    }
    say("sigalloc: handler failures %d\n", (int)handler_failed);
    stat_line("stat: rounds=%ld\nstat: main_allocs=%llu\nstat: main_frees=%llu\n"
              "stat: handled=%d\nstat: handler_allocs=%llu\nstat: nested_estimate=%llu\n",
              done, (unsigned long long)allocs, (unsigned long long)frees, (int)handled,
              (unsigned long long)handler_allocs, (unsigned long long)nested);
    return 0;
}

/* ---- nomem --------------------------------------------------------------------------- */

#define BIG (1u << 20)
#define MAX_BIG 1024

/* The process's address space now, in bytes. */
static uint64_t vm_size(void)
{
    char buf[128] = "";
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void expect_enomem(const char *what, int failed, int err)
{
    say("%s: %s\n", what, failed && err == ENOMEM ? "fails with ENOMEM" :
                          failed ? "fails, errno not ENOMEM" : "succeeds");
}

static int nomem(bool ckpt)
{
    fresh_second();
    struct rlimit was;
    if (getrlimit(RLIMIT_AS, &was) != 0)
        return 120;
    /* The soft limit only: the hard one stays, so that the program could raise it again. */
    struct rlimit lim = { vm_size() + (64u << 20), was.rlim_max };
    if (setrlimit(RLIMIT_AS, &lim) != 0)
        return 121;

    static char *big[MAX_BIG];
    int n = 0;
    errno = 0;
    while (n < MAX_BIG && (big[n] = malloc(BIG)) != NULL)
        big[n++][0] = 1;
    int err = errno;
    if (n == MAX_BIG)
        return 122;
    expect_enomem("malloc until exhausted", 1, err);
    /* Smaller and smaller, so that nothing at all is left: the tracker's own growth fails
     * here too if it has to map. */
    static char *small[4096];
    int ns = 0, small_made;
    for (size_t sz = BIG / 2; sz >= 64 && ns < 4096; ) {
        char *p = malloc(sz);
        if (p) {
            p[0] = 1;
            small[ns++] = p;
        } else {
            sz /= 2;
        }
    }
    small_made = ns;
    int fails = 0, enomem = 0;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        if (!malloc(BIG)) {
            fails++;
            enomem += errno == ENOMEM;
        }
    }
    say("malloc again, 3 times: %d fail, %d with ENOMEM\n", fails, enomem);
    errno = 0;
    void *c = calloc(1, BIG);
    expect_enomem("calloc", c == NULL, errno);
    errno = 0;
    char keep = big[0][0];
    void *r = realloc(big[0], 8 * BIG);
    expect_enomem("realloc", r == NULL, errno);
    say("realloc left the block: %s\n", r == NULL && big[0][0] == keep ? "yes" : "no");
    void *m = (void *)&m;
    int rc = posix_memalign(&m, 64, BIG);
    say("posix_memalign: %s, pointer %s\n", rc == ENOMEM ? "ENOMEM" : "not ENOMEM",
        m == (void *)&m ? "untouched" : "changed");
    errno = 0;
    void *a = aligned_alloc(64, BIG);
    expect_enomem("aligned_alloc", a == NULL, errno);

    if (ckpt) {
        /* A new second while nothing can be mapped: the next tracked call owes a checkpoint,
         * and a free is the one call that still succeeds. */
        time_t now = time(NULL);
        struct timespec pause = { 0, 1000 * 1000 };
        while (time(NULL) == now)
            nanosleep(&pause, NULL);
        free(small[--ns]);
    }

    for (int i = 0; i < n; i++)
        free(big[i]);
    for (int i = 0; i < ns; i++)
        free(small[i]);
    free(c);
    free(r);
    free(a);
    if (rc == 0)
        free(m);
    char *p = malloc(BIG);
    say("after freeing: malloc %s\n", p ? "succeeds" : "fails");
    free(p);
    stat_line("stat: big=%d\nstat: small=%d\n", n, small_made);
    /* The limit stays: the report at exit is written under it. */
    return 0;
}

/* ---- segv-scope ---------------------------------------------------------------------- */

#define SCOPE_BLOCKS 4
#define SCOPE_SIZE 500

static int segv_scope(void)
{
    cmt_scope_t s = cmt_scope_open("crashing", 0);
    for (int i = 0; i < SCOPE_BLOCKS; i++) {
        char *p = malloc(SCOPE_SIZE);
        if (!p)
            return 121;
        p[0] = 1;
    }
    char *gone = malloc(77);
    if (!gone)
        return 121;
    free(gone);
    say("scope=%s\n", s ? "open" : "none");
    volatile int *nowhere = NULL;
    *nowhere = 1;
    return 1;
}

/* ---- ckpt-kill ----------------------------------------------------------------------- */

static const char *fifo_path;
static volatile int reader_state;

/* Stands in for a slow disk: opens the FIFO put where the tracker writes its next
 * checkpoint, shrinks it to one page, reads the header only, and kills the process while the
 * tracker is blocked in the middle of the write. */
static void *fifo_reader(void *arg)
{
    (void)arg;
    int fd = open(fifo_path, O_RDONLY);
    if (fd < 0) {
        reader_state = -1;
        return NULL;
    }
    fcntl(fd, F_SETPIPE_SZ, 4096);
    char head[16];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t n = read(fd, head + got, sizeof head - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == sizeof head && memcmp(head, "CYMEMTRK", 8) == 0) {
        /* Give the writer time to fill the pipe and block; it cannot finish, since nobody
         * reads on. */
        struct timespec pause = { 0, 100 * 1000 * 1000 };
        nanosleep(&pause, NULL);
        say("killed mid-write\n");
        kill(getpid(), SIGKILL);
    }
    reader_state = -2;
    return NULL;
}

static volatile int sink;

/* Leaks one block from each of 2^levels call paths that differ in their innermost levels
 * frames (two call sites a level), so that the report holds that many stacks and leak sites
 * and takes far more than a pipe's worth of bytes. */
__attribute__((noinline)) static void fan(int levels)
{
    if (levels == 0) {
        char *p = malloc(32);
        if (!p)
            _exit(121);
        p[0] = 1;
        allocs++;
        return;
    }
    fan(levels - 1);
    sink++;     /* no tail call: each site keeps its frame */
    fan(levels - 1);
    sink++;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* Calls fresh_second() until the report at path is replaced (a checkpoint written in a fresh
 * second, while that call's 1-byte block was live), ten times at most; says when none was. */
static bool new_checkpoint(const char *path)
{
    ino_t before = inode_of(path);
    for (int tries = 0; tries < 10 && inode_of(path) == before; tries++)
        fresh_second();
    if (inode_of(path) != before)
        return true;
    say("no checkpoint was written\n");
    return false;
}

/* TEMPLATE with its "%p" replaced by this process's id, into out. */
static void with_pid(char *out, size_t size, const char *template)
{
    const char *p = strstr(template, "%p");
    if (!p)
        snprintf(out, size, "%s", template);
    else
        snprintf(out, size, "%.*s%d%s", (int)(p - template), template, (int)getpid(), p + 2);
}

static int ckpt_kill(const char *template)
{
    static char path[4096];
    with_pid(path, sizeof path, template);
    /* Many blocks from many stacks, and the suite gives a long argv: the next write is far
     * larger than the pipe holds. Then a checkpoint in a fresh second, so that its content
     * is known: every block so far, and fresh_second()'s 1-byte block, live while it ran.
     * (A checkpoint that took D keeps the next one 20 D away: one taken during fan() may
     * make a second or two pass before the next.) */
    fan(10);
    if (!new_checkpoint(path))
        return 122;
    say("live_at_checkpoint=%llu\n", (unsigned long long)allocs + 1);
    static char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (mkfifo(tmp, 0600) != 0)
        return 123;
    fifo_path = tmp;
    pthread_t th;
    if (pthread_create(&th, NULL, fifo_reader, NULL) != 0)
        return 124;
    /* No tracked call for a while: the reader is waiting in its open() before the tracker
     * opens the FIFO (without blocking, so it needs a reader there already). */
    struct timespec settle = { 0, 50 * 1000 * 1000 };
    nanosleep(&settle, NULL);
    /* One of these owes the next second's checkpoint, which the reader interrupts. */
    struct timespec pause = { 0, 2 * 1000 * 1000 };
    for (int k = 0; k < 10000 && reader_state == 0; k++) {     /* 20 s at most */
        char *p = malloc(16);
        if (!p)
            return 121;
        p[0] = 1;
        nanosleep(&pause, NULL);
    }
    say("not killed: reader state %d\n", reader_state);
    return 125;
}

/* ---- fifo-stuck ---------------------------------------------------------------------- */

/* Someone put a FIFO nobody reads where the tracker writes its next report: opening it for
 * writing would block for ever, inside a malloc of this program. */
static int fifo_stuck(const char *template)
{
    static char path[4096], tmp[4096];
    with_pid(path, sizeof path, template);
    if (!cmt_active()) {
        /* A plain run writes no report: the same calls, and the same output. */
        fresh_second();
        fresh_second();
        say("went on\n");
        return 0;
    }
    /* The last checkpoint before the FIFO is then one that fresh_second()'s own 1-byte
     * block was live in, whether or not start-up already wrote one. */
    if (!new_checkpoint(path))
        return 122;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (mkfifo(tmp, 0600) != 0)
        return 123;
    fresh_second();
    fresh_second();
    say("went on\n");
    return 0;
}

/* ---- diskfill ------------------------------------------------------------------------ */

static int diskfill(const char *dir, int code)
{
    /* Two new seconds, each with a tracked call: a checkpoint file exists under the tracker
     * (nothing happens in a plain run). */
    fresh_second();
    fresh_second();
    char path[4096];
    snprintf(path, sizeof path, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 120;
    static char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    int err = 0;
    for (;;) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n < 0) {
            err = errno;
            break;
        }
    }
    close(fd);
    say("filled: %s\n", err == ENOSPC ? "ENOSPC" : strerror(err));
    return code;
}

/* Uses up the process's mappings: one page of its own executable each, which no merging of
 * neighbours can fold together (each maps the file's first page). Leaves them mapped. */
static int mapcount(void)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 120;
    long n = 0;
    errno = 0;
    while (n < (1L << 22) && mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) != MAP_FAILED)
        n++;
    int err = errno;
    close(fd);
    if (n == (1L << 22))
        return 121;     /* no limit reached: the test says so */
    say("mapping until mmap fails: %s\n", err == ENOMEM ? "ENOMEM" : strerror(err));
    stat_line("stat: mappings=%ld\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    base();
    if (strcmp(mode, "basic") == 0)
        return argc > 2 ? atoi(argv[2]) : 0;
    if (strcmp(mode, "fan") == 0) {
        fan(10);
        return argc > 2 ? atoi(argv[2]) : 0;
    }
    if (strcmp(mode, "sigalloc") == 0 && argc > 2)
        return sigalloc(atol(argv[2]));
    if (strcmp(mode, "nomem") == 0)
        return nomem(argc > 2 && strcmp(argv[2], "ckpt") == 0);
    if (strcmp(mode, "mapcount") == 0)
        return mapcount();
    if (strcmp(mode, "segv-scope") == 0)
        return segv_scope();
    if (strcmp(mode, "ckpt-kill") == 0 && argc > 2)
        return ckpt_kill(argv[2]);
    if (strcmp(mode, "fifo-stuck") == 0 && argc > 2)
        return fifo_stuck(argv[2]);
    if (strcmp(mode, "diskfill") == 0 && argc > 3)
        return diskfill(argv[2], atoi(argv[3]));
    return 2;
}
