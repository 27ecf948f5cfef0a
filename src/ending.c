/*
 * ending.c — every way a process can end, each made to leave its report: exit, _exit/_Exit,
 * exec, abort and the fatal signals, and the checkpoint that stands in for the endings where
 * no code runs (SIGKILL). Never changes the program's exit status, a signal disposition the
 * program chose, or errno; never allocates through the tracked allocator.
 *
 * Checkpoints piggy-back on the hooks instead of running in a thread of their own. A thread
 * would make every program multi-threaded: glibc then leaves its single-thread fast paths for
 * good (__libc_single_threaded: stdio locking, libstdc++ reference counts), unshare() of a
 * user namespace fails, CPython warns at each fork, and the thread must be kept out of signal
 * delivery and restarted in fork children. Piggy-backing costs one time() read (a vDSO load)
 * a tracked allocation or free: whoever first sees a new wall-clock second writes the
 * checkpoint. Any event more than a second after the last checkpoint brings a new one, so
 * SIGKILL loses at most the last second of events, and a program idle since loses nothing.
 * A checkpoint that took D keeps the next one at least 20·D away, so that a huge live table
 * never spends more than about 5% of the run on checkpoints.
 */
#define _GNU_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmt.h"
#include "report-format.h"

atomic_long cmt_checkpoint_clock;

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };

static struct {
    atomic_int pid;             /* the process the tracker's state belongs to; 0 before init */
    atomic_int exec_pending;    /* an exec is under way: no checkpoint may replace its report */
    atomic_ullong next_checkpoint_ns;   /* CLOCK_MONOTONIC */
    /* The exec family further down the lookup order, found at start so that an exec from a
     * signal handler never has to call dlsym. */
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
} end;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* True when this thread may be inside the tracker: a signal handler that interrupted a hook
 * (the program's, calling _exit or exec, or ours on a fatal signal). */
static bool interrupted(void)
{
    return cmt_self.busy > 0;
}

/* False in a child that fork() did not make (vfork, or a raw clone system call): fork()
 * runs the tracker's fork handlers, the others do not. A vfork child shares the parent's
 * memory, whose tracker state it must not touch; a raw clone child cannot be told from it. */
static bool same_process(void)
{
    int pid = atomic_load_explicit(&end.pid, memory_order_relaxed);
    return pid != 0 && pid == (int)syscall(SYS_getpid);
}

/* ---- exit --------------------------------------------------------------------------- */

/* Registered with on_exit from the constructor, which runs before the C library registers
 * the dynamic linker's destructor pass (__libc_start_main does that just before main). Exit
 * handlers run last-registered first, so this one runs after every atexit handler and after
 * every ELF destructor, the program's and every library's, and their frees count. on_exit
 * rather than atexit: it gets the status, and it is not tied to this library's __dso_handle,
 * which would make our own destructor run it early. */
static void at_exit(int status, void *arg)
{
    (void)arg;
    if (!atomic_load_explicit(&cmt_ready, memory_order_acquire) || !same_process())
        return;     /* a child made by a raw clone: see same_process */
    if (interrupted())
        cmt_report_write_careful(CMT_END_EXIT, status & 0xff, NULL);
    else
        cmt_report_write(CMT_END_EXIT, status & 0xff, NULL);
}

/* ---- _exit and _Exit ---------------------------------------------------------------- */

static __attribute__((noreturn)) void exit_now(int status)
{
    /* A vfork child is the usual caller of _exit with a pid the tracker does not know. */
    if (atomic_load_explicit(&cmt_ready, memory_order_acquire) && same_process()) {
        if (interrupted())
            cmt_report_write_careful(CMT_END_UNDERSCORE_EXIT, status & 0xff, NULL);
        else
            cmt_report_write(CMT_END_UNDERSCORE_EXIT, status & 0xff, NULL);
    }
    for (;;)
        syscall(SYS_exit_group, status);
}

CMT_EXPORT void _exit(int status)
{
    exit_now(status);
}

CMT_EXPORT void _Exit(int status)
{
    exit_now(status);
}

/* ---- exec ---------------------------------------------------------------------------- */

/* Writes the report as the process image is about to be replaced. If the exec fails the
 * process goes on, and its later report replaces this one. */
static void before_exec(void)
{
    if (!atomic_load_explicit(&cmt_ready, memory_order_acquire) || !same_process())
        return;     /* not started, or a vfork child (see exit_now) */
    atomic_store_explicit(&end.exec_pending, 1, memory_order_relaxed);
    if (interrupted())
        cmt_report_write_careful(CMT_END_EXEC, 0, NULL);
    else
        cmt_report_write(CMT_END_EXEC, 0, NULL);
}

static int after_exec(int rc)
{
    int saved_errno = errno;
    atomic_store_explicit(&end.exec_pending, 0, memory_order_relaxed);
    errno = saved_errno;
    return rc;
}

#define RESOLVE_EXEC(name)                                                                  \
    do {                                                                                    \
        if (!end.name)                                                                      \
            end.name = (__typeof__(end.name))dlsym(RTLD_NEXT, #name);                      \
    } while (0)

static void resolve_exec(void)
{
    RESOLVE_EXEC(execve);
    RESOLVE_EXEC(execv);
    RESOLVE_EXEC(execvp);
    RESOLVE_EXEC(execvpe);
    RESOLVE_EXEC(fexecve);
    RESOLVE_EXEC(execveat);
}

/* An exec before the constructor ran (from another library's constructor) finds the real
 * function now; the raw system call stands in if even that fails. */
static int real_execve(const char *path, char *const argv[], char *const envp[])
{
    if (!end.execve)
        resolve_exec();
    if (end.execve)
        return end.execve(path, argv, envp);
    return (int)syscall(SYS_execve, path, argv, envp);
}

CMT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    before_exec();
    return after_exec(real_execve(path, argv, envp));
}

CMT_EXPORT int execv(const char *path, char *const argv[])
{
    before_exec();
    if (!end.execv)
        resolve_exec();
    return after_exec(end.execv ? end.execv(path, argv) : real_execve(path, argv, environ));
}

CMT_EXPORT int execvp(const char *file, char *const argv[])
{
    before_exec();
    if (!end.execvp)
        resolve_exec();
    if (!end.execvp) {
        errno = ENOSYS;
        return after_exec(-1);
    }
    return after_exec(end.execvp(file, argv));
}

CMT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    before_exec();
    if (!end.execvpe)
        resolve_exec();
    if (!end.execvpe) {
        errno = ENOSYS;
        return after_exec(-1);
    }
    return after_exec(end.execvpe(file, argv, envp));
}

