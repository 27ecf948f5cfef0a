/*
 * render-text.c — the view people read: per process a header, the scope table, the largest
 * leak sites with their stacks, bad frees and totals; then the total of all processes. Lines
 * are laid out before colour is added, so colour never counts towards a width, and no line is
 * wider than the terminal when shortening something can avoid it. Bytes from a report are
 * printed with control characters escaped: a program's argv must not drive the terminal.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "render.h"

/* ---- strings ------------------------------------------------------------------------ */

/* A growing string; after a failed allocation it stays as it was and remembers the
 * failure, which the renderer reports once at the end. */
struct sb {
    char *s;
    size_t len, cap;
    bool oom;
};

static bool sb_room(struct sb *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (!sb_room(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_room(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_pad(struct sb *b, size_t n)
{
    while (n-- > 0)
        sb_add(b, " ", 1);
}

/* Appends s with every control byte (and DEL) written as \xNN. */
static void sb_clean(struct sb *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            sb_printf(b, "\\x%02x", c);
        else
            sb_add(b, s, 1);
    }
}

static const char *sb_str(const struct sb *b)
{
    return b->s ? b->s : "";
}

static void sb_reset(struct sb *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

/* Terminal columns of UTF-8 text: one per character (wide characters are rare in what a
 * report holds; counting them as one can only make a line a column longer than planned). */
static size_t cols(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Byte offset where the first `keep` columns of s end. */
static size_t cols_prefix(const char *s, size_t keep)
{
    size_t i = 0, n = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80 && n++ == keep)
            break;
    }
    return i;
}

/* s cut to at most `max` columns, "..." marking the cut at the end (or, with from_left,
 * at the start: the tail of a path says more than its head). */
static void sb_fit(struct sb *b, const char *s, size_t max, bool from_left)
{
    size_t n = cols(s);
    if (n <= max || max < 4) {
        sb_puts(b, s);
        return;
    }
    if (from_left) {
        size_t skip = cols_prefix(s, n - (max - 3));
        sb_puts(b, "...");
        sb_puts(b, s + skip);
    } else {
        sb_add(b, s, cols_prefix(s, max - 3));
        sb_puts(b, "...");
    }
}

/* ---- what the renderer knows -------------------------------------------------------- */

enum { C_NONE, C_BOLD, C_RED, C_YELLOW, C_CYAN, C_DIM };
static const char *const colour_on[] = { "", "\033[1m", "\033[31m", "\033[33m", "\033[36m",
                                         "\033[2m" };

struct text {
    FILE *out;
    const struct cmt_render_opts *o;
    struct sb line, tmp, cell;
    bool oom;
};

/* Appends s to the line, coloured when colour is on. */
static void put_c(struct text *t, int colour, const char *s)
{
    if (t->o->color && colour != C_NONE && *s) {
        sb_puts(&t->line, colour_on[colour]);
        sb_puts(&t->line, s);
        sb_puts(&t->line, "\033[0m");
    } else {
        sb_puts(&t->line, s);
    }
}

/* Columns the line holds so far, colour codes not counted. */
static size_t line_cols(const struct text *t)
{
    size_t n = 0;
    for (const char *p = sb_str(&t->line); *p; p++) {
        if (*p == '\033') {
            p += strcspn(p, "m");
            if (!*p)
                break;
            continue;
        }
        n += ((unsigned char)*p & 0xc0) != 0x80;
    }
    return n;
}

/* Appends s, cut to what is left of the width when that leaves room for something
 * useful (from the left for paths, whose tail says most). */
static void put_fit(struct text *t, int colour, const char *s, bool from_left)
{
    size_t used = line_cols(t);
    unsigned w = t->o->width;
    if (w && used + cols(s) > w && w >= used + 12) {
        struct sb cut = { 0 };
        sb_fit(&cut, s, w - used, from_left);
        put_c(t, colour, sb_str(&cut));
        t->oom |= cut.oom;
        free(cut.s);
    } else {
        put_c(t, colour, s);
    }
}

static void emit(struct text *t)
{
    if (t->line.oom || t->tmp.oom || t->cell.oom)
        t->oom = true;
    fputs(sb_str(&t->line), t->out);
    fputc('\n', t->out);
    sb_reset(&t->line);
}

static unsigned width_or(const struct text *t, unsigned dflt)
{
    return t->o->width ? t->o->width : dflt;
}

const char *cmt_human_size(uint64_t bytes, char buf[static 32])
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    if (bytes < 1024) {
        snprintf(buf, 32, "%u B", (unsigned)bytes);
        return buf;
    }
    /* Tenths of the unit, rounded; a value that rounds up to 1024.0 moves to the next. */
    size_t u = 0;
    uint64_t whole = bytes;
    while (whole >= 1024 * 1024 && u < 5) {
        whole >>= 10;
        u++;
    }
    u++;
    long double v = (long double)bytes;
    for (size_t i = 0; i < u; i++)
        v /= 1024;
    uint64_t tenths = (uint64_t)(v * 10 + 0.5L);
    if (tenths >= 10240 && u < 6) {
        u++;
        tenths = (uint64_t)(v / 1024 * 10 + 0.5L);
    }
    snprintf(buf, 32, "%" PRIu64 ".%u %s", tenths / 10, (unsigned)(tenths % 10), unit[u]);
    return buf;
}

static const char *signal_name(int sig, char *buf, size_t size)
{
    const char *abbrev = sig > 0 && sig < 65 ? sigabbrev_np(sig) : NULL;
    if (abbrev)
        snprintf(buf, size, "SIG%s", abbrev);
    else
        snprintf(buf, size, "signal %d", sig);
    return buf;
}

const char *cmt_ended_text(const struct cmt_process *p, char *buf, size_t size)
{
    char sig[32];
    switch (p->complete ? p->how : CMT_END_RUNNING) {
    case CMT_END_EXIT:
        snprintf(buf, size, "exited with status %d", p->code);
        break;
    case CMT_END_SIGNAL:
        snprintf(buf, size, "killed by signal %d (%s)", p->code,
                 signal_name(p->code, sig, sizeof sig));
        break;
    case CMT_END_ABORT:
        snprintf(buf, size, "aborted (%s)", signal_name(p->code, sig, sizeof sig));
        break;
    case CMT_END_EXEC:
        snprintf(buf, size, "replaced by exec");
        break;
    case CMT_END_UNDERSCORE_EXIT:
        snprintf(buf, size, "_exit with status %d", p->code);
        break;
    case CMT_END_SNAPSHOT:
        snprintf(buf, size, "still running (snapshot)");
        break;
    default:
        snprintf(buf, size, "killed (incomplete)");
        break;
    }
    return buf;
}

/* ---- the process header ------------------------------------------------------------- */

static bool shell_safe(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-",
                     *s) && !((unsigned char)*s & 0x80))
            return false;
    return true;
}

