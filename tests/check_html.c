/*
 * check_html.c — the pictures: `cymem-report --folded` (golden output for a report built
 * byte by byte and for a real program with known stacks), the TIMELINE record (read by the
 * reader, written by the library), and `cymem-report --html`: a self-contained page whose
 * strings cannot break out of its data, checked in a real browser by tests/html-browser.py
 * (headless Chromium driven through the DevTools protocol). Where Chromium is missing the
 * browser test says so and passes: the rest of the page is still checked here.
 */
#define _GNU_SOURCE
#include "config.h"
#include "harness.h"

#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "render.h"
#include "report-builder.h"

#ifndef CMT_TEST_TOOLS
#error "CMT_TEST_TOOLS must name the directory of the built cymem-report and cymemtrack"
#endif
#ifndef CMT_TEST_SRCDIR
#error "CMT_TEST_SRCDIR must name the source tree (golden files, the browser test)"
#endif
#ifndef CMT_TEST_BUILDDIR
#error "CMT_TEST_BUILDDIR must name the build tree (where the screenshot goes)"
#endif

#define REPORT CMT_TEST_TOOLS "/cymem-report"
#define WRAPPER CMT_TEST_TOOLS "/cymemtrack"
#define BROWSER_TEST CMT_TEST_SRCDIR "/tests/html-browser.py"
#define PYTHON "/usr/bin/python3"
/* The samples the library keeps at most (CMT_TIMELINE_ROWS in src/cmt.h). */
#define TIMELINE_ROWS 1024u

/* ---- scratch files (tests/harness.c) and golden files --------------------------------- */

static void scratch_setup(void)
{
    cmt_scratch_setup("html");
}

/* Compares got with tests/golden/NAME; CMT_UPDATE_GOLDEN=1 rewrites the file instead. */
static void golden(const char *name, const char *got)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tests/golden/%s", CMT_TEST_SRCDIR, name);
    if (getenv("CMT_UPDATE_GOLDEN")) {
        cmt_write_text(path, got);
        return;
    }
    char *want = cmt_read_text(path);
    ck_assert_msg(want != NULL, "golden file %s is missing (CMT_UPDATE_GOLDEN=1 makes it)",
                  path);
    ck_assert_msg(strcmp(want, got) == 0, "output differs from %s:\nexpected:\n%sgot:\n%s"
                  "(CMT_UPDATE_GOLDEN=1 make check accepts the new output)", path, want, got);
    free(want);
}

/* ---- a report built by hand ---------------------------------------------------------- */

/* A shop program: three scopes, leaks from six stacks (one outside every module, one of a
 * function whose name holds the folded format's separator), bad frees, five timeline
 * samples and allocation sites that add up to the scopes' allocations (one key in two
 * records). Module paths do not exist: names come from fake_symbols(). */
#define SHOP_EXE "/nonexistent/cmt-html/bin/shop"
#define SHOP_LIBC "/nonexistent/cmt-html/lib/libc.so.6"
#define LIBC_START 0x7f0000028000ull
#define START_NS 1700000000000000000ull

static const char *const shop_argv[] = { "shop", "--items", "</script><script>alert(1)</script>" };

struct shop {
    uint32_t version;
    bool timeline;
    uint64_t scale;
    bool allocsites;
};

