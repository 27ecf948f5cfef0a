/*
 * check_faults.c — faults the other suites do not inject (check_report has the endings, the
 * read-only directory and RLIMIT_FSIZE; check_fork fork, vfork, posix_spawn and exec chains):
 * a signal handler that allocates while malloc runs, RLIMIT_AS exhausted, vm.max_map_count
 * used up, the output directory missing, the disk full (a small tmpfs in a private mount
 * namespace), SIGSEGV inside a scope, SIGKILL in the middle of a checkpoint's write. tests/progs/fault_prog
 * injects each from inside; each case runs it plain and under the library just built,
 * requires the same output and exit status, and reads the report with cymem-report's reader
 * (tools/reader.c): complete and exact, or marked as cut short. Each passing test prints a
 * "figures:" line that tests/reliability-figures sums into tests/RELIABILITY.md.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "report.h"

/* What fault_prog does in every mode (tests/progs/fault_prog.c). */
#define PROG "fault_prog"
#define LEAK_BLOCKS 3
#define LEAK_BYTES (3000 + 3001 + 3002)
#define FAN_BLOCKS 1024
/* fresh_second() makes a 1-byte block, reallocs it this many times and frees it. */
#define FRESH_REALLOCS 256

/* ---- running fault_prog ------------------------------------------------------------- */

/* Runs fault_prog ARGS... in a fresh directory, under the preload or not. The shell's
 * CYMEMTRACK_* settings are dropped; the report goes to rep.PID.cmt in that directory unless
 * env says otherwise (later entries win). */
static void run_prog(struct cmt_run *r, int preload, char *const args[], char *const env[])
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)cmt_test_prog(PROG);
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *full_env[24] = { "CYMEMTRACK_STACK_DEPTH=", "CYMEMTRACK_QUARANTINE=",
                           "CYMEMTRACK_SCOPES=", "CYMEMTRACK_OUTPUT=rep.%p.cmt" };
    n = 4;
    for (size_t i = 0; env && env[i] && n < 23; i++)
        full_env[n++] = env[i];
    full_env[n] = NULL;
    cmt_run(r, preload, argv, full_env);
}

static const char *describe(const struct cmt_run *r, char *buf, size_t size)
{
    if (r->signal)
        snprintf(buf, size, "killed by signal %d", r->signal);
    else
        snprintf(buf, size, "exit %d", r->exit_code);
    return buf;
}

/* The tracked run did what the plain run did: same status, same stdout. */
static void assert_same_as_plain(const struct cmt_run *plain, const struct cmt_run *tracked)
{
    char a[64], b[64];
    ck_assert_msg(plain->exit_code == tracked->exit_code && plain->signal == tracked->signal,
                  "expected the tracked run to end as the plain one (%s), got %s; stderr:\n%s",
                  describe(plain, a, sizeof a), describe(tracked, b, sizeof b), tracked->err);
    ck_assert_msg(strcmp(plain->out, tracked->out) == 0,
                  "expected the same stdout as the plain run:\n%s\ngot:\n%s", plain->out,
                  tracked->out);
}

/* The one regular file in dir named PREFIX*.cmt, into path; fails unless there is exactly
 * one. */
static void find_report(const char *dir, const char *prefix, char *path, size_t size)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < 4 ||
            strcmp(e->d_name + len - 4, ".cmt") != 0)
            continue;
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(path, size, "%s", p);
        n++;
    }
    closedir(d);
    ck_assert_msg(n == 1, "expected one report file %s*.cmt in %s, found %d", prefix, dir, n);
}

/* Files in dir whose names end in suffix. */
static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len >= sl && strcmp(e->d_name + len - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Reads a report that must be complete (an END other than a checkpoint's) and whole. */
static void read_complete(const char *path, struct cmt_process *p)
{
    int rc = cmt_report_read(path, p);
    ck_assert_msg(rc == 0, "expected %s to be readable (its error is on stderr)", path);
    ck_assert_msg(!p->truncated, "expected %s whole, got one cut short", path);
}

static uint64_t leaked_blocks(const struct cmt_process *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->nleaks; i++)
        n += p->leaks[i].blocks;
    return n;
}

static uint64_t leaked_bytes(const struct cmt_process *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->nleaks; i++)
        n += p->leaks[i].bytes;
    return n;
}