/* The command line as a shell would take it back: each argument bare when it can be,
 * else in single quotes. */
static void command_line(struct sb *b, const struct cmt_process *p)
{
    for (uint32_t i = 0; i < p->argc; i++) {
        const char *a = p->argv[i] ? p->argv[i] : "";
        if (i)
            sb_puts(b, " ");
        if (shell_safe(a)) {
            sb_clean(b, a);
            continue;
        }
        sb_puts(b, "'");
        for (const char *c = a; *c; c++) {
            if (*c == '\'') {
                sb_puts(b, "'\\''");
            } else {
                char one[2] = { *c, 0 };
                sb_clean(b, one);
            }
        }
        sb_puts(b, "'");
    }
}

/* "  key       value", the value cut to the width. */
static void field(struct text *t, const char *key, int colour, const char *value, bool left)
{
    sb_printf(&t->line, "  %-10s", key);
    put_fit(t, colour, value, left);
    emit(t);
}

static void process_header(struct text *t, const struct cmt_view_entry *e)
{
    const struct cmt_process *p = e->p;
    char buf[128];

    sb_reset(&t->tmp);
    sb_printf(&t->tmp, "== process %" PRIu32 ": ", p->pid);
    size_t fixed = cols(sb_str(&t->tmp)) + 3;
    sb_reset(&t->cell);
    sb_clean(&t->cell, p->exe[0] ? p->exe : "(unknown executable)");
    unsigned w = width_or(t, 0);
    if (w > fixed + 10)
        sb_fit(&t->tmp, sb_str(&t->cell), w - fixed, true);
    else
        sb_puts(&t->tmp, sb_str(&t->cell));
    sb_puts(&t->tmp, " ==");
    put_c(t, C_BOLD, sb_str(&t->tmp));
    emit(t);

    sb_reset(&t->tmp);
    command_line(&t->tmp, p);
    field(t, "command", C_NONE, p->argc ? sb_str(&t->tmp) : "(unknown)", false);

    sb_reset(&t->tmp);
    switch (e->rel) {
    case CMT_REL_FORK:
        sb_printf(&t->tmp, "forked by process %" PRIu32 " (", e->parent->pid);
        sb_clean(&t->tmp, e->parent->exe);
        sb_puts(&t->tmp, ")");
        break;
    case CMT_REL_EXEC:
        sb_puts(&t->tmp, "by exec from ");
        sb_clean(&t->tmp, e->parent->exe);
        sb_puts(&t->tmp, ", same pid");
        break;
    default:
        sb_printf(&t->tmp, "by process %" PRIu32, p->ppid);
        break;
    }
    field(t, "started", C_NONE, sb_str(&t->tmp), false);

    cmt_ended_text(p, buf, sizeof buf);
    bool bad = !p->complete || p->how == CMT_END_SIGNAL || p->how == CMT_END_ABORT;
    field(t, "ended", bad ? C_RED : C_NONE, buf, false);
    if (p->how == CMT_END_SNAPSHOT && p->complete && p->label[0]) {
        sb_reset(&t->tmp);
        sb_clean(&t->tmp, p->label);
        field(t, "snapshot", C_NONE, sb_str(&t->tmp), false);
    }
    if (p->truncated)
        field(t, "warning", C_YELLOW,
              "the report was cut short; what follows is what could be read", false);
    if (e->superseded)
        field(t, "note", C_NONE,
              "a later report of this process follows; this one is not in the total", false);
}

