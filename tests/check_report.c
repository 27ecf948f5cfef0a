/*
 * check_report.c — the report file (src/report.c) and the endings that write it
 * (src/ending.c): tests/progs/report_prog runs under the library just built, leaks a known set
 * of blocks and ends in each way a process can end; the suite reads the file it leaves with a
 * strict reader of its own (independent of tools/reader.c) and checks exact counts, the END
 * record, the file's name and place, and the diagnostics. The bad-free table
 * (src/badfree.c), whose entries become BADFREE records, is linked in and tested directly.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmt.h"
#include "report-format.h"

/* What report_prog does in every mode (see tests/progs/report_prog.c). */
#define LEAK_BLOCKS 3
#define LEAK_BYTES (1000 + 1001 + 1002)
#define TEMP_BLOCKS 5
#define PROG "report_prog"

/* ---- a strict reader --------------------------------------------------------------- */

struct r_leak {
    uint32_t scope, stack;
    uint64_t blocks, bytes, blocks_closed, bytes_closed;
    uint32_t nsamples;
    uint64_t sample[CMT_LEAK_SAMPLES];
};

struct r_module {
    uint64_t start, end, offset;
    char *path;
    size_t build_id_len;
};

struct r_stack {
    uint32_t id, depth;
    uint64_t *pc;
};

struct r_scope {
    uint32_t id;
    int kind;
    char *name;
    uint64_t counter[9];
};

enum { T_ALLOCS, T_BYTES, T_FREES, T_LIVE_BLOCKS, T_LIVE_BYTES, T_PEAK, T_INVALID, T_DOUBLE,
       T_STALE };

struct report {
    char why[512];              /* why the file was rejected; "" when it was read */
    bool truncated;             /* cut short: no END, or a record past the end */
    uint32_t pid, ppid;
    uint64_t start_ns, write_ns;
    char *exe;
    uint32_t argc;
    char **argv;
    struct r_module *module;  size_t nmodule;
    struct r_stack *stack;    size_t nstack;
    struct r_scope *scope;    size_t nscope;
    struct r_leak *leak;      size_t nleak;
    size_t nbadfree;
    uint64_t badfree_count[3];  /* by kind, summed over the BADFREE records */
    size_t ntimeline;           /* TIMELINE records */
    bool have_totals;
    uint64_t total[9];
    int ends;                   /* END records seen */
    int how, code;
    char *label;
};

struct cursor {
    const unsigned char *p;
    size_t len, off;
    bool bad;
};

static uint64_t get(struct cursor *c, size_t n)
{
    uint64_t v = 0;
    if (c->off + n > c->len) {
        c->bad = true;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)c->p[c->off + i] << (8 * i);
    c->off += n;
    return v;
}

static char *get_str(struct cursor *c)
{
    uint32_t n = (uint32_t)get(c, 4);
    if (c->bad || c->off + n > c->len) {
        c->bad = true;
        return strdup("");
    }
    char *s = strndup((const char *)c->p + c->off, n);
    c->off += n;
    return s;
}

static bool have_stack(const struct report *r, uint32_t id)
{
    if (id == 0)
        return true;
    for (size_t i = 0; i < r->nstack; i++)
        if (r->stack[i].id == id)
            return true;
    return false;
}

static bool have_scope(const struct report *r, uint32_t id)
{
    for (size_t i = 0; i < r->nscope; i++)
        if (r->scope[i].id == id)
            return true;
    return false;
}

#define GROW(arr, n) ((arr) = realloc((arr), ((n) + 1) * sizeof *(arr)), &(arr)[(n)++])