static void shop_build(struct cmt_rb *b, const struct shop *d)
{
    cmt_rb_init(b);
    cmt_rb_header(b, d->version, CMT_REPORT_HEADER_SIZE);
    cmt_rb_process(b, 5151, 5100, START_NS, START_NS + 900000000ull, SHOP_EXE, 3, shop_argv);
    cmt_rb_module(b, 0x400000, 0x420000, 0, SHOP_EXE, NULL, 0);
    cmt_rb_module(b, LIBC_START, LIBC_START + 0x178000, 0x28000, SHOP_LIBC, NULL, 0);
    const uint64_t libc = LIBC_START + 0x1d90;
    const uint64_t s1[] = { 0x401100, 0x401200, 0x401300, 0x400f00, libc };
    const uint64_t s2[] = { 0x401100, 0x401400, 0x401500, 0x400f10, libc };
    const uint64_t s3[] = { 0x401200, 0x401300, 0x400f00, libc };
    const uint64_t s4[] = { 0x9999 };
    const uint64_t s5[] = { 0x401600, 0x400f20 };
    const uint64_t s6[] = { 0x401108, 0x401200, 0x401300, 0x400f00, libc };
    cmt_rb_stack(b, 1, 5, s1);
    cmt_rb_stack(b, 2, 5, s2);
    cmt_rb_stack(b, 3, 4, s3);
    cmt_rb_stack(b, 4, 1, s4);
    cmt_rb_stack(b, 5, 2, s5);
    cmt_rb_stack(b, 6, 5, s6);
    uint64_t k = d->scale;
    const struct cmt_rb_scope global = { 1, 50, 9000, 45, 6652, 0, 0, 0, 5000 };
    const struct cmt_rb_scope parser = { 7, 400, 80000 * k, 393, 73880, 7, 0, 0, 20000 };
    const struct cmt_rb_scope render = { 3, 900, 120000, 889, 116984, 0, 11, 2200, 9000 };
    cmt_rb_scope(b, 0, CMT_REPORT_KIND_GLOBAL, "global", &global);
    cmt_rb_scope(b, 1, CMT_REPORT_KIND_API, "parser", &parser);
    cmt_rb_scope(b, 2, CMT_REPORT_KIND_API, "<b>render</b>", &render);
    cmt_rb_leak(b, 1, 1, 4 * k, 4096 * k, 0, 0, 0, NULL);
    cmt_rb_leak(b, 1, 3, 2, 1000, 0, 0, 0, NULL);
    cmt_rb_leak(b, 1, 6, 1, 1024, 0, 0, 0, NULL);
    cmt_rb_leak(b, 2, 2, 10, 3000, 0, 0, 0, NULL);
    cmt_rb_leak(b, 2, 4, 1, 16, 0, 0, 0, NULL);
    cmt_rb_leak(b, 0, 5, 3, 300, 0, 0, 0, NULL);
    cmt_rb_leak(b, 0, 0, 2, 2048, 0, 0, 0, NULL);
    if (d->allocsites) {
        cmt_rb_allocsite(b, 0, 5, 3, 300);
        cmt_rb_allocsite(b, 0, 0, 47, 8700);
        cmt_rb_allocsite(b, 1, 1, 200, 40000 * k);
        cmt_rb_allocsite(b, 1, 6, 100, 20000 * k);
        cmt_rb_allocsite(b, 1, 3, 100, 20000 * k);
        cmt_rb_allocsite(b, 2, 2, 800, 110000);
        cmt_rb_allocsite(b, 2, 4, 20, 1000);
        cmt_rb_allocsite(b, 2, 2, 80, 9000);
    }
    cmt_rb_badfree(b, CMT_REPORT_BADFREE_DOUBLE, 5, UINT32_MAX, 2, 0x1234560);
    cmt_rb_badfree(b, CMT_REPORT_BADFREE_STALE, 2, 2, 1, 0x5000100);
    if (d->timeline) {
        /* Out of order on purpose: readers sort samples by time. */
        static const uint64_t at_ms[5] = { 40, 10, 20, 30, 50 };
        for (int i = 0; i < 5; i++) {
            uint64_t ms = at_ms[i];
            cmt_rb_begin(b, CMT_REC_TIMELINE);
            cmt_rb_u64(b, START_NS + ms * 1000000);
            cmt_rb_u32(b, 3);
            cmt_rb_u32(b, 1);
            cmt_rb_u64(b, ms * 100);
            cmt_rb_u32(b, 2);
            cmt_rb_u64(b, ms * 50);
            cmt_rb_u32(b, UINT32_MAX);
            cmt_rb_u64(b, 7);
            cmt_rb_end(b);
        }
    }
    const uint64_t totals[9] = { 1350, 209000, 1327, 23, 11484, 30000, 0, 2, 1 };
    cmt_rb_totals(b, totals);
    cmt_rb_end_rec(b, CMT_END_EXIT, 0, "");
}

static const struct shop shop_default = { CMT_REPORT_VERSION, true, 1, true };
/* The same program as the previous format version wrote it: no allocation sites. */
static const struct shop shop_v2 = { 2, true, 1, false };

static const char *shop_file(const char *name, const struct shop *d)
{
    struct cmt_rb b;
    shop_build(&b, d);
    const char *path = cmt_scratch_path(name);
    ck_assert_int_eq(cmt_rb_write(&b, path, SIZE_MAX), 0);
    cmt_rb_free(&b);
    return path;
}

static void fake_symbols(struct cmt_process *p)
{
    static const struct { uint64_t pc; const char *fn, *file; int line; } sym[] = {
        { 0x401100, "alloc_node", "src/shop.c", 12 },
        { 0x401108, "alloc_node", "src/shop.c", 12 },
        { 0x401200, "parse_item", "src/parse.c", 30 },
        { 0x401300, "parse_all", "src/parse.c", 60 },
        { 0x401400, "render_row", "src/render.c", 20 },
        { 0x401500, "render_page", "src/render.c", 44 },
        { 0x400f00, "main", "src/shop.c", 80 },
        { 0x400f10, "main", "src/shop.c", 82 },
        { 0x400f20, "main", "src/shop.c", 84 },
        { 0x401600, "odd;name\\\x01", NULL, 0 },
    };
    for (size_t i = 0; i < p->nstacks; i++)
        for (uint32_t f = 0; f < p->stacks[i].depth; f++) {
            struct cmt_frame *fr = &p->stacks[i].frames[f];
            for (size_t j = 0; j < sizeof sym / sizeof sym[0]; j++)
                if (fr->pc == sym[j].pc) {
                    fr->function = strdup(sym[j].fn);
                    fr->file = sym[j].file ? strdup(sym[j].file) : NULL;
                    fr->line = sym[j].line;
                }
        }
}

/* Renders p (one process, fake symbols) as main.c would. */
static char *render(struct cmt_process *p, const struct cmt_render_opts *o, bool html,
                    enum cmt_folded_value what)
{
    struct cmt_view v;
    ck_assert_int_eq(cmt_view_build(&v, p, 1), 0);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    int rc = html ? cmt_render_html(f, &v, o) : cmt_render_folded(f, &v, o, what);
    fclose(f);
    cmt_view_free(&v);
    ck_assert_int_eq(rc, 0);
    return out;
}

