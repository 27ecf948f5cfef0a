/*
 * render-json.c — `cymem-report --json`: the stable, machine-read view, exactly as
 * tools/cymem-report.schema.json and cymem-report(1) describe it. Every key is always
 * present (null when the report does not know the value), output is valid UTF-8 whatever
 * bytes a report holds, and the layout is fixed so that output can be compared byte for
 * byte. A change of meaning needs a new "version".
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "render.h"

struct json {
    FILE *out;
    const struct cmt_render_opts *o;
    bool oom;
};

size_t cmt_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* A JSON string. Bytes that are not UTF-8 (a report keeps whatever the system gave) become
 * U+FFFD, one per byte. */
static void str(struct json *j, const char *s)
{
    FILE *f = j->out;
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        size_t n = cmt_utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, n, f);
            p += n;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
            break;
        }
        p++;
    }
    fputc('"', f);
}

static void indent(struct json *j, int level)
{
    fputc('\n', j->out);
    for (int i = 0; i < level; i++)
        fputs("  ", j->out);
}

/* `"key": ` at the given depth, after a comma unless first. */
static void key(struct json *j, int level, bool first, const char *k)
{
    if (!first)
        fputc(',', j->out);
    indent(j, level);
    fprintf(j->out, "\"%s\": ", k);
}

static void num(struct json *j, uint64_t v)
{
    fprintf(j->out, "%" PRIu64, v);
}

static void stack(struct json *j, const struct cmt_process *p, uint32_t id, int level)
{
    const struct cmt_stack *s = id ? cmt_process_stack(p, id) : NULL;
    if (!s) {
        fputs("null", j->out);
        return;
    }
    fputc('[', j->out);
    for (uint32_t i = 0; i < s->depth; i++) {
        const struct cmt_frame *f = &s->frames[i];
        if (i)
            fputc(',', j->out);
        indent(j, level + 1);
        fputs("{\"function\": ", j->out);
        str(j, f->function);
        fputs(", \"file\": ", j->out);
        str(j, f->file);
        fputs(", \"line\": ", j->out);
        if (f->file && f->line > 0)
            fprintf(j->out, "%d", f->line);
        else
            fputs("null", j->out);
        fputs(", \"module\": ", j->out);
        str(j, f->module ? f->module->path : NULL);
        /* Without a module the pc itself is the only identity a frame has. */
        fputs(", \"offset\": ", j->out);
        num(j, f->module ? f->offset : f->pc);
        fputc('}', j->out);
    }
    if (s->depth)
        indent(j, level);
    fputc(']', j->out);
}

static const char *kind_name(int kind)
{
    static const char *const names[] = { "global", "api", "func", "thread", "signal" };
    return kind >= 0 && kind < 5 ? names[kind] : NULL;
}

/* One leak or allocation site of a scope's list at level: {COUNT_KEY, bytes, stack}. */
static void site(struct json *j, const struct cmt_process *p, bool first, const char *count_key,
                 uint64_t count, uint64_t bytes, uint32_t stack_id, int level)
{
    if (!first)
        fputc(',', j->out);
    indent(j, level + 2);
    fputc('{', j->out);
    key(j, level + 3, true, count_key);
    num(j, count);
    key(j, level + 3, false, "bytes");
    num(j, bytes);
    key(j, level + 3, false, "stack");
    stack(j, p, stack_id, level + 3);
    indent(j, level + 2);
    fputc('}', j->out);
}

static void scope(struct json *j, const struct cmt_process *p, const struct cmt_scope *s,
                  int level)
{
    fputc('{', j->out);
    key(j, level + 1, true, "name");
    str(j, s->name);
    key(j, level + 1, false, "kind");
    str(j, kind_name(s->kind));
    const struct { const char *k; uint64_t v; } fields[] = {
        { "instances", s->instances },
        { "allocations", s->allocations },
        { "bytes_allocated", s->bytes_allocated },
        { "frees", s->frees },
        { "leaked_blocks", s->leaked_blocks },
        { "leaked_bytes", s->leaked_bytes },
        { "outlived_blocks", s->outlived_blocks },
        { "bulk_freed_blocks", s->bulk_freed_blocks },
        { "bulk_freed_bytes", s->bulk_freed_bytes },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        key(j, level + 1, false, fields[i].k);
        num(j, fields[i].v);
    }
    key(j, level + 1, false, "leaks");
    struct cmt_leak_list l;
    if (cmt_leak_list(p, s, j->o, &l)) {
        j->oom = true;
        fputs("[]", j->out);
    } else {
        fputc('[', j->out);
        for (size_t i = 0; i < l.n; i++)
            site(j, p, i == 0, "blocks", l.v[i]->blocks, l.v[i]->bytes, l.v[i]->stack, level);
        if (l.n)
            indent(j, level + 1);
        fputc(']', j->out);
        cmt_leak_list_free(&l);
    }
    /* null when the report does not count allocations per stack. */
    key(j, level + 1, false, "allocation_sites");
    struct cmt_alloc_list a;
    if (!p->has_allocsites) {
        fputs("null", j->out);
    } else if (cmt_alloc_list(p, s, j->o, &a)) {
        j->oom = true;
        fputs("[]", j->out);
    } else {
        fputc('[', j->out);
        for (size_t i = 0; i < a.n; i++)
            site(j, p, i == 0, "allocations", a.v[i]->allocations, a.v[i]->bytes,
                 a.v[i]->stack, level);
        if (a.n)
            indent(j, level + 1);
        fputc(']', j->out);
        cmt_alloc_list_free(&a);
    }
    indent(j, level);
    fputc('}', j->out);
}