CMT_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    before_exec();
    if (!end.fexecve)
        resolve_exec();
    if (!end.fexecve)
        return after_exec((int)syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH));
    return after_exec(end.fexecve(fd, argv, envp));
}

CMT_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                        int flags)
{
    before_exec();
    if (!end.execveat)
        resolve_exec();
    if (!end.execveat)
        return after_exec((int)syscall(SYS_execveat, dirfd, path, argv, envp, flags));
    return after_exec(end.execveat(dirfd, path, argv, envp, flags));
}

/* The list forms collect their arguments on the stack, as glibc's own do, and go on as the
 * vector forms. */
static size_t count_args(va_list ap)
{
    size_t n = 1;   /* arg0, given apart */
    while (va_arg(ap, const char *) != NULL)
        n++;
    return n;
}

#define COLLECT_ARGS(argv, n, arg0, ap, last)                                               \
    va_start(ap, last);                                                                     \
    size_t n = count_args(ap);                                                              \
    va_end(ap);                                                                             \
    const char *argv[n + 1];                                                                \
    argv[0] = arg0;                                                                         \
    va_start(ap, last);                                                                     \
    for (size_t i_ = 1; i_ <= n; i_++)                                                      \
        argv[i_] = va_arg(ap, const char *)

CMT_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(argv, n, arg, ap, arg);
    va_end(ap);
    return execv(path, (char *const *)argv);
}

CMT_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(argv, n, arg, ap, arg);
    va_end(ap);
    return execvp(file, (char *const *)argv);
}