/* The accounting every report must have: allocations - frees = live blocks = the blocks in
 * its LEAK records = `live`, with `bytes` live bytes, and no bad free. */
static void assert_balanced(const struct cmt_process *p, uint64_t live, uint64_t bytes)
{
    const struct cmt_totals *t = &p->totals;
    ck_assert_msg(t->allocations - t->frees == live && t->live_blocks == live &&
                      t->live_bytes == bytes,
                  "expected %llu live blocks of %llu bytes = allocations - frees, got %llu "
                  "blocks of %llu bytes, %llu - %llu", (unsigned long long)live,
                  (unsigned long long)bytes, (unsigned long long)t->live_blocks,
                  (unsigned long long)t->live_bytes, (unsigned long long)t->allocations,
                  (unsigned long long)t->frees);
    ck_assert_msg(leaked_blocks(p) == live && leaked_bytes(p) == bytes,
                  "expected LEAK records of %llu blocks / %llu bytes, got %llu / %llu",
                  (unsigned long long)live, (unsigned long long)bytes,
                  (unsigned long long)leaked_blocks(p), (unsigned long long)leaked_bytes(p));
    ck_assert_msg(t->invalid_frees == 0 && t->double_frees == 0 && t->stale_frees == 0,
                  "expected no bad free, got %llu invalid, %llu double, %llu stale",
                  (unsigned long long)t->invalid_frees, (unsigned long long)t->double_frees,
                  (unsigned long long)t->stale_frees);
}

/* Reads run's report, which must be whole and say that the program exited with 0 holding
 * fault_prog's leaks and nothing else. */
static void read_clean_exit(const struct cmt_run *run, struct cmt_process *p)
{
    char path[PATH_MAX];
    find_report(run->dir, "rep.", path, sizeof path);
    read_complete(path, p);
    ck_assert(p->complete && p->how == CMT_END_EXIT && p->code == 0);
    assert_balanced(p, LEAK_BLOCKS, LEAK_BYTES);
}

static void assert_no_diagnostic(const struct cmt_run *r)
{
    ck_assert_msg(cmt_count_lines(r->err, "cymemtrack:") == 0,
                  "expected no \"cymemtrack:\" line, got:\n%s", r->err);
}

/* One diagnostic line, which says `what`. */
static void assert_one_diagnostic(const struct cmt_run *r, const char *what)
{
    ck_assert_msg(cmt_count_lines(r->err, "cymemtrack:") == 1 && strstr(r->err, what),
                  "expected one \"cymemtrack:\" line saying \"%s\", got:\n%s", what, r->err);
}

/* For tests/reliability-figures: what one passing test did. `calls` sums the allocations
 * the reports of tracked processes count. */
static void figures(const char *test, unsigned programs, uint64_t calls, unsigned faults)
{
    printf("figures: suite=faults test=%s programs=%u calls=%llu faults=%u bad_inputs=0 "
           "crashes=0 lost=0\n", test, programs, (unsigned long long)calls, faults);
    fflush(stdout);
}