static void read_shop(struct cmt_process *p, const struct shop *d)
{
    ck_assert_int_eq(cmt_report_read(shop_file("shop.cmt", d), p), 0);
    fake_symbols(p);
}

/* ---- running programs ---------------------------------------------------------------- */

static char *const base_env[] = {
    "COLUMNS=", "NO_COLOR=", "DEBUGINFOD_URLS=", "CYMEMTRACK_OUTPUT=",
    "CYMEMTRACK_LIBRARY=" CMT_TEST_LIBRARY, NULL,
};

static void run_tool(struct cmt_run *r, const char *prog, const char *const *args)
{
    const char *argv[32] = { prog };
    size_t n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    cmt_run(r, 0, (char *const *)argv, base_env);
}

#define REPORT_RUN(r, ...) run_tool((r), REPORT, (const char *[]){ __VA_ARGS__, NULL })
#define WRAP_RUN(r, ...) run_tool((r), WRAPPER, (const char *[]){ __VA_ARGS__, NULL })

/* Runs tests/progs/flame MODE under the preload with 3 frames a stack; *path gets the report
 * file it wrote, which stays until cmt_run_free(r). */
static void run_flame(struct cmt_run *r, const char *mode, char *path, size_t size)
{
    char *argv[] = { (char *)cmt_test_prog("flame"), (char *)mode, NULL };
    char *const env[] = { "CYMEMTRACK_OUTPUT=", "CYMEMTRACK_STACK_DEPTH=3", NULL };
    cmt_run(r, 1, argv, env);
    ck_assert_msg(r->exit_code == 0, "flame %s exited with %d:\n%s", mode, r->exit_code,
                  r->err);
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof pattern, "%s/cymemtrack.flame.*.cmt", r->dir);
    glob_t g;
    ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
    ck_assert_msg(g.gl_pathc == 1, "expected one report from flame, found %zu",
                  (size_t)g.gl_pathc);
    snprintf(path, size, "%s", g.gl_pathv[0]);
    globfree(&g);
}

/* ---- --folded -------------------------------------------------------------------------- */

START_TEST(folded_golden)
{
    struct cmt_process p;
    read_shop(&p, &shop_default);
    struct cmt_render_opts o = { 0 };
    char *out = render(&p, &o, false, CMT_FOLDED_LEAKED);
    golden("shop.folded", out);
    free(out);
    out = render(&p, &o, false, CMT_FOLDED_BLOCKS);
    golden("shop-blocks.folded", out);
    free(out);
    out = render(&p, &o, false, CMT_FOLDED_ALLOCATED);
    golden("shop-allocated.folded", out);
    free(out);
    cmt_process_free(&p);
}
END_TEST

/* A report without allocation sites: bytes allocated per scope only, one frame-less line
 * each, as before allocation sites existed, and a warning that says why. */
START_TEST(folded_allocated_without_sites)
{
    struct cmt_process p;
    read_shop(&p, &shop_v2);
    struct cmt_render_opts o = { 0 };
    unsigned warnings = cmt_diag_state.warnings;
    char *out = render(&p, &o, false, CMT_FOLDED_ALLOCATED);
    warnings = cmt_diag_state.warnings - warnings;
    ck_assert_str_eq(out, "<b>render</b> 120000\nglobal 9000\nparser 80000\n");
    ck_assert_uint_eq(warnings, 1);
    free(out);
    cmt_process_free(&p);
    struct cmt_run r;
    REPORT_RUN(&r, "--folded=allocated", shop_file("v2.cmt", &shop_v2));
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(r.err, "cymem-report: warning: "));
    ck_assert_ptr_nonnull(strstr(r.err, "v2.cmt: no bytes allocated per stack (its report was "
                                        "written by a tracker older than report format 3): "
                                        "each scope is one line\n"));
    cmt_run_free(&r);
}
END_TEST

START_TEST(folded_follows_the_filters)
{
    struct cmt_process p;
    read_shop(&p, &shop_default);
    const char *const parser[] = { "parser" };
    struct cmt_render_opts o = { .scopes = parser, .nscopes = 1, .min_bytes = 1024 };
    char *out = render(&p, &o, false, CMT_FOLDED_LEAKED);
    /* Two sites of 1024 bytes and more: stacks 1 and 6 name the same frames, one line. */
    ck_assert_str_eq(out, "parser;libc.so.6+0x29d90;main;parse_all;parse_item;alloc_node "
                          "5120\n");
    free(out);
    /* The same filters for bytes allocated: --min-bytes on the bytes of a site, and --top
     * the largest sites (stack 1's 40000 bytes, then stack 6's or 3's 20000). */
    o.min_bytes = 20001;
    out = render(&p, &o, false, CMT_FOLDED_ALLOCATED);
    ck_assert_str_eq(out, "parser;libc.so.6+0x29d90;main;parse_all;parse_item;alloc_node "
                          "40000\n");
    free(out);
    o.min_bytes = 0;
    o.top = 1;
    out = render(&p, &o, false, CMT_FOLDED_ALLOCATED);
    ck_assert_str_eq(out, "parser;libc.so.6+0x29d90;main;parse_all;parse_item;alloc_node "
                          "40000\n");
    free(out);
    cmt_process_free(&p);
}
END_TEST

