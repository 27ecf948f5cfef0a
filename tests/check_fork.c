/*
 * check_fork.c — the tracker through fork, vfork, posix_spawn and exec, run inside a process
 * that has the library under test preloaded: children forked while other threads allocate,
 * free and close scopes neither hang nor lose their footing (their own totals move and
 * balance exactly), none inherits a call half done on another thread, and programs started
 * with vfork+exec or posix_spawn run tracked, with their exit status intact.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cymemtrack.h"

#ifndef CMT_TOTALS_SO
#error "CMT_TOTALS_SO must name tests/progs/.libs/cmttotals.so"
#endif

extern char **environ;

#define FORKS 150               /* forks while the other threads allocate */
#define BACKGROUND 2            /* threads allocating meanwhile */
#define CHILD_HANG_SECONDS 30   /* a child that has not exited by then is stuck */

/* What a child says with its exit status. */
enum {
    CHILD_OK = 0,
    CHILD_INACTIVE = 10,        /* the tracker stopped recording in the child */
    CHILD_DELTA = 11,           /* its own calls were not counted exactly */
    CHILD_BALANCE = 12,         /* allocations - frees - bulk-freed != live blocks */
    CHILD_THREAD = 13,          /* a thread started in the child was not counted exactly */
    CHILD_GRANDCHILD = 14,      /* a child of the child failed */
    CHILD_DAMAGED = 15,         /* a block's contents were wrong */
};

static const char *child_says(int code)
{
    switch (code) {
    case CHILD_OK: return "fine";
    case CHILD_INACTIVE: return "the tracker is not active in the child";
    case CHILD_DELTA: return "the child's own calls were not counted exactly";
    case CHILD_BALANCE: return "allocations - frees - bulk-freed != live blocks in the child";
    case CHILD_THREAD: return "a thread started in the child was not counted exactly";
    case CHILD_GRANDCHILD: return "a grandchild failed";
    case CHILD_DAMAGED: return "a block came back damaged in the child";
    default: return "unexpected exit status";
    }
}

static int balanced(const struct cmt_process_stats *s)
{
    return s->allocations - s->frees - s->bulk_freed_blocks == s->live_blocks;
}

/* Waits for pid. Returns its exit status, or -1 when a signal ended it (in *sig): SIGALRM
 * for a child that hung (see child_start). */
static int wait_child(pid_t pid, int *sig)
{
    *sig = 0;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -3;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    *sig = WTERMSIG(status);
    return -1;
}

/* First thing in a child: one that hangs dies of SIGALRM instead of hanging its parent. */
static void child_start(void)
{
    alarm(CHILD_HANG_SECONDS);
}

/* ---- what a forked child does ---------------------------------------------------------- */

static void *child_thread(void *arg)
{
    (void)arg;
    void *p[64];
    for (int i = 0; i < 64; i++)
        p[i] = malloc(32 + (size_t)i);
    for (int i = 0; i < 64; i++)
        free(p[i]);
    return NULL;
}

/* Allocates and frees a known set of blocks and checks that exactly those were counted;
 * then a thread does the same; then, when depth > 0, a grandchild. Returns a CHILD_* code. */