/* ---- the scope table ---------------------------------------------------------------- */

enum { COL_SCOPE, COL_KIND, COL_INST, COL_ALLOCS, COL_ABYTES, COL_FREES, COL_LBLOCKS,
       COL_LBYTES, COL_OUTLIVED, COL_BBLOCKS, COL_BBYTES, NCOLS };

static const char *const col_title[NCOLS] = {
    "scope", "kind", "instances", "blocks", "bytes", "frees", "blocks", "bytes", "outlived",
    "blocks", "bytes",
};

/* Titles over pairs of columns: each spans its column and the next. */
static const char *group_title(int c)
{
    return c == COL_ALLOCS ? "allocated" : c == COL_LBLOCKS ? "leaked"
                         : c == COL_BBLOCKS ? "bulk-freed" : NULL;
}

static const char *kind_name(int kind)
{
    static const char *const names[] = { "global", "api", "func", "thread", "signal" };
    return kind >= 0 && kind < 5 ? names[kind] : "?";
}

struct row {
    char *cell[NCOLS];
    bool leaked;            /* the leak columns are not zero */
};

static char *dup_num(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return strdup(buf);
}

static char *dup_size(uint64_t v)
{
    char buf[32];
    return strdup(cmt_human_size(v, buf));
}

static void fill_row(struct row *r, const char *name, const char *kind, uint64_t instances,
                     uint64_t allocs, uint64_t abytes, uint64_t frees, uint64_t lblocks,
                     uint64_t lbytes, uint64_t outlived, uint64_t bblocks, uint64_t bbytes)
{
    struct sb b = { 0 };
    sb_clean(&b, name);
    r->cell[COL_SCOPE] = b.s ? b.s : strdup("");
    r->cell[COL_KIND] = strdup(kind);
    r->cell[COL_INST] = instances == UINT64_MAX ? strdup("") : dup_num(instances);
    r->cell[COL_ALLOCS] = dup_num(allocs);
    r->cell[COL_ABYTES] = dup_size(abytes);
    r->cell[COL_FREES] = dup_num(frees);
    r->cell[COL_LBLOCKS] = dup_num(lblocks);
    r->cell[COL_LBYTES] = dup_size(lbytes);
    r->cell[COL_OUTLIVED] = dup_num(outlived);
    r->cell[COL_BBLOCKS] = dup_num(bblocks);
    r->cell[COL_BBYTES] = dup_size(bbytes);
    r->leaked = lblocks || lbytes;
}

