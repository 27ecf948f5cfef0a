/*
 * report_prog.c — run by tests/check_report.c under the preload: leaks a known set of blocks
 * from one known function, then ends the way argv[1] says, so that the suite can check the
 * report each ending leaves. Uses no stdio streams (their buffers would be blocks of their
 * own): every line goes out with one write(2).
 *
 *   report_prog MODE [ARG...]    MODE: return|exit|_exit|_Exit CODE, abort, segv,
 *                                exec PATH [ARG...], execlp FILE ARG, execwith FUNCTION,
 *                                exec-fail CODE,
 *                                fork CODE, kill TEMPLATE, rocwd CODE, fsize CODE, dtors LIB,
 *                                badfree, race ROUNDS, killwrite, notmpfile, nolink
 *
 * Every mode first leaks LEAK_BLOCKS blocks of LEAK_SIZE + i bytes from leak_here(), makes
 * and frees TEMP_BLOCKS others, and prints "pid=", "fn=" (leak_here's address) and one
 * "ptr=" per leaked block.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cymemtrack.h"
#include "say.h"

#define LEAK_BLOCKS 3
#define LEAK_SIZE 1000
#define TEMP_BLOCKS 5


void leak_here(int n);

/* The compiler must neither inline this (its return addresses are the known site) nor
 * drop the allocations (the suite is built with -fno-builtin). */
__attribute__((noinline)) void leak_here(int n)
{
    for (int i = 0; i < n; i++) {
        char *p = malloc(LEAK_SIZE + (size_t)i);
        if (!p)
            _exit(121);
        p[0] = 1;
        say("ptr=%p\n", (void *)p);
    }
}

static void base(void)
{
    say("pid=%d\n", (int)getpid());
    say("fn=%p\n", (void *)leak_here);
    leak_here(LEAK_BLOCKS);
    for (int i = 0; i < TEMP_BLOCKS; i++) {
        char *p = malloc(64);
        if (!p)
            _exit(121);
        p[0] = 1;
        free(p);
    }
}

/* The report file this process would have under CYMEMTRACK_OUTPUT=template, for the
 * templates the suite uses ("%p" only). */
static void file_of(char *out, size_t size, const char *template)
{
    const char *p = strstr(template, "%p");
    snprintf(out, size, "%.*s%d%s", (int)(p - template), template, (int)getpid(), p + 2);
}

/* The report file's identity now: its inode, or 0 when there is none. */
static ino_t inode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* Allocates one block at a time until a call to malloc is seen to write a checkpoint (the
 * file appears or is replaced during it), says how many blocks it took, and is killed. */
static int wait_for_checkpoint_then_die(const char *template)
{
    char path[512];
    file_of(path, sizeof path, template);
    struct timespec pause = { 0, 5 * 1000 * 1000 };
    for (int i = 1; i <= 4000; i++) {     /* 20 s at most */
        ino_t before = inode_of(path);
        char *p = malloc(16);
        ino_t after = inode_of(path);
        if (!p)
            return 121;
        if (after != 0 && after != before) {
            say("loop_blocks=%d\n", i);
            kill(getpid(), SIGKILL);
        }
        nanosleep(&pause, NULL);
    }
    say("no checkpoint was written\n");
    return 122;
}

/* Makes the working directory unwritable, even for root: drops every capability from the
 * effective set (CAP_DAC_OVERRIDE would let root write anyway). */
static int make_cwd_read_only(void)
{
    if (chmod(".", 0555) != 0)
        return 123;
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) != 0)
        return 124;
    for (int i = 0; i < 2; i++)
        data[i].effective = 0;
    if (syscall(SYS_capset, &hdr, data) != 0)
        return 125;
    int fd = open("probe", O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0 || errno != EACCES)
        return 126;
    return 0;
}

/* race: a thread moves its blocks from its young set to the table while the main thread
 * writes ROUNDS snapshots. In its scope "racer" it makes RACE_BATCH blocks at a time, which
 * it keeps; then, in a nested scope "churn", it allocates and frees blocks of many sizes,
 * whose slots push those out into the table. While a snapshot is written it makes no racer
 * block and churns slowly, so that the racer blocks still in its young set move during the
 * walk. For each snapshot, "race=BEFORE,AFTER": the racer blocks made before it began and
 * after it ended (the same number): all live through the walk, each must be in the snapshot
 * once. */
#define RACE_BATCH 64
#define RACE_BLOCKS 400000      /* at most, then the racer only churns */
#define RACE_CHURN 64
static atomic_ulong race_made;
static atomic_bool race_stop, race_hold, race_held;
static cmt_scope_t (*race_open)(const char *, unsigned);
static int64_t (*race_close)(cmt_scope_t);
static int (*race_snapshot)(const char *);

