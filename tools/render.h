/*
 * render.h — the stages of cymem-report that follow the reader, in the order main.c runs
 * them: symbolize.c (names for pcs), merge.c (processes into a tree and a total), suppress.c
 * (what is hidden: suppression files, --scope, --min-bytes, --top) and the two renderers.
 * None of them reads a report file; each works on the struct cmt_process values of report.h.
 */
#ifndef CMT_TOOLS_RENDER_H
#define CMT_TOOLS_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

/* ---- symbolize.c: function, file:line, or module+offset for every frame ------------- */

/* Opened ELF files, kept across processes, since the children of one run map the same
 * libraries. */
struct cmt_symbolizer;

struct cmt_symbolizer *cmt_symbolizer_new(void);
/* Fills function, file and line of every frame of p whose module (set by the reader) can be
 * opened: the file itself, or a separate debug file found by build-id or debuglink. A module
 * whose file changed since the run (its build-id differs) is left as module+offset, with one
 * warning. Never fails: what cannot be resolved stays unknown. */
void cmt_symbolize(struct cmt_symbolizer *s, struct cmt_process *p);
void cmt_symbolizer_free(struct cmt_symbolizer *s);
/* "elfutils libdw 0.188", or a sentence saying that the build has no symbolizer. */
const char *cmt_symbolizer_version(void);

/* ---- merge.c: processes, their fork and exec children, and a total ------------------ */

enum cmt_relation {
    CMT_REL_ROOT = 0,       /* its parent is not among the reports */
    CMT_REL_FORK = 1,       /* forked by parent */
    CMT_REL_EXEC = 2,       /* the same pid after parent's image called execve */
};

struct cmt_view_entry {
    struct cmt_process *p;
    const struct cmt_process *parent;   /* NULL for a root */
    enum cmt_relation rel;
    unsigned depth;                     /* 0 for a root */
    /* Another report of the same process image (same pid and start) was written later: a
     * snapshot or a checkpoint that the final report replaces. Shown, not counted twice. */
    bool superseded;
};

struct cmt_view {
    struct cmt_view_entry *entries;     /* every parent before its children */
    size_t n;
    /* With more than one counted process: their sum, scopes merged by name and kind, leak
     * sites and stacks merged by module and file offset (the same in every process, whatever
     * the load addresses); leaks only from processes that exited (cmt_process_final). pid 0,
     * no argv; peak_live_bytes is the largest of any process. */
    bool has_total;
    size_t total_processes;
    struct cmt_process total;
};

/* Orders procs[0..n) into v (which points into procs: keep them alive) and builds the
 * total. Returns 0, or -1 after an error message when out of memory. */
int cmt_view_build(struct cmt_view *v, struct cmt_process *procs, size_t n);
void cmt_view_free(struct cmt_view *v);

/* ---- suppress.c: suppressions and the filters -------------------------------------- */

enum cmt_supp_type { CMT_SUPP_LEAK, CMT_SUPP_SCOPE };

struct cmt_suppression {
    enum cmt_supp_type type;
    char *pattern;
    char *file;
    unsigned line;
};

struct cmt_suppressions {
    struct cmt_suppression *v;
    size_t n, cap;
};

/* Adds the rules of a suppression file. Returns 0, or -1 after one error naming file:line
 * for a line that is neither blank, a # comment, leak:PATTERN nor scope:NAME. */
int cmt_suppressions_load(struct cmt_suppressions *s, const char *path);
/* Same, from text already in memory; name is what messages call it. */
int cmt_suppressions_parse(struct cmt_suppressions *s, const char *name, const char *text);
/* Marks p's suppressed scopes and leak sites (scope:NAME; leak:PATTERN against any frame's
 * function, source file or module path). */
void cmt_suppressions_apply(const struct cmt_suppressions *s, struct cmt_process *p);
void cmt_suppressions_free(struct cmt_suppressions *s);

/* LeakSanitizer's pattern semantics: PATTERN matches anywhere in text unless anchored by a
 * leading ^ or a trailing $; * matches any run of characters and ? any one. */
bool cmt_pattern_match(const char *pattern, const char *text);
/* A whole-string glob with * and ?. */
bool cmt_glob_match(const char *pattern, const char *text);

/* What the renderers show and --fail-on-leak counts. */
struct cmt_render_opts {
    const char *const *scopes;  /* --scope NAME (globs); nscopes 0: every scope */
    size_t nscopes;
    size_t top;                 /* leak sites per scope; 0: all */
    uint64_t min_bytes;         /* leak sites with fewer bytes are hidden */
    bool color;                 /* ANSI colours (text only) */
    unsigned width;             /* the terminal's columns; 0: no limit (text only) */
};