/* Parses one record's payload; false (with r->why) when it breaks the format. */
static bool parse_record(struct report *r, uint32_t type, struct cursor *c)
{
    if (r->ends && type != 0) {
        snprintf(r->why, sizeof r->why, "record type %u after END", type);
        return false;
    }
    switch (type) {
    case CMT_REC_PROCESS:
        r->pid = (uint32_t)get(c, 4);
        r->ppid = (uint32_t)get(c, 4);
        r->start_ns = get(c, 8);
        r->write_ns = get(c, 8);
        r->exe = get_str(c);
        r->argc = (uint32_t)get(c, 4);
        r->argv = calloc(r->argc + 1, sizeof *r->argv);
        for (uint32_t i = 0; i < r->argc && !c->bad; i++)
            r->argv[i] = get_str(c);
        break;
    case CMT_REC_MODULE: {
        struct r_module *m = GROW(r->module, r->nmodule);
        m->start = get(c, 8);
        m->end = get(c, 8);
        m->offset = get(c, 8);
        m->path = get_str(c);
        uint32_t id_len = (uint32_t)get(c, 4);
        if (c->bad || id_len > c->len - c->off)
            c->bad = true;
        else
            c->off += id_len;
        m->build_id_len = id_len;
        break;
    }
    case CMT_REC_STACK: {
        struct r_stack *s = GROW(r->stack, r->nstack);
        s->id = (uint32_t)get(c, 4);
        s->depth = (uint32_t)get(c, 4);
        if (s->id == 0 || s->depth > CMT_REPORT_MAX_DEPTH) {
            snprintf(r->why, sizeof r->why, "STACK id %u depth %u", s->id, s->depth);
            return false;
        }
        s->pc = calloc(s->depth + 1, sizeof *s->pc);
        for (uint32_t i = 0; i < s->depth; i++)
            s->pc[i] = get(c, 8);
        break;
    }
    case CMT_REC_SCOPE: {
        struct r_scope *s = GROW(r->scope, r->nscope);
        s->id = (uint32_t)get(c, 4);
        s->kind = (int)get(c, 1);
        s->name = get_str(c);
        for (int i = 0; i < 9; i++)
            s->counter[i] = get(c, 8);
        break;
    }
    case CMT_REC_LEAK: {
        struct r_leak *l = GROW(r->leak, r->nleak);
        l->scope = (uint32_t)get(c, 4);
        l->stack = (uint32_t)get(c, 4);
        l->blocks = get(c, 8);
        l->bytes = get(c, 8);
        l->blocks_closed = get(c, 8);
        l->bytes_closed = get(c, 8);
        l->nsamples = (uint32_t)get(c, 4);
        if (l->nsamples > CMT_LEAK_SAMPLES || !have_scope(r, l->scope) ||
            !have_stack(r, l->stack) || l->blocks == 0 || l->nsamples > l->blocks) {
            snprintf(r->why, sizeof r->why, "LEAK scope %u stack %u samples %u blocks %llu",
                     l->scope, l->stack, l->nsamples, (unsigned long long)l->blocks);
            return false;
        }
        for (uint32_t i = 0; i < l->nsamples; i++)
            l->sample[i] = get(c, 8);
        for (size_t i = 0; i + 1 < r->nleak; i++)
            if (r->leak[i].scope == l->scope && r->leak[i].stack == l->stack) {
                snprintf(r->why, sizeof r->why, "two LEAK records for scope %u stack %u",
                         l->scope, l->stack);
                return false;
            }
        break;
    }
    case CMT_REC_BADFREE: {
        uint32_t kind = (uint32_t)get(c, 1);
        uint32_t stack = (uint32_t)get(c, 4);
        uint32_t scope = (uint32_t)get(c, 4);
        uint64_t count = get(c, 8);
        get(c, 8);
        if (kind > CMT_REPORT_BADFREE_STALE || !have_stack(r, stack) || count == 0 ||
            (scope != UINT32_MAX && !have_scope(r, scope))) {
            snprintf(r->why, sizeof r->why, "BADFREE kind %u stack %u scope %u count %llu",
                     kind, stack, scope, (unsigned long long)count);
            return false;
        }
        r->badfree_count[kind] += count;
        r->nbadfree++;
        break;
    }
    case CMT_REC_TIMELINE: {
        /* Live bytes per scope over time (timeline.c): each scope known, named once. */
        get(c, 8);
        uint32_t n = (uint32_t)get(c, 4);
        uint32_t seen[CMT_TIMELINE_MAX_SCOPES];
        for (uint32_t i = 0; i < n && i < CMT_TIMELINE_MAX_SCOPES && !c->bad; i++) {
            seen[i] = (uint32_t)get(c, 4);
            get(c, 8);
            bool dup = false;
            for (uint32_t j = 0; j < i; j++)
                dup |= seen[j] == seen[i];
            if (dup || (seen[i] != UINT32_MAX && !have_scope(r, seen[i]))) {
                snprintf(r->why, sizeof r->why, "TIMELINE scope %u", seen[i]);
                return false;
            }
        }
        if (n > CMT_TIMELINE_MAX_SCOPES) {
            snprintf(r->why, sizeof r->why, "TIMELINE with %u scopes", n);
            return false;
        }
        r->ntimeline++;
        break;
    }
    case CMT_REC_ALLOCSITE: {
        /* Allocations per (scope, stack) (stackcount.c): both known, never an empty one. */
        uint32_t scope = (uint32_t)get(c, 4);
        uint32_t stack = (uint32_t)get(c, 4);
        uint64_t allocs = get(c, 8);
        get(c, 8);
        if (!have_scope(r, scope) || !have_stack(r, stack) || allocs == 0) {
            snprintf(r->why, sizeof r->why, "ALLOCSITE scope %u stack %u allocations %llu",
                     scope, stack, (unsigned long long)allocs);
            return false;
        }
        break;
    }
    case CMT_REC_TOTALS:
        r->have_totals = true;
        for (int i = 0; i < 9; i++)
            r->total[i] = get(c, 8);
        break;
    case CMT_REC_END:
        r->ends++;
        r->how = (int)get(c, 1);
        r->code = (int)(int32_t)get(c, 4);
        r->label = get_str(c);
        break;
    default:
        snprintf(r->why, sizeof r->why, "unknown record type %u", type);
        return false;
    }
    if (c->bad || c->off != c->len) {
        snprintf(r->why, sizeof r->why, "record type %u: payload of %zu bytes, %s %zu", type,
                 c->len, c->bad ? "needs more than" : "uses only", c->off);
        return false;
    }
    return true;
}

/* Reads path into *r. Returns 0, or -1 with r->why saying what is wrong. A file cut short
 * (no END) is read as far as it goes, with r->truncated set. */
static int report_read(const char *path, struct report *r)
{
    memset(r, 0, sizeof *r);
    r->how = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(r->why, sizeof r->why, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    fstat(fd, &st);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t len = 0;
    ssize_t n;
    while (len < (size_t)st.st_size && (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
        len += (size_t)n;
    close(fd);
    int rc = 0;
    if (len < CMT_REPORT_HEADER_SIZE) {
        r->truncated = true;
        snprintf(r->why, sizeof r->why, "%s: %zu bytes, no header", path, len);
        free(buf);
        return -1;
    }
    struct cursor h = { buf, len, CMT_REPORT_MAGIC_LEN, false };
    uint32_t version = (uint32_t)get(&h, 4), header = (uint32_t)get(&h, 4);
    if (memcmp(buf, CMT_REPORT_MAGIC, CMT_REPORT_MAGIC_LEN) != 0 ||
        version != CMT_REPORT_VERSION || header != CMT_REPORT_HEADER_SIZE) {
        snprintf(r->why, sizeof r->why, "%s: bad header (version %u, size %u)", path, version,
                 header);
        free(buf);
        return -1;
    }
    size_t off = header;
    while (off < len) {
        if (len - off < 8) {
            r->truncated = true;
            break;
        }
        struct cursor c = { buf + off, 8, 0, false };
        uint32_t type = (uint32_t)get(&c, 4), rec_len = (uint32_t)get(&c, 4);
        if (rec_len > len - off - 8) {
            r->truncated = true;
            break;
        }
        struct cursor p = { buf + off + 8, rec_len, 0, false };
        if (!parse_record(r, type, &p)) {
            char why[512];
            snprintf(why, sizeof why, "%s at offset %zu: %s", path, off, r->why);
            strcpy(r->why, why);
            rc = -1;
            break;
        }
        off += 8 + rec_len;
    }
    if (rc == 0 && r->ends != 1)
        r->truncated = true;
    free(buf);
    return rc;
}

/* Reads a file that must be complete and well formed. */
static void read_ok(const char *path, struct report *r)
{
    int rc = report_read(path, r);
    ck_assert_msg(rc == 0, "expected a readable report, got: %s", r->why);
    ck_assert_msg(!r->truncated, "expected a complete report in %s, got one cut short", path);
    ck_assert_msg(r->have_totals, "expected a TOTALS record in %s", path);
}

/* ---- running report_prog ------------------------------------------------------------ */

struct prog_out {
    int pid;
    uintptr_t fn;               /* leak_here */
    uintptr_t ptr[LEAK_BLOCKS];
};

/* The number after "key=" on a line of out, as an unsigned value in base (0 = automatic). */
static unsigned long long out_field(const char *out, const char *key, int nth)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *p = out;
    for (int i = 0; (p = strstr(p, pat)) != NULL; i++, p++) {
        if ((p == out || p[-1] == '\n') && i >= nth)
            return strtoull(p + strlen(pat), NULL, 0);
        if (!(p == out || p[-1] == '\n'))
            i--;
    }
    ck_abort_msg("no line %d \"%s=\" in the program's output:\n%s", nth, key, out);
    return 0;
}

static void parse_out(const struct cmt_run *r, struct prog_out *o)
{
    o->pid = (int)out_field(r->out, "pid", 0);
    o->fn = (uintptr_t)out_field(r->out, "fn", 0);
    for (int i = 0; i < LEAK_BLOCKS; i++)
        o->ptr[i] = (uintptr_t)out_field(r->out, "ptr", i);
}

/* Runs report_prog MODE ARGS... under the preload, with extra_env. */
static void run_prog(struct cmt_run *r, struct prog_out *o, char *const args[],
                     char *const env[])
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)cmt_test_prog(PROG);
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    /* Settings of the shell that runs the suite must not move the files. */
    char *full_env[16] = { "CYMEMTRACK_OUTPUT=", "CYMEMTRACK_STACK_DEPTH=" };
    n = 2;
    for (size_t i = 0; env && env[i] && n < 15; i++)
        full_env[n++] = env[i];
    full_env[n] = NULL;
    cmt_run(r, 1, argv, full_env);
    parse_out(r, o);
}