static long long race_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One free and allocation of churn's, in slot k, with a size that moves with i. */
static void race_churn_one(void **churn, unsigned i)
{
    unsigned k = (i * 7) % RACE_CHURN;
    free(churn[k]);
    churn[k] = malloc(16 + (i * 37) % 2000);
}

static void *race_worker(void *arg)
{
    (void)arg;
    void *churn[RACE_CHURN] = { 0 };
    unsigned n = 0;
    cmt_scope_t racer = race_open("racer", 0);
    if (!racer)
        _exit(127);
    while (!atomic_load(&race_stop)) {
        for (unsigned i = 0; i < RACE_BATCH && atomic_load(&race_made) < RACE_BLOCKS; i++) {
            char *p = malloc(24 + (n + i) % 40);
            if (!p)
                _exit(121);
            p[0] = 1;
            atomic_fetch_add(&race_made, 1);
        }
        cmt_scope_t c = race_open("churn", 0);
        if (atomic_load(&race_hold)) {
            atomic_store(&race_held, true);
            while (atomic_load(&race_hold)) {
                race_churn_one(churn, n++);
                for (long long t0 = race_now_ns(); race_now_ns() - t0 < 20000;)
                    ;   /* about 20 us a step: the young blocks leave over the walk */
            }
            atomic_store(&race_held, false);
        } else {
            for (unsigned i = 0; i < 4 * RACE_CHURN; i++)
                race_churn_one(churn, n++);
        }
        race_close(c);
    }
    for (unsigned k = 0; k < RACE_CHURN; k++)
        free(churn[k]);
    race_close(racer);  /* its blocks stay: closed, they are leaks */
    return NULL;
}

static int race(int rounds)
{
    race_open = (cmt_scope_t (*)(const char *, unsigned))dlsym(RTLD_DEFAULT, "cmt_scope_open");
    race_close = (int64_t (*)(cmt_scope_t))dlsym(RTLD_DEFAULT, "cmt_scope_close");
    race_snapshot = (int (*)(const char *))dlsym(RTLD_DEFAULT, "cmt_snapshot");
    if (!race_open || !race_close || !race_snapshot)
        return 127;
    pthread_t t;
    if (pthread_create(&t, NULL, race_worker, NULL) != 0)
        return 126;
    while (atomic_load(&race_made) < RACE_BLOCKS / 4)   /* a table long to walk */
        sched_yield();
    for (int i = 0; i < rounds; i++) {
        atomic_store(&race_hold, true);
        while (!atomic_load(&race_held))
            sched_yield();
        unsigned long before = atomic_load(&race_made);
        if (race_snapshot("race") != 0)
            return 125;
        say("race=%lu,%lu\n", before, atomic_load(&race_made));
        atomic_store(&race_hold, false);
        while (atomic_load(&race_held))
            sched_yield();
    }
    atomic_store(&race_stop, true);
    pthread_join(t, NULL);
    return 0;
}

/* Installs a seccomp filter: system call nr, when the low word of its argument arg passes
 * the test op (BPF_JGE or BPF_JSET) against k, gets `action`; every other call goes through.
 * Returns 0, or an exit status when the filter cannot be installed. */
static int filter_call(int nr, unsigned arg, uint16_t op, uint32_t k, uint32_t action)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]) + 8 * arg),
        BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof code / sizeof code[0], code };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 127;
    return 0;
}

#define AT_EXIT_SIZE 111
#define DTOR_SIZE 222
static void *at_exit_block, *dtor_block;

static void free_at_exit(void)
{
    if (!getenv("CMT_TEST_KEEP"))
        free(at_exit_block);
}

