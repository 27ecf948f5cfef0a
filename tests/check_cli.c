/*
 * check_cli.c — what users read: cymem-report's stages (symbolize, merge, suppress, the
 * text and JSON renderers) driven in process on reports built byte by byte
 * (tests/report-builder.c), the cymem-report program's options and exit statuses, and the
 * cymemtrack wrapper. Golden files (tests/golden/) hold constructed data only, so that they
 * do not depend on the machine; CMT_UPDATE_GOLDEN=1 rewrites them from the current output.
 */
#define _GNU_SOURCE
#include "config.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag.h"
#include "render.h"
#include "report-builder.h"

#ifndef CMT_TEST_TOOLS
#error "CMT_TEST_TOOLS must name the directory of the built cymem-report and cymemtrack"
#endif
#ifndef CMT_TEST_SRCDIR
#error "CMT_TEST_SRCDIR must name the source tree (golden files, schema, man pages)"
#endif

#define REPORT CMT_TEST_TOOLS "/cymem-report"
#define WRAPPER CMT_TEST_TOOLS "/cymemtrack"
#define SCHEMA CMT_TEST_SRCDIR "/tools/cymem-report.schema.json"
#define PYTHON "/usr/bin/python3"

/* ---- scratch files: tests/harness.c --------------------------------------------------- */

static void scratch_setup(void)
{
    cmt_scratch_setup("cli");
}

/* ---- reports built by hand ----------------------------------------------------------- */

/* One process of the demo: a program with three scopes, leaks from four stacks (one of them
 * in no module), every kind of bad free. Module paths do not exist, so symbolization leaves
 * module+offset; tests that want names set them with fake_symbols(). */
struct demo {
    uint32_t pid, ppid;
    uint64_t start;
    const char *exe;
    const char *const *argv;
    uint32_t argc;
    uint8_t how;
    int32_t code;
    const char *label;
    uint64_t scale;             /* multiplies every leak, to tell processes apart */
    bool no_end;                /* cut short: no TOTALS, no END */
};

#define DEMO_EXE "/nonexistent/cmt-test/bin/demo"
#define DEMO_LIBC "/nonexistent/cmt-test/lib/libc.so.6"
#define LIBC_START 0x7f0000028000ull

static const char *const demo_argv[] = { "demo", "--input", "a file.txt" };

static const struct demo demo_default = {
    .pid = 4242, .ppid = 4200, .start = 1000, .exe = DEMO_EXE, .argv = demo_argv, .argc = 3,
    .how = CMT_END_EXIT, .code = 0, .label = "", .scale = 1,
};