static int child_work(int depth)
{
    struct cmt_process_stats a, b;
    if (cmt_process_stats(&a) != 0)
        return CHILD_INACTIVE;
    /* The table the child inherited must be consistent: its own walk of it must not hang,
     * and the totals must add up before the child does anything. */
    int balance_at_start = balanced(&a);

    char *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = (i % 3) ? malloc(16 + (size_t)i * 8) : calloc(4, 8 + (size_t)i);
        if (!p[i])
            return CHILD_DAMAGED;
        p[i][0] = (char)i;
    }
    for (int i = 0; i < 100; i += 5) {
        char *q = realloc(p[i], 4000);
        if (!q || q[0] != (char)i)
            return CHILD_DAMAGED;
        p[i] = q;
    }
    for (int i = 0; i < 60; i++)
        free(p[i]);
    if (cmt_process_stats(&b) != 0)
        return CHILD_INACTIVE;
    /* 100 allocations + 20 reallocs (each one allocation and one free) + 60 frees. */
    int ok = b.allocations - a.allocations == 120 && b.frees - a.frees == 80 &&
             b.live_blocks - a.live_blocks == 40;
    for (int i = 60; i < 100; i++)
        free(p[i]);
    if (!ok)
        return CHILD_DELTA;

    pthread_t th;
    if (cmt_process_stats(&a) != 0)
        return CHILD_INACTIVE;
    if (pthread_create(&th, NULL, child_thread, NULL) != 0)
        return CHILD_THREAD;
    pthread_join(th, NULL);
    if (cmt_process_stats(&b) != 0)
        return CHILD_INACTIVE;
    /* pthread_create may allocate (the new thread's dtv): at least the thread's 64. */
    if (b.allocations - a.allocations < 64 || b.frees - a.frees < 64 ||
        (b.allocations - a.allocations) - (b.frees - a.frees) !=
            b.live_blocks - a.live_blocks)
        return CHILD_THREAD;

    if (depth > 0) {
        pid_t pid = fork();
        if (pid < 0)
            return CHILD_GRANDCHILD;
        if (pid == 0) {
            child_start();
            _exit(child_work(depth - 1));
        }
        int sig, code = wait_child(pid, &sig);
        if (code == CHILD_BALANCE)
            return CHILD_BALANCE;   /* inherited from this child, said below */
        if (code != CHILD_OK)
            return CHILD_GRANDCHILD;
    }
    if (!balance_at_start)
        return CHILD_BALANCE;
    return CHILD_OK;
}

/* ---- threads that keep allocating while the forks happen ------------------------------ */

static atomic_int stop;
static atomic_ullong background_calls;

struct pass {
    pthread_mutex_t lock;
    void *slot[64];
    int len;
};
static struct pass passes[BACKGROUND];

static void *background(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    void *held[128] = { 0 };
    unsigned long long calls = 0;
    unsigned long long round = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* A scope now and then, every other one bulk-freeing what it still owns. */
        cmt_scope_t s = (round % 8 == 0)
                            ? cmt_scope_open("fork.background", (round & 8) ? CMT_BULK_FREE : 0)
                            : CMT_SCOPE_NONE;
        for (int k = 0; k < 256; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int i = (int)(x % 128);
            if (held[i]) {
                if (x & 0x100) {
                    void *q = realloc(held[i], 1 + (x >> 20) % 3000);
                    if (q)
                        held[i] = q;
                } else if (s == CMT_SCOPE_NONE || !(round & 8)) {
                    /* Hand it to the next thread, which frees it. */
                    struct pass *p = &passes[(id + 1) % BACKGROUND];
                    pthread_mutex_lock(&p->lock);
                    if (p->len < 64) {
                        p->slot[p->len++] = held[i];
                        held[i] = NULL;
                    }
                    pthread_mutex_unlock(&p->lock);
                    if (held[i]) {
                        free(held[i]);
                        held[i] = NULL;
                    }
                } else {
                    free(held[i]);
                    held[i] = NULL;
                }
            } else {
                held[i] = malloc(1 + (x >> 20) % 2000);
            }
            calls++;
        }
        struct pass *mine = &passes[id];
        pthread_mutex_lock(&mine->lock);
        while (mine->len > 0)
            free(mine->slot[--mine->len]);
        pthread_mutex_unlock(&mine->lock);
        if (s != CMT_SCOPE_NONE) {
            /* A bulk scope takes the blocks it still owns with it: forget them. */
            if (round & 8)
                for (int i = 0; i < 128; i++)
                    held[i] = NULL;
            cmt_scope_close(s);
        }
        round++;
    }
    for (int i = 0; i < 128; i++)
        free(held[i]);
    atomic_fetch_add(&background_calls, calls);
    return NULL;
}

/* Forks FORKS times from `forker` while BACKGROUND threads allocate; counts the children's
 * verdicts. */
struct fork_results {
    int code[FORKS];
    int sig[FORKS];
    int nforks;
};