START_TEST(folded_from_a_real_program)
{
    struct cmt_run run, r;
    char path[PATH_MAX];
    run_flame(&run, "leaks", path, sizeof path);
    /* Built without stack capture, each scope's leaks stand on one "[no stack]" frame. */
    bool stacks = cmt_test_have_stacks();
    REPORT_RUN(&r, "--folded", path);
    ck_assert_msg(r.exit_code == 0, "cymem-report --folded: %d\n%s", r.exit_code, r.err);
    if (stacks)
        golden("flame.folded", r.out);
    else
        ck_assert_str_eq(r.out, "global;[no stack] 100\nparser;[no stack] 288\n"
                                "render;[no stack] 160\n");
    cmt_run_free(&r);
    REPORT_RUN(&r, "--folded=blocks", path);
    ck_assert_int_eq(r.exit_code, 0);
    if (stacks)
        golden("flame-blocks.folded", r.out);
    else
        ck_assert_str_eq(r.out, "global;[no stack] 1\nparser;[no stack] 5\n"
                                "render;[no stack] 5\n");
    cmt_run_free(&r);
    REPORT_RUN(&r, "--folded=allocated", "--scope", "parser", "--scope", "render", path);
    ck_assert_int_eq(r.exit_code, 0);
    if (stacks)
        golden("flame-allocated.folded", r.out);
    else
        ck_assert_str_eq(r.out, "parser;[no stack] 352\nrender;[no stack] 160\n");
    cmt_run_free(&r);
    REPORT_RUN(&r, "--folded=everything", path);
    ck_assert_int_eq(r.exit_code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "expected leaked, blocks or allocated"));
    cmt_run_free(&r);
    REPORT_RUN(&r, "--folded", "--json", path);
    ck_assert_int_eq(r.exit_code, 2);
    cmt_run_free(&r);
    cmt_run_free(&run);
}
END_TEST

/* ---- TIMELINE, read ------------------------------------------------------------------ */

START_TEST(timeline_is_read_and_sorted)
{
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(shop_file("t.cmt", &shop_default), &p), 0);
    ck_assert_uint_eq(p.nsamples, 5);
    for (size_t i = 0; i < 5; i++) {
        uint64_t ms = 10 * (i + 1);
        ck_assert_uint_eq(p.samples[i].unix_ns, START_NS + ms * 1000000);
        ck_assert_uint_eq(p.samples[i].n, 3);
        ck_assert_uint_eq(p.samples[i].v[0].scope, 1);
        ck_assert_uint_eq(p.samples[i].v[0].bytes, ms * 100);
        ck_assert_uint_eq(p.samples[i].v[1].scope, 2);
        ck_assert_uint_eq(p.samples[i].v[1].bytes, ms * 50);
        ck_assert_uint_eq(p.samples[i].v[2].scope, CMT_TIMELINE_OTHERS);
        ck_assert_uint_eq(p.samples[i].v[2].bytes, 7);
    }
    cmt_process_free(&p);
}
END_TEST

START_TEST(version_1_without_timeline_reads)
{
    struct shop v1 = { 1, false, 1, false };
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(shop_file("v1.cmt", &v1), &p), 0);
    ck_assert_uint_eq(p.nsamples, 0);
    ck_assert_ptr_null(p.samples);
    ck_assert_uint_eq(p.nleaks, 7);
    cmt_process_free(&p);
}
END_TEST

/* A file whose one TIMELINE record is built by fn, after the shop's scopes. */
static const char *timeline_file(void (*fn)(struct cmt_rb *b, size_t *off), size_t *off)
{
    struct cmt_rb b;
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    cmt_rb_process(&b, 1, 0, START_NS, START_NS, "/x", 0, NULL);
    const struct cmt_rb_scope c = { 0 };
    cmt_rb_scope(&b, 0, CMT_REPORT_KIND_GLOBAL, "global", &c);
    cmt_rb_scope(&b, 4, CMT_REPORT_KIND_API, "four", &c);
    fn(&b, off);
    const uint64_t totals[9] = { 0 };
    cmt_rb_totals(&b, totals);
    cmt_rb_end_rec(&b, CMT_END_EXIT, 0, "");
    const char *path = cmt_scratch_path("bad.cmt");
    ck_assert_int_eq(cmt_rb_write(&b, path, SIZE_MAX), 0);
    cmt_rb_free(&b);
    return path;
}

static void t_unknown_scope(struct cmt_rb *b, size_t *off)
{
    size_t rec = cmt_rb_begin(b, CMT_REC_TIMELINE);
    cmt_rb_u64(b, START_NS);
    cmt_rb_u32(b, 2);
    cmt_rb_u32(b, 4);
    cmt_rb_u64(b, 10);
    cmt_rb_u32(b, 3);
    cmt_rb_u64(b, 10);
    cmt_rb_end(b);
    *off = rec + 8 + 12 + 12;
}