static size_t demo_build(struct cmt_rb *b, const struct demo *d)
{
    cmt_rb_init(b);
    cmt_rb_header(b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    cmt_rb_process(b, d->pid, d->ppid, d->start, d->start + 500, d->exe, d->argc, d->argv);
    cmt_rb_module(b, 0x400000, 0x420000, 0, DEMO_EXE, NULL, 0);
    cmt_rb_module(b, LIBC_START, LIBC_START + 0x178000, 0x28000, DEMO_LIBC, "\x12\x34", 2);
    const uint64_t s1[] = { 0x401234, 0x400f00, LIBC_START + 0x1d90 };
    const uint64_t s2[] = { 0x401500, 0x400f10, LIBC_START + 0x1d90 };
    const uint64_t s3[] = { 0x9999 };
    const uint64_t s4[] = { 0x401600, 0x400f20 };
    cmt_rb_stack(b, 1, 3, s1);
    cmt_rb_stack(b, 2, 3, s2);
    cmt_rb_stack(b, 3, 1, s3);
    cmt_rb_stack(b, 4, 2, s4);
    uint64_t k = d->scale;
    const struct cmt_rb_scope global = { 1, 1000 * k, 64000 * k, 995 * k, 60000 * k, 0, 0, 0,
                                         20000 };
    const struct cmt_rb_scope parser = { 12, 500, 1572864, 480, 1500000, 15, 4, 4096, 300000 };
    const struct cmt_rb_scope io = { 2, 40, 40960, 39, 39936, 0, 0, 0, 8192 };
    cmt_rb_scope(b, 0, CMT_REPORT_KIND_GLOBAL, "global", &global);
    cmt_rb_scope(b, 1, CMT_REPORT_KIND_API, "parser", &parser);
    cmt_rb_scope(b, 2, CMT_REPORT_KIND_THREAD, "io", &io);
    const uint64_t samples[] = { 0x5000010, 0x5000020 };
    cmt_rb_leak(b, 0, 1, 3 * k, 96 * k, 0, 0, 2, samples);
    cmt_rb_leak(b, 0, 0, 2, 2048, 0, 0, 0, NULL);
    cmt_rb_leak(b, 1, 2, 10 * k, 5000 * k, 4, 2000, 1, samples);
    cmt_rb_leak(b, 1, 3, 1, 16, 1, 16, 0, NULL);
    cmt_rb_leak(b, 2, 4, 1, 1024, 0, 0, 0, NULL);
    /* Allocation sites, adding up to each scope's allocations and bytes. */
    cmt_rb_allocsite(b, 0, 1, 1000 * k, 64000 * k);
    cmt_rb_allocsite(b, 1, 2, 400, 1048576);
    cmt_rb_allocsite(b, 1, 0, 100, 524288);
    cmt_rb_allocsite(b, 2, 4, 40, 40960);
    cmt_rb_badfree(b, CMT_REPORT_BADFREE_DOUBLE, 4, UINT32_MAX, 2, 0x1234560);
    cmt_rb_badfree(b, CMT_REPORT_BADFREE_INVALID, 4, UINT32_MAX, 1, 0xdeadbeef);
    cmt_rb_badfree(b, CMT_REPORT_BADFREE_STALE, 2, 1, 1, 0x5000100);
    size_t before_totals = b->len;
    if (d->no_end)
        return before_totals;
    const uint64_t totals[9] = { 1540 * k, 1678824 * k, 1514 * k, 17 * k, 8184 * k, 350000, 1,
                                 2, 1 };
    cmt_rb_totals(b, totals);
    cmt_rb_end_rec(b, d->how, d->code, d->label ? d->label : "");
    return before_totals;
}

static const char *demo_file(const char *name, const struct demo *d)
{
    struct cmt_rb b;
    demo_build(&b, d);
    const char *path = cmt_scratch_path(name);
    ck_assert_int_eq(cmt_rb_write(&b, path, SIZE_MAX), 0);
    cmt_rb_free(&b);
    return path;
}

/* What a symbolizer would say for the demo's stacks. */
static void fake_symbols(struct cmt_process *p)
{
    static const struct { uint64_t pc; const char *fn, *file; int line; } sym[] = {
        { 0x401234, "make_node", "src/demo.c", 12 },
        { 0x400f00, "main", "src/demo.c", 40 },
        { LIBC_START + 0x1d90, "__libc_start_call_main", NULL, 0 },
        { 0x401500, "parse_token", "src/parser.c", 88 },
        { 0x400f10, "main", "src/demo.c", 41 },
        { 0x401600, "release", "src/demo.c", 60 },
        { 0x400f20, "main", "src/demo.c", 45 },
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

static void read_demo(struct cmt_process *p, const struct demo *d, bool symbols)
{
    const char *path = demo_file("demo.cmt", d);
    ck_assert_int_eq(cmt_report_read(path, p), 0);
    if (symbols)
        fake_symbols(p);
}

/* Renders procs as main.c would (suppressions applied); returns the output. */
static char *render(struct cmt_process *procs, size_t n, bool json,
                    const struct cmt_render_opts *o, const struct cmt_suppressions *supp)
{
    struct cmt_view v;
    ck_assert_int_eq(cmt_view_build(&v, procs, n), 0);
    struct cmt_suppressions none = { 0 };
    for (size_t i = 0; i < n; i++)
        cmt_suppressions_apply(supp ? supp : &none, &procs[i]);
    if (v.has_total)
        cmt_suppressions_apply(supp ? supp : &none, &v.total);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    int rc = (json ? cmt_render_json : cmt_render_text)(f, &v, o);
    fclose(f);
    cmt_view_free(&v);
    ck_assert_int_eq(rc, 0);
    return out;
}

/* ---- golden files -------------------------------------------------------------------- */

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
    if (strcmp(want, got) != 0) {
        const char *a = want, *b = got;
        int line = 1;
        while (*a && *a == *b) {
            line += *a == '\n';
            a++;
            b++;
        }
        while (a > want && a[-1] != '\n') {
            a--;
            b--;
        }
        ck_abort_msg("output differs from %s at line %d:\nexpected: %.*s\ngot:      %.*s\n"
                     "(CMT_UPDATE_GOLDEN=1 make check accepts the new output)", path, line,
                     (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    }
    free(want);
}

/* Fails when a line of text is wider than width columns (UTF-8 characters count one). */
static void assert_width(const char *text, size_t width)
{
    int lineno = 1;
    for (const char *line = text; *line; lineno++) {
        size_t n = 0;
        const char *p = line;
        for (; *p && *p != '\n'; p++)
            n += ((unsigned char)*p & 0xc0) != 0x80;
        ck_assert_msg(n <= width, "line %d is %zu columns wide, more than %zu: %.*s", lineno,
                      n, width, (int)(p - line), line);
        line = *p ? p + 1 : p;
    }
}

/* Runs the JSON Schema validator (Debian's python3-jsonschema) on json. */
static void validate_json(const char *json)
{
    const char *doc = cmt_scratch_path("doc.json");
    cmt_write_text(doc, json);
    char *const argv[] = {
        PYTHON, "-c",
        "import json, sys, jsonschema\n"
        "schema = json.load(open(sys.argv[1]))\n"
        "jsonschema.Draft202012Validator.check_schema(schema)\n"
        "jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))\n"
        "print('valid')\n",
        SCHEMA, (char *)doc, NULL,
    };
    struct cmt_run r;
    cmt_run(&r, 0, argv, NULL);
    ck_assert_msg(r.exit_code == 0 && strcmp(r.out, "valid\n") == 0,
                  "the JSON does not match %s (is python3-jsonschema installed?):\n%s", SCHEMA,
                  r.err);
    cmt_run_free(&r);
}

/* ---- running the programs ------------------------------------------------------------ */

/* The environment every run of the tools gets: no terminal width, no colour preference,
 * no debuginfod (it would go to the network), the library just built. */
static char *const base_env[] = {
    "COLUMNS=", "NO_COLOR=", "DEBUGINFOD_URLS=", "CYMEMTRACK_OUTPUT=",
    "CYMEMTRACK_LIBRARY=" CMT_TEST_LIBRARY, NULL,
};

static void run_tool(struct cmt_run *r, char *const extra_env[], const char *prog,
                     const char *const *args)
{
    const char *argv[64] = { prog };
    size_t n = 1;
    for (; args && args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    char *env[32];
    size_t e = 0;
    for (size_t i = 0; base_env[i]; i++)
        env[e++] = base_env[i];
    for (size_t i = 0; extra_env && extra_env[i]; i++)
        env[e++] = extra_env[i];
    env[e] = NULL;
    cmt_run(r, 0, (char *const *)argv, env);
}

#define REPORT_RUN(r, env, ...) run_tool((r), (env), REPORT, (const char *[]){ __VA_ARGS__, NULL })
#define WRAP_RUN(r, env, ...) run_tool((r), (env), WRAPPER, (const char *[]){ __VA_ARGS__, NULL })

static int count_substr(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- the renderers, in process ------------------------------------------------------- */

START_TEST(text_golden)
{
    struct cmt_process p;
    read_demo(&p, &demo_default, true);
    struct cmt_render_opts o = { .top = 10 };
    char *out = render(&p, 1, false, &o, NULL);
    golden("demo.txt", out);
    free(out);
    cmt_process_free(&p);
}
END_TEST

START_TEST(text_narrow_golden)
{
    struct cmt_process p;
    read_demo(&p, &demo_default, true);
    struct cmt_render_opts o = { .top = 10, .width = 60 };
    char *out = render(&p, 1, false, &o, NULL);
    golden("demo-narrow.txt", out);
    assert_width(out, 60);
    free(out);
    cmt_process_free(&p);
}
END_TEST

/* At each width from 40 to 160 no line is wider, except where nothing can be shortened. */
START_TEST(text_fits_every_width)
{
    struct cmt_process p;
    read_demo(&p, &demo_default, true);
    for (unsigned w = 40; w <= 160; w += 3) {
        struct cmt_render_opts o = { .top = 10, .width = w };
        char *out = render(&p, 1, false, &o, NULL);
        assert_width(out, w);
        free(out);
    }
    cmt_process_free(&p);
}
END_TEST

/* A narrow terminal first loses the columns that are 0 in every scope, not the table. */
START_TEST(text_drops_zero_columns)
{
    struct cmt_rb b;
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    cmt_rb_process(&b, 7, 1, 10, 20, "/bin/true", 1, (const char *const[]){ "true" });
    const struct cmt_rb_scope global = { 1, 240, 79258, 72, 45466, 0, 0, 0, 66048 };
    cmt_rb_scope(&b, 0, CMT_REPORT_KIND_GLOBAL, "global", &global);
    cmt_rb_leak(&b, 0, 0, 168, 33792, 0, 0, 0, NULL);
    const uint64_t totals[9] = { 240, 79258, 72, 168, 33792, 66048, 0, 0, 0 };
    cmt_rb_totals(&b, totals);
    cmt_rb_end_rec(&b, CMT_END_EXIT, 0, "");
    ck_assert_int_eq(cmt_rb_write(&b, cmt_scratch_path("true.cmt"), SIZE_MAX), 0);
    cmt_rb_free(&b);
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(cmt_scratch_path("true.cmt"), &p), 0);
    struct cmt_render_opts o = { .top = 10, .width = 80 };
    char *out = render(&p, 1, false, &o, NULL);
    ck_assert_msg(strstr(out, "\n  scope   kind    instances  blocks     bytes  frees  blocks"
                              "     bytes\n"
                              "  global  global          1     240  77.4 KiB     72     168"
                              "  33.0 KiB\n"
                              "  (no scope has outlived or bulk-freed blocks)\n"), "got:\n%s", out);
    assert_width(out, 80);
    free(out);
    o.width = 0;
    out = render(&p, 1, false, &o, NULL);
    ck_assert_ptr_nonnull(strstr(out, "  outlived  blocks  bytes\n"));
    free(out);
    cmt_process_free(&p);
}
END_TEST

START_TEST(json_golden_and_schema)
{
    struct cmt_process p;
    read_demo(&p, &demo_default, true);
    struct cmt_render_opts o = { 0 };
    char *out = render(&p, 1, true, &o, NULL);
    golden("demo.json", out);
    validate_json(out);
    free(out);
    cmt_process_free(&p);
}
END_TEST

START_TEST(colour_only_when_asked)
{
    struct cmt_process p;
    read_demo(&p, &demo_default, true);
    struct cmt_render_opts plain = { .top = 10 }, colour = { .top = 10, .color = true };
    char *a = render(&p, 1, false, &plain, NULL);
    char *b = render(&p, 1, false, &colour, NULL);
    ck_assert_ptr_null(strchr(a, '\033'));
    ck_assert_ptr_nonnull(strstr(b, "\033[31m"));
    ck_assert_ptr_nonnull(strstr(b, "\033[1m"));
    /* Colour never changes the layout: without the escapes it is the plain text. */
    char *w = b;
    for (char *r = b; *r;) {
        if (*r == '\033')
            r += strcspn(r, "m") + 1;
        else
            *w++ = *r++;
    }
    *w = '\0';
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    cmt_process_free(&p);
}
END_TEST

START_TEST(human_sizes)
{
    static const struct { uint64_t in; const char *out; } cases[] = {
        { 0, "0 B" }, { 1, "1 B" }, { 1023, "1023 B" }, { 1024, "1.0 KiB" },
        { 1536, "1.5 KiB" }, { 10 * 1024 + 51, "10.0 KiB" }, { 1048575, "1.0 MiB" },
        { 1048576, "1.0 MiB" }, { 5u << 20, "5.0 MiB" }, { (3ull << 30) + (1ull << 29),
        "3.5 GiB" }, { 1ull << 40, "1.0 TiB" }, { UINT64_MAX, "16.0 EiB" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        ck_assert_str_eq(cmt_human_size(cases[i].in, buf), cases[i].out);
    }
}
END_TEST

START_TEST(every_way_of_ending)
{
    static const struct { uint8_t how; int32_t code; const char *text, *json; } cases[] = {
        { CMT_END_EXIT, 3, "exited with status 3", "\"ended\": \"exit\",\n    \"exit_code\": 3" },
        { CMT_END_SIGNAL, 11, "killed by signal 11 (SIGSEGV)",
          "\"ended\": \"signal\",\n    \"exit_code\": 11" },
        { CMT_END_ABORT, 6, "aborted (SIGABRT)", "\"ended\": \"abort\",\n    \"exit_code\": 6" },
        { CMT_END_EXEC, 0, "replaced by exec", "\"ended\": \"exec\",\n    \"exit_code\": null" },
        { CMT_END_UNDERSCORE_EXIT, 4, "_exit with status 4",
          "\"ended\": \"_exit\",\n    \"exit_code\": 4" },
        { CMT_END_RUNNING, 0, "killed (incomplete)",
          "\"ended\": \"killed\",\n    \"exit_code\": null,\n    \"complete\": false" },
        { CMT_END_SNAPSHOT, 0, "still running (snapshot)",
          "\"ended\": \"snapshot\",\n    \"exit_code\": null,\n    \"complete\": true" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct demo d = demo_default;
        d.how = cases[i].how;
        d.code = cases[i].code;
        d.label = d.how == CMT_END_SNAPSHOT ? "after warm-up" : "";
        struct cmt_process p;
        read_demo(&p, &d, false);
        struct cmt_render_opts o = { .top = 10 };
        char *text = render(&p, 1, false, &o, NULL);
        char *json = render(&p, 1, true, &o, NULL);
        ck_assert_msg(strstr(text, cases[i].text), "no \"%s\" in:\n%s", cases[i].text, text);
        ck_assert_msg(strstr(json, cases[i].json), "no '%s' in:\n%s", cases[i].json, json);
        /* Only an exit makes the live blocks leaks; the rest were merely still in use. */
        bool final = d.how == CMT_END_EXIT || d.how == CMT_END_UNDERSCORE_EXIT;
        ck_assert_int_eq(strstr(text, "leaks in scope parser") != NULL, final);
        ck_assert_int_eq(strstr(text, "still live in scope parser") != NULL, !final);
        if (d.how == CMT_END_SNAPSHOT)
            ck_assert_ptr_nonnull(strstr(text, "  snapshot  after warm-up\n"));
        validate_json(json);
        free(text);
        free(json);
        cmt_process_free(&p);
    }
}
END_TEST

/* Strings from a report are whatever bytes a program had: JSON stays valid UTF-8 with
 * every control character escaped, and text never passes an escape sequence through. */
START_TEST(strings_are_escaped)
{
    static const char *const argv[] = { "demo", "quote\" back\\slash",
                                         "nl\n tab\t esc\033[31m del\x7f",
                                         "bad \xff\xfe utf8 \xc3\xa9t\xc3\xa9 \xe2\x82\xac" };
    struct demo d = demo_default;
    d.argv = argv;
    d.argc = 4;
    d.exe = "/bin/sp\xe2\x82\xac" "cial\x01";
    struct cmt_process p;
    read_demo(&p, &d, false);
    struct cmt_render_opts o = { .top = 10 };
    char *json = render(&p, 1, true, &o, NULL);
    char *text = render(&p, 1, false, &o, NULL);
    ck_assert_ptr_nonnull(strstr(json, "\"exe\": \"/bin/sp\xe2\x82\xac" "cial\\u0001\""));
    ck_assert_ptr_nonnull(strstr(json,
        "\"argv\": [\"demo\", \"quote\\\" back\\\\slash\", "
        "\"nl\\n tab\\t esc\\u001b[31m del\\u007f\", "
        "\"bad \\ufffd\\ufffd utf8 \xc3\xa9t\xc3\xa9 \xe2\x82\xac\"]"));
    validate_json(json);
    ck_assert_ptr_null(strchr(text, '\033'));
    ck_assert_ptr_nonnull(strstr(text, "'nl\\x0a tab\\x09 esc\\x1b[31m del\\x7f'"));
    free(json);
    free(text);
    cmt_process_free(&p);
}
END_TEST

/* ---- filters and suppressions -------------------------------------------------------- */

START_TEST(patterns_match_as_lsan_does)
{
    static const struct { const char *pat, *text; bool match; } cases[] = {
        { "make_node", "make_node", true }, { "node", "make_node", true },
        { "^make", "make_node", true }, { "^node", "make_node", false },
        { "node$", "make_node", true }, { "make$", "make_node", false },
        { "^make_node$", "make_node", true }, { "^make_nod$", "make_node", false },
        { "m*e", "make_node", true }, { "^m?ke_*e$", "make_node", true },
        { "^m?ke_*x$", "make_node", false }, { "libc.so", "/lib/x86_64/libc.so.6", true },
        { "*", "", true }, { "a", "", false }, { "^*a*b*c$", "xaxbxc", true },
        { "a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(cmt_pattern_match(cases[i].pat, cases[i].text) == cases[i].match,
                      "pattern '%s' on '%s': expected %s", cases[i].pat, cases[i].text,
                      cases[i].match ? "a match" : "no match");
    ck_assert(cmt_glob_match("pars*", "parser"));
    ck_assert(!cmt_glob_match("pars", "parser"));
}
END_TEST

START_TEST(suppression_files_parse)
{
    struct cmt_suppressions s = { 0 };
    ck_assert_int_eq(cmt_suppressions_parse(&s, "x.supp",
        "# a comment\n\n  leak:make_node  \nscope:io\r\n\tleak:^src/parser.c$\n"), 0);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_str_eq(s.v[0].pattern, "make_node");
    ck_assert_int_eq(s.v[0].type, CMT_SUPP_LEAK);
    ck_assert_uint_eq(s.v[0].line, 3);
    ck_assert_str_eq(s.v[1].pattern, "io");
    ck_assert_int_eq(s.v[1].type, CMT_SUPP_SCOPE);
    ck_assert_str_eq(s.v[2].pattern, "^src/parser.c$");
    ck_assert_uint_eq(s.v[2].line, 5);
    cmt_suppressions_free(&s);

    static const char *const bad[] = { "leak:\n", "leak\n", "race:x\n", "Leak:x\n",
                                       "scope:\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cmt_diag_state.fd = -1;
        unsigned errors = cmt_diag_state.errors;
        ck_assert_int_eq(cmt_suppressions_parse(&s, "x.supp", bad[i]), -1);
        ck_assert_uint_eq(cmt_diag_state.errors, errors + 1);
        cmt_suppressions_free(&s);
    }
}
END_TEST

/* leak: matches a frame's function, file or module; scope: a whole scope. */
START_TEST(suppressions_hide_their_leaks)
{
    static const struct { const char *rules; size_t hidden; const char *absent, *present; }
        cases[] = {
            { "leak:make_node\n", 1, "make_node", "leaks in scope global: 2 blocks, 2.0 KiB in 1 site" },
            { "leak:^src/parser.c$\n", 1, NULL, "leaks in scope parser: 1 block, 16 B in 1 site" },
            { "leak:libc.so.6\n", 2, "make_node", "leaks in scope parser: 1 block, 16 B in 1 site" },
            { "leak:^release$\n", 1, "leaks in scope io", "leaks in scope parser: 11 blocks" },
            { "scope:pars*\n", 2, "leaks in scope parser", "leaks in scope io" },
            { "leak:nothing-matches\n", 0, "suppressed", "leaks in scope parser: 11 blocks" },
        };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cmt_process p;
        read_demo(&p, &demo_default, true);
        struct cmt_suppressions s = { 0 };
        ck_assert_int_eq(cmt_suppressions_parse(&s, "t.supp", cases[i].rules), 0);
        struct cmt_render_opts o = { .top = 10 };
        char *text = render(&p, 1, false, &o, &s);
        size_t hidden = 0;
        for (size_t j = 0; j < p.nleaks; j++)
            hidden += p.leaks[j].suppressed;
        ck_assert_msg(hidden == cases[i].hidden, "%s: expected %zu suppressed sites, got %zu",
                      cases[i].rules, cases[i].hidden, hidden);
        if (cases[i].absent)
            ck_assert_msg(!strstr(text, cases[i].absent), "%s: \"%s\" still shown:\n%s",
                          cases[i].rules, cases[i].absent, text);
        ck_assert_msg(strstr(text, cases[i].present), "%s: no \"%s\" in:\n%s",
                      cases[i].rules, cases[i].present, text);
        if (hidden) {
            char want[64];
            snprintf(want, sizeof want, "suppressed   %zu leak site", hidden);
            ck_assert_msg(strstr(text, want), "no \"%s\" in:\n%s", want, text);
        }
        free(text);
        cmt_suppressions_free(&s);
        cmt_process_free(&p);
    }
}
END_TEST

START_TEST(filters_scope_top_min_bytes)
{
    struct cmt_process p;
    read_demo(&p, &demo_default, true);
    const char *only[] = { "parser" };
    struct cmt_render_opts o = { .top = 10, .scopes = only, .nscopes = 1 };
    char *text = render(&p, 1, false, &o, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\n  parser "));
    ck_assert_ptr_null(strstr(text, "\n  global "));
    ck_assert_ptr_null(strstr(text, "leaks in scope global"));
    ck_assert_int_eq(count_substr(text, "#0 "), 2 + 3);   /* 2 leak sites, 3 bad frees */
    free(text);
    char *json = render(&p, 1, true, &o, NULL);
    ck_assert_int_eq(count_substr(json, "\"name\": "), 1);
    free(json);

    struct cmt_render_opts top1 = { .top = 1 };
    text = render(&p, 1, false, &top1, NULL);
    ck_assert_ptr_nonnull(strstr(text, "leaks in scope parser: 11 blocks, 4.9 KiB in 2 sites "
                                       "(the largest 1 shown)"));
    ck_assert_ptr_nonnull(strstr(text, "parse_token"));
    ck_assert_ptr_null(strstr(text, "0x9999"));
    free(text);

    struct cmt_render_opts big = { .top = 10, .min_bytes = 1024 };
    text = render(&p, 1, false, &big, NULL);
    ck_assert_ptr_null(strstr(text, "make_node"));          /* 96 bytes */
    ck_assert_ptr_nonnull(strstr(text, "release"));         /* exactly 1024 */
    ck_assert_ptr_nonnull(strstr(text, "hidden       2 leak sites under 1024 bytes"));
    free(text);
    json = render(&p, 1, true, &big, NULL);
    ck_assert_int_eq(count_substr(json, "\"blocks\": "), 3);
    free(json);
    cmt_process_free(&p);
}
END_TEST

/* ---- merging ------------------------------------------------------------------------- */

/* sh (100) forks 101 and 102; 101 execs sort; 102 is killed by SIGSEGV; a snapshot of 100
 * precedes its final report. */
static size_t family_files(const char **paths)
{
    static const char *const sh_argv[] = { "sh", "-c", "sort data | demo" };
    static const char *const sort_argv[] = { "sort", "data" };
    struct demo sh = demo_default, snap, fork1, sort, fork2;
    sh.pid = 100, sh.ppid = 1, sh.start = 1000, sh.exe = "/bin/sh", sh.argv = sh_argv;
    sh.scale = 1;
    snap = sh;
    snap.how = CMT_END_SNAPSHOT, snap.label = "half-way", snap.scale = 7;
    fork1 = sh;
    fork1.pid = 101, fork1.ppid = 100, fork1.start = 2000, fork1.how = CMT_END_EXEC;
    fork1.scale = 2;
    sort = fork1;
    sort.start = 3000, sort.exe = "/usr/bin/sort", sort.argv = sort_argv, sort.argc = 2;
    sort.how = CMT_END_EXIT, sort.scale = 3;
    fork2 = demo_default;
    fork2.pid = 102, fork2.ppid = 100, fork2.start = 2500, fork2.how = CMT_END_SIGNAL;
    fork2.code = SIGSEGV, fork2.scale = 5;
    /* Written in an order unlike the tree's. */
    paths[0] = strdup(demo_file("sort.cmt", &sort));
    paths[1] = strdup(demo_file("demo.cmt", &fork2));
    paths[2] = strdup(demo_file("sh.cmt", &sh));
    paths[3] = strdup(demo_file("sh-exec.cmt", &fork1));
    /* A snapshot is written before the final report, whose write time is later. */
    struct cmt_rb b;
    demo_build(&b, &snap);
    cmt_rb_patch64(&b, CMT_REPORT_HEADER_SIZE + 8 + 16, snap.start + 100);
    ck_assert_int_eq(cmt_rb_write(&b, cmt_scratch_path("sh-snap.cmt"), SIZE_MAX), 0);
    cmt_rb_free(&b);
    paths[4] = strdup(cmt_scratch_path("sh-snap.cmt"));
    return 5;
}

START_TEST(merge_tree_and_total)
{
    const char *paths[5];
    size_t n = family_files(paths);
    struct cmt_process procs[5];
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(cmt_report_read(paths[i], &procs[i]), 0);
    struct cmt_view v;
    ck_assert_int_eq(cmt_view_build(&v, procs, n), 0);
    /* 100 (snapshot), 100, 101 (exec'd into sort), sort, 102. */
    ck_assert_uint_eq(v.n, 5);
    static const struct { uint32_t pid; uint8_t how; unsigned depth; int rel; bool sup; }
        want[] = {
            { 100, CMT_END_SNAPSHOT, 0, CMT_REL_ROOT, true },
            { 100, CMT_END_EXIT, 0, CMT_REL_ROOT, false },
            { 101, CMT_END_EXEC, 1, CMT_REL_FORK, false },
            { 101, CMT_END_EXIT, 2, CMT_REL_EXEC, false },
            { 102, CMT_END_SIGNAL, 1, CMT_REL_FORK, false },
        };
    for (size_t i = 0; i < 5; i++) {
        const struct cmt_view_entry *e = &v.entries[i];
        ck_assert_msg(e->p->pid == want[i].pid && e->p->how == want[i].how &&
                          e->depth == want[i].depth && (int)e->rel == want[i].rel &&
                          e->superseded == want[i].sup,
                      "entry %zu: expected pid %u how %d depth %u rel %d superseded %d, got "
                      "pid %u how %d depth %u rel %d superseded %d", i, want[i].pid,
                      want[i].how, want[i].depth, want[i].rel, want[i].sup, e->p->pid,
                      e->p->how, e->depth, e->rel, e->superseded);
    }
    /* The snapshot is not counted: scales 1 + 2 + 3 + 5. */
    ck_assert(v.has_total);
    ck_assert_uint_eq(v.total_processes, 4);
    ck_assert_uint_eq(v.total.totals.allocations, 1540 * 11);
    ck_assert_uint_eq(v.total.totals.peak_live_bytes, 350000);
    ck_assert_uint_eq(v.total.nscopes, 3);
    ck_assert_uint_eq(v.total.nstacks, 4);
    ck_assert_uint_eq(v.total.nleaks, 5);
    const struct cmt_scope *parser = &v.total.scopes[1];
    ck_assert_str_eq(parser->name, "parser");
    ck_assert_uint_eq(parser->instances, 48);
    /* Leaks only from the processes that exited: sh (scale 1) and sort (3). */
    ck_assert_uint_eq(parser->leaked_blocks, 10 * 4 + 2);
    cmt_view_free(&v);
    for (size_t i = 0; i < n; i++) {
        cmt_process_free(&procs[i]);
        free((void *)paths[i]);
    }
}
END_TEST

START_TEST(merged_golden_through_the_program)
{
    const char *paths[5];
    family_files(paths);
    struct cmt_run r;
    REPORT_RUN(&r, NULL, paths[0], paths[1], paths[2], paths[3], paths[4]);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_str_eq(r.err, "");
    golden("family.txt", r.out);
    cmt_run_free(&r);
    REPORT_RUN(&r, NULL, "--json", paths[0], paths[1], paths[2], paths[3], paths[4]);
    ck_assert_int_eq(r.exit_code, 0);
    golden("family.json", r.out);
    validate_json(r.out);
    cmt_run_free(&r);
    for (size_t i = 0; i < 5; i++)
        free((void *)paths[i]);
}
END_TEST

/* ---- the program: options and exit statuses ------------------------------------------ */

START_TEST(exit_statuses)
{
    char *demo = strdup(demo_file("demo.cmt", &demo_default));
    struct demo d = demo_default;
    d.how = CMT_END_EXEC;
    char *exec = strdup(demo_file("exec.cmt", &d));
    cmt_write_text(cmt_scratch_path("all.supp"), "leak:bin/demo\nscope:global\nscope:parser\n");
    cmt_write_text(cmt_scratch_path("bad.supp"), "# fine\nleak:ok\nleek:typo\n");
    cmt_write_text(cmt_scratch_path("corrupt.cmt"), "CYMEMTRK but not really a report at all");
    static const struct { int status; const char *args[6]; const char *err; } cases[] = {
        { 0, { "@demo" }, "" },
        { 0, { "--json", "@demo" }, "" },
        { 1, { "--fail-on-leak", "@demo" }, "" },
        { 0, { "--fail-on-leak", "--suppressions", "@all.supp", "@demo" }, "" },
        { 0, { "--fail-on-leak", "--min-bytes", "1M", "@demo" }, "" },
        { 1, { "--fail-on-leak", "--scope", "io", "@demo" }, "" },
        { 0, { "--fail-on-leak", "--scope", "nothing", "@demo" }, "" },
        /* The leaks of a process image replaced by exec are not leaks. */
        { 0, { "--fail-on-leak", "@exec" }, "" },
        { 2, { NULL }, "cymem-report: error: no report file given\n" },
        { 2, { "--frobnicate", "@demo" }, "cymem-report: error: unknown option --frobnicate\n" },
        { 2, { "--top", "many", "@demo" }, "cymem-report: error: --top many: expected" },
        { 2, { "--min-bytes", "-1", "@demo" }, "cymem-report: error: --min-bytes -1: " },
        { 2, { "--top" }, "cymem-report: error: --top: needs a value\n" },
        { 2, { "--suppressions", "@bad.supp", "@demo" }, "bad.supp:3: expected leak:PATTERN" },
        { 2, { "--suppressions", "@missing.supp", "@demo" }, "cannot open suppressions file" },
        { 2, { "@missing.cmt" }, "cymem-report: error: " },
        { 2, { "@corrupt.cmt" }, "corrupt.cmt: offset " },
        /* A bad file among good ones: the good ones are shown, the status says it. */
        { 2, { "@demo", "@corrupt.cmt" }, "corrupt.cmt: offset " },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[8] = { 0 };
        char desc[256] = "";
        for (size_t j = 0; cases[i].args[j]; j++) {
            const char *a = cases[i].args[j];
            args[j] = !strcmp(a, "@demo") ? demo : !strcmp(a, "@exec") ? exec
                    : a[0] == '@' ? cmt_scratch_path(a + 1) : a;
            strcat(desc, " ");
            strcat(desc, a);
        }
        struct cmt_run r;
        run_tool(&r, NULL, REPORT, args);
        ck_assert_msg(r.exit_code == cases[i].status, "cymem-report%s: expected status %d, "
                      "got %d; stderr:\n%s", desc, cases[i].status, r.exit_code, r.err);
        if (cases[i].err[0])
            ck_assert_msg(strstr(r.err, cases[i].err), "cymem-report%s: no \"%s\" in "
                          "stderr:\n%s", desc, cases[i].err, r.err);
        else
            ck_assert_msg(r.err[0] == '\0', "cymem-report%s: unexpected stderr:\n%s", desc,
                          r.err);
        if (i == sizeof cases / sizeof cases[0] - 1)
            ck_assert_ptr_nonnull(strstr(r.out, "== process 4242: " DEMO_EXE " =="));
        cmt_run_free(&r);
    }
    free(demo);
    free(exec);
}
END_TEST

START_TEST(help_and_version)
{
    struct cmt_run r;
    REPORT_RUN(&r, NULL, "--help");
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage: cymem-report [OPTIONS] FILE..."));
    ck_assert_ptr_nonnull(strstr(r.out, "--fail-on-leak"));
    cmt_run_free(&r);
    REPORT_RUN(&r, NULL, "--version");
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "cymem-report (cymemtrack) " PACKAGE_VERSION "\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "symbolization: "));
    cmt_run_free(&r);
}
END_TEST

/* A file cut anywhere shows what could be read, with one warning and status 0. */
START_TEST(truncated_files_warn)
{
    struct cmt_rb b;
    size_t before_totals = demo_build(&b, &demo_default);
    size_t cuts[] = { before_totals, b.len - 3, before_totals - 5 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *path = cmt_scratch_path("cut.cmt");
        ck_assert_int_eq(cmt_rb_write(&b, path, cuts[i]), 0);
        struct cmt_run r;
        REPORT_RUN(&r, NULL, "--fail-on-leak", path);
        ck_assert_msg(r.exit_code == 0, "cut at %zu: status %d: %s", cuts[i], r.exit_code,
                      r.err);
        ck_assert_int_eq(cmt_count_lines(r.err, "cymem-report: warning: "), 1);
        ck_assert_ptr_nonnull(strstr(r.err, "cut.cmt: offset "));
        ck_assert_ptr_nonnull(strstr(r.out, "  ended     killed (incomplete)\n"));
        ck_assert_ptr_nonnull(strstr(r.out, "  warning   the report was cut short"));
        cmt_run_free(&r);
        REPORT_RUN(&r, NULL, "--json", path);
        ck_assert_int_eq(r.exit_code, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "\"complete\": false"));
        if (cuts[i] == before_totals)
            ck_assert_ptr_nonnull(strstr(r.out, "\"allocations\": null"));
        validate_json(r.out);
        cmt_run_free(&r);
    }
    cmt_rb_free(&b);
}
END_TEST

/* Width: COLUMNS first, then the terminal's; colour on a terminal unless NO_COLOR. */
static char *run_on_pty(const char *file, unsigned short cols, const char *no_color)
{
    int master;
    struct winsize ws = { .ws_row = 50, .ws_col = cols };
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsetenv("COLUMNS");
        if (no_color)
            setenv("NO_COLOR", no_color, 1);
        else
            unsetenv("NO_COLOR");
        execl(REPORT, REPORT, file, (char *)NULL);
        _exit(127);
    }
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    char buf[4096];
    ssize_t n;
    while ((n = read(master, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            fwrite(buf, 1, (size_t)n, f);
    fclose(f);
    close(master);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The terminal turns \n into \r\n. */
    char *w = out;
    for (char *r = out; *r; r++)
        if (*r != '\r')
            *w++ = *r;
    *w = '\0';
    return out;
}

START_TEST(terminal_width_and_colour)
{
    const char *demo = demo_file("demo.cmt", &demo_default);
    char *out = run_on_pty(demo, 64, NULL);
    ck_assert_ptr_nonnull(strstr(out, "\033[31m"));
    char *w = out;
    for (char *r = out; *r;) {
        if (*r == '\033')
            r += strcspn(r, "m") + 1;
        else
            *w++ = *r++;
    }
    *w = '\0';
    assert_width(out, 64);
    free(out);
    out = run_on_pty(demo, 200, "1");
    ck_assert_ptr_null(strchr(out, '\033'));
    ck_assert_ptr_nonnull(strstr(out, "  instances  blocks"));   /* the table, not cards */
    free(out);

    struct cmt_run r;
    char *const narrow[] = { "COLUMNS=50", NULL };
    REPORT_RUN(&r, narrow, demo);
    assert_width(r.out, 50);
    ck_assert_ptr_null(strchr(r.out, '\033'));
    cmt_run_free(&r);
}
END_TEST

/* ---- symbolization ------------------------------------------------------------------- */

struct site { char name[64]; uint64_t pc, start, end, off; char path[PATH_MAX]; };

/* Runs cli-sym and reads the return addresses it prints. */
static void sites(struct site s[2])
{
    char *const argv[] = { (char *)cmt_test_prog("cli-sym"), NULL };
    struct cmt_run r;
    cmt_run(&r, 0, argv, NULL);
    ck_assert_int_eq(r.exit_code, 0);
    const char *line = r.out;
    for (int i = 0; i < 2; i++) {
        int got = sscanf(line, "%63s %lx %lx %lx %lx %4095s", s[i].name, &s[i].pc,
                         &s[i].start, &s[i].end, &s[i].off, s[i].path);
        ck_assert_msg(got == 6, "cli-sym printed: %s", r.out);
        line = strchr(line, '\n') + 1;
    }
    cmt_run_free(&r);
}

/* The line of the source marked "CALL-SITE name" or "LEAK-SITE name". */
static int marked_line(const char *source, const char *name)
{
    char *text = cmt_read_text(source);
    ck_assert_ptr_nonnull(text);
    char mark[128];
    snprintf(mark, sizeof mark, "-SITE %s */", name);
    char *at = strstr(text, mark);
    ck_assert_ptr_nonnull(at);
    int line = 1;
    for (char *p = text; p < at; p++)
        line += *p == '\n';
    free(text);
    return line;
}

/* A one-frame process whose frame is site s, in module path (with build_id). */
static void site_process(struct cmt_process *p, const struct site *s, const char *path,
                         const char *build_id, size_t build_id_len)
{
    memset(p, 0, sizeof *p);
    p->exe = strdup(path);
    p->label = strdup("");
    p->argv = calloc(1, sizeof *p->argv);
    p->modules = calloc(1, sizeof *p->modules);
    p->modules[0] = (struct cmt_module){ s->start, s->end, s->off, strdup(path), NULL, 0 };
    if (build_id_len) {
        p->modules[0].build_id = malloc(build_id_len);
        memcpy(p->modules[0].build_id, build_id, build_id_len);
        p->modules[0].build_id_len = build_id_len;
    }
    p->nmodules = 1;
    p->stacks = calloc(1, sizeof *p->stacks);
    p->stacks[0].id = 1;
    p->stacks[0].depth = 1;
    p->stacks[0].frames = calloc(1, sizeof *p->stacks[0].frames);
    p->stacks[0].frames[0] = (struct cmt_frame){ .pc = s->pc, .module = &p->modules[0],
                                                 .offset = s->pc - s->start + s->off };
    p->nstacks = 1;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

#ifdef HAVE_LIBDW
static void shell(const char *cmd)
{
    char *const argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
    struct cmt_run r;
    cmt_run(&r, 0, argv, NULL);
    ck_assert_msg(r.exit_code == 0, "%s: %s", cmd, r.err);
    cmt_run_free(&r);
}
#endif

START_TEST(symbolize_function_file_line)
{
    struct site s[2];
    sites(s);
    const char *source = CMT_TEST_SRCDIR "/tests/progs/cli-sym.c";
    struct cmt_symbolizer *sym = cmt_symbolizer_new();
    for (int i = 0; i < 2; i++) {
        struct cmt_process p;
        site_process(&p, &s[i], s[i].path, NULL, 0);
        cmt_symbolize(sym, &p);
        const struct cmt_frame *f = &p.stacks[0].frames[0];
#ifdef HAVE_LIBDW
        /* static_caller is static: only .symtab names it. */
        ck_assert_pstr_eq(f->function, s[i].name);
        ck_assert_msg(f->file && ends_with(f->file, "tests/progs/cli-sym.c"), "file %s",
                      f->file);
        ck_assert_int_eq(f->line, marked_line(source, s[i].name));
#else
        ck_assert_ptr_null(f->function);
#endif
        cmt_process_free(&p);
    }
    cmt_symbolizer_free(sym);
}
END_TEST

#ifdef HAVE_LIBDW
/* A stripped file finds its debug information in a separate file (the debuglink here; the
 * build-id path goes through the same elfutils search), static functions included. */
START_TEST(symbolize_separate_debug_file)
{
    struct site s[2];
    sites(s);
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cp '%s' prog && objcopy --only-keep-debug prog prog.debug && "
             "objcopy --strip-all --add-gnu-debuglink=prog.debug prog stripped && "
             "objcopy --strip-debug prog nodwarf", cmt_scratch_dir(), s[0].path);
    shell(cmd);
    const char *source = CMT_TEST_SRCDIR "/tests/progs/cli-sym.c";
    struct cmt_symbolizer *sym = cmt_symbolizer_new();
    for (int i = 0; i < 2; i++) {
        struct cmt_process p;
        site_process(&p, &s[i], cmt_scratch_path("stripped"), NULL, 0);
        cmt_symbolize(sym, &p);
        const struct cmt_frame *f = &p.stacks[0].frames[0];
        ck_assert_pstr_eq(f->function, s[i].name);
        ck_assert_msg(f->file && ends_with(f->file, "tests/progs/cli-sym.c"), "file %s",
                      f->file);
        ck_assert_int_eq(f->line, marked_line(source, s[i].name));
        cmt_process_free(&p);

        /* No DWARF, a full symbol table: the name without a line. */
        site_process(&p, &s[i], cmt_scratch_path("nodwarf"), NULL, 0);
        cmt_symbolize(sym, &p);
        ck_assert_pstr_eq(p.stacks[0].frames[0].function, s[i].name);
        ck_assert_ptr_null(p.stacks[0].frames[0].file);
        ck_assert_int_eq(p.stacks[0].frames[0].line, 0);
        cmt_process_free(&p);
    }
    cmt_symbolizer_free(sym);
}
END_TEST

/* A file rebuilt since the run is not trusted: module+offset, and one warning. */
START_TEST(symbolize_refuses_another_build)
{
    struct site s[2];
    sites(s);
    cmt_diag_state.fd = -1;
    unsigned warnings = cmt_diag_state.warnings;
    struct cmt_symbolizer *sym = cmt_symbolizer_new();
    for (int i = 0; i < 2; i++) {
        struct cmt_process p;
        site_process(&p, &s[i], s[i].path, "\x01\x02\x03\x04", 4);
        cmt_symbolize(sym, &p);
        ck_assert_ptr_null(p.stacks[0].frames[0].function);
        ck_assert_ptr_null(p.stacks[0].frames[0].file);
        cmt_process_free(&p);
    }
    cmt_symbolizer_free(sym);
    ck_assert_uint_eq(cmt_diag_state.warnings, warnings + 1);
}
END_TEST
#endif

/* ---- the wrapper --------------------------------------------------------------------- */

START_TEST(wrapper_statuses)
{
    cmt_write_text(cmt_scratch_path("not-executable"), "#!/bin/sh\nexit 0\n");
    struct cmt_run r;
    WRAP_RUN(&r, NULL, "cmt-no-such-command");
    ck_assert_int_eq(r.exit_code, 127);
    ck_assert_str_eq(r.err, "cymemtrack: cmt-no-such-command: command not found\n");
    cmt_run_free(&r);
    WRAP_RUN(&r, NULL, cmt_scratch_path("not-executable"));
    ck_assert_int_eq(r.exit_code, 126);
    ck_assert_ptr_nonnull(strstr(r.err, "not-executable: Permission denied\n"));
    cmt_run_free(&r);
    WRAP_RUN(&r, NULL, cmt_scratch_path("no-such-file"));
    ck_assert_int_eq(r.exit_code, 127);
    ck_assert_ptr_nonnull(strstr(r.err, "no-such-file: No such file or directory\n"));
    cmt_run_free(&r);

    WRAP_RUN(&r, NULL, NULL);
    ck_assert_int_eq(r.exit_code, 125);
    ck_assert_ptr_nonnull(strstr(r.err, "cymemtrack: error: no program given\n"));
    cmt_run_free(&r);
    WRAP_RUN(&r, NULL, "--top", "lots", "true");
    ck_assert_int_eq(r.exit_code, 125);
    cmt_run_free(&r);
    char *const nolib[] = { "CYMEMTRACK_LIBRARY=/nonexistent/libcymemtrack.so", NULL };
    WRAP_RUN(&r, nolib, "true");
    ck_assert_int_eq(r.exit_code, 125);
    ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/libcymemtrack.so"));
    cmt_run_free(&r);
    WRAP_RUN(&r, NULL, "--help");
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage: cymemtrack [OPTIONS] [--] PROGRAM [ARGS...]"));
    cmt_run_free(&r);
    WRAP_RUN(&r, NULL, "--version");
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_str_eq(r.out, "cymemtrack (cymemtrack) " PACKAGE_VERSION "\n");
    cmt_run_free(&r);

    /* The program's own status and signal pass through; its options stay its own. */
    WRAP_RUN(&r, NULL, "--", "/bin/sh", "-c", "exit 7");
    ck_assert_msg(r.exit_code == 7, "status %d: %s", r.exit_code, r.err);
    cmt_run_free(&r);
    WRAP_RUN(&r, NULL, "/bin/sh", "-c", "kill -TERM $$");
    ck_assert_int_eq(r.exit_code, -1);
    ck_assert_int_eq(r.signal, SIGTERM);
    cmt_run_free(&r);
    WRAP_RUN(&r, NULL, "/bin/sh", "-c", "echo \"$LD_PRELOAD|$CYMEMTRACK_STACK_DEPTH|"
             "$CYMEMTRACK_SCOPES|$CYMEMTRACK_QUARANTINE\"", "-d", "9");
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_str_eq(r.out, CMT_TEST_LIBRARY "|||\n");
    cmt_run_free(&r);
    char *const preload[] = { "LD_PRELOAD=/lib/x86_64-linux-gnu/libc.so.6", NULL };
    WRAP_RUN(&r, preload, "-d", "9", "-s", "func:main", "--quarantine", "1M", "/bin/sh", "-c",
             "echo \"$LD_PRELOAD|$CYMEMTRACK_STACK_DEPTH|$CYMEMTRACK_SCOPES|"
             "$CYMEMTRACK_QUARANTINE\"");
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_str_eq(r.out, CMT_TEST_LIBRARY " /lib/x86_64-linux-gnu/libc.so.6|9|func:main|1M\n");
    cmt_run_free(&r);
}
END_TEST

/* End to end: a test program under the wrapper, with the library just built. */
static void run_leak(struct cmt_run *r, char *const env[], const char *const *opts,
                     const char *mode)
{
    const char *args[32];
    size_t n = 0;
    for (; opts && opts[n]; n++)
        args[n] = opts[n];
    args[n++] = cmt_test_prog("cli-leak");
    if (mode)
        args[n++] = mode;
    args[n] = NULL;
    char *e[8] = { "COLUMNS=1000" };
    for (size_t i = 0; env && env[i]; i++)
        e[i + 1] = env[i];
    run_tool(r, e, WRAPPER, args);
}

START_TEST(wrapper_shows_every_process)
{
    struct cmt_run r;
    run_leak(&r, NULL, (const char *[]){ "--json", cmt_scratch_path("out.json"), NULL }, NULL);
    ck_assert_msg(r.exit_code == 0, "status %d:\n%s", r.exit_code, r.err);
    ck_assert_int_eq(cmt_count_lines(r.err, "== process "), 1);
    ck_assert_msg(strstr(r.err, "\nleaks in scope global: 3 blocks, 300 B in 1 site\n"),
                  "stderr:\n%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "  ended     exited with status 0\n"));
    cmt_run_free(&r);
    char *json = cmt_read_text(cmt_scratch_path("out.json"));
    ck_assert_ptr_nonnull(json);
    ck_assert_ptr_nonnull(strstr(json, "\"leaked_blocks\": 3,\n"));
    validate_json(json);
    free(json);

    /* A fork child and an exec'd image: three reports, one view, one total. */
    run_leak(&r, NULL, NULL, "family");
    ck_assert_msg(r.exit_code == 0, "status %d:\n%s", r.exit_code, r.err);
    ck_assert_int_eq(cmt_count_lines(r.err, "== process "), 3);
    ck_assert_int_eq(cmt_count_lines(r.err, "== total: 3 processes =="), 1);
    ck_assert_int_eq(cmt_count_lines(r.err, "  ended     replaced by exec"), 1);
    ck_assert_int_eq(cmt_count_lines(r.err, "  started   forked by process "), 1);
    ck_assert_int_eq(cmt_count_lines(r.err, "  started   by exec from "), 1);
    /* The child inherited the 3 blocks and leaked 1 of its own; the new image leaked 2;
     * the total counts both, and not what the old image held at exec. */
    ck_assert_ptr_nonnull(strstr(r.err, "\nleaks in scope global: 4 blocks, 364 B in "));
    ck_assert_ptr_nonnull(strstr(r.err, "\nleaks in scope global: 2 blocks, 64 B in "));
    ck_assert_ptr_nonnull(strstr(r.err, "\nleaks in scope global: 6 blocks, 428 B in "));
    cmt_run_free(&r);

    /* -o keeps the files where it says, and only this run's are shown. */
    cmt_write_text(cmt_scratch_path("r.1.cmt"), "an old file that is not a report");
    struct stat st;
    ck_assert_int_eq(stat(cmt_scratch_path("r.1.cmt"), &st), 0);
    struct timespec old[2] = { { st.st_mtim.tv_sec - 100, 0 }, { st.st_mtim.tv_sec - 100, 0 } };
    ck_assert_int_eq(utimensat(AT_FDCWD, cmt_scratch_path("r.1.cmt"), old, 0), 0);
    char template[PATH_MAX];
    snprintf(template, sizeof template, "%s/r.%%p.cmt", cmt_scratch_dir());
    run_leak(&r, NULL, (const char *[]){ "-o", template, NULL }, NULL);
    ck_assert_msg(r.exit_code == 0, "status %d:\n%s", r.exit_code, r.err);
    ck_assert_int_eq(cmt_count_lines(r.err, "== process "), 1);
    ck_assert_int_eq(count_substr(r.err, "error"), 0);
    cmt_run_free(&r);
    char *const ls[] = { "/bin/sh", "-c", "ls \"$0\"/*.cmt | wc -l",
                         (char *)cmt_scratch_dir(), NULL };
    cmt_run(&r, 0, ls, NULL);
    ck_assert_str_eq(r.out, "2\n");     /* r.1.cmt and the new report */
    cmt_run_free(&r);
}
END_TEST

START_TEST(wrapper_fail_on_leak)
{
    struct cmt_run r;
    run_leak(&r, NULL, (const char *[]){ "--fail-on-leak", NULL }, NULL);
    ck_assert_msg(r.exit_code == 1, "status %d:\n%s", r.exit_code, r.err);
    cmt_run_free(&r);
    run_leak(&r, NULL, (const char *[]){ "--fail-on-leak", NULL }, "clean");
    ck_assert_msg(r.exit_code == 0, "status %d:\n%s", r.exit_code, r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "\nno leaks\n"));
    cmt_run_free(&r);
    cmt_write_text(cmt_scratch_path("global.supp"), "scope:global\n");
    run_leak(&r, NULL, (const char *[]){ "--fail-on-leak", "--suppressions",
                                         cmt_scratch_path("global.supp"), NULL }, NULL);
    ck_assert_msg(r.exit_code == 0, "status %d:\n%s", r.exit_code, r.err);
    cmt_run_free(&r);
    /* A failing program's own status wins over the leak check. */
    WRAP_RUN(&r, NULL, "--fail-on-leak", "/bin/sh", "-c", "exit 3");
    ck_assert_int_eq(r.exit_code, 3);
    cmt_run_free(&r);
}
END_TEST

/* The location that frame line "#N  FUNCTION  LOCATION" of text gives, or NULL when the
 * text has no such line. */
static char *frame_location(const char *text, int n, const char *function)
{
    char pat[128];
    snprintf(pat, sizeof pat, "#%-2d %s  ", n, function);
    const char *at = strstr(text, pat);
    if (!at)
        return NULL;
    at += strlen(pat);
    at += strspn(at, " ");
    return strndup(at, strcspn(at, "\n"));
}

/* What a build without stack capture shows instead of frames: the leak site, given by its
 * heading and its line, then "(no stack recorded)"; and no frame line anywhere. */
static void assert_frameless(const char *text, const char *site)
{
    char want[256];
    snprintf(want, sizeof want, "%s\n      (no stack recorded)\n", site);
    ck_assert_msg(strstr(text, want), "expected the site without frames:\n%sgot:\n%s", want,
                  text);
    ck_assert_msg(count_substr(text, "#0 ") == 0, "expected no frame line, got:\n%s", text);
}

/* Symbolized stacks of a real leak: functions in order, each with its file and line (built
 * without stack capture: the site without frames). */
START_TEST(wrapper_names_the_leak)
{
    bool stacks = cmt_test_have_stacks();
    struct cmt_run r;
    run_leak(&r, NULL, NULL, NULL);
    ck_assert_msg(r.exit_code == 0, "status %d:\n%s", r.exit_code, r.err);
    const char *source = CMT_TEST_SRCDIR "/tests/progs/cli-leak.c";
    static const char *const chain[] = { "leak_leaf", "cmt_make_leaks", "main" };
    /* Innermost first, each with the line of its call. */
    for (int i = 0; i < 3 && stacks; i++) {
        char *loc = frame_location(r.err, i, chain[i]);
        ck_assert_msg(loc, "no frame #%d %s in:\n%s", i, chain[i], r.err);
        char want[64];
        snprintf(want, sizeof want, "tests/progs/cli-leak.c:%d", marked_line(source, chain[i]));
        ck_assert_msg(ends_with(loc, want), "%s: expected ...%s, got %s", chain[i], want, loc);
        free(loc);
    }
    if (!stacks)
        assert_frameless(r.err, "\nleaks in scope global: 3 blocks, 300 B in 1 site\n"
                                "  1   3 blocks, 300 B");
    cmt_run_free(&r);

    /* Without stacks, leak:FUNCTION has nothing to match: the leak stays, and fails the run. */
    cmt_write_text(cmt_scratch_path("leaf.supp"), "# the known one\nleak:^leak_leaf$\n");
    run_leak(&r, NULL, (const char *[]){ "--fail-on-leak", "--suppressions", cmt_scratch_path("leaf.supp"),
                                         NULL }, NULL);
    ck_assert_msg(r.exit_code == (stacks ? 0 : 1), "status %d:\n%s", r.exit_code, r.err);
    if (stacks)
        ck_assert_ptr_nonnull(strstr(r.err, "  suppressed   1 leak site, 3 blocks, 300 B\n"));
    else
        ck_assert_msg(count_substr(r.err, "suppressed") == 0, "expected nothing suppressed:\n%s",
                      r.err);
    cmt_run_free(&r);
}
END_TEST

/* Calls the compiler inlined show as frames of their own, innermost first, each at the line
 * of its call, all sharing the one return address the tracker recorded (built without stack
 * capture: the site without frames). */
START_TEST(inlined_calls_are_frames)
{
    struct cmt_run r;
    char *e[] = { "COLUMNS=1000", NULL };
    run_tool(&r, e, WRAPPER, (const char *[]){ cmt_test_prog("cli-inline"), NULL });
    ck_assert_msg(r.exit_code == 0, "status %d:\n%s", r.exit_code, r.err);
    const char *source = CMT_TEST_SRCDIR "/tests/progs/cli-inline.c";
    static const char *const chain[] = { "inner_step", "outer_step", "main" };
    for (int i = 0; i < 3 && cmt_test_have_stacks(); i++) {
        char *loc = frame_location(r.err, i, chain[i]);
        ck_assert_msg(loc, "no frame #%d %s in:\n%s", i, chain[i], r.err);
        char want[64];
        snprintf(want, sizeof want, "tests/progs/cli-inline.c:%d",
                 marked_line(source, chain[i]));
        ck_assert_msg(ends_with(loc, want), "%s: expected ...%s, got %s", chain[i], want, loc);
        free(loc);
    }
    ck_assert_ptr_nonnull(strstr(r.err, "leaks in scope global: 1 block, 42 B in 1 site"));
    if (!cmt_test_have_stacks())
        assert_frameless(r.err, "leaks in scope global: 1 block, 42 B in 1 site\n"
                                "  1   1 block, 42 B");
    cmt_run_free(&r);
}
END_TEST

/* ---- the man pages ------------------------------------------------------------------- */

START_TEST(man_pages_are_clean)
{
    static const char *const pages[] = { "cymem-report.1", "cymemtrack.1", "cymemtrack.7" };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/man/%s", CMT_TEST_SRCDIR, pages[i]);
        char *const argv[] = { "mandoc", "-Tlint", "-Wwarning", path, NULL };
        struct cmt_run r;
        cmt_run(&r, 0, argv, NULL);
        ck_assert_msg(r.exit_code == 0 && !r.out[0] && !r.err[0],
                      "mandoc -Tlint %s (status %d):\n%s%s", pages[i], r.exit_code, r.out,
                      r.err);
        cmt_run_free(&r);
    }
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("render");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, text_golden);
    tcase_add_test(tc, text_narrow_golden);
    tcase_add_test(tc, text_fits_every_width);
    tcase_add_test(tc, text_drops_zero_columns);
    tcase_add_test(tc, json_golden_and_schema);
    tcase_add_test(tc, colour_only_when_asked);
    tcase_add_test(tc, human_sizes);
    tcase_add_test(tc, every_way_of_ending);
    tcase_add_test(tc, strings_are_escaped);
    suite_add_tcase(s, tc);

    tc = tcase_create("filters");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_add_test(tc, patterns_match_as_lsan_does);
    tcase_add_test(tc, suppression_files_parse);
    tcase_add_test(tc, suppressions_hide_their_leaks);
    tcase_add_test(tc, filters_scope_top_min_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("merge");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, merge_tree_and_total);
    tcase_add_test(tc, merged_golden_through_the_program);
    suite_add_tcase(s, tc);

    tc = tcase_create("program");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, exit_statuses);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, truncated_files_warn);
    tcase_add_test(tc, terminal_width_and_colour);
    tcase_add_test(tc, man_pages_are_clean);
    suite_add_tcase(s, tc);

    tc = tcase_create("symbolize");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, symbolize_function_file_line);
#ifdef HAVE_LIBDW
    tcase_add_test(tc, symbolize_separate_debug_file);
    tcase_add_test(tc, symbolize_refuses_another_build);
#endif
    suite_add_tcase(s, tc);

    tc = tcase_create("wrapper");
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, wrapper_statuses);
    tcase_add_test(tc, wrapper_shows_every_process);
    tcase_add_test(tc, wrapper_fail_on_leak);
    tcase_add_test(tc, wrapper_names_the_leak);
    tcase_add_test(tc, inlined_calls_are_frames);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* The in-process symbolizer must not go to the network for debug information. */
    unsetenv("DEBUGINFOD_URLS");
    return cmt_run_suite(cli_suite());
}