static void *forker(void *arg)
{
    struct fork_results *r = arg;
    for (int n = 0; n < FORKS; n++) {
        /* Some churn of its own, so that the forking thread is inside the tracker often. */
        void *p = malloc(100 + (size_t)n);
        pid_t pid = fork();
        if (pid == 0) {
            child_start();
            _exit(child_work(n % 10 == 0 ? 1 : 0));
        }
        free(p);
        if (pid < 0) {
            r->code[n] = -4;
            continue;
        }
        r->code[n] = wait_child(pid, &r->sig[n]);
        r->nforks++;
    }
    return NULL;
}

static void fork_under_load(int from_other_thread)
{
    static struct fork_results r;
    memset(&r, 0, sizeof r);
    atomic_store(&stop, 0);
    atomic_store(&background_calls, 0);
    pthread_t th[BACKGROUND];
    for (int i = 0; i < BACKGROUND; i++) {
        pthread_mutex_init(&passes[i].lock, NULL);
        passes[i].len = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, background, (void *)(intptr_t)i), 0);
    }
    if (from_other_thread) {
        pthread_t f;
        ck_assert_int_eq(pthread_create(&f, NULL, forker, &r), 0);
        pthread_join(f, NULL);
    } else {
        forker(&r);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < BACKGROUND; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < BACKGROUND; i++) {
        while (passes[i].len > 0)
            free(passes[i].slot[--passes[i].len]);
    }

    int hung = 0, killed = 0, failed = 0, unbalanced = 0, first = -1;
    int by_code[32] = { 0 };
    for (int n = 0; n < FORKS; n++) {
        if (r.code[n] >= 0 && r.code[n] < 32)
            by_code[r.code[n]]++;
        if (r.code[n] == -1 && r.sig[n] == SIGALRM)
            hung++;
        else if (r.code[n] == -1)
            killed++;
        else if (r.code[n] == CHILD_BALANCE)
            unbalanced++;
        else if (r.code[n] != CHILD_OK)
            failed++;
        if (r.code[n] != CHILD_OK && r.code[n] != CHILD_BALANCE && first < 0)
            first = n;
    }
    for (int k = 1; k < 32; k++)
        if (by_code[k])
            printf("fork: %d children: %s\n", by_code[k], child_says(k));
    printf("fork: %d forks from the %s thread while %d threads made %llu calls: %d hung, "
           "%d killed, %d failed, %d inherited unbalanced totals\n", r.nforks,
           from_other_thread ? "other" : "main", BACKGROUND,
           (unsigned long long)atomic_load(&background_calls), hung, killed, failed,
           unbalanced);
    fflush(stdout);
    ck_assert_msg(hung == 0 && killed == 0 && failed == 0,
                  "of %d children, %d hung, %d were killed by a signal and %d failed; the "
                  "first (fork %d): status %d, signal %d: %s", FORKS, hung, killed, failed,
                  first, first >= 0 ? r.code[first] : 0, first >= 0 ? r.sig[first] : 0,
                  first >= 0 ? child_says(r.code[first]) : "");
    ck_assert_msg(unbalanced == 0,
                  "%d of %d children forked while other threads allocated started with "
                  "allocations - frees - bulk-freed != live blocks: a call in flight on "
                  "another thread at fork time was half counted", unbalanced, FORKS);
}

START_TEST(fork_while_threads_allocate)
{
    fork_under_load(0);
}
END_TEST

START_TEST(fork_from_a_thread_while_others_allocate)
{
    fork_under_load(1);
}
END_TEST

/* Runs one case of this suite again in a new process, set up by prepare (which returns
 * false when it cannot be), and returns its wait status: exit 30 when prepare failed, 32
 * when the exec did. */
static int rerun_case(const char *tcase, bool (*prepare)(void))
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!prepare())
            _exit(30);
        setenv("CK_RUN_CASE", tcase, 1);
        execv("/proc/self/exe", (char *[]){ "check_fork", NULL });
        _exit(32);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* Makes membarrier(2) kill this process and what it execs, as a sandbox whose filter kills
 * on calls it does not allow would. False when the filter cannot be installed. */
