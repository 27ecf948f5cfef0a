/*
 * suppress.c — what cymem-report hides: suppression files (leak:PATTERN and scope:NAME, in
 * LeakSanitizer's manner) and the --scope, --min-bytes and --top filters, which both
 * renderers and --fail-on-leak apply through the functions here, so that what is shown and
 * what fails a CI run never disagree. It marks; it never removes anything from a process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "render.h"

bool cmt_glob_match(const char *pat, const char *text)
{
    /* Greedy with backtracking to the last '*': linear for patterns with one star and
     * never exponential, since only the latest star is ever retried. */
    const char *star = NULL, *resume = NULL;
    while (*text) {
        if (*pat == '*') {
            star = pat++;
            resume = text;
        } else if (*pat && (*pat == '?' || *pat == *text)) {
            pat++;
            text++;
        } else if (star) {
            pat = star + 1;
            text = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

bool cmt_pattern_match(const char *pattern, const char *text)
{
    size_t len = strlen(pattern);
    bool head = pattern[0] == '^';
    bool tail = len > (size_t)head && pattern[len - 1] == '$';
    char buf[1024];
    char *glob = len + 3 <= sizeof buf ? buf : malloc(len + 3);
    if (!glob)
        return false;
    size_t n = 0;
    if (!head)
        glob[n++] = '*';
    memcpy(glob + n, pattern + head, len - head - tail);
    n += len - head - tail;
    if (!tail)
        glob[n++] = '*';
    glob[n] = '\0';
    bool m = cmt_glob_match(glob, text);
    if (glob != buf)
        free(glob);
    return m;
}

static int add_rule(struct cmt_suppressions *s, enum cmt_supp_type type, const char *pat,
                    size_t len, const char *name, unsigned line)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct cmt_suppression *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return cmt_error("out of memory reading %s", name);
        s->v = v;
        s->cap = cap;
    }
    struct cmt_suppression *r = &s->v[s->n];
    r->type = type;
    r->line = line;
    r->pattern = strndup(pat, len);
    r->file = strdup(name);
    if (!r->pattern || !r->file) {
        free(r->pattern);
        free(r->file);
        return cmt_error("out of memory reading %s", name);
    }
    s->n++;
    return 0;
}

int cmt_suppressions_parse(struct cmt_suppressions *s, const char *name, const char *text)
{
    unsigned lineno = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        lineno++;
        const char *b = line, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (b < e && *b != '#') {
            static const struct { const char *prefix; enum cmt_supp_type type; } kinds[] = {
                { "leak:", CMT_SUPP_LEAK }, { "scope:", CMT_SUPP_SCOPE },
            };
            size_t k = 0;
            while (k < 2 && strncmp(b, kinds[k].prefix, strlen(kinds[k].prefix)) != 0)
                k++;
            size_t plen = k < 2 ? strlen(kinds[k].prefix) : 0;
            if (k == 2 || b + plen == e || memchr(b, '\0', (size_t)(e - b)))
                return cmt_error("%s:%u: expected leak:PATTERN, scope:NAME or a # comment, "
                                 "got '%.*s'", name, lineno, (int)(e - b > 60 ? 60 : e - b), b);
            if (add_rule(s, kinds[k].type, b + plen, (size_t)(e - b) - plen, name, lineno))
                return -1;
        }
        line = *end ? end + 1 : end;
    }
    return 0;
}

int cmt_suppressions_load(struct cmt_suppressions *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cmt_error_errno("cannot open suppressions file %s", path);
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap * 2 + 4096;
            char *t = realloc(text, cap + 1);
            if (!t) {
                rc = cmt_error("out of memory reading %s", path);
                break;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = cmt_error_errno("cannot read suppressions file %s", path);
            break;
        }
    }
    fclose(f);
    if (rc == 0) {
        text[len] = '\0';
        if (strlen(text) != len)
            rc = cmt_error("%s: not a text file (it holds a NUL byte)", path);
        else
            rc = cmt_suppressions_parse(s, path, text);
    }
    free(text);
    return rc;
}