/* The default file of a process: cymemtrack.EXE.PID.cmt in dir. */
static void default_path(char *out, size_t size, const char *dir, const char *exe, int pid)
{
    snprintf(out, size, "%s/cymemtrack.%s.%d.cmt", dir, exe, pid);
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

static uint64_t leaked_blocks(const struct report *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < r->nleak; i++)
        n += r->leak[i].blocks;
    return n;
}

static uint64_t leaked_bytes(const struct report *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < r->nleak; i++)
        n += r->leak[i].bytes;
    return n;
}

static bool sampled(const struct report *r, uintptr_t ptr, const struct r_leak **where)
{
    for (size_t i = 0; i < r->nleak; i++)
        for (uint32_t k = 0; k < r->leak[i].nsamples; k++)
            if (r->leak[i].sample[k] == ptr) {
                if (where)
                    *where = &r->leak[i];
                return true;
            }
    return false;
}

/* The leaks report_prog made before ending: exactly them and extra_blocks more, in LEAK
 * records and in TOTALS, each leaked address among the samples. */
static void assert_leaks(const struct report *r, const struct prog_out *o,
                         uint64_t extra_blocks, uint64_t extra_bytes)
{
    uint64_t blocks = LEAK_BLOCKS + extra_blocks, bytes = LEAK_BYTES + extra_bytes;
    ck_assert_msg(leaked_blocks(r) == blocks && leaked_bytes(r) == bytes,
                  "expected LEAK records of %llu blocks / %llu bytes, got %llu / %llu",
                  (unsigned long long)blocks, (unsigned long long)bytes,
                  (unsigned long long)leaked_blocks(r), (unsigned long long)leaked_bytes(r));
    ck_assert_msg(r->total[T_LIVE_BLOCKS] == blocks && r->total[T_LIVE_BYTES] == bytes,
                  "expected TOTALS live %llu blocks / %llu bytes, got %llu / %llu",
                  (unsigned long long)blocks, (unsigned long long)bytes,
                  (unsigned long long)r->total[T_LIVE_BLOCKS],
                  (unsigned long long)r->total[T_LIVE_BYTES]);
    ck_assert_msg(r->total[T_ALLOCS] - r->total[T_FREES] == blocks,
                  "expected allocations - frees = %llu, got %llu - %llu",
                  (unsigned long long)blocks, (unsigned long long)r->total[T_ALLOCS],
                  (unsigned long long)r->total[T_FREES]);
    ck_assert_uint_ge(r->total[T_PEAK], bytes);
    /* Without stacks, every block shares one record, whose few samples may all be extra
     * blocks; with stacks, leak_here's three have a record of their own. */
    bool shared = extra_blocks + LEAK_BLOCKS > CMT_LEAK_SAMPLES;
    for (size_t i = 0; i < r->nleak; i++)
        if (r->leak[i].stack != 0)
            shared = false;
    for (int i = 0; i < LEAK_BLOCKS && !shared; i++)
        ck_assert_msg(sampled(r, o->ptr[i], NULL),
                      "expected leaked block %d (%#lx) among the LEAK samples", i,
                      (unsigned long)o->ptr[i]);
}

static void assert_end(const struct report *r, int how, int code)
{
    ck_assert_msg(r->how == how && r->code == code, "expected END how %d code %d, got %d %d",
                  how, code, r->how, r->code);
}

/* The executable mapping of report_prog is in the module map, with its build-id, and
 * leak_here lies in it. */
static void assert_prog_module(const struct report *r, const struct prog_out *o)
{
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(cmt_test_prog(PROG), real));
    bool found = false;
    for (size_t i = 0; i < r->nmodule; i++) {
        const struct r_module *m = &r->module[i];
        if (strcmp(m->path, real) != 0 || o->fn < m->start || o->fn >= m->end)
            continue;
        found = true;
        ck_assert_msg(m->build_id_len == 20, "expected a 20-byte build-id for %s, got %zu",
                      real, m->build_id_len);
    }
    ck_assert_msg(found, "expected a MODULE record of %s holding leak_here (%#lx)", real,
                  (unsigned long)o->fn);
}

static void report_free(struct report *r)
{
    free(r->exe);
    for (uint32_t i = 0; r->argv && i < r->argc; i++)
        free(r->argv[i]);
    free(r->argv);
    for (size_t i = 0; i < r->nmodule; i++)
        free(r->module[i].path);
    free(r->module);
    for (size_t i = 0; i < r->nstack; i++)
        free(r->stack[i].pc);
    free(r->stack);
    for (size_t i = 0; i < r->nscope; i++)
        free(r->scope[i].name);
    free(r->scope);
    free(r->leak);
    free(r->label);
}