static bool deny_membarrier(void)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof code / sizeof code[0], code };
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/* The forks under load again in a sandbox whose seccomp filter kills on membarrier(2): the
 * tracker, seeing a filter, never makes the call, and the threads inside it take their own
 * barrier before they look at fork's gate (see src/young.c). The case runs in a new process
 * of this suite, started under such a filter. */
START_TEST(fork_under_load_without_membarrier)
{
    int status = rerun_case("fork under load", deny_membarrier);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "expected the forks under load to pass under a filter that kills on "
                  "membarrier; status %#x (signal 31: killed by the filter, exit 30: no "
                  "filter, 32: no exec, 1: a case failed; see the lines above)", status);
}
END_TEST

/* ---- fork while calls are half done on other threads ----------------------------------- */

#define IN_FLIGHT_THREADS 3     /* more than the test machine's two cores: some wait, */
#define IN_FLIGHT_FORKS 100     /* descheduled, in the middle of a call now and then */

static atomic_int in_flight_stop;
static atomic_ullong in_flight_calls;

static void *in_flight_pairs(void *arg)
{
    size_t size = 16 + 48 * (size_t)(intptr_t)arg;
    unsigned long long calls = 0;
    while (!atomic_load_explicit(&in_flight_stop, memory_order_relaxed)) {
        void *p = malloc(size);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
        calls += 2;
    }
    atomic_fetch_add(&in_flight_calls, calls);
    return NULL;
}

/* Threads that do nothing but malloc/free pairs spend much of their time inside the tracker,
 * between a change of a block's record and the change of its counts; a thread descheduled
 * there when another forks would leave the child half a call. fork() waits until no thread
 * is in such a change (see src/young.c): without that wait, 5 to 10 of these 100 children
 * inherit unbalanced totals. Stacks are off, so that the calls are short and all hot path:
 * the case runs in a new process of this suite, started with CYMEMTRACK_STACK_DEPTH=0. */
static bool stacks_off(void)
{
    return setenv("CYMEMTRACK_STACK_DEPTH", "0", 1) == 0;
}

START_TEST(fork_waits_for_calls_in_flight)
{
    const char *depth = getenv("CYMEMTRACK_STACK_DEPTH");
    if (!depth || strcmp(depth, "0") != 0) {
        int status = rerun_case("calls in flight", stacks_off);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "expected the forks with calls in flight to pass with stacks off; "
                      "status %#x (exit 30: no setenv, 32: no exec, 1: the case failed; see "
                      "above)", status);
        return;
    }
    pthread_t th[IN_FLIGHT_THREADS];
    atomic_store(&in_flight_stop, 0);
    atomic_store(&in_flight_calls, 0);
    for (int i = 0; i < IN_FLIGHT_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, in_flight_pairs, (void *)(intptr_t)i),
                         0);
    int forks = 0, hung = 0, killed = 0, failed = 0, unbalanced = 0;
    for (int n = 0; n < IN_FLIGHT_FORKS; n++) {
        pid_t pid = fork();
        if (pid == 0) {
            child_start();
            struct cmt_process_stats st;
            if (cmt_process_stats(&st) != 0)
                _exit(CHILD_INACTIVE);
            _exit(balanced(&st) ? CHILD_OK : CHILD_BALANCE);
        }
        if (pid < 0) {
            failed++;
            continue;
        }
        forks++;
        int sig, code = wait_child(pid, &sig);
        if (code == -1 && sig == SIGALRM)
            hung++;
        else if (code == -1)
            killed++;
        else if (code == CHILD_BALANCE)
            unbalanced++;
        else if (code != CHILD_OK)
            failed++;
    }
    atomic_store(&in_flight_stop, 1);
    for (int i = 0; i < IN_FLIGHT_THREADS; i++)
        pthread_join(th[i], NULL);
    /* In the words of fork_under_load's line, which tests/reliability-figures reads. */
    printf("fork: %d forks from the main thread while %d threads in malloc/free pairs made "
           "%llu calls: %d hung, %d killed, %d failed, %d inherited unbalanced totals\n", forks,
           IN_FLIGHT_THREADS, (unsigned long long)atomic_load(&in_flight_calls), hung, killed,
           failed, unbalanced);
    fflush(stdout);
    ck_assert_msg(hung == 0 && killed == 0 && failed == 0,
                  "of %d forks, %d children hung, %d were killed by a signal and %d failed "
                  "(or the fork did)", IN_FLIGHT_FORKS, hung, killed, failed);
    ck_assert_msg(unbalanced == 0, "%d of %d children inherited allocations - frees - "
                  "bulk-freed != live blocks: fork copied a call half done on another "
                  "thread", unbalanced, IN_FLIGHT_FORKS);
}
END_TEST

