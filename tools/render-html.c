/*
 * render-html.c — `cymem-report --html FILE`: one self-contained page, to be mailed or kept
 * with a CI run and opened offline in any current browser. The page's markup, style and
 * script are source files (tools/html/) built into the program (tools/html-assets.c); this
 * file writes them around the report's data, as JSON inside a script element. The page loads
 * nothing from anywhere (its Content-Security-Policy forbids it), and report strings reach
 * the page as JSON data only, never as markup: '<', '>' and '&' are escaped, so that no
 * argv or function name can close the script element or inject anything.
 */
#define _GNU_SOURCE
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "render.h"

/* tools/html-assets.c, generated from tools/html/ by tools/html/embed.sh. */
extern const char cmt_html_page_html[], cmt_html_report_css[], cmt_html_report_js[];

struct html {
    FILE *out;
    const struct cmt_render_opts *o;
    bool oom;
    /* Frames of every process, deduplicated: a key made of a frame's parts → its index. */
    struct fslot { char *key; size_t index; } *slots;
    size_t cap, nframes;
    char **frames;              /* the JSON of each frame, in index order */
};

/* ---- JSON ----------------------------------------------------------------------------- */

/* A JSON string that is safe inside a script element: besides JSON's own escapes, '<', '>'
 * and '&' are written as \u escapes, and so are U+2028 and U+2029. Bytes that are not UTF-8
 * become U+FFFD. */
static void jstr_to(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = cmt_utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            fprintf(f, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 3;
        } else if (n > 1) {
            fwrite(p, 1, n, f);
            p += n;
        } else {
            unsigned char c = *p++;
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&')
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

static void jstr(struct html *h, const char *s)
{
    jstr_to(h->out, s);
}

static void jnum(struct html *h, uint64_t v)
{
    fprintf(h->out, "%" PRIu64, v);
}

/* `"k":` after a comma unless first. */
static void jkey(struct html *h, bool *first, const char *k)
{
    if (!*first)
        fputc(',', h->out);
    *first = false;
    fprintf(h->out, "\"%s\":", k);
}

/* ---- frames --------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t x = 1469598103934665603u;     /* FNV-1a */
    for (; *s; s++)
        x = (x ^ (unsigned char)*s) * 1099511628211u;
    return x;
}

static bool frames_grow(struct html *h)
{
    size_t cap = h->cap ? h->cap * 2 : 1024;
    struct fslot *slots = calloc(cap, sizeof *slots);
    char **frames = realloc(h->frames, cap / 2 * sizeof *frames);
    if (!slots || !frames) {
        free(slots);
        if (frames)
            h->frames = frames;
        return false;
    }
    h->frames = frames;
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->slots[i].key)
            continue;
        size_t j = hash_str(h->slots[i].key) & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = h->slots[i];
    }
    free(h->slots);
    h->slots = slots;
    h->cap = cap;
    return true;
}

/* The index of frame f in the page's frame table, adding it the first time; SIZE_MAX when
 * out of memory. A frame is [name, function, file, line, module, offset]: what the flame
 * graph groups by, and what hovering shows. */
static size_t frame_index(struct html *h, const struct cmt_frame *f)
{
    char *json = NULL, *name = cmt_frame_name(f);
    size_t len = 0;
    FILE *m = name ? open_memstream(&json, &len) : NULL;
    if (!m) {
        free(name);
        h->oom = true;
        return SIZE_MAX;
    }
    fputc('[', m);
    jstr_to(m, name);
    fputc(',', m);
    jstr_to(m, f->function);
    fputc(',', m);
    jstr_to(m, f->file && f->line > 0 ? f->file : NULL);
    fprintf(m, ",%d,", f->file && f->line > 0 ? f->line : 0);
    jstr_to(m, f->module ? f->module->path : NULL);
    fprintf(m, ",%" PRIu64 "]", f->module ? f->offset : f->pc);
    free(name);
    if (fclose(m) != 0) {
        free(json);
        h->oom = true;
        return SIZE_MAX;
    }
    if ((h->nframes + 1) * 2 > h->cap && !frames_grow(h)) {
        free(json);
        h->oom = true;
        return SIZE_MAX;
    }
    size_t j = hash_str(json) & (h->cap - 1);
    while (h->slots[j].key) {
        if (!strcmp(h->slots[j].key, json)) {
            free(json);
            return h->slots[j].index;
        }
        j = (j + 1) & (h->cap - 1);
    }
    h->slots[j] = (struct fslot){ json, h->nframes };
    h->frames[h->nframes] = json;
    return h->nframes++;
}