/* One run of report_prog, its default report read and checked for the common part. */
static void run_and_read(struct cmt_run *run, struct prog_out *o, struct report *r,
                         char *const args[], char *const env[])
{
    run_prog(run, o, args, env);
    char path[PATH_MAX];
    default_path(path, sizeof path, run->dir, PROG, o->pid);
    read_ok(path, r);
    ck_assert_int_eq(r->pid, o->pid);
    ck_assert_int_eq(r->ppid, getpid());
}

/* ---- content ------------------------------------------------------------------------- */

START_TEST(leaks_are_exact)
{
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_and_read(&run, &o, &r, (char *[]){ "return", "0", NULL }, NULL);
    ck_assert_int_eq(run.exit_code, 0);
    ck_assert_msg(cmt_count_lines(run.err, "cymemtrack:") == 0, "expected no diagnostic, got:\n%s",
                  run.err);
    assert_leaks(&r, &o, 0, 0);
    ck_assert_uint_eq(r.total[T_ALLOCS], LEAK_BLOCKS + TEMP_BLOCKS);
    ck_assert_uint_eq(r.total[T_FREES], TEMP_BLOCKS);
    ck_assert_uint_eq(r.total[T_INVALID], 0);
    ck_assert_uint_eq(r.total[T_DOUBLE], 0);
    ck_assert_uint_eq(r.total[T_STALE], 0);
    assert_end(&r, CMT_END_EXIT, 0);
    ck_assert_str_eq(r.label, "");

    /* The process, as it was started. */
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(cmt_test_prog(PROG), real));
    ck_assert_str_eq(r.exe, real);
    ck_assert_uint_eq(r.argc, 3);
    ck_assert_str_eq(r.argv[0], cmt_test_prog(PROG));
    ck_assert_str_eq(r.argv[1], "return");
    ck_assert_str_eq(r.argv[2], "0");
    ck_assert_uint_ge(r.write_ns, r.start_ns);

    /* The global scope, which owns every block here, counts what TOTALS counts. */
    ck_assert_uint_ge(r.nscope, 1);
    ck_assert_uint_eq(r.scope[0].id, 0);
    ck_assert_str_eq(r.scope[0].name, "global");
    ck_assert_int_eq(r.scope[0].kind, CMT_REPORT_KIND_GLOBAL);
    for (size_t i = 0; i < r.nleak; i++)
        ck_assert_uint_eq(r.leak[i].scope, 0);

    /* When the stacks are captured, the leaked blocks' stack starts in leak_here: the
     * innermost frame that is not the tracker's is a return address inside it. */
    const struct r_leak *l = NULL;
    ck_assert(sampled(&r, o.ptr[0], &l));
    if (l->stack != 0) {
        bool in_fn = false;
        for (size_t i = 0; i < r.nstack; i++)
            if (r.stack[i].id == l->stack)
                for (uint32_t k = 0; k < r.stack[i].depth; k++)
                    if (r.stack[i].pc[k] > o.fn && r.stack[i].pc[k] < o.fn + 512)
                        in_fn = true;
        ck_assert_msg(in_fn, "expected a frame in leak_here (%#lx) in stack %u",
                      (unsigned long)o.fn, l->stack);
        ck_assert_uint_eq(l->blocks, LEAK_BLOCKS);
    }
    assert_prog_module(&r, &o);
    report_free(&r);
    cmt_run_free(&run);
}
END_TEST

START_TEST(bad_frees_have_records)
{
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_and_read(&run, &o, &r, (char *[]){ "badfree", NULL }, NULL);
    ck_assert_int_eq(run.exit_code, 0);
    ck_assert_uint_eq(r.total[T_INVALID], 1);
    ck_assert_uint_eq(r.total[T_DOUBLE], 1);
    ck_assert_uint_eq(r.total[T_STALE], 0);
    /* Every refused free is in a BADFREE record of its kind, with the stack of the free. */
    ck_assert_msg(r.badfree_count[CMT_REPORT_BADFREE_INVALID] == 1 &&
                      r.badfree_count[CMT_REPORT_BADFREE_DOUBLE] == 1 &&
                      r.badfree_count[CMT_REPORT_BADFREE_STALE] == 0,
                  "expected BADFREE records of 1 invalid and 1 double free, got %llu and %llu "
                  "(and %llu stale)",
                  (unsigned long long)r.badfree_count[CMT_REPORT_BADFREE_INVALID],
                  (unsigned long long)r.badfree_count[CMT_REPORT_BADFREE_DOUBLE],
                  (unsigned long long)r.badfree_count[CMT_REPORT_BADFREE_STALE]);
    assert_leaks(&r, &o, 0, 0);
    report_free(&r);
    cmt_run_free(&run);
}
END_TEST

/* ---- the bad-free table (src/badfree.c), linked directly ------------------------------ */

struct bf_seen {
    size_t n;
    struct cmt_badfree_entry e[2048];
};

static void bf_collect(const struct cmt_badfree_entry *e, void *arg)
{
    struct bf_seen *s = arg;
    if (s->n < 2048)
        s->e[s->n++] = *e;
}