static void make_dir(char *out, size_t size, const char *what)
{
    snprintf(out, size, "%s/cmt-faults-%s.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             what);
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_dir(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- a signal handler that allocates while malloc runs -------------------------------- */

START_TEST(signal_handler_allocates_inside_malloc)
{
    char *args[] = { "sigalloc", "200000", NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, NULL);
    run_prog(&run, 1, args, NULL);
    ck_assert_int_eq(plain.exit_code, 0);
    assert_same_as_plain(&plain, &run);
    ck_assert_str_eq(run.out, "leaked=3\nsigalloc: handler failures 0\n");
    assert_no_diagnostic(&run);

    struct cmt_process p;
    read_clean_exit(&run, &p);

    /* The handler's calls that came while the tracker was busy were forwarded untracked,
     * the others were recorded; each handler frees what it allocated, by the same route. */
    uint64_t main_allocs = cmt_field(run.err, "main_allocs");
    uint64_t main_frees = cmt_field(run.err, "main_frees");
    uint64_t handler_allocs = cmt_field(run.err, "handler_allocs");
    const struct cmt_totals *t = &p.totals;
    ck_assert_msg(t->allocations >= main_allocs && t->allocations <= main_allocs + handler_allocs,
                  "expected between %llu and %llu allocations (the main loop's, and up to "
                  "%llu of the handler's), got %llu", (unsigned long long)main_allocs,
                  (unsigned long long)(main_allocs + handler_allocs),
                  (unsigned long long)handler_allocs, (unsigned long long)t->allocations);
    uint64_t tracked_handler = t->allocations - main_allocs;
    ck_assert_msg(t->frees == main_frees + tracked_handler,
                  "expected %llu frees (the main loop's %llu and the handler's recorded %llu), "
                  "got %llu", (unsigned long long)(main_frees + tracked_handler),
                  (unsigned long long)main_frees, (unsigned long long)tracked_handler,
                  (unsigned long long)t->frees);
    uint64_t nested = handler_allocs - tracked_handler;
    ck_assert_msg(nested > 0, "expected some handler allocations inside the tracker "
                  "(forwarded untracked), got none of %llu: the case was not exercised",
                  (unsigned long long)handler_allocs);
    printf("sigalloc: %llu handler allocations, %llu of them inside the tracker\n",
           (unsigned long long)handler_allocs, (unsigned long long)nested);
    figures("signal_handler_allocates_inside_malloc", 2, t->allocations,
            (unsigned)cmt_field(run.err, "handled"));
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
}
END_TEST

/* ---- RLIMIT_AS ------------------------------------------------------------------------ */

static const char nomem_out[] =
    "leaked=3\n"
    "malloc until exhausted: fails with ENOMEM\n"
    "malloc again, 3 times: 3 fail, 3 with ENOMEM\n"
    "calloc: fails with ENOMEM\n"
    "realloc: fails with ENOMEM\n"
    "realloc left the block: yes\n"
    "posix_memalign: ENOMEM, pointer untouched\n"
    "aligned_alloc: fails with ENOMEM\n"
    "after freeing: malloc succeeds\n";

/* Runs nomem [ckpt] plain and tracked; the report must balance, and count every allocation
 * the program made unless one line said that some went untracked. */
static void nomem_case(const char *test, bool ckpt)
{
    char *args[] = { "nomem", ckpt ? "ckpt" : NULL, NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, NULL);
    run_prog(&run, 1, args, NULL);
    ck_assert_str_eq(plain.out, nomem_out);
    ck_assert_int_eq(plain.exit_code, 0);
    assert_same_as_plain(&plain, &run);

    struct cmt_process p;
    read_clean_exit(&run, &p);
    /* base(), fresh_second(), the 1 MiB blocks, the smaller ones, the malloc after. */
    uint64_t made = LEAK_BLOCKS + 1 + FRESH_REALLOCS + cmt_field(run.err, "big") + cmt_field(run.err, "small") + 1;
    int untracked_lines = cmt_count_lines(run.err, "cymemtrack: out of memory for the block "
                                                   "table");
    if (p.totals.allocations == made)
        ck_assert_int_eq(untracked_lines, 0);
    else
        ck_assert_msg(untracked_lines == 1 && p.totals.allocations < made,
                      "expected %llu allocations, or fewer and one line saying that some went "
                      "untracked; got %llu and:\n%s", (unsigned long long)made,
                      (unsigned long long)p.totals.allocations, run.err);
    /* A checkpoint skipped for want of memory must not claim that no report is written,
     * nor use up the process's one line about its report file. */
    ck_assert_msg(!strstr(run.err, "no report is written"),
                  "a report was written, but stderr says otherwise:\n%s", run.err);
    ck_assert_int_le(cmt_count_lines(run.err, "cymemtrack:"), 1 + untracked_lines);
    figures(test, 2, p.totals.allocations, 1 + ckpt);
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
}

START_TEST(address_space_exhausted)
{
    nomem_case("address_space_exhausted", false);
}
END_TEST

START_TEST(checkpoint_due_while_address_space_exhausted)
{
    nomem_case("checkpoint_due_while_address_space_exhausted", true);
}
END_TEST

/* ---- vm.max_map_count ------------------------------------------------------------------ */

/* A program that maps pages until mmap fails, then exits: the final report can get no
 * mapping of its own and takes its memory from the library's spare area; it must be whole,
 * leaks and all, with nothing said. */
START_TEST(mappings_used_up)
{
    char *args[] = { "mapcount", NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, NULL);
    if (plain.exit_code == 121) {
        printf("mappings_used_up: no limit on mappings within 4 million; not tested\n");
        cmt_run_free(&plain);
        return;
    }
    run_prog(&run, 1, args, NULL);
    ck_assert_str_eq(plain.out, "leaked=3\nmapping until mmap fails: ENOMEM\n");
    ck_assert_int_eq(plain.exit_code, 0);
    assert_same_as_plain(&plain, &run);
    assert_no_diagnostic(&run);

    struct cmt_process p;
    read_clean_exit(&run, &p);
    figures("mappings_used_up", 2, p.totals.allocations, 1);
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
}
END_TEST

/* ---- the output directory missing ----------------------------------------------------- */

START_TEST(missing_output_directory_falls_back_to_tmpdir)
{
    char tmpdir[PATH_MAX], env_tmpdir[PATH_MAX + 16];
    make_dir(tmpdir, sizeof tmpdir, "tmpdir");
    snprintf(env_tmpdir, sizeof env_tmpdir, "TMPDIR=%s", tmpdir);
    char *args[] = { "basic", "4", NULL };
    char *env[] = { "CYMEMTRACK_OUTPUT=missing/dir/rep.%p.cmt", env_tmpdir, NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, env);
    run_prog(&run, 1, args, env);
    ck_assert_int_eq(plain.exit_code, 4);
    assert_same_as_plain(&plain, &run);

    char path[PATH_MAX], want[PATH_MAX + 32];
    find_report(tmpdir, "rep.", path, sizeof path);
    /* One line, naming the file it could not create and the one it wrote. */
    snprintf(want, sizeof want, "%s/missing/dir/rep.", run.dir);
    assert_one_diagnostic(&run, want);
    assert_one_diagnostic(&run, path);
    struct cmt_process p;
    read_complete(path, &p);
    ck_assert(p.complete && p.how == CMT_END_EXIT && p.code == 4);
    assert_balanced(&p, LEAK_BLOCKS, LEAK_BYTES);
    figures("missing_output_directory_falls_back_to_tmpdir", 2, p.totals.allocations, 1);
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
    remove_dir(tmpdir);
}
END_TEST

START_TEST(missing_output_and_tmpdir_fall_back_to_tmp)
{
    char *args[] = { "basic", "0", NULL };
    char *env[] = { "CYMEMTRACK_OUTPUT=missing/cmt-faults-fallback.%p.cmt",
                    "TMPDIR=/nonexistent/cmt-faults", NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, env);
    run_prog(&run, 1, args, env);
    assert_same_as_plain(&plain, &run);
    static const char lead[] = "writing the report to ";
    const char *at = strstr(run.err, "writing the report to /tmp/cmt-faults-fallback.");
    ck_assert_msg(at != NULL, "expected the report in /tmp, got:\n%s", run.err);
    at += sizeof lead - 1;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(at, "\n"), at);
    assert_one_diagnostic(&run, path);
    struct cmt_process p;
    read_complete(path, &p);
    unlink(path);
    ck_assert(p.complete && p.how == CMT_END_EXIT && p.code == 0);
    assert_balanced(&p, LEAK_BLOCKS, LEAK_BYTES);
    figures("missing_output_and_tmpdir_fall_back_to_tmp", 2, p.totals.allocations, 1);
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
}
END_TEST

/* ---- the disk full ---------------------------------------------------------------------- */

static bool write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok;
}

/* Mounts a tmpfs of `size` on dir, in a mount namespace of this test's own process (so that
 * nobody else sees it and it goes away with the process): as root directly, else inside a
 * new user namespace. False, with *why, where the system allows neither. */
static bool private_tmpfs(const char *dir, const char *size, const char **why)
{
    if (unshare(CLONE_NEWNS) != 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        char map[64];
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            *why = "neither unshare(CLONE_NEWNS) nor a user namespace is allowed";
            return false;
        }
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        bool ok = write_file("/proc/self/setgroups", "deny") &&
                  write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        if (!ok || !write_file("/proc/self/gid_map", map)) {
            *why = "cannot map ids in the new user namespace";
            return false;
        }
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        *why = "cannot make the mounts private";
        return false;
    }
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s,mode=0755", size);
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
        *why = "cannot mount a tmpfs";
        return false;
    }
    return true;
}