__attribute__((destructor)) static void free_in_destructor(void)
{
    if (dtor_block && !getenv("CMT_TEST_KEEP"))
        free(dtor_block);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    int code = argc > 2 ? atoi(argv[2]) : 0;
    /* These two change the ground before any block is made, so that even a checkpoint
     * written early meets them. */
    if (strcmp(mode, "rocwd") == 0) {   /* rocwd CODE: the working directory read-only */
        int rc = make_cwd_read_only();
        if (rc)
            return rc;
    }
    if (strcmp(mode, "fsize") == 0) {   /* fsize CODE: a 64-byte file size limit */
        struct rlimit lim = { 64, 64 };
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            return 120;
    }
    base();

    if (strcmp(mode, "return") == 0)
        return code;
    if (strcmp(mode, "exit") == 0)
        exit(code);
    if (strcmp(mode, "_exit") == 0)
        _exit(code);
    if (strcmp(mode, "_Exit") == 0)
        _Exit(code);
    if (strcmp(mode, "abort") == 0)
        abort();
    if (strcmp(mode, "segv") == 0) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
        return 1;
    }
    if (strcmp(mode, "exec") == 0) {    /* exec ARGV...: execv of the rest */
        execv(argv[2], argv + 2);
        return 127;
    }
    if (strcmp(mode, "execlp") == 0) {  /* execlp PROG ARG: execlp with one argument */
        execlp(argv[2], argv[2], argv[3], (char *)NULL);
        return 127;
    }
    if (strcmp(mode, "execwith") == 0) {  /* execwith FUNCTION: /bin/true through it */
        const char *f = argv[2];
        char *args[] = { "true", NULL };
        /* The new image is tracked only if its environment keeps the preload. */
        static char preload[4096];
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s",
                 getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
        char *env[] = { preload, NULL };
        if (strcmp(f, "execve") == 0)
            execve("/bin/true", args, env);
        else if (strcmp(f, "execv") == 0)
            execv("/bin/true", args);
        else if (strcmp(f, "execvp") == 0)
            execvp("true", args);
        else if (strcmp(f, "execvpe") == 0)
            execvpe("true", args, env);
        else if (strcmp(f, "execl") == 0)
            execl("/bin/true", "true", (char *)NULL);
        else if (strcmp(f, "execlp") == 0)
            execlp("true", "true", (char *)NULL);
        else if (strcmp(f, "execle") == 0)
            execle("/bin/true", "true", (char *)NULL, env);
        else if (strcmp(f, "fexecve") == 0 || strcmp(f, "execveat") == 0) {
            int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return 120;
            if (f[1] == 'e')
                fexecve(fd, args, env);
            else
                execveat(fd, "", args, env, AT_EMPTY_PATH);
        }
        return 127;
    }
    if (strcmp(mode, "exec-fail") == 0) {  /* an exec that fails, then exit CODE */
        char *args[] = { "/nonexistent/cymemtrack-test", NULL };
        if (execv(args[0], args) == 0 || errno != ENOENT)
            return 126;
        exit(code);
    }
    if (strcmp(mode, "fork") == 0) {    /* the child leaks one block more and exits 0 */
        pid_t child = fork();
        if (child < 0)
            return 120;
        if (child == 0) {
            char *p = malloc(4242);
            if (!p)
                _exit(121);
            p[0] = 1;
            say("child=%d\n", (int)getpid());
            say("child_ptr=%p\n", (void *)p);
            exit(0);
        }
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            return 119;
        return code;
    }
    if (strcmp(mode, "kill") == 0)      /* kill TEMPLATE */
        return wait_for_checkpoint_then_die(argv[2]);
    if (strcmp(mode, "rocwd") == 0 || strcmp(mode, "fsize") == 0)
        return code;
    if (strcmp(mode, "race") == 0)
        return race(code);
    /* killwrite: the first write(2) to a descriptor past 2 (the exit report's, before any
     * checkpoint) kills the process. notmpfile: open() of an unnamed file fails as on a file
     * system without them. nolink: linkat() fails as without /proc. */
    if (strcmp(mode, "killwrite") == 0 || strcmp(mode, "notmpfile") == 0 ||
        strcmp(mode, "nolink") == 0) {
        int rc = mode[0] == 'k'   ? filter_call(__NR_write, 0, BPF_JGE, 3,
                                                SECCOMP_RET_KILL_PROCESS)
                 : mode[2] == 't' ? filter_call(__NR_openat, 2, BPF_JSET,
                                                __O_TMPFILE & ~O_DIRECTORY,
                                                SECCOMP_RET_ERRNO | EOPNOTSUPP)
                                  : filter_call(__NR_linkat, 0, BPF_JGE, 0,
                                                SECCOMP_RET_ERRNO | ENOENT);
        say("filtered=%d\n", rc == 0);
        return rc;
    }
    if (strcmp(mode, "badfree") == 0) { /* one invalid free and one double free */
        static char not_heap[64];
        free(not_heap + 16);
        char *p = malloc(48);
        if (!p)
            return 121;
        free(p);
        free(p);
        return 0;
    }
    if (strcmp(mode, "dtors") == 0) {   /* dtors LIB: frees in every kind of exit code */
        /* Blocks an atexit handler, a destructor of this program and a destructor of a
         * library loaded later free at exit, unless CMT_TEST_KEEP is set. */
        at_exit_block = malloc(AT_EXIT_SIZE);
        dtor_block = malloc(DTOR_SIZE);
        if (!at_exit_block || !dtor_block || atexit(free_at_exit) != 0)
            return 120;
        if (!dlopen(argv[2], RTLD_NOW))
            return 121;
        return 0;
    }
    return 2;
}
