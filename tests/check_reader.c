/*
 * check_reader.c — the report reader (tools/reader.c): every field of a valid file read back
 * exactly, the derived per-scope counts, each kind of corruption rejected with one error line
 * naming the file and the right byte offset, and a valid file cut at every byte either
 * rejected cleanly or read as truncated. Files come from tests/report-builder.c, never from
 * the library's writer.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "report-builder.h"
#include "report.h"

static char dir[64], path[96], errpath[96];

static void setup(void)
{
    strcpy(dir, "/tmp/cmt-reader-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/report.cmt", dir);
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    cmt_diag_state.fd = 2;
}

static void teardown(void)
{
    unlink(path);
    unlink(errpath);
    rmdir(dir);
}

/* What one read did: its return, the diagnostics it counted, and what it wrote on stderr. */
struct outcome {
    int rc;
    unsigned errors, warnings;
    char err[2048];
};

/* Reads file into *p with stderr captured in o->err. */
static void read_path(const char *file, struct cmt_process *p, struct outcome *o)
{
    unsigned e0 = cmt_diag_state.errors, w0 = cmt_diag_state.warnings;
    int saved = dup(2);
    int fd = open(errpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0 || dup2(fd, 2) < 0)
        abort();
    o->rc = cmt_report_read(file, p);
    dup2(saved, 2);
    close(saved);
    o->errors = cmt_diag_state.errors - e0;
    o->warnings = cmt_diag_state.warnings - w0;
    ssize_t n = pread(fd, o->err, sizeof o->err - 1, 0);
    o->err[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* Writes the first len bytes of b to the test file and reads it back. */
static void read_built(const struct cmt_rb *b, size_t len, struct cmt_process *p,
                       struct outcome *o)
{
    if (cmt_rb_write(b, path, len) != 0)
        abort();
    read_path(path, p, o);
}

/* ---- the valid file ------------------------------------------------------------------ */

#define PROG_START 0x400000u
#define LIBC_START UINT64_C(0x7f0000000000)
static const char *const argv3[] = { "prog", "-x", "arg two" };
static const unsigned char build_id[] = { 0xde, 0xad, 0xbe, 0xef };
static const uint64_t stack2[] = { PROG_START + 0x123, LIBC_START + 0x456, 0x12345 };
static const uint64_t stack1[] = { PROG_START + 0xfff };
static const uint64_t samples5_2[] = { 0x1000, 0x2000 };
static const uint64_t samples5_1[] = { 0x3000, 0x3100, 0x3200 };
static const uint64_t samples0[] = { 0x10, 0x20, 0x30, 0x40 };
static const uint64_t totals[9] = { 1000, 64000, 980, 20, 1300, 9000, 1, 2, 1 };
static const struct cmt_rb_scope global_counters = { 1, 500, 30000, 493, 29300, 0, 0, 0, 8000 };
/* outlived_at_close 8, bulk-freed 3, in closed instances 2 + 1 below: 2 freed by the program
 * after their scope closed. */
static const struct cmt_rb_scope pool_counters = { 3, 100, 6400, 90, 5760, 8, 3, 192, 4096 };
/* More bulk-freed than outlived: the derivation clamps at 0. */
static const struct cmt_rb_scope clamp_counters = { 2, 10, 100, 4, 40, 1, 5, 50, 60 };

/* Allocation sites of the valid file (format version 3): pool's add up to its 100
 * allocations and 6400 bytes, global's to 500 and 30000 with (global, no stack) in two
 * records, worker's to 10 and 100. A test of the previous version leaves them out. */
static bool body_allocsites = true;

/* Where the records of the valid file start. */
struct layout {
    size_t process, module_libc, module_prog, stack2, stack1, scope0, scope5, scope7;
    size_t leak52, leak51, leak00, leak71, alloc1, bad1, bad2, totals, end, size;
};

/* Everything up to the SCOPE records: what the corruption cases build on. */
static void valid_head(struct cmt_rb *b, struct layout *l)
{
    cmt_rb_header(b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    l->process = cmt_rb_process(b, 4242, 1, 1000, 2000, "/usr/bin/prog", 3, argv3);
    /* libc before prog: the reader sorts modules by start. */
    l->module_libc = cmt_rb_module(b, LIBC_START, LIBC_START + 0x10000, 0x2000,
                                   "/lib/libc.so.6", "", 0);
    l->module_prog = cmt_rb_module(b, PROG_START, PROG_START + 0x1000, 0, "/usr/bin/prog",
                                   build_id, sizeof build_id);
    /* Stack 2 before stack 1: the reader sorts stacks by id. */
    l->stack2 = cmt_rb_stack(b, 2, 3, stack2);
    l->stack1 = cmt_rb_stack(b, 1, 1, stack1);
    l->scope0 = cmt_rb_scope(b, 0, CMT_REPORT_KIND_GLOBAL, "global", &global_counters);
    l->scope5 = cmt_rb_scope(b, 5, CMT_REPORT_KIND_API, "pool", &pool_counters);
    l->scope7 = cmt_rb_scope(b, 7, CMT_REPORT_KIND_THREAD, "worker", &clamp_counters);
}

static void valid_body(struct cmt_rb *b, struct layout *l)
{
    l->leak52 = cmt_rb_leak(b, 5, 2, 4, 256, 2, 128, 2, samples5_2);
    l->leak51 = cmt_rb_leak(b, 5, 1, 3, 96, 1, 32, 3, samples5_1);
    l->leak00 = cmt_rb_leak(b, 0, 0, 7, 700, 0, 0, 4, samples0);
    l->leak71 = cmt_rb_leak(b, 7, 1, 1, 10, 1, 10, 0, NULL);
    l->alloc1 = b->len;
    if (body_allocsites) {
        cmt_rb_allocsite(b, 5, 2, 60, 3840);
        cmt_rb_allocsite(b, 5, 1, 40, 2560);
        cmt_rb_allocsite(b, 0, 0, 200, 6000);
        cmt_rb_allocsite(b, 0, 1, 200, 20000);
        cmt_rb_allocsite(b, 0, 0, 100, 4000);
        cmt_rb_allocsite(b, 7, 2, 10, 100);
    }
    l->bad1 = cmt_rb_badfree(b, CMT_REPORT_BADFREE_DOUBLE, 1, UINT32_MAX, 2, 0xdead);
    l->bad2 = cmt_rb_badfree(b, CMT_REPORT_BADFREE_STALE, 0, 5, 1, 0xbeef);
    l->totals = cmt_rb_totals(b, totals);
}

static void valid_file(struct cmt_rb *b, struct layout *l, uint8_t how, int32_t code,
                       const char *label)
{
    cmt_rb_init(b);
    valid_head(b, l);
    valid_body(b, l);
    l->end = cmt_rb_end_rec(b, how, code, label);
    l->size = b->len;
}

static void check_scope(const struct cmt_scope *s, uint32_t id, int kind, const char *name,
                        const struct cmt_rb_scope *c, uint64_t leaked_blocks,
                        uint64_t leaked_bytes, uint64_t outlived)
{
    ck_assert_uint_eq(s->id, id);
    ck_assert_int_eq(s->kind, kind);
    ck_assert_str_eq(s->name, name);
    ck_assert_uint_eq(s->instances, c->instances);
    ck_assert_uint_eq(s->allocations, c->allocations);
    ck_assert_uint_eq(s->bytes_allocated, c->bytes_allocated);
    ck_assert_uint_eq(s->frees, c->frees);
    ck_assert_uint_eq(s->bytes_freed, c->bytes_freed);
    ck_assert_uint_eq(s->outlived_at_close, c->outlived_at_close);
    ck_assert_uint_eq(s->bulk_freed_blocks, c->bulk_freed_blocks);
    ck_assert_uint_eq(s->bulk_freed_bytes, c->bulk_freed_bytes);
    ck_assert_uint_eq(s->peak_live_bytes, c->peak_live_bytes);
    ck_assert_msg(s->leaked_blocks == leaked_blocks && s->leaked_bytes == leaked_bytes &&
                      s->outlived_blocks == outlived,
                  "scope %u: expected leaked %llu blocks %llu bytes, outlived %llu; got %llu "
                  "%llu %llu", id, (unsigned long long)leaked_blocks,
                  (unsigned long long)leaked_bytes, (unsigned long long)outlived,
                  (unsigned long long)s->leaked_blocks, (unsigned long long)s->leaked_bytes,
                  (unsigned long long)s->outlived_blocks);
    ck_assert(!s->suppressed);
}

static void check_leak(const struct cmt_leak *l, uint32_t scope, uint32_t stack, uint64_t blocks,
                       uint64_t bytes, uint64_t bic, uint64_t byic, uint32_t n,
                       const uint64_t *samples)
{
    ck_assert_uint_eq(l->scope, scope);
    ck_assert_uint_eq(l->stack, stack);
    ck_assert_uint_eq(l->blocks, blocks);
    ck_assert_uint_eq(l->bytes, bytes);
    ck_assert_uint_eq(l->blocks_in_closed, bic);
    ck_assert_uint_eq(l->bytes_in_closed, byic);
    ck_assert_uint_eq(l->nsamples, n);
    for (uint32_t i = 0; i < n; i++)
        ck_assert_uint_eq(l->samples[i], samples[i]);
    ck_assert(!l->suppressed);
}

/* Everything the valid file holds except how it ended. */
static void check_contents(const struct cmt_process *p)
{
    ck_assert_str_eq(p->file, path);
    ck_assert_uint_eq(p->pid, 4242);
    ck_assert_uint_eq(p->ppid, 1);
    ck_assert_uint_eq(p->start_unix_ns, 1000);
    ck_assert_uint_eq(p->write_unix_ns, 2000);
    ck_assert_str_eq(p->exe, "/usr/bin/prog");
    ck_assert_uint_eq(p->argc, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(p->argv[i], argv3[i]);
    ck_assert_ptr_null(p->argv[3]);

    ck_assert_uint_eq(p->nmodules, 2);
    const struct cmt_module *prog = &p->modules[0], *libc = &p->modules[1];
    ck_assert_uint_eq(prog->start, PROG_START);
    ck_assert_uint_eq(prog->end, PROG_START + 0x1000);
    ck_assert_uint_eq(prog->file_offset, 0);
    ck_assert_str_eq(prog->path, "/usr/bin/prog");
    ck_assert_uint_eq(prog->build_id_len, 4);
    ck_assert_mem_eq(prog->build_id, build_id, 4);
    ck_assert_uint_eq(libc->start, LIBC_START);
    ck_assert_uint_eq(libc->end, LIBC_START + 0x10000);
    ck_assert_uint_eq(libc->file_offset, 0x2000);
    ck_assert_str_eq(libc->path, "/lib/libc.so.6");
    ck_assert_uint_eq(libc->build_id_len, 0);
    ck_assert_ptr_null(libc->build_id);

    ck_assert_uint_eq(p->nstacks, 2);
    ck_assert_uint_eq(p->stacks[0].id, 1);
    ck_assert_uint_eq(p->stacks[0].depth, 1);
    ck_assert_uint_eq(p->stacks[0].frames[0].pc, stack1[0]);
    ck_assert_ptr_eq(p->stacks[0].frames[0].module, prog);
    ck_assert_uint_eq(p->stacks[0].frames[0].offset, 0xfff);
    const struct cmt_stack *s2 = &p->stacks[1];
    ck_assert_uint_eq(s2->id, 2);
    ck_assert_uint_eq(s2->depth, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(s2->frames[i].pc, stack2[i]);
        ck_assert_ptr_null(s2->frames[i].function);
        ck_assert_ptr_null(s2->frames[i].file);
        ck_assert_int_eq(s2->frames[i].line, 0);
    }
    ck_assert_ptr_eq(s2->frames[0].module, prog);
    ck_assert_uint_eq(s2->frames[0].offset, 0x123);
    ck_assert_ptr_eq(s2->frames[1].module, libc);
    ck_assert_uint_eq(s2->frames[1].offset, 0x2456);
    ck_assert_ptr_null(s2->frames[2].module);
    ck_assert_uint_eq(s2->frames[2].offset, 0);

    ck_assert_uint_eq(p->nscopes, 3);
    check_scope(&p->scopes[0], 0, CMT_REPORT_KIND_GLOBAL, "global", &global_counters, 7, 700, 0);
    check_scope(&p->scopes[1], 5, CMT_REPORT_KIND_API, "pool", &pool_counters, 7, 352, 2);
    check_scope(&p->scopes[2], 7, CMT_REPORT_KIND_THREAD, "worker", &clamp_counters, 1, 10, 0);

    ck_assert_uint_eq(p->nleaks, 4);
    check_leak(&p->leaks[0], 5, 2, 4, 256, 2, 128, 2, samples5_2);
    check_leak(&p->leaks[1], 5, 1, 3, 96, 1, 32, 3, samples5_1);
    check_leak(&p->leaks[2], 0, 0, 7, 700, 0, 0, 4, samples0);
    check_leak(&p->leaks[3], 7, 1, 1, 10, 1, 10, 0, NULL);

    ck_assert_uint_eq(p->nbadfrees, 2);
    ck_assert_int_eq(p->badfrees[0].kind, CMT_REPORT_BADFREE_DOUBLE);
    ck_assert_uint_eq(p->badfrees[0].stack, 1);
    ck_assert_uint_eq(p->badfrees[0].scope, UINT32_MAX);
    ck_assert_uint_eq(p->badfrees[0].count, 2);
    ck_assert_uint_eq(p->badfrees[0].sample_addr, 0xdead);
    ck_assert_int_eq(p->badfrees[1].kind, CMT_REPORT_BADFREE_STALE);
    ck_assert_uint_eq(p->badfrees[1].stack, 0);
    ck_assert_uint_eq(p->badfrees[1].scope, 5);
    ck_assert_uint_eq(p->badfrees[1].count, 1);
    ck_assert_uint_eq(p->badfrees[1].sample_addr, 0xbeef);

    if (body_allocsites) {
        static const struct cmt_allocsite want[5] = {
            { 5, 2, 60, 3840 }, { 5, 1, 40, 2560 }, { 0, 0, 300, 10000 },
            { 0, 1, 200, 20000 }, { 7, 2, 10, 100 },
        };
        ck_assert(p->has_allocsites);
        ck_assert_uint_eq(p->nallocsites, 5);
        for (int i = 0; i < 5; i++) {
            const struct cmt_allocsite *a = &p->allocsites[i];
            ck_assert_msg(a->scope == want[i].scope && a->stack == want[i].stack &&
                              a->allocations == want[i].allocations &&
                              a->bytes == want[i].bytes,
                          "allocation site %d: expected (%u, %u) %llu %llu, got (%u, %u) "
                          "%llu %llu", i, want[i].scope, want[i].stack,
                          (unsigned long long)want[i].allocations,
                          (unsigned long long)want[i].bytes, a->scope, a->stack,
                          (unsigned long long)a->allocations, (unsigned long long)a->bytes);
        }
    } else {
        ck_assert(!p->has_allocsites);
        ck_assert_uint_eq(p->nallocsites, 0);
        ck_assert_ptr_null(p->allocsites);
    }

    const struct cmt_totals *t = &p->totals;
    const uint64_t got[9] = { t->allocations, t->bytes_allocated, t->frees, t->live_blocks,
                              t->live_bytes, t->peak_live_bytes, t->invalid_frees,
                              t->double_frees, t->stale_frees };
    for (int i = 0; i < 9; i++)
        ck_assert_uint_eq(got[i], totals[i]);
}

START_TEST(valid_file_round_trips)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    valid_file(&b, &l, CMT_END_SIGNAL, 11, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_msg(o.rc == 0 && o.errors == 0 && o.warnings == 0 && o.err[0] == '\0',
                  "expected a silent success, got rc %d and \"%s\"", o.rc, o.err);
    check_contents(&p);
    ck_assert_int_eq(p.how, CMT_END_SIGNAL);
    ck_assert_int_eq(p.code, 11);
    ck_assert_uint_eq(p.version, CMT_REPORT_VERSION);
    ck_assert_str_eq(p.label, "");
    ck_assert(p.complete);
    ck_assert(!p.truncated);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* A file of the previous format version (2: no ALLOCSITE records) reads as before: the
 * same contents, and no allocation sites, which the renderers then say. */
START_TEST(previous_version_reads)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    body_allocsites = false;
    valid_file(&b, &l, CMT_END_EXIT, 0, "");
    cmt_rb_patch32(&b, 8, CMT_REPORT_VERSION - 1);
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_msg(o.rc == 0 && o.errors == 0 && o.warnings == 0 && o.err[0] == '\0',
                  "expected a silent success, got rc %d and \"%s\"", o.rc, o.err);
    ck_assert_uint_eq(p.version, 2);
    check_contents(&p);
    ck_assert(p.complete);
    cmt_process_free(&p);
    cmt_rb_free(&b);
    body_allocsites = true;
}
END_TEST

START_TEST(lookups_by_id)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    valid_file(&b, &l, CMT_END_EXIT, 0, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_ptr_eq(cmt_process_stack(&p, 1), &p.stacks[0]);
    ck_assert_ptr_eq(cmt_process_stack(&p, 2), &p.stacks[1]);
    ck_assert_ptr_null(cmt_process_stack(&p, 0));
    ck_assert_ptr_null(cmt_process_stack(&p, 3));
    ck_assert_ptr_eq(cmt_process_scope(&p, 0), &p.scopes[0]);
    ck_assert_ptr_eq(cmt_process_scope(&p, 5), &p.scopes[1]);
    ck_assert_ptr_eq(cmt_process_scope(&p, 7), &p.scopes[2]);
    ck_assert_ptr_null(cmt_process_scope(&p, 6));
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* Scopes in descending and mixed id order stay in file order and are all found. */
START_TEST(scope_lookup_in_any_order)
{
    static const uint32_t ids[] = { 9, 3, 12, 1, 7, 100, 2 };
    struct cmt_rb b;
    struct cmt_process p;
    struct outcome o;
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        cmt_rb_scope(&b, ids[i], CMT_REPORT_KIND_FUNC, "f", &pool_counters);
    cmt_rb_end_rec(&b, CMT_END_EXIT, 0, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_int_eq(o.rc, 0);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ck_assert_uint_eq(p.scopes[i].id, ids[i]);
        ck_assert_ptr_eq(cmt_process_scope(&p, ids[i]), &p.scopes[i]);
    }
    ck_assert_ptr_null(cmt_process_scope(&p, 4));
    ck_assert_ptr_null(cmt_process_scope(&p, 101));
    /* No PROCESS record: the strings renderers print still exist. */
    ck_assert_str_eq(p.exe, "");
    ck_assert_uint_eq(p.argc, 0);
    ck_assert_ptr_null(p.argv[0]);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

START_TEST(snapshot_keeps_its_label)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    valid_file(&b, &l, CMT_END_SNAPSHOT, 0, "after warmup");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(p.how, CMT_END_SNAPSHOT);
    ck_assert_str_eq(p.label, "after warmup");
    ck_assert(p.complete);
    ck_assert(!p.truncated);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* A checkpoint is whole but incomplete: no warning, since nothing was cut. */
START_TEST(checkpoint_is_incomplete)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    valid_file(&b, &l, CMT_END_RUNNING, 0, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_msg(o.rc == 0 && o.errors == 0 && o.warnings == 0, "got rc %d \"%s\"", o.rc,
                  o.err);
    check_contents(&p);
    ck_assert_int_eq(p.how, CMT_END_RUNNING);
    ck_assert(!p.complete);
    ck_assert(!p.truncated);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* Record types this reader does not know, anywhere, of any size: skipped. So is the tail of
 * a header longer than today's. */
START_TEST(unknown_records_are_skipped)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    static char blob[3 << 20];
    memset(blob, 0xAB, sizeof blob);
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE + 12);
    cmt_rb_begin(&b, 99);
    cmt_rb_end(&b);                             /* an empty payload */
    cmt_rb_process(&b, 4242, 1, 1000, 2000, "/usr/bin/prog", 3, argv3);
    cmt_rb_begin(&b, 0);
    cmt_rb_u32(&b, 5);
    cmt_rb_end(&b);
    cmt_rb_module(&b, LIBC_START, LIBC_START + 0x10000, 0x2000, "/lib/libc.so.6", "", 0);
    cmt_rb_module(&b, PROG_START, PROG_START + 0x1000, 0, "/usr/bin/prog", build_id, 4);
    cmt_rb_stack(&b, 2, 3, stack2);
    cmt_rb_begin(&b, 1000);
    cmt_rb_bytes(&b, blob, sizeof blob);        /* a big one */
    cmt_rb_end(&b);
    cmt_rb_stack(&b, 1, 1, stack1);
    cmt_rb_scope(&b, 0, CMT_REPORT_KIND_GLOBAL, "global", &global_counters);
    cmt_rb_scope(&b, 5, CMT_REPORT_KIND_API, "pool", &pool_counters);
    cmt_rb_scope(&b, 7, CMT_REPORT_KIND_THREAD, "worker", &clamp_counters);
    valid_body(&b, &l);
    cmt_rb_begin(&b, UINT32_MAX);
    cmt_rb_u64(&b, 1);
    cmt_rb_end(&b);
    cmt_rb_end_rec(&b, CMT_END_EXIT, 0, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_msg(o.rc == 0 && o.errors == 0 && o.warnings == 0, "got rc %d \"%s\"", o.rc,
                  o.err);
    check_contents(&p);
    ck_assert(p.complete);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* Sums that would pass 2^64 stop there rather than wrap to a small number. */
START_TEST(leak_sums_saturate)
{
    struct cmt_rb b;
    struct cmt_process p;
    struct outcome o;
    const uint64_t half = UINT64_MAX / 2 + 1;
    struct cmt_rb_scope c = { 1, 1, 1, 0, 0, UINT64_MAX, 0, 0, 0 };
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    cmt_rb_stack(&b, 1, 0, NULL);
    cmt_rb_scope(&b, 3, CMT_REPORT_KIND_SIGNAL, "sig", &c);
    cmt_rb_leak(&b, 3, 0, half, half, half, half, 0, NULL);
    cmt_rb_leak(&b, 3, 1, half, half, half, 1, 0, NULL);
    cmt_rb_end_rec(&b, CMT_END_ABORT, 6, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_msg(o.rc == 0, "got rc %d \"%s\"", o.rc, o.err);
    ck_assert_uint_eq(p.scopes[0].leaked_blocks, UINT64_MAX);
    ck_assert_uint_eq(p.scopes[0].leaked_bytes, UINT64_MAX);
    ck_assert_uint_eq(p.scopes[0].outlived_blocks, 0);
    ck_assert_uint_eq(p.stacks[0].depth, 0);
    ck_assert_int_eq(p.how, CMT_END_ABORT);
    ck_assert_int_eq(p.code, 6);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* Two LEAK records for one (scope, stack), as a writer short of memory folds stacks into 0:
 * both kept, both counted. */
START_TEST(repeated_leak_site_is_summed)
{
    struct cmt_rb b;
    struct cmt_process p;
    struct outcome o;
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    cmt_rb_scope(&b, 5, CMT_REPORT_KIND_API, "pool", &pool_counters);
    cmt_rb_leak(&b, 5, 0, 2, 20, 1, 10, 0, NULL);
    cmt_rb_leak(&b, 5, 0, 3, 30, 2, 20, 0, NULL);
    cmt_rb_end_rec(&b, CMT_END_EXIT, 0, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_msg(o.rc == 0 && o.errors == 0 && o.warnings == 0, "got rc %d \"%s\"", o.rc,
                  o.err);
    ck_assert_uint_eq(p.nleaks, 2);
    /* outlived_at_close 8 - bulk-freed 3 - in closed 1 + 2 */
    check_scope(&p.scopes[0], 5, CMT_REPORT_KIND_API, "pool", &pool_counters, 5, 50, 2);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* Modules that overlap (one unloaded, another loaded over it) still map every pc they hold. */
START_TEST(overlapping_modules_map_frames)
{
    static const uint64_t pcs[] = { 0x1500, 0x2500, 0x3500, 0x900, 0x5000 };
    struct cmt_rb b;
    struct cmt_process p;
    struct outcome o;
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    cmt_rb_module(&b, 0x1000, 0x4000, 0, "/big", "", 0);
    cmt_rb_module(&b, 0x2000, 0x3000, 0x100, "/small", "", 0);
    cmt_rb_stack(&b, 1, 5, pcs);
    cmt_rb_end_rec(&b, CMT_END_EXIT, 0, "");
    read_built(&b, SIZE_MAX, &p, &o);
    ck_assert_int_eq(o.rc, 0);
    const struct cmt_frame *f = p.stacks[0].frames;
    ck_assert_str_eq(f[0].module->path, "/big");
    ck_assert_uint_eq(f[0].offset, 0x500);
    ck_assert_str_eq(f[1].module->path, "/small");
    ck_assert_uint_eq(f[1].offset, 0x600);
    ck_assert_str_eq(f[2].module->path, "/big");
    ck_assert_uint_eq(f[2].offset, 0x2500);
    ck_assert_ptr_null(f[3].module);
    ck_assert_ptr_null(f[4].module);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* A report that comes through a pipe, not a regular file. */
START_TEST(reads_from_a_pipe)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    int fds[2];
    char procpath[64];
    valid_file(&b, &l, CMT_END_EXIT, 0, "");
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], b.buf, b.len), (ssize_t)b.len);
    close(fds[1]);
    snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", fds[0]);
    read_path(procpath, &p, &o);
    close(fds[0]);
    ck_assert_msg(o.rc == 0, "got rc %d \"%s\"", o.rc, o.err);
    ck_assert_uint_eq(p.nleaks, 4);
    ck_assert(p.complete);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* ---- corrupt files ------------------------------------------------------------------- */

/* Each case builds a broken file, sets *off to the byte offset the error must name, and
 * gives words the message must contain. */
struct corrupt_case {
    const char *name;
    void (*build)(struct cmt_rb *b, size_t *off);
    const char *words;
};

static void c_empty(struct cmt_rb *b, size_t *off)
{
    (void)b;
    *off = 0;
}

static void c_magic(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    b->buf[3] = 'x';
    *off = 0;
}

static void c_not_a_report(struct cmt_rb *b, size_t *off)
{
    cmt_rb_bytes(b, "#!/bin/sh\necho hello\n", 21);
    *off = 0;
}

static void c_newer(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    cmt_rb_patch32(b, 8, CMT_REPORT_VERSION + 1);
    *off = 8;
}

static void c_version0(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    cmt_rb_patch32(b, 8, 0);
    *off = 8;
}

static void c_header_small(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    cmt_rb_patch32(b, 12, 8);
    *off = 12;
}

static void c_header_past_eof(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    cmt_rb_patch32(b, 12, (uint32_t)b->len + 1);
    *off = 12;
}

static void c_record_over_limit(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    cmt_rb_patch32(b, l.stack1 + 4, CMT_REPORT_MAX_RECORD + 1);
    *off = l.stack1 + 4;
}

/* The last record claims more bytes than the file has, though its fields are all there. */
static void c_length_past_eof(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    size_t end = cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
    cmt_rb_patch32(b, end + 4, 1000);
    *off = end + 4;
}

static void c_length_mismatch(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    valid_body(b, &l);
    cmt_rb_u64(b, 0);                   /* 8 more bytes inside TOTALS */
    cmt_rb_patch32(b, l.totals + 4, 80);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
    *off = l.totals + 4;
}

static void c_string_too_long(struct cmt_rb *b, size_t *off)
{
    cmt_rb_header(b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    size_t rec = cmt_rb_process(b, 1, 1, 0, 0, "/bin/true", 0, NULL);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
    cmt_rb_patch32(b, rec + 8 + 24, 200);    /* exe's length */
    *off = rec + 8 + 24;
}

static void c_label_too_long(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    size_t end = cmt_rb_end_rec(b, CMT_END_SNAPSHOT, 0, "abc");
    cmt_rb_patch32(b, end + 8 + 5, 4);
    *off = end + 8 + 5;
}

static void c_too_many_args(struct cmt_rb *b, size_t *off)
{
    cmt_rb_header(b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    size_t rec = cmt_rb_process(b, 1, 1, 0, 0, "/bin/true", 1, argv3);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
    size_t argc_at = rec + 8 + 24 + 4 + strlen("/bin/true");
    cmt_rb_patch32(b, argc_at, 1000000000);
    *off = argc_at;
}

static void c_second_process(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_process(b, 1, 1, 0, 0, "x", 0, NULL);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_empty_module(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_module(b, 0x5000, 0x5000, 0, "/m", "", 0) + 8;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_depth(struct cmt_rb *b, size_t *off)
{
    static uint64_t pcs[CMT_REPORT_MAX_DEPTH + 1];
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_stack(b, 9, CMT_REPORT_MAX_DEPTH + 1, pcs) + 12;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_depth_huge(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    size_t rec = cmt_rb_stack(b, 9, 1, stack1);
    cmt_rb_patch32(b, rec + 12, UINT32_MAX);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
    *off = rec + 12;
}

static void c_stack_id0(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_stack(b, 0, 1, stack1) + 8;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_duplicate_stack(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_stack(b, 2, 1, stack1) + 8;
    valid_body(b, &l);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_duplicate_scope(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_scope(b, 5, CMT_REPORT_KIND_API, "again", &pool_counters) + 8;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_scope_kind(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_scope(b, 8, 9, "odd", &pool_counters) + 12;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_leak_unknown_stack(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_leak(b, 5, 17, 1, 8, 0, 0, 0, NULL) + 12;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_allocsite_unknown_scope(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_allocsite(b, 6, 1, 1, 8) + 8;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_allocsite_unknown_stack(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_allocsite(b, 5, 17, 1, 8) + 12;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_allocsite_no_allocation(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_allocsite(b, 5, 1, 0, 5) + 24;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_leak_unknown_scope(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_leak(b, 6, 1, 1, 8, 0, 0, 0, NULL) + 8;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

/* A stack must come before the records that use it. */
static void c_leak_stack_later(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_leak(b, 5, 3, 1, 8, 0, 0, 0, NULL) + 12;
    cmt_rb_stack(b, 3, 1, stack1);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_leak_samples(struct cmt_rb *b, size_t *off)
{
    static const uint64_t five[] = { 1, 2, 3, 4, 5 };
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_leak(b, 5, 1, 9, 90, 0, 0, 5, five) + 48;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_leak_samples_over_blocks(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_leak(b, 5, 1, 1, 90, 0, 0, 2, samples5_2) + 48;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_leak_closed_over_all(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_leak(b, 5, 1, 2, 90, 3, 0, 0, NULL) + 32;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_badfree_kind(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_badfree(b, 7, 1, UINT32_MAX, 1, 0) + 8;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_badfree_unknown_stack(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_badfree(b, CMT_REPORT_BADFREE_INVALID, 44, UINT32_MAX, 1, 0) + 9;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_badfree_unknown_scope(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_badfree(b, CMT_REPORT_BADFREE_STALE, 1, 44, 1, 0) + 13;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_second_totals(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    valid_body(b, &l);
    *off = cmt_rb_totals(b, totals);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static void c_end_how(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    *off = cmt_rb_end_rec(b, 9, 0, "") + 8;
}

static void c_after_end(struct cmt_rb *b, size_t *off)
{
    struct layout l;
    valid_head(b, &l);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
    *off = b->len;
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static const struct corrupt_case corrupt_cases[] = {
    { "empty", c_empty, "empty file" },
    { "magic", c_magic, "bad magic" },
    { "not a report", c_not_a_report, "bad magic" },
    { "newer version", c_newer, "version 4 is newer" },
    { "version 0", c_version0, "version 0" },
    { "header too small", c_header_small, "header size 8" },
    { "header past eof", c_header_past_eof, "runs past the end of the file" },
    { "record over limit", c_record_over_limit, "over the limit" },
    { "length past eof", c_length_past_eof, "END record length 1000 runs past the end" },
    { "length mismatch", c_length_mismatch, "TOTALS record length 80 does not match" },
    { "string too long", c_string_too_long, "exe of the PROCESS record" },
    { "label too long", c_label_too_long, "label of the END record" },
    { "argc", c_too_many_args, "1000000000 arguments" },
    { "second process", c_second_process, "second PROCESS" },
    { "empty module", c_empty_module, "empty range" },
    { "depth", c_depth, "depth 257, over the limit of 256" },
    { "depth huge", c_depth_huge, "depth 4294967295" },
    { "stack id 0", c_stack_id0, "id 0" },
    { "duplicate stack", c_duplicate_stack, "duplicate STACK id 2" },
    { "duplicate scope", c_duplicate_scope, "duplicate SCOPE id 5" },
    { "scope kind", c_scope_kind, "unknown kind 9" },
    { "leak unknown stack", c_leak_unknown_stack, "LEAK record refers to unknown stack 17" },
    { "leak unknown scope", c_leak_unknown_scope, "LEAK record refers to unknown scope 6" },
    { "leak stack later", c_leak_stack_later, "LEAK record refers to unknown stack 3" },
    { "allocsite unknown scope", c_allocsite_unknown_scope,
      "ALLOCSITE record refers to unknown scope 6" },
    { "allocsite unknown stack", c_allocsite_unknown_stack,
      "ALLOCSITE record refers to unknown stack 17" },
    { "allocsite without allocation", c_allocsite_no_allocation,
      "ALLOCSITE record counts 5 bytes in no allocation" },
    { "leak samples", c_leak_samples, "5 samples, more than the format allows" },
    { "leak samples over blocks", c_leak_samples_over_blocks,
      "2 samples, more than its blocks" },
    { "leak closed over all", c_leak_closed_over_all, "more in closed instances" },
    { "badfree kind", c_badfree_kind, "unknown kind 7" },
    { "badfree unknown stack", c_badfree_unknown_stack,
      "BADFREE record refers to unknown stack 44" },
    { "badfree unknown scope", c_badfree_unknown_scope,
      "BADFREE record refers to unknown scope 44" },
    { "second totals", c_second_totals, "second TOTALS" },
    { "end how", c_end_how, "unknown way of ending 9" },
    { "after end", c_after_end, "after the END record" },
};

START_TEST(corrupt_file_is_rejected)
{
    const struct corrupt_case *k = &corrupt_cases[_i];
    struct cmt_rb b;
    struct cmt_process p;
    struct outcome o;
    size_t off = SIZE_MAX;
    char want[256];
    cmt_rb_init(&b);
    k->build(&b, &off);
    read_built(&b, SIZE_MAX, &p, &o);
    snprintf(want, sizeof want, "cymem-report: error: %s: offset %zu: ", path, off);
    const char *nl = strchr(o.err, '\n');
    ck_assert_msg(o.rc == -1 && o.errors == 1 && o.warnings == 0, "%s: expected one error, "
                  "got rc %d, %u errors, %u warnings", k->name, o.rc, o.errors, o.warnings);
    ck_assert_msg(strncmp(o.err, want, strlen(want)) == 0 && strstr(o.err, k->words) &&
                      nl && nl[1] == '\0',
                  "%s: expected one line \"%s...%s...\", got \"%s\"", k->name, want, k->words,
                  o.err);
    /* A failed read leaves nothing behind, and freeing it again is harmless. */
    ck_assert_ptr_null(p.file);
    ck_assert_uint_eq(p.nscopes, 0);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

START_TEST(missing_file_is_an_error)
{
    struct cmt_process p;
    struct outcome o;
    char want[256];
    read_path("/nonexistent/dir/report.cmt", &p, &o);
    ck_assert_int_eq(o.rc, -1);
    ck_assert_uint_eq(o.errors, 1);
    ck_assert_str_eq(o.err, "cymem-report: error: /nonexistent/dir/report.cmt: cannot open: "
                            "No such file or directory\n");
    read_path(dir, &p, &o);
    snprintf(want, sizeof want, "cymem-report: error: %s: cannot read: Is a directory\n", dir);
    ck_assert_int_eq(o.rc, -1);
    ck_assert_str_eq(o.err, want);
}
END_TEST

/* ---- files cut short ----------------------------------------------------------------- */

START_TEST(missing_end_is_truncated)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    char want[256];
    valid_file(&b, &l, CMT_END_EXIT, 0, "");
    read_built(&b, l.end, &p, &o);
    snprintf(want, sizeof want, "cymem-report: warning: %s: offset %zu: the report has no END "
             "record; it was cut short", path, l.end);
    ck_assert_msg(o.rc == 0 && o.errors == 0 && o.warnings == 1, "got rc %d \"%s\"", o.rc,
                  o.err);
    ck_assert_msg(strncmp(o.err, want, strlen(want)) == 0, "expected \"%s\", got \"%s\"", want,
                  o.err);
    check_contents(&p);
    ck_assert(p.truncated);
    ck_assert(!p.complete);
    ck_assert_int_eq(p.how, CMT_END_RUNNING);
    ck_assert_str_eq(p.label, "");
    cmt_process_free(&p);

    /* Cut inside the TOTALS record: the warning names it and where it starts. */
    read_built(&b, l.totals + 20, &p, &o);
    snprintf(want, sizeof want, "cymem-report: warning: %s: offset %zu: the file ends inside "
             "the TOTALS record at offset %zu;", path, l.totals + 20, l.totals);
    ck_assert_msg(o.rc == 0 && strncmp(o.err, want, strlen(want)) == 0,
                  "expected \"%s\", got \"%s\"", want, o.err);
    ck_assert(p.truncated);
    ck_assert_uint_eq(p.totals.allocations, 0);
    ck_assert_uint_eq(p.nbadfrees, 2);
    cmt_process_free(&p);
    cmt_rb_free(&b);
}
END_TEST

/* How many records of each kind a valid file cut at len holds entirely. */
static void expect_counts(const struct layout *l, size_t len, size_t *mods, size_t *stacks,
                          size_t *scopes, size_t *leaks, size_t *bads)
{
    const size_t mod_end[] = { l->module_prog, l->stack2 };
    const size_t stack_end[] = { l->stack1, l->scope0 };
    const size_t scope_end[] = { l->scope5, l->scope7, l->leak52 };
    const size_t leak_end[] = { l->leak51, l->leak00, l->leak71, l->alloc1 };
    const size_t bad_end[] = { l->bad2, l->totals };
    *mods = *stacks = *scopes = *leaks = *bads = 0;
    for (int i = 0; i < 2; i++)
        *mods += len >= mod_end[i];
    for (int i = 0; i < 2; i++)
        *stacks += len >= stack_end[i];
    for (int i = 0; i < 3; i++)
        *scopes += len >= scope_end[i];
    for (int i = 0; i < 4; i++)
        *leaks += len >= leak_end[i];
    for (int i = 0; i < 2; i++)
        *bads += len >= bad_end[i];
}

/* The valid file cut at every length: inside the header a clean error, after it always a
 * truncated read holding exactly the records that fit, never a crash or an overrun (the
 * suite runs under valgrind and AddressSanitizer too). */
START_TEST(every_truncation_is_clean)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    size_t bad_len = SIZE_MAX;
    char why[512] = "";
    valid_file(&b, &l, CMT_END_EXIT, 0, "");
    cmt_diag_state.fd = -1;             /* counted, not printed: hundreds of lines */
    for (size_t len = 0; len < l.size && bad_len == SIZE_MAX; len++) {
        size_t m, s, c, k, f;
        read_built(&b, len, &p, &o);
        expect_counts(&l, len, &m, &s, &c, &k, &f);
        if (len < CMT_REPORT_HEADER_SIZE) {
            if (o.rc != -1 || o.errors != 1 || o.warnings != 0)
                snprintf(why, sizeof why, "expected one error, got rc %d, %u errors, %u "
                         "warnings", o.rc, o.errors, o.warnings);
        } else if (o.rc != 0 || o.errors != 0 || o.warnings != 1 || !p.truncated ||
                   p.complete || p.how != CMT_END_RUNNING) {
            snprintf(why, sizeof why, "expected a truncated read, got rc %d, %u errors, %u "
                     "warnings, truncated %d complete %d how %d", o.rc, o.errors, o.warnings,
                     p.truncated, p.complete, p.how);
        } else if (p.nmodules != m || p.nstacks != s || p.nscopes != c || p.nleaks != k ||
                   p.nbadfrees != f || (p.argc == 3) != (len >= l.module_libc)) {
            snprintf(why, sizeof why, "expected %zu modules %zu stacks %zu scopes %zu leaks "
                     "%zu bad frees, got %zu %zu %zu %zu %zu", m, s, c, k, f, p.nmodules,
                     p.nstacks, p.nscopes, p.nleaks, p.nbadfrees);
        }
        if (why[0])
            bad_len = len;
        cmt_process_free(&p);
    }
    cmt_diag_state.fd = 2;
    ck_assert_msg(bad_len == SIZE_MAX, "cut at %zu of %zu bytes: %s", bad_len, l.size, why);
    cmt_rb_free(&b);
}
END_TEST

/* Every single-byte corruption of the valid file: one error, or a successful read with no
 * error (a changed count or address is still a valid file), never both, never a crash. */
START_TEST(every_byte_flip_is_clean)
{
    struct cmt_rb b;
    struct layout l;
    struct cmt_process p;
    struct outcome o;
    size_t bad_at = SIZE_MAX;
    int rejected = 0;
    valid_file(&b, &l, CMT_END_EXIT, 0, "");
    cmt_diag_state.fd = -1;
    for (size_t at = 0; at < l.size && bad_at == SIZE_MAX; at++) {
        unsigned char keep = b.buf[at];
        b.buf[at] ^= 0x80;
        read_built(&b, SIZE_MAX, &p, &o);
        b.buf[at] = keep;
        if (o.rc == -1 ? o.errors != 1 || o.warnings != 0 : o.errors != 0 || o.warnings > 1)
            bad_at = at;
        rejected += o.rc == -1;
        cmt_process_free(&p);
    }
    cmt_diag_state.fd = 2;
    ck_assert_msg(bad_at == SIZE_MAX, "flipping byte %zu: rc %d, %u errors, %u warnings",
                  bad_at, o.rc, o.errors, o.warnings);
    /* The magic, version, header size and record types and lengths at least are caught. */
    ck_assert_int_gt(rejected, 50);
    cmt_rb_free(&b);
}
END_TEST

static Suite *reader_suite(void)
{
    Suite *s = suite_create("reader");
    TCase *tc = tcase_create("valid");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, valid_file_round_trips);
    tcase_add_test(tc, previous_version_reads);
    tcase_add_test(tc, lookups_by_id);
    tcase_add_test(tc, scope_lookup_in_any_order);
    tcase_add_test(tc, snapshot_keeps_its_label);
    tcase_add_test(tc, checkpoint_is_incomplete);
    tcase_add_test(tc, unknown_records_are_skipped);
    tcase_add_test(tc, leak_sums_saturate);
    tcase_add_test(tc, repeated_leak_site_is_summed);
    tcase_add_test(tc, overlapping_modules_map_frames);
    tcase_add_test(tc, reads_from_a_pipe);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, corrupt_file_is_rejected, 0,
                        sizeof corrupt_cases / sizeof corrupt_cases[0]);
    tcase_add_test(tc, missing_file_is_an_error);
    tcase_add_test(tc, every_byte_flip_is_clean);
    suite_add_tcase(s, tc);

    tc = tcase_create("truncated");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, missing_end_is_truncated);
    tcase_add_test(tc, every_truncation_is_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(reader_suite());
}