static void free_rows(struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < NCOLS; c++)
            free(rows[i].cell[c]);
    free(rows);
}

/* Columns: two spaces apart, the scope name left-aligned and every number right-aligned. */
/* Columns: two spaces apart, the scope name left-aligned and every number right-aligned. A
 * column of width 0 is left out. */
static void table(struct text *t, struct row *rows, size_t n, const size_t wid[NCOLS])
{
    /* The group titles, each right-aligned over the pair of columns it names. */
    for (int c = 0; c < NCOLS; c++) {
        if (!wid[c])
            continue;
        const char *g = group_title(c);
        size_t span = wid[c] + (g ? 2 + wid[c + 1] : 0);
        if (g) {
            sb_pad(&t->line, 2 + span - cols(g));
            put_c(t, C_BOLD, g);
            c++;
        } else {
            sb_pad(&t->line, 2 + span);
        }
    }
    while (t->line.len && t->line.s[t->line.len - 1] == ' ')
        t->line.s[--t->line.len] = '\0';
    emit(t);
    for (int c = 0; c < NCOLS; c++) {
        if (!wid[c])
            continue;
        sb_pad(&t->line, 2);
        if (c == COL_SCOPE || c == COL_KIND) {
            put_c(t, C_BOLD, col_title[c]);
            sb_pad(&t->line, wid[c] - cols(col_title[c]));
        } else {
            sb_pad(&t->line, wid[c] - cols(col_title[c]));
            put_c(t, C_BOLD, col_title[c]);
        }
    }
    emit(t);
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < NCOLS; c++) {
            if (!wid[c])
                continue;
            const char *s = rows[i].cell[c] ? rows[i].cell[c] : "?";
            sb_pad(&t->line, 2);
            sb_reset(&t->cell);
            sb_fit(&t->cell, s, wid[c], false);
            size_t w = cols(sb_str(&t->cell));
            int colour = (c == COL_LBLOCKS || c == COL_LBYTES) && rows[i].leaked ? C_RED
                                                                                 : C_NONE;
            if (c == COL_SCOPE || c == COL_KIND) {
                put_c(t, colour, sb_str(&t->cell));
                sb_pad(&t->line, wid[c] - w);
            } else {
                sb_pad(&t->line, wid[c] - w);
                put_c(t, colour, sb_str(&t->cell));
            }
        }
        while (t->line.len && t->line.s[t->line.len - 1] == ' ')
            t->line.s[--t->line.len] = '\0';
        emit(t);
    }
}

static const char *blocks_word(const char *count)
{
    return strcmp(count, "1") ? "blocks" : "block";
}

/* The narrow form, one short block per scope, for terminals the table does not fit. */
static void cards(struct text *t, struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        sb_reset(&t->cell);
        sb_fit(&t->cell, r->cell[COL_SCOPE], width_or(t, 1000) > 20 ? width_or(t, 1000) - 18
                                                                        : 4, false);
        sb_puts(&t->line, "  ");
        put_c(t, C_BOLD, sb_str(&t->cell));
        if (r->cell[COL_KIND][0]) {
            sb_printf(&t->line, " (%s, %s instance%s)", r->cell[COL_KIND], r->cell[COL_INST],
                      strcmp(r->cell[COL_INST], "1") ? "s" : "");
        }
        emit(t);
        sb_printf(&t->line, "    allocated   %s %s, %s", r->cell[COL_ALLOCS],
                  blocks_word(r->cell[COL_ALLOCS]), r->cell[COL_ABYTES]);
        emit(t);
        sb_printf(&t->line, "    frees       %s", r->cell[COL_FREES]);
        emit(t);
        sb_puts(&t->line, "    leaked      ");
        sb_reset(&t->cell);
        sb_printf(&t->cell, "%s %s, %s", r->cell[COL_LBLOCKS],
                  blocks_word(r->cell[COL_LBLOCKS]), r->cell[COL_LBYTES]);
        put_c(t, r->leaked ? C_RED : C_NONE, sb_str(&t->cell));
        emit(t);
        sb_printf(&t->line, "    outlived    %s %s", r->cell[COL_OUTLIVED],
                  blocks_word(r->cell[COL_OUTLIVED]));
        emit(t);
        sb_printf(&t->line, "    bulk-freed  %s %s, %s", r->cell[COL_BBLOCKS],
                  blocks_word(r->cell[COL_BBLOCKS]), r->cell[COL_BBYTES]);
        emit(t);
    }
}