/* A child of a single-threaded program keeps tracking, and its parent's totals do not move
 * with the child's calls. */
START_TEST(fork_child_keeps_tracking)
{
    /* Check's assertions allocate, even passing ones: none between the measurements. */
    struct cmt_process_stats a, b;
    int rca = cmt_process_stats(&a);
    pid_t pid = fork();
    if (pid == 0) {
        child_start();
        _exit(child_work(2));
    }
    int sig = 0, code = pid < 0 ? -4 : wait_child(pid, &sig);
    int rcb = cmt_process_stats(&b);
    ck_assert_int_eq(rca, 0);
    ck_assert_int_eq(rcb, 0);
    ck_assert_int_ge(pid, 0);
    ck_assert_msg(code == CHILD_OK && sig == 0, "the child ended with status %d, signal %d: %s",
                  code, sig, child_says(code));
    ck_assert_msg(b.allocations == a.allocations && b.frees == a.frees,
                  "the parent's totals moved by %llu allocations and %llu frees while only "
                  "its child allocated", (unsigned long long)(b.allocations - a.allocations),
                  (unsigned long long)(b.frees - a.frees));
}
END_TEST

/* ---- programs started with vfork+exec and posix_spawn --------------------------------- */

struct spawn_env {
    char dir[PATH_MAX];
    char totals[PATH_MAX];
    char *envp[256];
    char store[3][PATH_MAX * 2];
};

/* The environment of a started program: ours, with the tracker and cmttotals.so preloaded
 * and the totals written to a fresh file. */
static void spawn_env_make(struct spawn_env *e)
{
    snprintf(e->dir, sizeof e->dir, "%s/cmt-fork.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_msg(mkdtemp(e->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(e->totals, sizeof e->totals, "%s/totals", e->dir);
    int n = 0;
    for (char **v = environ; *v && n < 250; v++)
        if (strncmp(*v, "LD_PRELOAD=", 11) != 0 && strncmp(*v, "CMT_TOTALS_FILE=", 16) != 0 &&
            strncmp(*v, "CYMEMTRACK_OUTPUT=", 18) != 0)
            e->envp[n++] = *v;
    snprintf(e->store[0], sizeof e->store[0], "LD_PRELOAD=%s %s", cmt_test_library(),
             CMT_TOTALS_SO);
    snprintf(e->store[1], sizeof e->store[1], "CMT_TOTALS_FILE=%s", e->totals);
    snprintf(e->store[2], sizeof e->store[2], "CYMEMTRACK_OUTPUT=%s/cymemtrack.%%e.%%p.cmt",
             e->dir);
    for (int i = 0; i < 3; i++)
        e->envp[n++] = e->store[i];
    e->envp[n] = NULL;
}

static void spawn_env_remove(struct spawn_env *e)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
}

/* Checks that exe wrote a balanced totals line. */
static void check_tracked(const struct spawn_env *e, const char *exe)
{
    FILE *f = fopen(e->totals, "r");
    ck_assert_msg(f != NULL, "%s was not tracked: no totals file (%s)", exe, strerror(errno));
    char line[2048];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        const char *x = strstr(line, " exe=");
        if (!x || strncmp(x + 5, exe, strlen(exe)) != 0 || x[5 + strlen(exe)] != '\n')
            continue;
        found = 1;
        ck_assert_msg(strstr(line, " active=1 ") != NULL, "%s ran untracked: %s", exe, line);
        unsigned long long a = cmt_field(line, "allocations"), fr = cmt_field(line, "frees");
        unsigned long long live = cmt_field(line, "live_blocks");
        unsigned long long bulk = cmt_field(line, "bulk_freed_blocks");
        ck_assert_msg(a > 0 && a - fr - bulk == live,
                      "%s: expected allocations - frees = live blocks: %s", exe, line);
    }
    fclose(f);
    ck_assert_msg(found, "%s wrote no totals line: it ran untracked or did not exit normally",
                  exe);
}