bool cmt_scope_selected(const struct cmt_render_opts *o, const struct cmt_scope *s);

/* The leak sites of one scope that pass the filters, largest first. */
struct cmt_leak_list {
    const struct cmt_leak **v;  /* the first min(top, sites) of them */
    size_t n;
    size_t sites;               /* how many passed the filters, before --top */
    uint64_t blocks, bytes;     /* their sum */
    size_t suppressed;          /* sites a suppression hid */
    uint64_t suppressed_blocks, suppressed_bytes;
    size_t small;               /* unsuppressed sites under --min-bytes */
};

/* Returns 0, or -1 after an error message when out of memory. */
int cmt_leak_list(const struct cmt_process *p, const struct cmt_scope *s,
                  const struct cmt_render_opts *o, struct cmt_leak_list *out);
void cmt_leak_list_free(struct cmt_leak_list *l);

/* True when p's live blocks at the end are leaks: it exited (exit or _exit). At exec, a
 * fatal signal, abort, a snapshot or a kill, blocks were merely still in use. */
bool cmt_process_final(const struct cmt_process *p);
/* Leak sites --fail-on-leak counts in the view: those shown (--top aside) in processes that
 * are final and not superseded. */
size_t cmt_view_failing_sites(const struct cmt_view *v, const struct cmt_render_opts *o);

/* ---- render-text.c / render-json.c ------------------------------------------------- */

/* Both return 0, or -1 after an error message when out of memory or when writing failed. */
int cmt_render_text(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o);
int cmt_render_json(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o);
/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when it is not one: overlong forms,
 * surrogates and code points past U+10FFFF are not valid. For the JSON writers (JSON and the
 * HTML page's data), which turn the bytes of anything else into U+FFFD. */
size_t cmt_utf8_len(const unsigned char *s);

/* ---- render-folded.c / render-html.c ----------------------------------------------- */

/* What --folded counts per (scope, stack): bytes leaked, blocks leaked, or bytes allocated.
 * A report without allocation sites (cmt_process.has_allocsites) has bytes allocated per
 * scope only: each scope is then one frame-less line, and a warning says why. */
enum cmt_folded_value { CMT_FOLDED_LEAKED, CMT_FOLDED_BLOCKS, CMT_FOLDED_ALLOCATED };

/* The allocation sites of one scope that the filters let through, most bytes first: none of
 * a suppressed scope (scope:NAME), none under --min-bytes bytes allocated, and the first
 * --top of them. Leak suppressions (leak:PATTERN) do not apply: these are no leaks. */
struct cmt_alloc_list {
    const struct cmt_allocsite **v;     /* the first min(top, sites) of them */
    size_t n;
    size_t sites;                       /* how many passed the filters, before --top */
    uint64_t allocations, bytes;        /* their sum */
};
/* Returns 0, or -1 after an error message when out of memory. */
int cmt_alloc_list(const struct cmt_process *p, const struct cmt_scope *s,
                   const struct cmt_render_opts *o, struct cmt_alloc_list *out);
void cmt_alloc_list_free(struct cmt_alloc_list *l);
/* Why p has no allocation sites, for a message: "its report was written by a tracker older
 * than report format 3", "stacks were not captured (CYMEMTRACK_STACK_DEPTH=0)", ... */
const char *cmt_no_allocsites_reason(const struct cmt_process *p);

/* Collapsed stacks, one line "SCOPE;outermost;...;innermost VALUE" per distinct line, sorted,
 * of the view's total when it has one, else of its one counted process. */
int cmt_render_folded(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o,
                      enum cmt_folded_value what);
/* The self-contained HTML page (see render-html.c). */
int cmt_render_html(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o);
/* A frame as the text view names it: its function, else file:line, else module+0xOFFSET
 * (the module's base name), else 0xPC. Returns a malloc'd string, NULL when out of memory. */
char *cmt_frame_name(const struct cmt_frame *f);

/* "0 B", "1023 B", "1.0 KiB", "12.3 MiB", "4.0 GiB"...: into buf, which it returns. */
const char *cmt_human_size(uint64_t bytes, char buf[static 32]);
/* "exited with status 0", "killed by signal 11 (SIGSEGV)", "killed (incomplete)", ... */
const char *cmt_ended_text(const struct cmt_process *p, char *buf, size_t size);

#endif /* CMT_TOOLS_RENDER_H */