START_TEST(badfree_counts_per_key)
{
    cmt_badfree_record(CMT_BADFREE_INVALID, 0x1000, 7, UINT32_MAX);
    cmt_badfree_record(CMT_BADFREE_INVALID, 0x2000, 7, UINT32_MAX);
    cmt_badfree_record(CMT_BADFREE_INVALID, 0x3000, 7, UINT32_MAX);
    cmt_badfree_record(CMT_BADFREE_DOUBLE, 0x4000, 7, UINT32_MAX);
    cmt_badfree_record(CMT_BADFREE_STALE, 0x5000, 9, 3);
    cmt_badfree_record(CMT_BADFREE_STALE, 0x6000, 9, 4);
    static struct bf_seen s;
    cmt_badfree_foreach(bf_collect, &s);
    ck_assert_uint_eq(s.n, 4);
    int matched = 0;
    for (size_t i = 0; i < s.n; i++) {
        const struct cmt_badfree_entry *e = &s.e[i];
        if (e->kind == CMT_BADFREE_INVALID && e->stack == 7 && e->name == UINT32_MAX &&
            e->count == 3 && e->sample == 0x1000)
            matched++;
        if (e->kind == CMT_BADFREE_DOUBLE && e->stack == 7 && e->count == 1 &&
            e->sample == 0x4000)
            matched++;
        if (e->kind == CMT_BADFREE_STALE && e->stack == 9 && e->name == 3 && e->count == 1)
            matched++;
        if (e->kind == CMT_BADFREE_STALE && e->stack == 9 && e->name == 4 && e->count == 1)
            matched++;
    }
    ck_assert_int_eq(matched, 4);
    ck_assert_uint_eq(cmt_badfree_total(CMT_BADFREE_INVALID), 3);
    ck_assert_uint_eq(cmt_badfree_total(CMT_BADFREE_DOUBLE), 1);
    ck_assert_uint_eq(cmt_badfree_total(CMT_BADFREE_STALE), 2);
}
END_TEST

START_TEST(badfree_full_table_still_counts)
{
    /* Far more distinct stacks than the table holds: every free is counted once, each key
     * is listed once, and the ones that found no slot are under stack 0. */
    enum { N = 5000 };
    for (uint32_t i = 1; i <= N; i++)
        cmt_badfree_record(CMT_BADFREE_INVALID, 0x10 * i, i, UINT32_MAX);
    cmt_badfree_record(CMT_BADFREE_INVALID, 0x99, 0, UINT32_MAX);
    static struct bf_seen s;
    cmt_badfree_foreach(bf_collect, &s);
    uint64_t sum = 0, stack0 = 0, stack0_entries = 0, repeated = 0;
    for (size_t i = 0; i < s.n; i++) {
        sum += s.e[i].count;
        if (s.e[i].stack == 0) {
            stack0 += s.e[i].count;
            stack0_entries++;
        }
        /* Counted, not asserted pair by pair: each passing assertion costs Check a write to
         * its parent, and half a million of them outlasted the timeout on a loaded CI run. */
        for (size_t k = 0; k < i; k++)
            repeated += s.e[k].stack == s.e[i].stack && s.e[k].kind == s.e[i].kind &&
                        s.e[k].name == s.e[i].name;
    }
    ck_assert_uint_eq(repeated, 0);
    ck_assert_uint_eq(sum, N + 1);
    ck_assert_uint_eq(cmt_badfree_total(CMT_BADFREE_INVALID), N + 1);
    ck_assert_uint_eq(stack0_entries, 1);
    ck_assert_uint_eq(stack0, N + 1 - (s.n - 1));
    ck_assert_uint_le(s.n, 1025);
}
END_TEST

#define BF_THREADS 4
#define BF_PER_THREAD 20000

static void *bf_hammer(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    for (uint32_t i = 0; i < BF_PER_THREAD; i++)
        cmt_badfree_record((enum cmt_badfree_kind)(i % 3), 0x100 + i, 1 + (uint32_t)(i % 64),
                           (uint32_t)t);
    return NULL;
}

START_TEST(badfree_counts_exactly_under_contention)
{
    pthread_t th[BF_THREADS];
    for (uintptr_t t = 0; t < BF_THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, bf_hammer, (void *)(t % 2)), 0);
    for (int t = 0; t < BF_THREADS; t++)
        pthread_join(th[t], NULL);
    static struct bf_seen s;
    cmt_badfree_foreach(bf_collect, &s);
    uint64_t sum = 0;
    for (size_t i = 0; i < s.n; i++)
        sum += s.e[i].count;
    ck_assert_uint_eq(sum, (uint64_t)BF_THREADS * BF_PER_THREAD);
    /* i % 3 and i % 64 make 192 (kind, stack) pairs; the threads give two scopes. */
    ck_assert_uint_eq(s.n, 192 * 2);
}
END_TEST

/* ---- endings ----------------------------------------------------------------------- */

/* Each ending: the arguments, the END record and the way the program must end. */
static const struct ending {
    const char *mode, *arg;
    int how, code;
    int exit_code, signal;
} endings[] = {
    { "exit", "3", CMT_END_EXIT, 3, 3, 0 },
    { "return", "4", CMT_END_EXIT, 4, 4, 0 },
    { "_exit", "5", CMT_END_UNDERSCORE_EXIT, 5, 5, 0 },
    { "_Exit", "6", CMT_END_UNDERSCORE_EXIT, 6, 6, 0 },
    { "abort", NULL, CMT_END_ABORT, SIGABRT, -1, SIGABRT },
    { "segv", NULL, CMT_END_SIGNAL, SIGSEGV, -1, SIGSEGV },
    { "exec-fail", "8", CMT_END_EXIT, 8, 8, 0 },
};

START_TEST(each_ending_writes_its_end_record)
{
    const struct ending *e = &endings[_i];
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_and_read(&run, &o, &r, (char *[]){ (char *)e->mode, (char *)e->arg, NULL }, NULL);
    ck_assert_msg(run.exit_code == e->exit_code && run.signal == e->signal,
                  "%s: expected exit %d signal %d (unchanged by the tracker), got %d %d",
                  e->mode, e->exit_code, e->signal, run.exit_code, run.signal);
    assert_end(&r, e->how, e->code);
    assert_leaks(&r, &o, 0, 0);
    /* Fatal signals read the module map from /proc/self/maps, the others from the loader. */
    assert_prog_module(&r, &o);
    ck_assert_msg(cmt_count_lines(run.err, "cymemtrack:") == 0, "expected no diagnostic, got:\n%s",
                  run.err);
    ck_assert_int_eq(count_files(run.dir, ".cmt"), 1);
    ck_assert_int_eq(count_files(run.dir, ".tmp"), 0);
    report_free(&r);
    cmt_run_free(&run);
}
END_TEST