/* Fills the file system of dir to the last page (then gives back `leave` bytes). */
static void fill(const char *dir, off_t leave)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    static char chunk[4096];
    off_t size = 0;
    ssize_t n;
    while ((n = write(fd, chunk, sizeof chunk)) > 0)
        size += n;
    ck_assert_int_eq(errno, ENOSPC);
    if (leave)
        ck_assert_int_eq(ftruncate(fd, size - leave), 0);
    close(fd);
}

/* A tmpfs for the test in `mnt`; false (and a line in the log) when none can be had: the
 * disk-full case is then left to check_report's RLIMIT_FSIZE test, which takes the same
 * path through the writer (a write that stops short). */
static bool get_tmpfs(char *mnt, size_t size, const char *bytes)
{
    make_dir(mnt, size, "mnt");
    const char *why = "";
    if (private_tmpfs(mnt, bytes, &why))
        return true;
    printf("%s: %s; skipped (check_report's RLIMIT_FSIZE test covers a write cut short)\n",
           tcase_name(), why);
    remove_dir(mnt);
    return false;
}

static void put_tmpfs(const char *mnt)
{
    umount2(mnt, MNT_DETACH);
    remove_dir(mnt);
}

/* Full before the first write: no file, or one that reads as cut short; never one that a
 * reader rejects as corrupt. */
