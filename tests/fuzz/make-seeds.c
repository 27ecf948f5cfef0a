/*
 * make-seeds.c — writes the fuzz target's seed corpus (tests/fuzz/corpus/) with the test
 * builder: small files that between them reach every record type, every way of ending,
 * unknown records and a cut-short file, so the fuzzer starts deep in the format. Run by
 * run-fuzz.sh --seeds; the output is committed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "report-builder.h"
#include "report-format.h"

static const char *dir;

static void save(struct cmt_rb *b, const char *name, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cmt_rb_write(b, path, len) != 0) {
        perror(path);
        exit(1);
    }
}

/* A small but complete process: every record type once or twice. */
static void body(struct cmt_rb *b)
{
    static const char *const argv[] = { "prog", "--x" };
    static const uint64_t pcs[] = { 0x401234, 0x7f0000001234, 0x10 };
    static const uint64_t samples[] = { 0x5000, 0x5040 };
    static const uint64_t totals[9] = { 50, 4000, 40, 10, 800, 2000, 1, 1, 1 };
    struct cmt_rb_scope g = { 1, 30, 2000, 25, 1700, 0, 0, 0, 900 };
    struct cmt_rb_scope pool = { 2, 20, 2000, 15, 1600, 4, 1, 64, 1200 };
    cmt_rb_process(b, 100, 1, 1000000, 2000000, "/usr/bin/prog", 2, argv);
    cmt_rb_module(b, 0x400000, 0x402000, 0, "/usr/bin/prog", "\x12\x34\x56\x78", 4);
    cmt_rb_module(b, 0x7f0000000000, 0x7f0000100000, 0x1000, "/lib/libc.so.6", "", 0);
    cmt_rb_stack(b, 1, 3, pcs);
    cmt_rb_stack(b, 2, 1, pcs + 1);
    cmt_rb_scope(b, 0, CMT_REPORT_KIND_GLOBAL, "global", &g);
    cmt_rb_scope(b, 1, CMT_REPORT_KIND_API, "pool", &pool);
    cmt_rb_leak(b, 1, 1, 2, 128, 1, 64, 2, samples);
    cmt_rb_leak(b, 0, 0, 3, 300, 0, 0, 1, samples);
    cmt_rb_badfree(b, CMT_REPORT_BADFREE_DOUBLE, 2, UINT32_MAX, 1, 0xdead);
    cmt_rb_badfree(b, CMT_REPORT_BADFREE_STALE, 0, 1, 1, 0xbeef);
    cmt_rb_totals(b, totals);
}

int main(int argc, char **argv)
{
    struct cmt_rb b;
    if (argc != 2) {
        fprintf(stderr, "usage: make-seeds DIR\n");
        return 2;
    }
    dir = argv[1];

    static const struct { const char *name; uint8_t how; int32_t code; const char *label; }
        ends[] = {
            { "exit.seed", CMT_END_EXIT, 0, "" },
            { "signal.seed", CMT_END_SIGNAL, 11, "" },
            { "checkpoint.seed", CMT_END_RUNNING, 0, "" },
            { "snapshot.seed", CMT_END_SNAPSHOT, 0, "phase-1" },
        };
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        cmt_rb_init(&b);
        cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
        body(&b);
        cmt_rb_end_rec(&b, ends[i].how, ends[i].code, ends[i].label);
        save(&b, ends[i].name, SIZE_MAX);
        if (i == 0) {
            save(&b, "cut-mid-record.seed", b.len - 30);
            save(&b, "no-end.seed", b.len - 17);
        }
        cmt_rb_free(&b);
    }

    /* A later writer's file: a longer header and a record type this reader does not know. */
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE + 8);
    cmt_rb_begin(&b, 42);
    cmt_rb_u64(&b, 7);
    cmt_rb_end(&b);
    body(&b);
    cmt_rb_end_rec(&b, CMT_END_EXIT, 1, "");
    save(&b, "unknown-record.seed", SIZE_MAX);
    cmt_rb_free(&b);

    /* The least a complete report can be. */
    cmt_rb_init(&b);
    cmt_rb_header(&b, CMT_REPORT_VERSION, CMT_REPORT_HEADER_SIZE);
    cmt_rb_end_rec(&b, CMT_END_UNDERSCORE_EXIT, 3, "");
    save(&b, "minimal.seed", SIZE_MAX);
    cmt_rb_free(&b);
    return 0;
}