static void scope_table(struct text *t, const struct cmt_process *p)
{
    size_t n = 0;
    struct row *rows = calloc(p->nscopes + 1, sizeof *rows);
    if (!rows) {
        t->oom = true;
        return;
    }
    uint64_t sum[NCOLS] = { 0 };
    for (size_t i = 0; i < p->nscopes; i++) {
        const struct cmt_scope *s = &p->scopes[i];
        if (!cmt_scope_selected(t->o, s))
            continue;
        fill_row(&rows[n++], s->name, kind_name(s->kind), s->instances, s->allocations,
                 s->bytes_allocated, s->frees, s->leaked_blocks, s->leaked_bytes,
                 s->outlived_blocks, s->bulk_freed_blocks, s->bulk_freed_bytes);
        const uint64_t v[NCOLS] = { 0, 0, s->instances, s->allocations, s->bytes_allocated,
                                    s->frees, s->leaked_blocks, s->leaked_bytes,
                                    s->outlived_blocks, s->bulk_freed_blocks,
                                    s->bulk_freed_bytes };
        for (int c = COL_INST; c < NCOLS; c++)
            sum[c] = __builtin_add_overflow(sum[c], v[c], &sum[c]) ? UINT64_MAX : sum[c];
    }
    if (n == 0) {
        sb_puts(&t->line, t->o->nscopes ? "  (no scope matches --scope)"
                                        : "  (no scopes recorded)");
        emit(t);
        free(rows);
        return;
    }
    /* Scopes partition the allocations (every block has exactly one), so a sum row adds up. */
    if (n > 1)
        fill_row(&rows[n++], "all scopes", "", sum[COL_INST], sum[COL_ALLOCS], sum[COL_ABYTES],
                 sum[COL_FREES], sum[COL_LBLOCKS], sum[COL_LBYTES], sum[COL_OUTLIVED],
                 sum[COL_BBLOCKS], sum[COL_BBYTES]);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < NCOLS; c++)
            if (!rows[i].cell[c])
                t->oom = true;
    if (t->oom) {
        free_rows(rows, n);
        return;
    }

    size_t wid[NCOLS], total = 0;
    for (int c = 0; c < NCOLS; c++) {
        wid[c] = cols(col_title[c]);
        for (size_t i = 0; i < n; i++)
            if (cols(rows[i].cell[c]) > wid[c])
                wid[c] = cols(rows[i].cell[c]);
    }
    /* A group title wider than its two columns widens the second. */
    for (int c = 0; c < NCOLS; c++) {
        const char *g = group_title(c);
        if (g && cols(g) > wid[c] + 2 + wid[c + 1])
            wid[c + 1] = cols(g) - wid[c] - 2;
    }
    for (int c = 0; c < NCOLS; c++)
        total += 2 + wid[c];
    /* Too wide: first the columns that are 0 in every scope (most programs have no
     * outlived or bulk-freed blocks), then long scope names, down to 12 columns; then the
     * table gives way to cards. */
    unsigned w = t->o->width;
    bool no_outlived = sum[COL_OUTLIVED] == 0;
    bool no_bulk = sum[COL_BBLOCKS] == 0 && sum[COL_BBYTES] == 0;
    if (w && total > w && (no_outlived || no_bulk)) {
        static const int drop[] = { COL_OUTLIVED, COL_BBLOCKS, COL_BBYTES };
        for (size_t i = 0; i < 3; i++) {
            if (drop[i] == COL_OUTLIVED ? no_outlived : no_bulk) {
                total -= 2 + wid[drop[i]];
                wid[drop[i]] = 0;
            }
        }
    } else {
        no_outlived = no_bulk = false;
    }
    if (w && total > w && wid[COL_SCOPE] > 12) {
        size_t cut = total - w < wid[COL_SCOPE] - 12 ? total - w : wid[COL_SCOPE] - 12;
        wid[COL_SCOPE] -= cut;
        total -= cut;
    }
    if (w && total > w) {
        cards(t, rows, n);
    } else {
        table(t, rows, n, wid);
        if (no_outlived || no_bulk) {
            sb_printf(&t->line, "  (no scope has %s%s%s blocks)", no_outlived ? "outlived" : "",
                      no_outlived && no_bulk ? " or " : "", no_bulk ? "bulk-freed" : "");
            emit(t);
        }
    }
    free_rows(rows, n);
}