/* [frame index, ...] innermost first, or null without a stack. */
static void stack(struct html *h, const struct cmt_process *p, uint32_t id)
{
    const struct cmt_stack *s = id ? cmt_process_stack(p, id) : NULL;
    if (!s || !s->depth) {
        fputs("null", h->out);
        return;
    }
    fputc('[', h->out);
    for (uint32_t i = 0; i < s->depth; i++) {
        size_t k = frame_index(h, &s->frames[i]);
        fprintf(h->out, i ? ",%zu" : "%zu", k == SIZE_MAX ? 0 : k);
    }
    fputc(']', h->out);
}

/* A leak or allocation site, [scope, blocks, bytes, stack], after a comma unless first. */
static void site(struct html *h, const struct cmt_process *p, bool first, int32_t scope,
                 uint64_t blocks, uint64_t bytes, uint32_t stack_id)
{
    fprintf(h->out, "%s[%d,%" PRIu64 ",%" PRIu64 ",", first ? "" : ",", scope, blocks, bytes);
    stack(h, p, stack_id);
    fputc(']', h->out);
}

/* ---- a process ------------------------------------------------------------------------ */

static const char *kind_name(int kind)
{
    static const char *const names[] = { "global", "api", "func", "thread", "signal" };
    return kind >= 0 && kind < 5 ? names[kind] : "?";
}

/* Live bytes over time: sample times in milliseconds since the process started, and one
 * series per scope that any sample names (the scopes --scope leaves out, and those the
 * samples lump together, as one series of "other scopes"). */
static void timeline(struct html *h, const struct cmt_process *p, const int32_t *shown)
{
    if (!p->nsamples) {
        fputs("null", h->out);
        return;
    }
    /* series[k]: the k-th scope of p->scopes that is shown and named by a sample; the last
     * series is the others. */
    int32_t *series = malloc((p->nscopes + 1) * sizeof *series);
    if (!series) {
        h->oom = true;
        fputs("null", h->out);
        return;
    }
    size_t nseries = 0;
    bool others = false;
    for (size_t i = 0; i < p->nscopes; i++)
        series[i] = -1;
    for (size_t k = 0; k < p->nsamples; k++) {
        for (uint32_t j = 0; j < p->samples[k].n; j++) {
            const struct cmt_sample_value *v = &p->samples[k].v[j];
            const struct cmt_scope *s = v->scope == CMT_TIMELINE_OTHERS
                                            ? NULL : cmt_process_scope(p, v->scope);
            size_t i = s ? (size_t)(s - p->scopes) : 0;
            if (s && shown[i] >= 0) {
                if (series[i] < 0)
                    series[i] = (int32_t)nseries++;
            } else if (v->bytes) {
                others = true;
            }
        }
    }
    fputs("{\"t\":[", h->out);
    for (size_t k = 0; k < p->nsamples; k++) {
        uint64_t t = p->samples[k].unix_ns;
        double ms = t > p->start_unix_ns ? (double)(t - p->start_unix_ns) / 1e6 : 0.0;
        fprintf(h->out, k ? ",%.3f" : "%.3f", ms);
    }
    fputs("],\"series\":[", h->out);
    size_t out = 0;
    for (size_t n = 0; n < nseries + others; n++) {
        size_t scope = SIZE_MAX;
        for (size_t i = 0; i < p->nscopes && n < nseries; i++)
            if (series[i] == (int32_t)n)
                scope = i;
        fputs(out++ ? ",{" : "{", h->out);
        if (scope != SIZE_MAX)
            fprintf(h->out, "\"scope\":%d,\"v\":[", shown[scope]);
        else
            fputs("\"scope\":null,\"v\":[", h->out);
        for (size_t k = 0; k < p->nsamples; k++) {
            uint64_t sum = 0;
            for (uint32_t j = 0; j < p->samples[k].n; j++) {
                const struct cmt_sample_value *v = &p->samples[k].v[j];
                const struct cmt_scope *s = v->scope == CMT_TIMELINE_OTHERS
                                                ? NULL : cmt_process_scope(p, v->scope);
                bool in_series = s && shown[s - p->scopes] >= 0;
                if (scope != SIZE_MAX ? s == &p->scopes[scope] : !in_series)
                    sum += v->bytes;
            }
            fprintf(h->out, k ? ",%" PRIu64 : "%" PRIu64, sum);
        }
        fputs("]}", h->out);
    }
    fputs("]}", h->out);
    free(series);
}