CMT_EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(argv, n, arg, ap, arg);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, (char *const *)argv, envp);
}

/* ---- fatal signals ------------------------------------------------------------------ */

/* Writes the report, puts the default action back and raises the signal again: it is
 * blocked while this handler runs, so it is delivered as the handler returns and the
 * process ends by it, as it would have without the tracker (a fault that the kernel raised
 * would also recur on return; raising covers the signals sent with kill too). */
static void on_fatal_signal(int sig, siginfo_t *info, void *context)
{
    (void)context;
    int saved_errno = errno;
    pid_t pid = (pid_t)syscall(SYS_getpid);
    /* abort() raises SIGABRT at its own process; a SIGABRT from elsewhere is a signal. */
    bool aborted = sig == SIGABRT && info && info->si_code == SI_TKILL && info->si_pid == pid;
    if (same_process())
        cmt_report_write_careful(aborted ? CMT_END_ABORT : CMT_END_SIGNAL, sig, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    syscall(SYS_tgkill, pid, (pid_t)syscall(SYS_gettid), sig);
    errno = saved_errno;
}

static void install_fatal_handlers(void)
{
    for (size_t i = 0; i < CMT_ARRAY_LEN(fatal_signals); i++) {
        int sig = fatal_signals[i];
        struct sigaction old;
        if (sigaction(sig, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
            old.sa_handler != SIG_DFL)
            continue;   /* the program's own choice stands */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fatal_signal;
        /* Everything blocked while writing: a crash of the writer itself then ends the
         * process by that signal instead of recursing. SA_ONSTACK uses the program's
         * alternate stack when it set one (the writer needs a few kilobytes). */
        sigfillset(&sa.sa_mask);
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigaction(sig, &sa, NULL);
    }
}

/* ---- checkpoints -------------------------------------------------------------------- */

void cmt_clock_look(void)
{
    cmt_timeline_tick();
    long now = (long)time(NULL);
    if (now != atomic_load_explicit(&cmt_checkpoint_clock, memory_order_relaxed))
        cmt_checkpoint_slow(now);
}

void cmt_checkpoint_slow(long now)
{
    long seen = atomic_load_explicit(&cmt_checkpoint_clock, memory_order_relaxed);
    /* One thread a second goes on; the others go back to the program at once. */
    if (seen == now || !atomic_compare_exchange_strong(&cmt_checkpoint_clock, &seen, now))
        return;
    if (!atomic_load_explicit(&end.pid, memory_order_relaxed) ||
        atomic_load_explicit(&end.exec_pending, memory_order_relaxed) ||
        !atomic_load_explicit(&cmt_ready, memory_order_acquire))
        return;
    int saved_errno = errno;
    uint64_t t0 = mono_ns();
    if (t0 >= atomic_load_explicit(&end.next_checkpoint_ns, memory_order_relaxed) &&
        same_process()) {
        cmt_report_checkpoint();
        uint64_t t1 = mono_ns();
        atomic_store_explicit(&end.next_checkpoint_ns, t1 + 20 * (t1 - t0),
                              memory_order_relaxed);
    }
    errno = saved_errno;
}

/* ---- start and fork ----------------------------------------------------------------- */

void cmt_ending_init(void)
{
    if (atomic_load(&end.pid))
        return;
    cmt_report_init();
    resolve_exec();
    if (on_exit(at_exit, NULL) != 0)
        cmt_diag("cannot register an exit handler; a normal exit leaves no report");
    install_fatal_handlers();
    atomic_store(&cmt_checkpoint_clock, (long)time(NULL));
    atomic_store(&end.pid, (int)syscall(SYS_getpid));
}

void cmt_ending_after_fork_child(void)
{
    if (!atomic_load(&end.pid))
        return;
    cmt_report_after_fork_child();
    atomic_store(&end.exec_pending, 0);
    atomic_store(&end.next_checkpoint_ns, 0);
    atomic_store(&cmt_checkpoint_clock, (long)time(NULL));
    atomic_store(&end.pid, (int)syscall(SYS_getpid));
}