START_TEST(exec_leaves_both_files)
{
    struct cmt_run run;
    struct prog_out o;
    struct report r, t;
    run_and_read(&run, &o, &r, (char *[]){ "exec", "/bin/true", NULL }, NULL);
    ck_assert_int_eq(run.exit_code, 0);
    assert_end(&r, CMT_END_EXEC, 0);
    assert_leaks(&r, &o, 0, 0);
    /* The new program is the same process, with a file of its own. */
    char path[PATH_MAX];
    default_path(path, sizeof path, run.dir, "true", o.pid);
    read_ok(path, &t);
    ck_assert_int_eq(t.pid, o.pid);
    assert_end(&t, CMT_END_EXIT, 0);
    ck_assert_uint_eq(t.argc, 1);
    ck_assert_str_eq(t.argv[0], "/bin/true");
    ck_assert_int_eq(count_files(run.dir, ".cmt"), 2);
    report_free(&r);
    report_free(&t);
    cmt_run_free(&run);
}
END_TEST

/* Every function of the exec family glibc exports writes the report first. */
static const char *const exec_functions[] = {
    "execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve", "execveat",
};

START_TEST(each_exec_function_writes_first)
{
    struct cmt_run run;
    struct prog_out o;
    struct report r, t;
    run_and_read(&run, &o, &r, (char *[]){ "execwith", (char *)exec_functions[_i], NULL },
                 NULL);
    ck_assert_msg(run.exit_code == 0, "%s: expected /bin/true's exit 0, got %d",
                  exec_functions[_i], run.exit_code);
    assert_end(&r, CMT_END_EXEC, 0);
    assert_leaks(&r, &o, 0, 0);
    char path[PATH_MAX];
    default_path(path, sizeof path, run.dir, "true", o.pid);
    read_ok(path, &t);
    assert_end(&t, CMT_END_EXIT, 0);
    report_free(&r);
    report_free(&t);
    cmt_run_free(&run);
}
END_TEST