static void t_twice(struct cmt_rb *b, size_t *off)
{
    size_t rec = cmt_rb_begin(b, CMT_REC_TIMELINE);
    cmt_rb_u64(b, START_NS);
    cmt_rb_u32(b, 2);
    cmt_rb_u32(b, UINT32_MAX);
    cmt_rb_u64(b, 10);
    cmt_rb_u32(b, UINT32_MAX);
    cmt_rb_u64(b, 10);
    cmt_rb_end(b);
    *off = rec + 8 + 12 + 12;
}

static void t_too_many(struct cmt_rb *b, size_t *off)
{
    size_t rec = cmt_rb_begin(b, CMT_REC_TIMELINE);
    cmt_rb_u64(b, START_NS);
    cmt_rb_u32(b, CMT_TIMELINE_MAX_SCOPES + 1);
    for (uint32_t i = 0; i <= CMT_TIMELINE_MAX_SCOPES; i++) {
        cmt_rb_u32(b, 0);
        cmt_rb_u64(b, 1);
    }
    cmt_rb_end(b);
    *off = rec + 16;
}

static void t_short(struct cmt_rb *b, size_t *off)
{
    size_t rec = cmt_rb_begin(b, CMT_REC_TIMELINE);
    cmt_rb_u64(b, START_NS);
    cmt_rb_u32(b, 2);
    cmt_rb_u32(b, 0);
    cmt_rb_u64(b, 10);
    cmt_rb_end(b);
    *off = rec + 8 + 12 + 12;
}

/* Runs the reader on a broken file: it must fail with the offset and words expected. */
static void expect_error(void (*fn)(struct cmt_rb *b, size_t *off), const char *words)
{
    size_t off = 0;
    const char *path = timeline_file(fn, &off);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s", path);
    struct cmt_run r;
    REPORT_RUN(&r, "--json", cmd);
    char want[64];
    snprintf(want, sizeof want, "offset %zu: ", off);
    ck_assert_msg(r.exit_code == 2 && strstr(r.err, want) && strstr(r.err, words),
                  "expected status 2 and an error at %s\"%s\", got %d:\n%s", want, words,
                  r.exit_code, r.err);
    cmt_run_free(&r);
}

START_TEST(timeline_records_are_checked)
{
    expect_error(t_unknown_scope, "TIMELINE record refers to unknown scope 3");
    expect_error(t_twice, "TIMELINE record names scope 4294967295 twice");
    expect_error(t_too_many, "TIMELINE record names 17 scopes");
    expect_error(t_short, "TIMELINE record");
}
END_TEST

START_TEST(timeline_cut_short_warns)
{
    struct cmt_rb b;
    shop_build(&b, &shop_default);
    /* Up to the middle of the third TIMELINE record. */
    size_t len = 0;
    for (size_t off = CMT_REPORT_HEADER_SIZE, seen = 0; off + 8 <= b.len;) {
        uint32_t type, n;
        memcpy(&type, b.buf + off, 4);
        memcpy(&n, b.buf + off + 4, 4);
        if (type == CMT_REC_TIMELINE && ++seen == 3) {
            len = off + 20;
            break;
        }
        off += 8 + n;
    }
    ck_assert_uint_gt(len, 0);
    const char *path = cmt_scratch_path("cut.cmt");
    ck_assert_int_eq(cmt_rb_write(&b, path, len), 0);
    cmt_rb_free(&b);
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(path, &p), 0);
    ck_assert(p.truncated);
    ck_assert_uint_eq(p.nsamples, 2);
    cmt_process_free(&p);
}
END_TEST

/* ---- TIMELINE, written ---------------------------------------------------------------- */

START_TEST(timeline_from_a_real_program)
{
    struct cmt_run run;
    char path[PATH_MAX];
    run_flame(&run, "grow", path, sizeof path);
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(path, &p), 0);
    const struct cmt_scope *grower = NULL, *steady = NULL;
    for (size_t i = 0; i < p.nscopes; i++) {
        if (!strcmp(p.scopes[i].name, "grower"))
            grower = &p.scopes[i];
        if (!strcmp(p.scopes[i].name, "steady"))
            steady = &p.scopes[i];
    }
    ck_assert_ptr_nonnull(grower);
    ck_assert_ptr_nonnull(steady);
    size_t n = p.nsamples;
    uint64_t prev_t = 0, prev_grower = 0, last_grower = 0, last_steady = 0;
    bool ordered = true, within = true, growing = true;
    for (size_t i = 0; i < n; i++) {
        const struct cmt_sample *s = &p.samples[i];
        ordered &= s->unix_ns >= prev_t;
        /* The last one is taken after the PROCESS record got its write time. */
        within &= s->unix_ns >= p.start_unix_ns && (i + 1 == n || s->unix_ns <= p.write_unix_ns);
        prev_t = s->unix_ns;
        uint64_t g = 0, st = 0;
        for (uint32_t j = 0; j < s->n; j++) {
            if (s->v[j].scope == grower->id)
                g = s->v[j].bytes;
            if (s->v[j].scope == steady->id)
                st = s->v[j].bytes;
        }
        growing &= g >= prev_grower;
        prev_grower = g;
        last_grower = g;
        last_steady = st;
    }
    /* 300 allocations a millisecond apart. How many samples that gives depends on the
     * machine (sampling is throttled to a small share of the run's time, and on a loaded
     * machine the run's own time stretches): at least one during the run and the one taken
     * as the report was written, never more than the rows hold plus that one. */
    ck_assert_msg(n >= 2 && n <= TIMELINE_ROWS + 1, "expected 2 to %u samples, got %zu",
                  TIMELINE_ROWS + 1, n);
    ck_assert_msg(ordered && within, "samples out of order or outside the process's life");
    ck_assert_msg(growing, "a scope that never frees must never shrink in the timeline");
    /* The last sample is the report's own moment: exactly what leaked. */
    ck_assert_uint_eq(last_grower, 300 * 4096);
    ck_assert_uint_eq(last_steady, 16 * 4096);
    ck_assert_uint_eq(grower->leaked_bytes, 300 * 4096);
    cmt_process_free(&p);
    cmt_run_free(&run);
}
END_TEST