/* ---- stacks ------------------------------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* A frame's function (or what stands in for it) and its location, as they are printed. */
static void frame_parts(const struct cmt_frame *f, struct sb *fn, struct sb *loc)
{
    sb_reset(fn);
    sb_reset(loc);
    if (f->function)
        sb_clean(fn, f->function);
    if (f->file && f->line > 0) {
        sb_clean(loc, f->file);
        sb_printf(loc, ":%d", f->line);
    } else if (f->module && f->module->path) {
        sb_clean(loc, base_name(f->module->path));
        sb_printf(loc, "+0x%" PRIx64, f->offset);
    } else {
        sb_printf(loc, "0x%" PRIx64, f->pc);
    }
    if (!fn->len) {
        /* Nothing better to show than the location: it moves into the function column. */
        sb_puts(fn, sb_str(loc));
        sb_reset(loc);
    }
}

static void stack_lines(struct text *t, const struct cmt_process *p, uint32_t id,
                        unsigned indent)
{
    const struct cmt_stack *s = id ? cmt_process_stack(p, id) : NULL;
    if (!s || !s->depth) {
        sb_pad(&t->line, indent);
        put_c(t, C_DIM, "(no stack recorded)");
        emit(t);
        return;
    }
    struct sb fn = { 0 }, loc = { 0 };
    size_t pad = 0;
    for (uint32_t i = 0; i < s->depth; i++) {
        frame_parts(&s->frames[i], &fn, &loc);
        if (loc.len && cols(sb_str(&fn)) > pad)
            pad = cols(sb_str(&fn));
    }
    if (pad > 40)
        pad = 40;
    unsigned w = t->o->width;
    for (uint32_t i = 0; i < s->depth; i++) {
        frame_parts(&s->frames[i], &fn, &loc);
        sb_pad(&t->line, indent);
        sb_reset(&t->tmp);
        sb_printf(&t->tmp, "#%-2u ", (unsigned)i);
        put_c(t, C_DIM, sb_str(&t->tmp));
        size_t used = indent + cols(sb_str(&t->tmp));
        size_t fw = cols(sb_str(&fn)), lw = cols(sb_str(&loc));
        size_t gap = loc.len ? (fw < pad ? pad - fw : 0) + 2 : 0;
        /* Too wide: drop the padding; then give the location a line of its own; then
         * shorten each (a path from the left: its tail names the file). */
        if (w && used + fw + gap + lw > w && loc.len)
            gap = 2;
        if (!w || used + fw + gap + lw <= w) {
            put_c(t, C_NONE, sb_str(&fn));
            sb_pad(&t->line, gap);
            put_c(t, C_CYAN, sb_str(&loc));
        } else {
            put_fit(t, C_NONE, sb_str(&fn), !loc.len);
            if (loc.len) {
                emit(t);
                sb_pad(&t->line, used + 2);
                put_fit(t, C_CYAN, sb_str(&loc), true);
            }
        }
        emit(t);
    }
    if (fn.oom || loc.oom)
        t->oom = true;
    free(fn.s);
    free(loc.s);
}

