/*
 * harness.c — running programs under the library just built, for every suite.
 */
#define _GNU_SOURCE
#include "config.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CMT_TEST_LIBRARY
#error "CMT_TEST_LIBRARY must name the library under test"
#endif
#ifndef CMT_TEST_PROGS
#error "CMT_TEST_PROGS must name the directory of the test programs"
#endif

extern char **environ;

const char *cmt_test_library(void)
{
    return CMT_TEST_LIBRARY;
}

const char *cmt_test_prog(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", CMT_TEST_PROGS, name);
    return path;
}

/* The library under test is the one of this build (CMT_TEST_LIBRARY), so this build's
 * configuration says whether it unwinds. */
bool cmt_test_have_stacks(void)
{
#ifdef HAVE_LIBUNWIND
    return true;
#else
    return false;
#endif
}

/* Reads both pipes to their end without letting either fill up and block the child. */
static void drain(int out_fd, int err_fd, struct cmt_run *r)
{
    struct pollfd p[2] = { { out_fd, POLLIN, 0 }, { err_fd, POLLIN, 0 } };
    char **buf[2] = { &r->out, &r->err };
    size_t *len[2] = { &r->out_len, &r->err_len };
    size_t cap[2] = { 0, 0 };
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            ck_abort_msg("poll: %s", strerror(errno));
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (cap[i] - *len[i] < 65536) {
                cap[i] = cap[i] * 2 + 65536;
                *buf[i] = realloc(*buf[i], cap[i] + 1);
                ck_assert_ptr_nonnull(*buf[i]);
            }
            ssize_t n = read(p[i].fd, *buf[i] + *len[i], cap[i] - *len[i]);
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            } else {
                *len[i] += (size_t)n;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (!*buf[i])
            *buf[i] = calloc(1, 1);
        (*buf[i])[*len[i]] = '\0';
    }
}

static void set_env_list(char *const extra_env[])
{
    for (size_t i = 0; extra_env && extra_env[i]; i++) {
        char *eq = strchr(extra_env[i], '=');
        if (!eq)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - extra_env[i]), extra_env[i]);
        if (eq[1] == '\0')
            unsetenv(name);
        else
            setenv(name, eq + 1, 1);
    }
}

void cmt_run(struct cmt_run *r, int preload, char *const argv[], char *const extra_env[])
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s/cmt-test.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_msg(mkdtemp(r->dir) != NULL, "mkdtemp: %s", strerror(errno));

    int out[2], err[2];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, STDIN_FILENO);
        if (chdir(r->dir) != 0)
            _exit(125);
        /* Whatever the test process itself runs under must not leak into a plain run. */
        unsetenv("LD_PRELOAD");
        set_env_list(extra_env);
        if (preload) {
            const char *old = getenv("LD_PRELOAD");
            char value[PATH_MAX * 2];
            if (old && *old)
                snprintf(value, sizeof value, "%s %s", cmt_test_library(), old);
            else
                snprintf(value, sizeof value, "%s", cmt_test_library());
            setenv("LD_PRELOAD", value, 1);
        }
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    close(out[1]);
    close(err[1]);
    drain(out[0], err[0], r);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    if (WIFEXITED(status)) {
        r->exit_code = WEXITSTATUS(status);
    } else {
        r->exit_code = -1;
        r->signal = WTERMSIG(status);
    }
}

void cmt_run_free(struct cmt_run *r)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (r->dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", r->dir);
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

int cmt_count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t plen = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, prefix, plen) == 0)
            n++;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return n;
}

unsigned long long cmt_field(const char *text, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "%s=", key);
    for (const char *p = strstr(text, pat); p; p = strstr(p + 1, pat)) {
        if (p == text || p[-1] == ' ' || p[-1] == '\n')
            return strtoull(p + strlen(pat), NULL, 10);
    }
    ck_abort_msg("no \"%s=\" in output:\n%s", key, text);
    return 0;
}

void cmt_reexec_preloaded(char **argv)
{
    const char *mark = getenv("CMT_TEST_PRELOADED");
    if (mark && strcmp(mark, "1") == 0)
        return;
    setenv("CMT_TEST_PRELOADED", "1", 1);
    setenv("LD_PRELOAD", cmt_test_library(), 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "cannot re-execute %s under the preload: %s\n", argv[0], strerror(errno));
    exit(99);   /* a hard error for automake's harness */
}

static char scratch[PATH_MAX];

void cmt_scratch_setup(const char *tag)
{
    snprintf(scratch, sizeof scratch, "%s/cmt-%s.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", tag);
    if (!mkdtemp(scratch))
        abort();
}

void cmt_scratch_teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", scratch);
}

const char *cmt_scratch_dir(void)
{
    return scratch;
}

const char *cmt_scratch_path(const char *name)
{
    static char buf[8][PATH_MAX];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", scratch, name);
    return b;
}

void cmt_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

char *cmt_read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return strdup("");
    }
    return buf;
}

int cmt_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