/* /usr/bin/ls of a missing file: exit status 2, a message on stderr. */
static char *const ls_missing[] = { "ls", "-d", "/nonexistent/cymemtrack", NULL };

START_TEST(vfork_exec_is_tracked)
{
    struct spawn_env e;
    spawn_env_make(&e);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(devnull, 0);
    pid_t pid = vfork();
    if (pid == 0) {
        alarm(CHILD_HANG_SECONDS);
        /* Only async-signal-safe calls until exec: the parent's memory is shared. */
        dup2(devnull, STDERR_FILENO);
        execve("/bin/ls", ls_missing, e.envp);
        _exit(127);
    }
    ck_assert_int_ge(pid, 0);
    int sig, code = wait_child(pid, &sig);
    close(devnull);
    ck_assert_msg(code == 2 && sig == 0, "ls under vfork+exec: status %d, signal %d", code,
                  sig);
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath("/bin/ls", real));
    check_tracked(&e, real);
    spawn_env_remove(&e);
}
END_TEST

START_TEST(posix_spawn_is_tracked)
{
    struct spawn_env e;
    spawn_env_make(&e);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/ls", &fa, NULL, ls_missing, e.envp);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "posix_spawn: %s", strerror(rc));
    int sig, code = wait_child(pid, &sig);
    ck_assert_msg(code == 2 && sig == 0, "ls under posix_spawn: status %d, signal %d", code,
                  sig);
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath("/bin/ls", real));
    check_tracked(&e, real);
    spawn_env_remove(&e);
}
END_TEST

/* An exec chain: a shell that runs a shell that runs sort, each started by the one before,
 * all inheriting the preload; sort's status comes back through both shells. */
START_TEST(exec_chain_is_tracked)
{
    struct spawn_env e;
    spawn_env_make(&e);
    char *const argv[] = { "sh", "-c",
                           "sh -c 'printf \"b\\na\\n\" | sort -c 2>/dev/null; exit $?'; "
                           "exit $?", NULL };
    pid_t pid;
    int rc = posix_spawnp(&pid, "sh", NULL, NULL, argv, e.envp);
    ck_assert_msg(rc == 0, "posix_spawnp: %s", strerror(rc));
    int sig, code = wait_child(pid, &sig);
    ck_assert_msg(code == 1 && sig == 0, "sort -c of unsorted input through two shells: status "
                  "%d, signal %d (expected 1)", code, sig);
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath("/usr/bin/sort", real));
    check_tracked(&e, real);
    spawn_env_remove(&e);
}
END_TEST

static Suite *fork_suite(void)
{
    Suite *s = suite_create("fork");
    TCase *tc = tcase_create("fork under load");
    /* A hung child is killed after CHILD_HANG_SECONDS; a hung parent fails here. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fork_while_threads_allocate);
    tcase_add_test(tc, fork_from_a_thread_while_others_allocate);
    tcase_add_test(tc, fork_child_keeps_tracking);
    suite_add_tcase(s, tc);

    tc = tcase_create("calls in flight");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fork_waits_for_calls_in_flight);
    suite_add_tcase(s, tc);

    tc = tcase_create("without membarrier");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, fork_under_load_without_membarrier);
    suite_add_tcase(s, tc);

    tc = tcase_create("spawn and exec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, vfork_exec_is_tracked);
    tcase_add_test(tc, posix_spawn_is_tracked);
    tcase_add_test(tc, exec_chain_is_tracked);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    cmt_reexec_preloaded(argv);
    return cmt_run_suite(fork_suite());
}