/* ---- leak sites, bad frees, totals -------------------------------------------------- */

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void leak_sites(struct text *t, const struct cmt_process *p, bool is_total,
                       struct cmt_leak_list *all)
{
    bool any = false;
    char b1[32], b2[32];
    const char *noun = is_total || cmt_process_final(p) ? "leaks" : "still live";
    for (size_t i = 0; i < p->nscopes; i++) {
        const struct cmt_scope *s = &p->scopes[i];
        if (!cmt_scope_selected(t->o, s))
            continue;
        struct cmt_leak_list l;
        if (cmt_leak_list(p, s, t->o, &l)) {
            t->oom = true;
            return;
        }
        all->sites += l.sites;
        all->blocks += l.blocks;
        all->bytes += l.bytes;
        all->suppressed += l.suppressed;
        all->suppressed_blocks += l.suppressed_blocks;
        all->suppressed_bytes += l.suppressed_bytes;
        all->small += l.small;
        if (!l.sites) {
            cmt_leak_list_free(&l);
            continue;
        }
        any = true;
        emit(t);
        sb_reset(&t->tmp);
        sb_printf(&t->tmp, "%s in scope ", noun);
        sb_clean(&t->tmp, s->name);
        put_fit(t, C_BOLD, sb_str(&t->tmp), false);
        sb_reset(&t->cell);
        sb_printf(&t->cell, ": %" PRIu64 " %s, %s in %zu %s", l.blocks,
                  plural(l.blocks, "block", "blocks"), cmt_human_size(l.bytes, b1), l.sites,
                  plural(l.sites, "site", "sites"));
        if (l.n < l.sites)
            sb_printf(&t->cell, " (the largest %zu shown)", l.n);
        /* On a narrow terminal the counts go to a line of their own. */
        if (t->o->width && line_cols(t) + cols(sb_str(&t->cell)) > t->o->width) {
            sb_puts(&t->line, ":");
            emit(t);
            sb_puts(&t->line, "   ");
            put_fit(t, C_NONE, sb_str(&t->cell) + 2, false);
        } else {
            sb_puts(&t->line, sb_str(&t->cell));
        }
        emit(t);
        for (size_t j = 0; j < l.n; j++) {
            const struct cmt_leak *k = l.v[j];
            sb_reset(&t->tmp);
            sb_printf(&t->tmp, "%" PRIu64 " %s, %s", k->blocks,
                      plural(k->blocks, "block", "blocks"), cmt_human_size(k->bytes, b2));
            sb_printf(&t->line, "  %-3zu ", j + 1);
            put_c(t, C_RED, sb_str(&t->tmp));
            if (k->blocks_in_closed) {
                sb_reset(&t->cell);
                sb_printf(&t->cell, " (%" PRIu64 " in closed instances)", k->blocks_in_closed);
                put_fit(t, C_NONE, sb_str(&t->cell), false);
            }
            emit(t);
            stack_lines(t, p, k->stack, 6);
        }
        cmt_leak_list_free(&l);
    }
    if (!any && cmt_process_final(p) && !is_total) {
        emit(t);
        sb_puts(&t->line, all->suppressed || all->small ? "no leaks shown" : "no leaks");
        emit(t);
    }
}

static void bad_frees(struct text *t, const struct cmt_process *p)
{
    static const char *const what[] = {
        [CMT_REPORT_BADFREE_INVALID] = "never allocated",
        [CMT_REPORT_BADFREE_DOUBLE] = "already freed",
        [CMT_REPORT_BADFREE_STALE] = "bulk-freed with",
    };
    static const char *const kind[] = { "invalid", "double", "stale" };
    if (!p->nbadfrees)
        return;
    emit(t);
    put_c(t, C_BOLD, "bad frees");
    emit(t);
    for (size_t i = 0; i < p->nbadfrees; i++) {
        const struct cmt_badfree *b = &p->badfrees[i];
        int k = b->kind >= 0 && b->kind <= 2 ? b->kind : 0;
        sb_reset(&t->tmp);
        sb_printf(&t->tmp, "%" PRIu64 " %s %s", b->count, kind[k],
                  plural(b->count, "free", "frees"));
        sb_puts(&t->line, "  ");
        put_c(t, C_RED, sb_str(&t->tmp));
        /* The rest says what was freed; it gives way at the end on a narrow terminal. */
        sb_reset(&t->cell);
        sb_printf(&t->cell, " (%s", what[k]);
        const struct cmt_scope *s = b->scope == UINT32_MAX ? NULL
                                                           : cmt_process_scope(p, b->scope);
        if (k == CMT_REPORT_BADFREE_STALE) {
            sb_puts(&t->cell, " scope ");
            sb_clean(&t->cell, s ? s->name : "?");
        }
        sb_puts(&t->cell, ")");
        if (b->sample_addr)
            sb_printf(&t->cell, ", e.g. 0x%" PRIx64, b->sample_addr);
        put_fit(t, C_NONE, sb_str(&t->cell), false);
        emit(t);
        stack_lines(t, p, b->stack, 6);
    }
}