void cmt_suppressions_free(struct cmt_suppressions *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].pattern);
        free(s->v[i].file);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static bool frame_matches(const char *pattern, const struct cmt_frame *f)
{
    return (f->function && cmt_pattern_match(pattern, f->function)) ||
           (f->file && cmt_pattern_match(pattern, f->file)) ||
           (f->module && f->module->path && cmt_pattern_match(pattern, f->module->path));
}

void cmt_suppressions_apply(const struct cmt_suppressions *s, struct cmt_process *p)
{
    for (size_t i = 0; i < p->nscopes; i++) {
        p->scopes[i].suppressed = false;
        for (size_t r = 0; r < s->n && !p->scopes[i].suppressed; r++)
            p->scopes[i].suppressed = s->v[r].type == CMT_SUPP_SCOPE &&
                                      cmt_glob_match(s->v[r].pattern, p->scopes[i].name);
    }
    for (size_t i = 0; i < p->nleaks; i++) {
        struct cmt_leak *l = &p->leaks[i];
        const struct cmt_scope *sc = cmt_process_scope(p, l->scope);
        const struct cmt_stack *st = l->stack ? cmt_process_stack(p, l->stack) : NULL;
        l->suppressed = sc && sc->suppressed;
        for (size_t r = 0; r < s->n && !l->suppressed && st; r++) {
            if (s->v[r].type != CMT_SUPP_LEAK)
                continue;
            for (uint32_t f = 0; f < st->depth && !l->suppressed; f++)
                l->suppressed = frame_matches(s->v[r].pattern, &st->frames[f]);
        }
    }
}

bool cmt_scope_selected(const struct cmt_render_opts *o, const struct cmt_scope *s)
{
    if (!o->nscopes)
        return true;
    for (size_t i = 0; i < o->nscopes; i++)
        if (cmt_glob_match(o->scopes[i], s->name))
            return true;
    return false;
}

/* Largest first; the stack id keeps equal sites in a fixed order. */
static int cmp_leak(const void *a, const void *b)
{
    const struct cmt_leak *x = *(const struct cmt_leak *const *)a;
    const struct cmt_leak *y = *(const struct cmt_leak *const *)b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    if (x->blocks != y->blocks)
        return x->blocks > y->blocks ? -1 : 1;
    return (x->stack > y->stack) - (x->stack < y->stack);
}

int cmt_leak_list(const struct cmt_process *p, const struct cmt_scope *s,
                  const struct cmt_render_opts *o, struct cmt_leak_list *out)
{
    memset(out, 0, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; i < p->nleaks; i++)
        n += p->leaks[i].scope == s->id;
    out->v = calloc(n + 1, sizeof *out->v);
    if (!out->v)
        return cmt_error("out of memory");
    for (size_t i = 0; i < p->nleaks; i++) {
        const struct cmt_leak *l = &p->leaks[i];
        if (l->scope != s->id)
            continue;
        if (l->suppressed || s->suppressed) {
            out->suppressed++;
            out->suppressed_blocks += l->blocks;
            out->suppressed_bytes += l->bytes;
        } else if (l->bytes < o->min_bytes) {
            out->small++;
        } else {
            out->v[out->sites++] = l;
            out->blocks += l->blocks;
            out->bytes += l->bytes;
        }
    }
    qsort(out->v, out->sites, sizeof *out->v, cmp_leak);
    out->n = o->top && o->top < out->sites ? o->top : out->sites;
    return 0;
}

void cmt_leak_list_free(struct cmt_leak_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

bool cmt_process_final(const struct cmt_process *p)
{
    return p->complete && (p->how == CMT_END_EXIT || p->how == CMT_END_UNDERSCORE_EXIT);
}

size_t cmt_view_failing_sites(const struct cmt_view *v, const struct cmt_render_opts *o)
{
    size_t sites = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct cmt_process *p = v->entries[i].p;
        if (v->entries[i].superseded || !cmt_process_final(p))
            continue;
        for (size_t j = 0; j < p->nscopes; j++) {
            if (!cmt_scope_selected(o, &p->scopes[j]) || p->scopes[j].suppressed)
                continue;
            for (size_t k = 0; k < p->nleaks; k++) {
                const struct cmt_leak *l = &p->leaks[k];
                sites += l->scope == p->scopes[j].id && !l->suppressed &&
                         l->bytes >= o->min_bytes;
            }
        }
    }
    return sites;
}
