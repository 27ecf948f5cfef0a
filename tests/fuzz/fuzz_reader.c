/*
 * fuzz_reader.c — libFuzzer target for the report reader (tools/reader.c). Each input goes
 * through the real entry point, cmt_report_read on a path, and the result is checked against
 * the reader's contract: a failure says exactly one error and leaves nothing behind; a success
 * says at most one warning, exactly when the file was cut short, and holds only consistent
 * data (sorted stacks, frames inside their module, every reference resolvable). Built and run
 * by run-fuzz.sh; never part of the product.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "diag.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run: libFuzzer keeps the input that got here as a crash artifact. */
#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_reader: %s:%d: contract broken: %s\n", __FILE__,       \
                    __LINE__, #cond);                                                    \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static void check_process(const struct cmt_process *p)
{
    REQUIRE(p->file && p->exe && p->label && p->argv && !p->argv[p->argc]);
    for (uint32_t i = 0; i < p->argc; i++)
        REQUIRE(p->argv[i]);
    REQUIRE(!(p->complete && p->truncated));
    REQUIRE(p->complete == (p->how != CMT_END_RUNNING));
    for (size_t i = 0; i < p->nmodules; i++) {
        REQUIRE(p->modules[i].start < p->modules[i].end && p->modules[i].path);
        REQUIRE(i == 0 || p->modules[i - 1].start <= p->modules[i].start);
    }
    for (size_t i = 0; i < p->nstacks; i++) {
        const struct cmt_stack *s = &p->stacks[i];
        REQUIRE(s->id != 0 && (i == 0 || p->stacks[i - 1].id < s->id));
        REQUIRE(cmt_process_stack(p, s->id) == s);
        REQUIRE(s->depth <= CMT_REPORT_MAX_DEPTH);
        for (uint32_t f = 0; f < s->depth; f++) {
            const struct cmt_frame *fr = &s->frames[f];
            if (fr->module)
                REQUIRE(fr->pc >= fr->module->start && fr->pc < fr->module->end &&
                        fr->offset == fr->pc - fr->module->start + fr->module->file_offset);
            else
                REQUIRE(fr->offset == 0);
        }
    }
    for (size_t i = 0; i < p->nscopes; i++) {
        REQUIRE(p->scopes[i].name && p->scopes[i].kind <= CMT_REPORT_KIND_SIGNAL);
        const struct cmt_scope *s = cmt_process_scope(p, p->scopes[i].id);
        REQUIRE(s && s->id == p->scopes[i].id);
    }
    for (size_t i = 0; i < p->nleaks; i++) {
        const struct cmt_leak *l = &p->leaks[i];
        REQUIRE(cmt_process_scope(p, l->scope));
        REQUIRE(l->stack == 0 || cmt_process_stack(p, l->stack));
        REQUIRE(l->nsamples <= CMT_LEAK_SAMPLES && l->nsamples <= l->blocks);
        REQUIRE(l->blocks_in_closed <= l->blocks && l->bytes_in_closed <= l->bytes);
    }
    for (size_t i = 0; i < p->nbadfrees; i++) {
        const struct cmt_badfree *b = &p->badfrees[i];
        REQUIRE(b->kind <= CMT_REPORT_BADFREE_STALE);
        REQUIRE(b->stack == 0 || cmt_process_stack(p, b->stack));
        REQUIRE(b->scope == UINT32_MAX || cmt_process_scope(p, b->scope));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        /* One in-memory file, rewritten per input: no disk traffic, nothing to clean up. */
        fd = memfd_create("fuzz-report", MFD_CLOEXEC);
        REQUIRE(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        cmt_diag_state.fd = -1;     /* counted, not printed */
    }
    REQUIRE(ftruncate(fd, 0) == 0);
    REQUIRE(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);

    unsigned e0 = cmt_diag_state.errors, w0 = cmt_diag_state.warnings;
    struct cmt_process p;
    int rc = cmt_report_read(path, &p);
    unsigned errors = cmt_diag_state.errors - e0, warnings = cmt_diag_state.warnings - w0;
    if (rc == -1) {
        REQUIRE(errors == 1 && warnings == 0);
        REQUIRE(!p.file && !p.nstacks && !p.nscopes && !p.nleaks && !p.stacks);
    } else {
        REQUIRE(rc == 0 && errors == 0 && warnings == (p.truncated ? 1u : 0u));
        check_process(&p);
    }
    cmt_process_free(&p);
    return 0;
}