/* Emits an uncoloured line, broken after a ", " when it is wider than the terminal; the
 * lines after the first start at column indent. */
static void emit_wrapped(struct text *t, size_t indent)
{
    unsigned w = t->o->width;
    while (w && cols(sb_str(&t->line)) > w) {
        const char *s = sb_str(&t->line);
        size_t limit = cols_prefix(s, w), cut = 0;
        for (size_t i = indent; i + 1 < limit; i++)
            if (s[i] == ',' && s[i + 1] == ' ')
                cut = i + 1;
        if (!cut)
            break;
        sb_reset(&t->tmp);
        sb_pad(&t->tmp, indent);
        sb_puts(&t->tmp, s + cut + 1);
        t->line.len = cut;
        t->line.s[cut] = '\0';
        emit(t);
        sb_puts(&t->line, sb_str(&t->tmp));
    }
    emit(t);
}

static void totals(struct text *t, const struct cmt_process *p, bool is_total,
                   const struct cmt_leak_list *all)
{
    const struct cmt_totals *x = &p->totals;
    char b1[32];
    emit(t);
    put_c(t, C_BOLD, "totals");
    emit(t);
    sb_printf(&t->line, "  %-12s %" PRIu64 ", %s", "allocations", x->allocations,
              cmt_human_size(x->bytes_allocated, b1));
    emit_wrapped(t, 15);
    sb_printf(&t->line, "  %-12s %" PRIu64, "frees", x->frees);
    emit_wrapped(t, 15);
    sb_printf(&t->line, "  %-12s %" PRIu64 " %s, %s", "live at end", x->live_blocks,
              plural(x->live_blocks, "block", "blocks"), cmt_human_size(x->live_bytes, b1));
    emit_wrapped(t, 15);
    sb_printf(&t->line, "  %-12s %s%s", "peak live", cmt_human_size(x->peak_live_bytes, b1),
              is_total ? " (largest process)" : "");
    emit_wrapped(t, 15);
    sb_printf(&t->line, "  %-12s %" PRIu64 " invalid, %" PRIu64 " double, %" PRIu64 " stale",
              "bad frees", x->invalid_frees, x->double_frees, x->stale_frees);
    emit_wrapped(t, 15);
    if (all->suppressed) {
        sb_printf(&t->line, "  %-12s %zu leak %s, %" PRIu64 " %s, %s", "suppressed",
                  all->suppressed, plural(all->suppressed, "site", "sites"),
                  all->suppressed_blocks, plural(all->suppressed_blocks, "block", "blocks"),
                  cmt_human_size(all->suppressed_bytes, b1));
        emit_wrapped(t, 15);
    }
    if (all->small) {
        sb_printf(&t->line, "  %-12s %zu leak %s under %" PRIu64 " bytes", "hidden",
                  all->small, plural(all->small, "site", "sites"), t->o->min_bytes);
        emit_wrapped(t, 15);
    }
}

static void process_body(struct text *t, const struct cmt_process *p, bool is_total)
{
    struct cmt_leak_list all = { 0 };
    emit(t);
    scope_table(t, p);
    leak_sites(t, p, is_total, &all);
    bad_frees(t, p);
    totals(t, p, is_total, &all);
}

int cmt_render_text(FILE *out, const struct cmt_view *v, const struct cmt_render_opts *o)
{
    struct text t = { .out = out, .o = o };
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            emit(&t);
        process_header(&t, &v->entries[i]);
        process_body(&t, v->entries[i].p, false);
    }
    if (v->has_total) {
        emit(&t);
        sb_reset(&t.tmp);
        sb_printf(&t.tmp, "== total: %zu processes ==", v->total_processes);
        put_c(&t, C_BOLD, sb_str(&t.tmp));
        emit(&t);
        process_body(&t, &v->total, true);
    }
    free(t.line.s);
    free(t.tmp.s);
    free(t.cell.s);
    if (t.oom)
        return cmt_error("out of memory while rendering the report");
    if (fflush(out) != 0 || ferror(out))
        return cmt_error_errno("cannot write the report");
    return 0;
}