START_TEST(exec_of_itself_takes_a_new_name)
{
    /* Same executable, same pid: the same default name, which is taken. */
    struct cmt_run run;
    struct prog_out o;
    struct report r, t;
    char *prog = (char *)cmt_test_prog(PROG);
    run_and_read(&run, &o, &r, (char *[]){ "execlp", prog, "return", NULL }, NULL);
    ck_assert_int_eq(run.exit_code, 0);
    assert_end(&r, CMT_END_EXEC, 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cymemtrack.%s.%d.1.cmt", run.dir, PROG, o.pid);
    read_ok(path, &t);
    ck_assert_int_eq(t.pid, o.pid);
    assert_end(&t, CMT_END_EXIT, 0);
    ck_assert_uint_eq(t.argc, 2);
    ck_assert_str_eq(t.argv[1], "return");
    /* The new image leaked its own three blocks, from its own base(). */
    ck_assert_uint_eq(t.total[T_LIVE_BLOCKS], LEAK_BLOCKS);
    ck_assert_int_eq(count_files(run.dir, ".cmt"), 2);
    report_free(&r);
    report_free(&t);
    cmt_run_free(&run);
}
END_TEST

START_TEST(fork_child_has_its_own_file)
{
    struct cmt_run run;
    struct prog_out o;
    struct report r, c;
    run_and_read(&run, &o, &r, (char *[]){ "fork", "0", NULL }, NULL);
    ck_assert_int_eq(run.exit_code, 0);
    assert_end(&r, CMT_END_EXIT, 0);
    assert_leaks(&r, &o, 0, 0);
    int child = (int)out_field(run.out, "child", 0);
    uintptr_t child_ptr = (uintptr_t)out_field(run.out, "child_ptr", 0);
    char path[PATH_MAX];
    default_path(path, sizeof path, run.dir, PROG, child);
    read_ok(path, &c);
    ck_assert_int_eq(c.pid, child);
    ck_assert_int_eq(c.ppid, o.pid);
    assert_end(&c, CMT_END_EXIT, 0);
    /* The child inherited the parent's leaks and made one of its own. */
    assert_leaks(&c, &o, 1, 4242);
    ck_assert(sampled(&c, child_ptr, NULL));
    ck_assert(!sampled(&r, child_ptr, NULL));
    ck_assert_int_eq(count_files(run.dir, ".cmt"), 2);
    report_free(&r);
    report_free(&c);
    cmt_run_free(&run);
}
END_TEST

/* Snapshots written while another thread pushes its blocks out of its young set into the
 * table (see report_prog's race): every block live through a snapshot's walk is in it, and
 * none twice. The racer makes none of its blocks during a snapshot, so that its count must be
 * exactly what it had made. Walking the table before the sets loses some of the blocks that
 * move; walking the sets first without skipping the table's copies counts them twice. */
START_TEST(snapshots_taken_while_blocks_move_count_each_once)
{
    enum { ROUNDS = 30 };
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_prog(&run, &o, (char *[]){ "race", "30", NULL },
             (char *[]){ "CYMEMTRACK_STACK_DEPTH=0", NULL });
    ck_assert_msg(run.exit_code == 0 && run.signal == 0, "expected exit 0, got exit %d signal "
                  "%d; its output:\n%s\n%s", run.exit_code, run.signal, run.out, run.err);
    const char *line = run.out;
    for (int i = 0; i < ROUNDS; i++) {
        char path[PATH_MAX], suffix[32];
        if (i == 0)
            snprintf(suffix, sizeof suffix, "snapshot.cmt");
        else
            snprintf(suffix, sizeof suffix, "snapshot.%d.cmt", i);
        snprintf(path, sizeof path, "%s/cymemtrack.%s.%d.%s", run.dir, PROG, o.pid, suffix);
        read_ok(path, &r);
        line = strstr(line, "race=");
        ck_assert_ptr_nonnull(line);
        unsigned long before, after;
        ck_assert_int_eq(sscanf(line++, "race=%lu,%lu", &before, &after), 2);
        uint32_t racer = UINT32_MAX;
        for (size_t k = 0; k < r.nscope; k++)
            if (strcmp(r.scope[k].name, "racer") == 0)
                racer = r.scope[k].id;
        ck_assert_msg(racer != UINT32_MAX, "expected scope \"racer\" in %s", path);
        uint64_t seen = 0;
        for (size_t k = 0; k < r.nleak; k++)
            if (r.leak[k].scope == racer)
                seen += r.leak[k].blocks;
        ck_assert_uint_eq(before, after);
        ck_assert_msg(seen == before, "snapshot %d: expected %lu live blocks of \"racer\", "
                      "got %llu", i, before, (unsigned long long)seen);
        report_free(&r);
    }
    cmt_run_free(&run);
}
END_TEST

/* A process killed in its first write of the report leaves no file, not an empty one: the
 * file is written unnamed and named once whole. report_prog's killwrite dies (a seccomp
 * filter) at the first write to a file, the exit report's, before any checkpoint. */
START_TEST(killed_in_the_first_write_leaves_no_empty_file)
{
    struct cmt_run run;
    struct prog_out o;
    run_prog(&run, &o, (char *[]){ "killwrite", NULL }, NULL);   /* done long before a checkpoint */
    ck_assert_uint_eq(out_field(run.out, "filtered", 0), 1);
    ck_assert_msg(run.signal == SIGSYS, "expected the program to die of SIGSYS at its first "
                  "write to a file, got exit %d signal %d; stderr:\n%s", run.exit_code,
                  run.signal, run.err);
    ck_assert_int_eq(count_files(run.dir, ".cmt"), 0);
    ck_assert_int_eq(count_files(run.dir, ".tmp"), 0);
    cmt_run_free(&run);
}
END_TEST

/* Where there are no unnamed files (the file is created under its name) or no /proc to
 * name one through (it is copied to a named file), the report is the same. */
START_TEST(without_unnamed_files_or_proc_the_report_is_the_same)
{
    const char *modes[] = { "notmpfile", "nolink" };
    for (int i = 0; i < 2; i++) {
        struct cmt_run run;
        struct prog_out o;
        struct report r;
        run_and_read(&run, &o, &r, (char *[]){ (char *)modes[i], NULL }, NULL);
        ck_assert_uint_eq(out_field(run.out, "filtered", 0), 1);
        ck_assert_msg(run.exit_code == 0, "%s: exit %d signal %d", modes[i], run.exit_code,
                      run.signal);
        ck_assert_msg(cmt_count_lines(run.err, "cymemtrack:") == 0, "%s: expected no "
                      "diagnostic, got:\n%s", modes[i], run.err);
        assert_leaks(&r, &o, 0, 0);
        assert_end(&r, CMT_END_EXIT, 0);
        ck_assert_int_eq(count_files(run.dir, ".cmt"), 1);
        report_free(&r);
        cmt_run_free(&run);
    }
}
END_TEST

START_TEST(sigkill_leaves_the_last_checkpoint)
{
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_prog(&run, &o, (char *[]){ "kill", "ckpt.%p.cmt", NULL },
             (char *[]){ "CYMEMTRACK_OUTPUT=ckpt.%p.cmt", NULL });
    ck_assert_msg(run.signal == SIGKILL, "expected the program to die of SIGKILL, got exit %d "
                  "signal %d; its output:\n%s", run.exit_code, run.signal, run.out);
    uint64_t loop = out_field(run.out, "loop_blocks", 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/ckpt.%d.cmt", run.dir, o.pid);
    read_ok(path, &r);
    /* A checkpoint says the process was still running: a reader shows it as killed. */
    assert_end(&r, CMT_END_RUNNING, 0);
    /* Written inside the malloc that made block number `loop`, after it was recorded. */
    assert_leaks(&r, &o, loop, loop * 16);
    ck_assert_int_eq(count_files(run.dir, ".tmp"), 0);
    report_free(&r);
    cmt_run_free(&run);
}
END_TEST

START_TEST(exit_handlers_and_destructors_run_first)
{
    /* The same program twice: once its atexit handler, its destructor and a dlopen'ed
     * library's destructor free a block each, once they keep them. The report of the first
     * must show exactly those three blocks fewer. */
    char lib[PATH_MAX];
    snprintf(lib, sizeof lib, "%s", cmt_test_prog(".libs/report_dtor.so"));
    struct cmt_run run_free, run_keep;
    struct prog_out o_free, o_keep;
    struct report r_free, r_keep;
    run_and_read(&run_free, &o_free, &r_free, (char *[]){ "dtors", lib, NULL }, NULL);
    run_and_read(&run_keep, &o_keep, &r_keep, (char *[]){ "dtors", lib, NULL },
                 (char *[]){ "CMT_TEST_KEEP=1", NULL });
    ck_assert_int_eq(run_free.exit_code, 0);
    ck_assert_int_eq(run_keep.exit_code, 0);
    uint64_t blocks = r_keep.total[T_LIVE_BLOCKS] - r_free.total[T_LIVE_BLOCKS];
    uint64_t bytes = r_keep.total[T_LIVE_BYTES] - r_free.total[T_LIVE_BYTES];
    uint64_t frees = r_free.total[T_FREES] - r_keep.total[T_FREES];
    ck_assert_msg(blocks == 3 && bytes == 111 + 222 + 777 && frees == 3,
                  "expected the exit-time frees to count: 3 blocks / 1110 bytes fewer and 3 "
                  "frees more, got %llu / %llu and %llu", (unsigned long long)blocks,
                  (unsigned long long)bytes, (unsigned long long)frees);
    ck_assert_uint_eq(leaked_blocks(&r_free), r_free.total[T_LIVE_BLOCKS]);
    report_free(&r_free);
    report_free(&r_keep);
    cmt_run_free(&run_free);
    cmt_run_free(&run_keep);
}
END_TEST

/* ---- the file's name and place ----------------------------------------------------- */

START_TEST(template_expands_pid_exe_and_percent)
{
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_prog(&run, &o, (char *[]){ "return", "0", NULL },
             (char *[]){ "CYMEMTRACK_OUTPUT=out-%e-%p-%%-%x.rep", NULL });
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/out-%s-%d-%%-%%x.rep", run.dir, PROG, o.pid);
    read_ok(path, &r);
    ck_assert_int_eq(r.pid, o.pid);
    ck_assert_int_eq(count_files(run.dir, ".rep"), 1);
    report_free(&r);
    cmt_run_free(&run);
}
END_TEST

static void make_dir(char *out, size_t size);
static void remove_dir(const char *dir);

START_TEST(template_ending_in_slash_is_a_directory)
{
    char dir[PATH_MAX], env[PATH_MAX + 32];
    make_dir(dir, sizeof dir);
    snprintf(env, sizeof env, "CYMEMTRACK_OUTPUT=%s/", dir);
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_prog(&run, &o, (char *[]){ "return", "0", NULL }, (char *[]){ env, NULL });
    char path[PATH_MAX];
    default_path(path, sizeof path, dir, PROG, o.pid);
    read_ok(path, &r);
    ck_assert_int_eq(r.pid, o.pid);
    ck_assert_int_eq(count_files(run.dir, ".cmt"), 0);
    report_free(&r);
    cmt_run_free(&run);
    remove_dir(dir);
}
END_TEST

static void make_dir(char *out, size_t size)
{
    snprintf(out, size, "%s/cmt-report.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_dir(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(never_clobbers_another_file)
{
    /* A name without %p: another process's file is there already, and a forked child wants
     * the same name too. */
    char dir[PATH_MAX], fixed[PATH_MAX], env[PATH_MAX + 32];
    make_dir(dir, sizeof dir);
    snprintf(fixed, sizeof fixed, "%s/fixed.cmt", dir);
    FILE *f = fopen(fixed, "w");
    ck_assert_ptr_nonnull(f);
    fputs("somebody else's\n", f);
    fclose(f);
    snprintf(env, sizeof env, "CYMEMTRACK_OUTPUT=%s", fixed);

    struct cmt_run run;
    struct prog_out o;
    run_prog(&run, &o, (char *[]){ "fork", "0", NULL }, (char *[]){ env, NULL });
    ck_assert_int_eq(run.exit_code, 0);
    int child = (int)out_field(run.out, "child", 0);
    char buf[64] = "";
    f = fopen(fixed, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
    fclose(f);
    ck_assert_str_eq(buf, "somebody else's\n");
    struct report a, b;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/fixed.1.cmt", dir);
    read_ok(path, &a);
    snprintf(path, sizeof path, "%s/fixed.2.cmt", dir);
    read_ok(path, &b);
    /* Two processes, two names, whichever wrote first. */
    ck_assert_msg((a.pid == (uint32_t)child && b.pid == (uint32_t)o.pid) ||
                      (a.pid == (uint32_t)o.pid && b.pid == (uint32_t)child),
                  "expected the files of %d and %d, got %u and %u", o.pid, child, a.pid, b.pid);
    ck_assert_int_eq(count_files(dir, ".cmt"), 3);
    report_free(&a);
    report_free(&b);
    cmt_run_free(&run);
    remove_dir(dir);
}
END_TEST

START_TEST(read_only_directory_falls_back_to_tmpdir)
{
    char tmpdir[PATH_MAX], env[PATH_MAX + 16];
    make_dir(tmpdir, sizeof tmpdir);
    snprintf(env, sizeof env, "TMPDIR=%s", tmpdir);
    struct cmt_run run;
    struct prog_out o;
    struct report r;
    run_prog(&run, &o, (char *[]){ "rocwd", "7", NULL }, (char *[]){ env, NULL });
    chmod(run.dir, 0755);
    ck_assert_msg(run.exit_code == 7, "expected exit 7, got %d; stderr:\n%s", run.exit_code,
                  run.err);
    ck_assert_int_eq(count_files(run.dir, ".cmt"), 0);
    char path[PATH_MAX];
    default_path(path, sizeof path, tmpdir, PROG, o.pid);
    read_ok(path, &r);
    assert_leaks(&r, &o, 0, 0);
    assert_end(&r, CMT_END_EXIT, 7);
    /* One line, naming the file it could not create and the one it wrote. */
    ck_assert_msg(cmt_count_lines(run.err, "cymemtrack:") == 1,
                  "expected one diagnostic, got:\n%s", run.err);
    ck_assert_msg(strstr(run.err, path) != NULL, "expected the diagnostic to name %s, got:\n%s",
                  path, run.err);
    report_free(&r);
    cmt_run_free(&run);
    remove_dir(tmpdir);
}
END_TEST

START_TEST(file_size_limit_keeps_the_exit_status)
{
    struct cmt_run run;
    struct prog_out o;
    run_prog(&run, &o, (char *[]){ "fsize", "9", NULL }, NULL);
    ck_assert_msg(run.exit_code == 9 && run.signal == 0,
                  "expected exit 9 and no signal (SIGXFSZ), got %d %d", run.exit_code,
                  run.signal);
    ck_assert_msg(cmt_count_lines(run.err, "cymemtrack:") == 1,
                  "expected one diagnostic, got:\n%s", run.err);
    /* What could be written is there, cut short, and says so. */
    char path[PATH_MAX];
    default_path(path, sizeof path, run.dir, PROG, o.pid);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 64);
    struct report r;
    ck_assert_int_eq(report_read(path, &r), 0);
    ck_assert(r.truncated);
    ck_assert_int_eq(r.ends, 0);
    report_free(&r);
    cmt_run_free(&run);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("content");
    tcase_add_test(tc, leaks_are_exact);
    tcase_add_test(tc, bad_frees_have_records);
    suite_add_tcase(s, tc);

    tc = tcase_create("badfree table");
    tcase_add_test(tc, badfree_counts_per_key);
    tcase_add_test(tc, badfree_full_table_still_counts);
    tcase_add_test(tc, badfree_counts_exactly_under_contention);
    suite_add_tcase(s, tc);

    tc = tcase_create("endings");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, each_ending_writes_its_end_record, 0, (int)(sizeof endings /
                                                                        sizeof endings[0]));
    tcase_add_test(tc, exec_leaves_both_files);
    tcase_add_loop_test(tc, each_exec_function_writes_first, 0,
                        (int)(sizeof exec_functions / sizeof exec_functions[0]));
    tcase_add_test(tc, exec_of_itself_takes_a_new_name);
    tcase_add_test(tc, fork_child_has_its_own_file);
    tcase_add_test(tc, snapshots_taken_while_blocks_move_count_each_once);
    tcase_add_test(tc, killed_in_the_first_write_leaves_no_empty_file);
    tcase_add_test(tc, without_unnamed_files_or_proc_the_report_is_the_same);
    tcase_add_test(tc, sigkill_leaves_the_last_checkpoint);
    tcase_add_test(tc, exit_handlers_and_destructors_run_first);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, template_expands_pid_exe_and_percent);
    tcase_add_test(tc, template_ending_in_slash_is_a_directory);
    tcase_add_test(tc, never_clobbers_another_file);
    tcase_add_test(tc, read_only_directory_falls_back_to_tmpdir);
    tcase_add_test(tc, file_size_limit_keeps_the_exit_status);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(report_suite());
}