/* A fork child's report starts at the fork: the samples its parent took before are not its
 * own, although its memory holds them. */
START_TEST(timeline_of_a_fork_child_is_its_own)
{
    struct cmt_run run;
    char *argv[] = { (char *)cmt_test_prog("cli-leak"), "family", NULL };
    char *const env[] = { "CYMEMTRACK_OUTPUT=", NULL };
    cmt_run(&run, 1, argv, env);
    ck_assert_int_eq(run.exit_code, 0);
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof pattern, "%s/cymemtrack.*.cmt", run.dir);
    glob_t g;
    ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
    ck_assert_uint_eq(g.gl_pathc, 3);
    for (size_t f = 0; f < g.gl_pathc; f++) {
        struct cmt_process p;
        ck_assert_int_eq(cmt_report_read(g.gl_pathv[f], &p), 0);
        ck_assert_uint_ge(p.nsamples, 1);
        for (size_t i = 0; i < p.nsamples; i++)
            ck_assert_msg(p.samples[i].unix_ns >= p.start_unix_ns,
                          "%s: a sample %llu ns before the process started", g.gl_pathv[f],
                          (unsigned long long)(p.start_unix_ns - p.samples[i].unix_ns));
        cmt_process_free(&p);
    }
    globfree(&g);
    cmt_run_free(&run);
}
END_TEST

/* ---- --html --------------------------------------------------------------------------- */

/* The JSON between <script type="application/json" id="cmt-data"> and </script>. */
static char *page_data(const char *page)
{
    const char *open = "<script type=\"application/json\" id=\"cmt-data\">";
    const char *a = strstr(page, open);
    ck_assert_ptr_nonnull(a);
    a += strlen(open);
    const char *b = strstr(a, "</script>");
    ck_assert_ptr_nonnull(b);
    return strndup(a, (size_t)(b - a));
}

START_TEST(html_is_self_contained)
{
    struct cmt_process p;
    read_shop(&p, &shop_default);
    struct cmt_render_opts o = { 0 };
    char *page = render(&p, &o, true, CMT_FOLDED_LEAKED);
    /* Two scripts (the data and the code), no element that loads anything. */
    int scripts = 0;
    for (const char *s = strstr(page, "<script"); s; s = strstr(s + 1, "<script"))
        scripts++;
    ck_assert_int_eq(scripts, 2);
    ck_assert_ptr_null(strstr(page, "<script src"));
    ck_assert_ptr_null(strstr(page, "<link"));
    ck_assert_ptr_null(strstr(page, "<img"));
    ck_assert_ptr_null(strstr(page, "<iframe"));
    ck_assert_ptr_null(strstr(page, "@import"));
    ck_assert_ptr_null(strstr(page, "url("));
    ck_assert_ptr_null(strstr(page, "https:"));
    ck_assert_ptr_nonnull(strstr(page, "Content-Security-Policy\" content=\"default-src 'none'"));
    /* The only http: is the SVG namespace, which names, not loads. */
    for (const char *s = strstr(page, "http:"); s; s = strstr(s + 1, "http:"))
        ck_assert_msg(!strncmp(s, "http://www.w3.org/2000/svg", 26), "a URL in the page: %.60s",
                      s);
    /* A hostile argv and scope name stay data: no '<' in the data at all. */
    char *json = page_data(page);
    ck_assert_ptr_null(strchr(json, '<'));
    ck_assert_ptr_null(strchr(json, '>'));
    ck_assert_ptr_nonnull(strstr(json, "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"));
    ck_assert_ptr_nonnull(strstr(json, "\"\\u003cb\\u003erender\\u003c/b\\u003e\""));
    ck_assert_ptr_nonnull(strstr(json, "\"alloc_node\",\"alloc_node\",\"src/shop.c\",12,"));
    ck_assert_ptr_nonnull(strstr(json, "\"odd;name\\\\\\u0001\""));
    free(json);
    free(page);
    cmt_process_free(&p);
    /* A report of the previous format: the page says why it has no allocation sites. */
    read_shop(&p, &shop_v2);
    page = render(&p, &o, true, CMT_FOLDED_LEAKED);
    json = page_data(page);
    ck_assert_ptr_nonnull(strstr(json, "\"alloc_sites\":false,\"alloc_note\":\"its report was "
                                       "written by a tracker older than report format 3\","
                                       "\"allocs\":[]"));
    free(json);
    free(page);
    cmt_process_free(&p);
}
END_TEST