static void disk_full_first_write(const char *test, off_t leave)
{
    char mnt[PATH_MAX], env_out[PATH_MAX + 32];
    if (!get_tmpfs(mnt, sizeof mnt, "256k"))
        return;
    snprintf(env_out, sizeof env_out, "CYMEMTRACK_OUTPUT=%s/rep.%%p.cmt", mnt);
    /* A report far larger than the page left, with stacks or without: fan's 1024 leak sites
     * make it about 250 KiB, and 32 KiB of command line do in a build without stacks. */
    static char longarg[32 * 1024 + 1];
    memset(longarg, 'a', sizeof longarg - 1);
    char *args[] = { "fan", "6", longarg, NULL };
    char *env[] = { env_out, NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, env);
    fill(mnt, leave);
    run_prog(&run, 1, args, env);
    ck_assert_int_eq(plain.exit_code, 6);
    assert_same_as_plain(&plain, &run);
    assert_one_diagnostic(&run, "(no space left on device)");
    ck_assert_int_eq(count_files(mnt, ".tmp"), 0);
    int files = count_files(mnt, ".cmt");
    ck_assert_int_le(files, 1);
    if (files == 1) {
        char path[PATH_MAX];
        find_report(mnt, "rep.", path, sizeof path);
        struct cmt_process p;
        int rc = cmt_report_read(path, &p);
        ck_assert_msg(rc == 0 && p.truncated && !p.complete,
                      "expected %s to read as cut short, got %s", path,
                      rc ? "an error (see stderr)" : "a whole file");
        cmt_process_free(&p);
    }
    figures(test, 2, 0, 1);
    cmt_run_free(&plain);
    cmt_run_free(&run);
    put_tmpfs(mnt);
}

START_TEST(disk_full_before_the_first_byte)
{
    disk_full_first_write("disk_full_before_the_first_byte", 0);
}
END_TEST

START_TEST(disk_full_inside_the_first_write)
{
    disk_full_first_write("disk_full_inside_the_first_write", 4096);
}
END_TEST

/* Full after a checkpoint: the final write fails, the checkpoint stays whole. */
START_TEST(disk_fills_after_a_checkpoint)
{
    char mnt[PATH_MAX], env_out[PATH_MAX + 32];
    if (!get_tmpfs(mnt, sizeof mnt, "256k"))
        return;
    snprintf(env_out, sizeof env_out, "CYMEMTRACK_OUTPUT=%s/rep.%%p.cmt", mnt);
    char *args[] = { "diskfill", mnt, "7", NULL };
    char *env[] = { env_out, NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, env);
    char filler[PATH_MAX];
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    ck_assert_int_eq(unlink(filler), 0);
    run_prog(&run, 1, args, env);
    ck_assert_str_eq(plain.out, "leaked=3\nfilled: ENOSPC\n");
    ck_assert_int_eq(plain.exit_code, 7);
    assert_same_as_plain(&plain, &run);
    assert_one_diagnostic(&run, "(no space left on device); the previous one stays");

    char path[PATH_MAX];
    struct cmt_process p;
    find_report(mnt, "rep.", path, sizeof path);
    ck_assert_int_eq(count_files(mnt, ".tmp"), 0);
    read_complete(path, &p);
    /* The last checkpoint: written inside the second fresh_second(), its 1-byte block live;
     * the first one's calls all made, so at most its frees and the second's reallocs. */
    ck_assert_msg(p.how == CMT_END_RUNNING && !p.complete,
                  "expected the checkpoint (END how %d), got how %d", CMT_END_RUNNING, p.how);
    assert_balanced(&p, LEAK_BLOCKS + 1, LEAK_BYTES + 1);
    ck_assert_uint_le(p.totals.frees, 2 * FRESH_REALLOCS + 1);
    figures("disk_fills_after_a_checkpoint", 2, p.totals.allocations, 1);
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
    put_tmpfs(mnt);
}
END_TEST

