/*
 * render-folded.c — `cymem-report --folded`: collapsed stacks, the input of flamegraph.pl,
 * inferno and speedscope. One line per distinct (scope, stack) with its value, scope first so
 * that a flame graph splits by scope at the root, frames outermost first and named as in the
 * text view. Lines are sorted and equal ones merged, so output can be compared byte for byte.
 * Bytes allocated come from the report's allocation sites; a report without them has a total
 * per scope only, which becomes one frame-less line per scope, with a warning.
 * A name never carries the format's own separators: ';', '\' and control bytes are escaped.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "render.h"

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

char *cmt_frame_name(const struct cmt_frame *f)
{
    char *s = NULL;
    int n;
    if (f->function)
        return strdup(f->function);
    if (f->file && f->line > 0)
        n = asprintf(&s, "%s:%d", f->file, f->line);
    else if (f->module && f->module->path)
        n = asprintf(&s, "%s+0x%" PRIx64, base_name(f->module->path), f->offset);
    else
        n = asprintf(&s, "0x%" PRIx64, f->pc);
    return n < 0 ? NULL : s;
}

/* Appends name to f with ';', '\' and control bytes written as \xNN. */
static void put_name(FILE *f, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == ';' || *p == '\\')
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

struct line {
    char *key;
    uint64_t value;
};

struct lines {
    struct line *v;
    size_t n, cap;
    bool oom;
};

static void add_line(struct lines *ls, char *key, uint64_t value)
{
    if (!key) {
        ls->oom = true;
        return;
    }
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 64;
        struct line *v = realloc(ls->v, cap * sizeof *v);
        if (!v) {
            free(key);
            ls->oom = true;
            return;
        }
        ls->v = v;
        ls->cap = cap;
    }
    ls->v[ls->n++] = (struct line){ key, value };
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(((const struct line *)a)->key, ((const struct line *)b)->key);
}

