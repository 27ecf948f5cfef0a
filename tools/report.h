/*
 * report.h — a report file as cymem-report holds it in memory: what reader.c produces and
 * every later stage (symbolize.c, merge.c, suppress.c, the renderers) consumes. A renderer
 * never re-reads a file.
 */
#ifndef CMT_TOOLS_REPORT_H
#define CMT_TOOLS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report-format.h"

struct cmt_module {
    uint64_t start, end, file_offset;
    char *path;
    unsigned char *build_id;
    size_t build_id_len;
};

/* One frame, as symbolize.c resolves it. Unknown parts are NULL or 0 (JSON null). */
struct cmt_frame {
    uint64_t pc;
    const struct cmt_module *module;    /* NULL when pc is in no known module */
    uint64_t offset;                    /* pc's offset in module's file; 0 without module */
    char *function;                     /* NULL when no symbol covers pc */
    char *file;                         /* NULL without debug information */
    int line;                           /* 0 without debug information */
};

struct cmt_stack {
    uint32_t id;
    uint32_t depth;
    struct cmt_frame *frames;           /* innermost first */
};

struct cmt_leak {
    uint32_t scope, stack;              /* ids as in the file */
    uint64_t blocks, bytes;
    uint64_t blocks_in_closed, bytes_in_closed;
    uint32_t nsamples;
    uint64_t samples[CMT_LEAK_SAMPLES];
    bool suppressed;                    /* set by suppress.c */
};

/* Allocations of one (scope, stack), from the ALLOCSITE records (format version 3); the
 * reader adds up the records of one key. Stack 0: allocations without a stack. */
struct cmt_allocsite {
    uint32_t scope, stack;              /* ids as in the file */
    uint64_t allocations, bytes;
};

struct cmt_scope {
    uint32_t id;
    int kind;                           /* CMT_REPORT_KIND_* */
    char *name;
    uint64_t instances, allocations, bytes_allocated, frees, bytes_freed;
    uint64_t outlived_at_close, bulk_freed_blocks, bulk_freed_bytes, peak_live_bytes;
    /* Derived by reader.c from the LEAK records of this scope. */
    uint64_t leaked_blocks, leaked_bytes;
    /* outlived_at_close - bulk_freed_blocks - blocks still leaked from closed instances:
     * blocks the program freed itself after their scope had closed. */
    uint64_t outlived_blocks;
    bool suppressed;                    /* set by suppress.c (scope:NAME) */
};

struct cmt_badfree {
    int kind;                           /* CMT_REPORT_BADFREE_* */
    uint32_t stack, scope;              /* scope UINT32_MAX when none */
    uint64_t count, sample_addr;
};

/* One TIMELINE sample: live bytes of the scopes it names, at unix_ns. A scope is named by
 * its id as in the file, or CMT_TIMELINE_OTHERS for all the scopes not named together; a
 * scope not named had no live bytes or is among the others. */
#define CMT_TIMELINE_OTHERS UINT32_MAX
struct cmt_sample {
    uint64_t unix_ns;
    uint32_t n;
    struct cmt_sample_value { uint32_t scope; uint64_t bytes; } v[CMT_TIMELINE_MAX_SCOPES];
};

struct cmt_totals {
    uint64_t allocations, bytes_allocated, frees, live_blocks, live_bytes, peak_live_bytes;
    uint64_t invalid_frees, double_frees, stale_frees;
};

struct cmt_process {
    char *file;                         /* the report file it was read from */
    uint32_t version;                   /* of the file's format; 0 for a merged total */
    uint32_t pid, ppid;
    uint64_t start_unix_ns, write_unix_ns;
    char *exe;
    uint32_t argc;
    char **argv;
    int how;                            /* CMT_END_*; CMT_END_RUNNING when cut short */
    int code;
    char *label;                        /* "" unless a snapshot */
    bool complete;                      /* an END record other than RUNNING was read */
    bool truncated;                     /* the file ended inside a record or had no END */

    struct cmt_module *modules;   size_t nmodules;
    struct cmt_stack *stacks;     size_t nstacks;     /* sorted by id */
    struct cmt_scope *scopes;     size_t nscopes;     /* in file order */
    struct cmt_leak *leaks;       size_t nleaks;
    struct cmt_badfree *badfrees; size_t nbadfrees;
    struct cmt_sample *samples;   size_t nsamples;    /* sorted by time */
    struct cmt_allocsite *allocsites; size_t nallocsites;   /* one per key, in file order */
    /* The report counts allocations per stack (ALLOCSITE records were read): a file of
     * format version 2 or older, or from a run with CYMEMTRACK_STACK_DEPTH=0, does not. */
    bool has_allocsites;
    struct cmt_totals totals;
};

/* Reads path into *p. Returns 0 on success (possibly with p->truncated set and a warning
 * already given), -1 on an unreadable or corrupt file after printing one "error:" line that
 * names the file and the byte offset. */
int cmt_report_read(const char *path, struct cmt_process *p);
void cmt_process_free(struct cmt_process *p);

/* Lookups by id; NULL when absent. */
const struct cmt_stack *cmt_process_stack(const struct cmt_process *p, uint32_t id);
const struct cmt_scope *cmt_process_scope(const struct cmt_process *p, uint32_t id);

#endif /* CMT_TOOLS_REPORT_H */