/* ---- SIGSEGV inside a scope ------------------------------------------------------------- */

START_TEST(segv_inside_a_scope)
{
    char *args[] = { "segv-scope", NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, NULL);
    run_prog(&run, 1, args, NULL);
    ck_assert_int_eq(plain.signal, SIGSEGV);
    assert_same_as_plain(&plain, &run);
    assert_no_diagnostic(&run);

    char path[PATH_MAX];
    struct cmt_process p;
    find_report(run.dir, "rep.", path, sizeof path);
    read_complete(path, &p);
    ck_assert_msg(p.complete && p.how == CMT_END_SIGNAL && p.code == SIGSEGV,
                  "expected END SIGNAL %d, got how %d code %d", SIGSEGV, p.how, p.code);
    /* 4 blocks of 500 bytes left in the scope, a 77-byte one freed in it. */
    assert_balanced(&p, LEAK_BLOCKS + 4, LEAK_BYTES + 4 * 500);
    const struct cmt_scope *s = NULL;
    for (size_t i = 0; i < p.nscopes; i++)
        if (strcmp(p.scopes[i].name, "crashing") == 0)
            s = &p.scopes[i];
    ck_assert_msg(s != NULL, "expected a SCOPE record for \"crashing\"");
    ck_assert_int_eq(s->kind, CMT_REPORT_KIND_API);
    ck_assert_msg(s->instances == 1 && s->allocations == 5 && s->bytes_allocated == 4 * 500 + 77 &&
                      s->frees == 1 && s->bytes_freed == 77 && s->leaked_blocks == 4 &&
                      s->leaked_bytes == 4 * 500,
                  "expected scope crashing: 1 instance, 5 allocations of 2077 bytes, 1 free of "
                  "77, 4 blocks of 2000 bytes left; got %llu, %llu of %llu, %llu of %llu, "
                  "%llu of %llu", (unsigned long long)s->instances,
                  (unsigned long long)s->allocations, (unsigned long long)s->bytes_allocated,
                  (unsigned long long)s->frees, (unsigned long long)s->bytes_freed,
                  (unsigned long long)s->leaked_blocks, (unsigned long long)s->leaked_bytes);
    figures("segv_inside_a_scope", 2, p.totals.allocations, 1);
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
}
END_TEST

/* ---- a FIFO where the next report goes ----------------------------------------------- */

START_TEST(fifo_without_reader_where_the_report_goes)
{
    /* Opening a FIFO for writing blocks until somebody reads it; the tracker would then
     * stop the program inside a malloc for ever. It must give up on that write instead,
     * say so once, and keep the last report it wrote. */
    char *args[] = { "fifo-stuck", "rep.%p.cmt", NULL };
    struct cmt_run plain, run;
    run_prog(&plain, 0, args, NULL);
    run_prog(&run, 1, args, NULL);
    assert_same_as_plain(&plain, &run);
    ck_assert_msg(strstr(run.out, "went on\n") != NULL, "stdout:\n%s", run.out);
    assert_one_diagnostic(&run, "cannot create");

    char path[PATH_MAX];
    struct cmt_process p;
    find_report(run.dir, "rep.", path, sizeof path);
    read_complete(path, &p);
    ck_assert_int_eq(p.how, CMT_END_RUNNING);
    assert_balanced(&p, LEAK_BLOCKS + 1, LEAK_BYTES + 1);
    figures("fifo_without_reader_where_the_report_goes", 2, p.totals.allocations, 1);
    cmt_process_free(&p);
    cmt_run_free(&plain);
    cmt_run_free(&run);
}
END_TEST