/* The page data is valid JSON that says what the report says: checked by Python's parser. */
START_TEST(html_data_is_json)
{
    struct cmt_process p;
    read_shop(&p, &shop_default);
    struct cmt_render_opts o = { 0 };
    char *page = render(&p, &o, true, CMT_FOLDED_LEAKED);
    char *json = page_data(page);
    cmt_write_text(cmt_scratch_path("data.json"), json);
    const char *check =
        "import json,sys\n"
        "d = json.load(open(sys.argv[1]))\n"
        "p = d['processes'][0]\n"
        "assert p['argv'][2] == '</script><script>alert(1)</script>', p['argv']\n"
        "assert [s['name'] for s in p['scopes']] == ['global', 'parser', '<b>render</b>']\n"
        "assert sum(l[2] for l in p['leaks']) == 11484\n"
        "assert len(p['leaks']) == 7 and len(p['badfrees']) == 2\n"
        "assert p['alloc_sites'] is True and p['alloc_note'] is None, p['alloc_note']\n"
        "assert len(p['allocs']) == 7, p['allocs']\n"
        "for i, s in enumerate(p['scopes']):\n"
        "    mine = [a for a in p['allocs'] if a[0] == i]\n"
        "    assert sum(a[1] for a in mine) == s['allocations'], (s, mine)\n"
        "    assert sum(a[2] for a in mine) == s['bytes_allocated'], (s, mine)\n"
        "assert p['timeline']['t'] == [10.0, 20.0, 30.0, 40.0, 50.0], p['timeline']['t']\n"
        "s = p['timeline']['series']\n"
        "assert [x['scope'] for x in s] == [1, 2, None], s\n"
        "assert s[0]['v'] == [1000, 2000, 3000, 4000, 5000] and s[2]['v'] == [7] * 5, s\n"
        "f = d['frames']\n"
        "big = [l for l in p['leaks'] if l[2] == 4096][0]\n"
        "assert [f[i][0] for i in big[3]] == ['alloc_node', 'parse_item', 'parse_all', "
        "'main', 'libc.so.6+0x29d90'], big\n"
        "print('valid')\n";
    cmt_write_text(cmt_scratch_path("check.py"), check);
    char *argv[] = { PYTHON, (char *)cmt_scratch_path("check.py"), (char *)cmt_scratch_path("data.json"), NULL };
    struct cmt_run r;
    cmt_run(&r, 0, argv, NULL);
    ck_assert_msg(r.exit_code == 0 && !strcmp(r.out, "valid\n"), "page data: %s%s", r.out,
                  r.err);
    cmt_run_free(&r);
    free(json);
    free(page);
    cmt_process_free(&p);
}
END_TEST

START_TEST(html_through_the_wrapper)
{
    struct cmt_run r;
    const char *page = cmt_scratch_path("flame.html");
    char *argv[] = { WRAPPER, "--depth", "3", "--html", (char *)page,
                     (char *)cmt_test_prog("flame"), NULL };
    cmt_run(&r, 0, argv, base_env);
    ck_assert_msg(r.exit_code == 0, "cymemtrack --html: %d\n%s", r.exit_code, r.err);
    /* The text report still goes to stderr; the page goes to the file. Built without stack
     * capture, both have the leak sites (scope, blocks, bytes) without frames. */
    bool stacks = cmt_test_have_stacks();
    if (stacks) {
        ck_assert_ptr_nonnull(strstr(r.err, "parse_leaf"));
    } else {
        ck_assert_msg(strstr(r.err, "\nleaks in scope parser: 5 blocks, 288 B in 1 site\n"
                                    "  1   5 blocks, 288 B (5 in closed instances)\n"
                                    "      (no stack recorded)\n") &&
                          cmt_count_lines(r.err, "      (no stack recorded)") == 3 &&
                          !strstr(r.err, "parse_leaf"),
                      "expected three leak sites without frames, got:\n%s", r.err);
    }
    char *text = cmt_read_text(page);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "<!DOCTYPE html>"));
    if (stacks) {
        ck_assert_ptr_nonnull(strstr(text, "[\"parse_leaf\",\"parse_leaf\","));
    } else {
        ck_assert_ptr_nonnull(strstr(text, "\"leaks\":[[0,1,100,null],[1,5,288,null],"
                                           "[2,5,160,null]],"));
        ck_assert_ptr_nonnull(strstr(text, "\n\"frames\":[]}\n"));
    }
    ck_assert_ptr_nonnull(strstr(text, "\"timeline\":{\"t\":["));
    free(text);
    cmt_run_free(&r);
    char *bad[] = { WRAPPER, "--html", NULL };
    cmt_run(&r, 0, bad, base_env);
    ck_assert_int_eq(r.exit_code, 125);
    cmt_run_free(&r);
}
END_TEST