static void process(struct html *h, const struct cmt_view_entry *e, const struct cmt_process *p,
                    bool is_total)
{
    bool first = true;
    char buf[128];
    fputc('{', h->out);
    jkey(h, &first, "total");
    fputs(is_total ? "true" : "false", h->out);
    jkey(h, &first, "pid");
    jnum(h, p->pid);
    jkey(h, &first, "ppid");
    jnum(h, p->ppid);
    jkey(h, &first, "exe");
    jstr(h, p->exe);
    jkey(h, &first, "argv");
    fputc('[', h->out);
    for (uint32_t i = 0; i < p->argc; i++) {
        if (i)
            fputc(',', h->out);
        jstr(h, p->argv[i] ? p->argv[i] : "");
    }
    fputc(']', h->out);
    jkey(h, &first, "relation");
    jstr(h, !e || e->rel == CMT_REL_ROOT ? "root" : e->rel == CMT_REL_FORK ? "fork" : "exec");
    jkey(h, &first, "parent");
    if (e && e->parent)
        jnum(h, e->parent->pid);
    else
        fputs("null", h->out);
    jkey(h, &first, "parent_exe");
    jstr(h, e && e->parent ? e->parent->exe : NULL);
    jkey(h, &first, "depth");
    jnum(h, e ? e->depth : 0);
    jkey(h, &first, "superseded");
    fputs(e && e->superseded ? "true" : "false", h->out);
    jkey(h, &first, "ended");
    jstr(h, is_total ? "" : cmt_ended_text(p, buf, sizeof buf));
    jkey(h, &first, "bad_end");
    fputs(!is_total && (!p->complete || p->how == CMT_END_SIGNAL || p->how == CMT_END_ABORT)
              ? "true" : "false", h->out);
    jkey(h, &first, "final");
    fputs(is_total || cmt_process_final(p) ? "true" : "false", h->out);
    jkey(h, &first, "truncated");
    fputs(p->truncated ? "true" : "false", h->out);
    jkey(h, &first, "label");
    jstr(h, p->how == CMT_END_SNAPSHOT && p->complete ? p->label : "");
    jkey(h, &first, "start_ms");
    fprintf(h->out, "%.3f", (double)p->start_unix_ns / 1e6);
    jkey(h, &first, "write_ms");
    fprintf(h->out, "%.3f", (double)p->write_unix_ns / 1e6);

    const struct cmt_totals *t = &p->totals;
    jkey(h, &first, "totals");
    fprintf(h->out, "{\"allocations\":%" PRIu64 ",\"bytes_allocated\":%" PRIu64
            ",\"frees\":%" PRIu64 ",\"live_blocks\":%" PRIu64 ",\"live_bytes\":%" PRIu64
            ",\"peak_live_bytes\":%" PRIu64 ",\"invalid_frees\":%" PRIu64
            ",\"double_frees\":%" PRIu64 ",\"stale_frees\":%" PRIu64 "}",
            t->allocations, t->bytes_allocated, t->frees, t->live_blocks, t->live_bytes,
            t->peak_live_bytes, t->invalid_frees, t->double_frees, t->stale_frees);

    /* shown[i]: scope i's index in the page's list, or -1 when --scope leaves it out. */
    int32_t *shown = malloc((p->nscopes + 1) * sizeof *shown);
    if (!shown) {
        h->oom = true;
        fputs("}", h->out);
        return;
    }
    jkey(h, &first, "scopes");
    fputc('[', h->out);
    int32_t nshown = 0;
    for (size_t i = 0; i < p->nscopes; i++) {
        const struct cmt_scope *s = &p->scopes[i];
        shown[i] = cmt_scope_selected(h->o, s) ? nshown++ : -1;
        if (shown[i] < 0)
            continue;
        fputs(shown[i] ? ",{\"name\":" : "{\"name\":", h->out);
        jstr(h, s->name);
        fprintf(h->out, ",\"kind\":\"%s\",\"instances\":%" PRIu64 ",\"allocations\":%" PRIu64
                ",\"bytes_allocated\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"bytes_freed\":%"
                PRIu64 ",\"leaked_blocks\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64
                ",\"outlived_blocks\":%" PRIu64 ",\"bulk_freed_blocks\":%" PRIu64
                ",\"bulk_freed_bytes\":%" PRIu64 ",\"peak_live_bytes\":%" PRIu64
                ",\"suppressed\":%s}",
                kind_name(s->kind), s->instances, s->allocations, s->bytes_allocated, s->frees,
                s->bytes_freed, s->leaked_blocks, s->leaked_bytes, s->outlived_blocks,
                s->bulk_freed_blocks, s->bulk_freed_bytes, s->peak_live_bytes,
                s->suppressed ? "true" : "false");
    }
    fputc(']', h->out);

    /* Leak sites: [scope, blocks, bytes, stack], those the filters let through. */
    uint64_t hidden_sites = 0, suppressed_sites = 0;
    jkey(h, &first, "leaks");
    fputc('[', h->out);
    size_t nleaks = 0;
    for (size_t i = 0; i < p->nscopes; i++) {
        if (shown[i] < 0)
            continue;
        struct cmt_leak_list l;
        if (cmt_leak_list(p, &p->scopes[i], h->o, &l)) {
            h->oom = true;
            continue;
        }
        hidden_sites += l.small + (l.sites - l.n);
        suppressed_sites += l.suppressed;
        for (size_t j = 0; j < l.n; j++)
            site(h, p, nleaks++ == 0, shown[i], l.v[j]->blocks, l.v[j]->bytes, l.v[j]->stack);
        cmt_leak_list_free(&l);
    }
    fputc(']', h->out);
    jkey(h, &first, "hidden_sites");
    jnum(h, hidden_sites);
    jkey(h, &first, "suppressed_sites");
    jnum(h, suppressed_sites);

    /* Allocation sites: [scope, allocations, bytes, stack], for the "bytes allocated" flame
     * graph; without them (alloc_sites false, alloc_note says why) it shows scopes only. */
    jkey(h, &first, "alloc_sites");
    fputs(p->has_allocsites ? "true" : "false", h->out);
    jkey(h, &first, "alloc_note");
    jstr(h, p->has_allocsites ? NULL : cmt_no_allocsites_reason(p));
    jkey(h, &first, "allocs");
    fputc('[', h->out);
    size_t nallocs = 0;
    for (size_t i = 0; p->has_allocsites && i < p->nscopes; i++) {
        if (shown[i] < 0)
            continue;
        struct cmt_alloc_list a;
        if (cmt_alloc_list(p, &p->scopes[i], h->o, &a)) {
            h->oom = true;
            continue;
        }
        for (size_t j = 0; j < a.n; j++)
            site(h, p, nallocs++ == 0, shown[i], a.v[j]->allocations, a.v[j]->bytes,
                 a.v[j]->stack);
        cmt_alloc_list_free(&a);
    }
    fputc(']', h->out);

    /* Bad frees: [kind, count, stale scope name or null, sample address, stack]. */
    static const char *const bf_kind[] = { "invalid", "double", "stale" };
    jkey(h, &first, "badfrees");
    fputc('[', h->out);
    for (size_t i = 0; i < p->nbadfrees; i++) {
        const struct cmt_badfree *b = &p->badfrees[i];
        const struct cmt_scope *s = b->scope == UINT32_MAX ? NULL
                                                           : cmt_process_scope(p, b->scope);
        fprintf(h->out, "%s[\"%s\",%" PRIu64 ",", i ? "," : "",
                b->kind >= 0 && b->kind <= 2 ? bf_kind[b->kind] : "?", b->count);
        jstr(h, s ? s->name : NULL);
        fprintf(h->out, ",\"0x%" PRIx64 "\",", b->sample_addr);
        stack(h, p, b->stack);
        fputc(']', h->out);
    }
    fputc(']', h->out);

    jkey(h, &first, "timeline");
    timeline(h, p, shown);
    free(shown);
    fputc('}', h->out);
}