/* "SCOPE;outermost;...;innermost", escaped; NULL when out of memory. */
static char *stack_key(const struct cmt_process *p, const struct cmt_scope *s, uint32_t id)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    bool ok = true;
    put_name(f, s->name);
    const struct cmt_stack *st = id ? cmt_process_stack(p, id) : NULL;
    if (!st || !st->depth) {
        fputs(";[no stack]", f);
    } else {
        for (uint32_t i = st->depth; i-- > 0;) {
            char *name = cmt_frame_name(&st->frames[i]);
            if (!name) {
                ok = false;
                break;
            }
            fputc(';', f);
            put_name(f, name);
            free(name);
        }
    }
    if (fclose(f) != 0 || !ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- allocation sites --------------------------------------------------------------- */

static int cmp_allocsite(const void *a, const void *b)
{
    const struct cmt_allocsite *x = *(const struct cmt_allocsite *const *)a;
    const struct cmt_allocsite *y = *(const struct cmt_allocsite *const *)b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    if (x->allocations != y->allocations)
        return x->allocations < y->allocations ? 1 : -1;
    return (x->stack > y->stack) - (x->stack < y->stack);
}

int cmt_alloc_list(const struct cmt_process *p, const struct cmt_scope *s,
                   const struct cmt_render_opts *o, struct cmt_alloc_list *out)
{
    memset(out, 0, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; i < p->nallocsites; i++)
        n += p->allocsites[i].scope == s->id;
    out->v = calloc(n + 1, sizeof *out->v);
    if (!out->v)
        return cmt_error("out of memory");
    for (size_t i = 0; i < p->nallocsites && !s->suppressed; i++) {
        const struct cmt_allocsite *a = &p->allocsites[i];
        if (a->scope != s->id || !a->allocations || a->bytes < o->min_bytes)
            continue;
        out->v[out->sites++] = a;
        out->allocations += a->allocations;
        out->bytes += a->bytes;
    }
    if (out->sites)
        qsort(out->v, out->sites, sizeof *out->v, cmp_allocsite);
    out->n = o->top && o->top < out->sites ? o->top : out->sites;
    return 0;
}

void cmt_alloc_list_free(struct cmt_alloc_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

const char *cmt_no_allocsites_reason(const struct cmt_process *p)
{
    if (p->version == 0)
        return "none of the reports counts allocations per stack";
    if (p->version < 3)
        return "its report was written by a tracker older than report format 3";
    return "stacks were not captured (CYMEMTRACK_STACK_DEPTH=0)";
}

/* The process a single flame graph shows: the total of several, else the one counted. */
static const struct cmt_process *folded_process(const struct cmt_view *v)
{
    if (v->has_total)
        return &v->total;
    for (size_t i = 0; i < v->n; i++)
        if (!v->entries[i].superseded)
            return v->entries[i].p;
    return v->n ? v->entries[0].p : NULL;
}

int cmt_render_folded(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o,
                      enum cmt_folded_value what)
{
    const struct cmt_process *p = folded_process(v);
    struct lines ls = { 0 };
    bool per_scope = what == CMT_FOLDED_ALLOCATED && p && !p->has_allocsites;
    if (per_scope)
        cmt_warning("%s: no bytes allocated per stack (%s): each scope is one line",
                    v->has_total ? "the total" : p->file, cmt_no_allocsites_reason(p));
    for (size_t i = 0; p && i < p->nscopes && !ls.oom; i++) {
        const struct cmt_scope *s = &p->scopes[i];
        if (!cmt_scope_selected(o, s))
            continue;
        if (what == CMT_FOLDED_ALLOCATED && !per_scope) {
            struct cmt_alloc_list a;
            if (cmt_alloc_list(p, s, o, &a)) {
                ls.oom = true;
                break;
            }
            for (size_t j = 0; j < a.n && !ls.oom; j++)
                if (a.v[j]->bytes)
                    add_line(&ls, stack_key(p, s, a.v[j]->stack), a.v[j]->bytes);
            cmt_alloc_list_free(&a);
            continue;
        }
        if (what == CMT_FOLDED_ALLOCATED) {
            if (s->bytes_allocated && !s->suppressed) {
                char *key = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&key, &len);
                if (f) {
                    put_name(f, s->name);
                    if (fclose(f) != 0) {
                        free(key);
                        key = NULL;
                    }
                }
                add_line(&ls, key, s->bytes_allocated);
            }
            continue;
        }
        struct cmt_leak_list l;
        if (cmt_leak_list(p, s, o, &l)) {
            ls.oom = true;
            break;
        }
        for (size_t j = 0; j < l.n && !ls.oom; j++) {
            uint64_t value = what == CMT_FOLDED_BLOCKS ? l.v[j]->blocks : l.v[j]->bytes;
            if (value)
                add_line(&ls, stack_key(p, s, l.v[j]->stack), value);
        }
        cmt_leak_list_free(&l);
    }
    if (ls.n)
        qsort(ls.v, ls.n, sizeof *ls.v, cmp_line);
    /* Stacks that differ only where names do not (two call sites on one line, say) make one
     * line: the tools that read this format would add them up anyway. */
    for (size_t i = 0; i < ls.n && !ls.oom;) {
        uint64_t sum = 0;
        size_t j = i;
        for (; j < ls.n && strcmp(ls.v[j].key, ls.v[i].key) == 0; j++)
            sum = sum + ls.v[j].value < sum ? UINT64_MAX : sum + ls.v[j].value;
        fprintf(out, "%s %" PRIu64 "\n", ls.v[i].key, sum);
        i = j;
    }
    for (size_t i = 0; i < ls.n; i++)
        free(ls.v[i].key);
    free(ls.v);
    if (ls.oom)
        return cmt_error("out of memory while rendering the report");
    if (fflush(out) != 0 || ferror(out))
        return cmt_error_errno("cannot write the report");
    return 0;
}