/* The page in a real browser: frames and their widths, a click that zooms, the search, the
 * hover, the table's sorting, the timeline, a screenshot, and no request anywhere. */
START_TEST(html_in_a_browser)
{
    const char *chromium = getenv("CMT_CHROMIUM") ? getenv("CMT_CHROMIUM") : "/usr/bin/chromium";
    if (access(chromium, X_OK) != 0 || access(PYTHON, X_OK) != 0) {
        fprintf(stderr, "check_html: browser test skipped: %s is not installed (.ci/run "
                "installs Debian's chromium)\n", access(PYTHON, X_OK) ? PYTHON : chromium);
        return;
    }
    struct cmt_process p;
    read_shop(&p, &shop_default);
    struct cmt_render_opts o = { 0 };
    char *page = render(&p, &o, true, CMT_FOLDED_LEAKED);
    cmt_write_text(cmt_scratch_path("shop.html"), page);
    free(page);
    cmt_process_free(&p);
    const char *expect =
        "{\"total\": 11484,\n"
        " \"frames\": [[\"all\", 0, 11484], [\"parser\", 1, 6120], [\"<b>render</b>\", 1, 3016],\n"
        "   [\"global\", 1, 2348], [\"[no stack]\", 2, 2048], [\"alloc_node\", 6, 5120],\n"
        "   [\"parse_item\", 5, 6120], [\"render_row\", 5, 3000], [\"0x9999\", 2, 16],\n"
        "   [\"libc.so.6+0x29d90\", 2, 6120]],\n"
        " \"zoom\": \"parse_all\", \"zoom_depth\": 4,\n"
        " \"hover\": \"alloc_node\", \"hover_text\": [\"alloc_node\", \"src/shop.c:12\", "
        "\"5.0 KiB\", \"5 blocks\"],\n"
        " \"search\": \"render\", \"search_names\": [\"<b>render</b>\", \"render_page\", "
        "\"render_row\"],\n"
        " \"sort\": \"leaked_bytes\", \"sorted_names\": [\"parser\", \"<b>render</b>\", "
        "\"global\"],\n"
        " \"timeline_series\": 3,\n"
        " \"allocated\": {\"total\": 209000,\n"
        "   \"frames\": [[\"all\", 0, 209000], [\"<b>render</b>\", 1, 120000],\n"
        "     [\"parser\", 1, 80000], [\"global\", 1, 9000], [\"[no stack]\", 2, 8700],\n"
        "     [\"main\", 2, 300], [\"0x9999\", 2, 1000], [\"libc.so.6+0x29d90\", 2, 119000],\n"
        "     [\"parse_item\", 5, 80000], [\"alloc_node\", 6, 60000],\n"
        "     [\"alloc_node\", 6, 119000]],\n"
        "   \"hover\": \"alloc_node\", \"hover_text\": [\"alloc_node\", \"src/shop.c:12\",\n"
        "     \"116.2 KiB allocated in 880 allocations\"]},\n"
        " \"title_has\": \"</script><script>alert(1)</script>\"}\n";
    cmt_write_text(cmt_scratch_path("expect.json"), expect);
    char shot[PATH_MAX];
    snprintf(shot, sizeof shot, "%s/tests/html-screenshot.png", CMT_TEST_BUILDDIR);
    char *argv[] = { PYTHON, BROWSER_TEST, "check", (char *)cmt_scratch_path("shop.html"),
                     (char *)cmt_scratch_path("expect.json"), shot, NULL };
    char *const env[] = { "CMT_CHROMIUM_PROFILE_DIR=", NULL };
    struct cmt_run r;
    cmt_run(&r, 0, argv, env);
    if (r.exit_code == 77) {
        fprintf(stderr, "check_html: browser test skipped: %s", r.out);
    } else {
        ck_assert_msg(r.exit_code == 0, "the browser test failed (%d):\n%s\n%s", r.exit_code,
                      r.out, r.err);
        struct stat st;
        ck_assert_int_eq(stat(shot, &st), 0);
        ck_assert_int_gt(st.st_size, 10000);
        fprintf(stderr, "%s", r.out);    /* what was checked, for the log */
    }
    cmt_run_free(&r);
}
END_TEST

static Suite *html_suite(void)
{
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("folded");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, folded_golden);
    tcase_add_test(tc, folded_allocated_without_sites);
    tcase_add_test(tc, folded_follows_the_filters);
    tcase_add_test(tc, folded_from_a_real_program);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeline");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, timeline_is_read_and_sorted);
    tcase_add_test(tc, version_1_without_timeline_reads);
    tcase_add_test(tc, timeline_records_are_checked);
    tcase_add_test(tc, timeline_cut_short_warns);
    tcase_add_test(tc, timeline_from_a_real_program);
    tcase_add_test(tc, timeline_of_a_fork_child_is_its_own);
    suite_add_tcase(s, tc);

    tc = tcase_create("page");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, html_is_self_contained);
    tcase_add_test(tc, html_data_is_json);
    tcase_add_test(tc, html_through_the_wrapper);
    tcase_add_test(tc, html_in_a_browser);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    unsetenv("DEBUGINFOD_URLS");
    return cmt_run_suite(html_suite());
}