/* ---- the page ------------------------------------------------------------------------- */

int cmt_render_html(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o)
{
    struct html h = { .out = out, .o = o };
    const struct cmt_process *p0 = v->n ? v->entries[0].p : NULL;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          /* Nothing from anywhere: not a script, a style, a font, an image or a request. */
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>cymemtrack report", out);
    if (p0 && p0->exe[0]) {
        /* The title is markup: only characters that cannot start markup go in. */
        const char *slash = strrchr(p0->exe, '/');
        fputs(": ", out);
        for (const char *c = slash ? slash + 1 : p0->exe; *c; c++)
            if (strchr("<>&\"'", *c) == NULL && (unsigned char)*c >= 0x20)
                fputc(*c, out);
    }
    fputs("</title>\n<style>\n", out);
    fputs(cmt_html_report_css, out);
    fputs("</style>\n</head>\n<body>\n", out);
    fputs(cmt_html_page_html, out);

    fputs("<script type=\"application/json\" id=\"cmt-data\">\n{\"format\":1,\"generator\":",
          out);
    jstr(&h, "cymem-report " PACKAGE_VERSION);
    fputs(",\"processes\":[", out);
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            fputs(",\n", out);
        process(&h, &v->entries[i], v->entries[i].p, false);
    }
    fputs("],\n\"total\":", out);
    if (v->has_total) {
        fprintf(out, "{\"processes\":%zu,\"data\":", v->total_processes);
        process(&h, NULL, &v->total, true);
        fputc('}', out);
    } else {
        fputs("null", out);
    }
    fputs(",\n\"frames\":[", out);
    for (size_t i = 0; i < h.nframes; i++) {
        fputs(i ? ",\n" : "\n", out);
        fputs(h.frames[i], out);
    }
    fputs("]}\n</script>\n<script>\n", out);
    fputs(cmt_html_report_js, out);
    fputs("</script>\n</body>\n</html>\n", out);

    for (size_t i = 0; i < h.cap; i++)
        free(h.slots[i].key);
    free(h.slots);
    free(h.frames);
    if (h.oom)
        return cmt_error("out of memory while rendering the report");
    if (fflush(out) != 0 || ferror(out))
        return cmt_error_errno("cannot write the report");
    return 0;
}