static const char *ended_name(const struct cmt_process *p)
{
    switch (p->complete ? p->how : CMT_END_RUNNING) {
    case CMT_END_EXIT: return "exit";
    case CMT_END_SIGNAL: return "signal";
    case CMT_END_ABORT: return "abort";
    case CMT_END_EXEC: return "exec";
    case CMT_END_UNDERSCORE_EXIT: return "_exit";
    case CMT_END_SNAPSHOT: return "snapshot";
    default: return "killed";
    }
}

static void process(struct json *j, const struct cmt_process *p, int level)
{
    /* pid 0 is nobody's: the report had no PROCESS record (it was cut short). */
    bool known = p->pid != 0;
    fputc('{', j->out);
    key(j, level + 1, true, "pid");
    known ? num(j, p->pid) : (void)fputs("null", j->out);
    key(j, level + 1, false, "ppid");
    known ? num(j, p->ppid) : (void)fputs("null", j->out);
    key(j, level + 1, false, "exe");
    str(j, p->exe && p->exe[0] ? p->exe : NULL);
    key(j, level + 1, false, "argv");
    if (!p->argc) {
        fputs("null", j->out);
    } else {
        fputc('[', j->out);
        for (uint32_t i = 0; i < p->argc; i++) {
            if (i)
                fputs(", ", j->out);
            str(j, p->argv[i] ? p->argv[i] : "");
        }
        fputc(']', j->out);
    }
    const char *ended = ended_name(p);
    key(j, level + 1, false, "ended");
    str(j, ended);
    key(j, level + 1, false, "exit_code");
    if (!strcmp(ended, "exit") || !strcmp(ended, "_exit") || !strcmp(ended, "signal") ||
        !strcmp(ended, "abort"))
        fprintf(j->out, "%d", p->code);
    else
        fputs("null", j->out);
    key(j, level + 1, false, "complete");
    fputs(p->complete ? "true" : "false", j->out);

    /* A file cut short before its TOTALS record leaves every total unknown. */
    const struct cmt_totals *t = &p->totals;
    bool totals_known = !p->truncated || t->allocations || t->frees || t->peak_live_bytes ||
                        t->invalid_frees || t->double_frees || t->stale_frees;
    key(j, level + 1, false, "totals");
    fputc('{', j->out);
    const struct { const char *k; uint64_t v; } fields[] = {
        { "allocations", t->allocations },
        { "frees", t->frees },
        { "live_blocks", t->live_blocks },
        { "live_bytes", t->live_bytes },
        { "peak_live_bytes", t->peak_live_bytes },
        { "invalid_frees", t->invalid_frees },
        { "double_frees", t->double_frees },
        { "stale_frees", t->stale_frees },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        key(j, level + 2, i == 0, fields[i].k);
        totals_known ? num(j, fields[i].v) : (void)fputs("null", j->out);
    }
    indent(j, level + 1);
    fputc('}', j->out);

    key(j, level + 1, false, "scopes");
    fputc('[', j->out);
    bool first = true;
    for (size_t i = 0; i < p->nscopes; i++) {
        if (!cmt_scope_selected(j->o, &p->scopes[i]))
            continue;
        if (!first)
            fputc(',', j->out);
        first = false;
        indent(j, level + 2);
        scope(j, p, &p->scopes[i], level + 2);
    }
    if (!first)
        indent(j, level + 1);
    fputc(']', j->out);

    key(j, level + 1, false, "bad_frees");
    fputc('[', j->out);
    static const char *const kinds[] = { "invalid", "double", "stale" };
    for (size_t i = 0; i < p->nbadfrees; i++) {
        const struct cmt_badfree *b = &p->badfrees[i];
        if (i)
            fputc(',', j->out);
        indent(j, level + 2);
        fputc('{', j->out);
        key(j, level + 3, true, "kind");
        str(j, b->kind >= 0 && b->kind <= 2 ? kinds[b->kind] : NULL);
        key(j, level + 3, false, "count");
        num(j, b->count);
        key(j, level + 3, false, "stack");
        stack(j, p, b->stack, level + 3);
        indent(j, level + 2);
        fputc('}', j->out);
    }
    if (p->nbadfrees)
        indent(j, level + 1);
    fputc(']', j->out);
    indent(j, level);
    fputc('}', j->out);
}

int cmt_render_json(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o)
{
    struct json j = { .out = out, .o = o };
    fputs("{\"version\": 1, \"processes\": [", out);
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            fputc(',', out);
        indent(&j, 1);
        process(&j, v->entries[i].p, 1);
    }
    if (v->n)
        fputc('\n', out);
    fputs("]}\n", out);
    if (j.oom)
        return cmt_error("out of memory while rendering the report");
    if (fflush(out) != 0 || ferror(out))
        return cmt_error_errno("cannot write the report");
    return 0;
}