/* ---- SIGKILL in the middle of a checkpoint's write ----------------------------------- */

START_TEST(sigkill_in_the_middle_of_a_checkpoint_write)
{
    /* fault_prog puts a FIFO where the next checkpoint goes (rep.PID.cmt.tmp), reads its
     * first bytes and kills itself while the tracker is blocked writing the rest. The rest
     * must be more than the pipe's default 64 KiB: the writer may fill the pipe before the
     * reader shrinks it, and a write that fits ends in a rename of the FIFO over the report.
     * With stacks, fan's 1024 leak sites make a checkpoint about 250 KiB; without, the
     * command line does: more than the 64 KiB of it a report keeps (ARGV_BUDGET in
     * src/report.c), on top of the other records. */
    static char longarg[60001], longarg2[60001];
    memset(longarg, 'a', sizeof longarg - 1);
    memset(longarg2, 'b', sizeof longarg2 - 1);
    char *args[] = { "ckpt-kill", "rep.%p.cmt", longarg, longarg2, NULL };
    struct cmt_run run;
    run_prog(&run, 1, args, NULL);
    ck_assert_msg(run.signal == SIGKILL, "expected death by SIGKILL, got exit %d signal %d; "
                  "stdout:\n%s", run.exit_code, run.signal, run.out);
    ck_assert_msg(strstr(run.out, "killed mid-write\n") != NULL, "stdout:\n%s", run.out);
    assert_no_diagnostic(&run);

    char path[PATH_MAX], tmp[PATH_MAX + 8];
    find_report(run.dir, "rep.", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct stat st;
    ck_assert_msg(stat(tmp, &st) == 0 && S_ISFIFO(st.st_mode),
                  "expected the write in flight to %s, found none", tmp);
    /* The file the write would have replaced is the previous checkpoint, whole and exact. */
    struct cmt_process p;
    read_complete(path, &p);
    ck_assert_int_eq(p.how, CMT_END_RUNNING);
    uint64_t live = cmt_field(run.out, "live_at_checkpoint");
    ck_assert_uint_eq(live, LEAK_BLOCKS + FAN_BLOCKS + 1);
    assert_balanced(&p, live, LEAK_BYTES + FAN_BLOCKS * 32 + 1);
    ck_assert_msg(stat(path, &st) == 0 && st.st_size > 65536 + 16,
                  "expected a checkpoint larger than a full pipe and the 16 bytes read, got "
                  "%lld bytes", (long long)st.st_size);
    /* The command line as far as a report keeps it: 64 KiB of (u32 length, bytes). */
    ck_assert_uint_eq(p.argc, 5);
    ck_assert_uint_eq(strlen(p.argv[3]), sizeof longarg - 1);
    size_t kept = 0;
    for (uint32_t i = 0; i < p.argc; i++)
        kept += 4 + strlen(p.argv[i]);
    ck_assert_uint_eq(kept, 65536);
    ck_assert_uint_gt(strlen(p.argv[4]), 0);
    ck_assert(strncmp(p.argv[4], longarg2, strlen(p.argv[4])) == 0);
    figures("sigkill_in_the_middle_of_a_checkpoint_write", 1, p.totals.allocations, 1);
    cmt_process_free(&p);
    cmt_run_free(&run);
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("signals");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, signal_handler_allocates_inside_malloc);
    tcase_add_test(tc, segv_inside_a_scope);
    tcase_add_test(tc, sigkill_in_the_middle_of_a_checkpoint_write);
    tcase_add_test(tc, fifo_without_reader_where_the_report_goes);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, address_space_exhausted);
    tcase_add_test(tc, checkpoint_due_while_address_space_exhausted);
    tcase_add_test(tc, mappings_used_up);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, missing_output_directory_falls_back_to_tmpdir);
    tcase_add_test(tc, missing_output_and_tmpdir_fall_back_to_tmp);
    tcase_add_test(tc, disk_full_before_the_first_byte);
    tcase_add_test(tc, disk_full_inside_the_first_write);
    tcase_add_test(tc, disk_fills_after_a_checkpoint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(faults_suite());
}
